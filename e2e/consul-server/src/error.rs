//! API errors, written back the way Consul writes them: a status code and a plain-text body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to an HTTP request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 403: the ACL token is missing or not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: the named object does not exist.
    #[error("{0}")]
    NotFound(String),
    /// 500: Consul answers many semantic errors with a 500 (e.g. "No path to datacenter").
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::debug!(%status, error = %self, "request failed");
        (
            status,
            [("content-type", "text/plain; charset=utf-8")],
            self.to_string(),
        )
            .into_response()
    }
}
