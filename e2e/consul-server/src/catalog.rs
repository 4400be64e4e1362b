//! `/v1/catalog/*` and `/v1/health/*`: the single node's services and checks, with tag and
//! `passing` filters and blocking reads.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::checks::PASSING;
use crate::error::ApiError;
use crate::query::{blocking, with_meta, Params};
use crate::store::{Data, Service};
use crate::{view, AppState};

type Pairs = Query<Vec<(String, String)>>;

/// Instances of service `name` carrying every tag in `tags`.
fn instances(data: &Data, name: &str, tags: &[String]) -> Vec<Service> {
    view::catalog_services(data)
        .into_iter()
        .filter(|s| s.name == name)
        .filter(|s| tags.iter().all(|t| s.tags.contains(t)))
        .collect()
}

pub async fn services(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in view::catalog_services(data) {
            let tags = map.entry(s.name.clone()).or_default();
            for t in &s.tags {
                if !tags.contains(t) {
                    tags.push(t.clone());
                }
            }
        }
        (data.services_index.max(data.node_index), map)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn service(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let tags = params.all("tag");
    let (index, out) = blocking(&app.store, &params, |data| {
        let list: Vec<Value> = instances(data, &name, &tags)
            .iter()
            .map(|s| view::catalog_service(data, s))
            .collect();
        (data.index_for_service(&name), list)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn nodes(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        (data.node_index, vec![view::node(data)])
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn node(
    State(app): State<AppState>,
    Path(node): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let index = data.services_index.max(data.node_index);
        if node != data.node.name {
            return (index, Value::Null);
        }
        let services: Map<String, Value> = view::catalog_services(data)
            .iter()
            .map(|s| (s.id.clone(), view::health_service(s)))
            .collect();
        (
            index,
            json!({"Node": view::node(data), "Services": services}),
        )
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

fn service_checks(data: &Data, service_id: &str) -> Vec<Value> {
    data.checks
        .values()
        .filter(|c| c.service_id == service_id)
        .map(|c| view::check(data, c))
        .collect()
}

pub async fn health_service(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let tags = params.all("tag");
    let passing = params.flag("passing");
    let (index, out) = blocking(&app.store, &params, |data| {
        let list: Vec<Value> = instances(data, &name, &tags)
            .iter()
            .map(|s| {
                let mut checks = vec![view::serf_check(data)];
                checks.extend(service_checks(data, &s.id));
                json!({"Node": view::node(data), "Service": view::health_service(s), "Checks": checks})
            })
            .filter(|entry| {
                !passing
                    || entry["Checks"]
                        .as_array()
                        .is_some_and(|cs| cs.iter().all(|c| c["Status"] == PASSING))
            })
            .collect();
        (data.index_for_service(&name), list)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn health_checks(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let list: Vec<Value> = data
            .services
            .values()
            .filter(|s| s.name == name)
            .flat_map(|s| service_checks(data, &s.id))
            .collect();
        (data.index_for_service(&name), list)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn health_state(
    State(app): State<AppState>,
    Path(state): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    if !matches!(state.as_str(), "any" | "passing" | "warning" | "critical") {
        return Err(ApiError::bad("Invalid check state"));
    }
    let (index, out) = blocking(&app.store, &params, |data| {
        let mut all = vec![view::serf_check(data)];
        all.extend(data.checks.values().map(|c| view::check(data, c)));
        let list: Vec<Value> = all
            .into_iter()
            .filter(|c| state == "any" || c["Status"] == state.as_str())
            .collect();
        (data.checks_index.max(data.node_index), list)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn health_node(
    State(app): State<AppState>,
    Path(node): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let index = data.checks_index.max(data.node_index);
        if node != data.node.name {
            return (index, Vec::new());
        }
        let mut all = vec![view::serf_check(data)];
        all.extend(data.checks.values().map(|c| view::check(data, c)));
        (index, all)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}
