//! Getting a task's image onto the engine: reuse a local copy, pull it (with credentials,
//! `force_pull`, `image_pull_timeout`; `:latest` is always pulled, as Nomad does), or load it
//! from a tarball an artifact put in the task's `local/` directory (`load`). Concurrent pulls
//! of the same image share one request to the engine; its progress is reported to every task
//! waiting for it (see [`crate::pull_progress`]). A pull that shows no progress for the
//! plugin's `pull_activity_timeout` is abandoned.

use crate::auth::{self, ImageRef};
use crate::engine::{describe, is_not_found, Engine};
use crate::plugin_config::DockerPluginConfig;
use crate::pull_progress::{Progress, Watcher, Watchers};
use crate::task_config::DockerTaskConfig;
use bollard::image::{CreateImageOptions, ImportImageOptions};
use caravan_driver::task_events::TaskEventSender;
use caravan_driver::{DriverError, TaskConfig};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type PullFuture = Shared<BoxFuture<'static, Result<String, String>>>;

/// Pulls in progress, keyed by image reference, with the tasks waiting for each.
pub struct Puller {
    inflight: Mutex<HashMap<String, (PullFuture, Watchers)>>,
    /// Where pull progress goes (the driver's task events).
    events: TaskEventSender,
    /// How often a running pull reports its progress.
    pub progress_interval: Duration,
}

impl Puller {
    pub fn new(events: TaskEventSender) -> Puller {
        Puller {
            inflight: Mutex::new(HashMap::new()),
            events,
            progress_interval: crate::pull_progress::DEFAULT_INTERVAL,
        }
    }
}

impl Puller {
    /// Makes sure the task's image is present and returns its id.
    pub async fn ensure(
        &self,
        engine: &Engine,
        task: &TaskConfig,
        tc: &DockerTaskConfig,
        plugin: &DockerPluginConfig,
    ) -> Result<String, DriverError> {
        if !tc.load.is_empty() {
            load(engine, task, &tc.load).await?;
            return inspect_id(engine, &tc.image).await?.ok_or_else(|| {
                DriverError::Start(format!(
                    "image {:?} is not in the loaded archive {:?}; check the image name and tag",
                    tc.image, tc.load
                ))
            });
        }
        let reference = ImageRef::parse(&tc.image);
        if !tc.force_pull && reference.tag != "latest" {
            if let Some(id) = inspect_id(engine, &tc.image).await? {
                return Ok(id);
            }
        }
        let creds = match auth::resolve(&reference, tc.auth.as_ref(), plugin.auth.as_ref()) {
            Ok(c) => c,
            Err(e) if tc.auth_soft_fail => {
                tracing::warn!(image = %tc.image, "registry credentials unavailable, pulling anonymously (auth_soft_fail): {e}");
                None
            }
            Err(e) => return Err(e),
        };
        let timeout = tc.pull_timeout()?;
        let activity = plugin.pull_activity_timeout();
        let shared = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match inflight.get(&tc.image) {
                Some((fut, watchers)) => {
                    let me = Watcher::of(task);
                    crate::pull_progress::joined(&self.events, &me, &tc.image);
                    watchers.lock().unwrap_or_else(|e| e.into_inner()).push(me);
                    tracing::debug!(image = %tc.image, task = %task.id, "joining a pull in progress");
                    fut.clone()
                }
                None => {
                    let watchers: Watchers = Arc::new(Mutex::new(vec![Watcher::of(task)]));
                    let progress = Progress::start(
                        &tc.image,
                        self.events.clone(),
                        watchers.clone(),
                        self.progress_interval,
                    );
                    let fut = pull(
                        engine.clone(),
                        tc.image.clone(),
                        reference,
                        creds,
                        Limits { timeout, activity },
                        progress,
                    )
                    .boxed()
                    .shared();
                    inflight.insert(tc.image.clone(), (fut.clone(), watchers));
                    fut
                }
            }
        };
        let result = shared.clone().await;
        {
            // Only the entry of this pull (a later pull of the same image may have begun).
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if inflight
                .get(&tc.image)
                .is_some_and(|(f, _)| f.ptr_eq(&shared))
            {
                inflight.remove(&tc.image);
            }
        }
        result.map_err(DriverError::Start)
    }
}

