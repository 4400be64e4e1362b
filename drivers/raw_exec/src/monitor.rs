//! Watching a task's main process until it exits: `waitpid` for our own children (which
//! also reaps them, so no zombies stay behind), polling `/proc` for processes recovered from
//! an earlier agent, which are not our children.

use caravan_driver::procfs;
use caravan_driver::ExitResult;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::time::Duration;
use tokio::sync::watch;

/// How often a non-child process is checked for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The end of a task, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    pub result: ExitResult,
    /// Unix nanoseconds.
    pub completed_at: i64,
}

/// Starts a thread that waits for `pid` to exit and publishes the result on `tx`.
pub fn start(pid: i32, start_ticks: u64, tx: watch::Sender<Option<Exited>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("raw_exec-wait-{pid}"))
        .spawn(move || {
            let result = wait_for_exit(pid, start_ticks);
            tracing::debug!(pid, ?result, "task process exited");
            tx.send_replace(Some(Exited {
                result,
                completed_at: procfs::now_nanos(),
            }));
        })
        .map(|_| ())
}

fn wait_for_exit(pid: i32, start_ticks: u64) -> ExitResult {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => {
                return ExitResult {
                    exit_code: code,
                    ..Default::default()
                }
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                let sig = sig as i32;
                return ExitResult {
                    exit_code: 128 + sig,
                    signal: sig,
                    ..Default::default()
                };
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            // Not our child (recovered after an agent restart), or reaped elsewhere.
            Err(_) => break,
        }
    }
    while procfs::is_alive(pid, start_ticks) {
        std::thread::sleep(POLL_INTERVAL);
    }
    ExitResult {
        err: Some(
            "task process exited while not a child of this agent (recovered after a restart); \
             its exit status is unknown"
                .into(),
        ),
        ..Default::default()
    }
}
