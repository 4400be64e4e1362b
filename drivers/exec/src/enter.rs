//! Running a command inside a running task (`exec`, Nomad's `alloc exec`): the command joins
//! the task's cgroup and its IPC, UTS, PID and mount namespaces, its root and working
//! directory, and runs as the task's user with the task's capabilities.
//!
//! Joining a PID namespace only applies to children, so the process std spawns does the
//! joins and then forks once more: the grandchild (inside the task's PID namespace) execs
//! the command, the middle process waits for it and exits with its status. The spawn
//! returns once the grandchild execs (or fails to), like any other spawn.

use crate::child::{drop_privileges, Privileges};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Closes every descriptor from `first` on (async-signal-safe: close_range, else close).
unsafe fn close_from(first: libc::c_int) {
    if libc::syscall(
        libc::SYS_close_range,
        first as libc::c_uint,
        libc::c_uint::MAX,
        0,
    ) == 0
    {
        return;
    }
    let max = match libc::sysconf(libc::_SC_OPEN_MAX) {
        n if n > 0 => n.min(1 << 20) as libc::c_int,
        _ => 1024,
    };
    for fd in first..max {
        libc::close(fd);
    }
}

/// The handles of a running task that a command needs to enter it.
#[derive(Debug)]
pub struct Enter {
    /// `(namespace fd, CLONE_NEW* type)`, joined in order.
    namespaces: Vec<(File, libc::c_int)>,
    /// The task's root directory (`/proc/<pid>/root`).
    root: File,
    work_dir: CString,
    cgroup_procs: Vec<File>,
    privileges: Privileges,
}

impl Enter {
    /// Opens the namespaces and root of host process `pid` (the task's main process).
    pub fn open(
        pid: i32,
        work_dir: &str,
        cgroup_procs: Vec<File>,
        privileges: Privileges,
    ) -> std::io::Result<Enter> {
        let mut namespaces = Vec::new();
        // The mount namespace last: after it, /proc paths of the host are gone.
        for (name, kind) in [
            ("ipc", libc::CLONE_NEWIPC),
            ("uts", libc::CLONE_NEWUTS),
            ("pid", libc::CLONE_NEWPID),
            ("mnt", libc::CLONE_NEWNS),
        ] {
            namespaces.push((File::open(format!("/proc/{pid}/ns/{name}"))?, kind));
        }
        let root = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
            .open(format!("/proc/{pid}/root"))?;
        let work_dir = CString::new(work_dir)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))?;
        Ok(Enter {
            namespaces,
            root,
            work_dir,
            cgroup_procs,
            privileges,
        })
    }

    /// Installs the entering steps on `cmd` (run between fork and exec).
    pub fn install(self, cmd: &mut Command) {
        let setup = move || -> std::io::Result<()> {
            let err = || Err(std::io::Error::last_os_error());
            // SAFETY: only async-signal-safe system calls on fds and strings prepared before
            // fork; the middle process never returns from here (it _exits).
            unsafe {
                for f in &self.cgroup_procs {
                    if libc::write(f.as_raw_fd(), b"0".as_ptr() as *const libc::c_void, 1) < 0 {
                        return err();
                    }
                }
                for (fd, kind) in &self.namespaces {
                    if libc::setns(fd.as_raw_fd(), *kind) < 0 {
                        return err();
                    }
                }
                if libc::fchdir(self.root.as_raw_fd()) < 0
                    || libc::chroot(c".".as_ptr()) < 0
                    || libc::chdir(c"/".as_ptr()) < 0
                    || libc::chdir(self.work_dir.as_ptr()) < 0
                {
                    return err();
                }
                let child = libc::fork();
                if child < 0 {
                    return err();
                }
                if child > 0 {
                    // The middle process: wait for the command and pass its status on.
                    // It needs no descriptor but stdio: closing the rest drops its copy of
                    // the spawner's exec-status pipe, so the spawner returns once the command
                    // execs (not once it exits: an interactive exec feeds it meanwhile).
                    close_from(3);
                    let mut status = 0;
                    loop {
                        let r = libc::waitpid(child, &mut status, 0);
                        if r == child {
                            break;
                        }
                        if r < 0 && *libc::__errno_location() != libc::EINTR {
                            libc::_exit(127);
                        }
                    }
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    libc::_exit(code);
                }
                // The command: dies with the middle process (e.g. on an exec timeout).
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
                if drop_privileges(&self.privileges).is_err() {
                    return err();
                }
            }
            Ok(())
        };
        // SAFETY: the closure only makes async-signal-safe calls (see above).
        unsafe {
            cmd.pre_exec(setup);
        }
    }
}
