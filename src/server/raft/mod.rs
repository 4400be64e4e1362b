//! Durable server state under `<data_dir>/server/`: the Raft log ([`log_store`], redb, in
//! `raft.db`) and state snapshots ([`snapshot`], in `snapshots/`). Every entry
//! [`Server::raft_apply`](super::Server::raft_apply) applies is appended here first (durable
//! when the redb commit returns); on start the newest readable snapshot is loaded and the
//! entries after it are replayed through the FSM, so the whole state comes back with the same
//! indexes. Every `snapshot_threshold` entries a snapshot is written and the log is compacted
//! below the previous one (two snapshots are kept, so a damaged newest one falls back to the
//! older one plus the log).
//!
//! The split follows openraft's storage traits: [`log_store::LogStore`] is the
//! `RaftLogStorage` half (append, truncate, purge, log state, vote), [`Persistence::recover`],
//! [`Persistence::snapshot_now`] and [`Persistence::install`] the `RaftStateMachine` half
//! (applied state, build snapshot, install snapshot). Until Raft replication exists there is
//! one server and one term ([`TERM`]).
//!
//! Files are the server's secrets (root keys, ACL tokens and variables are in the state):
//! the directories are 0700 and the files 0600.

pub mod log_store;
mod ops;
pub mod snapshot;
#[cfg(test)]
mod tests;

use super::command::LogEntry;
use super::events::EventBroker;
use crate::state::snapshot::StateImage;
use crate::state::StateStore;
use log_store::{LogId, LogRecord, LogStore, LogStoreError};
use snapshot::{SnapshotError, SnapshotFile, SnapshotMeta, SnapshotStore};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The only term until leader election exists.
pub const TERM: u64 = 1;
/// Nomad's `raft_snapshot_threshold` default: entries between snapshots.
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 8192;
/// Snapshots kept on disk.
const SNAPSHOTS_KEPT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Log(#[from] LogStoreError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("cannot create {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot recover the server state in {dir}: {msg}")]
    Unrecoverable { dir: PathBuf, msg: String },
}

/// What [`Persistence::recover`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The snapshot the state started from.
    pub snapshot_index: Option<u64>,
    /// Entries replayed after it.
    pub replayed: u64,
    /// The last applied index (the next write gets the one after).
    pub last_index: u64,
    /// Entries dropped from the tail because they were damaged (a torn write).
    pub dropped: u64,
    /// Snapshot files that could not be read, with why (an older one was used).
    pub unreadable_snapshots: Vec<String>,
}

pub struct Persistence {
    dir: PathBuf,
    pub log: LogStore,
    pub snapshots: SnapshotStore,
    threshold: u64,
    /// Index of the newest snapshot on disk (0: none).
    last_snapshot: AtomicU64,
    /// The background snapshot in progress, if any.
    building: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held while a snapshot is written or installed: one at a time, in index order.
    writing: Mutex<()>,
}

/// Creates `dir` (and parents) and narrows it to 0700.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

