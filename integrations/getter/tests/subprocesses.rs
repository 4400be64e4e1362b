//! The getter's subprocesses and local-path isolation: `hg::` from a local Mercurial
//! repository at a tag, `set_environment_variables` deciding which agent variables reach `git`
//! (and nothing else does), and `filesystem_isolation_extra_paths` opening host paths to local
//! sources while isolation stays on.

use std::path::{Path, PathBuf};
use std::process::Command;

use caravan_getter::{Artifact, Getter, GetterConfig, GetterError};

struct Alloc {
    _tmp: tempfile::TempDir,
    alloc: PathBuf,
    task: PathBuf,
}

fn alloc() -> Alloc {
    let tmp = tempfile::tempdir().unwrap();
    let alloc = tmp.path().join("alloc-1");
    let task = alloc.join("web");
    std::fs::create_dir_all(task.join("local")).unwrap();
    Alloc {
        _tmp: tmp,
        alloc,
        task,
    }
}

fn runs(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn run(dir: &Path, bin: &str, args: &[&str]) {
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("HGUSER", "t <t@e>")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@e")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@e")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{bin} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn open_getter() -> Getter {
    Getter::new(GetterConfig {
        disable_filesystem_isolation: true,
        ..GetterConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn hg_clone_at_a_tag() {
    if !runs("hg") {
        println!("SKIPPED: the hg binary is not installed (apt-get install mercurial)");
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    run(r, "hg", &["init"]);
    std::fs::write(r.join("app.conf"), "version = 1\n").unwrap();
    run(r, "hg", &["add", "app.conf"]);
    run(r, "hg", &["commit", "-m", "one"]);
    run(r, "hg", &["tag", "v1"]);
    std::fs::write(r.join("app.conf"), "version = 2\n").unwrap();
    run(r, "hg", &["commit", "-m", "two"]);

    let a = alloc();
    let src = format!("hg::file://{}?rev=v1", r.display());
    open_getter()
        .fetch(&Artifact::new(&src), &a.alloc, &a.task, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(a.task.join("local/app.conf")).unwrap(),
        "version = 1\n"
    );

    let a = alloc();
    let err = open_getter()
        .fetch(
            &Artifact::new(format!("hg::file://{}?rev=nope", r.display())),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::Hg { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    assert!(!a.task.join("local/app.conf").exists());
}

/// git reads `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0`/`GIT_CONFIG_VALUE_0` from its environment: a
/// `url.<real>.insteadOf` there turns a made-up source into the real repository, so the clone
/// works only when the client passes those variables through.
#[tokio::test]
async fn set_environment_variables_reach_git_and_nothing_else_does() {
    if !runs("git") {
        println!("SKIPPED: the git binary is not installed");
        return;
    }
    let repo = tempfile::tempdir().unwrap();
    let r = repo.path();
    run(r, "git", &["init", "-q", "-b", "main"]);
    std::fs::write(r.join("hello.txt"), "hi\n").unwrap();
    run(r, "git", &["add", "hello.txt"]);
    run(r, "git", &["commit", "-q", "-m", "one"]);

    // This test runs in its own process (nextest), so its environment is its own.
    std::env::set_var("GIT_CONFIG_COUNT", "1");
    std::env::set_var(
        "GIT_CONFIG_KEY_0",
        format!("url.file://{}.insteadOf", r.display()),
    );
    std::env::set_var("GIT_CONFIG_VALUE_0", "https://example.invalid/repo.git");
    let src = "git::https://example.invalid/repo.git";

    // Nomad's default: no agent variable reaches git, so the made-up host is really tried.
    let a = alloc();
    let err = open_getter()
        .fetch(&Artifact::new(src), &a.alloc, &a.task, None)
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::Git { .. }), "{err}");

    let g = Getter::new(GetterConfig {
        disable_filesystem_isolation: true,
        set_environment_variables: caravan_getter::subprocess_env::parse_names(
            "GIT_CONFIG_COUNT, GIT_CONFIG_KEY_0,GIT_CONFIG_VALUE_0",
        ),
        ..GetterConfig::default()
    })
    .unwrap();
    let a = alloc();
    g.fetch(&Artifact::new(src), &a.alloc, &a.task, None)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(a.task.join("local/hello.txt")).unwrap(),
        "hi\n"
    );
}

#[tokio::test]
async fn extra_paths_open_host_directories_while_isolation_stays_on() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("ca.pem"), "cert").unwrap();
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("secret"), "no").unwrap();
    let g = Getter::new(GetterConfig {
        filesystem_isolation_extra_paths: vec![shared.path().to_path_buf()],
        ..GetterConfig::default()
    })
    .unwrap();
    let a = alloc();
    g.fetch(
        &Artifact::new(format!("file://{}/ca.pem", shared.path().display())),
        &a.alloc,
        &a.task,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(a.task.join("local/ca.pem")).unwrap(),
        "cert"
    );
    let err = g
        .fetch(
            &Artifact::new(format!("file://{}/secret", other.path().display())),
            &a.alloc,
            &a.task,
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GetterError::FileOutsideAlloc { .. }), "{err}");
}
