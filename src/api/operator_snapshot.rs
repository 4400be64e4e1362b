//! `GET /v1/operator/snapshot` (save: the server's state as a snapshot archive, with Nomad's
//! `Digest: sha-256=<base64>` header over the body) and `PUT /v1/operator/snapshot` (restore:
//! replace the whole state with an archive's). The archive format is described in
//! [`crate::server::raft::snapshot`]. Management tokens only (see `acl_rules`).

use super::{ApiError, ApiResult, AppState};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use sha2::{Digest, Sha256};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/operator/snapshot",
        get(save)
            .put(restore)
            .post(restore)
            // A state can be far bigger than the default 2 MB request limit.
            .layer(DefaultBodyLimit::disable()),
    )
}

async fn save(State(s): State<AppState>) -> ApiResult {
    let server = s.server.clone();
    let (meta, body) = tokio::task::spawn_blocking(move || {
        let mut body = Vec::new();
        server.snapshot_save(&mut body).map(|m| (m, body))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("snapshot failed: {e}")))??;
    let digest = format!(
        "sha-256={}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&body))
    );
    let mut r = (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::HeaderName::from_static("digest"), digest),
            (
                header::HeaderName::from_static("x-nomad-index"),
                meta.index.to_string(),
            ),
        ],
        body,
    )
        .into_response();
    r.headers_mut().insert(
        "X-Nomad-KnownLeader",
        header::HeaderValue::from_static("true"),
    );
    Ok(r)
}

async fn restore(State(s): State<AppState>, body: Bytes) -> ApiResult {
    if body.is_empty() {
        return Err(ApiError::BadRequest(
            "Request body is empty: send a snapshot archive".into(),
        ));
    }
    let server = s.server.clone();
    let index = tokio::task::spawn_blocking(move || server.snapshot_restore(body.as_ref()))
        .await
        .map_err(|e| ApiError::Internal(format!("restore failed: {e}")))??;
    Ok(super::json_with_index(
        &serde_json::json!({"Index": index}),
        index,
    ))
}
