//! Variables over HTTP, as Nomad's `/v1/vars` (metadata list) and `/v1/var/<path>` (read,
//! write with `?cas=`, delete, and `?lock-acquire` / `?lock-renew` / `?lock-release`). ACL
//! path rules are checked here (the route's rule is `Handler`): read, list, write and destroy
//! capabilities on the variable's namespace and path; listings show only what the token may
//! list; lock details are shown to management tokens and to the lock's holder.

use super::acl_rules::TokenRejected;
use super::query::blocking;
use super::{decode_body, json_with_index, ApiError, ApiResult, AppState, QueryOptions};
use crate::server::acl::Resolved;
use crate::server::variables::{VarWrite, Variable};
use crate::state::variables::{VariableEncrypted, VariableLock, VariableMeta};
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Extension, Router};
use caravan_acl::capability as cap;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/vars", get(list)).route(
        "/v1/var/*path",
        get(read).put(write).post(write).delete(remove),
    )
}

/// What a write's body may carry (Nomad's `VariableDecrypted`; server-set fields ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VarBody {
    namespace: String,
    items: Option<BTreeMap<String, String>>,
    lock: Option<VariableLock>,
}

/// The caller's rights: `None` while ACLs are off (everything allowed).
struct Caller(Option<Resolved>);

impl Caller {
    fn of(
        s: &AppState,
        r: Option<Extension<Resolved>>,
        rejected: Option<Extension<TokenRejected>>,
    ) -> Result<Caller, ApiError> {
        if !s.server.acl_enabled() {
            return Ok(Caller(None));
        }
        match r {
            Some(Extension(r)) => Ok(Caller(Some(r))),
            None => Err(ApiError::Forbidden(
                rejected
                    .map(|Extension(TokenRejected(why))| why)
                    .unwrap_or_else(|| "Permission denied".into()),
            )),
        }
    }

    fn may(&self, ns: &str, path: &str, capability: &str) -> bool {
        match &self.0 {
            None => true,
            Some(r) => {
                r.acl
                    .allow_variable_operation_with_claim(ns, path, capability, r.claim.as_ref())
            }
        }
    }

    fn need(&self, ns: &str, path: &str, capability: &str) -> Result<(), ApiError> {
        if self.may(ns, path, capability) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("Permission denied".into()))
        }
    }

    fn management(&self) -> bool {
        self.0.as_ref().is_none_or(|r| r.acl.is_management())
    }
}

fn not_management_strip(caller: &Caller, meta: &mut VariableMeta) {
    if !caller.management() {
        meta.lock = None;
    }
}

/// `GET /v1/vars?prefix=&namespace=` (`namespace=*`: every namespace).
async fn list(
    State(s): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    let caller = Caller::of(&s, r, rejected)?;
    blocking(&s, &q, &[Table::Variables], |t| {
        let out: Vec<VariableMeta> = t
            .variables
            .values()
            .filter(|v| q.all_namespaces() || v.meta.namespace == q.namespace)
            .filter(|v| v.meta.path.starts_with(&q.prefix))
            .filter(|v| caller.may(&v.meta.namespace, &v.meta.path, cap::VAR_LIST))
            .map(|v| {
                let mut m = v.meta.clone();
                not_management_strip(&caller, &mut m);
                m
            })
            .collect();
        Ok(out)
    })
    .await
}

/// `GET /v1/var/:path`.
async fn read(
    State(s): State<AppState>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    let caller = Caller::of(&s, r, rejected)?;
    caller.need(&q.namespace, &path, cap::VAR_READ)?;
    let server = s.server.clone();
    blocking(&s, &q, &[Table::Variables], |t| {
        let v = t
            .variable(&q.namespace, &path)
            .ok_or_else(|| ApiError::NotFound("variable not found".into()))?;
        let mut v = server.var_open(&v)?;
        not_management_strip(&caller, &mut v.meta);
        Ok(v)
    })
    .await
}

/// Which lock operation a write names (at most one).
fn lock_op(params: &HashMap<String, String>) -> Result<Option<&'static str>, ApiError> {
    let ops: Vec<&'static str> = ["lock-acquire", "lock-renew", "lock-release"]
        .into_iter()
        .filter(|k| params.contains_key(*k))
        .collect();
    match ops.len() {
        0 => Ok(None),
        1 => Ok(Some(ops[0])),
        _ => Err(ApiError::BadRequest("multiple lock operations".into())),
    }
}

fn cas_of(params: &HashMap<String, String>) -> Result<Option<u64>, ApiError> {
    match params.get("cas").filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(c) => c
            .parse()
            .map(Some)
            .map_err(|e| ApiError::BadRequest(format!("can not parse cas: {e}"))),
    }
}

