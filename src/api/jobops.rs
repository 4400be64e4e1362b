//! `/v1/job/:id/revert`, `/v1/job/:id/scale` (GET: scale status, PUT: scale) and
//! `/v1/job/:id/dispatch`: parse Nomad's request bodies, call the server's job operation,
//! answer with its response and write index.

use super::query::{blocking, QueryOptions};
use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use crate::server::jobops::{DispatchRequest, ScaleRequest};
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/job/:id/revert", put(revert).post(revert))
        .route(
            "/v1/job/:id/scale",
            get(scale_status).put(scale).post(scale),
        )
        .route("/v1/job/:id/dispatch", put(dispatch).post(dispatch))
}

type Params = Query<HashMap<String, String>>;

/// Nomad's `JobRevertRequest`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RevertRequest {
    #[serde(rename = "JobID")]
    job_id: String,
    job_version: u64,
    enforce_prior_version: Option<u64>,
}

async fn revert(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
    body: Bytes,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let req: RevertRequest = decode_body(&body)?;
    if req.job_id.is_empty() {
        return Err(ApiError::BadRequest("JobID must be specified".into()));
    }
    if req.job_id != id {
        return Err(ApiError::BadRequest("Job ID does not match".into()));
    }
    let resp = s.server.job_revert(
        &q.namespace,
        &id,
        req.job_version,
        req.enforce_prior_version,
    )?;
    let index = resp.index;
    Ok(json_with_index(&resp, index))
}

async fn scale_status(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Jobs, Table::Allocs], |t| {
        t.job_scale_status(&q.namespace, &id)
            .ok_or_else(|| ApiError::NotFound("job not found".into()))
    })
    .await
}

async fn scale(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
    body: Bytes,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let req: ScaleRequest = decode_body(&body)?;
    let resp = s.server.job_scale(&q.namespace, &id, req)?;
    let index = resp.index;
    Ok(json_with_index(&resp, index))
}

/// Nomad's `JobDispatchRequest`: the payload is base64, as Go encodes `[]byte`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DispatchBody {
    #[serde(rename = "JobID")]
    job_id: String,
    payload: String,
    meta: BTreeMap<String, String>,
    id_prefix_template: String,
    priority: i32,
}

async fn dispatch(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(p): Params,
    body: Bytes,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    // An empty body dispatches with no payload and no meta.
    let req: DispatchBody = if body.iter().all(u8::is_ascii_whitespace) {
        DispatchBody::default()
    } else {
        decode_body(&body)?
    };
    if !req.job_id.is_empty() && req.job_id != id {
        return Err(ApiError::BadRequest("Job ID does not match".into()));
    }
    let payload = base64::engine::general_purpose::STANDARD
        .decode(req.payload.trim())
        .map_err(|e| ApiError::BadRequest(format!("Payload is not valid base64: {e}")))?;
    let resp = s.server.job_dispatch(
        &q.namespace,
        &id,
        DispatchRequest {
            payload,
            meta: req.meta,
            id_prefix_template: req.id_prefix_template,
            priority: req.priority,
        },
    )?;
    let index = resp.index;
    Ok(json_with_index(&resp, index))
}
