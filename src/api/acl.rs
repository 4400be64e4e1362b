//! `/v1/acl/...`: bootstrap, policies, tokens and roles, as Nomad's ACL endpoints. Writes and
//! full listings need a management token (checked by [`super::acl_rules`]); reads of one
//! policy, token or role are also open to a token that holds it, and listings show such a
//! token only what it holds.

use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use crate::server::acl::Resolved;
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Extension, Router};
use caravan_structs::*;
use serde::Deserialize;
use serde_json::json;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/acl/bootstrap", put(bootstrap).post(bootstrap))
        .route("/v1/acl/policies", get(list_policies))
        .route(
            "/v1/acl/policy/:name",
            get(read_policy)
                .put(upsert_policy)
                .post(upsert_policy)
                .delete(delete_policy),
        )
        .route("/v1/acl/tokens", get(list_tokens))
        .route("/v1/acl/token", put(create_token).post(create_token))
        .route("/v1/acl/token/self", get(token_self))
        .route(
            "/v1/acl/token/:id",
            get(read_token)
                .put(update_token)
                .post(update_token)
                .delete(delete_token),
        )
        .route("/v1/acl/roles", get(list_roles))
        .route("/v1/acl/role", put(create_role).post(create_role))
        .route(
            "/v1/acl/role/:id",
            get(read_role)
                .put(update_role)
                .post(update_role)
                .delete(delete_role),
        )
        .route("/v1/acl/role/name/:name", get(read_role_by_name))
}

