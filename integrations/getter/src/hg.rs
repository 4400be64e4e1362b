//! The Mercurial getter, as go-getter's: shells out to the `hg` command line (`hg::https://...`,
//! `hg::ssh://...`, `hg::file://...`) with an optional `rev`, bounded by the client's
//! `hg_timeout`, with the same minimal environment as the git getter.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::error::{GetterError, Result};
use crate::source::{redact, Source};

/// Clones `src` into `dest` (which must not exist yet), updated to its `rev` when given.
pub async fn clone(src: &Source, dest: &Path, timeout: Duration, env: &[String]) -> Result<()> {
    let shown = redact(&src.url);
    let fail = |message: String| GetterError::Hg {
        action: "clone".into(),
        url: shown.clone(),
        message,
    };
    let mut cmd = Command::new("hg");
    crate::subprocess_env::apply(&mut cmd, env);
    cmd.arg("clone").arg("--noninteractive");
    if let Some(rev) = src.params.get("rev").filter(|r| !r.is_empty()) {
        cmd.arg("--updaterev").arg(rev);
    }
    cmd.arg("--")
        .arg(src.url.as_str())
        .arg(dest)
        // Plain hg: no user configuration from the agent's home changes what is fetched.
        .env("HGPLAIN", "1")
        .env("HGRCPATH", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| {
        fail(format!(
            "cannot run the hg command (install Mercurial on the client, e.g. apt-get install mercurial): {e}"
        ))
    })?;
    let out = tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .map_err(|_| {
            fail(format!(
                "timed out after {}s (client hg_timeout)",
                timeout.as_secs()
            ))
        })?
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
