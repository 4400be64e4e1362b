//! The on-node artifact cache, shared across allocations. Artifacts with an inline checksum are
//! keyed by the source URL and the checksum, so a hit is the very bytes the job asked for (and
//! they are verified again on use). HTTP downloads without a checksum are kept with the
//! server's `ETag`/`Last-Modified` (in a `.meta` file beside the entry, keyed by the URL and the
//! request headers) and reused only after the server answers 304 to a conditional request.
//! Entries beyond the size cap are evicted, least recently used first.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::checksum::{to_hex, Checksum};
use crate::error::{GetterError, Result};
use crate::http::Validators;

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

    fn revalidated_entry(&self, url: &str, headers: &BTreeMap<String, String>) -> PathBuf {
        let mut h = Sha256::new();
        h.update(b"revalidate\n");
        h.update(url.as_bytes());
        for (k, v) in headers {
            h.update(b"\n");
            h.update(k.to_ascii_lowercase().as_bytes());
            h.update(b": ");
            h.update(v.as_bytes());
        }
        self.dir.join(to_hex(&h.finalize()))
    }

    /// The validators of a cached unchecksummed download, if there is one.
    pub fn validators(&self, url: &str, headers: &BTreeMap<String, String>) -> Option<Validators> {
        let entry = self.revalidated_entry(url, headers);
        if !entry.is_file() {
            return None;
        }
        let meta = fs::read_to_string(meta_path(&entry)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&meta).ok()?;
        let field = |k: &str| v[k].as_str().map(str::to_string);
        let vals = Validators {
            etag: field("etag"),
            last_modified: field("last_modified"),
        };
        (!vals.is_empty()).then_some(vals)
    }

    /// Copies the cached unchecksummed download to `dest` after the server said it is current.
    pub fn get_revalidated(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        dest: &Path,
    ) -> Result<u64> {
        let entry = self.revalidated_entry(url, headers);
        let n = fs::copy(&entry, dest).map_err(|e| GetterError::io("copy", &entry, e))?;
        if let Ok(f) = fs::File::options().append(true).open(&entry) {
            let _ = f.set_modified(SystemTime::now());
        }
        Ok(n)
    }

    /// Stores an unchecksummed download with the validators that let it be revalidated.
    pub fn put_revalidated(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        validators: &Validators,
        file: &Path,
    ) -> Result<()> {
        if validators.is_empty() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| GetterError::io("create directory", &self.dir, e))?;
        let entry = self.revalidated_entry(url, headers);
        let meta = serde_json::json!({
            "url": url,
            "etag": validators.etag,
            "last_modified": validators.last_modified,
        });
        let tmp = tempfile::NamedTempFile::new_in(&self.dir)
            .map_err(|e| GetterError::io("create", &self.dir, e))?;
        fs::copy(file, tmp.path())
            .map_err(|e| GetterError::io("copy", tmp.path().to_path_buf(), e))?;
        tmp.persist(&entry)
            .map_err(|e| GetterError::io("store", &entry, e.error))?;
        let mp = meta_path(&entry);
        fs::write(&mp, meta.to_string()).map_err(|e| GetterError::io("write", &mp, e))?;
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
                let name = e.file_name().to_string_lossy().into_owned();
                if !m.is_file() || name.starts_with('.') || name.ends_with(".meta") {
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
                let _ = fs::remove_file(meta_path(&path));
                total = total.saturating_sub(len);
                tracing::debug!(entry = %path.display(), "evicted artifact cache entry");
            }
        }
    }
}

/// The validators file beside an entry.
fn meta_path(entry: &Path) -> PathBuf {
    let mut name = entry.file_name().unwrap_or_default().to_os_string();
    name.push(".meta");
    entry.with_file_name(name)
}
