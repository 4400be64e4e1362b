//! `GET /v1/client/allocation/:id/exec`: runs a command inside a running task over a
//! websocket, with Nomad's framing (`command/agent/alloc_endpoint.go`, `api/allocations_exec.go`).
//!
//! Query: `task` (required), `command` (a JSON array of strings, required), `tty` (bool),
//! `ws_handshake` (bool: the first client frame is `{"version":1,"auth_token":"..."}`, and
//! with ACLs on its token is the one checked, as browsers cannot set headers on websockets).
//!
//! ACL: `alloc-exec` in the allocation's namespace, and `alloc-node-exec` too when the task's
//! driver has no isolation (raw_exec), as Nomad checks them. The route's rule is `Handler`:
//! this handler checks the header's token before the upgrade, or the handshake's after it.
//!
//! Client frames: `{"stdin":{"data":"<base64>"}}`, `{"stdin":{"close":true}}`,
//! `{"tty_size":{"height":h,"width":w}}`. Server frames: `{"stdout":{"data":"<base64>"}}`,
//! `{"stderr":{"data":"<base64>"}}`, then `{"exited":true,"result":{"exit_code":N}}` and a
//! normal close. An error after the upgrade is a close frame carrying the message (1008, or
//! 1011 for a failure of the driver), as Nomad sends it.
//!
//! Everything that can be checked before the command starts (the allocation, the task, its
//! state, the command, `alloc-node-exec` for drivers without isolation) is checked before the
//! upgrade and answered as a plain HTTP error, so that bad input starts nothing.

use super::acl_rules::{caller_acl, TokenRejected};
use super::{ApiError, AppState};
use crate::server::acl::Resolved;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use base64::Engine as _;
use caravan_driver::{Driver, ExecInput, ExecOutput, ExecStreamIo};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/client/allocation/:id/exec", get(exec))
}

/// Close codes (RFC 6455) Nomad uses for exec errors.
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_POLICY_VIOLATION: u16 = 1008;
const CLOSE_INTERNAL: u16 = 1011;

/// How long the server waits for the client's close after its own.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A validated exec request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecRequest {
    pub task: String,
    pub cmd: Vec<String>,
    pub tty: bool,
    pub ws_handshake: bool,
}

fn parse_bool(p: &HashMap<String, String>, key: &str) -> Result<bool, ApiError> {
    match p.get(key).map(|s| s.as_str()) {
        None | Some("") => Ok(false),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
        Some(v) => Err(ApiError::BadRequest(format!(
            "{key} value is not a boolean: {v:?}"
        ))),
    }
}

/// Reads the query parameters (Nomad's names and checks).
pub(crate) fn parse_request(p: &HashMap<String, String>) -> Result<ExecRequest, ApiError> {
    let task = p.get("task").cloned().unwrap_or_default();
    if task.is_empty() {
        return Err(ApiError::BadRequest(
            "missing task name: set the `task` query parameter".into(),
        ));
    }
    let raw = p.get("command").map(|s| s.as_str()).unwrap_or_default();
    if raw.is_empty() {
        return Err(ApiError::BadRequest(
            "command is not present: set `command` to a JSON array such as [\"/bin/sh\"]".into(),
        ));
    }
    let cmd: Vec<String> = serde_json::from_str(raw).map_err(|e| {
        ApiError::BadRequest(format!(
            "command is not a JSON array of strings (such as [\"/bin/sh\",\"-c\",\"date\"]): {e}"
        ))
    })?;
    if cmd.is_empty() || cmd[0].is_empty() {
        return Err(ApiError::BadRequest(
            "command is not present: the `command` array is empty".into(),
        ));
    }
    Ok(ExecRequest {
        task,
        cmd,
        tty: parse_bool(p, "tty")?,
        ws_handshake: parse_bool(p, "ws_handshake")?,
    })
}

/// What the caller must be allowed: the capabilities in the allocation's namespace.
#[derive(Debug, Clone)]
struct Needs {
    namespace: String,
    node_exec: bool,
}

impl Needs {
    fn allowed(&self, acl: &caravan_acl::Acl) -> bool {
        use caravan_acl::capability::{ALLOC_EXEC, ALLOC_NODE_EXEC};
        acl.allow_namespace_operation(&self.namespace, ALLOC_EXEC)
            && (!self.node_exec || acl.allow_namespace_operation(&self.namespace, ALLOC_NODE_EXEC))
    }
}

/// The handshake frame of `ws_handshake=true` (Nomad's `wsHandshakeMessage`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Handshake {
    version: i64,
    auth_token: String,
}

