//! The keyring over HTTP: `/v1/operator/keyring/keys` (list), `/rotate`, `/key/:id` (delete),
//! and the public discovery documents `/.well-known/jwks.json` (the keys that verify workload
//! identities) and `/.well-known/openid-configuration` (when `server { oidc_issuer }` is set).

use super::{json_with_index, ApiError, ApiResult, AppState};
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/operator/keyring/keys", get(list))
        .route("/v1/operator/keyring/rotate", put(rotate).post(rotate))
        .route("/v1/operator/keyring/key/:id", delete(remove))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(openid))
}

async fn list(State(s): State<AppState>) -> ApiResult {
    let index = s.server.store.snapshot().table_index(Table::Keyring).max(1);
    Ok(json_with_index(&s.server.keyring_list(), index))
}

async fn rotate(State(s): State<AppState>, Query(q): Query<HashMap<String, String>>) -> ApiResult {
    if let Some(algo) = q.get("algo").filter(|a| !a.is_empty()) {
        if algo != crate::server::keyring::ALGORITHM {
            return Err(ApiError::BadRequest(format!(
                "unsupported encryption algorithm {algo:?}: Caravan's keys are {}",
                crate::server::keyring::ALGORITHM
            )));
        }
    }
    if q.get("full").is_some_and(|f| f == "true") {
        return Err(ApiError::BadRequest(
            "full rotation (re-encrypting every variable with the new key) is not available yet; \
             rotate without -full: existing data stays readable with the old key"
                .into(),
        ));
    }
    let key = s.server.keyring_rotate()?;
    let index = key.modify_index;
    Ok(json_with_index(&json!({"Key": key, "Index": index}), index))
}

async fn remove(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let index = s.server.keyring_delete(&id)?;
    Ok(json_with_index(&json!({"Index": index}), index))
}

async fn jwks(State(s): State<AppState>) -> ApiResult {
    Ok((
        [(axum::http::header::CACHE_CONTROL, "max-age=60")],
        Json(s.server.jwks()),
    )
        .into_response())
}

async fn openid(State(s): State<AppState>) -> ApiResult {
    let issuer = s
        .server
        .config
        .oidc_issuer
        .trim_end_matches('/')
        .to_string();
    if issuer.is_empty() {
        return Err(ApiError::NotFound(
            "OIDC discovery is disabled: set server { oidc_issuer }".into(),
        ));
    }
    Ok(Json(json!({
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "id_token_signing_alg_values_supported": [crate::server::keyring::SIGNING_ALG],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
    }))
    .into_response())
}
