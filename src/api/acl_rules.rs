//! ACL enforcement for every endpoint: the token comes from `X-Nomad-Token` or
//! `Authorization: Bearer`, resolves to the ACL it grants, and each route (method and path as
//! the router registered it) names the rule it needs, as Nomad's endpoints check them. A route
//! without a rule is refused while ACLs are on, so a new endpoint cannot slip through
//! unprotected. The resolved ACL rides on the request for handlers that filter or check more.

use super::{ApiError, AppState};
use crate::server::acl::Resolved;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use caravan_acl::capability as cap;

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No token needed (health, leader, regions, bootstrap).
    Public,
    /// This capability in the request's namespace (`?namespace=`, default `default`).
    Ns(&'static str),
    /// Any capability in the request's namespace.
    NsAny,
    NodeRead,
    NodeWrite,
    AgentRead,
    AgentWrite,
    OperatorRead,
    OperatorWrite,
    /// A management token.
    Management,
    /// Any request; the handler decides from the resolved token (ACL object reads).
    Handler,
}

/// The rule of one route, by method and the path as registered (`/v1/job/:id`).
pub fn rule_for(method: &Method, path: &str) -> Option<Rule> {
    use Rule::*;
    let write = *method != Method::GET;
    let ns_rw = |read: &'static str, w: &'static str| Ns(if write { w } else { read });
    Some(match path {
        "/v1/agent/health"
        | "/v1/status/leader"
        | "/v1/status/peers"
        | "/v1/regions"
        | "/v1/metrics"
        | "/v1/acl/bootstrap"
        | "/.well-known/jwks.json"
        | "/.well-known/openid-configuration" => Public,
        "/v1/agent/self" | "/v1/agent/servers" | "/v1/agent/monitor" => AgentRead,
        "/v1/agent/members" => NodeRead,
        "/v1/jobs" => ns_rw(cap::LIST_JOBS, cap::SUBMIT_JOB),
        "/v1/jobs/parse" => Ns(cap::PARSE_JOB),
        "/v1/validate/job" => Ns(cap::READ_JOB),
        "/v1/job/:id" => ns_rw(cap::READ_JOB, cap::SUBMIT_JOB),
        "/v1/job/:id/versions"
        | "/v1/job/:id/summary"
        | "/v1/job/:id/allocations"
        | "/v1/job/:id/evaluations"
        | "/v1/job/:id/deployments"
        | "/v1/job/:id/deployment" => Ns(cap::READ_JOB),
        "/v1/job/:id/plan" | "/v1/job/:id/evaluate" | "/v1/job/:id/revert" => Ns(cap::SUBMIT_JOB),
        "/v1/job/:id/scale" => ns_rw(cap::READ_JOB_SCALING, cap::SCALE_JOB),
        "/v1/job/:id/dispatch" => Ns(cap::DISPATCH_JOB),
        "/v1/allocations" | "/v1/allocation/:id" => Ns(cap::READ_JOB),
        "/v1/allocation/:id/stop" => Ns(cap::ALLOC_LIFECYCLE),
        "/v1/evaluations"
        | "/v1/evaluations/count"
        | "/v1/evaluation/:id"
        | "/v1/evaluation/:id/allocations" => Ns(cap::READ_JOB),
        "/v1/deployments" | "/v1/deployment/:id" | "/v1/deployment/allocations/:id" => {
            Ns(cap::READ_JOB)
        }
        "/v1/deployment/fail/:id" => Ns(cap::FAIL_DEPLOYMENT),
        "/v1/deployment/pause/:id" => Ns(cap::PAUSE_DEPLOYMENT),
        "/v1/deployment/promote/:id" => Ns(cap::PROMOTE_DEPLOYMENT),
        // Per topic and per event (read-job in the event's namespace, node read for nodes).
        "/v1/event/stream" => Handler,
        // The namespace is in the body: the handler checks it and filters the matches.
        "/v1/search" | "/v1/search/fuzzy" => Handler,
        "/v1/nodes" | "/v1/node/:id" | "/v1/node/:id/allocations" => NodeRead,
        "/v1/node/:id/eligibility" | "/v1/node/:id/drain" => NodeWrite,
        "/v1/client/stats" => NodeRead,
        "/v1/client/gc" => NodeWrite,
        "/v1/client/fs/logs/:id" => Ns(cap::READ_LOGS),
        "/v1/client/fs/ls/:id"
        | "/v1/client/fs/stat/:id"
        | "/v1/client/fs/cat/:id"
        | "/v1/client/fs/readat/:id" => Ns(cap::READ_FS),
        "/v1/client/allocation/:id/stats" | "/v1/client/allocation/:id/checks" => Ns(cap::READ_JOB),
        // Nomad's service catalog: read-job to read (lists filtered per namespace),
        // submit-job to delete a registration.
        "/v1/services" | "/v1/service/:name" => Ns(cap::READ_JOB),
        "/v1/service/:name/:id" => Ns(cap::SUBMIT_JOB),
        "/v1/client/allocation/:id/restart" | "/v1/client/allocation/:id/signal" => {
            Ns(cap::ALLOC_LIFECYCLE)
        }
        "/v1/client/allocation/:id/gc" => Ns(cap::SUBMIT_JOB),
        // alloc-exec (and alloc-node-exec for a driver without isolation) in the allocation's
        // namespace, from the header's token or, with `ws_handshake`, the first frame's.
        "/v1/client/allocation/:id/exec" => Handler,
        // Another client fetching a migrating disk shows the migrate token the servers gave
        // it; the handler checks that (or read-fs in the allocation's namespace).
        "/v1/client/allocation/:id/snapshot" => Handler,
        "/v1/operator/scheduler/configuration" => {
            if write {
                OperatorWrite
            } else {
                OperatorRead
            }
        }
        "/v1/system/gc" | "/v1/system/reconcile/summaries" => Management,
        "/v1/operator/keyring/keys"
        | "/v1/operator/keyring/rotate"
        | "/v1/operator/keyring/key/:id" => Management,
        // Nomad: a snapshot holds every secret (tokens, keys, variables); restoring one
        // replaces the whole state.
        "/v1/operator/snapshot" => Management,
        "/v1/acl/policies" | "/v1/acl/policy/:name" if !write => Handler,
        "/v1/acl/policy/:name" => Management,
        "/v1/acl/token/self" => Handler,
        "/v1/acl/token/:id" if !write => Handler,
        "/v1/acl/tokens" | "/v1/acl/token" | "/v1/acl/token/:id" => Management,
        "/v1/acl/roles" | "/v1/acl/role/:id" | "/v1/acl/role/name/:name" if !write => Handler,
        "/v1/acl/role" | "/v1/acl/role/:id" => Management,
        // Variables: path rules (read, list, write, destroy) checked by the handler.
        "/v1/vars" | "/v1/var/*path" => Handler,
        // Namespaces: any token lists (filtered) and reads (checked) what it may use;
        // writes are management's, as Nomad.
        "/v1/namespaces" => Handler,
        "/v1/namespace/:name" if !write => Handler,
        "/v1/namespace" | "/v1/namespace/:name" => Management,
        // Node pools: the handlers check the pool's read, write or delete capability.
        "/v1/node/pools"
        | "/v1/node/pool/:name"
        | "/v1/node/pool/:name/nodes"
        | "/v1/node/pool/:name/jobs" => Handler,
        _ => return None,
    })
}