impl Persistence {
    /// Opens (creating) the server directory `dir` (`<data_dir>/server`).
    pub fn open(dir: &Path, snapshot_threshold: u64) -> Result<Persistence, PersistError> {
        create_private_dir(dir).map_err(|source| PersistError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let log = LogStore::open(&dir.join("raft.db"))?;
        let snapshots = SnapshotStore::open(&dir.join("snapshots"))?;
        Ok(Persistence {
            dir: dir.to_path_buf(),
            log,
            snapshots,
            threshold: snapshot_threshold.max(1),
            last_snapshot: AtomicU64::new(0),
            building: Mutex::new(None),
            writing: Mutex::new(()),
        })
    }

    /// [`Persistence::open`] then [`Persistence::recover`], with a panic inside the store
    /// (redb asserts on some kinds of file damage) turned into an error naming the dir.
    pub fn open_and_recover(
        dir: &Path,
        snapshot_threshold: u64,
        store: &StateStore,
        job_tracked_versions: usize,
    ) -> Result<(Persistence, Recovery), PersistError> {
        let run = std::panic::AssertUnwindSafe(|| {
            let p = Persistence::open(dir, snapshot_threshold)?;
            let r = p.recover(store, job_tracked_versions)?;
            Ok((p, r))
        });
        match std::panic::catch_unwind(run) {
            Ok(r) => r,
            Err(p) => {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown damage".into());
                Err(PersistError::Unrecoverable {
                    dir: dir.to_path_buf(),
                    msg: format!("the log database is damaged ({why}); restore the state from a snapshot (`operator snapshot restore`) into an empty data dir"),
                })
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads the newest readable snapshot into `store` and replays the log after it through
    /// the FSM (without publishing events: they happened before the restart). A damaged
    /// entry ends the replay: it and everything after it are dropped from the log (they were
    /// never acknowledged as a whole) and reported. An entry of a newer format stops the
    /// start instead: this server cannot apply it.
    pub fn recover(
        &self,
        store: &StateStore,
        job_tracked_versions: usize,
    ) -> Result<Recovery, PersistError> {
        let mut rec = Recovery::default();
        let mut base = 0u64;
        for file in self.snapshots.list()? {
            match self.snapshots.load(&file) {
                Ok((meta, image)) => {
                    let tables = image.into_tables(job_tracked_versions).map_err(|msg| {
                        PersistError::Unrecoverable {
                            dir: self.dir.clone(),
                            msg: format!("snapshot {}: {msg}", file.path.display()),
                        }
                    })?;
                    store.restore(tables);
                    base = meta.index;
                    rec.snapshot_index = Some(meta.index);
                    break;
                }
                Err(e) => {
                    tracing::error!(file = %file.path.display(), "unreadable snapshot, trying an older one: {e}");
                    rec.unreadable_snapshots
                        .push(format!("{}: {e}", file.path.display()));
                }
            }
        }
        self.last_snapshot.store(base, Ordering::SeqCst);
        let state = self.log.log_state()?;
        if let Some(p) = state.last_purged {
            if p.index > base {
                return Err(PersistError::Unrecoverable {
                    dir: self.dir.clone(),
                    msg: format!(
                        "the log was compacted through index {} but the newest readable snapshot is at {base}",
                        p.index
                    ),
                });
            }
        }
        let quiet = EventBroker::new(1, false);
        let mut expected = base + 1;
        let mut damage: Option<String> = None;
        for r in self.log.entries(expected..)? {
            if r.id.index != expected {
                damage = Some(format!(
                    "entry {expected} is missing (next is {})",
                    r.id.index
                ));
                break;
            }
            let entry = match LogEntry::decode(&r.payload) {
                Ok(e) => e,
                Err(e) if LogEntry::is_newer_format(&r.payload) => {
                    return Err(PersistError::Unrecoverable {
                        dir: self.dir.clone(),
                        msg: format!("entry {}: {e}", r.id.index),
                    })
                }
                Err(e) => {
                    damage = Some(format!("entry {} is damaged: {e}", r.id.index));
                    break;
                }
            };
            super::fsm::apply_at(store, &quiet, r.id.index, entry.time, &entry.command);
            rec.replayed += 1;
            expected += 1;
        }
        if let Some(why) = damage {
            rec.dropped = self.log.truncate(expected)?;
            tracing::error!(
                dir = %self.dir.display(),
                "dropped {} log entries from index {expected} on: {why}; the state is as of index {}",
                rec.dropped,
                expected - 1
            );
        }
        rec.last_index = expected - 1;
        tracing::info!(
            dir = %self.dir.display(),
            snapshot = ?rec.snapshot_index,
            replayed = rec.replayed,
            "server state restored through index {}",
            rec.last_index
        );
        Ok(rec)
    }

    /// Appends one encoded entry; durable when this returns.
    pub fn append(&self, index: u64, payload: Vec<u8>) -> Result<(), PersistError> {
        self.log.append(&[LogRecord {
            id: LogId { term: TERM, index },
            payload,
        }])?;
        Ok(())
    }

    /// Index of the newest snapshot on disk (0: none).
    pub fn last_snapshot_index(&self) -> u64 {
        self.last_snapshot.load(Ordering::SeqCst)
    }

    /// Starts a snapshot in the background when `index` is `snapshot_threshold` entries past
    /// the last one and none is being written.
    pub fn maybe_snapshot(self: &Arc<Self>, store: &Arc<StateStore>, index: u64) {
        if index < self.last_snapshot_index() + self.threshold {
            return;
        }
        let mut g = match self.building.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let (me, store) = (self.clone(), store.clone());
        *g = Some(std::thread::spawn(move || {
            if let Err(e) = me.snapshot_now(&store) {
                tracing::error!("cannot write a state snapshot: {e}");
            }
        }));
    }

    /// Waits for a background snapshot to finish.
    pub fn wait_snapshot(&self) {
        let h = match self.building.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(h) = h {
            let _ = h.join();
        }
    }

    /// Writes a snapshot of the state as it is now, keeps the newest two and compacts the log
    /// through the older one. Entries are durable before they are applied, so the state's
    /// index is always in the log.
    pub fn snapshot_now(&self, store: &StateStore) -> Result<SnapshotFile, PersistError> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let tables = store.snapshot();
        if tables.index <= self.last_snapshot_index() {
            // Nothing newer than the newest snapshot (or a restore replaced the state since
            // this was asked for): that one stands.
            if let Some(newest) = self.snapshots.list()?.into_iter().next() {
                return Ok(newest);
            }
        }
        let image = StateImage::from_tables(&tables);
        let (file, _) = self.snapshots.save(&image, TERM)?;
        self.snapshots.prune(SNAPSHOTS_KEPT)?;
        self.last_snapshot.fetch_max(file.index, Ordering::SeqCst);
        let kept = self.snapshots.list()?;
        if let Some(oldest) = kept.last() {
            // The oldest snapshot kept still has its log after it; nothing before is needed.
            if kept.len() >= SNAPSHOTS_KEPT {
                self.log.purge(LogId {
                    term: oldest.term,
                    index: oldest.index,
                })?;
            }
        }
        tracing::info!(
            index = file.index,
            "wrote state snapshot {}",
            file.path.display()
        );
        Ok(file)
    }

    /// Replaces everything with `image` (already at its new index): writes it as the only
    /// snapshot and empties the log, so neither an older snapshot nor old entries can come
    /// back on the next start.
    pub fn install(&self, image: &StateImage) -> Result<SnapshotMeta, PersistError> {
        self.wait_snapshot();
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let (file, meta) = self.snapshots.save(image, TERM)?;
        self.snapshots.remove_all_but(&file)?;
        self.log.purge(LogId {
            term: TERM,
            index: image.index,
        })?;
        self.last_snapshot.store(image.index, Ordering::SeqCst);
        Ok(meta)
    }
}
