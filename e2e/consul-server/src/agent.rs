//! `/v1/agent/*`: service and check registration, TTL updates, and the agent's own view
//! (`self`, `members`, `services`, `checks`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::checks::{self, CheckSpec, CRITICAL, PASSING, WARNING};
use crate::error::ApiError;
use crate::model::{decode, CheckDef, CheckUpdate, ServiceDef};
use crate::query::{blocking, with_meta, Params};
use crate::store::{Data, Service};
use crate::{view, AppState};

type Pairs = Query<Vec<(String, String)>>;

/// Removes a service and its checks. Must be called inside `Store::write`.
pub fn remove_service(data: &mut Data, id: &str) -> bool {
    let Some(service) = data.services.remove(id) else {
        return false;
    };
    let index = data.next_index();
    data.checks.retain(|_, c| c.service_id != id);
    data.checks_index = index;
    data.touch_service(&service.name, index);
    true
}

fn validate_service(def: &ServiceDef) -> Result<(Service, Vec<CheckSpec>), ApiError> {
    let name = def
        .Name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("Missing service name"))?;
    match def.Kind.as_deref() {
        None | Some("") | Some("typical") => {}
        Some(kind) => {
            return Err(ApiError::bad(format!(
                "Invalid service: Kind {kind:?} (Connect proxies and gateways) is not implemented by the Caravan Consul test server"
            )))
        }
    }
    if def.Proxy.as_ref().is_some_and(|v| !v.is_null())
        || def.Connect.as_ref().is_some_and(|v| !v.is_null())
    {
        return Err(ApiError::bad(
            "Invalid service: Connect and Proxy are not implemented by the Caravan Consul test server",
        ));
    }
    for (v, what) in [
        (&def.Namespace, "Namespaces"),
        (&def.Partition, "Partitions"),
    ] {
        if v.as_deref()
            .is_some_and(|n| !n.is_empty() && n != "default")
        {
            return Err(ApiError::bad(format!(
                "Invalid service: {what} are a Consul Enterprise feature"
            )));
        }
    }
    let port = def.Port.unwrap_or(0);
    if !(0..=65535).contains(&port) {
        return Err(ApiError::bad(format!(
            "Invalid service port {port}: must be 0-65535"
        )));
    }
    let weights = match &def.Weights {
        None => (1, 1),
        Some(w) if w.passing < 1 => return Err(ApiError::bad("Passing must be greater than 0")),
        Some(w) if w.warning < 0 => {
            return Err(ApiError::bad("Warning must be greater or equal than 0"))
        }
        Some(w) => (w.passing, w.warning),
    };
    let meta = def.Meta.clone().unwrap_or_default();
    for key in meta.keys() {
        if key.is_empty() {
            return Err(ApiError::bad("Invalid Service Meta: Key cannot be blank"));
        }
        if key.starts_with("consul-") {
            return Err(ApiError::bad(format!(
                "Invalid Service Meta: Key prefix 'consul-' is reserved for internal use: {key:?}"
            )));
        }
    }
    let id = def
        .ID
        .clone()
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| name.clone());
    let service = Service {
        id: id.clone(),
        name: name.clone(),
        tags: def.Tags.clone().unwrap_or_default(),
        address: def.Address.clone().unwrap_or_default(),
        port: port as u16,
        meta,
        tagged_addresses: def.TaggedAddresses.clone().unwrap_or_default(),
        weights,
        enable_tag_override: def.EnableTagOverride.unwrap_or(false),
        socket_path: def.SocketPath.clone().unwrap_or_default(),
        create_index: 0,
        modify_index: 0,
    };
    let mut defs: Vec<CheckDef> = Vec::new();
    defs.extend(def.Check.clone());
    defs.extend(def.Checks.clone().unwrap_or_default());
    let many = defs.len() > 1;
    let mut specs = Vec::new();
    for (i, c) in defs.iter().enumerate() {
        if c.ServiceID.is_some() {
            return Err(ApiError::bad(
                "Request decode failed: json: unknown field \"ServiceID\"",
            ));
        }
        let check_id = c
            .CheckID
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                if many {
                    format!("service:{id}:{}", i + 1)
                } else {
                    format!("service:{id}")
                }
            });
        let check_name = c
            .Name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("Service '{name}' check"));
        specs.push(checks::build(c, check_id, check_name, id.clone())?);
    }
    Ok((service, specs))
}

