//! Log capture for every driver (Nomad's logmon): a [`LogMon`] reads a task's stdout or
//! stderr FIFO and writes it into size-rotated files through a [`RotatingWriter`], which
//! drivers that get logs some other way (docker) can also use directly.

mod logmon;
mod rotator;

pub use logmon::LogMon;
pub use rotator::RotatingWriter;

use std::path::PathBuf;
use thiserror::Error;

/// Errors setting up log capture.
#[derive(Debug, Error)]
pub enum LogError {
    #[error("log path {path:?} exists and is not a FIFO; remove it")]
    NotAFifo { path: PathBuf },
    #[error("cannot create FIFO {path:?}: {source}")]
    CreateFifo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open FIFO {path:?} for reading: {source}")]
    OpenFifo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open log files in {dir:?}: {source}")]
    LogFiles {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start log thread: {0}")]
    Thread(std::io::Error),
}
