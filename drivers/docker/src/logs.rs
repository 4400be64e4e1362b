//! Streams a container's output from the engine's logs API into the task's stdout and stderr
//! FIFOs, which the client's LogMon copies into rotated log files (no helper process per task).
//! A path that is not a FIFO is appended to as a plain file.
//!
//! After an agent restart ([`Origin::Resume`]) the pump asks the engine for the output with
//! timestamps from shortly before the previous agent last wrote the task's log files, drops
//! what those files already hold and writes the rest without the timestamps: the output of
//! the outage is in the logs, nothing twice.

use crate::engine::{describe, Engine};
use bollard::container::{LogOutput, LogsOptions};
use futures_util::StreamExt;
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

type Sink = Box<dyn AsyncWrite + Send + Unpin>;

/// How much of the end of a stream's log files is compared with the engine's output.
const TAIL_MAX: usize = 64 * 1024;

/// How far a log file's modification time may be from the engine's timestamp of the last
/// output written into it: file times come from the kernel's coarse clock (a few ms behind),
/// and output reaches the file a little after the engine stamped it.
const SLACK_NANOS: i64 = 100_000_000;

/// While a stream has not decided where to resume, this much quiet from the engine means the
/// output from before the restart has all arrived.
const HISTORY_QUIET: Duration = Duration::from_millis(500);

/// What the previous agent had written of one stream: when it last wrote (the newest log
/// file's modification time, Unix nanoseconds) and the last bytes it wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Collected {
    pub written_at: i64,
    pub tail: Vec<u8>,
}

/// Where a log pump starts.
#[derive(Debug, Clone)]
pub enum Origin {
    /// All output from this moment (Unix seconds; 0: from the beginning).
    Since(i64),
    /// After an agent restart: everything the previous agent had not written yet, per stream
    /// (`None`: it wrote nothing of that stream).
    Resume {
        stdout: Option<Collected>,
        stderr: Option<Collected>,
    },
}

impl Origin {
    /// What the log files of a task's streams hold (see [`collected`]).
    pub fn resume(stdout_path: &Path, stderr_path: &Path) -> Origin {
        Origin::Resume {
            stdout: collected(stdout_path),
            stderr: collected(stderr_path),
        }
    }
}

/// The files a stream's output ends up in, oldest first: for LogMon's FIFO
/// `<dir>/.<base>.fifo` its rotated `<dir>/<base>.N`; for a plain file, the file.
fn log_files(sink: &Path) -> Vec<PathBuf> {
    let Ok(meta) = std::fs::metadata(sink) else {
        return Vec::new();
    };
    if meta.is_file() {
        return vec![sink.to_path_buf()];
    }
    if !meta.file_type().is_fifo() {
        return Vec::new();
    }
    let (Some(dir), Some(base)) = (
        sink.parent(),
        sink.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".fifo")),
    ) else {
        return Vec::new();
    };
    let prefix = format!("{base}.");
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    let n = name.to_str()?.strip_prefix(&prefix)?.parse().ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files.into_iter().map(|(_, p)| p).collect()
}

/// What the previous agent wrote of the stream going to `sink`; `None` when it wrote no log
/// file for it.
pub fn collected(sink: &Path) -> Option<Collected> {
    let files = log_files(sink);
    let newest = files.last()?;
    let written_at = std::fs::metadata(newest)
        .and_then(|m| m.modified())
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_nanos() as i64;
    // The last TAIL_MAX bytes, across rotated files.
    let mut tail: Vec<u8> = Vec::new();
    for file in files.iter().rev() {
        let want = TAIL_MAX - tail.len();
        if want == 0 {
            break;
        }
        let Ok(mut f) = std::fs::File::open(file) else {
            break;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(want as u64);
        let mut part = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut part).is_err() {
            break;
        }
        part.extend_from_slice(&tail);
        tail = part;
    }
    Some(Collected { written_at, tail })
}

/// Opens where one stream goes; `None` (with a warning) when it cannot be opened.
async fn open_sink(path: &Path) -> Option<Sink> {
    if path.as_os_str().is_empty() {
        return None;
    }
    let is_fifo = tokio::fs::metadata(path)
        .await
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false);
    let opened: std::io::Result<Sink> = if is_fifo {
        tokio::net::unix::pipe::OpenOptions::new()
            .open_sender(path)
            .map(|s| Box::new(s) as Sink)
    } else {
        tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map(|f| Box::new(f) as Sink)
    };
    match opened {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(
                ?path,
                "cannot open the task's log output; its output is dropped: {e}"
            );
            None
        }
    }
}