pub async fn service_register(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(), ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let def: ServiceDef = decode(&body)?;
    let (mut service, specs) = validate_service(&def)?;
    let replace_checks = params.flag("replace-existing-checks");
    let store = app.store.clone();
    app.store.write(|data| {
        let index = data.next_index();
        let previous = data.services.get(&service.id);
        service.create_index = previous.map(|p| p.create_index).unwrap_or(index);
        service.modify_index = index;
        if let Some(p) = previous {
            if p.name != service.name {
                let old = p.name.clone();
                data.touch_service(&old, index);
            }
        }
        let sid = service.id.clone();
        let sname = service.name.clone();
        data.services.insert(sid.clone(), service);
        data.touch_service(&sname, index);
        if replace_checks {
            let keep: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
            let doomed: Vec<String> = data
                .checks
                .values()
                .filter(|c| c.service_id == sid && !keep.contains(&c.id.as_str()))
                .map(|c| c.id.clone())
                .collect();
            for id in doomed {
                checks::remove(data, &id);
            }
        }
        for spec in specs {
            checks::insert(&store, data, spec);
        }
    });
    tracing::debug!("service registered");
    Ok(())
}

pub async fn service_deregister(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    Params::parse(q, &headers, &app.config)?;
    if app.store.write(|data| remove_service(data, &id)) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "Unknown service ID {id:?}. Ensure that the service ID is passed, not the service name."
        )))
    }
}

pub async fn services(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let map: Map<String, Value> = data
            .services
            .values()
            .map(|s| (s.id.clone(), view::agent_service(data, s)))
            .collect();
        (data.services_index, map)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn service(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let s = data.services.get(&id);
        let idx = s.map(|s| s.modify_index).unwrap_or(data.services_index);
        (idx, s.map(|s| view::agent_service(data, s)))
    })
    .await;
    match out {
        Some(v) => Ok(with_meta(index, &params, Json(v))),
        None => Err(ApiError::NotFound(format!("unknown service ID: {id}"))),
    }
}

pub async fn checks_list(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let (index, out) = blocking(&app.store, &params, |data| {
        let map: Map<String, Value> = data
            .checks
            .values()
            .map(|c| (c.id.clone(), view::check(data, c)))
            .collect();
        (data.checks_index, map)
    })
    .await;
    Ok(with_meta(index, &params, Json(out)))
}

pub async fn check_register(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(), ApiError> {
    Params::parse(q, &headers, &app.config)?;
    let def: CheckDef = decode(&body)?;
    let name = def
        .Name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad("Missing check name"))?;
    let id = def
        .ID
        .clone()
        .or_else(|| def.CheckID.clone())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| name.clone());
    let service_id = def.ServiceID.clone().unwrap_or_default();
    let spec = checks::build(&def, id, name, service_id.clone())?;
    let store = app.store.clone();
    app.store.write(|data| {
        if !service_id.is_empty() && !data.services.contains_key(&service_id) {
            return Err(ApiError::bad(format!(
                "ServiceID {service_id:?} does not exist"
            )));
        }
        checks::insert(&store, data, spec);
        Ok(())
    })
}

pub async fn check_deregister(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    Params::parse(q, &headers, &app.config)?;
    if app.store.write(|data| checks::remove(data, &id)) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "Unknown check ID {id:?}. Ensure that the check ID is passed, not the check name."
        )))
    }
}

