//! Nomad's native service catalog over HTTP: `GET /v1/services` (names and tags per
//! namespace, `?prefix=` on names), `GET /v1/service/:name` (the registrations, with `?choose=N|key` rendezvous
//! selection and, beyond Nomad, `?tag=` filtering), `DELETE /v1/service/:name/:id`, and the
//! client's `GET /v1/client/allocation/:id/checks` (results of Nomad-native checks). Reads
//! block on `?index=` and answer `X-Nomad-Index` from the registrations table.

use super::query::blocking;
use super::{json_with_index, ApiError, ApiResult, AppState, QueryOptions};
use crate::server::acl::Resolved;
use crate::state::services::ServiceRegistration;
use crate::state::Table;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::{Extension, Router};
use caravan_acl::capability as cap;
use serde::Serialize;
use sha2::{Digest, Sha256};
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
    let choose = params
        .get("choose")
        .filter(|c| !c.is_empty())
        .map(|c| parse_choose(c))
        .transpose()?;
    let tag = params.get("tag").filter(|t| !t.is_empty()).cloned();
    blocking(&s, &q, &[Table::Services], |t| {
        let mut regs: Vec<Arc<ServiceRegistration>> = t
            .services_by_name(&q.namespace, &name)
            .into_iter()
            .filter(|r| tag.as_ref().is_none_or(|tag| r.tags.contains(tag)))
            .collect();
        if let Some((n, key)) = &choose {
            regs = choose_services(regs, *n, key);
        }
        Ok(regs)
    })
    .await
}

/// Nomad's `ErrMalformedChooseParameter` wording.
const MALFORMED_CHOOSE: &str = "Parameter for choose must be in form '<number>|<key>'";

fn parse_choose(c: &str) -> Result<(usize, String), ApiError> {
    let bad = || ApiError::BadRequest(format!("failed to choose services: {MALFORMED_CHOOSE}"));
    let (n, key) = c.split_once('|').ok_or_else(bad)?;
    let n: usize = n.parse().map_err(|_| bad())?;
    if key.is_empty() {
        return Err(bad());
    }
    Ok((n, key.to_string()))
}

/// Nomad's `ServiceRegistration.HashWith`: the registration's priority for `key`.
fn hash_with(r: &ServiceRegistration, key: &str) -> String {
    let mut h = Sha256::new();
    h.update((r.port as u64).to_be_bytes());
    for part in [
        &r.alloc_id,
        &r.id,
        &r.namespace,
        &r.address,
        &r.service_name,
    ] {
        h.update(part.as_bytes());
    }
    for tag in &r.tags {
        h.update(tag.as_bytes());
    }
    h.update(key.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Rendezvous hashing (Nomad's `choose`): the `n` registrations that rank highest for `key`,
/// a stable choice per key that moves little when registrations come and go.
fn choose_services(
    regs: Vec<Arc<ServiceRegistration>>,
    n: usize,
    key: &str,
) -> Vec<Arc<ServiceRegistration>> {
    let mut ranked: Vec<(String, Arc<ServiceRegistration>)> =
        regs.into_iter().map(|r| (hash_with(&r, key), r)).collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    ranked.into_iter().take(n).map(|(_, r)| r).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(id: &str, port: u16) -> Arc<ServiceRegistration> {
        Arc::new(ServiceRegistration {
            id: id.into(),
            service_name: "web".into(),
            namespace: "default".into(),
            alloc_id: format!("alloc-{id}"),
            address: "10.0.0.1".into(),
            port,
            ..Default::default()
        })
    }

    #[test]
    fn choose_is_stable_per_key_and_bounded() {
        let regs: Vec<_> = (0..6).map(|i| reg(&format!("s{i}"), 8000 + i)).collect();
        let a = choose_services(regs.clone(), 2, "k1");
        assert_eq!(a.len(), 2);
        // The same key picks the same, whatever order the registrations come in.
        let mut rev = regs.clone();
        rev.reverse();
        let b = choose_services(rev, 2, "k1");
        assert_eq!(
            a.iter().map(|r| &r.id).collect::<Vec<_>>(),
            b.iter().map(|r| &r.id).collect::<Vec<_>>()
        );
        // Some key ranks them differently.
        assert!((2..40).any(|k| {
            let c = choose_services(regs.clone(), 2, &format!("k{k}"));
            c.iter().map(|r| &r.id).ne(a.iter().map(|r| &r.id))
        }));
        assert_eq!(choose_services(regs, 10, "k").len(), 6);
    }

    #[test]
    fn choose_parameter_shape() {
        assert_eq!(parse_choose("3|abc").unwrap(), (3, "abc".to_string()));
        for bad in ["3", "x|abc", "3|", "-1|k"] {
            match parse_choose(bad) {
                Err(ApiError::BadRequest(m)) => assert!(m.contains(MALFORMED_CHOOSE), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
