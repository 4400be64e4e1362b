//! `/v1/deployments`, `/v1/deployment/:id` and its allocations.

use super::query::{blocking, QueryOptions};
use super::{ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/deployments", get(list))
        .route("/v1/deployment/:id", get(read))
        .route("/v1/deployment/allocations/:id", get(allocs))
}

type Params = Query<HashMap<String, String>>;

async fn list(State(s): State<AppState>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Deployments], |t| {
        let mut v: Vec<_> = t
            .deployments
            .values()
            .filter(|d| q.all_namespaces() || d.namespace == q.namespace)
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
