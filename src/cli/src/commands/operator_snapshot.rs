//! `operator snapshot save|restore|inspect`: the servers' state as a snapshot archive, as
//! Nomad's commands. `save` and `restore` go through `/v1/operator/snapshot`; `inspect` reads
//! the file here. The archive (a gzip'd tar of `meta.json`, `state.json` and `SHA256SUMS`) is
//! written by the server's `server::raft::snapshot` module; this reader checks the same
//! checksums and must keep to that format.

use super::{args_and_client, fail, formatted, want_args};
use crate::columnize::format_kv;
use crate::Ctx;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;

/// What `inspect` shows: the archive's `meta.json`, its checksums verified.
fn read_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let (mut meta, mut state_sum, mut sums) = (None, None, None);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a snapshot archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("damaged archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| format!("damaged archive: {e}"))?
            .to_string_lossy()
            .into_owned();
        match name.as_str() {
            "meta.json" => {
                let mut b = Vec::new();
                entry
                    .read_to_end(&mut b)
                    .map_err(|e| format!("damaged archive: {e}"))?;
                meta = Some(b);
            }
            "state.json" => {
                // Hashed as it streams: the state can be large.
                let mut h = Sha256::new();
                let mut buf = [0u8; 64 * 1024];
                loop {
                    let n = entry
                        .read(&mut buf)
                        .map_err(|e| format!("damaged archive: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                state_sum = Some(hex(&h.finalize()));
            }
            "SHA256SUMS" => {
                let mut s = String::new();
                entry
                    .read_to_string(&mut s)
                    .map_err(|e| format!("damaged archive: {e}"))?;
                sums = Some(s);
            }
            other => return Err(format!("not a snapshot archive: unexpected file {other:?}")),
        }
    }
    let mut rest = Vec::new();
    tar.into_inner()
        .read_to_end(&mut rest)
        .map_err(|e| format!("damaged archive: {e}"))?;
    let meta = meta.ok_or("not a snapshot archive: meta.json is missing")?;
    let state_sum = state_sum.ok_or("not a snapshot archive: state.json is missing")?;
    let sums = sums.ok_or("not a snapshot archive: SHA256SUMS is missing")?;
    for (name, got) in [
        ("meta.json", hex(&Sha256::digest(&meta))),
        ("state.json", state_sum),
    ] {
        let want = sums
            .lines()
            .find_map(|l| l.strip_suffix(&format!("  {name}")))
            .ok_or(format!("SHA256SUMS has no line for {name}"))?;
        if want != got {
            return Err(format!("{name} does not match its checksum"));
        }
    }
    serde_json::from_slice(&meta).map_err(|e| format!("bad meta.json: {e}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) async fn save(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let file = ctx.flags.args[0].clone();
    let mut params = vec![];
    if ctx.flags.bool("stale") {
        params.push(("stale", "true".to_string()));
    }
    let resp = match client.get_raw("/v1/operator/snapshot", &params).await {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Failed to get snapshot file", e),
    };
    let digest = resp
        .headers()
        .get("Digest")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return fail(ctx, "Failed to get snapshot file", e),
    };
    if let Some(d) = digest.as_deref().and_then(|d| d.strip_prefix("sha-256=")) {
        let got = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body));
        if got != d {
            return fail(
                ctx,
                "Failed to get snapshot file",
                "the snapshot does not match its Digest header",
            );
        }
    }
    if let Err(e) = read_meta(&body) {
        return fail(ctx, "Failed to verify snapshot file", e);
    }
    // Written beside the target and renamed, so a failed save leaves no half file.
    let tmp = format!("{file}.tmp");
    if let Err(e) = std::fs::write(&tmp, &body).and_then(|_| std::fs::rename(&tmp, &file)) {
        let _ = std::fs::remove_file(&tmp);
        return fail(ctx, "Failed to write snapshot file", e);
    }
    ctx.ui.output(&format!("State file written to {file}"));
    0
}

pub(crate) async fn restore(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 1, 1) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let file = ctx.flags.args[0].clone();
    let body = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => return fail(ctx, "Error opening snapshot file", e),
    };
    match client.put_bytes("/v1/operator/snapshot", body, &[]).await {
        Ok(_) => {
            ctx.ui.output("Snapshot Restored");
            0
        }
        Err(e) => fail(ctx, "Error restoring snapshot", e),
    }
}

pub(crate) async fn inspect(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 1, 1) {
        return c;
    }
    let file = ctx.flags.args[0].clone();
    let bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) => return fail(ctx, "Error opening snapshot file", e),
    };
    let meta = match read_meta(&bytes) {
        Ok(m) => m,
        Err(e) => return fail(ctx, "Error verifying snapshot", e),
    };
    if let Some(code) = formatted(ctx, &meta) {
        return code;
    }
    let s = |k: &str| match &meta[k] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let rows = [
        format!("ID|{}", s("ID")),
        format!("Size|{}", s("Size")),
        format!("Index|{}", s("Index")),
        format!("Term|{}", s("Term")),
        format!("Version|{}", s("Version")),
        format!("Created|{}", s("CreatedAt")),
    ];
    ctx.ui.output(&format_kv(&rows));
    0
}
