//! The durable Raft log: every encoded [`LogEntry`](crate::server::command::LogEntry) the
//! server applies, by index, with its term, in a `redb` database (`<data_dir>/server/raft.db`).
//!
//! Why redb: a pure-Rust embedded key-value store (no C toolchain, no background threads)
//! with ACID transactions, copy-on-write B-trees and checksummed commits. A write transaction
//! that returned from `commit()` is on disk (fsync'd, `Durability::Immediate`); a crash in the
//! middle of a commit leaves the previous commit intact, which is exactly what a Raft log
//! needs. It is widely used (it backs several production Rust databases) and its file format
//! is stable across 2.x.
//!
//! The API is shaped like openraft's `RaftLogStorage` so openraft can sit on it next:
//! [`LogStore::append`] (append entries, durable on return), [`LogStore::truncate`] (drop a
//! conflicting suffix), [`LogStore::purge`] (drop a prefix that a snapshot covers, remembering
//! the last purged log id), [`LogStore::log_state`] (last purged and last log ids),
//! [`LogStore::entries`] (read a range) and [`LogStore::save_vote`]/[`LogStore::read_vote`].
//!
//! Record layout: key = index (u64), value = term (u64, little-endian) followed by the
//! entry's bytes as `LogEntry::encode` wrote them.

use redb::{Database, ReadableTable, TableDefinition};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const META_LAST_PURGED: &str = "last_purged";
const META_VOTE: &str = "vote";

#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("raft log {path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: Box<redb::Error>,
    },
    #[error("raft log {path}: {msg}")]
    Corrupt { path: PathBuf, msg: String },
    #[error("raft log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A redb error, boxed (redb's are large): what the transaction closures return.
#[derive(Debug)]
pub struct DbError(Box<redb::Error>);

impl<E: Into<redb::Error>> From<E> for DbError {
    fn from(e: E) -> Self {
        DbError(Box::new(e.into()))
    }
}

/// A log position: Raft's `LogId` (the leader's term and the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogId {
    pub term: u64,
    pub index: u64,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub id: LogId,
    pub payload: Vec<u8>,
}

/// What the log holds: openraft's `LogState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LogState {
    /// The newest entry removed by [`LogStore::purge`] (covered by a snapshot).
    pub last_purged: Option<LogId>,
    /// The newest entry in the log, or `last_purged` when the log is empty.
    pub last: Option<LogId>,
}

pub struct LogStore {
    db: Database,
    path: PathBuf,
}

impl LogStore {
    /// Opens (or creates) the log at `path`; a new file is created readable by its owner only.
    pub fn open(path: &Path) -> Result<LogStore, LogStoreError> {
        let io = |source| LogStoreError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open_private(path).map_err(io)?;
        // redb asserts (panics) on some damage, e.g. a file shorter than its header says (a
        // crash cannot do that: redb sizes the file before writing into it, but a copy or a
        // full disk can): that is an error here, not a crash of the agent.
        let opened = std::panic::catch_unwind(|| redb::Builder::new().create_file(file));
        let db = match opened {
            Ok(r) => r.map_err(|e| LogStoreError::Db {
                path: path.to_path_buf(),
                source: Box::new(e.into()),
            })?,
            Err(p) => {
                let why = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown damage".into());
                return Err(LogStoreError::Corrupt {
                    path: path.to_path_buf(),
                    msg: format!("the database file is damaged ({why}); restore it from a snapshot (`operator snapshot restore`)"),
                });
            }
        };
        let store = LogStore {
            db,
            path: path.to_path_buf(),
        };
        // Both tables exist from the first open on, so readers never see "no such table".
        store.write(|tx| {
            tx.open_table(LOG)?;
            tx.open_table(META)?;
            Ok(())
        })?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl Into<DbError>) -> LogStoreError {
        LogStoreError::Db {
            path: self.path.clone(),
            source: e.into().0,
        }
    }

    /// Runs `f` in one write transaction and commits it durably.
    fn write<R>(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<R, DbError>,
    ) -> Result<R, LogStoreError> {
        let tx = self.db.begin_write().map_err(|e| self.err(e))?;
        let r = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(r)
    }

    /// Appends records in one transaction; they are durable when this returns. Indexes must
    /// follow the last one (a gap is refused: it would corrupt the log).
    pub fn append(&self, records: &[LogRecord]) -> Result<(), LogStoreError> {
        let Some(first) = records.first() else {
            return Ok(());
        };
        let state = self.log_state()?;
        let expected = state.last.map(|l| l.index + 1);
        if let Some(exp) = expected {
            if first.id.index != exp {
                return Err(LogStoreError::Corrupt {
                    path: self.path.clone(),
                    msg: format!(
                        "append at index {} but the log ends at {}",
                        first.id.index,
                        exp - 1
                    ),
                });
            }
        }
        for w in records.windows(2) {
            if w[1].id.index != w[0].id.index + 1 {
                return Err(LogStoreError::Corrupt {
                    path: self.path.clone(),
                    msg: format!(
                        "records {} and {} are not contiguous",
                        w[0].id.index, w[1].id.index
                    ),
                });
            }
        }
        self.write(|tx| {
            let mut t = tx.open_table(LOG)?;
            let mut buf = Vec::new();
            for r in records {
                buf.clear();
                buf.extend_from_slice(&r.id.term.to_le_bytes());
                buf.extend_from_slice(&r.payload);
                t.insert(r.id.index, buf.as_slice())?;
            }
            Ok(())
        })
    }

