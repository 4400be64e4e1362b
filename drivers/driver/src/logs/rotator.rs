//! [`RotatingWriter`]: writes a stream into `<dir>/<base>.0`, `<base>.1`, ... each at most
//! `max_file_size` bytes, keeping only the newest `max_files` (Nomad's `FileRotator`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A `Write` that rotates files by size.
///
/// On creation it continues in the highest-numbered existing `<base>.N` (appending while it
/// has room), as Nomad does after an agent or task restart; with no such file it starts at
/// `<base>.0`. A write that would pass `max_file_size` fills the current file to exactly that
/// size and continues in the next one; files older than the newest `max_files` are deleted.
#[derive(Debug)]
pub struct RotatingWriter {
    dir: PathBuf,
    base: String,
    max_files: usize,
    max_file_size: u64,
    index: u64,
    size: u64,
    file: File,
}

impl RotatingWriter {
    /// Opens (creating `dir` if needed) the writer. `max_files` and `max_file_size` must be
    /// at least 1.
    pub fn new(
        dir: impl AsRef<Path>,
        base_name: &str,
        max_files: usize,
        max_file_size: u64,
    ) -> io::Result<Self> {
        if max_files == 0 || max_file_size == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "log rotation needs max_files >= 1 and max_file_size >= 1",
            ));
        }
        if base_name.is_empty() || base_name.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid log base name {base_name:?}"),
            ));
        }
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let index = existing_indexes(&dir, base_name)?
            .into_iter()
            .max()
            .unwrap_or(0);
        let (file, size) = open_append(&dir.join(format!("{base_name}.{index}")))?;
        let w = RotatingWriter {
            dir,
            base: base_name.to_string(),
            max_files,
            max_file_size,
            index,
            size,
            file,
        };
        w.purge();
        Ok(w)
    }

    /// Index N of the file being written.
    pub fn current_index(&self) -> u64 {
        self.index
    }

    /// Path of the file being written.
    pub fn current_path(&self) -> PathBuf {
        self.path_of(self.index)
    }

    fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("{}.{}", self.base, index))
    }

    /// Moves on to the next index that has room.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        loop {
            self.index += 1;
            let path = self.path_of(self.index);
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() || m.len() >= self.max_file_size => continue,
                _ => {}
            }
            let (file, size) = open_append(&path)?;
            self.file = file;
            self.size = size;
            break;
        }
        tracing::debug!(path = ?self.current_path(), "rotated log file");
        self.purge();
        Ok(())
    }

    /// Deletes files older than the newest `max_files`.
    fn purge(&self) {
        let keep_from = (self.index + 1).saturating_sub(self.max_files as u64);
        let Ok(indexes) = existing_indexes(&self.dir, &self.base) else {
            return;
        };
        for idx in indexes.into_iter().filter(|i| *i < keep_from) {
            let path = self.path_of(idx);
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!(?path, error = %e, "cannot delete old log file");
            }
        }
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.size >= self.max_file_size {
            self.rotate()?;
        }
        let room = (self.max_file_size - self.size) as usize;
        let n = self.file.write(&buf[..buf.len().min(room)])?;
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// Indexes N of the existing `<base>.N` files in `dir`.
fn existing_indexes(dir: &Path, base: &str) -> io::Result<Vec<u64>> {
    let prefix = format!("{base}.");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = name.strip_prefix(&prefix).and_then(|s| s.parse().ok()) {
            out.push(n);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "caravan-rot-{}-{}-{}",
            name,
            std::process::id(),
            crate::procfs::now_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn files(dir: &Path, base: &str) -> Vec<(u64, Vec<u8>)> {
        let mut idx = existing_indexes(dir, base).unwrap();
        idx.sort();
        idx.into_iter()
            .map(|i| (i, std::fs::read(dir.join(format!("{base}.{i}"))).unwrap()))
            .collect()
    }

    #[test]
    fn starts_at_zero_and_rotates_by_size() {
        let d = tempdir("size");
        let mut w = RotatingWriter::new(&d, "t.stdout", 10, 10).unwrap();
        assert_eq!(w.current_index(), 0);
        w.write_all(b"0123456789abcdefghijXY").unwrap();
        w.flush().unwrap();
        let f = files(&d, "t.stdout");
        assert_eq!(
            f,
            vec![
                (0, b"0123456789".to_vec()),
                (1, b"abcdefghij".to_vec()),
                (2, b"XY".to_vec())
            ]
        );
        assert_eq!(w.current_index(), 2);
    }

    #[test]
    fn keeps_at_most_max_files() {
        let d = tempdir("max");
        let mut w = RotatingWriter::new(&d, "t.stderr", 3, 4).unwrap();
        for _ in 0..10 {
            w.write_all(b"abcd").unwrap();
        }
        w.write_all(b"z").unwrap();
        let f = files(&d, "t.stderr");
        let idx: Vec<u64> = f.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, vec![8, 9, 10]);
        assert_eq!(f[2].1, b"z".to_vec());
    }

    #[test]
    fn continues_after_highest_existing_index() {
        let d = tempdir("cont");
        std::fs::write(d.join("t.stdout.3"), b"abc").unwrap();
        std::fs::write(d.join("t.stdout.1"), b"old").unwrap();
        std::fs::write(d.join("other.stdout.9"), b"x").unwrap();
        let mut w = RotatingWriter::new(&d, "t.stdout", 5, 5).unwrap();
        assert_eq!(w.current_index(), 3);
        w.write_all(b"defg").unwrap();
        let f = files(&d, "t.stdout");
        assert_eq!(f.last().unwrap(), &(4, b"fg".to_vec()));
        assert_eq!(std::fs::read(d.join("t.stdout.3")).unwrap(), b"abcde");
        // Unrelated files are not touched.
        assert!(d.join("other.stdout.9").exists());
    }

    #[test]
    fn full_last_file_moves_on_at_first_write() {
        let d = tempdir("full");
        std::fs::write(d.join("t.stdout.0"), b"12345").unwrap();
        let mut w = RotatingWriter::new(&d, "t.stdout", 2, 5).unwrap();
        w.write_all(b"6").unwrap();
        assert_eq!(w.current_index(), 1);
        assert_eq!(std::fs::read(d.join("t.stdout.1")).unwrap(), b"6");
    }

    #[test]
    fn rejects_zero_limits() {
        let d = tempdir("zero");
        assert!(RotatingWriter::new(&d, "t", 0, 5).is_err());
        assert!(RotatingWriter::new(&d, "t", 1, 0).is_err());
        assert!(RotatingWriter::new(&d, "a/b", 1, 1).is_err());
    }
}
