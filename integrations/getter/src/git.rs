//! The git getter: shells out to the `git` command line as go-getter does (no libgit2), with
//! `ref`, `depth` and a base64 `sshkey`, each command bounded by the client's `git_timeout`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use tokio::process::Command;

use crate::error::{GetterError, Result};
use crate::source::{redact, Source};

/// Clones `src` into the directory `dest` (which must not exist yet) and checks out its `ref`.
pub async fn clone(src: &Source, dest: &Path, timeout: Duration, env: &[String]) -> Result<()> {
    let shown = redact(&src.url);
    let url = if src.url.scheme() == "git" {
        src.url.to_string()
    } else {
        src.url.as_str().to_string()
    };
    // A private key for ssh, kept in a 0600 temporary file for the clone's duration.
    let key_file = match &src.sshkey {
        Some(b64) => {
            let key = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b64.trim()))
                .map_err(|e| GetterError::InvalidOption {
                    name: "sshkey".into(),
                    reason: format!("not base64: {e}"),
                })?;
            let mut f = tempfile::NamedTempFile::new()
                .map_err(|e| GetterError::io("create", "ssh key file", e))?;
            f.write_all(&key)
                .map_err(|e| GetterError::io("write", f.path().to_path_buf(), e))?;
            std::fs::set_permissions(f.path(), std::fs::Permissions::from_mode(0o600))
                .map_err(|e| GetterError::io("chmod", f.path().to_path_buf(), e))?;
            Some(f)
        }
        None => None,
    };
    let mut args: Vec<String> = vec!["clone".into()];
    if let Some(d) = src.depth.filter(|d| *d > 0) {
        args.push("--depth".into());
        args.push(d.to_string());
        if let Some(r) = &src.git_ref {
            args.push("--branch".into());
            args.push(r.clone());
        }
    }
    args.push("--".into());
    args.push(url.clone());
    args.push(dest.display().to_string());
    run_git(
        &args,
        None,
        key_file.as_ref().map(|f| f.path()),
        timeout,
        "clone",
        &shown,
        env,
    )
    .await?;
    if let (Some(r), None) = (&src.git_ref, src.depth.filter(|d| *d > 0)) {
        let args = vec!["checkout".to_string(), r.clone(), "--".into()];
        run_git(&args, Some(dest), None, timeout, "checkout", &shown, env).await?;
    }
    Ok(())
}

async fn run_git(
    args: &[String],
    cwd: Option<&Path>,
    key: Option<&Path>,
    timeout: Duration,
    action: &str,
    shown: &str,
    env: &[String],
) -> Result<()> {
    let mut cmd = Command::new("git");
    crate::subprocess_env::apply(&mut cmd, env);
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    if let Some(k) = key {
        cmd.env(
            "GIT_SSH_COMMAND",
            format!("ssh -i {} -o IdentitiesOnly=yes", k.display()),
        );
    }
    let fail = |message: String| GetterError::Git {
        action: action.to_string(),
        url: shown.to_string(),
        message,
    };
    let child = cmd.spawn().map_err(|e| {
        fail(format!(
            "cannot run the git command (is git installed?): {e}"
        ))
    })?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| GetterError::GitTimeout {
            action: action.to_string(),
            url: shown.to_string(),
            secs: timeout.as_secs(),
        })?
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(stderr.trim().to_string()));
    }
    Ok(())
}