async fn ttl(
    app: AppState,
    id: String,
    q: Vec<(String, String)>,
    headers: HeaderMap,
    status: &str,
) -> Result<(), ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    let note = params.get("note").unwrap_or("").to_string();
    app.store
        .write(|data| checks::ttl_update(data, &id, status, &note))
}

pub async fn check_pass(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    ttl(app, id, q, headers, PASSING).await
}

pub async fn check_warn(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    ttl(app, id, q, headers, WARNING).await
}

pub async fn check_fail(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<(), ApiError> {
    ttl(app, id, q, headers, CRITICAL).await
}

pub async fn check_update(
    State(app): State<AppState>,
    Path(id): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(), ApiError> {
    Params::parse(q, &headers, &app.config)?;
    let update: CheckUpdate = decode(&body)?;
    let status = match update.Status.as_deref() {
        Some(s @ (PASSING | WARNING | CRITICAL)) => s.to_string(),
        other => {
            return Err(ApiError::bad(format!(
                "Invalid check status: {:?}",
                other.unwrap_or("")
            )))
        }
    };
    let output = update.Output.unwrap_or_default();
    app.store
        .write(|data| checks::ttl_update(data, &id, &status, &output))
}

fn member(data: &Data) -> Value {
    json!({
        "Name": data.node.name,
        "Addr": data.node.address,
        "Port": 8301,
        "Tags": {
            "dc": data.node.datacenter, "role": "consul", "port": "8300", "build": "1.20.0:caravan-test",
            "vsn": "2", "vsn_min": "2", "vsn_max": "3", "segment": "", "id": data.node.id,
            "bootstrap": "1", "expect": "1", "raft_vsn": "3", "wan_join_port": "8302",
        },
        "Status": 1,
        "ProtocolMin": 1, "ProtocolMax": 5, "ProtocolCur": 2,
        "DelegateMin": 2, "DelegateMax": 5, "DelegateCur": 4,
    })
}

pub async fn agent_self(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    Params::parse(q, &headers, &app.config)?;
    let data = app.store.lock();
    Ok(Json(json!({
        "Config": {
            "Datacenter": data.node.datacenter,
            "PrimaryDatacenter": data.node.datacenter,
            "NodeName": data.node.name,
            "NodeID": data.node.id,
            "Server": true,
            "Revision": "caravan-test",
            "Version": "1.20.0",
            "BuildDate": "",
        },
        "DebugConfig": {},
        "Coord": {"Vec": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], "Error": 1.5, "Adjustment": 0.0, "Height": 1.0e-5},
        "Member": member(&data),
        "Stats": {},
        "Meta": {"consul-network-segment": ""},
        "xDS": null,
    })))
}

pub async fn members(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(q, &headers, &app.config)?;
    if params.flag("wan") {
        let data = app.store.lock();
        let mut m = member(&data);
        m["Name"] = Value::String(format!("{}.{}", data.node.name, data.node.datacenter));
        m["Port"] = json!(8302);
        return Ok(Json(Value::Array(vec![m])));
    }
    let data = app.store.lock();
    Ok(Json(Value::Array(vec![member(&data)])))
}

/// `GET /v1/status/leader`.
pub async fn status_leader(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Json<String>, ApiError> {
    Params::parse(q, &headers, &app.config)?;
    let data = app.store.lock();
    Ok(Json(format!("{}:8300", data.node.address)))
}

/// `GET /v1/status/peers`.
pub async fn status_peers(
    State(app): State<AppState>,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Json<Vec<String>>, ApiError> {
    Params::parse(q, &headers, &app.config)?;
    let data = app.store.lock();
    Ok(Json(vec![format!("{}:8300", data.node.address)]))
}

/// `GET /v1/catalog/datacenters`.
pub async fn datacenters(State(app): State<AppState>) -> Json<Vec<String>> {
    Json(vec![app.config.datacenter.clone()])
}
