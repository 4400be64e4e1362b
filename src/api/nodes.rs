//! `/v1/nodes`, `/v1/node/:id`, its allocations and scheduling eligibility.

use super::query::{blocking, QueryOptions};
use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/nodes", get(list))
        .route("/v1/node/:id", get(read))
        .route("/v1/node/:id/allocations", get(allocs))
        .route(
            "/v1/node/:id/eligibility",
            put(eligibility).post(eligibility),
        )
        .route("/v1/node/:id/drain", put(drain).post(drain))
}

type Params = Query<HashMap<String, String>>;

async fn list(State(s): State<AppState>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Nodes], |t| {
        Ok(t.nodes
            .values()
            .filter(|n| n.id.starts_with(&q.prefix))
            .map(|n| n.stub())
            .collect::<Vec<_>>())
    })
    .await
}

fn resolve(
    t: &crate::state::Tables,
    id: &str,
) -> Result<std::sync::Arc<caravan_structs::Node>, ApiError> {
    if let Some(n) = t.nodes.get(id) {
        return Ok(n.clone());
    }
    // Nomad accepts a unique prefix here too.
    let matches: Vec<_> = t.nodes.values().filter(|n| n.id.starts_with(id)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::NotFound("node not found".into())),
        _ => Err(ApiError::BadRequest(format!(
            "node prefix {id:?} is ambiguous"
        ))),
    }
}

async fn read(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Nodes], |t| {
        let n = resolve(t, &id)?;
        let mut v = serde_json::to_value(&*n).map_err(|e| ApiError::Internal(e.to_string()))?;
        // The secret never leaves the servers.
        if let Some(o) = v.as_object_mut() {
            o.remove("SecretID");
        }
        Ok(v)
    })
    .await
}

async fn allocs(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Allocs], |t| Ok(t.allocs_by_node(&id))).await
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct EligibilityRequest {
    eligibility: String,
}

async fn eligibility(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let req: EligibilityRequest = decode_body(&body)?;
    let index = s.server.node_eligibility(&id, &req.eligibility)?;
    Ok(json_with_index(
        &json!({"EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": index, "Index": index}),
        index,
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DrainSpec {
    deadline: i64,
    ignore_system_jobs: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DrainRequest {
    drain_spec: Option<DrainSpec>,
    mark_eligible: bool,
}

async fn drain(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let req: DrainRequest = decode_body(&body)?;
    let spec = req.drain_spec.map(|d| (d.deadline, d.ignore_system_jobs));
    let index = s.server.node_drain(&id, spec, req.mark_eligible)?;
    Ok(json_with_index(
        &json!({"EvalIDs": [], "EvalCreateIndex": 0, "NodeModifyIndex": index, "Index": index}),
        index,
    ))
}
