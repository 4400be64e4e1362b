//! Getting a task's image onto the engine: reuse a local copy, pull it (with credentials,
//! `force_pull`, `image_pull_timeout`; `:latest` is always pulled, as Nomad does), or load it
//! from a tarball an artifact put in the task's `local/` directory (`load`). Concurrent pulls
//! of the same image share one request to the engine.

use crate::auth::{self, ImageRef};
use crate::engine::{describe, is_not_found, Engine};
use crate::plugin_config::DockerPluginConfig;
use crate::task_config::DockerTaskConfig;
use bollard::image::{CreateImageOptions, ImportImageOptions};
use caravan_driver::{DriverError, TaskConfig};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

type PullFuture = Shared<BoxFuture<'static, Result<String, String>>>;

/// Pulls in progress, keyed by image reference.
#[derive(Default)]
pub struct Puller {
    inflight: Mutex<HashMap<String, PullFuture>>,
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
        let shared = {
            let mut inflight = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            inflight
                .entry(tc.image.clone())
                .or_insert_with(|| {
                    pull(engine.clone(), tc.image.clone(), reference, creds, timeout)
                        .boxed()
                        .shared()
                })
                .clone()
        };
        let result = shared.await;
        self.inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&tc.image);
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

async fn pull(
    engine: Engine,
    image: String,
    reference: ImageRef,
    creds: Option<bollard::auth::DockerCredentials>,
    timeout: Duration,
) -> Result<String, String> {
    let started = std::time::Instant::now();
    tracing::info!(%image, "pulling image");
    let options = CreateImageOptions {
        from_image: reference.pull_name(),
        tag: reference.tag.clone(),
        ..Default::default()
    };
    let work = async {
        let mut stream = engine.stream.create_image(Some(options), None, creds);
        let mut layers = std::collections::BTreeSet::new();
        while let Some(item) = stream.next().await {
            let info =
                item.map_err(|e| format!("failed to pull image {image:?}: {}", describe(&e)))?;
            if let Some(err) = info.error {
                return Err(format!("failed to pull image {image:?}: {err}"));
            }
            if let Some(id) = info.id {
                layers.insert(id);
            }
        }
        tracing::info!(%image, layers = layers.len(), elapsed = ?started.elapsed(), "image pulled");
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
