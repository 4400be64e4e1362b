//! State snapshots: the archive format (shared by the server's own snapshots in
//! `<data_dir>/server/snapshots/` and by `operator snapshot save/restore`) and the directory
//! that keeps the newest ones.
//!
//! The archive is a gzip'd tar, like Nomad's, holding three files:
//! - `meta.json`: [`SnapshotMeta`] (format version, ID, index, term, creation time, size);
//! - `state.json`: the [`StateImage`] (every table's objects and indexes), as JSON;
//! - `SHA256SUMS`: `sha256sum`-style lines for the two others, checked on every read.
//!
//! This is the shape of openraft's snapshot half of `RaftStateMachine`: build (write an
//! archive of the applied state at its last log id), install (read and verify one, then
//! replace the state) and get-current (the newest file here).

use crate::state::snapshot::StateImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The archive format version this build writes; newer archives are refused.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

const META_FILE: &str = "meta.json";
const STATE_FILE: &str = "state.json";
const SUMS_FILE: &str = "SHA256SUMS";
/// Archives bigger than this (uncompressed, per file) are refused: a guard against a
/// decompression bomb in a restored file.
const MAX_FILE_BYTES: u64 = 8 << 30;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not a valid snapshot: {0}")]
    Invalid(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotMeta {
    /// The archive format ([`SNAPSHOT_FORMAT_VERSION`]).
    pub version: u32,
    /// `<term>-<index>-<unix millis>`, as hashicorp/raft names snapshots.
    pub id: String,
    /// The last log index the state includes.
    pub index: u64,
    pub term: u64,
    /// The command format of the server that wrote it (informational).
    pub command_format_version: u16,
    /// RFC 3339.
    pub created_at: String,
    /// Bytes of `state.json`.
    pub size: u64,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes the archive of `image` at `(term, index)`.
pub fn write_archive(
    w: impl Write,
    image: &StateImage,
    term: u64,
) -> Result<SnapshotMeta, SnapshotError> {
    let state = serde_json::to_vec(image)
        .map_err(|e| SnapshotError::Invalid(format!("cannot encode state: {e}")))?;
    let now = caravan_structs::time::now_nanos();
    let meta = SnapshotMeta {
        version: SNAPSHOT_FORMAT_VERSION,
        id: format!("{term}-{}-{}", image.index, now / 1_000_000),
        index: image.index,
        term,
        command_format_version: crate::server::command::COMMAND_FORMAT_VERSION,
        created_at: crate::util::rfc3339(now),
        size: state.len() as u64,
    };
    let meta_json = serde_json::to_vec_pretty(&meta)
        .map_err(|e| SnapshotError::Invalid(format!("cannot encode meta: {e}")))?;
    let sums = format!(
        "{}  {META_FILE}\n{}  {STATE_FILE}\n",
        hex(&Sha256::digest(&meta_json)),
        hex(&Sha256::digest(&state))
    );
    let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let p = Path::new("archive");
    for (name, data) in [
        (META_FILE, meta_json.as_slice()),
        (STATE_FILE, state.as_slice()),
        (SUMS_FILE, sums.as_bytes()),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_mtime((now / 1_000_000_000).max(0) as u64);
        h.set_cksum();
        tar.append_data(&mut h, name, data).map_err(io_err(p))?;
    }
    let gz = tar.into_inner().map_err(io_err(p))?;
    gz.finish().map_err(io_err(p))?;
    Ok(meta)
}

/// Reads and verifies an archive; with `with_state` false only the meta is decoded (the
/// state's checksum is still verified).
pub fn read_archive(
    r: impl Read,
    with_state: bool,
) -> Result<(SnapshotMeta, Option<StateImage>), SnapshotError> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(r));
    let (mut meta, mut state, mut sums) = (None, None, None);
    let entries = tar
        .entries()
        .map_err(|e| SnapshotError::Invalid(format!("not a gzip'd tar: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| SnapshotError::Invalid(format!("bad tar entry: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| SnapshotError::Invalid(format!("bad tar entry name: {e}")))?
            .to_string_lossy()
            .into_owned();
        let size = entry.header().size().unwrap_or(u64::MAX);
        if size > MAX_FILE_BYTES {
            return Err(SnapshotError::Invalid(format!(
                "{name} is too large ({size} bytes)"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .take(MAX_FILE_BYTES)
            .read_to_end(&mut data)
            .map_err(|e| SnapshotError::Invalid(format!("cannot read {name}: {e}")))?;
        match name.as_str() {
            META_FILE => meta = Some(data),
            STATE_FILE => state = Some(data),
            SUMS_FILE => sums = Some(data),
            other => return Err(SnapshotError::Invalid(format!("unexpected file {other:?}"))),
        }
    }
    // Read to the gzip trailer, whose CRC and length catch a truncated or altered stream that
    // the tar reader stopped short of.
    let mut rest = Vec::new();
    tar.into_inner()
        .read_to_end(&mut rest)
        .map_err(|e| SnapshotError::Invalid(format!("damaged gzip stream: {e}")))?;
    let missing = |n: &str| SnapshotError::Invalid(format!("{n} is missing"));
    let meta_json = meta.ok_or_else(|| missing(META_FILE))?;
    let state_json = state.ok_or_else(|| missing(STATE_FILE))?;
    let sums = String::from_utf8(sums.ok_or_else(|| missing(SUMS_FILE))?)
        .map_err(|_| SnapshotError::Invalid(format!("{SUMS_FILE} is not text")))?;
    for (name, data) in [(META_FILE, &meta_json), (STATE_FILE, &state_json)] {
        let want = sums
            .lines()
            .find_map(|l| l.strip_suffix(&format!("  {name}")))
            .ok_or_else(|| SnapshotError::Invalid(format!("{SUMS_FILE} has no line for {name}")))?;
        if want != hex(&Sha256::digest(data)) {
            return Err(SnapshotError::Invalid(format!(
                "{name} does not match its checksum"
            )));
        }
    }
    let meta: SnapshotMeta = serde_json::from_slice(&meta_json)
        .map_err(|e| SnapshotError::Invalid(format!("bad {META_FILE}: {e}")))?;
    if meta.version > SNAPSHOT_FORMAT_VERSION {
        return Err(SnapshotError::Invalid(format!(
            "snapshot format {} is newer than this server understands ({SNAPSHOT_FORMAT_VERSION}); upgrade this server",
            meta.version
        )));
    }
    let image = if with_state {
        let image: StateImage = serde_json::from_slice(&state_json)
            .map_err(|e| SnapshotError::Invalid(format!("bad {STATE_FILE}: {e}")))?;
        if image.index != meta.index {
            return Err(SnapshotError::Invalid(format!(
                "state is at index {} but the meta says {}",
                image.index, meta.index
            )));
        }
        Some(image)
    } else {
        None
    };
    Ok((meta, image))
}

/// The server's snapshot directory: files `<index>-<term>.snap` (index zero-padded, so names
/// sort by index), written to a temporary name, fsync'd and renamed into place.
pub struct SnapshotStore {
    dir: PathBuf,
}

/// A snapshot file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    pub path: PathBuf,
    pub index: u64,
    pub term: u64,
}

impl SnapshotStore {
    pub fn open(dir: &Path) -> Result<SnapshotStore, SnapshotError> {
        super::create_private_dir(dir).map_err(io_err(dir))?;
        Ok(SnapshotStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The snapshot files, newest first.
    pub fn list(&self) -> Result<Vec<SnapshotFile>, SnapshotError> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let e = e.map_err(io_err(&self.dir))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".snap") else {
                continue;
            };
            let Some((i, t)) = stem.split_once('-') else {
                continue;
            };
            if let (Ok(index), Ok(term)) = (i.parse(), t.parse()) {
                v.push(SnapshotFile {
                    path: e.path(),
                    index,
                    term,
                });
            }
        }
        v.sort_by(|a, b| b.index.cmp(&a.index).then(b.term.cmp(&a.term)));
        Ok(v)
    }

    /// Writes a snapshot of `image` durably and returns its file.
    pub fn save(
        &self,
        image: &StateImage,
        term: u64,
    ) -> Result<(SnapshotFile, SnapshotMeta), SnapshotError> {
        let final_path = self.dir.join(format!("{:020}-{term}.snap", image.index));
        let tmp = self
            .dir
            .join(format!(".{:020}-{term}.snap.tmp", image.index));
        let f = super::log_store::open_private(&tmp).map_err(io_err(&tmp))?;
        f.set_len(0).map_err(io_err(&tmp))?;
        let mut w = std::io::BufWriter::new(f);
        let meta = write_archive(&mut w, image, term)?;
        let f = w.into_inner().map_err(|e| SnapshotError::Io {
            path: tmp.display().to_string(),
            source: e.into_error(),
        })?;
        f.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
        sync_dir(&self.dir).map_err(io_err(&self.dir))?;
        Ok((
            SnapshotFile {
                path: final_path,
                index: image.index,
                term,
            },
            meta,
        ))
    }

    /// Reads one snapshot file, verified.
    pub fn load(&self, file: &SnapshotFile) -> Result<(SnapshotMeta, StateImage), SnapshotError> {
        let f = std::fs::File::open(&file.path).map_err(io_err(&file.path))?;
        let (meta, image) = read_archive(std::io::BufReader::new(f), true)?;
        let image = image.ok_or_else(|| SnapshotError::Invalid("no state".into()))?;
        Ok((meta, image))
    }

    /// Removes all but the newest `keep` snapshots, and leftover temporary files.
    pub fn prune(&self, keep: usize) -> Result<(), SnapshotError> {
        for f in self.list()?.into_iter().skip(keep) {
            std::fs::remove_file(&f.path).map_err(io_err(&f.path))?;
        }
        for e in std::fs::read_dir(&self.dir)
            .map_err(io_err(&self.dir))?
            .flatten()
        {
            if e.file_name().to_string_lossy().ends_with(".snap.tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        Ok(())
    }

    /// Removes every snapshot except `file` (after a restore replaced the state).
    pub fn remove_all_but(&self, file: &SnapshotFile) -> Result<(), SnapshotError> {
        for f in self.list()? {
            if f.path != file.path {
                std::fs::remove_file(&f.path).map_err(io_err(&f.path))?;
            }
        }
        Ok(())
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip_and_damage_is_refused() {
        let image = StateImage {
            index: 42,
            ..Default::default()
        };
        let mut buf = Vec::new();
        let meta = write_archive(&mut buf, &image, 3).unwrap();
        assert_eq!((meta.index, meta.term), (42, 3));
        let (m, img) = read_archive(buf.as_slice(), true).unwrap();
        assert_eq!(m, meta);
        assert_eq!(img.unwrap().index, 42);
        // Truncated (even by the gzip trailer only), flipped or foreign bytes are errors,
        // not panics.
        assert!(read_archive(&buf[..buf.len() / 2], true).is_err());
        assert!(read_archive(&buf[..buf.len() - 4], false).is_err());
        let mut flipped = buf.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0xff;
        assert!(read_archive(flipped.as_slice(), true).is_err());
        assert!(read_archive(&b"not a snapshot"[..], false).is_err());
    }

    #[test]
    fn store_lists_newest_first_and_prunes() {
        let dir = tempfile::tempdir().unwrap();
        let s = SnapshotStore::open(&dir.path().join("snapshots")).unwrap();
        for i in [5u64, 100, 20] {
            let image = StateImage {
                index: i,
                ..Default::default()
            };
            s.save(&image, 1).unwrap();
        }
        let l = s.list().unwrap();
        assert_eq!(
            l.iter().map(|f| f.index).collect::<Vec<_>>(),
            vec![100, 20, 5]
        );
        assert_eq!(s.load(&l[0]).unwrap().0.index, 100);
        s.prune(2).unwrap();
        assert_eq!(s.list().unwrap().len(), 2);
    }
}
