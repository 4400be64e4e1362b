//! What the client keeps on disk about each task so that a new agent process can take over
//! from one that stopped or crashed: the task's state (events, restarts, running or dead),
//! written on every change, and the driver's handle, written when the task starts. Both live
//! in `<data_dir>/client/allocs/<alloc>/`.

use caravan_driver::TaskHandle;
use caravan_structs::{TaskState, TASK_STATE_DEAD, TASK_STATE_RUNNING};
use std::path::{Path, PathBuf};

/// Where an allocation's task states and handles are kept.
pub fn alloc_dir(data_dir: &Path, alloc_id: &str) -> PathBuf {
    data_dir.join("client").join("allocs").join(alloc_id)
}

/// A task as the previous agent process left it.
#[derive(Debug, Clone)]
pub struct Restored {
    pub state: TaskState,
    /// The handle to re-attach with: only for a task that was running.
    pub handle: Option<TaskHandle>,
}

/// Reads a task's persisted state and handle. None when the task never ran on this client
/// (or its state cannot be read: it then starts afresh). A task that was between runs
/// (pending a restart) is resumed from that state without a handle.
pub fn load(state_path: &Path, handle_path: &Path) -> Option<Restored> {
    let bytes = std::fs::read(state_path).ok()?;
    let mut state: TaskState = match serde_json::from_slice(&bytes) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(path = ?state_path, "ignoring unreadable task state: {e}");
            return None;
        }
    };
    let handle = if state.state == TASK_STATE_RUNNING {
        match std::fs::read(handle_path).map(|b| serde_json::from_slice::<TaskHandle>(&b)) {
            Ok(Ok(h)) => Some(h),
            Ok(Err(e)) => {
                tracing::warn!(path = ?handle_path, "ignoring unreadable task handle: {e}");
                None
            }
            Err(_) => None,
        }
    } else {
        None
    };
    if state.state != TASK_STATE_DEAD && handle.is_none() {
        // Not running, or running without a handle: it goes through start again.
        state.state = caravan_structs::TASK_STATE_PENDING.into();
    }
    Some(Restored { state, handle })
}

/// Whether the previous agent process left `task` of the allocation whose files are in
/// `dir` running (a state that says so and a handle to re-attach with).
pub fn was_running(dir: &Path, task: &str) -> bool {
    load(
        &dir.join(format!("{task}.state.json")),
        &dir.join(format!("{task}.handle.json")),
    )
    .is_some_and(|r| r.handle.is_some())
}

/// Writes a task's state (write to a temporary file, then rename: a crash leaves the old
/// state or the new one, never half of one).
pub fn save_state(path: &Path, state: &TaskState) {
    match serde_json::to_vec(state) {
        Ok(bytes) => write_atomic(path, &bytes),
        Err(e) => tracing::warn!("could not encode task state: {e}"),
    }
}

/// Writes the driver's handle of a task that just started.
pub fn save_handle(path: &Path, handle: &TaskHandle) {
    match serde_json::to_vec(handle) {
        Ok(bytes) => write_atomic(path, &bytes),
        Err(e) => tracing::warn!("could not encode task handle: {e}"),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    let res = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = res {
        tracing::warn!(?path, "could not persist task state: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::TASK_STATE_PENDING;

    fn state(s: &str) -> TaskState {
        TaskState {
            state: s.into(),
            restarts: 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_running_task_comes_back_with_its_handle() {
        let dir = tempfile::tempdir().unwrap();
        let (sp, hp) = (
            dir.path().join("t.state.json"),
            dir.path().join("t.handle.json"),
        );
        assert!(load(&sp, &hp).is_none(), "nothing persisted: a new task");
        save_state(&sp, &state(TASK_STATE_RUNNING));
        let h = TaskHandle {
            driver: "raw_exec".into(),
            pid: 42,
            ..Default::default()
        };
        save_handle(&hp, &h);
        let r = load(&sp, &hp).unwrap();
        assert_eq!(r.state.state, TASK_STATE_RUNNING);
        assert_eq!(r.state.restarts, 2);
        assert_eq!(r.handle, Some(h));
    }

    #[test]
    fn only_running_tasks_are_re_attached() {
        let dir = tempfile::tempdir().unwrap();
        let (sp, hp) = (
            dir.path().join("t.state.json"),
            dir.path().join("t.handle.json"),
        );
        save_handle(&hp, &TaskHandle::default());
        save_state(&sp, &state(TASK_STATE_DEAD));
        let r = load(&sp, &hp).unwrap();
        assert_eq!((r.state.state.as_str(), r.handle), (TASK_STATE_DEAD, None));
        // Waiting for a restart: the old handle is an exit already handled.
        save_state(&sp, &state(TASK_STATE_PENDING));
        let r = load(&sp, &hp).unwrap();
        assert_eq!(
            (r.state.state.as_str(), r.handle),
            (TASK_STATE_PENDING, None)
        );
        // Running, but the handle was never written (crash during start): start again.
        std::fs::remove_file(&hp).unwrap();
        save_state(&sp, &state(TASK_STATE_RUNNING));
        let r = load(&sp, &hp).unwrap();
        assert_eq!(
            (r.state.state.as_str(), r.handle),
            (TASK_STATE_PENDING, None)
        );
    }

    #[test]
    fn was_running_needs_a_running_state_and_a_handle() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(!was_running(d, "t"));
        save_state(&d.join("t.state.json"), &state(TASK_STATE_RUNNING));
        assert!(!was_running(d, "t"), "no handle");
        save_handle(&d.join("t.handle.json"), &TaskHandle::default());
        assert!(was_running(d, "t"));
        save_state(&d.join("t.state.json"), &state(TASK_STATE_DEAD));
        assert!(!was_running(d, "t"));
        assert_eq!(
            alloc_dir(Path::new("/d"), "a1"),
            PathBuf::from("/d/client/allocs/a1")
        );
    }

    #[test]
    fn unreadable_files_start_the_task_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let (sp, hp) = (
            dir.path().join("t.state.json"),
            dir.path().join("t.handle.json"),
        );
        std::fs::write(&sp, b"{not json").unwrap();
        assert!(load(&sp, &hp).is_none());
        save_state(&sp, &state(TASK_STATE_RUNNING));
        std::fs::write(&hp, b"[]").unwrap();
        let r = load(&sp, &hp).unwrap();
        assert_eq!(
            (r.state.state.as_str(), r.handle),
            (TASK_STATE_PENDING, None)
        );
    }
}
