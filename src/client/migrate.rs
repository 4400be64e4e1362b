//! Sticky ephemeral disks: an allocation that replaces one on this node with
//! `ephemeral_disk { sticky = true }` (or `migrate = true`) waits for its predecessor's tasks
//! to end, then takes over its `alloc/data` and each task's `local/` directory (moved, not
//! copied), as Nomad's alloc watcher does on the same node. With `migrate = true` and a
//! predecessor on another node, it waits for the servers to report that allocation stopped,
//! then fetches its snapshot from that node's HTTP API
//! (`/v1/client/allocation/:id/snapshot`); if the node cannot be reached the allocation
//! starts with an empty disk, as in Nomad.

use super::alloc_runner::AllocRunner;
use super::allocdir::AllocDir;
use super::rpc::ServerRpc;
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

/// How often a predecessor on another node is looked up while it stops.
const REMOTE_POLL: Duration = Duration::from_millis(250);

/// Waits for the predecessor (if it still runs here) and moves its data into `to`, or with
/// `migrate` fetches it from the node it ran on. Returns what was moved, for logs and tests.
pub async fn take_over(
    previous: Option<Arc<AllocRunner>>,
    data_dir: &Path,
    rpc: &dyn ServerRpc,
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
        if !group.ephemeral_disk.migrate {
            tracing::debug!(alloc = %alloc.id, previous = %alloc.previous_allocation,
                "previous allocation's directory is not on this node; starting with an empty disk");
            return vec![];
        }
        return match pull_remote(rpc, alloc, group, to).await {
            Ok((node, files)) => {
                tracing::info!(alloc = %alloc.id, previous = %alloc.previous_allocation, %node,
                    files, "migrated the previous allocation's ephemeral disk from its node");
                vec![format!("{files} files from node {node}")]
            }
            Err(e) => {
                tracing::warn!(alloc = %alloc.id, previous = %alloc.previous_allocation,
                    "could not migrate the ephemeral disk, starting with an empty one: {e}");
                vec![]
            }
        };
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

/// Fetches the predecessor's snapshot from the node it ran on, once the servers say it
/// stopped there (or `WAIT_LIMIT` passed), and unpacks it into `to`. Returns the node's name
/// and the number of files restored.
async fn pull_remote(
    rpc: &dyn ServerRpc,
    alloc: &Allocation,
    group: &TaskGroup,
    to: &AllocDir,
) -> Result<(String, usize), String> {
    let prev_id = &alloc.previous_allocation;
    let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
    let prev = loop {
        let prev = rpc
            .get_alloc(prev_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("the servers do not know allocation {prev_id}"))?;
        if prev.client_terminal() || tokio::time::Instant::now() >= deadline {
            break prev;
        }
        tokio::time::sleep(REMOTE_POLL).await;
    };
    let node = rpc
        .get_node(&prev.node_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("the servers do not know node {}", prev.node_id))?;
    if node.http_addr.is_empty() {
        return Err(format!("node {} has no HTTP address", node.name));
    }
    let url = format!(
        "http://{}/v1/client/allocation/{prev_id}/snapshot",
        node.http_addr
    );
    let token = rpc
        .migrate_token(prev_id)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut resp = http
        .get(&url)
        .header("X-Nomad-Token", token)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?;
    // Spooled to a file beside the allocation, so a large disk is never held in memory.
    let spool = to.root.with_file_name(format!(".{}.migrate.tar", alloc.id));
    let mut file = tokio::fs::File::create(&spool)
        .await
        .map_err(|e| format!("{}: {e}", spool.display()))?;
    let copied: Result<(), String> = async {
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            file.write_all(&chunk)
                .await
                .map_err(|e| format!("{}: {e}", spool.display()))?;
        }
        file.flush().await.map_err(|e| e.to_string())
    }
    .await;
    drop(file);
    let restored = match copied {
        Ok(()) => {
            let (spool, to, tasks) = (
                spool.clone(),
                to.clone(),
                group
                    .tasks
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>(),
            );
            tokio::task::spawn_blocking(move || {
                let f = std::fs::File::open(&spool)?;
                super::snapshot::restore(std::io::BufReader::new(f), &to, &tasks)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| format!("unpacking the snapshot: {e}")))
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_file(&spool);
    Ok((node.name.clone(), restored?))
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
        let server = crate::server::Server::new(Default::default());
        let rpc = super::super::rpc::InProcess(server);
        let moved = take_over(None, &data, &rpc, &alloc, &group, &new).await;
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
