//! `GET /v1/agent/monitor`: streams this agent's log lines at the caller's `log_level`
//! (independent of the agent's own), as Nomad's stream frames (`{"Data": <base64>}`) or, with
//! `plain=true`, as text; `log_json=true` sends hclog-style JSON lines.

use super::client_fs::base64_encode;
use super::{ApiError, ApiResult, AppState};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/agent/monitor", get(monitor))
}

async fn monitor(State(s): State<AppState>, Query(p): Query<HashMap<String, String>>) -> ApiResult {
    let logs = s
        .agent
        .logs
        .clone()
        .ok_or_else(|| ApiError::BadRequest("this agent does not stream its logs".into()))?;
    let level = match p.get("log_level") {
        None => tracing::Level::INFO,
        Some(l) => match crate::logging::parse_level(l) {
            Ok(Some(level)) => level,
            Ok(None) => {
                return Err(ApiError::BadRequest(
                    "log_level OFF would stream nothing; use TRACE, DEBUG, INFO, WARN or ERROR"
                        .into(),
                ))
            }
            Err(e) => return Err(ApiError::BadRequest(e)),
        },
    };
    let flag = |k: &str| -> Result<bool, ApiError> {
        match p.get(k).map(|s| s.as_str()) {
            None | Some("") | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(v) => Err(ApiError::BadRequest(format!(
                "{k}: {v:?} is not a boolean (true or false)"
            ))),
        }
    };
    let json_lines = flag("log_json")?;
    let plain = flag("plain")?;
    if let Some(node) = p.get("node_id").filter(|n| !n.is_empty()) {
        let local = s.client.as_ref().map(|c| c.node_id()).unwrap_or_default();
        if !local.starts_with(node.as_str()) {
            return Err(ApiError::NotFound(format!(
                "Unknown node {node:?}: this agent can only monitor itself"
            )));
        }
    }
    let rx = logs.monitor(level, json_lines);
    let stream = futures_util::stream::unfold(rx, move |mut rx| async move {
        let line = rx.recv().await?;
        let bytes = if plain {
            format!("{line}\n").into_bytes()
        } else {
            let data = base64_encode(format!("{line}\n").as_bytes());
            json!({"Data": data, "Offset": 0, "File": "", "FileEvent": ""})
                .to_string()
                .into_bytes()
        };
        Some((Ok::<_, std::io::Error>(bytes), rx))
    });
    Ok(Body::from_stream(stream).into_response())
}
