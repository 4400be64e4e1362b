//! Query options every read endpoint takes (`index`, `wait`, `prefix`, `namespace`, ...) and
//! the blocking-query helper that answers with `X-Nomad-Index`, `X-Nomad-KnownLeader` and
//! `X-Nomad-LastContact`.

use super::{ApiError, AppState};
use crate::state::{Table, Tables};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

const DEFAULT_WAIT: Duration = Duration::from_secs(300);
const MAX_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    pub index: u64,
    pub wait: Duration,
    pub prefix: String,
    pub namespace: String,
    pub region: String,
    pub params: HashMap<String, String>,
}

impl QueryOptions {
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, ApiError> {
        let index = match params.get("index") {
            Some(s) if !s.is_empty() => s
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("Invalid index: {s:?}")))?,
            _ => 0,
        };
        let wait = match params.get("wait") {
            Some(s) if !s.is_empty() => {
                let n = caravan_structs::time::parse_duration(s)
                    .map_err(|e| ApiError::BadRequest(format!("Invalid wait time: {e}")))?;
                caravan_structs::time::nanos(n).min(MAX_WAIT)
            }
            _ => DEFAULT_WAIT,
        };
        Ok(QueryOptions {
            index,
            wait,
            prefix: params.get("prefix").cloned().unwrap_or_default(),
            namespace: params
                .get("namespace")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| caravan_structs::DEFAULT_NAMESPACE.into()),
            region: params.get("region").cloned().unwrap_or_default(),
            params: params.clone(),
        })
    }

    /// `namespace=*` lists across namespaces.
    pub fn all_namespaces(&self) -> bool {
        self.namespace == "*"
    }

    pub fn flag(&self, name: &str) -> bool {
        matches!(
            self.params.get(name).map(|s| s.as_str()),
            Some("true") | Some("1") | Some("")
        )
    }
}

/// Runs a read as a blocking query over `tables`: when `index` is set, waits until one of the
/// tables passes it (or the wait ends), then answers from a fresh snapshot.
pub async fn blocking<T, F>(
    state: &AppState,
    q: &QueryOptions,
    tables: &[Table],
    read: F,
) -> Result<Response, ApiError>
where
    T: Serialize,
    F: Fn(&Tables) -> Result<T, ApiError>,
{
    if q.index > 0 {
        // Nomad adds a little jitter so many waiters do not wake at once.
        let jitter = q.wait / 16;
        state
            .server
            .store
            .watches
            .wait_any(tables, q.index, q.wait + jitter / 2)
            .await;
    }
    let snap = state.server.store.snapshot();
    let value = read(&snap)?;
    let mut r = axum::Json(value).into_response();
    let idx = snap.max_index(tables);
    let h = r.headers_mut();
    if let Ok(v) = idx.to_string().parse() {
        h.insert("X-Nomad-Index", v);
    }
    h.insert(
        "X-Nomad-KnownLeader",
        axum::http::HeaderValue::from_static("true"),
    );
    h.insert(
        "X-Nomad-LastContact",
        axum::http::HeaderValue::from_static("0"),
    );
    Ok(r)
}
