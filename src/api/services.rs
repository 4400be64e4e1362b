//! Nomad's native service catalog over HTTP: `GET /v1/services` (names and tags per
//! namespace, `?prefix=` on names), `GET /v1/service/:name` (the registrations, with `?choose=N|key` rendezvous
//! selection and, beyond Nomad, `?tag=` filtering), `DELETE /v1/service/:name/:id`, and the
//! client's `GET /v1/client/allocation/:id/checks` (results of Nomad-native checks). Reads
//! block on `?index=` and answer `X-Nomad-Index` from the registrations table.

use super::query::blocking;
use super::{json_with_index, ApiError, ApiResult, AppState, QueryOptions};
use crate::server::acl::Resolved;
use crate::state::services::{choose, parse_choose, ServiceRegistration};
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Extension, Router};
use caravan_acl::capability as cap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/services", get(list))
        .route("/v1/service/:name", get(read))
        .route("/v1/service/:name/:id", delete(remove))
        .route("/v1/client/allocation/:id/checks", get(checks))
}

/// Nomad's `ServiceRegistrationStub`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Stub {
    service_name: String,
    tags: Vec<String>,
}

/// Nomad's `ServiceRegistrationListStub`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct NamespaceStub {
    namespace: String,
    services: Vec<Stub>,
}

/// `GET /v1/services?namespace=` (`*`: every namespace the token may read jobs in).
async fn list(
    State(s): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    r: Option<Extension<Resolved>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    blocking(&s, &q, &[Table::Services], |t| {
        let mut by_ns: BTreeMap<&str, BTreeMap<&str, BTreeSet<&str>>> = BTreeMap::new();
        for reg in t.service_registrations.values() {
            if !(q.all_namespaces() || reg.namespace == q.namespace)
                || !reg.service_name.starts_with(&q.prefix)
                || !super::acl_rules::may(&r, &reg.namespace, cap::READ_JOB)
            {
                continue;
            }
            by_ns
                .entry(&reg.namespace)
                .or_default()
                .entry(&reg.service_name)
                .or_default()
                .extend(reg.tags.iter().map(String::as_str));
        }
        Ok(by_ns
            .into_iter()
            .map(|(ns, services)| NamespaceStub {
                namespace: ns.to_string(),
                services: services
                    .into_iter()
                    .map(|(name, tags)| Stub {
                        service_name: name.to_string(),
                        tags: tags.into_iter().map(str::to_string).collect(),
                    })
                    .collect(),
            })
            .collect::<Vec<_>>())
    })
    .await
}

/// `GET /v1/service/:name?namespace=&choose=&tag=`.
async fn read(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    if name.is_empty() {
        return Err(ApiError::BadRequest("missing service name".into()));
    }
    let chosen = params
        .get("choose")
        .filter(|c| !c.is_empty())
        .map(|c| {
            parse_choose(c)
                .map_err(|e| ApiError::BadRequest(format!("failed to choose services: {e}")))
        })
        .transpose()?;
    let tag = params.get("tag").filter(|t| !t.is_empty()).cloned();
    blocking(&s, &q, &[Table::Services], |t| {
        let mut regs: Vec<Arc<ServiceRegistration>> = t
            .services_by_name(&q.namespace, &name)
            .into_iter()
            .filter(|r| tag.as_ref().is_none_or(|tag| r.tags.contains(tag)))
            .collect();
        if let Some((n, key)) = &chosen {
            regs = choose(regs, *n, key);
        }
        Ok(regs)
    })
    .await
}

/// `DELETE /v1/service/:name/:id?namespace=`.
async fn remove(
    State(s): State<AppState>,
    Path((_name, id)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    if id.is_empty() {
        return Err(ApiError::BadRequest("missing service id".into()));
    }
    let index = s.server.service_delete(&q.namespace, &id)?;
    Ok(json_with_index(&serde_json::Value::Null, index))
}

/// `GET /v1/client/allocation/:id/checks`: this client's latest result of each Nomad-native
/// check of the allocation, by check ID.
async fn checks(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let snap = s.server.store.snapshot();
    let alloc = snap
        .allocs
        .get(&id)
        .cloned()
        .or_else(|| {
            let mut m = snap
                .allocs
                .range(id.clone()..)
                .take_while(|(k, _)| k.starts_with(&id));
            match (m.next(), m.next()) {
                (Some((_, a)), None) => Some(a.clone()),
                _ => None,
            }
        })
        .ok_or_else(|| ApiError::NotFound(format!("Unknown allocation \"{id}\"")))?;
    Ok(axum::Json(crate::client::nomad_checks::results(&alloc.id)).into_response())
}
