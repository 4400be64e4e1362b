//! Pulls from a registry against real engines (Podman's Docker API and dockerd, see
//! tests/common): Debian's `docker-registry` served on loopback with TLS (a CA and server
//! certificate made by `openssl` for each test) and htpasswd auth, the busybox test image pushed
//! into it with `skopeo` (from the private dockerd). Proves task `auth {}`, the plugin's
//! credential helper, a wrong password (the engine's error), pull progress events, coalesced
//! concurrent pulls (counted in the registry's access log), `image_pull_timeout` and
//! `pull_activity_timeout` (through a TCP proxy that stops forwarding).
//! Each test prints SKIPPED with why and returns when something it needs is missing.

mod common;

use caravan_driver::{Driver, TaskDriverEvent};
use caravan_driver_docker::{DockerDriver, DockerPluginConfig};
use common::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

const USER: &str = "caravan";
const PASSWORD: &str = "s3cret-pw";
const REPO: &str = "caravan/busybox";

/// Where the engines look for a registry's CA.
const CERT_DIRS: [&str; 2] = ["/etc/docker/certs.d", "/etc/containers/certs.d"];

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `docker-registry` on loopback with TLS and htpasswd auth, holding the busybox image as
/// `127.0.0.1:<port>/caravan/busybox:1`; removed (with the engine trust it set up) on drop.
struct Registry {
    dir: PathBuf,
    port: u16,
    child: Child,
    /// `host:port` directories written under [`CERT_DIRS`].
    trusted: Vec<PathBuf>,
}

impl Registry {
    fn start() -> Result<Registry, String> {
        for tool in ["docker-registry", "skopeo", "htpasswd", "openssl"] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
            {
                return Err(format!("{tool} is not installed (e2e/test.sh installs it)"));
            }
        }
        let source = socket(Kind::Dockerd)?;
        let dir = std::env::temp_dir().join(format!(
            "caravan-registry-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(dir.join("certs")).map_err(|e| e.to_string())?;
        let d = |f: &str| dir.join(f).to_string_lossy().to_string();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", &d("ca.key"), "-out", &d("certs/ca.crt")])
            .args(["-days", "2", "-subj", "/CN=caravan test registry CA"]))?;
        run(Command::new("openssl")
            .args(["req"])
            .args(ec)
            .args(["-keyout", &d("server.key"), "-out", &d("server.csr")])
            .args(["-subj", "/CN=127.0.0.1"]))?;
        std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n")
            .map_err(|e| e.to_string())?;
        run(Command::new("openssl").args([
            "x509",
            "-req",
            "-in",
            &d("server.csr"),
            "-CA",
            &d("certs/ca.crt"),
            "-CAkey",
            &d("ca.key"),
            "-CAcreateserial",
            "-out",
            &d("server.crt"),
            "-days",
            "2",
            "-extfile",
            &d("ext.cnf"),
        ]))?;
        let hash = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .map_err(|e| e.to_string())?;
        std::fs::write(dir.join("htpasswd"), &hash.stdout).map_err(|e| e.to_string())?;
        let port = free_port();
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {}\n    key: {}\n\
                 auth:\n  htpasswd:\n    realm: caravan-test\n    path: {}\n",
                d("data"),
                d("server.crt"),
                d("server.key"),
                d("htpasswd")
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("registry.log")).map_err(|e| e.to_string())?;
        let child = Command::new("docker-registry")
            .args(["serve", &d("config.yml")])
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start docker-registry: {e}"))?;
        let mut reg = Registry {
            dir: dir.clone(),
            port,
            child,
            trusted: vec![],
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "docker-registry did not listen: {}",
                    reg.log().trim()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        reg.trust(port)?;
        // An image of its own (busybox plus a file naming this registry), so that no engine
        // has its layer yet and a pull downloads it: imported into dockerd under a temporary
        // tag, copied into the registry, then untagged again.
        let rootfs = Path::new(&source)
            .parent()
            .map(|d| d.join("busybox-rootfs-dockerd.tar"))
            .filter(|p| p.exists())
            .ok_or("dockerd-setup.sh left no busybox rootfs tar")?;
        let unique = reg.dir.join("rootfs.tar");
        std::fs::copy(&rootfs, &unique).map_err(|e| e.to_string())?;
        std::fs::write(
            reg.dir.join("caravan-registry"),
            reg.dir.to_string_lossy().as_bytes(),
        )
        .map_err(|e| e.to_string())?;
        run(Command::new("tar")
            .arg("-rf")
            .arg(&unique)
            .arg("-C")
            .arg(&reg.dir)
            .arg("caravan-registry"))?;
        let temp_tag = format!("localhost/caravan-push:{}-{port}", std::process::id());
        let docker = |args: &[&str]| {
            let mut c = Command::new("/usr/bin/docker");
            c.arg("-H").arg(format!("unix://{source}")).args(args);
            c
        };
        run(&mut docker(&[
            "import",
            "--change",
            "ENV PATH=/bin",
            &unique.to_string_lossy(),
            &temp_tag,
        ]))?;
        let pushed = run(Command::new("skopeo")
            .args(["copy", "--quiet", "--src-daemon-host"])
            .arg(format!("unix://{source}"))
            .args(["--dest-cert-dir"])
            .arg(reg.dir.join("certs"))
            .args(["--dest-creds"])
            .arg(format!("{USER}:{PASSWORD}"))
            .arg(format!("docker-daemon:{temp_tag}"))
            .arg(format!("docker://127.0.0.1:{port}/{REPO}:1")));
        run(&mut docker(&["rmi", &temp_tag]))?;
        pushed?;
        Ok(reg)
    }

