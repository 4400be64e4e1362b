//! The on-node artifact cache, shared across allocations. Only artifacts with an inline checksum
//! are cached: the entry is keyed by the source URL and the checksum, so a hit is the very bytes
//! the job asked for (and they are verified again on use). Entries beyond the size cap are
//! evicted, least recently used first.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::checksum::{to_hex, Checksum};
use crate::error::{GetterError, Result};

/// A directory of verified downloads.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_bytes: u64,
}

impl Cache {
    pub fn new(dir: PathBuf, max_bytes: u64) -> Self {
        Cache { dir, max_bytes }
    }

    fn entry(&self, url: &str, checksum: &Checksum) -> PathBuf {
        let mut h = Sha256::new();
        h.update(url.as_bytes());
        h.update(b"\n");
        h.update(checksum.to_spec().as_bytes());
        self.dir.join(to_hex(&h.finalize()))
    }

    /// Copies a cached, still valid download to `dest`. Returns whether it was there.
    pub fn get(&self, url: &str, checksum: &Checksum, dest: &Path) -> bool {
        let entry = self.entry(url, checksum);
        if !entry.is_file() {
            return false;
        }
        if checksum.verify_file(&entry).is_err() {
            tracing::warn!(entry = %entry.display(), "artifact cache entry is corrupt; removing it");
            let _ = fs::remove_file(&entry);
            return false;
        }
        if fs::copy(&entry, dest).is_err() {
            return false;
        }
        // Mark it used for LRU eviction.
        if let Ok(f) = fs::File::options().append(true).open(&entry) {
            let _ = f.set_modified(SystemTime::now());
        }
        true
    }

    /// Stores a verified download, then evicts the least recently used entries over the cap.
    pub fn put(&self, url: &str, checksum: &Checksum, file: &Path) -> Result<()> {
        fs::create_dir_all(&self.dir)
            .map_err(|e| GetterError::io("create directory", &self.dir, e))?;
        let entry = self.entry(url, checksum);
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| GetterError::io("create", &self.dir, e))?;
        fs::copy(file, tmp.path())
            .map_err(|e| GetterError::io("copy", tmp.path().to_path_buf(), e))?;
        tmp.persist(&entry)
            .map_err(|e| GetterError::io("store", &entry, e.error))?;
        self.evict();
        Ok(())
    }

    fn evict(&self) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                if !m.is_file() || e.file_name().to_string_lossy().starts_with('.') {
                    return None;
                }
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|e| e.1).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
                tracing::debug!(entry = %path.display(), "evicted artifact cache entry");
            }
        }
    }
}