/// One piece of output as the engine stamped it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The engine's time (Unix nanoseconds; `None`: no timestamp).
    at: Option<i64>,
    /// How much later than `at` it may have been written: Podman's Docker API stamps whole
    /// seconds, and a time without a fraction is taken as such.
    span: i64,
    bytes: Vec<u8>,
}

impl Entry {
    /// Written by the engine at or before `t` for sure.
    fn surely_by(&self, t: i64) -> bool {
        self.at.is_some_and(|a| a.saturating_add(self.span) <= t)
    }

    /// Perhaps written by the engine at or before `t`.
    fn maybe_by(&self, t: i64) -> bool {
        self.at.is_some_and(|a| a <= t)
    }
}

/// Splits a message of a `timestamps = true` log stream into its lines, each without its
/// `<RFC 3339 time> ` prefix. A line without one continues the previous line.
fn split_timestamped(message: &[u8]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for line in message.split_inclusive(|b| *b == b'\n') {
        let stamped = line
            .iter()
            .take(48)
            .position(|b| *b == b' ')
            .and_then(|sp| {
                let stamp = std::str::from_utf8(&line[..sp]).ok()?;
                let at = crate::time::parse_rfc3339_nanos(stamp)?;
                let span = if stamp.get(19..20) == Some(".") {
                    0
                } else {
                    999_999_999
                };
                Some((at, span, &line[sp + 1..]))
            });
        match (stamped, out.last_mut()) {
            (Some((at, span, rest)), _) => out.push(Entry {
                at: Some(at),
                span,
                bytes: rest.to_vec(),
            }),
            (None, Some(prev)) => prev.bytes.extend_from_slice(line),
            (None, None) => out.push(Entry {
                at: None,
                span: 0,
                bytes: line.to_vec(),
            }),
        }
    }
    out
}

/// How many of `entries` (the engine's output of one stream, oldest first, from before the
/// previous agent last wrote) that agent had written already. Output stamped well before
/// its last write was written; output that may have come within [`SLACK_NANOS`] of it
/// (with Podman's whole-second times, within a second) is decided by the log file's last
/// bytes: the longest run of entries that the file ends with.
fn already_written(entries: &VecDeque<Entry>, c: &Collected) -> usize {
    if c.tail.is_empty() {
        // The previous agent wrote nothing of this stream.
        return 0;
    }
    let sure = entries
        .iter()
        .take_while(|e| e.surely_by(c.written_at - SLACK_NANOS))
        .count();
    let maybe = entries
        .iter()
        .take_while(|e| e.maybe_by(c.written_at + SLACK_NANOS))
        .count();
    (sure + 1..=maybe)
        .rev()
        .find(|&n| ends_with(&c.tail, entries.range(..n)))
        .unwrap_or(sure)
}

/// Whether `tail` ends with the bytes of `entries` (as far as either goes back).
fn ends_with<'a>(tail: &[u8], entries: impl DoubleEndedIterator<Item = &'a Entry>) -> bool {
    let mut rest = tail;
    for e in entries.rev() {
        if rest.is_empty() {
            return true;
        }
        let b = &e.bytes[e.bytes.len().saturating_sub(rest.len())..];
        if !rest.ends_with(b) {
            return false;
        }
        rest = &rest[..rest.len() - b.len()];
    }
    true
}

/// One stream of a resuming pump: holding back output until it knows where the previous
/// agent stopped, then passing everything on.
enum Resuming {
    Holding {
        collected: Collected,
        held: VecDeque<Entry>,
        /// Bytes of `held` stamped well before the previous agent's last write.
        old_bytes: usize,
    },
    Passing,
}

impl Resuming {
    fn new(collected: Option<Collected>) -> Self {
        match collected {
            Some(collected) => Resuming::Holding {
                collected,
                held: VecDeque::new(),
                old_bytes: 0,
            },
            None => Resuming::Passing,
        }
    }

    /// Takes one entry; returns what is to be written now.
    fn push(&mut self, e: Entry) -> Vec<Entry> {
        let Resuming::Holding {
            collected,
            held,
            old_bytes,
        } = self
        else {
            return vec![e];
        };
        if e.maybe_by(collected.written_at + SLACK_NANOS) {
            let old = |e: &Entry| e.surely_by(collected.written_at - SLACK_NANOS);
            if old(&e) {
                *old_bytes += e.bytes.len();
            }
            held.push_back(e);
            // Output older than what the tail can be compared with was written for sure.
            while let Some(front) = held.front() {
                if !old(front) || *old_bytes - front.bytes.len() < TAIL_MAX {
                    break;
                }
                *old_bytes -= front.bytes.len();
                held.pop_front();
            }
            return Vec::new();
        }
        let mut out = self.decide();
        out.push(e);
        out
    }

