//! The task shim (`shim/caravan-shim.rs`): embedded in the agent, installed once per client
//! into `<data_dir>/bin`, and started by the process drivers (raw_exec, exec, java) in place
//! of the task's program so that the task's exit status is written to a file that a later
//! agent process can read (see the shim's own comment for the protocol).
//!
//! When the shim is not installed (an agent without a client, a test that starts a driver on
//! its own, an architecture the shim is not built for) the drivers start the program
//! directly, as before; a task that ends while no agent runs then has an unknown exit code.

use crate::task::{ExitResult, TaskConfig};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The shim program (empty where it is not built).
pub static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/caravan-shim"));

/// The shim the drivers start: the last one installed (one per client; tests run several
/// clients in one process).
static INSTALLED: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Writes the shim to `dir/caravan-shim` (mode 0755, replaced when its content differs) and
/// makes the drivers use it. Returns where it is, or None where no shim is built.
pub fn install(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    if SHIM.is_empty() {
        return Ok(None);
    }
    let path = dir.join("caravan-shim");
    std::fs::create_dir_all(dir)?;
    if std::fs::read(&path).map(|b| b != SHIM).unwrap_or(true) {
        // Replace by rename: a running shim keeps its (deleted) file.
        let tmp = dir.join(format!(".caravan-shim.{}", std::process::id()));
        std::fs::write(&tmp, SHIM)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&tmp, &path)?;
    }
    // A data dir on a `noexec` mount cannot run it: tasks then start without it.
    if let Err(e) = std::process::Command::new(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
    {
        return Err(std::io::Error::new(
            e.kind(),
            format!(
                "{} cannot be executed ({e}); is its file system mounted noexec?",
                path.display()
            ),
        ));
    }
    match INSTALLED.lock() {
        Ok(mut g) => *g = Some(path.clone()),
        Err(p) => *p.into_inner() = Some(path.clone()),
    }
    Ok(Some(path))
}

/// The installed shim, if any (and still there).
pub fn installed() -> Option<PathBuf> {
    let path = match INSTALLED.lock() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }?;
    path.is_file().then_some(path)
}

/// Where the shim of `cfg`'s task writes its exit status: beside the task's output FIFOs (in
/// the allocation's `alloc/logs`, where Nomad's tasks find their siblings' logs too). None
/// when the task's output does not go to a file (no shim then).
pub fn status_path(cfg: &TaskConfig) -> Option<PathBuf> {
    let parent = cfg.stdout_path.parent()?;
    if cfg.name.is_empty() || cfg.name.contains('/') || parent.as_os_str().is_empty() {
        return None;
    }
    Some(parent.join(format!(".{}.exit", cfg.name)))
}

/// The process a signal for the task goes to: the task's own process when it runs under a
/// shim (the shim ignores signals; it is the pid the driver knows), else `pid` itself. The
/// task is the shim's oldest child (an exec task's shim, as PID 1 of its namespace, may also
/// have adopted orphans).
pub fn signal_target(pid: i32, cfg: &TaskConfig) -> i32 {
    if !status_path(cfg).is_some_and(|p| p.exists()) {
        return pid;
    }
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter_map(|c| c.parse::<i32>().ok())
        .filter_map(|c| Some((crate::procfs::process_start_ticks(c)?, c)))
        .min()
        .map(|(_, c)| c)
        .unwrap_or(pid)
}

/// The shim and the status file to start `cfg`'s task with. None when the task starts
/// without a shim; any status file an earlier run of the task left is then removed, so that
/// it cannot mislead a later recovery.
pub fn for_task(cfg: &TaskConfig) -> Option<(PathBuf, PathBuf)> {
    match (installed(), status_path(cfg)) {
        (Some(exe), Some(status)) => Some((exe, status)),
        (_, status) => {
            if let Some(p) = status {
                let _ = std::fs::remove_file(p);
            }
            None
        }
    }
}

