//! Host-process helpers shared by the drivers that run tasks as processes (raw_exec, exec,
//! java): resolving the task's user, opening its output FIFOs without blocking, and waiting
//! for a task's main process to exit.

use crate::error::DriverError;
use crate::procfs;
use crate::task::ExitResult;
use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::time::Duration;

/// How often a non-child process is checked for exit.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The user a task runs as, resolved before fork.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Resolves the task's `user`: `None` when the task runs as the agent's own user.
/// Switching to another user needs the agent to run as root.
pub fn resolve_user(user: &str) -> Result<Option<Identity>, DriverError> {
    if user.is_empty() {
        return Ok(None);
    }
    let u = nix::unistd::User::from_name(user)
        .map_err(|e| DriverError::Start(format!("cannot look up user {user:?}: {e}")))?
        .ok_or_else(|| {
            DriverError::InvalidConfig(format!("user {user:?} does not exist on this client"))
        })?;
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        let groups = CString::new(user)
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, u.gid).ok())
            .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
            .unwrap_or_else(|| vec![u.gid.as_raw()]);
        return Ok(Some(Identity {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            groups,
        }));
    }
    if u.uid == euid {
        return Ok(None);
    }
    Err(DriverError::Start(format!(
        "cannot run task as user {user:?}: the agent runs as uid {euid}, and only root can \
         switch users; run the agent as root or remove `user` from the task"
    )))
}

/// Opens where a task's stdout or stderr goes: an empty path is `/dev/null`, a missing path
/// or a regular file is appended to, and a FIFO (the client's log monitor reads it) is opened
/// read-write. Read-write never blocks the opener, whether or not the monitor is reading yet,
/// and it keeps the task alive while no monitor reads (e.g. during an agent restart): its
/// writes wait for the next monitor instead of failing with SIGPIPE.
pub fn open_output(path: &Path) -> Result<File, DriverError> {
    let fail = |e: std::io::Error| {
        DriverError::Start(format!("cannot open task output {}: {e}", path.display()))
    };
    if path.as_os_str().is_empty() {
        return OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .map_err(fail);
    }
    let is_fifo = std::fs::metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false);
    if is_fifo {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(fail)
    } else {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(fail)
    }
}

/// Waits for `pid` to exit and returns how it ended: `waitpid` for a child of this process
/// (which also reaps it), polling `/proc` (with `start_ticks` to detect pid reuse) for a
/// process that is not our child, e.g. one recovered after an agent restart. When `pid` is a
/// task shim ([`crate::shim`]), `status_file` is where it wrote the task's real exit status,
/// which is then the answer, also for a task that ended while no agent ran. Without it, the
/// status of a process that is not our child is unknown (`err` is set).
pub fn wait_for_exit(pid: i32, start_ticks: u64, status_file: Option<&Path>) -> ExitResult {
    let recorded = || status_file.and_then(crate::shim::read_status);
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, code)) => {
                return recorded().unwrap_or(ExitResult {
                    exit_code: code,
                    ..Default::default()
                })
            }
            Ok(WaitStatus::Signaled(_, sig, _)) => {
                // A shim killed together with its task (SIGKILL to the group) wrote nothing.
                let sig = sig as i32;
                return recorded().unwrap_or(ExitResult {
                    exit_code: 128 + sig,
                    signal: sig,
                    ..Default::default()
                });
            }
            Ok(_) | Err(Errno::EINTR) => continue,
            // Not our child (recovered after an agent restart), or reaped elsewhere.
            Err(_) => break,
        }
    }
    while procfs::is_alive(pid, start_ticks) {
        std::thread::sleep(POLL_INTERVAL);
    }
    recorded().unwrap_or_else(|| ExitResult {
        err: Some(
            "task process exited while not a child of this agent (recovered after a restart); \
             its exit status is unknown"
                .into(),
        ),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_invalid_config() {
        let e = resolve_user("no-such-user-caravan").unwrap_err();
        assert!(matches!(e, DriverError::InvalidConfig(_)), "{e}");
        assert_eq!(resolve_user("").unwrap(), None);
    }
}
