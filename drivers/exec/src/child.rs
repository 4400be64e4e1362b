//! Starting a task process in new namespaces: `clone(2)` with CLONE_NEWPID/NEWNS/NEWUTS/
//! NEWIPC, then, in the child, joining the task cgroup, the mounts of the chroot,
//! `pivot_root` (or `chroot`), the user switch, capabilities and `no_new_privs`, and
//! `execve`.
//!
//! Everything the child needs is prepared by the parent ([`ChildSpec`]): between `clone`
//! and `execve` the child of a multi-threaded agent may only make async-signal-safe system
//! calls, so it allocates nothing. A failure in the child is reported through a
//! close-on-exec pipe as (step, errno, index); end of file on that pipe means `execve`
//! succeeded.

use crate::caps::CapSet;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::ptr;

/// One mount made in the child, before the root switch (paths are host paths).
#[derive(Debug)]
pub struct Mount {
    pub source: Option<CString>,
    pub target: CString,
    pub fstype: Option<CString>,
    pub flags: libc::c_ulong,
    pub data: Option<CString>,
    /// Flags for a second `MS_REMOUNT | MS_BIND` call (e.g. read-only), if any.
    pub remount: Option<libc::c_ulong>,
    /// Create the target in the child first: `Some(true)` a directory, `Some(false)` a file.
    pub create: Option<bool>,
    /// What the mount is, for error messages.
    pub describe: String,
}

/// Everything the child needs, prepared before `clone`.
#[derive(Debug)]
pub struct ChildSpec {
    pub new_pid_ns: bool,
    pub new_ipc_ns: bool,
    pub hostname: Vec<u8>,
    /// The task dir, the future root.
    pub root: CString,
    pub mounts: Vec<Mount>,
    /// `(target, link path)` symlinks made after the mounts (e.g. `/dev/fd`).
    pub symlinks: Vec<(CString, CString)>,
    pub pivot_root: bool,
    /// Working directory inside the new root.
    pub work_dir: CString,
    pub privileges: Privileges,
    /// Programs to try in order (a bare name looked up along `PATH`).
    pub programs: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub stdin: File,
    pub stdout: File,
    pub stderr: File,
    /// `cgroup.procs` of every task cgroup directory, opened for writing.
    pub cgroup_procs: Vec<File>,
    /// The task shim, executed in place of the program, which it then runs and waits for.
    pub shim: Option<ChildShim>,
}

/// The task shim of [`caravan_driver::shim`], as the child needs it.
#[derive(Debug)]
pub struct ChildShim {
    /// The shim program, opened before the root switch (it is run by descriptor, so it
    /// needs no path inside the task's root).
    pub exe: OwnedFd,
    /// Where it records the task's exit status.
    pub status: File,
}

/// Opens the installed shim and the task's (emptied) status file; None without a shim.
pub fn shim_for(cfg: &caravan_driver::TaskConfig) -> Result<Option<ChildShim>, std::io::Error> {
    let Some((exe, status_path)) = caravan_driver::shim::for_task(cfg) else {
        return Ok(None);
    };
    let exe = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(exe)?;
    let status = caravan_driver::shim::open_status(&status_path)?;
    Ok(Some(ChildShim {
        exe: exe.into(),
        status,
    }))
}

/// Who the task runs as and with which capabilities.
#[derive(Debug, Clone)]
pub struct Privileges {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<libc::gid_t>,
    pub caps: CapSet,
    /// Tasks running as root keep their capabilities through `execve` without ambient ones.
    pub root_user: bool,
    pub last_cap: u32,
}

/// Steps of the child's setup, as reported on failure.
const STEPS: &[&str] = &[
    "set up stdin/stdout/stderr",
    "join the task cgroup",
    "start a new session",
    "set the hostname",
    "make mounts private",
    "mount",
    "remount read-only",
    "create a symlink",
    "pivot_root into the task dir",
    "chroot into the task dir",
    "change to the working directory",
    "drop bounding capabilities",
    "keep capabilities across the user switch",
    "set supplementary groups",
    "set the group id",
    "set the user id",
    "set capabilities",
    "raise ambient capabilities",
    "set no_new_privs",
    "exec the command",
    "create a mount point",
    "start the task shim",
];
const STEP_EXEC: u32 = 19;
const STEP_SHIM: u32 = 21;

/// Why the child could not start the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildError {
    /// What failed, e.g. "mount /usr".
    pub step: String,
    pub errno: i32,
    /// True when everything but `execve` itself worked (e.g. the command is missing).
    pub exec_failed: bool,
}

impl std::error::Error for ChildError {}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {}: {}",
            self.step,
            std::io::Error::from_raw_os_error(self.errno)
        )
    }
}

/// Pointers the child reads; they point into the parent's memory, which the child has a
/// copy of (no CLONE_VM).
struct ChildArgs<'a> {
    spec: &'a ChildSpec,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    err_fd: RawFd,
    /// The shim's argv (empty without a shim).
    shim_argv: Vec<*const libc::c_char>,
}

const STACK_SIZE: usize = 256 * 1024;

