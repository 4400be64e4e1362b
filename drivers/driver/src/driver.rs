//! The [`Driver`] trait: what the client asks of every task driver.
//!
//! A task's lifecycle as a driver sees it (Nomad's `plugins/drivers/driver.go` is the model):
//!
//! ```text
//!                    start(cfg) ──────────────► Err(DriverError)   (nothing left behind)
//!                        │ Ok(TaskHandle)  ─── the client persists the handle
//!                        ▼
//!   recover(handle) ─► RUNNING ◄──────────┐    signal(id, sig)   exec(id, cmd)
//!   (new agent        │  │                └─── stats(id)         inspect(id)
//!    process)         │  │
//!                     │  │ stop(id, timeout, sig): sig to the process group,
//!                     │  │   SIGKILL to the group after `timeout`
//!          task exits │  ▼
//!          by itself  └► EXITED ── wait(id) resolves with the ExitResult
//!                          │       (may be called before or after the exit, any number of times)
//!                          │ destroy(id, force)
//!                          ▼
//!                      DESTROYED  (unknown to the driver: calls give TaskNotFound)
//!
//!   destroy(id, force = true) on a RUNNING task kills it first;
//!   destroy(id, force = false) on a RUNNING task is DriverError::TaskRunning.
//! ```
//!
//! The trait is object safe (methods are `async` through [`async_trait`]), so the client keeps
//! drivers as `Arc<dyn Driver>`. Implement it with `#[caravan_driver::async_trait]`.

use crate::error::DriverError;
use crate::exec_stream::ExecStreamIo;
use crate::fingerprint::Fingerprint;
use crate::stats::TaskResourceUsage;
use crate::task::{ExecResult, ExitResult, TaskConfig, TaskHandle, TaskStatus};
use async_trait::async_trait;
use std::time::Duration;

/// A task driver. Every method that names a task takes its id (`TaskConfig::id`).
#[async_trait]
pub trait Driver: Send + Sync {
    /// The driver's name as job files spell it (`raw_exec`, `docker`).
    fn name(&self) -> &str;

    /// Whether the driver can bind host paths into a task ([`crate::TaskConfig::mounts`]);
    /// Nomad's `MountConfigs` capability. Drivers without isolation (raw_exec) cannot.
    fn supports_mounts(&self) -> bool {
        false
    }

    /// The client's `options` changed (a config reload). Returns whether the driver's own
    /// settings changed, so the client re-fingerprints it. Tasks already running keep going.
    fn reload_options(&self, _options: &std::collections::BTreeMap<String, String>) -> bool {
        false
    }

    /// Node attributes and health for the client's fingerprint.
    async fn fingerprint(&self) -> Fingerprint;

    /// Starts a task. On success the task is RUNNING and the handle lets a later agent
    /// process `recover` it.
    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError>;

    /// Resolves when the task exits (at once if it already has).
    async fn wait(&self, task_id: &str) -> Result<ExitResult, DriverError>;

    /// Sends `signal` (empty: SIGINT) to the task's processes, then SIGKILL after `timeout`
    /// if any remain. Returns once the task's processes are gone.
    async fn stop(&self, task_id: &str, timeout: Duration, signal: &str)
        -> Result<(), DriverError>;

    /// Forgets the task and frees what the driver holds for it. A running task is killed when
    /// `force`, otherwise it is an error.
    async fn destroy(&self, task_id: &str, force: bool) -> Result<(), DriverError>;

    /// The task's current state.
    async fn inspect(&self, task_id: &str) -> Result<TaskStatus, DriverError>;

    /// Sends a signal (a name such as `SIGHUP`) to the task.
    async fn signal(&self, task_id: &str, signal: &str) -> Result<(), DriverError>;

    /// Runs a command in the task's context and returns its output, killing it after
    /// `timeout`.
    async fn exec(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResult, DriverError>;

    /// Whether a command run in the task is kept off the host's filesystem (Nomad's
    /// `FSIsolation` other than none). Without isolation, `alloc exec` also needs the
    /// `alloc-node-exec` capability, as in Nomad.
    fn exec_isolated(&self) -> bool {
        false
    }

    /// Runs a command in the task's context interactively (`alloc exec`): its input and
    /// output flow through `io` (see [`crate::exec_stream`]), with a pseudo-terminal as its
    /// controlling terminal when `tty`. Returns its exit code. When the caller goes away
    /// (`io.input` closes) the command is killed.
    async fn exec_streaming(
        &self,
        _task_id: &str,
        _cmd: Vec<String>,
        _tty: bool,
        _io: ExecStreamIo,
    ) -> Result<i32, DriverError> {
        Err(DriverError::Unsupported {
            driver: self.name().to_string(),
            op: "interactive exec (alloc exec)".into(),
        })
    }

    /// CPU and memory of the task's processes.
    async fn stats(&self, task_id: &str) -> Result<TaskResourceUsage, DriverError>;

    /// Re-attaches to a task started by an earlier agent process; afterwards the other
    /// methods work on it.
    async fn recover(&self, handle: TaskHandle) -> Result<(), DriverError>;

    /// Events about tasks the driver reports while it works on them (image pull progress),
    /// for the client to record; `None` when the driver has none. Each call is a new receiver.
    fn task_events(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<crate::task_events::TaskDriverEvent>> {
        None
    }
}
