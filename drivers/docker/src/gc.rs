//! Garbage collection of what the docker driver leaves on the engine (Nomad's docker
//! `gc {}`): images no task uses any more, removed `image_delay` after the last task using
//! them is destroyed (`gc { image, image_delay }`), and dangling containers, reaped every
//! `period` (`gc { dangling_containers { enabled, period, creation_grace, dry_run } }`).
//!
//! Images are counted by the reference the task named (`image = "..."`), so removing one
//! untags that reference; the engine deletes the image once no reference or container is left.

use crate::engine::{describe, is_not_found, Engine};
use crate::plugin_config::{DanglingContainers, GcConfig};
use crate::spec::{LABEL_CARAVAN_DRIVER, LABEL_CARAVAN_MANAGED};
use crate::task_config::parse_go_duration;
use bollard::container::{ListContainersOptions, RemoveContainerOptions};
use bollard::image::RemoveImageOptions;
use caravan_driver::{procfs, DriverError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Nomad's default `image_delay`.
const DEFAULT_IMAGE_DELAY: Duration = Duration::from_secs(180);

/// Counts the tasks using each image and removes unused ones after the delay.
pub struct ImageGc {
    enabled: bool,
    delay: Duration,
    endpoint: String,
    refs: Mutex<HashMap<String, usize>>,
}

impl ImageGc {
    pub fn new(cfg: &GcConfig, endpoint: &str) -> Arc<ImageGc> {
        Arc::new(ImageGc {
            enabled: cfg.image,
            delay: parse_go_duration(&cfg.image_delay).unwrap_or(DEFAULT_IMAGE_DELAY),
            endpoint: endpoint.to_string(),
            refs: Mutex::new(HashMap::new()),
        })
    }

    fn refs(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.refs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tasks using `image` now.
    pub fn users(&self, image: &str) -> usize {
        self.refs().get(image).copied().unwrap_or(0)
    }

    /// One more task uses `image` (from before its pull until its destroy).
    pub fn acquire(self: &Arc<Self>, image: &str) -> ImageUse {
        if !image.is_empty() {
            *self.refs().entry(image.to_string()).or_default() += 1;
        }
        ImageUse {
            gc: self.clone(),
            image: image.to_string(),
            kept: false,
        }
    }

    /// A task stopped using `image`; once none does, it is removed after the delay unless a
    /// task takes it up again meanwhile.
    pub fn release(self: &Arc<Self>, image: &str) {
        if image.is_empty() {
            return;
        }
        let unused = {
            let mut refs = self.refs();
            match refs.get_mut(image) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    refs.remove(image);
                    true
                }
                None => false,
            }
        };
        if !unused || !self.enabled {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let gc = self.clone();
        let image = image.to_string();
        rt.spawn(async move {
            tokio::time::sleep(gc.delay).await;
            if gc.users(&image) > 0 {
                return;
            }
            gc.remove(&image).await;
        });
    }

    async fn remove(&self, image: &str) {
        let engine = match Engine::connect(&self.endpoint) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(%image, "image gc: {e}");
                return;
            }
        };
        match engine
            .api
            .remove_image(
                image,
                Some(RemoveImageOptions {
                    force: false,
                    noprune: false,
                }),
                None,
            )
            .await
        {
            Ok(_) => tracing::info!(%image, "removed image no task uses"),
            Err(e) if is_not_found(&e) => {}
            // Still used by a container Caravan does not run (409), or the engine is away.
            Err(e) => tracing::info!(%image, "image gc: not removed: {}", describe(&e)),
        }
    }
}

/// A task's use of an image; given back on drop unless [`ImageUse::keep`] hands it to the task
/// (then the task's destroy gives it back).
pub struct ImageUse {
    gc: Arc<ImageGc>,
    image: String,
    kept: bool,
}

