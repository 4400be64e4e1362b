//! The errors a driver reports, worded so that an operator knows what to do about them.

use thiserror::Error;

/// Everything a driver call can fail with.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DriverError {
    /// The driver knows no task with this id (never started, destroyed, or not recovered).
    #[error("task {0:?} not found in this driver")]
    TaskNotFound(String),
    /// A task with this id is already running in this driver.
    #[error("task {0:?} is already started")]
    TaskAlreadyExists(String),
    /// The task's `config {}` block (or another part of the task) is not usable.
    #[error("invalid task config: {0}")]
    InvalidConfig(String),
    /// The driver is not enabled on this client (e.g. raw_exec without `enabled = true`).
    #[error("driver {0:?} is disabled on this client; enable it in the client's plugin config")]
    Disabled(String),
    /// The task could not be started; carries the OS error text.
    #[error("{0}")]
    Start(String),
    /// A signal name that is not known.
    #[error("unknown signal {0:?}; use a name such as SIGINT, SIGTERM, SIGHUP or SIGKILL")]
    UnknownSignal(String),
    /// Sending a signal failed.
    #[error("failed to signal task: {0}")]
    Signal(String),
    /// `destroy` without `force` on a task that still runs.
    #[error("task {0:?} is still running; stop it first or destroy with force")]
    TaskRunning(String),
    /// A task handle could not be re-attached after an agent restart.
    #[error("failed to recover task: {0}")]
    Recover(String),
    /// A command run inside the task's context failed or timed out.
    #[error("exec in task failed: {0}")]
    Exec(String),
    /// The driver does not implement this operation.
    #[error("operation not supported by driver {driver:?}: {op}")]
    Unsupported { driver: String, op: String },
    /// Anything else, with the underlying error text.
    #[error("{0}")]
    Other(String),
}