/// The caller's resolved token; ACL endpoints answer only while ACLs are on.
fn caller(
    s: &AppState,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> Result<Resolved, ApiError> {
    if !s.server.acl_enabled() {
        return Err(ApiError::BadRequest("ACL support disabled".into()));
    }
    r.map(|Extension(r)| r).ok_or_else(|| {
        ApiError::Forbidden(
            rejected
                .map(|Extension(e)| e.0)
                .unwrap_or_else(|| "Permission denied".into()),
        )
    })
}

fn is_management(r: &Resolved) -> bool {
    r.acl.is_management()
}

/// Policy names a token holds directly or through its roles.
fn held_policies(s: &AppState, r: &Resolved) -> Vec<String> {
    let snap = s.server.store.snapshot();
    let Some(t) = &r.token else {
        return vec![ANONYMOUS_POLICY.to_string()];
    };
    let mut names = t.policies.clone();
    for l in &t.roles {
        if let Some(role) = snap.acl.roles.get(&l.id) {
            names.extend(role.policies.iter().map(|p| p.name.clone()));
        }
    }
    names
}

fn acl_index(s: &AppState) -> u64 {
    s.server.store.snapshot().table_index(Table::Acl).max(1)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct BootstrapRequest {
    bootstrap_secret: String,
}

async fn bootstrap(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let req: BootstrapRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        BootstrapRequest::default()
    } else {
        decode_body(&body)?
    };
    let token = s
        .server
        .acl_bootstrap(Some(req.bootstrap_secret).filter(|x| !x.is_empty()))?;
    let index = token.modify_index;
    Ok(json_with_index(&token, index))
}

async fn list_policies(
    State(s): State<AppState>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    let held = held_policies(&s, &r);
    let snap = s.server.store.snapshot();
    let list: Vec<AclPolicyListStub> = snap
        .acl
        .policies
        .values()
        .filter(|p| is_management(&r) || held.contains(&p.name))
        .map(|p| p.stub())
        .collect();
    Ok(json_with_index(&list, acl_index(&s)))
}

async fn read_policy(
    State(s): State<AppState>,
    Path(name): Path<String>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    if !is_management(&r) && !held_policies(&s, &r).contains(&name) {
        return Err(ApiError::Forbidden("Permission denied".into()));
    }
    let snap = s.server.store.snapshot();
    let p = snap
        .acl
        .policies
        .get(&name)
        .ok_or_else(|| ApiError::NotFound("ACL policy not found".into()))?;
    Ok(json_with_index(&**p, p.modify_index))
}

async fn upsert_policy(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    let mut p: AclPolicy = decode_body(&body)?;
    if p.name.is_empty() {
        p.name = name.clone();
    }
    if p.name != name {
        return Err(ApiError::BadRequest(format!(
            "policy name in the body ({:?}) does not match the URL ({name:?})",
            p.name
        )));
    }
    let index = s.server.acl_policy_upsert(p)?;
    Ok(json_with_index(&json!({"Index": index}), index))
}

async fn delete_policy(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult {
    let index = s.server.acl_policy_delete(&name)?;
    Ok(json_with_index(&json!({"Index": index}), index))
}

async fn list_tokens(
    State(s): State<AppState>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    caller(&s, r, rejected)?;
    let snap = s.server.store.snapshot();
    let list: Vec<AclTokenListStub> = snap.acl.tokens.values().map(|t| t.stub()).collect();
    Ok(json_with_index(&list, acl_index(&s)))
}

async fn create_token(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let t: AclToken = decode_body(&body)?;
    let t = s.server.acl_token_create(t)?;
    let index = t.modify_index;
    Ok(json_with_index(&t, index))
}

async fn token_self(
    State(s): State<AppState>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    let t = r
        .token
        .ok_or_else(|| ApiError::Forbidden("ACL token not found".into()))?;
    Ok(json_with_index(&*t, t.modify_index))
}

async fn read_token(
    State(s): State<AppState>,
    Path(id): Path<String>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    let own = r.token.as_ref().is_some_and(|t| t.accessor_id == id);
    if !is_management(&r) && !own {
        return Err(ApiError::Forbidden("Permission denied".into()));
    }
    let snap = s.server.store.snapshot();
    let t = snap
        .acl
        .tokens
        .get(&id)
        .ok_or_else(|| ApiError::NotFound("ACL token not found".into()))?;
    Ok(json_with_index(&**t, t.modify_index))
}

async fn update_token(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let t: AclToken = decode_body(&body)?;
    if !t.accessor_id.is_empty() && t.accessor_id != id {
        return Err(ApiError::BadRequest(
            "accessor ID in the body does not match the URL".into(),
        ));
    }
    let t = s.server.acl_token_update(&id, t)?;
    let index = t.modify_index;
    Ok(json_with_index(&t, index))
}

async fn delete_token(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let index = s.server.acl_token_delete(&id)?;
    Ok(json_with_index(&json!({"Index": index}), index))
}

fn holds_role(r: &Resolved, id: &str) -> bool {
    r.acl.is_management()
        || r.token
            .as_ref()
            .is_some_and(|t| t.roles.iter().any(|l| l.id == id))
}

async fn list_roles(
    State(s): State<AppState>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    let snap = s.server.store.snapshot();
    let list: Vec<AclRole> = snap
        .acl
        .roles
        .values()
        .filter(|role| holds_role(&r, &role.id))
        .map(|role| (**role).clone())
        .collect();
    Ok(json_with_index(&list, acl_index(&s)))
}

async fn create_role(State(s): State<AppState>, body: Bytes) -> ApiResult {
    let role: AclRole = decode_body(&body)?;
    if !role.id.is_empty() {
        return Err(ApiError::BadRequest(
            "a new role gets its ID from the server; update a role at /v1/acl/role/<id>".into(),
        ));
    }
    let role = s.server.acl_role_upsert(role)?;
    let index = role.modify_index;
    Ok(json_with_index(&role, index))
}

async fn read_role(
    State(s): State<AppState>,
    Path(id): Path<String>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    if !holds_role(&r, &id) {
        return Err(ApiError::Forbidden("Permission denied".into()));
    }
    let snap = s.server.store.snapshot();
    let role = snap
        .acl
        .roles
        .get(&id)
        .ok_or_else(|| ApiError::NotFound("ACL role not found".into()))?;
    Ok(json_with_index(&**role, role.modify_index))
}

async fn read_role_by_name(
    State(s): State<AppState>,
    Path(name): Path<String>,
    r: Option<Extension<Resolved>>,
    rejected: Option<Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    let r = caller(&s, r, rejected)?;
    let snap = s.server.store.snapshot();
    let role = snap
        .acl
        .role_by_name(&name)
        .filter(|role| holds_role(&r, &role.id))
        .ok_or_else(|| ApiError::NotFound("ACL role not found".into()))?;
    Ok(json_with_index(&*role, role.modify_index))
}

async fn update_role(State(s): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let mut role: AclRole = decode_body(&body)?;
    if !role.id.is_empty() && role.id != id {
        return Err(ApiError::BadRequest(
            "role ID in the body does not match the URL".into(),
        ));
    }
    role.id = id;
    let role = s.server.acl_role_upsert(role)?;
    let index = role.modify_index;
    Ok(json_with_index(&role, index))
}

async fn delete_role(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let index = s.server.acl_role_delete(&id)?;
    Ok(json_with_index(&json!({"Index": index}), index))
}