    /// Makes both engines trust the registry's CA for `127.0.0.1:<port>` (the registry's own
    /// port or a proxy's).
    fn trust(&mut self, port: u16) -> Result<(), String> {
        for base in CERT_DIRS {
            let d = Path::new(base).join(format!("127.0.0.1:{port}"));
            std::fs::create_dir_all(&d).map_err(|e| format!("{d:?}: {e}"))?;
            std::fs::copy(self.dir.join("certs/ca.crt"), d.join("ca.crt"))
                .map_err(|e| format!("{d:?}: {e}"))?;
            self.trusted.push(d);
        }
        Ok(())
    }

    fn image(&self) -> String {
        format!("127.0.0.1:{}/{REPO}:1", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// The access log's requests for the image (for failure messages).
    fn requests(&self) -> String {
        self.log()
            .lines()
            .filter(|l| l.contains("/manifests/") || l.contains(" /v2/ "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Successful look-ups of the test image's tag so far (one per pull: Podman GETs the
    /// manifest by tag, dockerd asks with HEAD and then GETs it by digest).
    fn manifest_pulls(&self) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains(&format!(" /v2/{REPO}/manifests/1 ")) && l.contains("\" 200 "))
            .count()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for d in &self.trusted {
            let _ = std::fs::remove_dir_all(d);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes an image from the engine (a test's pulled copy).
async fn remove_image(sock: &str, image: &str) {
    let _ = client(sock)
        .remove_image(
            image,
            Some(bollard::image::RemoveImageOptions {
                force: true,
                noprune: false,
            }),
            None,
        )
        .await;
}

async fn image_exists(sock: &str, image: &str) -> bool {
    client(sock).inspect_image(image).await.is_ok()
}

macro_rules! registry_or_skip {
    () => {
        match Registry::start() {
            Ok(r) => r,
            Err(why) => {
                eprintln!("SKIPPED: no registry for this test: {why}");
                return;
            }
        }
    };
}

/// Every event for `task_id` received so far.
fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<TaskDriverEvent>,
    task_id: &str,
) -> Vec<TaskDriverEvent> {
    let mut got = vec![];
    while let Ok(ev) = rx.try_recv() {
        if ev.task_id == task_id {
            got.push(ev);
        }
    }
    got
}

/// A loopback TCP proxy to the registry whose forwarding can be stopped (a stalled registry).
struct Proxy {
    port: u16,
    gate: watch::Sender<bool>,
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: u16, open: bool) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (gate, rx) = watch::channel(open);
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    // Nothing passes (not even the TLS handshake) while the gate is shut.
                    if rx.wait_for(|open| *open).await.is_err() {
                        return;
                    }
                    let Ok(up) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let (mut a, mut b) = (conn, up);
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                });
            }
        });
        Proxy {
            port,
            gate,
            accepted,
            task,
        }
    }

    async fn wait_accepted(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.accepted.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "the engine never connected to the proxy"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a pull error is the registry refusing credentials, in the engine's words. dockerd
/// takes 127.0.0.0/8 registries as insecure and, refused over HTTPS, tries plain HTTP last:
/// its error is then the TLS server's answer to that.
fn refused(e: &str) -> bool {
    let e = e.to_lowercase();
    e.contains("unauthorized")
        || e.contains("authentication required")
        || e.contains("http request to an https server")
}

fn auth_task(name: &str, image: &str, password: &str) -> (caravan_driver::TaskConfig, Dirs) {
    task(
        name,
        json!({"image": image, "command": "/bin/sh", "args": ["-c", "echo pulled-and-ran"],
               "auth": {"username": USER, "password": password}}),
    )
}

on_both_engines!(
    task_auth_pull_with_progress_and_wrong_password,
    credential_helper_pull,
    concurrent_pulls_are_coalesced,
    stalled_registry_hits_image_pull_timeout_and_pull_activity_timeout,
);

async fn task_auth_pull_with_progress_and_wrong_password(sock: String) {
    let reg = registry_or_skip!();
    let image = reg.image();
    let d = driver(&sock).with_pull_progress_interval(Duration::ZERO);
    let mut events = d
        .task_events()
        .expect("the docker driver reports task events");

    // No credentials: the registry refuses, and the engine's words reach the error.
    let (cfg, _dirs) = task("anon", json!({"image": image}));
    let e = d.start(cfg).await.unwrap_err().to_string();
    assert!(e.contains(&image), "{e}");
    assert!(refused(&e), "{e}");

    let (cfg, _dirs) = auth_task("wrongpw", &image, "not-the-password");
    let e = d.start(cfg.clone()).await.unwrap_err().to_string();
    assert!(refused(&e), "{e}");
    assert!(!image_exists(&sock, &image).await);
    let failed = drain(&mut events, &cfg.id);
    assert!(
        failed
            .iter()
            .all(|e| !e.message.starts_with("Downloaded image")),
        "{failed:?}"
    );

    let (cfg, _dirs) = auth_task("auth", &image, PASSWORD);
    d.start(cfg.clone()).await.expect("pull with task auth");
    let res = tokio::time::timeout(Duration::from_secs(30), d.wait(&cfg.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(res.exit_code, 0, "{res:?}");
    d.destroy(&cfg.id, false).await.unwrap();
    assert!(wait_for_file(&cfg.stdout_path, "pulled-and-ran")
        .await
        .contains("pulled-and-ran"));

    // Progress: a first report, then updates with layers and bytes, all replacing each other.
    let got = drain(&mut events, &cfg.id);
    assert!(got.len() >= 2, "{got:?}");
    assert!(got.iter().all(|e| e.progress_bytes.is_some()), "{got:?}");
    assert_eq!(got[0].message, format!("Downloading image {image}"));
    let last = got.last().unwrap();
    assert_eq!(last.details["image"], image);
    // dockerd counts the one layer; Podman every blob it copies (the config too).
    let layers = &last.details["layers_total"];
    assert!(layers == "1" || layers == "2", "{last:?}");
    assert_eq!(&last.details["layers_downloaded"], layers, "{last:?}");
    assert!(
        last.message.starts_with(&format!(
            "Downloaded image {image}: {layers} of {layers} layers"
        )),
        "{last:?}"
    );
    if sock.ends_with("dockerd.sock") {
        // dockerd reports the bytes of each layer as it downloads it.
        let bytes: u64 = last.details["bytes_downloaded"].parse().unwrap();
        assert!(bytes > 100_000, "{last:?}");
        assert_eq!(
            last.details["bytes_downloaded"],
            last.details["bytes_total"]
        );
    }
    assert_eq!(reg.manifest_pulls(), 1, "{}", reg.requests());
    remove_image(&sock, &image).await;
}

async fn credential_helper_pull(sock: String) {
    let reg = registry_or_skip!();
    let image = reg.image();
    // A helper on PATH named for this process; it records what it was asked.
    let name = format!("caravan-test-{}-{}", std::process::id(), reg.port);
    let helper = PathBuf::from(format!("/usr/local/bin/docker-credential-{name}"));
    let asked = reg.dir.join("helper-asked");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\necho \"$server\" >> {}\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}\\n' \"$server\"\n",
            asked.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    struct Remove(PathBuf);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _helper = Remove(helper);

    let d = DockerDriver::new(
        DockerPluginConfig::parse(
            json!({"endpoint": format!("unix://{sock}"), "auth": {"helper": name}})
                .as_object()
                .unwrap(),
        )
        .unwrap(),
    );
    let (cfg, _dirs) = task(
        "helper",
        json!({"image": image, "command": "/bin/sh", "args": ["-c", "echo via-helper"]}),
    );
    d.start(cfg.clone())
        .await
        .expect("pull with the credential helper");
    assert_eq!(d.wait(&cfg.id).await.unwrap().exit_code, 0);
    d.destroy(&cfg.id, false).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap().trim(),
        format!("127.0.0.1:{}", reg.port)
    );
    remove_image(&sock, &image).await;
}

async fn concurrent_pulls_are_coalesced(sock: String) {
    let mut reg = registry_or_skip!();
    let proxy = Proxy::start(reg.port, false).await;
    reg.trust(proxy.port).unwrap();
    let image = format!("127.0.0.1:{}/{REPO}:1", proxy.port);
    let d = Arc::new(driver(&sock));
    let mut events = d.task_events().unwrap();
    let (one, _d1) = auth_task("one", &image, PASSWORD);
    let (two, _d2) = auth_task("two", &image, PASSWORD);

    // The first pull reaches the (stalled) registry; the second joins it.
    let first = {
        let (d, one) = (d.clone(), one.clone());
        tokio::spawn(async move { d.start(one).await })
    };
    proxy.wait_accepted(1).await;
    let second = {
        let (d, two) = (d.clone(), two.clone());
        tokio::spawn(async move { d.start(two).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = vec![];
    while !seen
        .iter()
        .any(|e: &TaskDriverEvent| e.task_id == two.id && e.message.contains("already in progress"))
    {
        assert!(
            Instant::now() < deadline,
            "the second task never joined: {seen:?}"
        );
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(ev)) => seen.push(ev),
            _ => continue,
        }
    }
    proxy.gate.send_replace(true);
    first.await.unwrap().expect("first start");
    second.await.unwrap().expect("second start");
    for t in [&one, &two] {
        assert_eq!(d.wait(&t.id).await.unwrap().exit_code, 0);
        d.destroy(&t.id, false).await.unwrap();
    }
    // Both tasks saw the pull finish.
    seen.extend(std::iter::from_fn(|| events.try_recv().ok()));
    for t in [&one, &two] {
        assert!(
            seen.iter()
                .any(|e| e.task_id == t.id && e.message.starts_with("Downloaded image")),
            "{seen:?}"
        );
    }
    assert_eq!(reg.manifest_pulls(), 1, "one pull: {}", reg.requests());
    remove_image(&sock, &image).await;
}

async fn stalled_registry_hits_image_pull_timeout_and_pull_activity_timeout(sock: String) {
    let mut reg = registry_or_skip!();
    let proxy = Proxy::start(reg.port, false).await;
    reg.trust(proxy.port).unwrap();
    let image = format!("127.0.0.1:{}/{REPO}:1", proxy.port);

    let d = driver(&sock);
    let (cfg, _dirs) = task(
        "timeout",
        json!({"image": image, "image_pull_timeout": "2s",
               "auth": {"username": USER, "password": PASSWORD}}),
    );
    let e = d.start(cfg.clone()).await.unwrap_err().to_string();
    assert!(e.contains("image_pull_timeout"), "{e}");
    assert!(e.contains(&image), "{e}");

    let d = DockerDriver::new(
        DockerPluginConfig::parse(
            json!({"endpoint": format!("unix://{sock}"), "pull_activity_timeout": "2s"})
                .as_object()
                .unwrap(),
        )
        .unwrap(),
    );
    let (cfg, _dirs) = task(
        "activity",
        json!({"image": image, "image_pull_timeout": "10m",
               "auth": {"username": USER, "password": PASSWORD}}),
    );
    let e = d.start(cfg.clone()).await.unwrap_err().to_string();
    assert!(e.contains("pull_activity_timeout"), "{e}");
    assert_eq!(reg.manifest_pulls(), 0);
    drop(proxy);
    remove_image(&sock, &image).await;
}