/// The request's token: `X-Nomad-Token`, else `Authorization: Bearer`.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("X-Nomad-Token").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string()).filter(|t| !t.is_empty());
    }
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// The namespace a request acts in (`?namespace=`; Nomad's `default` when unset).
fn namespace_of(query: Option<&str>) -> String {
    query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "namespace")
        .map(|(_, v)| v.replace("%2A", "*").replace("%2a", "*"))
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// The namespace of the allocation, evaluation or deployment a route's `:id` names (an ID or
/// a unique prefix of one), if the route names one and it exists.
fn object_namespace(s: &AppState, pattern: &str, path: &str) -> Option<String> {
    let kind = if pattern.starts_with("/v1/allocation/:id")
        || pattern.starts_with("/v1/client/fs/")
        || pattern.starts_with("/v1/client/allocation/:id")
    {
        "alloc"
    } else if pattern.starts_with("/v1/evaluation/:id") {
        "eval"
    } else if pattern.starts_with("/v1/deployment/") && pattern.ends_with(":id") {
        "deployment"
    } else {
        return None;
    };
    let at = pattern.split('/').position(|seg| seg == ":id")?;
    let id = path.split('/').nth(at)?;
    if id.is_empty() {
        return None;
    }
    let t = s.server.store.snapshot();
    // Keys are ordered, so the IDs with this prefix come first in a range starting at it.
    fn unique<'a, T: 'a>(
        it: impl Iterator<Item = (&'a String, &'a std::sync::Arc<T>)>,
        id: &str,
        ns: impl Fn(&T) -> &str,
    ) -> Option<String> {
        let mut matching = it.take_while(|(k, _)| k.starts_with(id));
        let first = matching.next()?;
        if matching.next().is_some() {
            return None;
        }
        Some(ns(first.1).to_string())
    }
    match kind {
        "alloc" => t
            .allocs
            .get(id)
            .map(|a| a.namespace.clone())
            .or_else(|| unique(t.allocs.range(id.to_string()..), id, |a| &a.namespace)),
        "eval" => t
            .evals
            .get(id)
            .map(|e| e.namespace.clone())
            .or_else(|| unique(t.evals.range(id.to_string()..), id, |e| &e.namespace)),
        _ => t
            .deployments
            .get(id)
            .map(|d| d.namespace.clone())
            .or_else(|| unique(t.deployments.range(id.to_string()..), id, |d| &d.namespace)),
    }
}

