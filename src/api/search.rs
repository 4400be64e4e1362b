//! `/v1/search`: prefix search over job, allocation, node, evaluation and deployment IDs, as
//! `caravan status <prefix>` uses it; and `/v1/search/fuzzy`, Nomad's fuzzy search: substring
//! matches on job, group, task and service names, task commands, images and classes (each with
//! its Scope: namespace, job, group, task), allocation and node names, and ID prefixes of
//! evaluations and deployments.

use super::query::{blocking, QueryOptions};
use super::{decode_body, ApiError, ApiResult, AppState};
use crate::state::{Table, Tables};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use axum::routing::put;
use axum::Router;
use caravan_structs::Job;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// Nomad truncates each context's matches at 20.
const MAX_MATCHES: usize = 20;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/search", put(search).post(search))
        .route("/v1/search/fuzzy", put(fuzzy).post(fuzzy))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SearchRequest {
    prefix: String,
    context: String,
    namespace: String,
}

/// What a search may show: `Some` with ACLs on (objects in namespaces the token may read
/// jobs in, nodes with node read), `None` with ACLs off. Refuses a token that may see none
/// of it in the namespace asked for.
struct Visibility {
    acl: Option<std::sync::Arc<caravan_acl::Acl>>,
}

impl Visibility {
    fn check(
        s: &AppState,
        ns: &str,
        resolved: Option<axum::Extension<crate::server::acl::Resolved>>,
        rejected: Option<axum::Extension<super::acl_rules::TokenRejected>>,
    ) -> Result<Visibility, ApiError> {
        let acl = super::acl_rules::caller_acl(s, resolved, rejected)?;
        if acl.is_none() {
            return Ok(Visibility { acl: None });
        }
        let v = Visibility { acl };
        let some_namespace = if ns == "*" {
            s.server
                .store
                .snapshot()
                .partitions
                .namespaces
                .keys()
                .any(|n| v.namespace(n))
        } else {
            v.namespace(ns)
        };
        if !some_namespace && !v.nodes() {
            return Err(ApiError::Forbidden("Permission denied".into()));
        }
        Ok(v)
    }

    fn namespace(&self, ns: &str) -> bool {
        self.acl
            .as_ref()
            .is_none_or(|a| a.allow_namespace_operation(ns, caravan_acl::capability::READ_JOB))
    }

    fn nodes(&self) -> bool {
        self.acl.as_ref().is_none_or(|a| a.allow_node_read())
    }

    /// A namespace itself (the `namespaces` context): any capability in it.
    fn namespace_object(&self, ns: &str) -> bool {
        self.acl.as_ref().is_none_or(|a| a.allow_namespace(ns))
    }

    fn node_pool(&self, pool: &str) -> bool {
        self.acl.as_ref().is_none_or(|a| a.allow_node_pool(pool))
    }

    fn variable(&self, ns: &str, path: &str) -> bool {
        self.acl
            .as_ref()
            .is_none_or(|a| a.allow_variable_operation(ns, path, caravan_acl::capability::VAR_LIST))
    }
}

