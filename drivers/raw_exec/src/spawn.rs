//! Starting a raw_exec process: finding the program, opening the log FIFOs without blocking,
//! switching user, and the setup done in the child between fork and exec.

use crate::config::RawExecConfig;
use caravan_driver::{DriverError, TaskConfig};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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

/// Builds the task's environment-exact command and starts it in its own session.
pub fn spawn(cfg: &TaskConfig, rc: &RawExecConfig) -> Result<Spawned, DriverError> {
    let identity = resolve_user(&cfg.user)?;
    let program = resolve_program(&rc.command, cfg);
    let stdout = open_output(&cfg.stdout_path)?;
    let stderr = open_output(&cfg.stderr_path)?;
    let mut cmd = Command::new(&program);
    cmd.args(&rc.args)
        .env_clear()
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
    // The child is reaped by the monitor thread through waitpid on this pid.
    drop(child);
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

    #[test]
    fn unknown_user_is_invalid_config() {
        let e = resolve_user("no-such-user-caravan").unwrap_err();
        assert!(matches!(e, DriverError::InvalidConfig(_)), "{e}");
        assert_eq!(resolve_user("").unwrap(), None);
    }
}
