//! Hands a task its workload identities (Nomad's identity hook and widmgr): the default
//! identity's JWT, signed by the servers when the allocation was placed, goes to
//! `secrets/nomad_token` when its block says `file = true` and to `NOMAD_TOKEN` when it says
//! `env = true`; named identities go to `secrets/nomad_<name>.jwt` and `NOMAD_TOKEN_<name>`. A
//! `filepath` puts the file elsewhere in the task directory. Identities with a `ttl` are
//! renewed from the servers halfway to their expiry: the file is rewritten and `change_mode`
//! (`signal`, `restart`) applied; the task's environment keeps the first token (a process's
//! environment cannot change under it).

use super::{HookContext, HookError, TaskControl, TaskHook};
use crate::client::allocdir::resolve_within;
use crate::client::rpc::ServerRpc;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use caravan_driver::async_trait;
use caravan_structs::{time, TaskEvent, WorkloadIdentity, TASK_EVENT_RESTART_SIGNAL};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct IdentityHook {
    rpc: Arc<dyn ServerRpc>,
    /// The renewal loop of identities with a `ttl`, stopped with the task.
    renewer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl IdentityHook {
    pub fn new(rpc: Arc<dyn ServerRpc>) -> Self {
        IdentityHook {
            rpc,
            renewer: Mutex::new(None),
        }
    }

    fn stop_renewer(&self) {
        let h = match self.renewer.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = h {
            h.abort();
        }
    }
}

fn err(message: String) -> HookError {
    HookError {
        hook: "identity",
        message,
        recoverable: false,
    }
}

/// Each identity the task asked to see, with its token, file (relative to the task directory)
/// and variable.
fn wanted(ctx: &HookContext) -> Result<Vec<(WorkloadIdentity, String, String, String)>, HookError> {
    let task = &ctx.task.name;
    let mut out = Vec::new();
    let default = ctx.task.default_identity();
    if default.env || default.file {
        let token = ctx
            .alloc
            .signed_identities
            .get(task)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| err(format!("no workload identity was signed for task {task:?}")))?;
        out.push((
            default,
            token.clone(),
            "secrets/nomad_token".to_string(),
            "NOMAD_TOKEN".to_string(),
        ));
    }
    for id in ctx.task.named_identities() {
        if !(id.env || id.file) {
            continue;
        }
        let token = ctx
            .alloc
            .signed_named_identities
            .get(task)
            .and_then(|m| m.get(&id.name))
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                err(format!(
                    "no workload identity {:?} was signed for task {task:?}",
                    id.name
                ))
            })?;
        let file = format!("secrets/nomad_{}.jwt", id.name);
        let var = format!("NOMAD_TOKEN_{}", id.name);
        out.push((id, token.clone(), file, var));
    }
    Ok(out)
}

/// Writes `token` where `id` wants its file (`default_file` unless `filepath` is set).
async fn write_file(
    task_dir: &Path,
    id: &WorkloadIdentity,
    default_file: &str,
    token: &str,
) -> Result<(), HookError> {
    let rel = if id.filepath.is_empty() {
        default_file.to_string()
    } else {
        id.filepath.clone()
    };
    let dest = resolve_within(task_dir, &rel).map_err(|_| {
        err(format!(
            "identity {:?} file path {rel:?} escapes the task directory",
            id.handle()
        ))
    })?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| err(format!("creating {}: {e}", parent.display())))?;
    }
    // Replaced whole, so a task reading it never sees half a token.
    let tmp = dest.with_file_name(format!(
        ".{}.tmp",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("token")
    ));
    tokio::fs::write(&tmp, token.as_bytes())
        .await
        .map_err(|e| err(format!("writing {}: {e}", tmp.display())))?;
    tokio::fs::rename(&tmp, &dest)
        .await
        .map_err(|e| err(format!("writing {}: {e}", dest.display())))
}

/// One identity handed to the task: its block, current token, default file and variable.
type Handed = (WorkloadIdentity, String, String, String);