async fn exec(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<HashMap<String, String>>,
    resolved: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
    ws: Option<WebSocketUpgrade>,
) -> Result<Response, ApiError> {
    let req = parse_request(&p)?;
    let runner = super::client_fs::runner(&s, &id)?;
    let namespace = runner.current().namespace.clone();
    // With ACLs on: the header's token now, or the handshake's once upgraded. alloc-exec is
    // checked before anything about the allocation's tasks is told.
    let check_after_upgrade = s.server.acl_enabled() && req.ws_handshake;
    let acl = if check_after_upgrade {
        None
    } else {
        caller_acl(&s, resolved, rejected)?
    };
    if let Some(acl) = &acl {
        if !acl.allow_namespace_operation(&namespace, caravan_acl::capability::ALLOC_EXEC) {
            return Err(ApiError::Forbidden("Permission denied".into()));
        }
    }
    let task = runner.task(&req.task).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "unknown task name {:?} in allocation {}",
            req.task, runner.alloc_id
        ))
    })?;
    let state = task.state().state;
    if state != caravan_structs::TASK_STATE_RUNNING {
        return Err(ApiError::BadRequest(format!(
            "task {:?} is not running (state {state:?})",
            req.task
        )));
    }
    let driver = task.driver();
    let needs = Needs {
        namespace,
        // A driver that leaves the host's filesystem open (Nomad's FSIsolationNone).
        node_exec: !driver.exec_isolated(),
    };
    if let Some(acl) = &acl {
        if !needs.allowed(acl) {
            return Err(ApiError::Forbidden("Permission denied".into()));
        }
    }
    let auth = check_after_upgrade.then(|| (s.server.clone(), needs));
    let Some(ws) = ws else {
        return Err(ApiError::BadRequest(
            "this endpoint speaks websocket: send `Connection: Upgrade` and `Upgrade: websocket`"
                .into(),
        ));
    };
    let task_id = task.task_id.clone();
    tracing::info!(alloc = %runner.alloc_id, task = %req.task, command = ?req.cmd, tty = req.tty, "alloc exec");
    Ok(ws.on_upgrade(move |socket| session(socket, driver, task_id, req, auth)))
}

/// A client frame (Nomad's `ExecTaskStreamingRequestMsg`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InFrame {
    stdin: Option<StdinFrame>,
    tty_size: Option<TtySize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StdinFrame {
    data: Option<String>,
    close: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TtySize {
    height: u16,
    width: u16,
}

/// The inputs one client frame carries, in order.
pub(crate) fn decode_frame(text: &str) -> Result<Vec<ExecInput>, String> {
    let f: InFrame =
        serde_json::from_str(text).map_err(|e| format!("invalid exec frame {text:?}: {e}"))?;
    let mut out = Vec::new();
    if let Some(t) = f.tty_size {
        out.push(ExecInput::Resize {
            height: t.height,
            width: t.width,
        });
    }
    if let Some(s) = f.stdin {
        if let Some(d) = s.data.filter(|d| !d.is_empty()) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d.as_bytes())
                .map_err(|e| format!("stdin data is not base64: {e}"))?;
            out.push(ExecInput::Stdin(bytes));
        }
        if s.close {
            out.push(ExecInput::CloseStdin);
        }
    }
    Ok(out)
}

/// A server frame for a piece of output.
pub(crate) fn encode_output(o: &ExecOutput) -> String {
    let (stream, data) = match o {
        ExecOutput::Stdout(d) => ("stdout", d),
        ExecOutput::Stderr(d) => ("stderr", d),
    };
    json!({ stream: { "data": base64::engine::general_purpose::STANDARD.encode(data) } })
        .to_string()
}

fn close(code: u16, reason: &str) -> Message {
    // A close frame's reason is at most 123 bytes.
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason[..end].to_string().into(),
    }))
}

/// Forwards the client's frames to the command until the client closes (`Ok`) or sends
/// something unreadable (`Err`). Returning drops `input`, which kills a command still running.
async fn forward_input(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    input: tokio::sync::mpsc::Sender<ExecInput>,
) -> Result<(), String> {
    while let Some(msg) = stream.next().await {
        let text = match msg {
            Ok(Message::Text(t)) => t,
            Ok(Message::Binary(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Message::Close(_)) | Err(_) => return Ok(()),
            Ok(_) => continue,
        };
        for m in decode_frame(&text)? {
            // A command that has ended takes no more input; reading goes on until the
            // client's close, so that no unread frame turns the close into a reset.
            let _ = input.send(m).await;
        }
    }
    Ok(())
}

/// Reads the `ws_handshake` frame; with `auth` (ACLs on) its token must allow the exec.
/// On refusal the reason for the close frame.
async fn handshake(
    socket: &mut WebSocket,
    auth: Option<(Arc<crate::server::Server>, Needs)>,
) -> Result<(), String> {
    let text = loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Binary(b))) => break String::from_utf8_lossy(&b).into_owned(),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                return Err("the connection closed before the handshake".into())
            }
            Some(Ok(_)) => continue,
        }
    };
    let h: Handshake = serde_json::from_str(&text)
        .map_err(|e| format!("invalid websocket handshake frame: {e}"))?;
    if h.version != 1 {
        return Err(format!(
            "unsupported handshake version {}; use 1",
            h.version
        ));
    }
    let Some((server, needs)) = auth else {
        return Ok(());
    };
    let token = Some(h.auth_token.trim()).filter(|t| !t.is_empty());
    let resolved = server.resolve_token(token).map_err(|e| e.to_string())?;
    if needs.allowed(&resolved.acl) {
        Ok(())
    } else {
        Err("Permission denied".into())
    }
}

