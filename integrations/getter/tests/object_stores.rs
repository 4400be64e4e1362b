//! S3 and GCS sources against real emulators from PyPI, installed by the test into a venv
//! under the temp dir: `moto[server]` with IAM authentication switched on (so our SigV4
//! signatures are checked, and a wrong secret is refused), and `gcp-storage-emulator`. When a
//! package cannot be installed (no network, no python3) the test prints "SKIPPED: ..." and passes.
//! A small recording server checks what the emulators do not: the GCS bearer token on the wire,
//! and an unsigned S3 request when no credentials exist.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use caravan_getter::{Artifact, Getter, GetterConfig, GetterError};

/// A venv under the temp dir holding `package`, built once (a lock directory serialises test
/// processes). Returns the venv's `bin/`.
fn venv_with(dir_name: &str, package: &str, probe: &str) -> Result<PathBuf, String> {
    let venv = std::env::temp_dir().join(dir_name);
    let bin = venv.join("bin");
    if bin.join(probe).exists() {
        return Ok(bin);
    }
    let lock = std::env::temp_dir().join(format!("{dir_name}.lock"));
    let start = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        if bin.join(probe).exists() {
            return Ok(bin);
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(format!("timed out waiting for {}", lock.display()));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let result = (|| {
        let run = |cmd: &mut Command, what: &str| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{what}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        run(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            "python3 -m venv",
        )?;
        run(
            Command::new(bin.join("pip")).args(["install", "-q", package]),
            &format!("pip install {package}"),
        )?;
        if bin.join(probe).exists() {
            Ok(bin.clone())
        } else {
            Err(format!("{probe} missing after pip install {package}"))
        }
    })();
    let _ = std::fs::remove_dir(&lock);
    result
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when dropped.
struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(port: u16, proc: &mut Proc) -> Result<(), String> {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(st)) = proc.0.try_wait() {
            return Err(format!("the server exited: {st}"));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err(format!("nothing listens on port {port}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

struct Dirs {
    _root: tempfile::TempDir,
    alloc: PathBuf,
    task: PathBuf,
}

fn alloc() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let alloc = root.path().join("alloc1");
    let task = alloc.join("web");
    std::fs::create_dir_all(&task).unwrap();
    Dirs {
        _root: root,
        alloc,
        task,
    }
}

fn art(src: &str, opts: &[(&str, &str)]) -> Artifact {
    let mut a = Artifact::new(src);
    for (k, v) in opts {
        a.options.insert(k.to_string(), v.to_string());
    }
    a
}

fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (name, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, name, *body).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// Creates an IAM user with an access key in moto (the first three calls run before
/// authentication switches on), then a bucket with objects, signed with that key by botocore.
const MOTO_SETUP: &str = r#"
import boto3, sys
ep, tgz = sys.argv[1], sys.argv[2]
anon = dict(endpoint_url=ep, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **anon)
iam.create_user(UserName="caravan")
iam.put_user_policy(UserName="caravan", PolicyName="all", PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}')
k = iam.create_access_key(UserName="caravan")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=k["AccessKeyId"], aws_secret_access_key=k["SecretAccessKey"])
s3.create_bucket(Bucket="builds")
s3.put_object(Bucket="builds", Key="app/v1/app.tar.gz", Body=open(tgz, "rb").read())
s3.put_object(Bucket="builds", Key="conf/a.txt", Body=b"alpha")
s3.put_object(Bucket="builds", Key="conf/sub dir/b+c.txt", Body=b"beta")
s3.put_object(Bucket="builds", Key="conf/empty/", Body=b"")
print(k["AccessKeyId"], k["SecretAccessKey"])
"#;

#[tokio::test]
async fn s3_against_moto_with_signatures_checked() {
    let bin = match venv_with("caravan-moto-venv", "moto[server]", "moto_server") {
        Ok(b) => b,
        Err(e) => {
            println!("SKIPPED: moto[server] cannot be installed: {e}");
            return;
        }
    };
    let port = free_port();
    let mut moto = Proc(
        Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut moto).unwrap();
    let ep = format!("http://127.0.0.1:{port}");
    let work = tempfile::tempdir().unwrap();
    let tgz_path = work.path().join("app.tar.gz");
    std::fs::write(
        &tgz_path,
        tgz(&[("bin/app", b"#!/bin/sh\necho hi\n"), ("README", b"read me")]),
    )
    .unwrap();
    let out = Command::new(bin.join("python"))
        .args(["-c", MOTO_SETUP, &ep])
        .arg(&tgz_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let keys = String::from_utf8(out.stdout).unwrap();
    let (id, secret) = keys.trim().split_once(' ').unwrap();
    let creds = [
        ("aws_access_key_id", id),
        ("aws_access_key_secret", secret),
        ("region", "us-east-1"),
    ];
    let getter = Getter::new(GetterConfig::default()).unwrap();

    // One object, an archive: unpacked, checksum verified.
    let a = alloc();
    let sum =
        caravan_getter::checksum::hash_file(caravan_getter::checksum::Algorithm::Sha256, &tgz_path)
            .unwrap();
    let checksum = format!("sha256:{sum}");
    let mut opts = creds.to_vec();
    opts.push(("checksum", &checksum));
    let f = getter
        .fetch(
            &art(&format!("s3::{ep}/builds/app/v1/app.tar.gz"), &opts),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    assert!(f.bytes > 0);
    assert_eq!(
        std::fs::read(a.task.join("local/bin/app")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.task.join("local/bin/app"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "mode {mode:o}");
    }

    // A prefix: every key under it, names with spaces and '+' intact, "directory" markers skipped.
    let a = alloc();
    getter
        .fetch(
            &art(&format!("s3::{ep}/builds/conf"), &creds),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read(a.task.join("local/a.txt")).unwrap(), b"alpha");
    assert_eq!(
        std::fs::read(a.task.join("local/sub dir/b+c.txt")).unwrap(),
        b"beta"
    );

    // A wrong secret: moto checks the signature and refuses; the event says what to check.
    let a = alloc();
    let err = getter
        .fetch(
            &art(
                &format!("s3::{ep}/builds/conf/a.txt"),
                &[
                    ("aws_access_key_id", id),
                    ("aws_access_key_secret", "not-the-secret"),
                ],
            ),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GetterError::S3 { .. }), "{msg}");
    assert!(msg.contains("403"), "{msg}");
    assert!(msg.contains("SignatureDoesNotMatch"), "{msg}");
    assert!(!a.task.join("local/a.txt").exists());

    // A key that does not exist, nor any key under it.
    let err = getter
        .fetch(
            &art(&format!("s3::{ep}/builds/nothing/here"), &creds),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no such object"), "{err}");
}

#[tokio::test]
async fn gcs_against_the_emulator() {
    let bin = match venv_with(
        "caravan-gcs-venv",
        "gcp-storage-emulator",
        "gcp-storage-emulator",
    ) {
        Ok(b) => b,
        Err(e) => {
            println!("SKIPPED: gcp-storage-emulator cannot be installed: {e}");
            return;
        }
    };
    let port = free_port();
    let mut emu = Proc(
        Command::new(bin.join("gcp-storage-emulator"))
            .args([
                "start",
                "-H",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--in-memory",
                "--default-bucket",
                "assets",
                "-q",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(port, &mut emu).unwrap();
    let ep = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let archive = tgz(&[("run.sh", b"echo gcs\n")]);
    for (name, body) in [
        ("site/run.tgz", archive.clone()),
        ("site/docs/index.html", b"<h1>docs</h1>".to_vec()),
        ("site/docs/img/logo.svg", b"<svg/>".to_vec()),
    ] {
        let r = http
            .post(format!("{ep}/upload/storage/v1/b/assets/o"))
            .query(&[("uploadType", "media"), ("name", name)])
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "upload {name}: {}", r.status());
    }
    let getter = Getter::new(GetterConfig::default()).unwrap();

    let a = alloc();
    getter
        .fetch(
            &art(
                &format!("gcs::{ep}/storage/v1/assets/site/run.tgz"),
                &[("token", "emulator-ignores-it")],
            ),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/run.sh")).unwrap(),
        b"echo gcs\n"
    );

    let a = alloc();
    getter
        .fetch(
            &art(&format!("gcs::{ep}/storage/v1/assets/site/docs"), &[]),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/index.html")).unwrap(),
        b"<h1>docs</h1>"
    );
    assert_eq!(
        std::fs::read(a.task.join("local/img/logo.svg")).unwrap(),
        b"<svg/>"
    );

    let err = getter
        .fetch(
            &art(&format!("gcs::{ep}/storage/v1/assets/missing"), &[]),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::Gcs { .. }), "{err}");
    assert!(err.to_string().contains("no such object"), "{err}");
}

/// Request lines and their `Authorization` header, as a recording server saw them.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, Option<String>)>>>;

/// Answers every request with `body` and records each request's line and `Authorization`.
fn recording_server(body: &'static [u8]) -> (String, Seen) {
    use std::io::{BufRead, BufReader, Write};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let seen: Seen = Default::default();
    let rec = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let mut auth = None;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                if let Some((k, v)) = h.trim().split_once(':') {
                    if k.eq_ignore_ascii_case("authorization") {
                        auth = Some(v.trim().to_string());
                    }
                }
            }
            rec.lock().unwrap().push((first.trim().to_string(), auth));
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body);
        }
    });
    (base, seen)
}

#[tokio::test]
async fn gcs_sends_the_bearer_token_and_s3_without_credentials_is_anonymous() {
    let (base, seen) = recording_server(b"object bytes");
    let getter = Getter::new(GetterConfig::default()).unwrap();
    let a = alloc();
    getter
        .fetch(
            &art(
                &format!("gcs::{base}/storage/v1/bk/dir/obj.txt"),
                &[("token", "ya29.test-token")],
            ),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(a.task.join("local/obj.txt")).unwrap(),
        b"object bytes"
    );
    {
        let seen = seen.lock().unwrap();
        assert_eq!(
            seen[0].0,
            "GET /storage/v1/b/bk/o/dir%2Fobj.txt?alt=media HTTP/1.1"
        );
        assert_eq!(seen[0].1.as_deref(), Some("Bearer ya29.test-token"));
    }

    // No S3 credentials anywhere: a plain, unsigned GET of the path-style URL.
    std::env::remove_var("AWS_ACCESS_KEY_ID");
    std::env::remove_var("AWS_SECRET_ACCESS_KEY");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    let a = alloc();
    getter
        .fetch(
            &art(&format!("s3::{base}/public/file.bin"), &[]),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].0, "GET /public/file.bin HTTP/1.1");
    assert_eq!(seen[1].1, None);
}