async fn search(
    State(s): State<AppState>,
    resolved: Option<axum::Extension<crate::server::acl::Resolved>>,
    rejected: Option<axum::Extension<super::acl_rules::TokenRejected>>,
    body: Bytes,
) -> ApiResult {
    let req: SearchRequest = decode_body(&body)?;
    let ctx = if req.context.is_empty() {
        "all".to_string()
    } else {
        req.context.clone()
    };
    let contexts = [
        "jobs",
        "allocs",
        "nodes",
        "evals",
        "deployments",
        "namespaces",
        "node_pools",
        "vars",
    ];
    if ctx != "all" && !contexts.contains(&ctx.as_str()) {
        return Err(ApiError::BadRequest(format!(
            "invalid search context {ctx:?}"
        )));
    }
    let ns = if req.namespace.is_empty() {
        "default".to_string()
    } else {
        req.namespace.clone()
    };
    let vis = Visibility::check(&s, &ns, resolved, rejected)?;
    let t = s.server.store.snapshot();
    let p = req.prefix.as_str();
    let in_ns = |n: &str| (ns == "*" || n == ns) && vis.namespace(n);
    let mut matches = Map::new();
    let mut truncations = Map::new();
    for c in contexts {
        if ctx != "all" && ctx != c {
            continue;
        }
        let ids: Vec<String> = match c {
            "jobs" => t
                .jobs
                .values()
                .filter(|j| in_ns(&j.namespace) && j.id.starts_with(p))
                .map(|j| j.id.clone())
                .collect(),
            "allocs" => t
                .allocs
                .values()
                .filter(|a| in_ns(&a.namespace) && a.id.starts_with(p))
                .map(|a| a.id.clone())
                .collect(),
            "nodes" => t
                .nodes
                .values()
                .filter(|n| vis.nodes() && n.id.starts_with(p))
                .map(|n| n.id.clone())
                .collect(),
            "evals" => t
                .evals
                .values()
                .filter(|e| in_ns(&e.namespace) && e.id.starts_with(p))
                .map(|e| e.id.clone())
                .collect(),
            "deployments" => t
                .deployments
                .values()
                .filter(|d| in_ns(&d.namespace) && d.id.starts_with(p))
                .map(|d| d.id.clone())
                .collect(),
            "namespaces" => t
                .partitions
                .namespaces
                .keys()
                .filter(|n| n.starts_with(p) && vis.namespace_object(n))
                .cloned()
                .collect(),
            "node_pools" => t
                .partitions
                .node_pools
                .keys()
                .filter(|n| n.starts_with(p) && vis.node_pool(n))
                .cloned()
                .collect(),
            _ => t
                .variables
                .keys()
                .filter(|(vns, path)| {
                    (ns == "*" || *vns == ns) && path.starts_with(p) && vis.variable(vns, path)
                })
                .map(|(_, path)| path.clone())
                .collect(),
        };
        truncations.insert(c.into(), Value::Bool(ids.len() > MAX_MATCHES));
        matches.insert(
            c.into(),
            json!(ids.into_iter().take(MAX_MATCHES).collect::<Vec<_>>()),
        );
    }
    let mut r =
        axum::Json(json!({"Matches": matches, "Truncations": truncations, "Index": t.index}))
            .into_response();
    if let Ok(v) = t.index.to_string().parse() {
        r.headers_mut().insert("X-Nomad-Index", v);
    }
    Ok(r)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct FuzzyRequest {
    text: String,
    context: String,
    namespace: String,
}

/// The contexts a fuzzy search request may name, besides `all`: fuzzy ones (names, scanned
/// per namespace) and prefix ones (UUIDs). Nomad names the deployment context `deployment`.
const FUZZY_CONTEXTS: [&str; 6] = [
    "jobs",
    "allocs",
    "nodes",
    "namespaces",
    "node_pools",
    "vars",
];
const PREFIX_CONTEXTS: [&str; 2] = ["evals", "deployment"];

/// A fuzzy match: what matched, its parents' IDs (namespace first), and where `text` was
/// found in it (lower is better).
struct FuzzyMatch {
    id: String,
    scope: Vec<String>,
    score: usize,
}

impl FuzzyMatch {
    fn to_json(&self) -> Value {
        if self.scope.is_empty() {
            json!({"ID": self.id})
        } else {
            json!({"ID": self.id, "Scope": self.scope})
        }
    }
}

/// Where lower-case `text` occurs in `name`, ignoring case.
fn fuzzy_index(name: &str, text: &str) -> Option<usize> {
    name.to_lowercase().find(text)
}

/// Matches accumulated per context, with Nomad's limits.
struct Accumulator<'a> {
    text: &'a str,
    limit_results: usize,
    matches: BTreeMap<&'static str, Vec<FuzzyMatch>>,
    truncations: BTreeMap<&'static str, bool>,
}

