//! Streams a container's output from the engine's logs API into the task's stdout and stderr
//! FIFOs, which the client's LogMon copies into rotated log files (no helper process per task).
//! A path that is not a FIFO is appended to as a plain file.

use crate::engine::{describe, Engine};
use bollard::container::{LogOutput, LogsOptions};
use futures_util::StreamExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;

type Sink = Box<dyn AsyncWrite + Send + Unpin>;

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

/// Starts copying the container's logs from `since` (Unix seconds; 0: from the beginning)
/// until the container stops. The returned task finishes when the engine ends the stream.
pub fn start(
    engine: &Engine,
    container_id: &str,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    since: i64,
) -> JoinHandle<()> {
    let engine = engine.clone();
    let id = container_id.to_string();
    tokio::spawn(async move {
        let mut out = open_sink(&stdout_path).await;
        let mut err = open_sink(&stderr_path).await;
        let options = LogsOptions::<String> {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            tail: "all".to_string(),
            ..Default::default()
        };
        let mut stream = engine.stream.logs(&id, Some(options));
        while let Some(item) = stream.next().await {
            let (sink, bytes) = match item {
                Ok(LogOutput::StdErr { message }) => (&mut err, message),
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    (&mut out, message)
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) => {
                    tracing::warn!(container = %id, "log stream from the engine ended: {}", describe(&e));
                    break;
                }
            };
            if let Some(w) = sink {
                if let Err(e) = w.write_all(&bytes).await {
                    tracing::warn!(container = %id, "cannot write task output: {e}");
                    *sink = None;
                }
            }
        }
        for w in [&mut out, &mut err].into_iter().flatten() {
            let _ = w.flush().await;
        }
        tracing::debug!(container = %id, "log streaming finished");
    })
}
