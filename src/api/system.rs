//! Garbage collection on request: `/v1/system/gc` (servers collect with every threshold at
//! zero), `/v1/client/gc` and `/v1/client/allocation/:id/gc` (the client removes finished
//! allocations' directories), and `/v1/system/reconcile/summaries` (summaries are derived on
//! read, so they are always consistent and there is nothing to reconcile).

use super::client_fs::runner;
use super::{json_with_index, ApiError, ApiResult, AppState};
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::Router;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/system/gc", put(gc).post(gc))
        .route(
            "/v1/system/reconcile/summaries",
            put(reconcile).post(reconcile),
        )
        .route(
            "/v1/client/gc",
            get(client_gc).put(client_gc).post(client_gc),
        )
        .route(
            "/v1/client/allocation/:id/gc",
            get(alloc_gc).put(alloc_gc).post(alloc_gc),
        )
}

async fn gc(State(s): State<AppState>) -> ApiResult {
    let forced = s.server.config.gc.forced();
    crate::server::gc::collect(&s.server, &forced);
    let index = s.server.store.latest_index();
    Ok(json_with_index(&json!({}), index))
}

async fn reconcile(State(s): State<AppState>) -> ApiResult {
    let index = s.server.store.latest_index();
    Ok(json_with_index(&json!({}), index))
}

async fn client_gc(State(s): State<AppState>) -> ApiResult {
    let client = s
        .client
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("this agent does not run a client".into()))?;
    client.gc_all();
    Ok(axum::Json(json!({})).into_response())
}

async fn alloc_gc(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let r = runner(&s, &id)?;
    let client = s
        .client
        .as_ref()
        .ok_or_else(|| ApiError::BadRequest("this agent does not run a client".into()))?;
    client.gc_alloc(&r.alloc_id).map_err(ApiError::BadRequest)?;
    Ok(axum::Json(json!({})).into_response())
}
