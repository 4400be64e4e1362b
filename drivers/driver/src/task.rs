//! The data that crosses the driver interface for one task: what to run ([`TaskConfig`]), how to
//! find it again after an agent restart ([`TaskHandle`]), and what became of it
//! ([`TaskStatus`], [`ExitResult`], [`ExecResult`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The format version of [`TaskHandle`]; bump when its meaning changes.
pub const HANDLE_VERSION: u32 = 1;

/// The resources a task asked for (already reserved by the scheduler).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResources {
    /// CPU shares (Nomad's `cpu` in MHz is used as the share weight).
    pub cpu_shares: i64,
    /// Memory reservation in MiB.
    pub memory_mb: i64,
    /// Memory hard limit in MiB when oversubscription is on (0: same as `memory_mb`).
    pub memory_max_mb: i64,
}

/// Everything a driver needs to start one task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskConfig {
    /// Unique task id, `"<alloc_id>/<task>"`.
    pub id: String,
    /// Task name from the job file.
    pub name: String,
    pub alloc_id: String,
    pub job_name: String,
    pub task_group: String,
    /// The task's `config {}` block, already interpolated by the client.
    pub driver_config: serde_json::Map<String, serde_json::Value>,
    /// The complete environment of the task; drivers add nothing from the agent's own.
    pub env: BTreeMap<String, String>,
    /// User to run as; empty means the agent's user.
    pub user: String,
    pub alloc_dir: PathBuf,
    /// Working directory of the task's process.
    pub task_dir: PathBuf,
    pub local_dir: PathBuf,
    pub secrets_dir: PathBuf,
    /// Where the task's stdout goes: normally a FIFO read by [`crate::LogMon`].
    pub stdout_path: PathBuf,
    /// Where the task's stderr goes: normally a FIFO read by [`crate::LogMon`].
    pub stderr_path: PathBuf,
    pub resources: TaskResources,
    /// Host paths bound into the task (`volume_mount` of host volumes); only drivers whose
    /// [`crate::Driver::supports_mounts`] is true get any.
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
}

/// One host path bind-mounted into the task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    pub host_path: PathBuf,
    /// Where the task sees it: absolute inside the task's root (containers, chroots).
    pub task_path: String,
    pub readonly: bool,
}

/// What a driver returns from `start` and needs for `recover`; the client persists it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskHandle {
    /// Handle format version ([`HANDLE_VERSION`] when written).
    pub version: u32,
    /// Name of the driver that started the task.
    pub driver: String,
    /// The task id (same as `config.id`).
    pub task_id: String,
    /// The task's configuration as started.
    pub config: TaskConfig,
    /// Pid of the task's main process (0 for drivers without a host process).
    pub pid: i32,
    /// Start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22), to tell a
    /// reused pid apart from the task's process.
    pub process_start_ticks: u64,
    /// When the task started, Unix nanoseconds.
    pub started_at: i64,
    /// Driver-specific state (e.g. a container id); `null` when unused.
    #[serde(default)]
    pub driver_state: serde_json::Value,
}

/// How a task ended. Maps onto Nomad's `ExitResult`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitResult {
    pub exit_code: i32,
    /// Signal that killed the task, 0 if it exited by itself.
    pub signal: i32,
    pub oom_killed: bool,
    /// Set when the driver could not observe a normal exit.
    pub err: Option<String>,
}

impl ExitResult {
    /// True when the task exited by itself with code 0.
    pub fn successful(&self) -> bool {
        self.exit_code == 0 && self.signal == 0 && self.err.is_none()
    }
}

/// Whether a task is running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    #[default]
    Unknown,
    Running,
    Exited,
}

/// A snapshot of one task as the driver sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub id: String,
    pub name: String,
    pub state: TaskState,
    /// Unix nanoseconds.
    pub started_at: i64,
    /// Unix nanoseconds; `None` while running.
    pub completed_at: Option<i64>,
    /// Set once the task exited.
    pub exit_result: Option<ExitResult>,
}

/// Output of a command run inside a task's context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_roundtrips_through_json() {
        let mut cfg = TaskConfig {
            id: "a1/web".into(),
            name: "web".into(),
            ..Default::default()
        };
        cfg.env.insert("A".into(), "b".into());
        cfg.driver_config
            .insert("command".into(), serde_json::json!("/bin/true"));
        let h = TaskHandle {
            version: HANDLE_VERSION,
            driver: "raw_exec".into(),
            task_id: cfg.id.clone(),
            config: cfg,
            pid: 42,
            process_start_ticks: 1234,
            started_at: 5,
            driver_state: serde_json::Value::Null,
        };
        let s = serde_json::to_string(&h).unwrap();
        let back: TaskHandle = serde_json::from_str(&s).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn exit_result_success() {
        assert!(ExitResult::default().successful());
        let r = ExitResult {
            signal: 9,
            ..Default::default()
        };
        assert!(!r.successful());
    }
}