/// Starts the task: clones the child into its namespaces and waits until it has exec'd the
/// command (Ok with its host pid) or failed (the child is reaped, Err).
pub fn spawn(spec: &ChildSpec) -> Result<i32, std::io::Error> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nothing else.
    let (read_end, write_end) =
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let ptrs = |v: &[CString]| {
        let mut p: Vec<*const libc::c_char> = v.iter().map(|s| s.as_ptr()).collect();
        p.push(ptr::null());
        p
    };
    // The shim reports a failed exec of the program on our error pipe, in our format.
    let shim_args: Vec<CString> = match &spec.shim {
        Some(sh) => {
            let num = |n: i64| CString::new(n.to_string()).unwrap_or_default();
            let mut v = vec![
                CString::from(c"caravan-shim"),
                num(sh.status.as_raw_fd().into()),
                num(write_end.as_raw_fd().into()),
                num(spec.programs.len() as i64),
            ];
            v.extend(spec.programs.iter().cloned());
            v.extend(spec.argv.iter().cloned());
            v
        }
        None => Vec::new(),
    };
    let args = ChildArgs {
        spec,
        argv: ptrs(&spec.argv),
        envp: ptrs(&spec.envp),
        err_fd: write_end.as_raw_fd(),
        shim_argv: if shim_args.is_empty() {
            Vec::new()
        } else {
            ptrs(&shim_args)
        },
    };
    let mut stack = vec![0u8; STACK_SIZE];
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::SIGCHLD;
    if spec.new_pid_ns {
        flags |= libc::CLONE_NEWPID;
    }
    if spec.new_ipc_ns {
        flags |= libc::CLONE_NEWIPC;
    }
    // SAFETY: sigset_t is plain data; the calls only fill and apply masks. All signals are
    // blocked across clone so that no handler of the agent runs in the child before it
    // resets dispositions.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        // The stack grows down on every architecture Linux runs this on; align the top.
        let top = stack.as_mut_ptr().add(STACK_SIZE);
        let top = (top as usize & !15) as *mut libc::c_void;
        // SAFETY: without CLONE_VM the child gets a copy of our memory, so `args` and the
        // stack stay valid for it; child_main only makes async-signal-safe calls and never
        // returns into Rust code of the parent.
        let pid = libc::clone(
            child_main,
            top,
            flags,
            &args as *const ChildArgs as *mut libc::c_void,
        );
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut());
        pid
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(write_end);
    let mut report = Vec::new();
    let mut pipe = File::from(read_end);
    let _ = pipe.read_to_end(&mut report);
    drop(stack);
    if report.len() < 12 {
        return Ok(pid);
    }
    let word = |i: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&report[i * 4..i * 4 + 4]);
        u32::from_ne_bytes(b)
    };
    let (step, errno, index) = (word(0), word(1) as i32, word(2) as usize);
    // Reap the failed child so no zombie is left.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    let mut what = STEPS
        .get(step as usize)
        .copied()
        .unwrap_or("set up")
        .to_string();
    if let Some(m) = spec
        .mounts
        .get(index)
        .filter(|_| matches!(step, 5 | 6 | 20))
    {
        what = format!("{what} {}", m.describe);
    }
    Err(std::io::Error::other(ChildError {
        step: what,
        errno,
        exec_failed: step == STEP_EXEC,
    }))
}

/// Writes (step, errno, index) to the error pipe and exits.
///
/// SAFETY (for callers): only async-signal-safe calls.
unsafe fn fail(err_fd: RawFd, step: u32, index: usize) -> ! {
    let errno = *libc::__errno_location();
    let mut buf = [0u8; 12];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..8].copy_from_slice(&errno.to_ne_bytes());
    buf[8..].copy_from_slice(&(index as u32).to_ne_bytes());
    libc::write(err_fd, buf.as_ptr() as *const libc::c_void, buf.len());
    libc::_exit(127)
}

