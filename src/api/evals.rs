//! `/v1/evaluations`, `/v1/evaluation/:id` and its allocations.

use super::query::{blocking, QueryOptions};
use super::{ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/evaluations", get(list))
        .route("/v1/evaluations/count", get(count))
        .route("/v1/evaluation/:id", get(read))
        .route("/v1/evaluation/:id/allocations", get(allocs))
}

type Params = Query<HashMap<String, String>>;

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<axum::Extension<crate::server::acl::Resolved>>,
) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let status = q.params.get("status").cloned().unwrap_or_default();
    let job = q.params.get("job").cloned().unwrap_or_default();
    blocking(&s, &q, &[Table::Evals], |t| {
        let mut v: Vec<_> = t
            .evals
            .values()
            .filter(|e| q.all_namespaces() || e.namespace == q.namespace)
            .filter(|e| super::acl_rules::may(&r, &e.namespace, caravan_acl::capability::READ_JOB))
            .filter(|e| e.id.starts_with(&q.prefix))
            .filter(|e| status.is_empty() || e.status == status)
            .filter(|e| job.is_empty() || e.job_id == job)
            .cloned()
            .collect();
        v.sort_by_key(|e| std::cmp::Reverse(e.create_index));
        Ok(v)
    })
    .await
}

async fn count(State(s): State<AppState>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Evals], |t| {
        Ok(json!({"Count": t.evals.values().filter(|e| q.all_namespaces() || e.namespace == q.namespace).count()}))
    })
    .await
}

async fn read(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    let related = q.flag("related");
    blocking(&s, &q, &[Table::Evals], |t| {
        let e = t
            .evals
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound("eval not found".into()))?;
        let mut v = serde_json::to_value(&*e).map_err(|e| ApiError::Internal(e.to_string()))?;
        if related {
            let rel: Vec<_> = t
                .evals_by_job(&e.namespace, &e.job_id)
                .iter()
                .filter(|x| x.id != e.id && (x.previous_eval == e.id || e.previous_eval == x.id || x.id == e.next_eval || x.id == e.blocked_eval))
                .map(|x| json!({"ID": x.id, "Status": x.status, "TriggeredBy": x.triggered_by, "JobID": x.job_id}))
                .collect();
            v["RelatedEvals"] = json!(rel);
        }
        Ok(v)
    })
    .await
}

async fn allocs(State(s): State<AppState>, Path(id): Path<String>, Query(p): Params) -> ApiResult {
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Allocs], |t| {
        Ok(t.allocs_by_eval(&id)
            .iter()
            .map(|a| a.stub())
            .collect::<Vec<_>>())
    })
    .await
}
