//! Client endpoints: the allocation filesystem (`ls`, `stat`, `cat`, `readat`), task logs
//! (plain or framed, `follow`, `origin=end`), allocation stats, restart and signal, and host
//! stats, and the snapshot of an allocation's ephemeral disk that a migrating replacement on
//! another node fetches. Every path goes through the alloc dir's resolver, so none escapes it.

use super::{decode_body, ApiError, ApiResult, AppState};
use crate::client::alloc_runner::AllocRunner;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/client/fs/logs/:id", get(logs))
        .route("/v1/client/fs/ls/:id", get(ls))
        .route("/v1/client/fs/stat/:id", get(stat))
        .route("/v1/client/fs/cat/:id", get(cat))
        .route("/v1/client/fs/readat/:id", get(readat))
        .route("/v1/client/allocation/:id/stats", get(alloc_stats))
        .route(
            "/v1/client/allocation/:id/restart",
            put(restart).post(restart),
        )
        .route("/v1/client/allocation/:id/signal", put(signal).post(signal))
        .route("/v1/client/stats", get(host_stats))
        .route("/v1/client/allocation/:id/snapshot", get(snapshot))
}

type Params = Query<HashMap<String, String>>;

pub(super) fn runner(s: &AppState, id: &str) -> Result<Arc<AllocRunner>, ApiError> {
    let client = s
        .client
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("this agent does not run a client".into()))?;
    if let Some(r) = client.alloc_runner(id) {
        return Ok(r);
    }
    let matches: Vec<_> = client
        .alloc_runners()
        .into_iter()
        .filter(|r| r.alloc_id.starts_with(id))
        .collect();
    match matches.len() {
        1 => Ok(matches[0].clone()),
        _ => Err(ApiError::NotFound(format!("Unknown allocation \"{id}\""))),
    }
}

fn resolve(r: &AllocRunner, p: &HashMap<String, String>) -> Result<PathBuf, ApiError> {
    let rel = p.get("path").map(|s| s.as_str()).unwrap_or("/");
    r.alloc_dir
        .resolve(rel)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn file_info(path: &std::path::Path, name: String) -> Result<serde_json::Value, ApiError> {
    let m = std::fs::symlink_metadata(path)
        .map_err(|e| ApiError::NotFound(format!("stat {}: {e}", path.display())))?;
    use std::os::unix::fs::PermissionsExt;
    let mode = m.permissions().mode();
    let mtime = m
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0);
    Ok(json!({
        "Name": name,
        "IsDir": m.is_dir(),
        "Size": m.len(),
        "FileMode": unix_mode_string(mode, m.is_dir()),
        "ModTime": crate::util::rfc3339(mtime),
        "ContentType": "",
    }))
}