/// Switches to the task's user and capabilities: drops the bounding set to `caps`, keeps
/// capabilities across `setuid`, sets `caps` as permitted/effective (and inheritable and
/// ambient for non-root users, so they survive `execve`), and sets `no_new_privs`. On error
/// returns the failed step (see `STEPS`) with `errno` set.
///
/// # Safety
/// Only async-signal-safe system calls: callable between fork and exec.
pub unsafe fn drop_privileges(p: &Privileges) -> Result<(), u32> {
    for cap in 0..=p.last_cap {
        if !p.caps.contains(cap)
            && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0
            && *libc::__errno_location() != libc::EINVAL
        {
            return Err(11);
        }
    }
    if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0 {
        return Err(12);
    }
    // Raw system calls, not glibc's wrappers: those broadcast the change to every thread
    // glibc believes exists (its setxid protocol), and in a child made by a bare `clone` of
    // a multi-threaded agent that list names the parent's threads, so the wrapper can wait
    // forever on a lock one of them held at clone time. The child has one thread.
    if libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) < 0 {
        return Err(13);
    }
    if libc::syscall(libc::SYS_setgid, p.gid) < 0 {
        return Err(14);
    }
    if libc::syscall(libc::SYS_setuid, p.uid) < 0 {
        return Err(15);
    }
    let mask = p.caps.0;
    let inheritable = if p.root_user { 0 } else { mask };
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: mask as u32,
            permitted: mask as u32,
            inheritable: inheritable as u32,
        },
        CapData {
            effective: (mask >> 32) as u32,
            permitted: (mask >> 32) as u32,
            inheritable: (inheritable >> 32) as u32,
        },
    ];
    if libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) < 0 {
        return Err(16);
    }
    if !p.root_user {
        for cap in 0..=p.last_cap {
            if p.caps.contains(cap)
                && libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                    cap as libc::c_ulong,
                    0,
                    0,
                ) < 0
            {
                return Err(17);
            }
        }
    }
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
        return Err(18);
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// The child: runs on its own stack in the new namespaces.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` points at the ChildArgs in our copy of the parent's memory. Every call
    // below is an async-signal-safe system call on data prepared before clone; on error the
    // child reports and _exits, on success execve replaces it.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        let s = a.spec;
        let e = a.err_fd;
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());

        if libc::dup2(s.stdin.as_raw_fd(), 0) < 0
            || libc::dup2(s.stdout.as_raw_fd(), 1) < 0
            || libc::dup2(s.stderr.as_raw_fd(), 2) < 0
        {
            fail(e, 0, 0);
        }
        for f in &s.cgroup_procs {
            if libc::write(f.as_raw_fd(), b"0".as_ptr() as *const libc::c_void, 1) < 0 {
                fail(e, 1, 0);
            }
        }
        if libc::setsid() < 0 {
            fail(e, 2, 0);
        }
        if !s.hostname.is_empty()
            && libc::sethostname(s.hostname.as_ptr() as *const libc::c_char, s.hostname.len()) < 0
        {
            fail(e, 3, 0);
        }
        if libc::mount(
            ptr::null(),
            c"/".as_ptr(),
            ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            ptr::null(),
        ) < 0
        {
            fail(e, 4, 0);
        }
        let opt = |c: &Option<CString>| c.as_ref().map_or(ptr::null(), |c| c.as_ptr());
        for (i, m) in s.mounts.iter().enumerate() {
            match m.create {
                Some(true)
                    if libc::mkdir(m.target.as_ptr(), 0o755) < 0
                        && *libc::__errno_location() != libc::EEXIST =>
                {
                    fail(e, 20, i);
                }
                Some(true) => {}
                Some(false) => {
                    let fd = libc::open(
                        m.target.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                        0o644,
                    );
                    if fd < 0 {
                        fail(e, 20, i);
                    }
                    libc::close(fd);
                }
                None => {}
            }
            if libc::mount(
                opt(&m.source),
                m.target.as_ptr(),
                opt(&m.fstype),
                m.flags,
                opt(&m.data) as *const libc::c_void,
            ) < 0
            {
                fail(e, 5, i);
            }
            if let Some(flags) = m.remount {
                if libc::mount(
                    ptr::null(),
                    m.target.as_ptr(),
                    ptr::null(),
                    libc::MS_REMOUNT | libc::MS_BIND | flags,
                    ptr::null(),
                ) < 0
                {
                    fail(e, 6, i);
                }
            }
        }
        for (target, link) in &s.symlinks {
            if libc::symlink(target.as_ptr(), link.as_ptr()) < 0
                && *libc::__errno_location() != libc::EEXIST
            {
                fail(e, 7, 0);
            }
        }
        if libc::chdir(s.root.as_ptr()) < 0 {
            fail(e, if s.pivot_root { 8 } else { 9 }, 0);
        }
        if s.pivot_root {
            // pivot_root(".", ".") stacks the old root on top of the new one; detaching it
            // leaves only the task's tree.
            if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) < 0
                || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0
            {
                fail(e, 8, 0);
            }
        } else if libc::chroot(c".".as_ptr()) < 0 {
            fail(e, 9, 0);
        }
        if libc::chdir(c"/".as_ptr()) < 0 || libc::chdir(s.work_dir.as_ptr()) < 0 {
            fail(e, 10, 0);
        }
        if let Err(step) = drop_privileges(&s.privileges) {
            fail(e, step, 0);
        }
        if let Some(sh) = &s.shim {
            // The shim inherits the status file and the error pipe, then runs the program.
            if libc::fcntl(sh.status.as_raw_fd(), libc::F_SETFD, 0) < 0
                || libc::fcntl(e, libc::F_SETFD, 0) < 0
            {
                fail(e, STEP_SHIM, 0);
            }
            libc::syscall(
                libc::SYS_execveat,
                sh.exe.as_raw_fd(),
                c"".as_ptr(),
                a.shim_argv.as_ptr(),
                a.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            );
            fail(e, STEP_SHIM, 0);
        }
        // Like execvp: try each candidate, remember the most telling error.
        let mut saved = libc::ENOENT;
        for p in &s.programs {
            libc::execve(p.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
            let err = *libc::__errno_location();
            match err {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saved = libc::EACCES,
                other => {
                    saved = other;
                    break;
                }
            }
        }
        *libc::__errno_location() = saved;
        fail(e, STEP_EXEC, 0)
    }
}
