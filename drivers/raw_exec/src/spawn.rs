//! Starting a raw_exec process: finding the program, opening the log FIFOs without blocking,
//! switching user, and the setup done in the child between fork and exec.

use crate::config::RawExecConfig;
pub use caravan_driver::process::{open_output, resolve_user, Identity};
use caravan_driver::shim::ShimFds;
use caravan_driver::{DriverError, TaskConfig};
use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Finds the program like Nomad: a path with a `/` is taken as is (relative to the task
/// dir); a bare name is looked up in `local/`, the task dir, the task's `PATH`, then the
/// agent's `PATH`. Unfound names are returned unchanged so that exec reports the OS error.
pub fn resolve_program(command: &str, cfg: &TaskConfig) -> PathBuf {
    let path = Path::new(command);
    if command.contains('/') {
        if path.is_absolute() || cfg.task_dir.as_os_str().is_empty() {
            return path.to_path_buf();
        }
        return cfg.task_dir.join(path);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    for d in [&cfg.local_dir, &cfg.task_dir] {
        if !d.as_os_str().is_empty() {
            dirs.push(d.clone());
        }
    }
    let agent_path = std::env::var("PATH").unwrap_or_default();
    for p in [cfg.env.get("PATH").map(String::as_str), Some(&agent_path)]
        .into_iter()
        .flatten()
    {
        dirs.extend(p.split(':').filter(|s| !s.is_empty()).map(PathBuf::from));
    }
    dirs.into_iter()
        .map(|d| d.join(command))
        .find(|c| is_executable(c))
        .unwrap_or_else(|| path.to_path_buf())
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Installs the child-side setup run between fork and exec: optionally a new session
/// (so the task leads its own process group), default dispositions for the stop signals,
/// and the user switch.
pub fn child_setup(cmd: &mut Command, identity: Option<Identity>, new_session: bool) {
    let setup = move || -> std::io::Result<()> {
        // SAFETY: only async-signal-safe syscalls on data prepared before fork.
        unsafe {
            if new_session && libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in [
                libc::SIGINT,
                libc::SIGTERM,
                libc::SIGHUP,
                libc::SIGQUIT,
                libc::SIGPIPE,
            ] {
                libc::signal(sig, libc::SIG_DFL);
            }
            if let Some(id) = &identity {
                if libc::setgroups(id.groups.len(), id.groups.as_ptr()) < 0
                    || libc::setgid(id.gid) < 0
                    || libc::setuid(id.uid) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    };
    // SAFETY: the closure above only makes async-signal-safe calls.
    unsafe {
        cmd.pre_exec(setup);
    }
}

/// A started task process.
#[derive(Debug, Clone, Copy)]
pub struct Spawned {
    pub pid: i32,
}

/// Builds the task's environment-exact command and starts it in its own session, under the
/// task shim when one is installed (see [`caravan_driver::shim`]).
pub fn spawn(cfg: &TaskConfig, rc: &RawExecConfig) -> Result<Spawned, DriverError> {
    let identity = resolve_user(&cfg.user)?;
    let program = resolve_program(&rc.command, cfg);
    let stdout = open_output(&cfg.stdout_path)?;
    let stderr = open_output(&cfg.stderr_path)?;
    let shim = match caravan_driver::shim::for_task(cfg) {
        Some((exe, status)) => Some((
            exe,
            ShimFds::open(&status).map_err(|e| {
                DriverError::Start(format!("cannot open {}: {e}", status.display()))
            })?,
        )),
        None => None,
    };
    let mut cmd = match &shim {
        Some((exe, fds)) => {
            let c = |s: &str| {
                CString::new(s)
                    .map_err(|_| DriverError::InvalidConfig(format!("{s:?} contains a NUL byte")))
            };
            let argv = std::iter::once(program.to_string_lossy().as_ref())
                .chain(rc.args.iter().map(String::as_str))
                .map(c)
                .collect::<Result<Vec<_>, _>>()?;
            let prog = CString::new(program.as_os_str().as_bytes()).map_err(|_| {
                DriverError::InvalidConfig(format!("{:?} contains a NUL byte", rc.command))
            })?;
            let mut cmd = Command::new(exe);
            cmd.arg0("caravan-shim").args(
                fds.args(&[prog], &argv)
                    .into_iter()
                    .map(|a| std::ffi::OsString::from_vec(a.into_bytes())),
            );
            let (status_fd, err_fd) = (fds.status.as_raw_fd(), fds.err_write.as_raw_fd());
            // SAFETY: fcntl only, between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    if caravan_driver::shim::inherit(status_fd, err_fd) {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
            cmd
        }
        None => {
            let mut cmd = Command::new(&program);
            cmd.args(&rc.args);
            cmd
        }
    };
    cmd.env_clear()
        .envs(&cfg.env)
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(stderr));
    let cwd = rc
        .work_dir
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| cfg.task_dir.clone());
    if !cwd.as_os_str().is_empty() {
        cmd.current_dir(&cwd);
    }
    child_setup(&mut cmd, identity, true);
    let child = cmd.spawn().map_err(|e| {
        DriverError::Start(format!("failed to start command {:?}: {e}", rc.command))
    })?;
    let pid = i32::try_from(child.id())
        .map_err(|_| DriverError::Start(format!("pid {} out of range", child.id())))?;
    drop(child);
    if let Some((_, fds)) = shim {
        if let Err(errno) = fds.await_exec() {
            // The shim exits at once; reap it so no zombie is left.
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            return Err(DriverError::Start(format!(
                "failed to start command {:?}: {}",
                rc.command,
                std::io::Error::from_raw_os_error(errno)
            )));
        }
    }
    // The child is reaped by the monitor thread through waitpid on this pid.
    Ok(Spawned { pid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_bare_names_through_path() {
        let mut cfg = TaskConfig::default();
        cfg.env.insert("PATH".into(), "/usr/bin:/bin".into());
        let p = resolve_program("sh", &cfg);
        assert!(p.is_absolute(), "{p:?}");
        assert_eq!(resolve_program("/no/such", &cfg), PathBuf::from("/no/such"));
        assert_eq!(
            resolve_program("no-such-program-xyz", &cfg),
            PathBuf::from("no-such-program-xyz")
        );
        cfg.task_dir = "/srv/task".into();
        assert_eq!(
            resolve_program("./run.sh", &cfg),
            PathBuf::from("/srv/task/./run.sh")
        );
    }
}
