//! `/v1/kv/:key`: get (single, `recurse`, `keys` with `separator`, `raw`), put (`flags`, `cas`)
//! and delete (`recurse`, `cas`), with blocking reads.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::query::{blocking, with_meta, Params};
use crate::store::{Data, KvEntry};
use crate::AppState;

/// Consul's limit on a KV value.
const MAX_VALUE_SIZE: usize = 512 * 1024;

type Pairs = Query<Vec<(String, String)>>;

fn entry_json(key: &str, e: &KvEntry) -> Value {
    let value = if e.value.is_empty() {
        Value::Null
    } else {
        Value::String(base64::engine::general_purpose::STANDARD.encode(&e.value))
    };
    json!({
        "LockIndex": e.lock_index,
        "Key": key,
        "Flags": e.flags,
        "Value": value,
        "CreateIndex": e.create_index,
        "ModifyIndex": e.modify_index,
    })
}

/// The index a prefix listing reports: newest entry or tombstone under it, else the table's.
fn prefix_index(data: &Data, prefix: &str) -> u64 {
    let live = data
        .kv
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(_, e)| e.modify_index)
        .max()
        .unwrap_or(0);
    let dead = data
        .tombstones
        .range(prefix.to_string()..)
        .take_while(|(k, _)| k.starts_with(prefix))
        .map(|(_, i)| *i)
        .max()
        .unwrap_or(0);
    match live.max(dead) {
        0 => data.kv_index,
        i => i,
    }
}

pub async fn get_root(state: State<AppState>, q: Pairs, headers: HeaderMap) -> Response {
    get_inner(state, String::new(), q, headers).await
}

pub async fn get(
    state: State<AppState>,
    Path(key): Path<String>,
    q: Pairs,
    headers: HeaderMap,
) -> Response {
    get_inner(state, key, q, headers).await
}

async fn get_inner(
    State(app): State<AppState>,
    key: String,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Response {
    let params = match Params::parse(q, &headers, &app.config) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    if params.get("keys").is_some() {
        let separator = params.get("separator").unwrap_or("").to_string();
        let (index, keys) = blocking(&app.store, &params, |data| {
            let mut out = BTreeSet::new();
            for k in data
                .kv
                .range(key.clone()..)
                .map(|(k, _)| k)
                .take_while(|k| k.starts_with(key.as_str()))
            {
                let rest = &k[key.len()..];
                match (!separator.is_empty())
                    .then(|| rest.find(separator.as_str()))
                    .flatten()
                {
                    Some(pos) => out.insert(format!("{key}{}", &rest[..pos + separator.len()])),
                    None => out.insert(k.clone()),
                };
            }
            (
                prefix_index(data, &key),
                out.into_iter().collect::<Vec<_>>(),
            )
        })
        .await;
        if keys.is_empty() {
            return with_meta(index, &params, StatusCode::NOT_FOUND);
        }
        return with_meta(index, &params, Json(keys));
    }
    if params.get("recurse").is_some() {
        let (index, entries) = blocking(&app.store, &params, |data| {
            let entries: Vec<Value> = data
                .kv
                .range(key.clone()..)
                .take_while(|(k, _)| k.starts_with(key.as_str()))
                .map(|(k, e)| entry_json(k, e))
                .collect();
            (prefix_index(data, &key), entries)
        })
        .await;
        if entries.is_empty() {
            return with_meta(index, &params, StatusCode::NOT_FOUND);
        }
        return with_meta(index, &params, Json(entries));
    }
    let (index, entry) = blocking(&app.store, &params, |data| {
        (data.kv_index, data.kv.get(&key).cloned())
    })
    .await;
    match entry {
        None => with_meta(index, &params, StatusCode::NOT_FOUND),
        Some(e) if params.get("raw").is_some() => with_meta(
            index,
            &params,
            ([("content-type", "application/octet-stream")], e.value),
        ),
        Some(e) => with_meta(index, &params, Json(vec![entry_json(&key, &e)])),
    }
}

fn parse_write(
    app: &AppState,
    q: Vec<(String, String)>,
    headers: &HeaderMap,
) -> Result<Params, ApiError> {
    let params = Params::parse(q, headers, &app.config)?;
    for unsupported in ["acquire", "release"] {
        if params.get(unsupported).is_some() {
            return Err(ApiError::bad(format!(
                "?{unsupported} (sessions and locks) is not implemented by the Caravan Consul test server"
            )));
        }
    }
    Ok(params)
}

pub async fn put(
    State(app): State<AppState>,
    Path(key): Path<String>,
    Query(q): Pairs,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<bool>, ApiError> {
    let params = parse_write(&app, q, &headers)?;
    if body.len() > MAX_VALUE_SIZE {
        return Err(ApiError::bad(format!(
            "Request body({} bytes) too large, max size: {MAX_VALUE_SIZE} bytes. See https://developer.hashicorp.com/consul/docs/agent/config/config-files#kv_max_value_size.",
            body.len()
        )));
    }
    let flags = params.u64("flags")?.unwrap_or(0);
    let cas = params.u64("cas")?;
    let ok = app.store.write(|data| {
        let existing = data.kv.get(&key);
        if let Some(cas) = cas {
            let current = existing.map(|e| e.modify_index).unwrap_or(0);
            if current != cas {
                return false;
            }
        }
        let index = data.next_index();
        let create_index = data.kv.get(&key).map(|e| e.create_index).unwrap_or(index);
        let lock_index = data.kv.get(&key).map(|e| e.lock_index).unwrap_or(0);
        data.kv.insert(
            key.clone(),
            KvEntry {
                value: body.to_vec(),
                flags,
                create_index,
                modify_index: index,
                lock_index,
            },
        );
        data.tombstones.remove(&key);
        data.kv_index = index;
        true
    });
    Ok(Json(ok))
}

pub async fn put_root() -> ApiError {
    ApiError::bad("Missing key name")
}

pub async fn delete_root(
    state: State<AppState>,
    q: Pairs,
    headers: HeaderMap,
) -> Result<Json<bool>, ApiError> {
    delete_inner(state, String::new(), q, headers).await
}

pub async fn delete(
    state: State<AppState>,
    Path(key): Path<String>,
    q: Pairs,
    headers: HeaderMap,
) -> Result<Json<bool>, ApiError> {
    delete_inner(state, key, q, headers).await
}

async fn delete_inner(
    State(app): State<AppState>,
    key: String,
    Query(q): Pairs,
    headers: HeaderMap,
) -> Result<Json<bool>, ApiError> {
    let params = parse_write(&app, q, &headers)?;
    let recurse = params.get("recurse").is_some();
    let cas = params.u64("cas")?;
    if recurse && cas.is_some() {
        return Err(ApiError::bad("Conflicting flags: cas=N&recurse"));
    }
    if !recurse && key.is_empty() {
        return Err(ApiError::bad("Missing key name"));
    }
    let ok = app.store.write(|data| {
        let doomed: Vec<String> = if recurse {
            data.kv
                .range(key.clone()..)
                .take_while(|(k, _)| k.starts_with(key.as_str()))
                .map(|(k, _)| k.clone())
                .collect()
        } else {
            match (data.kv.get(&key), cas) {
                (None, Some(_)) => return false,
                (None, None) => Vec::new(),
                (Some(e), Some(cas)) if e.modify_index != cas => return false,
                (Some(_), _) => vec![key.clone()],
            }
        };
        if doomed.is_empty() {
            return true;
        }
        let index = data.next_index();
        for k in doomed {
            data.kv.remove(&k);
            data.tombstones.insert(k, index);
        }
        data.kv_index = index;
        true
    });
    Ok(Json(ok))
}
