//! Interactive exec (`alloc exec`, Nomad's `ExecTaskStreaming`): the messages that flow
//! between a caller and a command run inside a task, and [`run_process`], which runs such a
//! command as a local process for the drivers that start tasks as processes (raw_exec, exec,
//! java), with pipes or with a pseudo-terminal as its controlling terminal.

use crate::error::DriverError;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Stdio;
use std::sync::Arc;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// What the caller sends to the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    /// Bytes for the command's standard input.
    Stdin(Vec<u8>),
    /// No more input: stdin is closed (with a TTY: an end-of-file character is typed).
    CloseStdin,
    /// The caller's terminal changed size (ignored without a TTY).
    Resize { height: u16, width: u16 },
}

/// What the command produces. With a TTY everything arrives as `Stdout`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
}

/// The two ends a driver talks through. When the `input` channel closes (its sender is
/// dropped) the caller is gone: the driver kills the command and returns.
#[derive(Debug)]
pub struct ExecStreamIo {
    pub input: mpsc::Receiver<ExecInput>,
    pub output: mpsc::Sender<ExecOutput>,
}

impl ExecStreamIo {
    /// A pair of channels: the caller's ends (input sender, output receiver) and the
    /// driver's.
    pub fn channels(
        depth: usize,
    ) -> (
        mpsc::Sender<ExecInput>,
        mpsc::Receiver<ExecOutput>,
        ExecStreamIo,
    ) {
        let (in_tx, in_rx) = mpsc::channel(depth);
        let (out_tx, out_rx) = mpsc::channel(depth);
        (
            in_tx,
            out_rx,
            ExecStreamIo {
                input: in_rx,
                output: out_tx,
            },
        )
    }
}

/// The end-of-file character a terminal in canonical mode turns into end of input (^D).
const EOT: u8 = 4;

/// Runs `cmd` (already set up by the driver: program, arguments, environment, directory,
/// user, and any entering steps installed with `pre_exec`) and streams its input and
/// output through `io` until it exits; returns its exit code (128 + signal when killed).
///
/// The command always leads a new session. With `tty` its stdin, stdout and stderr are the
/// slave side of a new pseudo-terminal, which becomes its controlling terminal; the setup
/// is installed last, so a driver whose own `pre_exec` forks (the exec driver's entering
/// steps) gets it in the process that execs the command.
pub async fn run_process(
    mut cmd: std::process::Command,
    tty: bool,
    io: ExecStreamIo,
    program: &str,
) -> Result<i32, DriverError> {
    let master = if tty {
        let pty = open_pty()?;
        let slave = |fd: &OwnedFd| -> Result<Stdio, DriverError> {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| DriverError::Exec(format!("cannot duplicate the terminal: {e}")))
        };
        cmd.stdin(slave(&pty.slave)?)
            .stdout(slave(&pty.slave)?)
            .stderr(slave(&pty.slave)?);
        Some(pty.master)
    } else {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        None
    };
    let setup = move || -> io::Result<()> {
        // SAFETY: async-signal-safe system calls only, between fork and exec.
        unsafe {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if tty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    };
    // SAFETY: the closure only makes async-signal-safe calls (see above).
    unsafe {
        cmd.pre_exec(setup);
    }
    let mut command = tokio::process::Command::from(cmd);
    command.kill_on_drop(true);
    let spawned = command.spawn();
    // The parent's copies of the terminal's slave side go with the command, so that reading
    // the master ends once the command (and whatever it started) closes it.
    drop(command);
    let mut child = spawned
        .map_err(|e| DriverError::Exec(format!("failed to start command {program:?}: {e}")))?;
    let pid = child.id().map(|p| p as i32);
    let ExecStreamIo { input, output } = io;

    let status = match master {
        Some(master) => {
            // SAFETY: the AsyncFd owns the master fd; nothing else closes or replaces it.
            let registered = unsafe { AsyncFd::register(master) };
            let master = Arc::new(
                registered
                    .map_err(|e| DriverError::Exec(format!("cannot poll the terminal: {e}")))?,
            );
            let finish = async {
                let out = pump_fd(&master, output);
                let (_, status) = tokio::join!(out, child.wait());
                status
            };
            supervise(finish, tty_input(&master, input), pid).await
        }
        None => {
            let stdin = child.stdin.take();
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let finish = async {
                let out = pump(stdout, output.clone(), ExecOutput::Stdout);
                let err = pump(stderr, output, ExecOutput::Stderr);
                let (_, _, status) = tokio::join!(out, err, child.wait());
                status
            };
            supervise(finish, pipe_input(stdin, input), pid).await
        }
    };
    let status = status.map_err(|e| DriverError::Exec(format!("waiting for {program:?}: {e}")))?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1))
}