fn unix_mode_string(mode: u32, dir: bool) -> String {
    let mut s = String::from(if dir { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

async fn ls(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let r = runner(&s, &id)?;
    let dir = resolve(&r, &p)?;
    let rd = std::fs::read_dir(&dir)
        .map_err(|e| ApiError::NotFound(format!("open {}: {e}", dir.display())))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Ok(info) = file_info(&e.path(), name) {
            out.push(info);
        }
    }
    out.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
    Ok(axum::Json(out).into_response())
}

async fn stat(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let r = runner(&s, &id)?;
    let path = resolve(&r, &p)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "/".into());
    Ok(axum::Json(file_info(&path, name)?).into_response())
}

async fn cat(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let r = runner(&s, &id)?;
    let path = resolve(&r, &p)?;
    if path.is_dir() {
        return Err(ApiError::BadRequest(format!(
            "{} is a directory",
            p.get("path").cloned().unwrap_or_default()
        )));
    }
    let data = std::fs::read(&path)
        .map_err(|e| ApiError::NotFound(format!("open {}: {e}", path.display())))?;
    Ok(data.into_response())
}

async fn readat(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let r = runner(&s, &id)?;
    let path = resolve(&r, &p)?;
    let num = |k: &str| -> Result<u64, ApiError> {
        match p.get(k) {
            Some(v) => v
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid {k}: {v:?}"))),
            None => Ok(0),
        }
    };
    let offset = num("offset")?;
    let limit = num("limit")?;
    let mut f = std::fs::File::open(&path)
        .map_err(|e| ApiError::NotFound(format!("open {}: {e}", path.display())))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut buf = Vec::new();
    let r = if limit > 0 {
        f.take(limit).read_to_end(&mut buf)
    } else {
        f.read_to_end(&mut buf)
    };
    r.map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(buf.into_response())
}

/// The rotated files of one stream, oldest first.
fn log_files(dir: &std::path::Path, task: &str, kind: &str) -> Vec<PathBuf> {
    let prefix = format!("{task}.{kind}.");
    let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let idx = name.strip_prefix(&prefix)?.parse::<u64>().ok()?;
                    Some((idx, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// Reads the concatenated log stream from `pos` (a position in the whole stream). Returns the
/// bytes and the new position.
fn read_from(files: &[PathBuf], pos: u64) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut start = 0u64;
    for f in files {
        let len = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        let end = start + len;
        if end > pos {
            if let Ok(mut file) = std::fs::File::open(f) {
                let skip = pos.saturating_sub(start);
                if file.seek(SeekFrom::Start(skip)).is_ok() {
                    let _ = file.take(len - skip).read_to_end(&mut out);
                }
            }
        }
        start = end;
    }
    (out.clone(), pos + out.len() as u64)
}

fn total_len(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
        .sum()
}

async fn logs(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let r = runner(&s, &id)?;
    let task = match p.get("task") {
        Some(t) if !t.is_empty() => t.clone(),
        _ => return Err(ApiError::BadRequest("must include task name".into())),
    };
    if r.task(&task).is_none() && !r.task_states().contains_key(&task) {
        return Err(ApiError::BadRequest(format!("unknown task name {task:?}")));
    }
    let kind = match p.get("type").map(|s| s.as_str()) {
        Some("stdout") => "stdout",
        Some("stderr") => "stderr",
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "illegal logs type {other:?}: must be \"stdout\" or \"stderr\""
            )))
        }
        None => return Err(ApiError::BadRequest("must include logs type".into())),
    };
    let follow = matches!(p.get("follow").map(|s| s.as_str()), Some("true"));
    let plain = matches!(p.get("plain").map(|s| s.as_str()), Some("true"));
    let offset: u64 = match p.get("offset") {
        Some(v) => v
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("invalid offset {v:?}")))?,
        None => 0,
    };
    let origin_end = match p.get("origin").map(|s| s.as_str()) {
        None | Some("start") => false,
        Some("end") => true,
        Some(o) => {
            return Err(ApiError::BadRequest(format!(
                "origin must be start or end, got {o:?}"
            )))
        }
    };
    let dir = r.alloc_dir.logs_dir();
    let files = log_files(&dir, &task, kind);
    let total = total_len(&files);
    let mut pos = if origin_end {
        total.saturating_sub(offset)
    } else {
        offset.min(total)
    };
    let file_name = format!("alloc/logs/{task}.{kind}.0");
    let frame = move |data: &[u8], off: u64| -> Vec<u8> {
        if plain {
            data.to_vec()
        } else {
            serde_json::to_vec(
                &json!({"Data": base64_encode(data), "File": file_name, "Offset": off}),
            )
            .unwrap_or_default()
        }
    };
    if !follow {
        let (data, end) = read_from(&files, pos);
        if data.is_empty() && !plain {
            return Ok(Vec::<u8>::new().into_response());
        }
        return Ok(frame(&data, end).into_response());
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(16);
    tokio::spawn(async move {
        loop {
            let files = log_files(&dir, &task, kind);
            let (data, end) = read_from(&files, pos);
            if !data.is_empty() {
                pos = end;
                if tx.send(Ok(frame(&data, end))).await.is_err() {
                    return;
                }
            } else {
                let done = r.task(&task).map(|t| t.is_done()).unwrap_or(true)
                    && r.current().server_terminal();
                if done || tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok(Body::from_stream(stream).into_response())
}

/// Nomad's alloc dir snapshot: a tar stream of `alloc/data` and each task's `local/`.
async fn snapshot(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    resolved: Option<axum::Extension<crate::server::acl::Resolved>>,
) -> ApiResult {
    let client = s
        .client
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("this agent does not run a client".into()))?;
    // With ACLs on: the migrate token for this allocation on this node, or read-fs.
    if s.server.acl_enabled() {
        let migrate = crate::util::migrate_token(&client.shared.node().secret_id, &id);
        let shown = super::acl_rules::token_of(&headers).unwrap_or_default();
        let ns = client
            .alloc_runner(&id)
            .map(|r| r.current().namespace.clone())
            .unwrap_or_else(|| "default".into());
        let by_acl = resolved.is_some_and(|axum::Extension(r)| {
            r.acl
                .allow_namespace_operation(&ns, caravan_acl::capability::READ_FS)
        });
        if shown != migrate && !by_acl {
            return Err(ApiError::Forbidden("Permission denied".into()));
        }
    }
    // The exact ID only: a replacement names its predecessor in full.
    let r = client
        .alloc_runner(&id)
        .ok_or_else(|| ApiError::NotFound(format!("Unknown allocation \"{id}\"")))?;
    let alloc = r.current();
    let tasks: Vec<String> = alloc
        .job
        .as_ref()
        .and_then(|j| j.lookup_group(&alloc.task_group))
        .map(|g| g.tasks.iter().map(|t| t.name.clone()).collect())
        .unwrap_or_default();
    let dir = r.alloc_dir.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx.clone()));
        if let Err(e) = crate::client::snapshot::write(&dir, &tasks, out) {
            tracing::warn!(alloc = %id, "alloc snapshot: {e}");
            // The receiver sees the error and aborts the response, so a cut-off archive is
            // never mistaken for a whole one.
            let _ = tx.blocking_send(Err(e));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A blocking writer feeding a response body.
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(super) fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

async fn alloc_stats(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let r = runner(&s, &id)?;
    let mut tasks = serde_json::Map::new();
    let mut rss = 0u64;
    let mut pct = 0f64;
    let mut ticks = 0f64;
    for t in r.tasks() {
        if let Some(st) = t.stats().await {
            rss += st.resource_usage.memory_stats.rss;
            pct += st.resource_usage.cpu_stats.percent;
            ticks += st.resource_usage.cpu_stats.total_ticks;
            tasks.insert(t.name.clone(), serde_json::to_value(st).unwrap_or_default());
        }
    }
    Ok(axum::Json(json!({
        "ResourceUsage": {
            "MemoryStats": {"RSS": rss, "Measured": ["RSS"]},
            "CpuStats": {"Percent": pct, "TotalTicks": ticks, "Measured": ["Percent", "Total Ticks"]},
        },
        "Tasks": tasks,
        "Timestamp": caravan_structs::time::now_nanos(),
    }))
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RestartRequest {
    task_name: String,
    all_tasks: bool,
}

async fn restart(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let r = runner(&s, &id)?;
    let req: RestartRequest = if body.is_empty() {
        RestartRequest::default()
    } else {
        decode_body(&body)?
    };
    if !req.task_name.is_empty() {
        let t = r.task(&req.task_name).ok_or_else(|| {
            ApiError::BadRequest(format!("Task not running: {:?}", req.task_name))
        })?;
        t.restart().map_err(ApiError::BadRequest)?;
    } else {
        for t in r.tasks() {
            // Without AllTasks, Nomad restarts only the running tasks.
            if req.all_tasks || !t.is_done() {
                let _ = t.restart();
            }
        }
    }
    Ok(axum::Json(json!({})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SignalRequest {
    task: String,
    signal: String,
}

async fn signal(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let r = runner(&s, &id)?;
    let req: SignalRequest = decode_body(&body)?;
    let sig = if req.signal.is_empty() {
        "SIGKILL".to_string()
    } else {
        req.signal
    };
    caravan_driver::parse_signal(&sig).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let tasks: Vec<_> = if req.task.is_empty() {
        r.tasks()
    } else {
        vec![r
            .task(&req.task)
            .ok_or_else(|| ApiError::BadRequest(format!("unknown task {:?}", req.task)))?]
    };
    for t in tasks {
        t.signal(&sig).await.map_err(ApiError::BadRequest)?;
    }
    Ok(axum::Json(json!({})).into_response())
}

async fn host_stats(State(s): State<AppState>) -> ApiResult {
    if s.client.is_none() {
        return Err(ApiError::BadRequest(
            "this agent does not run a client".into(),
        ));
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |k: &str| -> u64 {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let total = kb("MemTotal:");
    let avail = kb("MemAvailable:");
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    Ok(axum::Json(json!({
        "Memory": {"Total": total, "Available": avail, "Used": total - avail, "Free": kb("MemFree:")},
        "CPU": [],
        "DiskStats": [],
        "Uptime": uptime as u64,
        "Timestamp": caravan_structs::time::now_nanos(),
        "CPUTicksConsumed": 0,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64() {
        assert_eq!(super::base64_encode(b"hello"), "aGVsbG8=");
        assert_eq!(super::base64_encode(b"hi!"), "aGkh");
        assert_eq!(super::base64_encode(b""), "");
    }
}
