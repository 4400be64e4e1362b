//! Client garbage collection: finished allocations lose their directories and saved task
//! handles when the client tracks more than `gc_max_allocs`, when the disk holding the data
//! dir passes `gc_disk_usage_threshold` or `gc_inode_usage_threshold` (checked every
//! `gc_interval`), when the servers forget them, or on request; at most
//! `gc_parallel_destroys` are torn down at once, oldest first.

use super::alloc_runner::AllocRunner;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Semaphore;

/// The client's `gc_*` settings, Nomad's defaults.
#[derive(Debug, Clone)]
pub struct GcSettings {
    pub interval: Duration,
    pub max_allocs: usize,
    /// Percent of the data dir's disk in use above which finished allocations are collected.
    pub disk_usage_threshold: f64,
    pub inode_usage_threshold: f64,
    pub parallel_destroys: usize,
}

impl Default for GcSettings {
    fn default() -> Self {
        GcSettings {
            interval: Duration::from_secs(60),
            max_allocs: 50,
            disk_usage_threshold: 80.0,
            inode_usage_threshold: 70.0,
            parallel_destroys: 2,
        }
    }
}

/// How full the filesystem holding a path is, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    pub used_percent: f64,
    pub inodes_used_percent: f64,
}

pub fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    let pct = |total: u64, free: u64| {
        if total == 0 {
            0.0
        } else {
            100.0 * (total.saturating_sub(free)) as f64 / total as f64
        }
    };
    Ok(DiskUsage {
        used_percent: pct(st.blocks() as u64, st.blocks_available() as u64),
        inodes_used_percent: pct(st.files() as u64, st.files_available() as u64),
    })
}

pub struct Collector {
    pub settings: GcSettings,
    destroy_slots: Arc<Semaphore>,
    /// Allocations collected here while the servers still list them: never started again,
    /// forgotten once the servers drop them too.
    collected: Mutex<HashSet<String>>,
}

type Runners = HashMap<String, Arc<AllocRunner>>;

impl Collector {
    pub fn new(settings: GcSettings) -> Collector {
        Collector {
            destroy_slots: Arc::new(Semaphore::new(settings.parallel_destroys.max(1))),
            settings,
            collected: Mutex::new(HashSet::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<String>> {
        match self.collected.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whether this client already collected the allocation.
    pub fn was_collected(&self, alloc_id: &str) -> bool {
        self.lock().contains(alloc_id)
    }

    /// Forgets collected allocations the servers no longer list.
    pub fn retain_listed(&self, listed: &HashSet<String>) {
        self.lock().retain(|id| listed.contains(id));
    }

    /// Removes the allocations from `runners` and tears them down in the background.
    pub fn collect(&self, runners: &mut Runners, ids: &[String], reason: &str) -> usize {
        let mut n = 0;
        let mut collected = self.lock();
        for id in ids {
            if let Some(r) = runners.remove(id) {
                collected.insert(id.clone());
                tokio::spawn(destroy(r, reason.to_string(), self.destroy_slots.clone()));
                n += 1;
            }
        }
        n
    }

    /// Tears down an allocation the servers forgot (it may still run).
    pub fn forget(&self, r: Arc<AllocRunner>, reason: &str) {
        tokio::spawn(destroy(r, reason.to_string(), self.destroy_slots.clone()));
    }

    /// The finished allocations to collect so that at most `max_allocs` are tracked.
    pub fn over_max(&self, runners: &Runners) -> Vec<String> {
        let excess = runners.len().saturating_sub(self.settings.max_allocs);
        oldest_finished(runners, excess)
    }

    /// Whether the data dir's disk is past either threshold.
    pub fn disk_pressure(&self, data_dir: &Path) -> Option<DiskUsage> {
        match disk_usage(data_dir) {
            Ok(u)
                if u.used_percent > self.settings.disk_usage_threshold
                    || u.inodes_used_percent > self.settings.inode_usage_threshold =>
            {
                Some(u)
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!("cannot read disk usage of {}: {e}", data_dir.display());
                None
            }
        }
    }
}

/// Up to `n` finished allocations, oldest (lowest modify index) first.
pub fn oldest_finished(runners: &Runners, n: usize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let mut finished: Vec<(u64, String)> = runners
        .values()
        .filter(|r| r.finished())
        .map(|r| (r.current().modify_index, r.alloc_id.clone()))
        .collect();
    finished.sort();
    finished.into_iter().take(n).map(|(_, id)| id).collect()
}

/// Stops what still runs of an allocation, then removes its directory and saved handles.
async fn destroy(r: Arc<AllocRunner>, reason: String, slots: Arc<Semaphore>) {
    let _slot = slots.acquire_owned().await;
    for t in r.tasks() {
        t.kill(&reason);
    }
    for t in r.tasks() {
        t.wait_done().await;
    }
    if let Err(e) = r.alloc_dir.destroy() {
        tracing::warn!(alloc = %r.alloc_id, "could not remove alloc dir: {e}");
    }
    if let Err(e) = std::fs::remove_dir_all(&r.handles_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(alloc = %r.alloc_id, "could not remove {}: {e}", r.handles_dir.display());
        }
    }
    tracing::debug!(alloc = %r.alloc_id, %reason, "allocation garbage collected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_usage_reads_the_data_dir_filesystem() {
        let u = disk_usage(Path::new("/")).expect("statvfs /");
        assert!((0.0..=100.0).contains(&u.used_percent), "{u:?}");
        assert!((0.0..=100.0).contains(&u.inodes_used_percent), "{u:?}");
        assert!(disk_usage(Path::new("/no/such/dir/anywhere")).is_err());
    }

    #[test]
    fn thresholds_decide_pressure() {
        let tmp = std::env::temp_dir();
        let mut s = GcSettings {
            disk_usage_threshold: 100.0,
            inode_usage_threshold: 100.0,
            ..Default::default()
        };
        assert!(Collector::new(s.clone()).disk_pressure(&tmp).is_none());
        s.disk_usage_threshold = -1.0;
        assert!(Collector::new(s).disk_pressure(&tmp).is_some());
    }
}