/// Waits for `finish` (output drained and the command reaped) while `input` feeds it; when
/// `input` ends (the caller went away), kills the command and its session, then keeps
/// waiting so that it is reaped.
async fn supervise<F, I>(finish: F, input: I, pid: Option<i32>) -> F::Output
where
    F: std::future::Future,
    I: std::future::Future<Output = ()>,
{
    tokio::pin!(finish);
    tokio::pin!(input);
    tokio::select! {
        r = &mut finish => return r,
        _ = &mut input => {}
    }
    if let Some(pid) = pid {
        tracing::debug!(pid, "exec caller went away; killing the command");
        // SAFETY: plain kill(2) on the child's pid and its session's process group (the
        // child called setsid, so its pgid is its pid).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
            libc::kill(pid, libc::SIGKILL);
        }
    }
    finish.await
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(
    src: Option<R>,
    output: mpsc::Sender<ExecOutput>,
    wrap: fn(Vec<u8>) -> ExecOutput,
) {
    let Some(mut src) = src else { return };
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match src.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                // A caller that stopped listening still lets the command run to its end.
                let _ = output.send(wrap(buf[..n].to_vec())).await;
            }
        }
    }
}

async fn pipe_input(
    mut stdin: Option<tokio::process::ChildStdin>,
    mut input: mpsc::Receiver<ExecInput>,
) {
    while let Some(msg) = input.recv().await {
        match msg {
            ExecInput::Stdin(data) => {
                if let Some(w) = stdin.as_mut() {
                    if w.write_all(&data).await.is_err() || w.flush().await.is_err() {
                        // The command closed its stdin; further input has nowhere to go.
                        stdin = None;
                    }
                }
            }
            ExecInput::CloseStdin => stdin = None,
            ExecInput::Resize { .. } => {}
        }
    }
}

async fn tty_input(master: &AsyncFd<OwnedFd>, mut input: mpsc::Receiver<ExecInput>) {
    while let Some(msg) = input.recv().await {
        match msg {
            ExecInput::Stdin(data) => {
                let _ = write_fd(master, &data).await;
            }
            ExecInput::CloseStdin => {
                let _ = write_fd(master, &[EOT]).await;
            }
            ExecInput::Resize { height, width } => {
                if let Err(e) = set_window_size(master.as_raw_fd(), height, width) {
                    tracing::debug!("cannot resize the exec terminal: {e}");
                }
            }
        }
    }
}

async fn pump_fd(master: &AsyncFd<OwnedFd>, output: mpsc::Sender<ExecOutput>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = {
            let Ok(mut guard) = master.readable().await else {
                return;
            };
            match guard.try_io(|fd| {
                // SAFETY: read(2) into a buffer we own, on a valid fd.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            }) {
                Ok(r) => r,
                Err(_would_block) => continue,
            }
        };
        match n {
            // EIO: every slave side is closed (the command and what it started are gone).
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let _ = output.send(ExecOutput::Stdout(buf[..n].to_vec())).await;
            }
        }
    }
}