    /// Decides where the previous agent stopped and passes on from there; returns the held
    /// output it had not written.
    fn decide(&mut self) -> Vec<Entry> {
        match std::mem::replace(self, Resuming::Passing) {
            Resuming::Holding {
                collected, held, ..
            } => {
                let n = already_written(&held, &collected);
                held.into_iter().skip(n).collect()
            }
            Resuming::Passing => Vec::new(),
        }
    }

    fn holding(&self) -> bool {
        matches!(self, Resuming::Holding { .. })
    }
}

async fn write(sink: &mut Option<Sink>, id: &str, bytes: &[u8]) {
    if let Some(w) = sink {
        if let Err(e) = w.write_all(bytes).await {
            tracing::warn!(container = %id, "cannot write task output: {e}");
            *sink = None;
        }
    }
}

/// Starts copying the container's logs (see [`Origin`]) until the container stops. The returned
/// task finishes when the engine ends the stream.
pub fn start(
    engine: &Engine,
    container_id: &str,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    from: Origin,
) -> JoinHandle<()> {
    let engine = engine.clone();
    let id = container_id.to_string();
    tokio::spawn(async move {
        let mut out = open_sink(&stdout_path).await;
        let mut err = open_sink(&stderr_path).await;
        let (since, mut resume) = match from {
            Origin::Since(since) => (since, None),
            Origin::Resume { stdout, stderr } => {
                // From the earliest last write, a little before; everything when a stream
                // has no log file yet.
                let since = match (&stdout, &stderr) {
                    (Some(o), Some(e)) => o.written_at.min(e.written_at) / 1_000_000_000 - 2,
                    _ => 0,
                };
                (
                    since.max(0),
                    Some([Resuming::new(stdout), Resuming::new(stderr)]),
                )
            }
        };
        let options = LogsOptions::<String> {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            timestamps: resume.is_some(),
            tail: "all".to_string(),
            ..Default::default()
        };
        let mut stream = engine.stream.logs(&id, Some(options));
        loop {
            let holding = resume
                .as_ref()
                .is_some_and(|r| r.iter().any(Resuming::holding));
            let item = if holding {
                match tokio::time::timeout(HISTORY_QUIET, stream.next()).await {
                    Ok(item) => item,
                    Err(_) => {
                        // The output from before the restart has all come.
                        if let Some(r) = resume.as_mut() {
                            for (i, sink) in [&mut out, &mut err].into_iter().enumerate() {
                                for e in r[i].decide() {
                                    write(sink, &id, &e.bytes).await;
                                }
                            }
                        }
                        continue;
                    }
                }
            } else {
                stream.next().await
            };
            let Some(item) = item else { break };
            let (which, bytes) = match item {
                Ok(LogOutput::StdErr { message }) => (1, message),
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    (0, message)
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) => {
                    tracing::warn!(container = %id, "log stream from the engine ended: {}", describe(&e));
                    break;
                }
            };
            let sink = if which == 0 { &mut out } else { &mut err };
            match resume.as_mut() {
                None => write(sink, &id, &bytes).await,
                Some(r) => {
                    for entry in split_timestamped(&bytes) {
                        for e in r[which].push(entry) {
                            write(sink, &id, &e.bytes).await;
                        }
                    }
                }
            }
        }
        if let Some(r) = resume.as_mut() {
            for (i, sink) in [&mut out, &mut err].into_iter().enumerate() {
                for e in r[i].decide() {
                    write(sink, &id, &e.bytes).await;
                }
            }
        }
        for w in [&mut out, &mut err].into_iter().flatten() {
            let _ = w.flush().await;
        }
        tracing::debug!(container = %id, "log streaming finished");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let d = std::env::temp_dir().join(format!(
                "caravan-docker-logs-{name}-{}-{}",
                std::process::id(),
                caravan_driver::procfs::now_nanos()
            ));
            std::fs::create_dir_all(&d).unwrap();
            TempDir(d)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    const MS: i64 = 1_000_000;

    fn e(at: i64, s: &str) -> Entry {
        Entry {
            at: Some(at),
            span: 0,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn splits_timestamps_of_both_engines() {
        // dockerd trims trailing zeros of the fraction; Podman may give a local offset.
        let got = split_timestamped(
            b"2024-03-01T12:30:15.5Z tick 1\n2024-03-01T14:30:15.000000001+02:00 tick 2\n",
        );
        assert_eq!(
            got,
            vec![
                e(1_709_296_215_500_000_000, "tick 1\n"),
                e(1_709_296_215_000_000_001, "tick 2\n")
            ]
        );
        // A part without a newline, then a line of the container that itself starts with a
        // time: only the engine's prefix goes.
        assert_eq!(
            split_timestamped(b"2024-03-01T12:30:15Z 2024-01-01T00:00:00Z x"),
            vec![Entry {
                span: S - 1,
                ..e(1_709_296_215 * S, "2024-01-01T00:00:00Z x")
            }]
        );
        assert_eq!(
            split_timestamped(b"no stamp\n"),
            vec![Entry {
                at: None,
                span: 0,
                bytes: b"no stamp\n".to_vec()
            }]
        );
    }

    #[test]
    fn resumes_after_what_the_files_hold() {
        let at = 100 * S;
        let c = |tail: &str| Collected {
            written_at: at,
            tail: tail.as_bytes().to_vec(),
        };
        let entries: VecDeque<Entry> = [
            e(at - 400 * MS, "tick 1\n"),
            e(at - 200 * MS, "tick 2\n"),
            // Stamped just after the file's (coarse) time, and yet written.
            e(at + 2 * MS, "tick 3\n"),
            e(at + 60 * MS, "tick 4\n"),
        ]
        .into();
        assert_eq!(
            already_written(&entries, &c("tick 0\ntick 1\ntick 2\ntick 3\n")),
            3
        );
        // The file ends before the output stamped near its time: that output is sent.
        assert_eq!(already_written(&entries, &c("tick 0\ntick 1\ntick 2\n")), 2);
        // Nothing matches: what is stamped well before the last write was written.
        assert_eq!(already_written(&entries, &c("other\n")), 2);
        // The previous agent wrote nothing of the stream.
        assert_eq!(already_written(&entries, &c("")), 0);

        // Whole-second times (Podman): the file's bytes decide within the second.
        let whole = |s: &str| Entry {
            span: S - 1,
            ..e(at, s)
        };
        let entries: VecDeque<Entry> = [
            Entry {
                span: S - 1,
                ..e(at - S, "tick 0\n")
            },
            whole("tick 1\n"),
            whole("tick 2\n"),
            whole("tick 3\n"),
        ]
        .into();
        let c = Collected {
            written_at: at + 300 * MS,
            tail: b"tick 0\ntick 1\ntick 2\n".to_vec(),
        };
        assert_eq!(already_written(&entries, &c), 3);
    }

    #[test]
    fn holds_back_until_past_the_last_write() {
        let at = 100 * S;
        let mut r = Resuming::new(Some(Collected {
            written_at: at,
            tail: b"a\nb\n".to_vec(),
        }));
        assert!(r.push(e(at - S, "a\n")).is_empty());
        assert!(r.push(e(at - 10 * MS, "b\n")).is_empty());
        assert!(r.push(e(at + 20 * MS, "c\n")).is_empty());
        let out = r.push(e(at + S, "d\n"));
        assert_eq!(out, vec![e(at + 20 * MS, "c\n"), e(at + S, "d\n")]);
        assert!(!r.holding());
        assert_eq!(r.push(e(at - S, "late\n")), vec![e(at - S, "late\n")]);
        // Without a file of the stream, everything passes.
        let mut fresh = Resuming::new(None);
        assert_eq!(fresh.push(e(at, "x\n")), vec![e(at, "x\n")]);
    }

    #[test]
    fn finds_the_rotated_log_files_of_a_fifo() {
        let d = TempDir::new("rotated");
        let fifo = d.path().join(".web.stdout.fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo(3) on a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert_eq!(collected(&fifo), None);
        std::fs::write(d.path().join("web.stdout.9"), b"old ").unwrap();
        std::fs::write(d.path().join("web.stdout.10"), b"new\n").unwrap();
        std::fs::write(d.path().join("web.stderr.11"), b"other").unwrap();
        let c = collected(&fifo).unwrap();
        assert_eq!(c.tail, b"old new\n");
        let mtime = std::fs::metadata(d.path().join("web.stdout.10"))
            .unwrap()
            .modified()
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert_eq!(c.written_at, mtime);
        // A plain file is its own log.
        let plain = d.path().join("plain");
        std::fs::write(&plain, b"x").unwrap();
        assert_eq!(collected(&plain).unwrap().tail, b"x");
        assert_eq!(collected(&d.path().join("missing")), None);
    }
}
