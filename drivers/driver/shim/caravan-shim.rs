//! caravan-shim: the tiny parent of one task process, so that the task's exit status outlives
//! the agent. The agent starts the shim in the task's context (session, namespaces, root,
//! user, cgroup all set up already) instead of the task's program; the shim forks, execs the
//! program in the child, waits for it and writes how it ended to a status file the agent
//! opened for it. An agent that was killed meanwhile reads the file when it comes back: only
//! a parent can read a child's exit status, and the shim is a parent that does not restart.
//!
//! It links nothing (no libc: raw Linux system calls, x86_64 only) so that it costs about
//! 12 KiB of memory per task and runs inside any chroot. Built by the driver crate's build
//! script with `rustc` directly and embedded in the agent.
//!
//! Command line (all numbers in decimal):
//!   caravan-shim STATUS_FD ERR_FD N PROGRAM_1 .. PROGRAM_N ARGV_0 [ARGS...]
//! STATUS_FD gets one line, `exit CODE` or `signal NUMBER`, when the task ends. ERR_FD (or -1)
//! gets the 12-byte record (step 19 = exec, errno, 0 as native-endian u32s) if no PROGRAM
//! could be executed; it is closed, unwritten, once one was. The programs are tried in order
//! like `execvp`, with the task's environment. The shim ignores every signal it can (stop
//! signals sent to the task's process group are for the task), reaps whatever is reparented
//! to it (it is PID 1 of an exec task's PID namespace) and exits once the task has, with
//! the task's exit code (128 + signal when it was killed).

#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

// The kernel starts us with argc, argv[], NULL, envp[], NULL on the stack.
global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call {entry}",
    "ud2",
    entry = sym entry,
);

const SYS_READ: usize = 0;
const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_FORK: usize = 57;
const SYS_EXECVE: usize = 59;
const SYS_WAIT4: usize = 61;
const SYS_FCNTL: usize = 72;
const SYS_EXIT_GROUP: usize = 231;
const SYS_PIPE2: usize = 293;
const O_CLOEXEC: usize = 0o2000000;

const F_SETFD: usize = 2;
const FD_CLOEXEC: usize = 1;
const SIG_DFL: usize = 0;
const SIG_IGN: usize = 1;
const SIGKILL: usize = 9;
const SIGSTOP: usize = 19;
const SIGCHLD: usize = 17;
const NSIG: usize = 64;
const EINTR: isize = 4;
const ENOENT: isize = 2;
const ENOTDIR: isize = 20;
const EACCES: isize = 13;
const STEP_EXEC: u32 = 19;

/// The kernel's `struct sigaction` on x86_64.
#[repr(C)]
struct SigAction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    asm!(
        "syscall",
        inlateout("rax") n as isize => ret,
        in("rdi") a,
        in("rsi") b,
        in("rdx") c,
        in("r10") d,
        lateout("rcx") _,
        lateout("r11") _,
        options(nostack),
    );
    ret
}

fn exit(code: usize) -> ! {
    // SAFETY: exit_group takes no pointers.
    unsafe {
        syscall4(SYS_EXIT_GROUP, code, 0, 0, 0);
    }
    loop {}
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(127)
}

// What the compiler may call without a libc to provide it. Volatile accesses keep these
// loops from being turned back into calls to themselves.
#[no_mangle]
unsafe extern "C" fn memset(dst: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(dst.add(i), c as u8);
    }
    dst
}

#[no_mangle]
unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        core::ptr::write_volatile(dst.add(i), core::ptr::read_volatile(src.add(i)));
    }
    dst
}

/// Referenced by the prebuilt `core`; never called with `panic=abort`.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

fn rec_byte() -> [u8; 1] {
    [1]
}

/// Parses a decimal argument, `-1` included.
unsafe fn number(s: *const u8) -> Option<isize> {
    let (mut p, mut neg, mut v, mut any) = (s, false, 0isize, false);
    if *p == b'-' {
        neg = true;
        p = p.add(1);
    }
    while *p != 0 {
        let d = (*p).wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(d as isize)?;
        p = p.add(1);
        any = true;
    }
    any.then_some(if neg { -v } else { v })
}

