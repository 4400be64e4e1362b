//! Shared setup of the container engine tests: which engines there are (Podman's
//! Docker-compatible service and Debian's dockerd, each started by its script in
//! e2e/containers/), a task's directories, and a per-engine lock that keeps the tests which
//! reap every unclaimed Caravan container away from the containers of the other tests (nextest
//! runs test binaries in parallel).

#![allow(dead_code)]

use caravan_driver::{TaskConfig, TaskHandle, TaskResources};
use caravan_driver_docker::{DockerDriver, DockerPluginConfig, DriverState};
use serde_json::Value;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The busybox image both setup scripts import.
pub const IMAGE: &str = "localhost/busybox:test";

/// An engine the scenarios run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `podman system service` (e2e/containers/podman-setup.sh).
    Podman,
    /// Debian's `dockerd` (e2e/containers/dockerd-setup.sh).
    Dockerd,
}

impl Kind {
    fn script(self) -> &'static str {
        match self {
            Kind::Podman => "podman-setup.sh",
            Kind::Dockerd => "dockerd-setup.sh",
        }
    }

    /// The variable that names an already running engine's socket.
    fn env(self) -> &'static str {
        match self {
            Kind::Podman => "CARAVAN_TEST_DOCKER_SOCK",
            Kind::Dockerd => "CARAVAN_TEST_DOCKERD_SOCK",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Podman => "podman",
            Kind::Dockerd => "dockerd",
        }
    }
}

/// The engine's socket, or the reason there is none (the setup script runs once per process).
pub fn socket(kind: Kind) -> Result<String, String> {
    static PODMAN: OnceLock<Result<String, String>> = OnceLock::new();
    static DOCKERD: OnceLock<Result<String, String>> = OnceLock::new();
    let cell = match kind {
        Kind::Podman => &PODMAN,
        Kind::Dockerd => &DOCKERD,
    };
    cell.get_or_init(|| start(kind)).clone()
}

fn start(kind: Kind) -> Result<String, String> {
    if let Ok(s) = std::env::var(kind.env()) {
        if !s.is_empty() {
            return Ok(s);
        }
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!("not root: {} cannot be started", kind.name()));
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../e2e/containers")
        .join(kind.script());
    // Two test processes may start the same engine at once: one runs the script at a time.
    let _one = Lock::take(&format!("{}-setup", kind.name()), false)?;
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {script:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .ok_or_else(|| format!("{} printed no socket path", kind.script()))
}

/// An advisory lock on a file in the temp dir, released on drop.
pub struct Lock {
    _file: std::fs::File,
}

impl Lock {
    /// Takes the lock `name`, shared or exclusive, waiting for it.
    pub fn take(name: &str, shared: bool) -> Result<Lock, String> {
        let path = std::env::temp_dir().join(format!("caravan-test-{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {path:?}: {e}"))?;
        let op = if shared { libc::LOCK_SH } else { libc::LOCK_EX };
        if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
            return Err(format!(
                "cannot lock {path:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Lock { _file: file })
    }
}

/// Held by a test while it has containers on `kind`: shared by ordinary scenarios, exclusive
/// for the ones that reap every container no driver of theirs tracks.
pub fn use_engine(kind: Kind, reaps: bool) -> Lock {
    Lock::take(&format!("{}-containers", kind.name()), !reaps).expect("engine lock")
}

/// Starts the engine (or returns from the test with SKIPPED and why) and takes its lock.
#[macro_export]
macro_rules! engine_or_skip {
    ($kind:expr) => {
        $crate::engine_or_skip!($kind, false)
    };
    ($kind:expr, $reaps:expr) => {
        match $crate::common::socket($kind) {
            Ok(s) => (s, $crate::common::use_engine($kind, $reaps)),
            Err(why) => {
                eprintln!("SKIPPED: no {} engine for this test: {why}", $kind.name());
                return;
            }
        }
    };
}

/// Runs each named `async fn(sock: String)` scenario as one test per engine, in modules
/// `podman` and `dockerd`.
#[macro_export]
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod podman {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (sock, _lock) = $crate::engine_or_skip!($crate::common::Kind::Podman);
                    super::$name(sock).await
                }
            )*
        }
        mod dockerd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (sock, _lock) = $crate::engine_or_skip!($crate::common::Kind::Dockerd);
                    super::$name(sock).await
                }
            )*
        }
    };
}

/// As [`on_both_engines!`], for scenarios that reap every container no driver of theirs
/// tracks: they hold the engine's lock exclusively (modules `podman_exclusive` and
/// `dockerd_exclusive`).
#[macro_export]
macro_rules! on_both_engines_reaping {
    ($($name:ident),* $(,)?) => {
        mod podman_exclusive {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (sock, _lock) =
                        $crate::engine_or_skip!($crate::common::Kind::Podman, true);
                    super::$name(sock).await
                }
            )*
        }
        mod dockerd_exclusive {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (sock, _lock) =
                        $crate::engine_or_skip!($crate::common::Kind::Dockerd, true);
                    super::$name(sock).await
                }
            )*
        }
    };
}

/// A docker driver on the engine; it never removes images (the shared test image stays for
/// the other tests), the GC tests configure their own.
pub fn driver(sock: &str) -> DockerDriver {
    DockerDriver::new(DockerPluginConfig {
        endpoint: format!("unix://{sock}"),
        gc: Some(caravan_driver_docker::plugin_config::GcConfig {
            image: false,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// A task's directories under a fresh temporary alloc dir.
pub struct Dirs {
    pub root: PathBuf,
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

pub fn task(name: &str, config: Value) -> (TaskConfig, Dirs) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let alloc_id = format!(
        "t{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        name
    );
    let root = std::env::temp_dir().join(format!("caravan-docker-{alloc_id}"));
    let task_dir = root.join(name);
    for d in [
        root.join("alloc/logs"),
        task_dir.join("local"),
        task_dir.join("secrets"),
    ] {
        std::fs::create_dir_all(&d).unwrap();
    }
    let cfg = TaskConfig {
        id: format!("{alloc_id}/{name}"),
        name: name.into(),
        alloc_id: alloc_id.clone(),
        job_name: "job".into(),
        task_group: "group".into(),
        driver_config: config.as_object().unwrap().clone(),
        env: [("GREETING".to_string(), "hello there".to_string())].into(),
        alloc_dir: root.join("alloc"),
        local_dir: task_dir.join("local"),
        secrets_dir: task_dir.join("secrets"),
        stdout_path: root.join("alloc/logs/stdout"),
        stderr_path: root.join("alloc/logs/stderr"),
        task_dir,
        resources: TaskResources {
            cpu_shares: 100,
            memory_mb: 64,
            memory_max_mb: 0,
        },
        ..Default::default()
    };
    (cfg, Dirs { root })
}

pub fn state(h: &TaskHandle) -> DriverState {
    serde_json::from_value(h.driver_state.clone()).unwrap()
}

pub fn client(sock: &str) -> bollard::Docker {
    bollard::Docker::connect_with_unix(sock, 30, bollard::API_DEFAULT_VERSION).unwrap()
}

pub async fn container_exists(sock: &str, id: &str) -> bool {
    client(sock).inspect_container(id, None).await.is_ok()
}

pub async fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
