//! `git::` over ssh with the `sshkey` option, against Debian's OpenSSH server started by the
//! test on a loopback port (issue 11's proof). As go-getter does, Caravan's ssh trusts the
//! client's known_hosts, so the test adds the server's host key to root's known_hosts for its
//! duration (and removes it after). Skips, saying why, when not root or sshd/ssh-keygen/git
//! are missing (e2e/test.sh installs openssh-server).

use base64::Engine;
use caravan_getter::{Artifact, Getter, GetterConfig};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sshd(Child);

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A line in root's known_hosts, removed again on drop.
struct KnownHost {
    file: PathBuf,
    line: String,
}

impl Drop for KnownHost {
    fn drop(&mut self) {
        if let Ok(s) = std::fs::read_to_string(&self.file) {
            let kept: String = s
                .lines()
                .filter(|l| *l != self.line)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(&self.file, kept);
        }
    }
}

fn run(cmd: &str, args: &[&str], cwd: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(cwd)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@e")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@e")
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn missing() -> Option<String> {
    if !nix_is_root() {
        return Some("not root (sshd needs it)".into());
    }
    for bin in ["/usr/sbin/sshd", "/usr/bin/ssh-keygen", "/usr/bin/ssh"] {
        if !Path::new(bin).exists() {
            return Some(format!(
                "{bin} is not installed (apt-get install openssh-server)"
            ));
        }
    }
    if Command::new("git").arg("--version").output().is_err() {
        return Some("git is not installed".into());
    }
    None
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|u| u.split_whitespace().next() == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn git_over_ssh_with_an_sshkey_at_a_tag() {
    if let Some(why) = missing() {
        println!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "host_key"],
        d,
    );
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "id"],
        d,
    );
    std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = d.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {auth}\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {pid}\n",
            host = d.join("host_key").display(),
            auth = d.join("authorized_keys").display(),
            pid = d.join("sshd.pid").display(),
        ),
    )
    .unwrap();
    // sshd's privilege separation directory.
    let _ = std::fs::create_dir_all("/run/sshd");
    let _sshd = Sshd(
        Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "sshd did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
    let mut parts = host_pub.split_whitespace();
    let line = format!(
        "[127.0.0.1]:{port} {} {}",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    );
    let ssh_dir = PathBuf::from("/root/.ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    let known = ssh_dir.join("known_hosts");
    let mut text = std::fs::read_to_string(&known).unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!("{line}\n"));
    std::fs::write(&known, text).unwrap();
    let _known = KnownHost { file: known, line };

    // A bare repository with a tag, and a commit after it.
    let work = d.join("work");
    std::fs::create_dir_all(&work).unwrap();
    run("git", &["init", "-q", "--bare", "repo.git"], d);
    run("git", &["init", "-q"], &work);
    std::fs::write(work.join("v.txt"), "one").unwrap();
    run("git", &["add", "."], &work);
    run("git", &["commit", "-q", "-m", "one"], &work);
    run("git", &["tag", "v1"], &work);
    std::fs::write(work.join("v.txt"), "two").unwrap();
    run("git", &["commit", "-q", "-am", "two"], &work);
    let bare = d.join("repo.git");
    run(
        "git",
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "HEAD:refs/heads/main",
            "v1",
        ],
        &work,
    );

    let key =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("id")).unwrap());
    let task_root = tempfile::tempdir().unwrap();
    let alloc = task_root.path().join("alloc-1");
    let task = alloc.join("web");
    std::fs::create_dir_all(task.join("local")).unwrap();
    let g = Getter::new(GetterConfig::default()).unwrap();
    let source = format!("git::ssh://root@127.0.0.1:{port}{}", bare.display());
    let mut art = Artifact::new(source.clone());
    art.options.insert("ref".into(), "v1".into());
    art.options.insert("sshkey".into(), key);
    art.relative_dest = "local/repo".into();
    g.fetch(&art, &alloc, &task, None)
        .await
        .expect("clone over ssh");
    assert_eq!(
        std::fs::read_to_string(task.join("local/repo/v.txt")).unwrap(),
        "one"
    );

    // A key the server does not know: a clear failure, nothing left behind.
    run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", "other"],
        d,
    );
    let other =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(d.join("other")).unwrap());
    let mut art = Artifact::new(source);
    art.options.insert("sshkey".into(), other);
    art.relative_dest = "local/denied".into();
    let err = g.fetch(&art, &alloc, &task, None).await.unwrap_err();
    assert!(err.to_string().contains("Permission denied"), "{err}");
    assert!(!task.join("local/denied").exists());
}