async fn session(
    mut socket: WebSocket,
    driver: Arc<dyn Driver>,
    task_id: String,
    req: ExecRequest,
    auth: Option<(Arc<crate::server::Server>, Needs)>,
) {
    if req.ws_handshake {
        if let Err(e) = handshake(&mut socket, auth).await {
            tracing::debug!("alloc exec handshake: {e}");
            let _ = socket.send(close(CLOSE_POLICY_VIOLATION, &e)).await;
            // Wait for the client's close so that the connection is not reset under it.
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(_)) = socket.recv().await {}
            })
            .await;
            return;
        }
    }
    let (mut sink, stream) = socket.split();
    let (in_tx, mut out_rx, io) = ExecStreamIo::channels(64);
    let cmd = req.cmd.clone();
    let tty = req.tty;
    let run = tokio::spawn(async move { driver.exec_streaming(&task_id, cmd, tty, io).await });
    let reader = forward_input(stream, in_tx);
    tokio::pin!(reader);
    let mut reading = true;
    loop {
        tokio::select! {
            out = out_rx.recv() => match out {
                Some(o) => {
                    // A client gone mid-write: the reader sees the end and the command dies.
                    let _ = sink.send(Message::Text(encode_output(&o))).await;
                }
                None => break,
            },
            r = &mut reader, if reading => {
                reading = false;
                if let Err(e) = r {
                    tracing::debug!("alloc exec: {e}");
                    let _ = sink.send(close(CLOSE_POLICY_VIOLATION, &e)).await;
                    // The command is killed (its input closed); wait for it below.
                    while out_rx.recv().await.is_some() {}
                    let _ = run.await;
                    return;
                }
            }
        }
    }
    let last = match run.await {
        Ok(Ok(code)) => {
            let exited = json!({"exited": true, "result": {"exit_code": code}}).to_string();
            let _ = sink.send(Message::Text(exited)).await;
            close(CLOSE_NORMAL, "")
        }
        Ok(Err(e)) => {
            let code = match e {
                caravan_driver::DriverError::InvalidConfig(_)
                | caravan_driver::DriverError::TaskNotFound(_)
                | caravan_driver::DriverError::Unsupported { .. } => CLOSE_POLICY_VIOLATION,
                _ => CLOSE_INTERNAL,
            };
            close(code, &e.to_string())
        }
        Err(e) => close(CLOSE_INTERNAL, &format!("exec failed: {e}")),
    };
    let _ = sink.send(last).await;
    // The closing handshake: wait (briefly) for the client's close, reading what it sent
    // meanwhile; closing with unread data would reset the connection under the last frames.
    if reading {
        let _ = tokio::time::timeout(CLOSE_WAIT, reader).await;
    }
    let _ = sink.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn requests_are_checked_before_anything_runs() {
        let ok = parse_request(&q(&[
            ("task", "web"),
            ("command", r#"["/bin/sh","-c","date"]"#),
            ("tty", "true"),
        ]))
        .unwrap();
        assert_eq!(ok.cmd, ["/bin/sh", "-c", "date"]);
        assert!(ok.tty && !ok.ws_handshake);
        let err = |p: &[(&str, &str)]| match parse_request(&q(p)) {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("expected a 400, got {other:?}"),
        };
        assert!(err(&[("command", r#"["sh"]"#)]).contains("missing task name"));
        assert!(err(&[("task", "web")]).contains("command is not present"));
        assert!(err(&[("task", "web"), ("command", "[]")]).contains("array is empty"));
        assert!(err(&[("task", "web"), ("command", "sh -c date")]).contains("not a JSON array"));
        assert!(err(&[("task", "web"), ("command", r#"[1]"#)]).contains("not a JSON array"));
        assert!(
            err(&[("task", "web"), ("command", r#"["sh"]"#), ("tty", "maybe")])
                .contains("tty value is not a boolean")
        );
    }

    #[test]
    fn frames_follow_nomads_framing() {
        assert_eq!(
            decode_frame(r#"{"stdin":{"data":"aGVsbG8="}}"#).unwrap(),
            [ExecInput::Stdin(b"hello".to_vec())]
        );
        assert_eq!(
            decode_frame(r#"{"stdin":{"close":true}}"#).unwrap(),
            [ExecInput::CloseStdin]
        );
        assert_eq!(
            decode_frame(r#"{"tty_size":{"height":40,"width":120}}"#).unwrap(),
            [ExecInput::Resize {
                height: 40,
                width: 120
            }]
        );
        assert!(decode_frame("not json").is_err());
        assert!(decode_frame(r#"{"stdin":{"data":"!!"}}"#)
            .unwrap_err()
            .contains("base64"));
        assert_eq!(
            encode_output(&ExecOutput::Stderr(b"hi!".to_vec())),
            r#"{"stderr":{"data":"aGkh"}}"#
        );
    }
}