impl ImageUse {
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for ImageUse {
    fn drop(&mut self) {
        if !self.kept {
            self.gc.release(&self.image);
        }
    }
}

/// Removes containers labelled as Caravan's, made by the `driver` flavour (or unlabelled as to
/// which), that are not in `tracked` and older than `grace`. Returns the ids removed (or that
/// would be, with `dry_run`).
pub async fn remove_dangling(
    engine: &Engine,
    driver: &str,
    tracked: &HashSet<String>,
    grace: Duration,
    dry_run: bool,
) -> Result<Vec<String>, DriverError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_CARAVAN_MANAGED}=true")],
    )]);
    let list = engine
        .api
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters,
            ..Default::default()
        }))
        .await
        .map_err(|e| crate::engine::engine_error(&engine.endpoint, e))?;
    let now = procfs::now_nanos() / 1_000_000_000;
    let mut removed = Vec::new();
    for c in list {
        let Some(id) = c.id else { continue };
        let other_flavour = c
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CARAVAN_DRIVER))
            .is_some_and(|d| d != driver);
        if other_flavour
            || tracked.contains(&id)
            || now - c.created.unwrap_or(now) < grace.as_secs() as i64
        {
            continue;
        }
        if !dry_run {
            let r = engine
                .api
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
            match r {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => continue,
                Err(e) => {
                    tracing::warn!(container = %id, "cannot remove dangling container: {}", describe(&e));
                    continue;
                }
            }
        }
        tracing::info!(container = %id, dry_run, "removed dangling container");
        removed.push(id);
    }
    Ok(removed)
}

/// The reaper's settings, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaperSettings {
    pub period: Duration,
    pub grace: Duration,
    pub dry_run: bool,
}

impl ReaperSettings {
    /// `None` when reaping is off.
    pub fn of(cfg: &GcConfig) -> Result<Option<ReaperSettings>, DriverError> {
        let d = cfg.dangling_containers.clone().unwrap_or_default();
        if !d.enabled {
            return Ok(None);
        }
        let dur = |name: &str, v: &str, default: &str| {
            let v = if v.trim().is_empty() { default } else { v };
            parse_go_duration(v).ok_or_else(|| {
                DriverError::InvalidConfig(format!(
                    "docker plugin config: gc.dangling_containers.{name} {v:?} is not a duration \
                     such as \"5m\""
                ))
            })
        };
        let defaults = DanglingContainers::default();
        let period = dur("period", &d.period, &defaults.period)?;
        if period.is_zero() {
            return Err(DriverError::InvalidConfig(
                "docker plugin config: gc.dangling_containers.period must be above zero".into(),
            ));
        }
        Ok(Some(ReaperSettings {
            period,
            grace: dur(
                "creation_grace",
                &d.creation_grace,
                &defaults.creation_grace,
            )?,
            dry_run: d.dry_run,
        }))
    }
}

/// Reaps every `period` (the first time one period after the start); `tracked` gives the
/// containers of the driver's tasks at that moment.
pub async fn reaper_loop(
    endpoint: String,
    driver: &'static str,
    settings: ReaperSettings,
    tracked: impl Fn() -> HashSet<String> + Send + 'static,
) {
    loop {
        tokio::time::sleep(settings.period).await;
        let engine = match Engine::connect(&endpoint) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("dangling container reaper: {e}");
                continue;
            }
        };
        match remove_dangling(
            &engine,
            driver,
            &tracked(),
            settings.grace,
            settings.dry_run,
        )
        .await
        {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(
                    count = ids.len(),
                    dry_run = settings.dry_run,
                    "dangling containers reaped"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("dangling container reaper: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaper_settings_follow_nomad_defaults() {
        let s = ReaperSettings::of(&GcConfig::default()).unwrap().unwrap();
        assert_eq!(
            s,
            ReaperSettings {
                period: Duration::from_secs(300),
                grace: Duration::from_secs(300),
                dry_run: false
            }
        );
        let mut cfg = GcConfig {
            dangling_containers: Some(DanglingContainers {
                enabled: false,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(ReaperSettings::of(&cfg).unwrap(), None);
        cfg.dangling_containers = Some(DanglingContainers {
            period: "soon".into(),
            ..Default::default()
        });
        let e = ReaperSettings::of(&cfg).unwrap_err();
        assert!(
            e.to_string().contains("gc.dangling_containers.period"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_image_is_released_only_when_its_last_user_goes() {
        let gc = ImageGc::new(
            &GcConfig {
                image: false,
                ..Default::default()
            },
            "unix:///nonexistent.sock",
        );
        gc.acquire("a:1").keep();
        gc.acquire("a:1").keep();
        drop(gc.acquire("a:1"));
        assert_eq!(gc.users("a:1"), 2, "a dropped use is given back");
        gc.release("a:1");
        assert_eq!(gc.users("a:1"), 1);
        gc.release("a:1");
        gc.release("a:1");
        assert_eq!(gc.users("a:1"), 0);
    }
}
