//! `/v1/allocations`, `/v1/allocation/:id` and `/v1/allocation/:id/stop`.

use super::query::{blocking, QueryOptions};
use super::{json_with_index, ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::routing::{get, put};
use axum::Router;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/allocations", get(list))
        .route("/v1/allocation/:id", get(read))
        .route("/v1/allocation/:id/stop", put(stop).post(stop))
}

type Params = Query<HashMap<String, String>>;

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<axum::Extension<crate::server::acl::Resolved>>,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Allocs], |t| {
        let mut v: Vec<_> = t
            .allocs
            .values()
            .filter(|a| q.all_namespaces() || a.namespace == q.namespace)
            .filter(|a| super::acl_rules::may(&r, &a.namespace, caravan_acl::capability::READ_JOB))
            .filter(|a| a.id.starts_with(&q.prefix))
            .map(|a| a.stub())
            .collect();
        v.sort_by_key(|a| std::cmp::Reverse(a.create_index));
        Ok(v)
    })
    .await
}

async fn read(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Allocs], |t| {
        // Workload identity tokens are for the task alone (Nomad's Allocation.Sanitize).
        t.allocs
            .get(&id)
            .map(|a| {
                let mut a = (**a).clone();
                a.signed_identities.clear();
                a.signed_named_identities.clear();
                a
            })
            .ok_or_else(|| ApiError::NotFound("alloc not found".into()))
    })
    .await
}

async fn stop(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let (eval_id, index) = s.server.alloc_stop(&id)?;
    Ok(json_with_index(
        &json!({"EvalID": eval_id, "Index": index}),
        index,
    ))
}