/// Opens (and empties) the status file a shim is about to write.
pub fn open_status(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Reads a status file the shim wrote: None when it wrote nothing (the task has not ended,
/// or the shim was killed with it).
pub fn read_status(path: &Path) -> Option<ExitResult> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().next()?;
    let (kind, n) = line.split_once(' ')?;
    let n: i32 = n.trim().parse().ok()?;
    match kind {
        "exit" => Some(ExitResult {
            exit_code: n,
            ..Default::default()
        }),
        "signal" => Some(ExitResult {
            exit_code: 128 + n,
            signal: n,
            ..Default::default()
        }),
        _ => None,
    }
}

/// The descriptors a shim needs, opened by the driver before it forks.
#[derive(Debug)]
pub struct ShimFds {
    /// The status file, truncated.
    pub status: File,
    /// Read end of the pipe that reports a failed `execve` of the task's program.
    pub err_read: OwnedFd,
    /// Write end, inherited by the shim.
    pub err_write: OwnedFd,
}

impl ShimFds {
    /// Opens (and empties) the status file and the error pipe, all close-on-exec; the
    /// child clears that flag on the two it hands to the shim.
    pub fn open(status_path: &Path) -> std::io::Result<ShimFds> {
        let status = open_status(status_path)?;
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two fds into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nothing else.
        let (err_read, err_write) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        Ok(ShimFds {
            status,
            err_read,
            err_write,
        })
    }

    /// The shim's arguments after its own name: status fd, error fd, the candidate
    /// programs, then the task's argv.
    pub fn args(&self, programs: &[CString], argv: &[CString]) -> Vec<CString> {
        let num = |n: i64| CString::new(n.to_string()).unwrap_or_default();
        let mut v = vec![
            num(self.status.as_raw_fd().into()),
            num(self.err_write.as_raw_fd().into()),
            num(programs.len() as i64),
        ];
        v.extend(programs.iter().cloned());
        v.extend(argv.iter().cloned());
        v
    }

    /// After the shim started: closes our write end and waits until the task's program was
    /// executed (Ok) or could not be (the errno the shim reported).
    pub fn await_exec(self) -> Result<(), i32> {
        drop(self.err_write);
        let mut report = Vec::new();
        let _ = File::from(self.err_read).read_to_end(&mut report);
        if report.len() < 12 {
            return Ok(());
        }
        let mut b = [0u8; 4];
        b.copy_from_slice(&report[4..8]);
        Err(i32::from_ne_bytes(b))
    }
}

/// Clears close-on-exec on the shim's two descriptors; called in the child between fork and
/// exec.
///
/// # Safety
/// Async-signal-safe: only `fcntl`.
pub unsafe fn inherit(status: RawFd, err_write: RawFd) -> bool {
    libc::fcntl(status, libc::F_SETFD, 0) >= 0 && libc::fcntl(err_write, libc::F_SETFD, 0) >= 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    fn c(s: &str) -> CString {
        CString::new(s).unwrap()
    }

    /// Runs the shim with `programs` and `argv`; returns the shim's exit code, what
    /// await_exec said and the status file's result.
    fn run(programs: &[&str], argv: &[&str]) -> (i32, Result<(), i32>, Option<ExitResult>) {
        let dir = tempfile_dir();
        let shim = install(&dir)
            .unwrap()
            .expect("the shim is built on x86_64 Linux");
        let status = dir.join("t.exit");
        let fds = ShimFds::open(&status).unwrap();
        let programs: Vec<CString> = programs.iter().map(|p| c(p)).collect();
        let argv: Vec<CString> = argv.iter().map(|p| c(p)).collect();
        let args: Vec<String> = fds
            .args(&programs, &argv)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let (sfd, efd) = (fds.status.as_raw_fd(), fds.err_write.as_raw_fd());
        let mut cmd = Command::new(shim);
        cmd.args(&args);
        // SAFETY: fcntl only.
        unsafe {
            cmd.pre_exec(move || {
                if inherit(sfd, efd) {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let mut child = cmd.spawn().unwrap();
        let exec = fds.await_exec();
        let code = child.wait().unwrap().code().unwrap_or(-1);
        let r = (code, exec, read_status(&status));
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "caravan-shim-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn the_status_file_says_how_the_task_ended() {
        if SHIM.is_empty() {
            eprintln!("SKIPPED: no shim is built for this target");
            return;
        }
        let (code, exec, status) = run(&["/bin/sh"], &["sh", "-c", "exit 7"]);
        assert_eq!((code, exec), (7, Ok(())));
        assert_eq!(status.unwrap().exit_code, 7);

        let (code, _, status) = run(&["/no/such", "/bin/sh"], &["sh", "-c", "kill -TERM $$"]);
        assert_eq!(code, 128 + 15, "the second candidate ran");
        let status = status.unwrap();
        assert_eq!((status.exit_code, status.signal), (143, 15));
    }

    #[test]
    fn a_program_that_cannot_run_is_reported_with_its_errno() {
        if SHIM.is_empty() {
            eprintln!("SKIPPED: no shim is built for this target");
            return;
        }
        let (code, exec, status) = run(&["/no/such/program"], &["x"]);
        assert_eq!((code, exec), (127, Err(libc::ENOENT)));
        assert_eq!(status, None, "no task ran, no status");
        let (_, exec, _) = run(&["/"], &["x"]);
        assert_eq!(exec, Err(libc::EACCES));
    }

    #[test]
    fn a_noexec_data_dir_refuses_the_shim() {
        if SHIM.is_empty() || !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: needs root (to mount a noexec tmpfs) and a built shim");
            return;
        }
        let dir = tempfile_dir();
        let mount = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "noexec,size=1m", "tmpfs"])
            .arg(&dir)
            .status();
        if !mount.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED: cannot mount a tmpfs here");
            return;
        }
        let before = installed();
        let e = install(&dir).unwrap_err();
        assert!(e.to_string().contains("noexec"), "{e}");
        assert_eq!(installed(), before, "a shim that cannot run is not used");
        let _ = std::process::Command::new("umount").arg(&dir).status();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn status_files_are_read_strictly() {
        let dir = tempfile_dir();
        let p = dir.join("s");
        for (text, want) in [
            ("exit 3\n", Some((3, 0))),
            ("signal 9\n", Some((137, 9))),
            ("", None),
            ("exit x\n", None),
            ("bogus 1\n", None),
        ] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(
                read_status(&p).map(|r| (r.exit_code, r.signal)),
                want,
                "{text:?}"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = TaskConfig {
            name: "web".into(),
            stdout_path: "/d/alloc/a1/alloc/logs/.web.stdout.fifo".into(),
            ..Default::default()
        };
        assert_eq!(
            status_path(&cfg),
            Some(PathBuf::from("/d/alloc/a1/alloc/logs/.web.exit"))
        );
        let no_output = TaskConfig {
            name: "web".into(),
            ..Default::default()
        };
        assert_eq!(status_path(&no_output), None);
    }
}
