//! Sticky ephemeral disks: an allocation that replaces one on this node with
//! `ephemeral_disk { sticky = true }` (or `migrate = true`) waits for its predecessor's tasks
//! to end, then takes over its `alloc/data` and each task's `local/` directory (moved, not
//! copied), as Nomad's alloc watcher does on the same node. Moving data between nodes
//! (`migrate` across clients) is not built.

use super::alloc_runner::AllocRunner;
use super::allocdir::AllocDir;
use caravan_structs::{Allocation, TaskGroup};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a replacement waits for its predecessor's tasks to stop before taking its data
/// anyway.
const WAIT_LIMIT: Duration = Duration::from_secs(120);

/// Whether `alloc` should inherit its predecessor's data here.
pub fn wants_previous(alloc: &Allocation, group: &TaskGroup) -> bool {
    !alloc.previous_allocation.is_empty()
        && (group.ephemeral_disk.sticky || group.ephemeral_disk.migrate)
}

/// Waits for the predecessor (if it still runs here) and moves its data into `to`. Returns
/// what was moved, for logs and tests.
pub async fn take_over(
    previous: Option<Arc<AllocRunner>>,
    data_dir: &Path,
    alloc: &Allocation,
    group: &TaskGroup,
    to: &AllocDir,
) -> Vec<String> {
    if let Some(prev) = previous {
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        while !prev.finished() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let from = AllocDir::new(data_dir, &alloc.previous_allocation);
    if !from.root.is_dir() {
        tracing::debug!(alloc = %alloc.id, previous = %alloc.previous_allocation,
            "previous allocation's directory is not on this node; starting with an empty disk");
        return vec![];
    }
    let mut moved = Vec::new();
    let mut pairs = vec![(from.shared_dir().join("data"), to.shared_dir().join("data"))];
    for t in &group.tasks {
        pairs.push((from.local_dir(&t.name), to.local_dir(&t.name)));
    }
    for (src, dst) in pairs {
        if !src.is_dir() {
            continue;
        }
        match move_dir(&src, &dst) {
            Ok(()) => moved.push(dst.display().to_string()),
            Err(e) => tracing::warn!(alloc = %alloc.id,
                "could not move {} from the previous allocation: {e}", src.display()),
        }
    }
    tracing::info!(alloc = %alloc.id, previous = %alloc.previous_allocation,
        dirs = moved.len(), "took over the previous allocation's ephemeral disk");
    moved
}

/// Replaces `dst` (empty or absent) with `src`.
fn move_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if dst.exists() {
        // A freshly built, empty directory; refuse to clobber anything else.
        std::fs::remove_dir(dst)?;
    }
    std::fs::rename(src, dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::Task;

    #[tokio::test]
    async fn data_and_local_dirs_move_to_the_replacement() {
        let data =
            std::env::temp_dir().join(format!("caravan-migrate-{}", caravan_structs::new_id()));
        let old = AllocDir::new(&data, "old");
        old.build().expect("build");
        old.build_task("web").expect("task");
        std::fs::write(old.shared_dir().join("data/state"), "42").expect("write");
        std::fs::write(old.local_dir("web").join("cache"), "c").expect("write");
        let new = AllocDir::new(&data, "new");
        new.build().expect("build");
        let alloc = Allocation {
            id: "new".into(),
            previous_allocation: "old".into(),
            ..Default::default()
        };
        let mut group = TaskGroup {
            tasks: vec![Task {
                name: "web".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(!wants_previous(&alloc, &group));
        group.ephemeral_disk.sticky = true;
        assert!(wants_previous(&alloc, &group));
        let moved = take_over(None, &data, &alloc, &group, &new).await;
        assert_eq!(moved.len(), 2, "{moved:?}");
        assert_eq!(
            std::fs::read_to_string(new.shared_dir().join("data/state"))
                .ok()
                .as_deref(),
            Some("42")
        );
        assert_eq!(
            std::fs::read_to_string(new.local_dir("web").join("cache"))
                .ok()
                .as_deref(),
            Some("c")
        );
        assert!(!old.shared_dir().join("data").exists());
        // A non-empty destination is never clobbered.
        let other = AllocDir::new(&data, "other");
        other.build().expect("build");
        std::fs::write(other.shared_dir().join("data/keep"), "k").expect("write");
        assert!(move_dir(
            &new.shared_dir().join("data"),
            &other.shared_dir().join("data")
        )
        .is_err());
        assert!(other.shared_dir().join("data/keep").exists());
        let _ = std::fs::remove_dir_all(data);
    }
}