    /// The records with indexes in `range`, in order.
    pub fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<LogRecord>, LogStoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(LOG).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for item in t.range(range).map_err(|e| self.err(e))? {
            let (k, v) = item.map_err(|e| self.err(e))?;
            out.push(self.decode(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn decode(&self, index: u64, v: &[u8]) -> Result<LogRecord, LogStoreError> {
        if v.len() < 8 {
            return Err(LogStoreError::Corrupt {
                path: self.path.clone(),
                msg: format!(
                    "record {index} is {} bytes, shorter than its header",
                    v.len()
                ),
            });
        }
        let mut term = [0u8; 8];
        term.copy_from_slice(&v[..8]);
        Ok(LogRecord {
            id: LogId {
                term: u64::from_le_bytes(term),
                index,
            },
            payload: v[8..].to_vec(),
        })
    }

    pub fn log_state(&self) -> Result<LogState, LogStoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let t = tx.open_table(LOG).map_err(|e| self.err(e))?;
        let last = match t.last().map_err(|e| self.err(e))? {
            Some((k, v)) => Some(self.decode(k.value(), v.value())?.id),
            None => None,
        };
        let m = tx.open_table(META).map_err(|e| self.err(e))?;
        let last_purged = match m.get(META_LAST_PURGED).map_err(|e| self.err(e))? {
            Some(v) => Some(
                decode_log_id(v.value()).ok_or_else(|| LogStoreError::Corrupt {
                    path: self.path.clone(),
                    msg: "bad last_purged record".into(),
                })?,
            ),
            None => None,
        };
        Ok(LogState {
            last_purged,
            last: last.or(last_purged),
        })
    }

    /// Removes every record at `from` and after (a conflicting or undecodable suffix).
    /// Returns how many were removed.
    pub fn truncate(&self, from: u64) -> Result<u64, LogStoreError> {
        self.write(|tx| {
            let mut t = tx.open_table(LOG)?;
            let mut n = 0u64;
            t.retain_in(from.., |_, _| {
                n += 1;
                false
            })?;
            Ok(n)
        })
    }

    /// Removes every record up to and including `upto` (a snapshot covers them) and remembers
    /// it as the last purged log id. The last purged id never goes back: purging below it
    /// changes nothing.
    pub fn purge(&self, upto: LogId) -> Result<(), LogStoreError> {
        self.write(|tx| {
            let mut m = tx.open_table(META)?;
            let prev = m
                .get(META_LAST_PURGED)?
                .and_then(|v| decode_log_id(v.value()));
            if prev.is_some_and(|p| p.index >= upto.index) {
                return Ok(());
            }
            m.insert(META_LAST_PURGED, encode_log_id(upto).as_slice())?;
            let mut t = tx.open_table(LOG)?;
            t.retain_in(..=upto.index, |_, _| false)?;
            Ok(())
        })
    }

    /// Stores the Raft vote (openraft's `save_vote`), opaque bytes here.
    pub fn save_vote(&self, vote: &[u8]) -> Result<(), LogStoreError> {
        self.write(|tx| {
            tx.open_table(META)?.insert(META_VOTE, vote)?;
            Ok(())
        })
    }

    pub fn read_vote(&self) -> Result<Option<Vec<u8>>, LogStoreError> {
        let tx = self.db.begin_read().map_err(|e| self.err(e))?;
        let m = tx.open_table(META).map_err(|e| self.err(e))?;
        let v = m.get(META_VOTE).map_err(|e| self.err(e))?;
        Ok(v.map(|v| v.value().to_vec()))
    }
}

fn encode_log_id(id: LogId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.term.to_le_bytes());
    b[8..].copy_from_slice(&id.index.to_le_bytes());
    b
}

fn decode_log_id(b: &[u8]) -> Option<LogId> {
    if b.len() != 16 {
        return None;
    }
    let term = u64::from_le_bytes(b[..8].try_into().ok()?);
    let index = u64::from_le_bytes(b[8..].try_into().ok()?);
    Some(LogId { term, index })
}

/// Opens `path` for reading and writing, creating it with mode 0600 when it is new, and
/// narrows an existing file to 0600.
pub(crate) fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64, payload: &str) -> LogRecord {
        LogRecord {
            id: LogId { term: 1, index },
            payload: payload.as_bytes().to_vec(),
        }
    }

    #[test]
    fn append_read_truncate_purge_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("raft.db");
        {
            let s = LogStore::open(&path).unwrap();
            assert_eq!(s.log_state().unwrap(), LogState::default());
            s.append(&[rec(1, "a"), rec(2, "b"), rec(3, "c")]).unwrap();
            s.append(&[rec(4, "d")]).unwrap();
            // A gap is refused and changes nothing.
            assert!(s.append(&[rec(6, "f")]).is_err());
            assert!(s.append(&[rec(5, "e"), rec(7, "g")]).is_err());
            assert_eq!(s.entries(2..=3).unwrap(), vec![rec(2, "b"), rec(3, "c")]);
            assert_eq!(s.truncate(4).unwrap(), 1);
            s.purge(LogId { term: 1, index: 2 }).unwrap();
            s.save_vote(b"v1").unwrap();
        }
        let s = LogStore::open(&path).unwrap();
        let st = s.log_state().unwrap();
        assert_eq!(st.last_purged, Some(LogId { term: 1, index: 2 }));
        assert_eq!(st.last, Some(LogId { term: 1, index: 3 }));
        assert_eq!(s.entries(..).unwrap(), vec![rec(3, "c")]);
        assert_eq!(s.read_vote().unwrap().as_deref(), Some(&b"v1"[..]));
        // Purging below the last purged id changes nothing.
        s.purge(LogId { term: 1, index: 1 }).unwrap();
        assert_eq!(s.log_state().unwrap(), st);
        // Purging everything leaves the last purged id as the log's end.
        s.purge(LogId { term: 1, index: 3 }).unwrap();
        let st = s.log_state().unwrap();
        assert_eq!(st.last, Some(LogId { term: 1, index: 3 }));
        s.append(&[rec(4, "d")]).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