unsafe fn set_all_signals(handler: usize) {
    for sig in 1..=NSIG {
        if sig == SIGKILL || sig == SIGSTOP || sig == SIGCHLD {
            continue;
        }
        let act = SigAction {
            handler,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        syscall4(SYS_RT_SIGACTION, sig, &act as *const SigAction as usize, 0, 8);
    }
}

/// Writes `prefix` and `n` in decimal and a newline to `fd`.
unsafe fn write_status(fd: isize, prefix: &[u8], n: usize) {
    let mut buf = [0u8; 32];
    let mut len = 0;
    for &b in prefix {
        buf[len] = b;
        len += 1;
    }
    let mut digits = [0u8; 20];
    let (mut i, mut v) = (0, n);
    loop {
        digits[i] = b'0' + (v % 10) as u8;
        i += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while i > 0 {
        i -= 1;
        buf[len] = digits[i];
        len += 1;
    }
    buf[len] = b'\n';
    len += 1;
    syscall4(SYS_WRITE, fd as usize, buf.as_ptr() as usize, len, 0);
}

unsafe extern "C" fn entry(sp: *const usize) -> ! {
    let argc = *sp;
    let argv = sp.add(1) as *const *const u8;
    let envp = sp.add(2 + argc) as *const *const u8;
    if argc < 5 {
        exit(127);
    }
    let (Some(status_fd), Some(err_fd), Some(n)) = (
        number(*argv.add(1)),
        number(*argv.add(2)),
        number(*argv.add(3)),
    ) else {
        exit(127);
    };
    let n = n as usize;
    if n == 0 || 4 + n >= argc {
        exit(127);
    }
    let programs = argv.add(4);
    let task_argv = argv.add(4 + n);
    // Neither descriptor is the task's business.
    syscall4(SYS_FCNTL, status_fd as usize, F_SETFD, FD_CLOEXEC, 0);
    if err_fd >= 0 {
        syscall4(SYS_FCNTL, err_fd as usize, F_SETFD, FD_CLOEXEC, 0);
    }
    set_all_signals(SIG_IGN);
    // Tells us whether the program was executed: end of file once it was, a byte if not.
    let mut started = [0i32; 2];
    if syscall4(SYS_PIPE2, started.as_mut_ptr() as usize, O_CLOEXEC, 0, 0) < 0 {
        exit(127);
    }

    let pid = syscall4(SYS_FORK, 0, 0, 0, 0);
    if pid < 0 {
        exit(127);
    }
    if pid == 0 {
        set_all_signals(SIG_DFL);
        let empty: u64 = 0;
        syscall4(SYS_RT_SIGPROCMASK, 2, &empty as *const u64 as usize, 0, 8);
        let mut saved = ENOENT;
        for i in 0..n {
            let r = syscall4(
                SYS_EXECVE,
                *programs.add(i) as usize,
                task_argv as usize,
                envp as usize,
                0,
            );
            match -r {
                ENOENT | ENOTDIR => {}
                EACCES => saved = EACCES,
                other => {
                    saved = other;
                    break;
                }
            }
        }
        if err_fd >= 0 {
            let mut rec = [0u8; 12];
            rec[..4].copy_from_slice(&STEP_EXEC.to_ne_bytes());
            rec[4..8].copy_from_slice(&(saved as u32).to_ne_bytes());
            syscall4(SYS_WRITE, err_fd as usize, rec.as_ptr() as usize, 12, 0);
        }
        syscall4(SYS_WRITE, started[1] as usize, rec_byte().as_ptr() as usize, 1, 0);
        exit(127);
    }
    if err_fd >= 0 {
        syscall4(SYS_CLOSE, err_fd as usize, 0, 0, 0);
    }
    syscall4(SYS_CLOSE, started[1] as usize, 0, 0, 0);
    let mut byte = [0u8; 1];
    let failed = loop {
        let r = syscall4(SYS_READ, started[0] as usize, byte.as_mut_ptr() as usize, 1, 0);
        if r != -EINTR {
            break r > 0;
        }
    };
    syscall4(SYS_CLOSE, started[0] as usize, 0, 0, 0);
    let mut status: i32 = 0;
    loop {
        let r = syscall4(SYS_WAIT4, usize::MAX, &mut status as *mut i32 as usize, 0, 0);
        if r == pid {
            break;
        }
        if r < 0 && r != -EINTR {
            // No children left without having seen the task: nothing to report.
            exit(127);
        }
    }
    if failed {
        // No task ran: there is no exit status to record.
        exit(127);
    }
    let sig = (status & 0x7f) as usize;
    if sig == 0 {
        let code = ((status >> 8) & 0xff) as usize;
        write_status(status_fd, b"exit ", code);
        exit(code)
    }
    write_status(status_fd, b"signal ", sig);
    exit(128 + sig)
}