/// Whether the request may see an object in namespace `ns` with `capability`: lists across
/// namespaces keep only these. Always true while ACLs are off (no resolved token).
pub fn may(r: &Option<axum::Extension<Resolved>>, ns: &str, capability: &str) -> bool {
    r.as_ref()
        .is_none_or(|axum::Extension(r)| r.acl.allow_namespace_operation(ns, capability))
}

/// The caller's ACL for handler-checked routes: `None` while ACLs are off (everything is
/// allowed); with ACLs on, a request whose token did not resolve is refused, saying why.
pub fn caller_acl(
    s: &AppState,
    r: Option<axum::Extension<Resolved>>,
    rejected: Option<axum::Extension<TokenRejected>>,
) -> Result<Option<std::sync::Arc<caravan_acl::Acl>>, ApiError> {
    if !s.server.acl_enabled() {
        return Ok(None);
    }
    match r {
        Some(axum::Extension(r)) => Ok(Some(r.acl)),
        None => Err(ApiError::Forbidden(
            rejected
                .map(|axum::Extension(e)| e.0)
                .unwrap_or_else(|| "Permission denied".into()),
        )),
    }
}

/// Why the request's token resolved to nothing, for handler-checked routes.
#[derive(Debug, Clone)]
pub struct TokenRejected(pub String);

fn denied() -> Response {
    ApiError::Forbidden("Permission denied".into()).into_response()
}

/// The middleware: resolves the token, checks the route's rule, and hands the resolved ACL
/// to the handler.
pub async fn enforce(State(s): State<AppState>, mut req: Request, next: Next) -> Response {
    if !s.server.acl_enabled() {
        return next.run(req).await;
    }
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let Some(rule) = rule_for(req.method(), &path) else {
        tracing::error!(method = %req.method(), %path, "no ACL rule for this endpoint; refused");
        return denied();
    };
    if rule == Rule::Public {
        return next.run(req).await;
    }
    let resolved: Resolved = match s.server.resolve_token(token_of(req.headers()).as_deref()) {
        Ok(r) => r,
        // A handler-checked route may accept what is not an ACL token (a migrate token); it
        // learns why the token was not one.
        Err(e) if rule == Rule::Handler => {
            req.extensions_mut().insert(TokenRejected(e.to_string()));
            return next.run(req).await;
        }
        Err(e) => return ApiError::Forbidden(e.to_string()).into_response(),
    };
    let acl = &resolved.acl;
    // An allocation, evaluation or deployment named in the path is checked in its own
    // namespace, whatever `?namespace=` says.
    let ns = object_namespace(&s, &path, req.uri().path())
        .unwrap_or_else(|| namespace_of(req.uri().query()));
    // `namespace=*`: allowed when some namespace allows it; lists then show only what the
    // token may see there (see [`may`]), as Nomad filters them.
    let namespaces: Vec<String> = if ns == "*" {
        s.server
            .store
            .snapshot()
            .partitions
            .namespaces
            .keys()
            .cloned()
            .collect()
    } else {
        vec![ns.clone()]
    };
    let allowed = match rule {
        Rule::Handler => true,
        Rule::Public => unreachable!("public routes return before resolution"),
        Rule::Ns(c) => namespaces
            .iter()
            .any(|n| acl.allow_namespace_operation(n, c)),
        Rule::NsAny => namespaces.iter().any(|n| acl.allow_namespace(n)),
        Rule::NodeRead => acl.allow_node_read(),
        Rule::NodeWrite => acl.allow_node_write(),
        Rule::AgentRead => acl.allow_agent_read(),
        Rule::AgentWrite => acl.allow_agent_write(),
        Rule::OperatorRead => acl.allow_operator_read(),
        Rule::OperatorWrite => acl.allow_operator_write(),
        Rule::Management => acl.is_management(),
    };
    if !allowed {
        return denied();
    }
    req.extensions_mut().insert(resolved);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_come_from_either_header() {
        let mut h = HeaderMap::new();
        assert_eq!(token_of(&h), None);
        h.insert("Authorization", "Bearer abc".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("abc"));
        h.insert("X-Nomad-Token", "xyz".parse().unwrap());
        assert_eq!(token_of(&h).as_deref(), Some("xyz"));
    }

    #[test]
    fn namespace_defaults_to_default() {
        assert_eq!(namespace_of(None), "default");
        assert_eq!(namespace_of(Some("index=3&namespace=prod")), "prod");
        assert_eq!(namespace_of(Some("namespace=%2A")), "*");
    }
}
