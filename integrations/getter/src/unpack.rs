//! Archive unpacking, go-getter's decompressors: tar (plain, gz, bz2, xz, zst), zip, and single
//! compressed files (gz, bz2, xz, zst). Every entry is checked before it is written: no `..`, no
//! absolute names, no writing through links, no link that resolves outside the destination
//! (zip-slip); the total size and file count are capped by the client's limits.

use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{GetterError, Result};
use crate::sandbox::{check_link_inside, ensure_dir_inside, safe_entry_path, safe_link_target};

/// A compression layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// What an artifact file is unpacked as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A tar stream, possibly compressed.
    Tar(Compression),
    /// A zip file.
    Zip,
    /// One compressed file (`app.gz` becomes `app`).
    Single(Compression),
}

/// The go-getter archive type names with the kind each means, longest suffix first.
const TYPES: &[(&str, ArchiveKind)] = &[
    ("tar.gz", ArchiveKind::Tar(Compression::Gzip)),
    ("tar.bz2", ArchiveKind::Tar(Compression::Bzip2)),
    ("tar.xz", ArchiveKind::Tar(Compression::Xz)),
    ("tar.zst", ArchiveKind::Tar(Compression::Zstd)),
    ("tgz", ArchiveKind::Tar(Compression::Gzip)),
    ("tbz2", ArchiveKind::Tar(Compression::Bzip2)),
    ("txz", ArchiveKind::Tar(Compression::Xz)),
    ("tzst", ArchiveKind::Tar(Compression::Zstd)),
    ("tar", ArchiveKind::Tar(Compression::None)),
    ("zip", ArchiveKind::Zip),
    ("gz", ArchiveKind::Single(Compression::Gzip)),
    ("bz2", ArchiveKind::Single(Compression::Bzip2)),
    ("xz", ArchiveKind::Single(Compression::Xz)),
    ("zst", ArchiveKind::Single(Compression::Zstd)),
];

impl ArchiveKind {
    /// The kind named by the `archive` option (`"tar.gz"`, `"zip"` ...).
    pub fn from_option(name: &str) -> Option<ArchiveKind> {
        let name = name.trim().trim_start_matches('.').to_ascii_lowercase();
        TYPES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The kind a file name's extension says, if any, with the matched suffix.
    pub fn detect(file_name: &str) -> Option<(ArchiveKind, &'static str)> {
        let lower = file_name.to_ascii_lowercase();
        TYPES
            .iter()
            .find(|(n, _)| lower.ends_with(&format!(".{n}")))
            .map(|(n, k)| (*k, *n))
    }
}

/// The client's unpacking limits (0 means no limit).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_files: u64,
}

struct Budget<'a> {
    limits: Limits,
    bytes: u64,
    files: u64,
    archive: &'a str,
}

impl Budget<'_> {
    fn add_file(&mut self) -> Result<()> {
        self.files += 1;
        if self.limits.max_files > 0 && self.files > self.limits.max_files {
            return Err(GetterError::TooManyFiles {
                archive: self.archive.to_string(),
                limit: self.limits.max_files,
            });
        }
        Ok(())
    }

    /// Copies `r` to `w`, failing once the archive's total passes the size limit.
    fn copy(&mut self, r: &mut dyn Read, w: &mut dyn Write) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = r.read(&mut buf).map_err(|e| self.corrupt(e))?;
            if n == 0 {
                return Ok(());
            }
            self.bytes += n as u64;
            if self.limits.max_bytes > 0 && self.bytes > self.limits.max_bytes {
                return Err(GetterError::DecompressedTooLarge {
                    archive: self.archive.to_string(),
                    limit: self.limits.max_bytes,
                });
            }
            w.write_all(&buf[..n])
                .map_err(|e| GetterError::io("write", "unpacked file", e))?;
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> GetterError {
        GetterError::Archive {
            archive: self.archive.to_string(),
            message: format!("cannot read archive: {e}"),
        }
    }

    fn refuse(&self, entry: &Path, why: impl std::fmt::Display) -> GetterError {
        GetterError::Archive {
            archive: self.archive.to_string(),
            message: format!("refusing entry {:?}: it {why}", entry.display().to_string()),
        }
    }
}

