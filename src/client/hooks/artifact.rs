//! Fetches the task's `artifact` blocks into its directory before the driver starts (Nomad's
//! `artifact_hook.go`), through `caravan-getter`. A failure is recorded as a
//! "Failed Artifact Download" event and is recoverable: the task runner retries it under the
//! restart policy. Artifacts already fetched are not fetched again on a retry.

use super::{HookContext, HookError, TaskHook};
use caravan_driver::async_trait;
use caravan_getter::{Artifact, Getter, GetterConfig};
use caravan_structs::TaskEvent;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

/// Nomad's event types for this hook.
pub const TASK_EVENT_DOWNLOADING_ARTIFACTS: &str = "Downloading Artifacts";
pub const TASK_EVENT_ARTIFACT_DOWNLOAD_FAILED: &str = "Failed Artifact Download";

/// The hook; `config` is the client's `artifact {}` settings, read at each fetch so a SIGHUP
/// reload applies to the next download.
#[derive(Default)]
pub struct ArtifactHook {
    config: Option<super::SharedGetterConfig>,
    /// Indexes of the artifacts already in place.
    done: Mutex<BTreeSet<usize>>,
}

impl ArtifactHook {
    pub fn new(config: super::SharedGetterConfig) -> Self {
        ArtifactHook {
            config: Some(config),
            done: Mutex::new(BTreeSet::new()),
        }
    }

    fn getter_config(&self, ctx: &HookContext) -> GetterConfig {
        let mut cfg = match &self.config {
            Some(shared) => match shared.read() {
                Ok(c) => c.clone(),
                Err(p) => p.into_inner().clone(),
            },
            None => GetterConfig::default(),
        };
        if cfg.cache_dir.is_none() {
            // <data_dir>/alloc/<id> → <data_dir>/artifact-cache, shared by the node's allocations.
            cfg.cache_dir = ctx
                .alloc_dir
                .root
                .parent()
                .and_then(|p| p.parent())
                .map(|d| d.join("artifact-cache"));
        }
        cfg
    }
}

fn failed(ctx: &mut HookContext, message: String) -> HookError {
    let mut ev = TaskEvent::new(TASK_EVENT_ARTIFACT_DOWNLOAD_FAILED, message.clone());
    ev.details.insert("download_error".into(), message.clone());
    ctx.events.push(ev);
    HookError {
        hook: "artifacts",
        message,
        recoverable: true,
    }
}

#[async_trait]
impl TaskHook for ArtifactHook {
    fn name(&self) -> &'static str {
        "artifacts"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        if ctx.task.artifacts.is_empty() {
            return Ok(());
        }
        let done: BTreeSet<usize> = match self.done.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if done.len() == ctx.task.artifacts.len() {
            return Ok(());
        }
        ctx.events.push(TaskEvent::new(
            TASK_EVENT_DOWNLOADING_ARTIFACTS,
            "Client is downloading artifacts",
        ));
        let getter = match Getter::new(self.getter_config(ctx)) {
            Ok(g) => g,
            Err(e) => {
                return Err(failed(
                    ctx,
                    format!("failed to set up artifact downloads: {e}"),
                ))
            }
        };
        let task_dir: PathBuf = ctx.alloc_dir.task_dir(&ctx.task.name);
        let alloc_root = ctx.alloc_dir.root.clone();
        let artifacts = ctx.task.artifacts.clone();
        for (i, raw) in artifacts.iter().enumerate() {
            if done.contains(&i) {
                continue;
            }
            let artifact = match Artifact::from_nomad_json(raw) {
                Ok(a) => a,
                Err(e) => return Err(failed(ctx, format!("failed to download artifact {i}: {e}"))),
            };
            let artifact = match &ctx.task_env {
                Some(env) => artifact.interpolated(&|s: &str| env.interpolate(s)),
                None => artifact,
            };
            tracing::info!(alloc = %ctx.alloc.id, task = %ctx.task.name, source = %artifact.source, "downloading artifact");
            match getter.fetch(&artifact, &alloc_root, &task_dir, None).await {
                Ok(f) => {
                    tracing::info!(
                        alloc = %ctx.alloc.id, task = %ctx.task.name, bytes = f.bytes,
                        from_cache = f.from_cache, dest = %f.destination.display(),
                        "artifact downloaded"
                    );
                    match self.done.lock() {
                        Ok(mut g) => g.insert(i),
                        Err(p) => p.into_inner().insert(i),
                    };
                }
                Err(e) => {
                    return Err(failed(
                        ctx,
                        format!("failed to download artifact {:?}: {e}", artifact.source),
                    ))
                }
            }
        }
        Ok(())
    }
}
