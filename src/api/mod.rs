//! The HTTP API: Nomad's `/v1/...` paths, methods and JSON. Handlers parse the request, call
//! one server or client function, and map its errors; blocking queries wait on the state
//! store's table watches.

mod acl;
pub mod acl_rules;
#[cfg(test)]
mod acl_tests;
mod agent;
mod alloc_exec;
#[cfg(test)]
mod alloc_exec_tests;
mod allocs;
#[cfg(test)]
mod artifact_tests;
mod client_fs;
#[cfg(test)]
mod consul_tests;
#[cfg(test)]
mod deployment_ops_tests;
mod deployments;
#[cfg(test)]
mod docker_tests;
#[cfg(test)]
mod driver_tests;
mod evals;
#[cfg(test)]
mod event_tests;
mod events;
#[cfg(test)]
mod gc_tests;
#[cfg(test)]
mod identity_tests;
mod jobops;
#[cfg(test)]
mod jobops_tests;
mod jobs;
mod keyring;
#[cfg(test)]
mod keyring_tests;
mod monitor;
#[cfg(test)]
mod monitor_tests;
#[cfg(test)]
mod namespace_tests;
mod namespaces;
#[cfg(test)]
mod node_pool_tests;
mod node_pools;
mod nodes;
#[cfg(test)]
mod nomad_service_tests;
mod operator;
mod operator_snapshot;
#[cfg(test)]
mod operator_snapshot_tests;
#[cfg(test)]
mod operator_tests;
mod query;
mod search;
mod services;
mod system;
#[cfg(test)]
mod template_tests;
#[cfg(test)]
mod test_proxy;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod variable_tests;
mod variables;
#[cfg(test)]
mod vault_template_tests;
#[cfg(test)]
mod vault_tests;
#[cfg(test)]
mod volume_tests;

use crate::client::Client;
use crate::server::{Server, ServerError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;

pub use query::QueryOptions;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub server: Arc<Server>,
    pub client: Option<Arc<Client>>,
    pub agent: Arc<AgentInfo>,
}

/// Facts about this agent for `/v1/agent/self` and `/v1/agent/members`.
#[derive(Debug, Clone, Default)]
pub struct AgentInfo {
    pub node_name: String,
    pub datacenter: String,
    pub region: String,
    pub http_addr: String,
    pub rpc_addr: String,
    pub serf_port: u16,
    pub dev_mode: bool,
    pub config_json: serde_json::Value,
    /// The agent's logs, for `/v1/agent/monitor` (absent in tests that do not install them).
    pub logs: Option<crate::logging::Logs>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(acl::routes())
        .merge(keyring::routes())
        .merge(jobs::routes())
        .merge(jobops::routes())
        .merge(allocs::routes())
        .merge(evals::routes())
        .merge(deployments::routes())
        .merge(nodes::routes())
        .merge(namespaces::routes())
        .merge(node_pools::routes())
        .merge(agent::routes())
        .merge(client_fs::routes())
        .merge(alloc_exec::routes())
        .merge(search::routes())
        .merge(events::routes())
        .merge(system::routes())
        .merge(monitor::routes())
        .merge(operator::routes())
        .merge(operator_snapshot::routes())
        .merge(variables::routes())
        .merge(services::routes())
        // After every route is merged: it guards exactly the routes above.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            acl_rules::enforce,
        ))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    ApiError::NotFound(format!("Invalid URL path: no handler for {}", uri.path())).into_response()
}

/// An API error: a status code and the plain-text message Nomad sends.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Conflict(String),
    Internal(String),
    Forbidden(String),
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::BadRequest(m) => ApiError::BadRequest(m),
            ServerError::NotFound(m) => ApiError::NotFound(m),
            ServerError::Conflict(m) => ApiError::Conflict(m),
            ServerError::Internal(m) => ApiError::Internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, msg) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, m),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, m),
        };
        (code, msg).into_response()
    }
}

pub type ApiResult = Result<Response, ApiError>;

/// Decodes a JSON request body with an error message naming what is wrong.
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError::BadRequest("Request body is empty".into()));
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("Failed to decode request body: {e}")))?;
    serde_json::from_value(caravan_structs::strip_nulls(value))
        .map_err(|e| ApiError::BadRequest(format!("Failed to decode request body: {e}")))
}

/// A JSON response with the write index header.
pub fn json_with_index<T: serde::Serialize>(value: &T, index: u64) -> Response {
    let mut r = axum::Json(value).into_response();
    if let Ok(v) = index.to_string().parse() {
        r.headers_mut().insert("X-Nomad-Index", v);
    }
    r
}