impl Accumulator<'_> {
    fn check(&mut self, ctx: &'static str, name: &str, scope: &[&str]) {
        let Some(score) = fuzzy_index(name, self.text) else {
            return;
        };
        let found = self.matches.entry(ctx).or_default();
        if found.len() >= self.limit_results {
            self.truncations.insert(ctx, true);
            return;
        }
        found.push(FuzzyMatch {
            id: name.to_string(),
            scope: scope.iter().map(|s| s.to_string()).collect(),
            score,
        });
    }

    /// A job's name, groups, tasks, services and task commands, images and classes.
    fn job(&mut self, j: &Job) {
        let (ns, id) = (j.namespace.as_str(), j.id.as_str());
        self.check("jobs", &j.name, &[ns, id]);
        for g in &j.task_groups {
            let group = g.name.as_str();
            self.check("groups", group, &[ns, id]);
            for svc in &g.services {
                self.check("services", &svc.name, &[ns, id, group]);
            }
            for t in &g.tasks {
                let task = t.name.as_str();
                self.check("tasks", task, &[ns, id, group]);
                for svc in &t.services {
                    self.check("services", &svc.name, &[ns, id, group, task]);
                }
                let (ctx, param) = match t.driver.as_str() {
                    "docker" => ("images", "image"),
                    "exec" | "raw_exec" => ("commands", "command"),
                    "java" => ("classes", "class"),
                    _ => continue,
                };
                if let Some(v) = t.config.get(param).and_then(|v| v.as_str()) {
                    self.check(ctx, v, &[ns, id, group, task]);
                }
            }
        }
    }

    /// Scans at most `limit` objects of one context; more left unscanned truncates the
    /// contexts they could have matched.
    fn scan<'o, T: 'o>(
        &mut self,
        objects: impl Iterator<Item = &'o T>,
        limit: usize,
        contexts: &[&'static str],
        mut each: impl FnMut(&mut Self, &T),
    ) {
        let mut objects = objects.peekable();
        let mut scanned = 0;
        while let Some(o) = objects.next() {
            each(self, o);
            scanned += 1;
            if scanned >= limit {
                if objects.peek().is_some() {
                    for ctx in contexts {
                        if self.matches.contains_key(ctx) || *ctx == contexts[0] {
                            self.truncations.insert(ctx, true);
                        }
                    }
                }
                break;
            }
        }
    }
}

