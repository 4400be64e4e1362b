//! Events a driver reports about a task while it works on it (Nomad's driver `TaskEvents`
//! stream), for the client to record on the task: image pull progress, for one. A driver that
//! has any hands out receivers from [`crate::Driver::task_events`].

use std::collections::BTreeMap;

/// One event about one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskDriverEvent {
    /// The task's id ([`crate::TaskConfig::id`], `"<alloc_id>/<task>"`).
    pub task_id: String,
    pub alloc_id: String,
    /// The task's name in its group.
    pub task_name: String,
    /// What an operator reads.
    pub message: String,
    /// Machine-readable details (recorded as the task event's details).
    pub details: BTreeMap<String, String>,
    /// Bytes done so far when this is a progress report: such an event replaces the task's
    /// last event when that one is a progress report too, so a long pull shows one line that
    /// moves instead of many.
    pub progress_bytes: Option<u64>,
}

/// Where a driver sends its task events (receivers come from `subscribe`).
pub type TaskEventSender = tokio::sync::broadcast::Sender<TaskDriverEvent>;

/// A sender with room for `capacity` events per slow receiver (older ones are dropped).
pub fn channel(capacity: usize) -> TaskEventSender {
    tokio::sync::broadcast::channel(capacity.max(1)).0
}