async fn write_fd(master: &AsyncFd<OwnedFd>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        let mut guard = master.writable().await?;
        match guard.try_io(|fd| {
            // SAFETY: write(2) from a live slice on a valid fd.
            let n = unsafe { libc::write(fd.as_raw_fd(), data.as_ptr().cast(), data.len()) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}

/// Sets a terminal's size (TIOCSWINSZ); the foreground process group gets SIGWINCH.
pub fn set_window_size(fd: RawFd, height: u16, width: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

/// A new pseudo-terminal (80x24 until the caller says otherwise); the master is
/// non-blocking, and neither side leaks into other children.
fn open_pty() -> Result<Pty, DriverError> {
    let err = |what: &str, e: &dyn std::fmt::Display| {
        DriverError::Exec(format!("cannot allocate a terminal ({what}): {e}"))
    };
    let ws = nix::pty::Winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = nix::pty::openpty(Some(&ws), None).map_err(|e| err("openpty", &e))?;
    for fd in [pty.master.as_raw_fd(), pty.slave.as_raw_fd()] {
        // SAFETY: fcntl on fds we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(err("cloexec", &io::Error::last_os_error()));
        }
    }
    let fd = pty.master.as_raw_fd();
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(err("nonblock", &io::Error::last_os_error()));
        }
    }
    Ok(Pty {
        master: pty.master,
        slave: pty.slave,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn run(args: &[&str], tty: bool, input: Vec<ExecInput>) -> (i32, Vec<u8>, Vec<u8>) {
        let mut cmd = std::process::Command::new(args[0]);
        cmd.args(&args[1..]);
        let (tx, mut rx, io) = ExecStreamIo::channels(16);
        let feeder = tokio::spawn(async move {
            for m in input {
                tx.send(m).await.unwrap();
            }
            // Keep the input open until the command is done (dropping it would kill it).
            tx.closed().await;
        });
        let collect = tokio::spawn(async move {
            let (mut out, mut err) = (Vec::new(), Vec::new());
            while let Some(m) = rx.recv().await {
                match m {
                    ExecOutput::Stdout(d) => out.extend(d),
                    ExecOutput::Stderr(d) => err.extend(d),
                }
            }
            (out, err)
        });
        let code = run_process(cmd, tty, io, args[0]).await.unwrap();
        feeder.abort();
        let (out, err) = collect.await.unwrap();
        (code, out, err)
    }

    #[tokio::test]
    async fn pipes_carry_stdin_stdout_stderr_and_the_exit_code() {
        let (code, out, err) = run(
            &["sh", "-c", "cat; echo oops >&2; exit 3"],
            false,
            vec![ExecInput::Stdin(b"hello\n".to_vec()), ExecInput::CloseStdin],
        )
        .await;
        assert_eq!(code, 3);
        assert_eq!(out, b"hello\n");
        assert_eq!(err, b"oops\n");
    }

    #[tokio::test]
    async fn a_tty_is_the_controlling_terminal_and_resizes() {
        let (code, out, _) = run(
            &[
                "sh",
                "-c",
                "test -t 0 && test -t 1 && echo is-a-tty; read line; stty size; exit 5",
            ],
            true,
            vec![
                ExecInput::Resize {
                    height: 33,
                    width: 111,
                },
                ExecInput::Stdin(b"go\n".to_vec()),
            ],
        )
        .await;
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 5, "{out}");
        assert!(out.contains("is-a-tty"), "{out}");
        assert!(out.contains("33 111"), "{out}");
    }

    #[tokio::test]
    async fn closing_stdin_on_a_tty_ends_input() {
        let (code, out, _) = run(
            &["sh", "-c", "cat >/dev/null; echo got-eof"],
            true,
            vec![ExecInput::Stdin(b"x\n".to_vec()), ExecInput::CloseStdin],
        )
        .await;
        assert_eq!(code, 0);
        assert!(String::from_utf8_lossy(&out).contains("got-eof"));
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_kills_the_command() {
        let mut cmd = std::process::Command::new("sleep");
        cmd.arg("1000");
        let (tx, _rx, io) = ExecStreamIo::channels(1);
        drop(tx);
        let code = run_process(cmd, false, io, "sleep").await.unwrap();
        assert_eq!(code, 128 + libc::SIGKILL);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_clear_error() {
        let cmd = std::process::Command::new("/no/such/program");
        let (_tx, _rx, io) = ExecStreamIo::channels(1);
        let e = run_process(cmd, false, io, "/no/such/program")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("/no/such/program"), "{e}");
    }
}
