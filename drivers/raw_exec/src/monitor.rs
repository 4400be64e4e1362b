//! Watching a task's main process until it exits: `waitpid` for our own children (which
//! also reaps them, so no zombies stay behind), polling `/proc` for processes recovered from
//! an earlier agent, which are not our children.

use caravan_driver::process::wait_for_exit;
use caravan_driver::procfs;
use caravan_driver::ExitResult;
use tokio::sync::watch;

/// The end of a task, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    pub result: ExitResult,
    /// Unix nanoseconds.
    pub completed_at: i64,
}

/// Starts a thread that waits for `pid` to exit and publishes the result on `tx`; `status`
/// is the file where the task's shim records the exit status, if it has one.
pub fn start(
    pid: i32,
    start_ticks: u64,
    status: Option<std::path::PathBuf>,
    tx: watch::Sender<Option<Exited>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("raw_exec-wait-{pid}"))
        .spawn(move || {
            let result = wait_for_exit(pid, start_ticks, status.as_deref());
            tracing::debug!(pid, ?result, "task process exited");
            tx.send_replace(Some(Exited {
                result,
                completed_at: procfs::now_nanos(),
            }));
        })
        .map(|_| ())
}
