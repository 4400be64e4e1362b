//! `/v1/node/pools` and `/v1/node/pool/:name` (with its `/nodes` and `/jobs`): list, read,
//! create or update, delete, as Nomad's node pool endpoints. With ACLs on, each checks the
//! token's `node_pool` rules as Nomad does: `read` to list (filtered), read and see a pool's
//! nodes (with node read) and jobs (those in namespaces it may list jobs of), `write` to
//! create or update, `delete` to delete.

use super::acl_rules::TokenRejected;
use super::namespaces::{allows, caller_acl, permission_denied, written};
use super::query::{blocking, QueryOptions};
use super::{decode_body, ApiError, ApiResult, AppState};
use crate::server::acl::Resolved;
use crate::state::Table;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use axum::Router;
use caravan_acl::capability as cap;
use caravan_structs::NodePool;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/node/pools", get(list).put(create).post(create))
        .route(
            "/v1/node/pool/:name",
            get(read).put(update).post(update).delete(delete),
        )
        .route("/v1/node/pool/:name/nodes", get(nodes))
        .route("/v1/node/pool/:name/jobs", get(jobs))
}

type Params = Query<HashMap<String, String>>;

type Token = Option<Extension<Resolved>>;
type Rejected = Option<Extension<TokenRejected>>;

async fn list(
    State(s): State<AppState>,
    Query(p): Params,
    r: Token,
    rejected: Rejected,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::NodePools], |t| {
        Ok(t.partitions
            .node_pools
            .values()
            .filter(|p| p.name.starts_with(&q.prefix))
            .filter(|p| {
                allows(&acl, |a| {
                    a.allow_node_pool_operation(&p.name, cap::POOL_READ)
                })
            })
            .cloned()
            .collect::<Vec<_>>())
    })
    .await
}

async fn read(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
    r: Token,
    rejected: Rejected,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    if !allows(&acl, |a| a.allow_node_pool_operation(&name, cap::POOL_READ)) {
        return Err(permission_denied());
    }
    let q = QueryOptions::parse(&p)?;
    blocking(&s, &q, &[Table::NodePools], |t| {
        t.node_pool(&name)
            .ok_or_else(|| ApiError::NotFound("node pool not found".into()))
    })
    .await
}

async fn create(State(s): State<AppState>, r: Token, rejected: Rejected, body: Bytes) -> ApiResult {
    upsert(&s, None, r, rejected, &body)
}

async fn update(
    State(s): State<AppState>,
    Path(name): Path<String>,
    r: Token,
    rejected: Rejected,
    body: Bytes,
) -> ApiResult {
    upsert(&s, Some(&name), r, rejected, &body)
}

fn upsert(
    s: &AppState,
    path_name: Option<&str>,
    r: Token,
    rejected: Rejected,
    body: &[u8],
) -> ApiResult {
    let acl = caller_acl(s, r, rejected)?;
    let pool: NodePool = decode_body(body)?;
    if !allows(&acl, |a| {
        a.allow_node_pool_operation(&pool.name, cap::POOL_WRITE)
    }) {
        return Err(permission_denied());
    }
    if let Some(name) = path_name {
        if pool.name != name {
            return Err(ApiError::BadRequest(
                "Node pool name does not match request path".into(),
            ));
        }
    }
    Ok(written(s.server.node_pool_upsert(pool)?))
}

async fn delete(
    State(s): State<AppState>,
    Path(name): Path<String>,
    r: Token,
    rejected: Rejected,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    if !allows(&acl, |a| {
        a.allow_node_pool_operation(&name, cap::POOL_DELETE)
    }) {
        return Err(permission_denied());
    }
    Ok(written(s.server.node_pool_delete(&name)?))
}

/// `prefix` is ambiguous on the pool's nodes and jobs (the pool's name or theirs?), so Nomad
/// refuses it.
fn no_prefix(q: &QueryOptions) -> Result<(), ApiError> {
    if q.prefix.is_empty() {
        Ok(())
    } else {
        Err(ApiError::BadRequest("prefix argument not allowed".into()))
    }
}

/// The pool's nodes (every node for `all`); an unknown pool has none.
async fn nodes(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
    r: Token,
    rejected: Rejected,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    if !allows(&acl, |a| {
        a.allow_node_read() && a.allow_node_pool_operation(&name, cap::POOL_READ)
    }) {
        return Err(permission_denied());
    }
    let q = QueryOptions::parse(&p)?;
    no_prefix(&q)?;
    blocking(&s, &q, &[Table::Nodes, Table::NodePools], |t| {
        if t.node_pool(&name).is_none() {
            return Ok(vec![]);
        }
        Ok(t.nodes_in_pool(&name)
            .iter()
            .map(|n| n.stub())
            .collect::<Vec<_>>())
    })
    .await
}

/// The jobs that name the pool, in the query's namespace (`*`: all of them), of the
/// namespaces the token may list jobs in.
async fn jobs(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(p): Params,
    r: Token,
    rejected: Rejected,
) -> ApiResult {
    let acl = caller_acl(&s, r, rejected)?;
    if !allows(&acl, |a| a.allow_node_pool_operation(&name, cap::POOL_READ)) {
        return Err(permission_denied());
    }
    let q = QueryOptions::parse(&p)?;
    no_prefix(&q)?;
    blocking(
        &s,
        &q,
        &[Table::Jobs, Table::Allocs, Table::NodePools],
        |t| {
            if t.node_pool(&name).is_none() {
                return Ok(vec![]);
            }
            Ok(t.jobs_in_pool(&name)
                .iter()
                .filter(|j| q.all_namespaces() || j.namespace == q.namespace)
                .map(|j| super::jobs::job_stub(j, t))
                .collect::<Vec<_>>())
        },
    )
    .await
}
