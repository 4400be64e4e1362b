//! [`JavaDriver`]: the [`Driver`] implementation. It turns a java task into an exec task
//! running `java` and delegates everything else to a wrapped [`ExecDriver`]; its own work
//! is the `java -version` fingerprint and keeping task handles labelled `java`.

use crate::config::JavaTaskConfig;
use crate::version::{Probe, ProbeResult};
use caravan_driver::{
    async_trait, Driver, DriverError, ExecResult, ExitResult, Fingerprint, TaskConfig, TaskHandle,
    TaskResourceUsage, TaskStatus,
};
use caravan_driver_exec::{ExecDriver, ExecDriverConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// The driver's name in job files.
pub const DRIVER_NAME: &str = "java";

/// How long `fingerprint` waits for a `java -version` probe still running; past it the
/// driver reports itself undetected until a later fingerprint (every 15 s) sees the result.
pub const FINGERPRINT_WAIT: Duration = Duration::from_secs(2);

/// A probe that found no usable java is run again when a fingerprint comes this long after
/// it started, so a JDK installed after the agent is picked up.
pub const REPROBE_AFTER: Duration = Duration::from_secs(10);

/// Runs jars and classes with the host's `java`, isolated like `exec` (Nomad's `java`).
pub struct JavaDriver {
    exec: ExecDriver,
    java: PathBuf,
    probe: Mutex<Probe>,
}

impl JavaDriver {
    /// A java driver with the exec driver's options (see [`java_exec_config`] for the
    /// client's `user.*` options). Starts probing `java -version` (the `java` on the
    /// agent's `PATH`) in the background at once.
    pub fn new(config: ExecDriverConfig) -> Self {
        Self::with_java(config, "java")
    }

    /// Like [`JavaDriver::new`], probing the given `java` program for the fingerprint
    /// (tasks still find `java` through the chroot's `PATH`).
    pub fn with_java(config: ExecDriverConfig, java: impl Into<PathBuf>) -> Self {
        let java = java.into();
        let probe = Probe::start(&java);
        JavaDriver {
            exec: ExecDriver::new(config),
            java,
            probe: Mutex::new(probe),
        }
    }

    /// A java driver built from the exec driver's options and the client's `options`:
    /// `user.denylist` holds for java tasks only when `user.checked_drivers` (default
    /// `exec,qemu,java`) names `java`.
    pub fn from_exec_config(config: ExecDriverConfig, options: &BTreeMap<String, String>) -> Self {
        Self::new(java_exec_config(config, options))
    }

    /// The wrapped exec driver.
    pub fn exec_driver(&self) -> &ExecDriver {
        &self.exec
    }

    /// The `java` program the fingerprint probes.
    pub fn java_program(&self) -> &Path {
        &self.java
    }

    fn probe(&self) -> MutexGuard<'_, Probe> {
        self.probe.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The probe's result within [`FINGERPRINT_WAIT`], starting a new probe when the last
    /// one failed long enough ago.
    async fn java_version(&self) -> Option<ProbeResult> {
        let probe = self.probe().clone();
        let result = probe.result_within(FINGERPRINT_WAIT).await;
        if matches!(result, Some(Err(_))) && probe.started().elapsed() >= REPROBE_AFTER {
            let mut cur = self.probe();
            if cur.started() == probe.started() {
                *cur = Probe::start(&self.java);
            }
        }
        result
    }
}

/// The exec driver's options as they apply to java tasks: the exec driver's, with the
/// `user.denylist` re-derived for `java` from the client's `user.checked_drivers`.
pub fn java_exec_config(
    mut config: ExecDriverConfig,
    options: &BTreeMap<String, String>,
) -> ExecDriverConfig {
    config.user_denylist = ExecDriverConfig::default().user_denylist;
    let opts = as_exec_options(options);
    config.apply_user_options(
        opts.get("user.denylist").map(String::as_str),
        opts.get("user.checked_drivers").map(String::as_str),
    );
    config
}

/// The client's options with `user.checked_drivers` rewritten from java's point of view
/// into the exec driver's: `exec` when the list names `java`, nothing otherwise.
fn as_exec_options(options: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut out = options.clone();
    if let Some(checked) = options.get("user.checked_drivers") {
        let java_checked = checked.split(',').any(|d| d.trim() == DRIVER_NAME);
        out.insert(
            "user.checked_drivers".into(),
            if java_checked {
                caravan_driver_exec::DRIVER_NAME
            } else {
                ""
            }
            .into(),
        );
    }
    out
}

/// The task config the exec driver gets for a java task.
fn to_exec_task(mut cfg: TaskConfig) -> Result<TaskConfig, DriverError> {
    cfg.driver_config = JavaTaskConfig::parse(&cfg.driver_config)?.to_exec_config();
    Ok(cfg)
}

#[async_trait]
impl Driver for JavaDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    fn supports_mounts(&self) -> bool {
        self.exec.supports_mounts()
    }

    /// `user.denylist` and `user.checked_drivers` (as they name `java`) apply to tasks
    /// started from now on.
    fn reload_options(&self, options: &BTreeMap<String, String>) -> bool {
        self.exec.reload_options(&as_exec_options(options))
    }

    async fn fingerprint(&self) -> Fingerprint {
        let exec = self.exec.fingerprint().await;
        let mut fp = Fingerprint::default();
        if !exec.healthy {
            fp.detected = exec.detected;
            fp.health_description = format!(
                "java driver needs what the exec driver needs: {}",
                exec.health_description
            );
            return fp;
        }
        match self.java_version().await {
            None => {
                fp.health_description = format!(
                    "checking the host's java: {:?} -version has not answered yet",
                    self.java
                );
            }
            Some(Err(e)) => fp.health_description = e,
            Some(Ok(v)) => {
                let attrs = [
                    ("driver.java", "1".to_string()),
                    ("driver.java.version", v.version),
                    ("driver.java.runtime", v.runtime),
                    ("driver.java.vm", v.vm),
                ];
                fp.attributes = attrs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
                fp.detected = true;
                fp.healthy = true;
                fp.health_description = "Healthy".into();
            }
        }
        fp
    }

    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError> {
        let original = cfg.driver_config.clone();
        let mut handle = self
            .exec
            .start(to_exec_task(cfg)?)
            .await
            .map_err(|e| match e {
                DriverError::Start(m) if m.contains("command \"java\"") => {
                    DriverError::Start(format!(
                "{m}; the java driver runs the java found on the chroot's PATH: make sure a \
                 JDK/JRE is installed under a path in the client's chroot_env (e.g. /usr)"
            ))
                }
                other => other,
            })?;
        handle.driver = DRIVER_NAME.to_string();
        handle.config.driver_config = original;
        tracing::info!(task = %handle.task_id, pid = handle.pid, "java task started");
        Ok(handle)
    }

    async fn wait(&self, task_id: &str) -> Result<ExitResult, DriverError> {
        self.exec.wait(task_id).await
    }

    async fn stop(
        &self,
        task_id: &str,
        timeout: Duration,
        signal: &str,
    ) -> Result<(), DriverError> {
        self.exec.stop(task_id, timeout, signal).await
    }

    async fn destroy(&self, task_id: &str, force: bool) -> Result<(), DriverError> {
        self.exec.destroy(task_id, force).await
    }

    async fn inspect(&self, task_id: &str) -> Result<TaskStatus, DriverError> {
        self.exec.inspect(task_id).await
    }

    async fn signal(&self, task_id: &str, signal: &str) -> Result<(), DriverError> {
        self.exec.signal(task_id, signal).await
    }

    async fn exec(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResult, DriverError> {
        self.exec.exec(task_id, cmd, timeout).await
    }

    fn exec_isolated(&self) -> bool {
        self.exec.exec_isolated()
    }

    async fn exec_streaming(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        tty: bool,
        io: caravan_driver::ExecStreamIo,
    ) -> Result<i32, DriverError> {
        self.exec.exec_streaming(task_id, cmd, tty, io).await
    }

    async fn stats(&self, task_id: &str) -> Result<TaskResourceUsage, DriverError> {
        self.exec.stats(task_id).await
    }

    async fn recover(&self, mut handle: TaskHandle) -> Result<(), DriverError> {
        if handle.driver != DRIVER_NAME {
            return Err(DriverError::Recover(format!(
                "handle of task {:?} belongs to driver {:?}, not {DRIVER_NAME}",
                handle.task_id, handle.driver
            )));
        }
        handle.config = to_exec_task(handle.config).map_err(|e| {
            DriverError::Recover(format!(
                "the java config of task {:?} in its handle is unusable: {e}",
                handle.task_id
            ))
        })?;
        handle.driver = caravan_driver_exec::DRIVER_NAME.to_string();
        self.exec.recover(handle).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn denylist_follows_checked_drivers_naming_java() {
        let base = ExecDriverConfig::default();
        let c = java_exec_config(base.clone(), &opts(&[]));
        assert_eq!(c.user_denylist, vec!["root"], "Nomad's default denies root");
        let c = java_exec_config(
            base.clone(),
            &opts(&[
                ("user.denylist", "root,admin"),
                ("user.checked_drivers", "exec,java"),
            ]),
        );
        assert_eq!(c.user_denylist, vec!["root", "admin"]);
        // Only exec checked: java tasks may run as anyone.
        let c = java_exec_config(
            base.clone(),
            &opts(&[
                ("user.denylist", "root,admin"),
                ("user.checked_drivers", "exec"),
            ]),
        );
        assert!(c.user_denylist.is_empty(), "{:?}", c.user_denylist);
        // An exec config whose denylist was cleared for exec still denies for java.
        let cleared = ExecDriverConfig {
            user_denylist: Vec::new(),
            ..Default::default()
        };
        let c = java_exec_config(cleared, &opts(&[("user.checked_drivers", "qemu, java")]));
        assert_eq!(c.user_denylist, vec!["root"]);
    }

    #[tokio::test]
    async fn missing_java_is_undetected_with_a_clear_description() {
        let d = JavaDriver::with_java(ExecDriverConfig::default(), "/nonexistent/bin/java");
        let fp = d.fingerprint().await;
        assert!(!fp.detected && !fp.healthy, "{fp:?}");
        assert!(fp.attributes.is_empty(), "{fp:?}");
        // Without root the exec driver's reason comes first; with it, java's absence.
        assert!(
            fp.health_description.contains("java not found")
                && fp.health_description.contains("/nonexistent/bin/java")
                || fp.health_description.contains("exec driver needs"),
            "{}",
            fp.health_description
        );
        assert_eq!(d.name(), "java");
    }

    #[tokio::test]
    async fn bad_config_is_refused_before_anything_starts() {
        let d = JavaDriver::with_java(ExecDriverConfig::default(), "/nonexistent/bin/java");
        let cfg = TaskConfig {
            id: "a/t".into(),
            driver_config: serde_json::json!({"jar_path": "x.jar", "bogus": 1})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..Default::default()
        };
        let e = d.start(cfg).await.unwrap_err();
        assert!(e.to_string().contains("\"bogus\""), "{e}");
        let h = TaskHandle {
            driver: "exec".into(),
            ..Default::default()
        };
        let e = d.recover(h).await.unwrap_err();
        assert!(e.to_string().contains("not java"), "{e}");
    }
}
