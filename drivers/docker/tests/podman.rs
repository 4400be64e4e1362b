//! The podman flavour and the dangling-container reaper against a real engine (its own test
//! binary: the reaper removes every unclaimed Caravan container, and cargo runs test binaries
//! one after another, so engine.rs's containers are not hit). Engine setup as in engine.rs: Podman's Docker-compatible service started by
//! e2e/containers/podman-setup.sh (or the socket in CARAVAN_TEST_DOCKER_SOCK), with the
//! busybox image that script builds from busybox-static (localhost/busybox:test).
//! Each test prints why and returns when no engine can be started (not root, no podman).

use caravan_driver::{Driver, TaskConfig, TaskHandle, TaskResources};
use caravan_driver_docker::{DockerDriver, DockerPluginConfig, DriverState};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/busybox:test";

/// The engine socket, or the reason there is none.
fn socket() -> Result<String, String> {
    static SOCK: OnceLock<Result<String, String>> = OnceLock::new();
    SOCK.get_or_init(|| {
        if let Ok(s) = std::env::var("CARAVAN_TEST_DOCKER_SOCK") {
            if !s.is_empty() {
                return Ok(s);
            }
        }
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root: rootful Podman cannot be started".into());
        }
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../e2e/containers/podman-setup.sh");
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
            .ok_or_else(|| "podman-setup.sh printed no socket path".into())
    })
    .clone()
}

macro_rules! engine_or_skip {
    () => {
        match socket() {
            Ok(s) => s,
            Err(why) => {
                eprintln!("SKIPPED: no container engine for this test: {why}");
                return;
            }
        }
    };
}

fn driver(sock: &str) -> DockerDriver {
    DockerDriver::new(DockerPluginConfig {
        endpoint: format!("unix://{sock}"),
        ..Default::default()
    })
}

/// A task's directories under a fresh temporary alloc dir.
struct Dirs {
    root: PathBuf,
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn task(name: &str, config: Value) -> (TaskConfig, Dirs) {
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

fn state(h: &TaskHandle) -> DriverState {
    serde_json::from_value(h.driver_state.clone()).unwrap()
}

async fn container_exists(sock: &str, id: &str) -> bool {
    let d = bollard::Docker::connect_with_unix(sock, 30, bollard::API_DEFAULT_VERSION).unwrap();
    d.inspect_container(id, None).await.is_ok()
}

async fn wait_for_file(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_flavor_and_dangling_containers() {
    let sock = engine_or_skip!();
    let d = DockerDriver::podman(
        json!({"socket_path": format!("unix://{sock}")})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d.name(), "podman");
    assert!(d
        .fingerprint()
        .await
        .attributes
        .contains_key("driver.podman.version"));
    let (cfg, _dirs) = task(
        "pod",
        json!({"image": IMAGE, "command": "/bin/sh", "working_dir": "/local",
               "args": ["-c", "pwd; sleep 300"], "tmpfs": ["/scratch"]}),
    );
    let h = d.start(cfg.clone()).await.unwrap();
    assert_eq!(h.driver, "podman");
    assert!(wait_for_file(&cfg.stdout_path, "/local")
        .await
        .starts_with("/local"));
    let id = state(&h).container_id;

    // A new driver that recovered nothing sees the container as dangling.
    let other = driver(&sock);
    let dry = other.remove_dangling(Duration::ZERO, true).await.unwrap();
    assert!(dry.contains(&id), "{dry:?}");
    assert!(
        container_exists(&sock, &id).await,
        "dry run removes nothing"
    );
    // The driver that tracks it does not count it as dangling.
    assert!(!d
        .remove_dangling(Duration::ZERO, true)
        .await
        .unwrap()
        .contains(&id));
    assert!(other
        .remove_dangling(Duration::ZERO, false)
        .await
        .unwrap()
        .contains(&id));
    assert!(!container_exists(&sock, &id).await);
    let res = tokio::time::timeout(Duration::from_secs(30), d.wait(&cfg.id))
        .await
        .unwrap()
        .unwrap();
    assert!(res.err.is_some() || res.exit_code != 0, "{res:?}");
    d.destroy(&cfg.id, true).await.unwrap();
}