/// Unpacks `archive` of `kind` into the existing directory `dest`. `name` is the archive's file
/// name (for messages and for the output name of a single compressed file).
pub fn unpack(
    kind: ArchiveKind,
    archive: &Path,
    dest: &Path,
    name: &str,
    limits: Limits,
) -> Result<()> {
    let mut budget = Budget {
        limits,
        bytes: 0,
        files: 0,
        archive: name,
    };
    match kind {
        ArchiveKind::Tar(c) => {
            let reader = decompressor(c, archive, &budget)?;
            unpack_tar(reader, dest, &mut budget)
        }
        ArchiveKind::Zip => unpack_zip(archive, dest, &mut budget),
        ArchiveKind::Single(c) => {
            let mut reader = decompressor(c, archive, &budget)?;
            let out_name = ArchiveKind::detect(name)
                .map(|(_, suffix)| name[..name.len() - suffix.len() - 1].to_string())
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "file".to_string());
            let out = dest.join(&out_name);
            let mut f = fs::File::create(&out).map_err(|e| GetterError::io("create", &out, e))?;
            budget.add_file()?;
            budget.copy(&mut reader, &mut f)
        }
    }
}

fn decompressor(c: Compression, path: &Path, budget: &Budget<'_>) -> Result<Box<dyn Read>> {
    let f = fs::File::open(path).map_err(|e| GetterError::io("open", path, e))?;
    let r = BufReader::new(f);
    Ok(match c {
        Compression::None => Box::new(r),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        Compression::Zstd => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(r).map_err(|e| budget.corrupt(e))?)
        }
        Compression::Xz => Box::new(XzReader::new(r)),
    })
}

/// lzma-rs decodes into a writer; this runs it on a thread and hands the bytes over a pipe so
/// the size limit applies while decoding, not after.
struct XzReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
    pos: usize,
}

/// The name of the xz decoder's thread (the fuzz target tolerates decoder panics there, which
/// this module turns into errors).
pub const XZ_THREAD: &str = "caravan-xz-decode";

struct ChanWriter(std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>);

impl Write for ChanWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0
            .send(Ok(b.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "reader gone"))?;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl XzReader {
    fn new<R: io::BufRead + Send + 'static>(mut r: R) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        let spawned = std::thread::Builder::new()
            .name(XZ_THREAD.into())
            .spawn(move || {
                // lzma-rs panics on some malformed streams (an arithmetic overflow found by
                // fuzzing): that is a corrupt archive, not an end of stream.
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let mut w = io::BufWriter::with_capacity(64 * 1024, ChanWriter(tx.clone()));
                    let res = lzma_rs::xz_decompress(&mut r, &mut w).map_err(|e| format!("{e:?}"));
                    res.and_then(|_| w.flush().map_err(|e| e.to_string()))
                }))
                .unwrap_or_else(|_| Err("malformed xz stream (the decoder gave up)".into()));
                if let Err(e) = res {
                    let _ = tx.send(Err(io::Error::new(io::ErrorKind::InvalidData, e)));
                }
            });
        if let Err(e) = spawned {
            let (etx, erx) = std::sync::mpsc::sync_channel(1);
            let _ = etx.send(Err(e));
            return XzReader {
                rx: erx,
                buf: Vec::new(),
                pos: 0,
            };
        }
        XzReader {
            rx,
            buf: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for XzReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.buf.len() {
            match self.rx.recv() {
                Ok(Ok(b)) => {
                    self.buf = b;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Opens `root/rel` for writing as a new regular file, replacing whatever file or link was
/// there without following it; its parents are created and must not be links.
fn create_file_inside(root: &Path, rel: &Path) -> std::result::Result<fs::File, String> {
    if let Some(parent) = rel.parent() {
        ensure_dir_inside(root, parent)?;
    }
    let full = root.join(rel);
    match fs::symlink_metadata(&full) {
        Ok(m) if m.is_dir() => return Err("would replace a directory".into()),
        Ok(_) => fs::remove_file(&full).map_err(|e| format!("cannot replace it: {e}"))?,
        Err(_) => {}
    }
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&full)
        .map_err(|e| format!("cannot create it: {e}"))
}

fn set_mode(path: &Path, mode: u32) {
    // Keep the permission bits, never setuid/setgid/sticky from an archive.
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o777));
}

fn make_link(root: &Path, rel: &Path, target: &Path, budget: &Budget<'_>) -> Result<()> {
    safe_link_target(rel, target).map_err(|why| budget.refuse(rel, why))?;
    if let Some(parent) = rel.parent() {
        ensure_dir_inside(root, parent).map_err(|why| budget.refuse(rel, why))?;
    }
    let full = root.join(rel);
    if fs::symlink_metadata(&full).is_ok() {
        fs::remove_file(&full)
            .map_err(|e| budget.refuse(rel, format!("cannot replace it: {e}")))?;
    }
    std::os::unix::fs::symlink(target, &full).map_err(|e| GetterError::io("create link", &full, e))
}

fn unpack_tar(reader: Box<dyn Read>, dest: &Path, budget: &mut Budget<'_>) -> Result<()> {
    let mut ar = tar::Archive::new(reader);
    let mut links: Vec<PathBuf> = Vec::new();
    let entries = ar.entries().map_err(|e| budget.corrupt(e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| budget.corrupt(e))?;
        let raw = entry.path().map_err(|e| budget.corrupt(e))?.into_owned();
        let rel = match safe_entry_path(&raw).map_err(|why| budget.refuse(&raw, why))? {
            Some(r) => r,
            None => continue,
        };
        let mode = entry.header().mode().unwrap_or(0o644);
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            let d = ensure_dir_inside(dest, &rel).map_err(|why| budget.refuse(&rel, why))?;
            set_mode(&d, mode | 0o700);
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            budget.add_file()?;
            let mut f = create_file_inside(dest, &rel).map_err(|why| budget.refuse(&rel, why))?;
            budget.copy(&mut entry, &mut f)?;
            set_mode(&dest.join(&rel), mode);
        } else if kind.is_symlink() {
            budget.add_file()?;
            let target = entry
                .link_name()
                .map_err(|e| budget.corrupt(e))?
                .ok_or_else(|| budget.refuse(&rel, "is a link without a target"))?
                .into_owned();
            make_link(dest, &rel, &target, budget)?;
            links.push(rel);
        } else if kind.is_hard_link() {
            budget.add_file()?;
            let target = entry
                .link_name()
                .map_err(|e| budget.corrupt(e))?
                .ok_or_else(|| budget.refuse(&rel, "is a link without a target"))?
                .into_owned();
            let target_rel = safe_entry_path(&target)
                .map_err(|why| budget.refuse(&rel, format!("is a hard link whose target {why}")))?
                .ok_or_else(|| budget.refuse(&rel, "is a hard link to nothing"))?;
            // Copy rather than link: the source must be a regular file already unpacked, reached
            // without passing through a link.
            if let Some(parent) = target_rel.parent() {
                ensure_dir_inside(dest, parent).map_err(|why| budget.refuse(&rel, why))?;
            }
            let src = dest.join(&target_rel);
            match fs::symlink_metadata(&src) {
                Ok(m) if m.is_file() => {}
                _ => {
                    return Err(budget.refuse(
                        &rel,
                        "is a hard link to something that is not an unpacked file",
                    ))
                }
            }
            let mut from = fs::File::open(&src).map_err(|e| GetterError::io("open", &src, e))?;
            let mut to = create_file_inside(dest, &rel).map_err(|why| budget.refuse(&rel, why))?;
            budget.copy(&mut from, &mut to)?;
            set_mode(&dest.join(&rel), mode);
        } else {
            // Devices, fifos, pax and GNU metadata entries: nothing to write.
            continue;
        }
    }
    for l in &links {
        check_link_inside(dest, l).map_err(|why| budget.refuse(l, why))?;
    }
    Ok(())
}