/// Writes the files and returns the variables, and what was handed out.
async fn hand_out(ctx: &HookContext) -> Result<(BTreeMap<String, String>, Vec<Handed>), HookError> {
    let task_dir = ctx.alloc_dir.task_dir(&ctx.task.name);
    let mut env = BTreeMap::new();
    let handed = wanted(ctx)?;
    for (id, token, default_file, var) in &handed {
        if id.env {
            env.insert(var.clone(), token.clone());
        }
        if id.file {
            write_file(&task_dir, id, default_file, token).await?;
        }
    }
    Ok((env, handed))
}

/// How long until a JWT's `exp` (none: it does not expire).
fn time_left(jwt: &str) -> Option<Duration> {
    let payload = jwt.split('.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let exp = claims["exp"].as_i64()?;
    let left = exp.saturating_mul(1_000_000_000) - time::now_nanos();
    Some(Duration::from_nanos(left.max(0) as u64))
}

/// When to renew next: halfway to the earliest expiry, at least a second from now.
fn next_renewal(handed: &[Handed]) -> Option<Duration> {
    handed
        .iter()
        .filter_map(|(_, token, _, _)| time_left(token))
        .min()
        .map(|left| (left / 2).max(Duration::from_secs(1)))
}

/// Renews the identities with a `ttl` until the task stops or its allocation is gone.
async fn renew(
    rpc: Arc<dyn ServerRpc>,
    alloc_id: String,
    task: String,
    task_dir: PathBuf,
    mut handed: Vec<Handed>,
    control: Option<Arc<dyn TaskControl>>,
) {
    handed.retain(|(id, _, _, _)| id.ttl > 0);
    let names: Vec<String> = handed
        .iter()
        .map(|(id, ..)| id.handle().to_string())
        .collect();
    while let Some(wait) = next_renewal(&handed) {
        tokio::time::sleep(wait).await;
        if control.as_ref().is_some_and(|c| c.killed()) {
            return;
        }
        let fresh = match rpc.sign_identities(&alloc_id, &task, names.clone()).await {
            Ok(f) => f,
            Err(e) if e.0.contains("terminal") || e.0.contains("not found") => {
                tracing::debug!(alloc = %alloc_id, %task, "identity renewal ends: {e}");
                return;
            }
            Err(e) => {
                tracing::warn!(alloc = %alloc_id, %task, "renewing workload identities: {e}");
                continue;
            }
        };
        let mut modes = Vec::new();
        for (id, token, default_file, _) in handed.iter_mut() {
            let Some(t) = fresh.get(id.handle()) else {
                continue;
            };
            *token = t.clone();
            if id.file {
                if let Err(e) = write_file(&task_dir, id, default_file, t).await {
                    tracing::warn!(alloc = %alloc_id, %task, "{e}");
                }
            }
            modes.push((
                id.handle().to_string(),
                id.change_mode.clone(),
                id.change_signal.clone(),
            ));
        }
        let Some(control) = &control else { continue };
        for (name, mode, signal) in modes {
            match mode.as_str() {
                "signal" if !signal.is_empty() => {
                    if let Err(e) = control.signal(&signal).await {
                        tracing::warn!(alloc = %alloc_id, %task, identity = %name, "signal after renewal: {e}");
                    }
                }
                "restart" => {
                    let ev = TaskEvent::new(
                        TASK_EVENT_RESTART_SIGNAL,
                        format!("Identity[{name}]: new identity token acquired"),
                    );
                    if let Err(e) = control.restart(ev) {
                        tracing::warn!(alloc = %alloc_id, %task, identity = %name, "restart after renewal: {e}");
                    }
                }
                _ => {}
            }
        }
    }
}

#[async_trait]
impl TaskHook for IdentityHook {
    fn name(&self) -> &'static str {
        "identity"
    }

    async fn prestart(&self, ctx: &mut HookContext) -> Result<(), HookError> {
        let (env, handed) = hand_out(ctx).await?;
        ctx.env.extend(env);
        if handed.iter().any(|(id, ..)| id.ttl > 0) {
            let h = tokio::spawn(renew(
                self.rpc.clone(),
                ctx.alloc.id.clone(),
                ctx.task.name.clone(),
                ctx.alloc_dir.task_dir(&ctx.task.name),
                handed,
                ctx.control.clone(),
            ));
            self.stop_renewer();
            match self.renewer.lock() {
                Ok(mut g) => *g = Some(h),
                Err(p) => *p.into_inner() = Some(h),
            }
        }
        Ok(())
    }

    /// The allocation was re-signed in place: the files follow.
    async fn update(&self, ctx: &HookContext) -> Result<(), HookError> {
        hand_out(ctx).await.map(|_| ())
    }

    async fn stop(&self, _ctx: &HookContext) -> Result<(), HookError> {
        self.stop_renewer();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::allocdir::AllocDir;
    use crate::client::rpc::RpcError;
    use caravan_structs::{Allocation, Node, Task};
    use serde_json::json;
    use std::time::Instant;

    fn ctx(root: &std::path::Path, task: Task, alloc: Allocation) -> HookContext {
        let alloc_dir = AllocDir::new(root, "a1");
        alloc_dir.build().unwrap();
        alloc_dir.build_task("t").unwrap();
        HookContext {
            alloc: Arc::new(alloc),
            task,
            alloc_dir,
            env: BTreeMap::new(),
            stdout_path: root.join("out"),
            stderr_path: root.join("err"),
            events: vec![],
            task_env: None,
            node: Arc::new(Node::default()),
            driver_mounts: false,
            mounts: vec![],
            consul: None,
            control: None,
            vault: None,
            restoring: false,
        }
    }

    /// A server that only renews identities, counting the calls.
    #[derive(Default)]
    struct Renewer {
        calls: std::sync::atomic::AtomicUsize,
    }

    fn jwt_expiring_in(secs: i64, tag: &str) -> String {
        let exp = time::now_nanos() / 1_000_000_000 + secs;
        format!(
            "h.{}.{tag}",
            URL_SAFE_NO_PAD.encode(json!({ "exp": exp }).to_string())
        )
    }

    #[async_trait]
    impl ServerRpc for Renewer {
        async fn register(&self, _: Node) -> Result<Duration, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn heartbeat(&self, _: &str, _: &str) -> Result<Duration, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_allocs(
            &self,
            _: &str,
            _: u64,
            _: Duration,
        ) -> Result<(Vec<Arc<Allocation>>, u64), RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn update_allocs(&self, _: Vec<Allocation>) -> Result<(), RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_alloc(&self, _: &str) -> Result<Option<Arc<Allocation>>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn get_node(&self, _: &str) -> Result<Option<Arc<Node>>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn migrate_token(&self, _: &str) -> Result<Option<String>, RpcError> {
            Err(RpcError("unused".into()))
        }
        async fn sign_identities(
            &self,
            _: &str,
            _: &str,
            names: Vec<String>,
        ) -> Result<BTreeMap<String, String>, RpcError> {
            let n = self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n > 1 {
                return Err(RpcError("allocation a1 is terminal".into()));
            }
            Ok(names
                .into_iter()
                .map(|name| (name, jwt_expiring_in(3600, "renewed")))
                .collect())
        }
    }

    fn hook() -> IdentityHook {
        IdentityHook::new(Arc::new(Renewer::default()))
    }

    fn alloc() -> Allocation {
        let mut a = Allocation::default();
        a.signed_identities.insert("t".into(), "d.e.f".into());
        a.signed_named_identities
            .entry("t".into())
            .or_default()
            .insert("vault".into(), "v.w.x".into());
        a
    }

    #[tokio::test]
    async fn default_and_named_identities_reach_files_and_env_as_asked() {
        let dir = std::env::temp_dir().join(format!("wid-hook-{}", caravan_structs::new_id()));
        let task = Task {
            name: "t".into(),
            identity: Some(json!({"Env": true, "File": true})),
            identities: vec![json!({"Name": "vault", "File": true})],
            ..Default::default()
        };
        let mut c = ctx(&dir, task, alloc());
        hook().prestart(&mut c).await.unwrap();
        let secrets = c.alloc_dir.task_dir("t").join("secrets");
        assert_eq!(
            std::fs::read_to_string(secrets.join("nomad_token")).unwrap(),
            "d.e.f"
        );
        assert_eq!(
            std::fs::read_to_string(secrets.join("nomad_vault.jwt")).unwrap(),
            "v.w.x"
        );
        assert_eq!(c.env.get("NOMAD_TOKEN").map(String::as_str), Some("d.e.f"));
        assert!(
            !c.env.contains_key("NOMAD_TOKEN_vault"),
            "env not asked for"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn nothing_is_handed_out_unless_asked_and_a_missing_token_fails() {
        let dir = std::env::temp_dir().join(format!("wid-hook-{}", caravan_structs::new_id()));
        let plain = Task {
            name: "t".into(),
            ..Default::default()
        };
        let mut c = ctx(&dir, plain, alloc());
        hook().prestart(&mut c).await.unwrap();
        assert!(c.env.is_empty());
        assert!(!c
            .alloc_dir
            .task_dir("t")
            .join("secrets/nomad_token")
            .exists());

        let wants = Task {
            name: "t".into(),
            identity: Some(json!({"Env": true})),
            ..Default::default()
        };
        let mut c = ctx(&dir, wants, Allocation::default());
        let e = hook().prestart(&mut c).await.unwrap_err();
        assert!(e.message.contains("no workload identity was signed"), "{e}");

        let escaping = Task {
            name: "t".into(),
            identity: Some(json!({"File": true, "Filepath": "../../x"})),
            ..Default::default()
        };
        let mut c = ctx(&dir, escaping, alloc());
        let e = hook().prestart(&mut c).await.unwrap_err();
        assert!(e.message.contains("escapes the task directory"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn identities_with_a_ttl_are_renewed_into_their_file() {
        let dir = std::env::temp_dir().join(format!("wid-hook-{}", caravan_structs::new_id()));
        let task = Task {
            name: "t".into(),
            identities: vec![json!({"Name": "short", "File": true, "TTL": 2_000_000_000i64})],
            ..Default::default()
        };
        let mut a = Allocation::default();
        let first = jwt_expiring_in(2, "first");
        a.signed_named_identities
            .entry("t".into())
            .or_default()
            .insert("short".into(), first.clone());
        let rpc = Arc::new(Renewer::default());
        let h = IdentityHook::new(rpc.clone());
        let mut c = ctx(&dir, task, a);
        h.prestart(&mut c).await.unwrap();
        let file = c.alloc_dir.task_dir("t").join("secrets/nomad_short.jwt");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&file)
            .unwrap_or_default()
            .ends_with(".renewed")
        {
            assert!(Instant::now() < deadline, "the identity was not renewed");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The renewed token lasts an hour: the next renewal is far off.
        assert_eq!(rpc.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        h.stop(&c).await.unwrap();
        assert!(h.renewer.lock().unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn renewal_waits_half_the_time_left_and_never_for_tokens_without_expiry() {
        let id = WorkloadIdentity::default();
        let h = |t: String| (id.clone(), t, String::new(), String::new());
        assert_eq!(next_renewal(&[h("a.b.c".into())]), None);
        let wait =
            next_renewal(&[h(jwt_expiring_in(100, "x")), h(jwt_expiring_in(3600, "y"))]).unwrap();
        assert!(
            wait <= Duration::from_secs(50) && wait >= Duration::from_secs(40),
            "{wait:?}"
        );
        assert_eq!(
            next_renewal(&[h(jwt_expiring_in(-5, "x"))]),
            Some(Duration::from_secs(1))
        );
    }
}
