//! The errors a benchmark run can end with, each saying what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `-h` / `--help`: not an error, the usage is printed.
    #[error("help requested")]
    Help,
    #[error("{0} (run `caravan-bench --help` for usage)")]
    Usage(String),
    #[error("cannot find the caravan binary at {}: build it with `cargo build --release --bin caravan` or pass --caravan PATH", .0.display())]
    CaravanMissing(PathBuf),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the agent did not answer /v1/agent/health within {secs} s; its output is in {}", .log.display())]
    NotHealthy { secs: u64, log: PathBuf },
    #[error("the agent exited early ({status}); its output is in {}", .log.display())]
    AgentExited { status: String, log: PathBuf },
    #[error("{what} failed: {source} (is the agent still running?)")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{what}: the agent answered HTTP {status}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("{what}: unexpected answer from the agent: {detail}")]
    Decode { what: String, detail: String },
    #[error("timed out after {secs} s waiting for {what}; the agent's output is in {}", .log.display())]
    Timeout {
        what: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("allocation {alloc} of job {job} ended {status:?} instead of running; the agent's output is in {}", .log.display())]
    AllocFailed {
        job: String,
        alloc: String,
        status: String,
        log: PathBuf,
    },
    #[error("the scheduler failed: {0}")]
    Scheduler(#[from] caravan_scheduler::SchedulerError),
    #[error("benchmark(s) failed: {0}")]
    Failed(String),
}
