//! [`LogMon`]: copies everything written to a task's FIFO into rotated log files, across task
//! restarts, until stopped.

use super::{LogError, RotatingWriter};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How often the copy thread looks at the stop flag while the FIFO is quiet.
const POLL_MS: u16 = 100;

/// A running log capture for one stream (stdout or stderr) of one task.
///
/// The FIFO is opened read-write: the read side never blocks its opener, a task that opens
/// the write side finds a reader there, and since LogMon itself holds a write end, a task
/// closing its end (exiting, restarting) is not an end of file: capture continues when the
/// next task process opens the FIFO. Dropping a LogMon stops it like [`LogMon::stop`].
#[derive(Debug)]
pub struct LogMon {
    fifo_path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LogMon {
    /// Creates the FIFO at `fifo_path` if missing (mode 0600), opens it, and starts copying
    /// into `log_dir/<base_name>.N` (see [`RotatingWriter`]) on a thread of its own.
    pub fn start(
        fifo_path: impl AsRef<Path>,
        log_dir: impl AsRef<Path>,
        base_name: &str,
        max_files: usize,
        max_file_size_bytes: u64,
    ) -> Result<LogMon, LogError> {
        let fifo_path = fifo_path.as_ref().to_path_buf();
        let log_dir = log_dir.as_ref().to_path_buf();
        ensure_fifo(&fifo_path)?;
        let fifo = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&fifo_path)
            .map_err(|source| LogError::OpenFifo {
                path: fifo_path.clone(),
                source,
            })?;
        grow_pipe(&fifo);
        let writer = RotatingWriter::new(&log_dir, base_name, max_files, max_file_size_bytes)
            .map_err(|source| LogError::LogFiles {
                dir: log_dir.clone(),
                source,
            })?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("logmon-{base_name}"))
            .spawn({
                let stop = stop.clone();
                let fifo_path = fifo_path.clone();
                move || copy_loop(fifo, writer, stop, &fifo_path)
            })
            .map_err(LogError::Thread)?;
        tracing::debug!(fifo = ?fifo_path, dir = ?log_dir, base_name, "log capture started");
        Ok(LogMon {
            fifo_path,
            stop,
            thread: Some(thread),
        })
    }

    /// The FIFO this LogMon reads.
    pub fn fifo_path(&self) -> &Path {
        &self.fifo_path
    }

    /// Copies what is still buffered in the FIFO, flushes, and ends the capture. Idempotent.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!(fifo = ?self.fifo_path, "log capture thread panicked");
            }
        }
    }
}

impl Drop for LogMon {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ensure_fifo(path: &Path) -> Result<(), LogError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_fifo() => Ok(()),
        Ok(_) => Err(LogError::NotAFifo {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|source| LogError::CreateFifo {
                    path: path.to_path_buf(),
                    source,
                })?;
            }
            nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).map_err(
                |errno| LogError::CreateFifo {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(errno),
                },
            )
        }
        Err(source) => Err(LogError::OpenFifo {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Asks for a 1 MiB pipe buffer (best effort) so a task can write that much while no
/// LogMon reads, e.g. during an agent restart.
fn grow_pipe(fifo: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own, with an integer argument.
    let r = unsafe { libc::fcntl(fifo.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    if r < 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "cannot grow log FIFO buffer");
    }
}

/// Reads the FIFO until stopped, then drains what is left.
fn copy_loop(mut fifo: File, mut writer: RotatingWriter, stop: Arc<AtomicBool>, path: &Path) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        if !stopping {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(POLL_MS)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::warn!(fifo = ?path, error = %e, "poll on log FIFO failed");
                    std::thread::sleep(std::time::Duration::from_millis(POLL_MS as u64));
                    continue;
                }
            }
        }
        drain(&mut fifo, &mut writer, &mut buf, path);
        if stopping {
            break;
        }
    }
    if let Err(e) = writer.flush() {
        tracing::warn!(fifo = ?path, error = %e, "cannot flush log file");
    }
    tracing::debug!(fifo = ?path, "log capture stopped");
}

/// Copies everything readable now.
fn drain(fifo: &mut File, writer: &mut RotatingWriter, buf: &mut [u8], path: &Path) {
    loop {
        match fifo.read(buf) {
            Ok(0) => return,
            Ok(n) => {
                if let Err(e) = writer.write_all(&buf[..n]) {
                    tracing::warn!(fifo = ?path, error = %e, "cannot write log file; dropping output");
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => {
                tracing::warn!(fifo = ?path, error = %e, "cannot read log FIFO");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "caravan-logmon-{}-{}-{}",
            name,
            std::process::id(),
            crate::procfs::now_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn open_writer(path: &Path) -> File {
        // Non-blocking open succeeds only if a reader is there: proves start() left one.
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap()
    }

    #[test]
    fn captures_across_writer_reopen() {
        let d = tempdir("reopen");
        let fifo = d.join("fifo").join("web.stdout.fifo");
        let logs = d.join("logs");
        let mut mon = LogMon::start(&fifo, &logs, "web.stdout", 3, 1024).unwrap();
        let mut w = open_writer(&fifo);
        w.write_all(b"first\n").unwrap();
        drop(w);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let mut w = open_writer(&fifo);
        w.write_all(b"second\n").unwrap();
        drop(w);
        mon.stop();
        let got = std::fs::read_to_string(logs.join("web.stdout.0")).unwrap();
        assert_eq!(got, "first\nsecond\n");
    }

    #[test]
    fn rotates_and_continues_after_restart() {
        let d = tempdir("rotate");
        let fifo = d.join("t.fifo");
        let logs = d.join("logs");
        {
            let mut mon = LogMon::start(&fifo, &logs, "t.stderr", 10, 4).unwrap();
            let mut w = open_writer(&fifo);
            w.write_all(b"abcdef").unwrap();
            mon.stop();
        }
        assert_eq!(std::fs::read(logs.join("t.stderr.0")).unwrap(), b"abcd");
        assert_eq!(std::fs::read(logs.join("t.stderr.1")).unwrap(), b"ef");
        // A new LogMon (agent restart) continues in the last file.
        let mut mon = LogMon::start(&fifo, &logs, "t.stderr", 10, 4).unwrap();
        let mut w = open_writer(&fifo);
        w.write_all(b"gh").unwrap();
        drop(w);
        mon.stop();
        assert_eq!(std::fs::read(logs.join("t.stderr.1")).unwrap(), b"efgh");
        assert!(!logs.join("t.stderr.2").exists());
    }

    #[test]
    fn refuses_a_regular_file() {
        let d = tempdir("notfifo");
        let p = d.join("plain");
        std::fs::write(&p, b"").unwrap();
        let err = LogMon::start(&p, d.join("logs"), "x", 1, 10).unwrap_err();
        assert!(matches!(err, LogError::NotAFifo { .. }), "{err}");
    }
}