fn unpack_zip(path: &Path, dest: &Path, budget: &mut Budget<'_>) -> Result<()> {
    let f = fs::File::open(path).map_err(|e| GetterError::io("open", path, e))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| budget.corrupt(e))?;
    let mut links: Vec<PathBuf> = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).map_err(|e| budget.corrupt(e))?;
        let raw = PathBuf::from(file.name().replace('\\', "/"));
        let rel = match safe_entry_path(&raw).map_err(|why| budget.refuse(&raw, why))? {
            Some(r) => r,
            None => continue,
        };
        let mode = file.unix_mode();
        if file.is_dir() {
            let d = ensure_dir_inside(dest, &rel).map_err(|why| budget.refuse(&rel, why))?;
            if let Some(m) = mode {
                set_mode(&d, m | 0o700);
            }
        } else if mode.is_some_and(|m| m & 0o170000 == 0o120000) {
            budget.add_file()?;
            let mut target = Vec::new();
            let mut limited = (&mut file).take(4096);
            limited
                .read_to_end(&mut target)
                .map_err(|e| budget.corrupt(e))?;
            let target = PathBuf::from(String::from_utf8_lossy(&target).into_owned());
            make_link(dest, &rel, &target, budget)?;
            links.push(rel);
        } else {
            budget.add_file()?;
            let mut out = create_file_inside(dest, &rel).map_err(|why| budget.refuse(&rel, why))?;
            budget.copy(&mut file, &mut out)?;
            set_mode(&dest.join(&rel), mode.unwrap_or(0o644));
        }
    }
    for l in &links {
        check_link_inside(dest, l).map_err(|why| budget.refuse(l, why))?;
    }
    Ok(())
}
