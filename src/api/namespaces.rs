//! `/v1/namespaces` and `/v1/namespace/:name`: list, read, create or update, delete, as
//! Nomad's namespace endpoints (writes answer an empty body with `X-Nomad-Index`). With ACLs
//! on, the list shows the namespaces the token may use and a read needs one of them; writes
//! need a management token (the route's rule).

use super::acl_rules::TokenRejected;
use super::query::{blocking, QueryOptions};
use super::{decode_body, ApiError, ApiResult, AppState};
use crate::server::acl::Resolved;
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use caravan_acl::Acl;
use caravan_structs::Namespace;
use std::collections::HashMap;
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/namespaces", get(list))
        .route("/v1/namespace", put(create).post(create))
        .route(
            "/v1/namespace/:name",
            get(read).put(update).post(update).delete(delete),
        )
}

type Params = Query<HashMap<String, String>>;

pub(super) use super::acl_rules::caller_acl;

/// Whether `acl` (none: ACLs off) passes `check`.
pub(super) fn allows(acl: &Option<Arc<Acl>>, check: impl Fn(&Acl) -> bool) -> bool {
    acl.as_deref().is_none_or(check)
}

pub(super) fn permission_denied() -> ApiError {
    ApiError::Forbidden("Permission denied".into())
}

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Namespaces], |t| {
        Ok(t.partitions
            .namespaces
            .values()
            .filter(|ns| ns.name.starts_with(&q.prefix))
            .filter(|ns| allows(&acl, |a| a.allow_namespace(&ns.name)))
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

async fn read(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    if !allows(&acl, |a| a.allow_namespace(&name)) {
        return Err(permission_denied());
    }
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::Namespaces], |t| {
        t.namespace(&name)
            .ok_or_else(|| ApiError::NotFound("Namespace not found".into()))
    })
    .await
}

async fn create(State(s): State<AppState>, body: Bytes) -> ApiResult {
    upsert(&s, None, &body)
}

async fn update(State(s): State<AppState>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    upsert(&s, Some(&name), &body)
}

fn upsert(s: &AppState, path_name: Option<&str>, body: &[u8]) -> ApiResult {
    let ns: Namespace = decode_body(body)?;
    if let Some(name) = path_name {
        if ns.name != name {
            return Err(ApiError::BadRequest(
                "Namespace name does not match request path".into(),
            ));
        }
    }
    Ok(written(s.server.namespace_upsert(ns)?))
}

async fn delete(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult {
    Ok(written(s.server.namespace_delete(&name)?))
}

/// What Nomad answers a namespace or node pool write: no body, the index in `X-Nomad-Index`.
pub(super) fn written(index: u64) -> Response {
    let mut r = ().into_response();
    if let Ok(v) = index.to_string().parse() {
        r.headers_mut().insert("X-Nomad-Index", v);
    }
    r
}
