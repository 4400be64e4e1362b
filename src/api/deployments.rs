//! `/v1/deployments`, `/v1/deployment/:id` and its allocations, and the operator actions
//! `/v1/deployment/fail|pause|promote/:id`.

use super::query::{blocking, QueryOptions};
use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::Router;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/deployments", get(list))
        .route("/v1/deployment/:id", get(read))
        .route("/v1/deployment/allocations/:id", get(allocs))
        .route("/v1/deployment/fail/:id", put(fail).post(fail))
        .route("/v1/deployment/pause/:id", put(pause).post(pause))
        .route("/v1/deployment/promote/:id", put(promote).post(promote))
}

async fn fail(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let r = s.server.deployment_fail(&id)?;
    Ok(json_with_index(&r, r.index))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PauseRequest {
    pause: bool,
}

async fn pause(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let req: PauseRequest = decode_body(&body)?;
    let r = s.server.deployment_pause(&id, req.pause)?;
    Ok(json_with_index(&r, r.index))
}

async fn promote(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let r = s.server.deployment_promote(&id)?;
    Ok(json_with_index(&r, r.index))
}

type Params = Query<HashMap<String, String>>;

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<axum::Extension<crate::server::acl::Resolved>>,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Deployments], |t| {
        let mut v: Vec<_> = t
            .deployments
            .values()
            .filter(|d| q.all_namespaces() || d.namespace == q.namespace)
            .filter(|d| super::acl_rules::may(&r, &d.namespace, caravan_acl::capability::READ_JOB))
            .filter(|d| d.id.starts_with(&q.prefix))
            .cloned()
            .collect();
        v.sort_by_key(|d| std::cmp::Reverse(d.create_index));
        Ok(v)
    })
    .await
}

async fn read(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Deployments], |t| {
        t.deployments
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound("deployment not found".into()))
    })
    .await
}

async fn allocs(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Allocs], |t| {
        let d = t
            .deployments
            .get(&id)
            .ok_or_else(|| ApiError::NotFound("deployment not found".into()))?;
        Ok(t.allocs_by_job(&d.namespace, &d.job_id)
            .iter()
            .filter(|a| a.deployment_id == id)
            .map(|a| a.stub())
            .collect::<Vec<_>>())
    })
    .await
}