async fn fuzzy(
    State(s): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
    resolved: Option<axum::Extension<crate::server::acl::Resolved>>,
    rejected: Option<axum::Extension<super::acl_rules::TokenRejected>>,
    body: Bytes,
) -> ApiResult {
    let req: FuzzyRequest = decode_body(&body)?;
    let q = QueryOptions::parse(&params)?;
    let cfg = s.server.config.search.clone();
    if !cfg.fuzzy_enabled {
        return Err(ApiError::BadRequest(
            "fuzzy search is not enabled (server { search { fuzzy_enabled = true } })".into(),
        ));
    }
    let n = req.text.chars().count();
    if n < cfg.min_term_length {
        return Err(ApiError::BadRequest(format!(
            "fuzzy search query must be at least {} characters, got {n}",
            cfg.min_term_length
        )));
    }
    let contexts: Vec<&'static str> = match req.context.as_str() {
        "" | "all" => FUZZY_CONTEXTS
            .iter()
            .chain(&PREFIX_CONTEXTS)
            .copied()
            .collect(),
        // Caravan's prefix search says `deployments`; accept it here too.
        "deployments" => vec!["deployment"],
        c => match FUZZY_CONTEXTS
            .iter()
            .chain(&PREFIX_CONTEXTS)
            .find(|x| **x == c)
        {
            Some(x) => vec![*x],
            None => {
                return Err(ApiError::BadRequest(format!(
                    "invalid fuzzy search context {c:?}: use all, {}",
                    FUZZY_CONTEXTS
                        .iter()
                        .chain(&PREFIX_CONTEXTS)
                        .copied()
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        },
    };
    // The body's namespace, unless the query names one.
    let ns = if params.get("namespace").is_some_and(|n| !n.is_empty()) || req.namespace.is_empty() {
        q.namespace.clone()
    } else {
        req.namespace.clone()
    };
    let vis = Visibility::check(&s, &ns, resolved, rejected)?;
    let tables: Vec<Table> = contexts.iter().map(|c| context_table(c)).collect();
    blocking(&s, &q, &tables, |t| {
        Ok(fuzzy_search(t, &contexts, &ns, &req.text, &cfg, &vis))
    })
    .await
}

/// The table whose index answers for a search context.
fn context_table(ctx: &str) -> Table {
    match ctx {
        "jobs" => Table::Jobs,
        "allocs" => Table::Allocs,
        "nodes" => Table::Nodes,
        "evals" => Table::Evals,
        "namespaces" => Table::Namespaces,
        "node_pools" => Table::NodePools,
        "vars" => Table::Variables,
        _ => Table::Deployments,
    }
}

/// Nomad's FuzzySearch over one snapshot.
fn fuzzy_search(
    t: &Tables,
    contexts: &[&'static str],
    ns: &str,
    text: &str,
    cfg: &crate::server::SearchConfig,
    vis: &Visibility,
) -> Value {
    let lower = text.to_lowercase();
    let mut acc = Accumulator {
        text: &lower,
        limit_results: cfg.limit_results,
        matches: BTreeMap::new(),
        truncations: BTreeMap::new(),
    };
    let all_ns = ns == "*";
    let in_ns = |n: &str| (all_ns || n == ns) && vis.namespace(n);
    let mut prefix_matches: BTreeMap<&'static str, Value> = BTreeMap::new();
    for ctx in contexts {
        match *ctx {
            "jobs" => {
                acc.truncations.insert("jobs", false);
                acc.scan(
                    t.jobs
                        .values()
                        .filter(|j| in_ns(&j.namespace))
                        .map(|j| &**j),
                    cfg.limit_query,
                    &[
                        "jobs", "groups", "services", "tasks", "images", "commands", "classes",
                    ],
                    |acc, j| acc.job(j),
                );
            }
            "allocs" => {
                acc.truncations.insert("allocs", false);
                acc.scan(
                    t.allocs
                        .values()
                        .filter(|a| in_ns(&a.namespace))
                        .map(|a| &**a),
                    cfg.limit_query,
                    &["allocs"],
                    |acc, a| acc.check("allocs", &a.name, &[&a.namespace, &a.id]),
                );
            }
            "nodes" if vis.nodes() => {
                acc.truncations.insert("nodes", false);
                acc.scan(
                    t.nodes.values().map(|n| &**n),
                    cfg.limit_query,
                    &["nodes"],
                    |acc, n| acc.check("nodes", &n.name, &[&n.id]),
                );
            }
            "namespaces" => {
                acc.truncations.insert("namespaces", false);
                acc.scan(
                    t.partitions
                        .namespaces
                        .keys()
                        .filter(|n| vis.namespace_object(n)),
                    cfg.limit_query,
                    &["namespaces"],
                    |acc, n| acc.check("namespaces", n, &[]),
                );
            }
            "node_pools" => {
                acc.truncations.insert("node_pools", false);
                acc.scan(
                    t.partitions.node_pools.keys().filter(|n| vis.node_pool(n)),
                    cfg.limit_query,
                    &["node_pools"],
                    |acc, n| acc.check("node_pools", n, &[]),
                );
            }
            "vars" => {
                acc.truncations.insert("vars", false);
                acc.scan(
                    t.variables
                        .keys()
                        .filter(|(vns, path)| (all_ns || *vns == ns) && vis.variable(vns, path)),
                    cfg.limit_query,
                    &["vars"],
                    |acc, (vns, path)| acc.check("vars", path, &[vns]),
                );
            }
            "evals" | "deployment" => {
                // UUIDs are searched by prefix, as `/v1/search` does.
                let ids: Vec<&String> = if *ctx == "evals" {
                    t.evals
                        .values()
                        .filter(|e| in_ns(&e.namespace) && e.id.starts_with(text))
                        .map(|e| &e.id)
                        .collect()
                } else {
                    t.deployments
                        .values()
                        .filter(|d| in_ns(&d.namespace) && d.id.starts_with(text))
                        .map(|d| &d.id)
                        .collect()
                };
                acc.truncations.insert(ctx, ids.len() > MAX_MATCHES);
                prefix_matches.insert(
                    ctx,
                    Value::Array(
                        ids.into_iter()
                            .take(MAX_MATCHES)
                            .map(|id| json!({"ID": id}))
                            .collect(),
                    ),
                );
            }
            _ => {}
        }
    }
    let mut matches: Map<String, Value> = prefix_matches
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    for (ctx, mut found) in acc.matches {
        // Best first: earliest match, then shortest name, then by name.
        found.sort_by(|a, b| (a.score, a.id.len(), &a.id).cmp(&(b.score, b.id.len(), &b.id)));
        matches.insert(
            ctx.to_string(),
            Value::Array(found.iter().map(FuzzyMatch::to_json).collect()),
        );
    }
    json!({
        "Matches": matches,
        "Truncations": acc.truncations,
        "Index": t.max_index(&contexts.iter().map(|c| context_table(c)).collect::<Vec<_>>()),
    })
}
