//! `/v1/search`: prefix search over job, allocation, node, evaluation and deployment IDs, as
//! `caravan status <prefix>` uses it.

use super::{decode_body, ApiError, ApiResult, AppState};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::put;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Nomad truncates each context's matches at 20.
const MAX_MATCHES: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/search", put(search).post(search))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SearchRequest {
    prefix: String,
    context: String,
    namespace: String,
}

async fn search(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let req: SearchRequest = decode_body(&body)?;
    let ctx = if req.context.is_empty() {
        "all".to_string()
    } else {
        req.context.clone()
    };
    let contexts = ["jobs", "allocs", "nodes", "evals", "deployments"];
    if ctx != "all" && !contexts.contains(&ctx.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "invalid search context {ctx:?}"
        )));
    }
    let ns = if req.namespace.is_empty() {
        "default".to_string()
    } else {
        req.namespace.clone()
    };
    let t = s.server.store.snapshot();
    let p = req.prefix.as_str();
    let mut matches = Map::new();
    let mut truncations = Map::new();
    for c in contexts {
        if ctx != "all" && ctx != c {
            continue;
        }
        let ids: Vec<String> = match c {
            "jobs" => t
                .jobs
                .values()
                .filter(|j| j.namespace == ns && j.id.starts_with(p))
                .map(|j| j.id.clone())
                .collect(),
            "allocs" => t
                .allocs
                .values()
                .filter(|a| a.namespace == ns && a.id.starts_with(p))
                .map(|a| a.id.clone())
                .collect(),
            "nodes" => t
                .nodes
                .values()
                .filter(|n| n.id.starts_with(p))
                .map(|n| n.id.clone())
                .collect(),
            "evals" => t
                .evals
                .values()
                .filter(|e| e.namespace == ns && e.id.starts_with(p))
                .map(|e| e.id.clone())
                .collect(),
            _ => t
                .deployments
                .values()
                .filter(|d| d.namespace == ns && d.id.starts_with(p))
                .map(|d| d.id.clone())
                .collect(),
        };
        truncations.insert(c.into(), Value::Bool(ids.len() > MAX_MATCHES));
        matches.insert(
            c.into(),
            json!(ids.into_iter().take(MAX_MATCHES).collect::<Vec<_>>()),
        );
    }
    let mut r =
        axum::Json(json!({"Matches": matches, "Truncations": truncations, "Index": t.index}))
            .into_response();
    if let Ok(v) = t.index.to_string().parse() {
        r.headers_mut().insert("X-Nomad-Index", v);
    }
    Ok(r)
}