/// The id of a local image, `None` if the engine has no such image.
async fn inspect_id(engine: &Engine, image: &str) -> Result<Option<String>, DriverError> {
    match engine.api.inspect_image(image).await {
        Ok(i) => Ok(i.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(DriverError::Start(format!(
            "cannot inspect image {image:?}: {}",
            describe(&e)
        ))),
    }
}

/// How long a pull may take in all, and without any progress.
#[derive(Debug, Clone, Copy)]
struct Limits {
    timeout: Duration,
    /// `None`: no limit on a pull without progress.
    activity: Option<Duration>,
}

async fn pull(
    engine: Engine,
    image: String,
    reference: ImageRef,
    creds: Option<bollard::auth::DockerCredentials>,
    limits: Limits,
    mut progress: Progress,
) -> Result<String, String> {
    let started = std::time::Instant::now();
    tracing::info!(%image, "pulling image");
    let options = CreateImageOptions {
        from_image: reference.pull_name(),
        tag: reference.tag.clone(),
        ..Default::default()
    };
    let Limits { timeout, activity } = limits;
    let work = async {
        let mut stream = engine.stream.create_image(Some(options), None, creds);
        loop {
            let next = match activity {
                Some(limit) => tokio::time::timeout(limit, stream.next()).await,
                None => Ok(stream.next().await),
            };
            let item = match next {
                Ok(Some(item)) => item,
                Ok(None) => break,
                Err(_) => {
                    return Err(format!(
                        "pulling image {image:?} made no progress for {:?} \
                         (pull_activity_timeout)",
                        activity.unwrap_or_default()
                    ))
                }
            };
            let info =
                item.map_err(|e| format!("failed to pull image {image:?}: {}", describe(&e)))?;
            if let Some(err) = info.error {
                return Err(format!("failed to pull image {image:?}: {err}"));
            }
            progress.update(&info);
        }
        progress.finish();
        tracing::info!(%image, elapsed = ?started.elapsed(), "image pulled");
        Ok(())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(format!(
                "pulling image {image:?} did not finish within image_pull_timeout ({timeout:?})"
            ))
        }
    }
    match engine.api.inspect_image(&image).await {
        Ok(i) => {
            i.id.ok_or_else(|| format!("the engine reports no id for pulled image {image:?}"))
        }
        Err(e) => Err(format!(
            "image {image:?} is not present after pulling it: {}",
            describe(&e)
        )),
    }
}

/// Loads `local/<archive>` (a `docker save` tarball) into the engine.
async fn load(engine: &Engine, task: &TaskConfig, archive: &str) -> Result<(), DriverError> {
    let path = task.local_dir.join(archive);
    if !path.starts_with(&task.local_dir) || archive.split('/').any(|c| c == "..") {
        return Err(DriverError::InvalidConfig(format!(
            "\"load\" {archive:?} must be a path inside the task's local directory"
        )));
    }
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        DriverError::Start(format!(
            "cannot read image archive {path:?} named by \"load\" (is it fetched by an artifact \
             block into local/?): {e}"
        ))
    })?;
    let mut stream =
        engine
            .stream
            .import_image(ImportImageOptions { quiet: true }, bytes.into(), None);
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| {
            DriverError::Start(format!(
                "failed to load image archive {path:?}: {}",
                describe(&e)
            ))
        })?;
        if let Some(err) = info.error {
            return Err(DriverError::Start(format!(
                "failed to load image archive {path:?}: {err}"
            )));
        }
    }
    tracing::info!(?path, "image archive loaded");
    Ok(())
}