/// A conflict's answer: 409 with the stored variable, its items only when the caller may read
/// them (Nomad redacts them otherwise).
fn conflict(s: &AppState, caller: &Caller, v: &VariableEncrypted) -> ApiResult {
    let readable = caller.may(&v.meta.namespace, &v.meta.path, cap::VAR_READ);
    let mut out = if readable && !v.data.is_empty() {
        s.server.var_open(v)?
    } else {
        Variable {
            meta: v.meta.clone(),
            items: BTreeMap::new(),
        }
    };
    if v.meta.lock.as_ref().is_some_and(|l| !l.id.is_empty()) {
        not_management_strip(caller, &mut out.meta);
    }
    let mut resp = json_with_index(&out, out.meta.modify_index);
    *resp.status_mut() = StatusCode::CONFLICT;
    Ok(resp)
}

/// The written variable; its lock shown to its holder (the ID they presented or were given)
/// and to management.
fn written(caller: &Caller, index: u64, v: Option<Variable>, holder: Option<&str>) -> ApiResult {
    let Some(mut v) = v else {
        return Err(ApiError::Internal("written variable is missing".into()));
    };
    let owner = match (&v.meta.lock, holder) {
        (Some(l), Some(h)) => l.id == h,
        _ => false,
    };
    if !owner {
        not_management_strip(caller, &mut v.meta);
    }
    Ok(json_with_index(&v, index))
}

/// `PUT /v1/var/:path`: write (optionally `?cas=`), or a lock operation.
async fn write(
    State(s): State<AppState>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
    body: Bytes,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    let caller = Caller::of(&s, r, rejected)?;
    let op = lock_op(&params)?;
    let cas = cas_of(&params)?;
    if cas.is_some() && op.is_some() {
        return Err(ApiError::BadRequest(
            "CAS can't be used with lock operations".into(),
        ));
    }
    let b: VarBody = decode_body(&body)?;
    let ns = if b.namespace.is_empty() {
        q.namespace.clone()
    } else {
        b.namespace.clone()
    };
    caller.need(&ns, &path, cap::VAR_WRITE)?;
    let lock_id = b
        .lock
        .as_ref()
        .map(|l| l.id.clone())
        .filter(|i| !i.is_empty());
    let outcome = match op {
        None => {
            if b.lock
                .as_ref()
                .is_some_and(|l| l.ttl != 0 || l.lock_delay != 0)
            {
                return Err(ApiError::BadRequest(
                    "variable should not contain lock definition".into(),
                ));
            }
            let items = b.items.unwrap_or_default();
            s.server.var_set(&ns, &path, items, lock_id.clone(), cas)?
        }
        Some("lock-acquire") => {
            let out = s.server.var_lock_acquire(
                &ns,
                &path,
                b.items.unwrap_or_default(),
                b.lock.clone(),
            )?;
            // The acquirer is the holder of whatever lock it got.
            if let VarWrite::Done(index, Some(v)) = out {
                let id = v.meta.lock.as_ref().map(|l| l.id.clone());
                return written(&caller, index, Some(v), id.as_deref());
            }
            out
        }
        Some("lock-release") => {
            if b.items.as_ref().is_some_and(|i| !i.is_empty()) {
                return Err(ApiError::BadRequest(
                    "lock release operation doesn't take variable items".into(),
                ));
            }
            let Some(id) = lock_id.clone() else {
                return Err(ApiError::BadRequest("missing lock information".into()));
            };
            s.server.var_lock_release(&ns, &path, &id)?
        }
        Some(_) => {
            let Some(id) = lock_id.clone() else {
                return Err(ApiError::BadRequest("missing lock ID".into()));
            };
            let meta = s.server.var_lock_renew(&ns, &path, &id)?;
            let index = meta.modify_index;
            return Ok(json_with_index(&meta, index));
        }
    };
    match outcome {
        VarWrite::Done(index, v) => written(&caller, index, v, lock_id.as_deref()),
        VarWrite::Conflict(v) => conflict(&s, &caller, &v),
    }
}

/// `DELETE /v1/var/:path` (optionally `?cas=`): 204 when done.
async fn remove(
    State(s): State<AppState>,
    Path(path): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<TokenRejected>>,
) -> ApiResult {
    let q = QueryOptions::parse(&params)?;
    let caller = Caller::of(&s, r, rejected)?;
    caller.need(&q.namespace, &path, cap::VAR_DESTROY)?;
    let cas = cas_of(&params)?;
    match s.server.var_delete(&q.namespace, &path, cas, None)? {
        VarWrite::Done(index, _) => {
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Ok(v) = index.to_string().parse() {
                resp.headers_mut().insert("X-Nomad-Index", v);
            }
            Ok(resp)
        }
        VarWrite::Conflict(v) => conflict(&s, &caller, &v),
    }
}
