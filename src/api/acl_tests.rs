//! ACLs through the API. The matrix test reads every route the router registers from the API
//! sources and checks, route by route, that a token without the route's capability gets 403
//! `Permission denied` and one with it (or a management token) does not, so an endpoint added
//! without a rule fails here. Around it: the one-time bootstrap and its reset file, policy
//! errors with positions, roles, token self, expiry, and a token scoped to another namespace.

use super::acl_rules::{rule_for, Rule};
use super::tests::{start_with, TestAgent};
use crate::client::ClientConfig;
use crate::server::acl::AclConfig;
use crate::server::ServerConfig;
use axum::http::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Every `(method, path)` the API modules register, read from their sources.
fn registered_routes() -> Vec<(Method, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("src/api")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            n.ends_with(".rs") && !n.ends_with("tests.rs")
        })
        .collect();
    files.sort();
    for f in files {
        let src = std::fs::read_to_string(&f).expect("source");
        let mut rest = src.as_str();
        while let Some(at) = rest.find(".route(") {
            let body = &rest[at + ".route(".len()..];
            // The call's arguments: up to the matching parenthesis.
            let mut depth = 1;
            let mut end = body.len();
            let mut in_str = false;
            for (i, c) in body.char_indices() {
                match c {
                    '"' => in_str = !in_str,
                    '(' if !in_str => depth += 1,
                    ')' if !in_str => {
                        depth -= 1;
                        if depth == 0 {
                            end = i;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &body[..end];
            rest = &body[end..];
            let Some(q1) = call.find('"') else { continue };
            let Some(q2) = call[q1 + 1..].find('"') else {
                continue;
            };
            let path = call[q1 + 1..q1 + 1 + q2].to_string();
            let after = &call[q1 + 2 + q2..];
            for (name, m) in [
                ("get(", Method::GET),
                ("put(", Method::PUT),
                ("post(", Method::POST),
                ("delete(", Method::DELETE),
            ] {
                let found = after.match_indices(name).any(|(i, _)| {
                    i == 0 || !after[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if found {
                    out.push((m, path.clone()));
                }
            }
        }
    }
    out
}

pub(super) async fn acl_agent(config: AclConfig) -> TestAgent {
    start_with(
        1,
        ServerConfig {
            acl: AclConfig {
                enabled: true,
                ..config
            },
            ..Default::default()
        },
        ClientConfig::default(),
    )
    .await
}

pub(super) async fn call(
    a: &TestAgent,
    method: &Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = a
        .http
        .request(method.clone(), format!("{}{path}", a.base))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.header("X-Nomad-Token", t);
    }
    if let Some(b) = body {
        req = req.json(b);
    } else if *method != Method::GET && *method != Method::DELETE {
        req = req.body("{}");
    }
    let r = req.send().await.expect("request");
    let code = r.status().as_u16();
    // Streaming endpoints (monitor, events, follow) never end: read what is there, briefly.
    let text = tokio::time::timeout(Duration::from_millis(300), r.text())
        .await
        .ok()
        .and_then(|t| t.ok())
        .unwrap_or_default();
    (code, text)
}

pub(super) async fn bootstrap(a: &TestAgent) -> String {
    let (code, body) = call(a, &Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("token json");
    assert_eq!(v["Type"], "management");
    v["SecretID"].as_str().expect("secret").to_string()
}

pub(super) async fn policy(a: &TestAgent, mgmt: &str, name: &str, rules: &str) {
    let (code, body) = call(
        a,
        &Method::PUT,
        &format!("/v1/acl/policy/{name}"),
        Some(mgmt),
        Some(&json!({"Name": name, "Rules": rules})),
    )
    .await;
    assert_eq!(code, 200, "policy {name}: {body}");
}

pub(super) async fn token(a: &TestAgent, mgmt: &str, policies: &[&str]) -> String {
    let (code, body) = call(
        a,
        &Method::PUT,
        "/v1/acl/token",
        Some(mgmt),
        Some(&json!({"Type": "client", "Policies": policies})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("token");
    v["SecretID"].as_str().expect("secret").to_string()
}

/// The rules of a policy that grants exactly what `rule` asks for.
fn grant(rule: Rule) -> Option<String> {
    Some(match rule {
        Rule::Ns(c) => format!("namespace \"default\" {{\n  capabilities = [\"{c}\"]\n}}\n"),
        Rule::NsAny => "namespace \"default\" {\n  capabilities = [\"list-jobs\"]\n}\n".into(),
        Rule::NodeRead => "node {\n  policy = \"read\"\n}\n".into(),
        Rule::NodeWrite => "node {\n  policy = \"write\"\n}\n".into(),
        Rule::AgentRead => "agent {\n  policy = \"read\"\n}\n".into(),
        Rule::AgentWrite => "agent {\n  policy = \"write\"\n}\n".into(),
        Rule::OperatorRead => "operator {\n  policy = \"read\"\n}\n".into(),
        Rule::OperatorWrite => "operator {\n  policy = \"write\"\n}\n".into(),
        Rule::Management | Rule::Public | Rule::Handler => return None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_matrix_every_route_needs_its_capability() {
    let routes = registered_routes();
    assert!(
        routes.len() > 50,
        "the route scan found too little: {routes:?}"
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, p)| rule_for(m, p).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes without an ACL rule: {missing:?}"
    );

    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    // A token whose only policy is about another namespace: it may do nothing here.
    policy(
        &a,
        &mgmt,
        "elsewhere",
        "namespace \"other\" {\n  policy = \"write\"\n}\n",
    )
    .await;
    let nothing = token(&a, &mgmt, &["elsewhere"]).await;

    let mut granted: std::collections::HashMap<String, String> = Default::default();
    let mut checked = 0;
    for (method, path) in &routes {
        let Some(rule) = rule_for(method, path) else {
            continue;
        };
        let url = path
            .replace(":id", "00000000-0000-0000-0000-000000000000")
            .replace(":name", "no-such-thing");
        let what = format!("{method} {path} ({rule:?})");
        match rule {
            Rule::Public => {
                let (code, body) = call(&a, method, &url, None, None).await;
                assert_ne!(code, 403, "{what} is public: {body}");
                continue;
            }
            Rule::Handler => continue,
            _ => {}
        }
        for (who, tok) in [
            ("anonymous", None),
            ("a token for another namespace", Some(nothing.as_str())),
        ] {
            let (code, body) = call(&a, method, &url, tok, None).await;
            assert_eq!(code, 403, "{what} answered {who} with {code}: {body}");
            assert_eq!(body, "Permission denied", "{what}");
        }
        let (code, body) = call(&a, method, &url, Some(&mgmt), None).await;
        assert_ne!(code, 403, "{what} refused a management token: {body}");
        if let Some(rules) = grant(rule) {
            let tok = match granted.get(&rules) {
                Some(t) => t.clone(),
                None => {
                    let name = format!("grant-{}", granted.len());
                    policy(&a, &mgmt, &name, &rules).await;
                    let t = token(&a, &mgmt, &[&name]).await;
                    granted.insert(rules.clone(), t.clone());
                    t
                }
            };
            let (code, body) = call(&a, method, &url, Some(&tok), None).await;
            assert_ne!(
                code, 403,
                "{what} refused a token granting exactly it: {body}"
            );
        }
        checked += 1;
    }
    assert!(checked > 40, "only {checked} routes checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_is_once_until_the_reset_file_names_its_index() {
    let reset =
        std::env::temp_dir().join(format!("caravan-acl-reset-{}", caravan_structs::new_id()));
    let a = acl_agent(AclConfig {
        bootstrap_reset_file: Some(reset.clone()),
        ..Default::default()
    })
    .await;
    let first = bootstrap(&a).await;
    let (code, body) = call(&a, &Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.starts_with("ACL bootstrap already done (reset index: "),
        "{body}"
    );
    let index: String = body
        .trim_start_matches("ACL bootstrap already done (reset index: ")
        .trim_end_matches(')')
        .to_string();
    std::fs::write(&reset, "999999").expect("reset file");
    let (code, _) = call(&a, &Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 400, "a reset file with another index changes nothing");
    std::fs::write(&reset, &index).expect("reset file");
    let second = bootstrap(&a).await;
    assert_ne!(first, second);
    // An operator-chosen secret must be a UUID.
    std::fs::write(&reset, "0").expect("reset file");
    let _ = std::fs::remove_file(&reset);
    let (code, _) = call(&a, &Method::GET, "/v1/acl/token/self", Some(&first), None).await;
    assert_eq!(code, 200, "the first token still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_roles_tokens_and_expiry() {
    let a = acl_agent(AclConfig {
        token_min_expiration_ttl: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    let mgmt = bootstrap(&a).await;

    // A policy with a syntax error: 400 naming line and column, nothing stored.
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/policy/broken",
        Some(&mgmt),
        Some(&json!({"Name": "broken", "Rules": "namespace \"default\" {\n  policy = \"read\"\n"})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Failed to parse ACL policy") && body.contains(':'),
        "{body}"
    );
    let (code, _) = call(&a, &Method::GET, "/v1/acl/policy/broken", Some(&mgmt), None).await;
    assert_eq!(code, 404);

    policy(
        &a,
        &mgmt,
        "readonly",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    policy(
        &a,
        &mgmt,
        "prod-write",
        "namespace \"prod\" {\n  policy = \"write\"\n}\n",
    )
    .await;
    // A role bundles policies; a token gets them through it.
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/role",
        Some(&mgmt),
        Some(&json!({"Name": "viewers", "Policies": [{"Name": "readonly"}]})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/role",
        Some(&mgmt),
        Some(&json!({"Name": "ghost", "Policies": [{"Name": "no-such-policy"}]})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/token",
        Some(&mgmt),
        Some(&json!({"Name": "viewer", "Type": "client", "Roles": [{"Name": "viewers"}]})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let viewer: Value = serde_json::from_str(&body).unwrap();
    let viewer_secret = viewer["SecretID"].as_str().unwrap().to_string();
    let (code, _) = call(&a, &Method::GET, "/v1/jobs", Some(&viewer_secret), None).await;
    assert_eq!(code, 200, "read through the role");
    let (code, body) = call(
        &a,
        &Method::GET,
        "/v1/acl/token/self",
        Some(&viewer_secret),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"viewer\""), "{body}");
    // Listings never show secrets; a client token cannot list tokens.
    let (code, body) = call(&a, &Method::GET, "/v1/acl/tokens", Some(&mgmt), None).await;
    assert_eq!(code, 200);
    assert!(!body.contains(&viewer_secret), "{body}");
    let (code, _) = call(
        &a,
        &Method::GET,
        "/v1/acl/tokens",
        Some(&viewer_secret),
        None,
    )
    .await;
    assert_eq!(code, 403);
    // The viewer sees the one policy it holds.
    let (code, body) = call(
        &a,
        &Method::GET,
        "/v1/acl/policies",
        Some(&viewer_secret),
        None,
    )
    .await;
    assert_eq!(code, 200);
    assert!(
        body.contains("readonly") && !body.contains("prod-write"),
        "{body}"
    );

    // A token for another namespace cannot register here, and nothing is registered.
    let prod = token(&a, &mgmt, &["prod-write"]).await;
    let job = super::tests::sleeper_job("guarded", 1);
    let (code, body) = call(&a, &Method::PUT, "/v1/jobs", Some(&prod), Some(&job)).await;
    assert_eq!((code, body.as_str()), (403, "Permission denied"));
    let (_, list) = call(&a, &Method::GET, "/v1/jobs", Some(&mgmt), None).await;
    assert_eq!(list.trim(), "[]", "nothing registered");

    // Unknown and expired tokens.
    let (code, body) = call(&a, &Method::GET, "/v1/jobs", Some("not-a-token"), None).await;
    assert_eq!((code, body.as_str()), (403, "ACL token not found"));
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/token",
        Some(&mgmt),
        Some(&json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": 300_000_000})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let short: Value = serde_json::from_str(&body).unwrap();
    assert!(short["ExpirationTime"].is_string(), "{short}");
    let short = short["SecretID"].as_str().unwrap().to_string();
    let (code, _) = call(&a, &Method::GET, "/v1/jobs", Some(&short), None).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (code, body) = call(&a, &Method::GET, "/v1/jobs", Some(&short), None).await;
    assert_eq!((code, body.as_str()), (403, "ACL token expired"));
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/acl/token",
        Some(&mgmt),
        Some(&json!({"Type": "client", "Policies": ["readonly"], "ExpirationTTL": 1_000_000})),
    )
    .await;
    assert_eq!(code, 400, "below the minimum TTL: {body}");

    // The anonymous policy opens what it grants to requests without a token.
    let (code, _) = call(&a, &Method::GET, "/v1/jobs", None, None).await;
    assert_eq!(code, 403);
    policy(
        &a,
        &mgmt,
        "anonymous",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let (code, _) = call(&a, &Method::GET, "/v1/jobs", None, None).await;
    assert_eq!(code, 200);
    // Deleting the role takes its policies away from the token.
    let roles: Value = serde_json::from_str(
        &call(&a, &Method::GET, "/v1/acl/roles", Some(&mgmt), None)
            .await
            .1,
    )
    .unwrap();
    let id = roles[0]["ID"].as_str().unwrap().to_string();
    let (code, _) = call(
        &a,
        &Method::DELETE,
        &format!("/v1/acl/role/{id}"),
        Some(&mgmt),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let (code, _) = call(&a, &Method::GET, "/v1/node/x", Some(&viewer_secret), None).await;
    assert_eq!(code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_endpoints_say_when_acls_are_off() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let (code, body) = call(&a, &Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!((code, body.as_str()), (400, "ACL support disabled"));
    let (code, _) = call(&a, &Method::GET, "/v1/jobs", Some("anything"), None).await;
    assert_eq!(code, 200, "tokens are not checked while ACLs are off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_snapshot_needs_the_migrate_token_or_read_fs() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    let alloc = "00000000-0000-0000-0000-000000000001";
    let path = format!("/v1/client/allocation/{alloc}/snapshot");
    let (code, body) = call(&a, &Method::GET, &path, None, None).await;
    assert_eq!((code, body.as_str()), (403, "Permission denied"));
    let wrong = crate::util::migrate_token("another node's secret", alloc);
    let (code, _) = call(&a, &Method::GET, &path, Some(&wrong), None).await;
    assert_eq!(code, 403, "a token from another node's secret");
    let secret = a.clients[0].shared.node().secret_id.clone();
    let token = crate::util::migrate_token(&secret, alloc);
    let (code, _) = call(&a, &Method::GET, &path, Some(&token), None).await;
    assert_eq!(
        code, 404,
        "the migrate token passes; the allocation is unknown here"
    );
    let (code, _) = call(&a, &Method::GET, &path, Some(&mgmt), None).await;
    assert_eq!(code, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_across_namespaces_show_only_what_the_token_may_read() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/namespace/prod",
        Some(&mgmt),
        Some(&json!({"Name": "prod"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    for (id, ns) in [("here", "default"), ("there", "prod")] {
        let mut job = super::tests::sleeper_job(id, 1);
        job["Job"]["Namespace"] = json!(ns);
        let (code, body) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&job)).await;
        assert_eq!(code, 200, "{body}");
    }
    policy(
        &a,
        &mgmt,
        "default-read",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["default-read"]).await;
    let ids = |body: &str| -> Vec<String> {
        serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|j| j["ID"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (code, body) = call(
        &a,
        &Method::GET,
        "/v1/jobs?namespace=*",
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(ids(&body), vec!["here"], "only the readable namespace");
    let (code, body) = call(&a, &Method::GET, "/v1/jobs?namespace=*", Some(&mgmt), None).await;
    assert_eq!(code, 200);
    let mut all = ids(&body);
    all.sort();
    assert_eq!(all, vec!["here", "there"]);
    let (code, _) = call(
        &a,
        &Method::GET,
        "/v1/jobs?namespace=prod",
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(code, 403);
    // Allocations and evaluations are filtered the same way.
    let (code, body) = call(
        &a,
        &Method::GET,
        "/v1/evaluations?namespace=*",
        Some(&reader),
        None,
    )
    .await;
    assert_eq!(code, 200);
    let evals: Value = serde_json::from_str(&body).unwrap_or_default();
    assert!(
        evals
            .as_array()
            .is_some_and(|l| !l.is_empty() && l.iter().all(|e| e["Namespace"] == "default")),
        "{evals}"
    );
    policy(
        &a,
        &mgmt,
        "elsewhere",
        "namespace \"other\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let nobody = token(&a, &mgmt, &["elsewhere"]).await;
    let (code, _) = call(
        &a,
        &Method::GET,
        "/v1/allocations?namespace=*",
        Some(&nobody),
        None,
    )
    .await;
    assert_eq!(code, 403, "no namespace that exists allows it");
}

/// Reads an event stream for `for_ms` and returns the (Topic, Namespace) of every event seen.
async fn stream_events(
    a: &TestAgent,
    path: &str,
    token: &str,
    for_ms: u64,
) -> (u16, Vec<(String, String)>) {
    let mut r = a
        .http
        .get(format!("{}{path}", a.base))
        .header("X-Nomad-Token", token)
        .send()
        .await
        .expect("request");
    let code = r.status().as_u16();
    let mut seen = Vec::new();
    let mut buf = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(for_ms);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
    for line in buf.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_default();
        for e in v["Events"].as_array().cloned().unwrap_or_default() {
            seen.push((
                e["Topic"].as_str().unwrap_or_default().to_string(),
                e["Namespace"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    (code, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_only_what_the_token_may_read() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/namespace/prod",
        Some(&mgmt),
        Some(&json!({"Name": "prod"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    for (id, ns) in [("here", "default"), ("there", "prod")] {
        let mut job = super::tests::sleeper_job(id, 1);
        job["Job"]["Namespace"] = json!(ns);
        let (code, body) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&job)).await;
        assert_eq!(code, 200, "{body}");
    }
    policy(
        &a,
        &mgmt,
        "default-read",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["default-read"]).await;
    let (code, seen) =
        stream_events(&a, "/v1/event/stream?namespace=*&index=1", &reader, 1500).await;
    assert_eq!(code, 200);
    assert!(
        seen.iter().any(|(t, ns)| t == "Job" && ns == "default"),
        "{seen:?}"
    );
    assert!(
        !seen.iter().any(|(_, ns)| ns == "prod"),
        "another namespace leaked: {seen:?}"
    );
    assert!(
        !seen.iter().any(|(t, _)| t == "Node"),
        "node events need node read: {seen:?}"
    );
    let (_, all) = stream_events(&a, "/v1/event/stream?namespace=*&index=1", &mgmt, 1500).await;
    assert!(all.iter().any(|(_, ns)| ns == "prod"), "{all:?}");

    policy(&a, &mgmt, "nodes", "node {\n  policy = \"read\"\n}\n").await;
    let nodes = token(&a, &mgmt, &["nodes"]).await;
    let (code, _) = stream_events(&a, "/v1/event/stream?topic=Job", &nodes, 200).await;
    assert_eq!(code, 403, "a node reader may not follow jobs");
    let (code, seen) = stream_events(&a, "/v1/event/stream?topic=Node&index=1", &nodes, 1500).await;
    assert_eq!(code, 200);
    assert!(
        !seen.is_empty() && seen.iter().all(|(t, _)| t == "Node"),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_show_only_what_the_token_may_read() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/namespace/prod",
        Some(&mgmt),
        Some(&json!({"Name": "prod"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    for (id, ns) in [("findme-here", "default"), ("findme-there", "prod")] {
        let mut job = super::tests::sleeper_job(id, 1);
        job["Job"]["Namespace"] = json!(ns);
        let (code, body) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&job)).await;
        assert_eq!(code, 200, "{body}");
    }
    policy(
        &a,
        &mgmt,
        "default-read",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["default-read"]).await;
    // The namespace is in the body, not the query: still checked.
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/search",
        Some(&reader),
        Some(&json!({"Prefix": "findme", "Context": "jobs", "Namespace": "prod"})),
    )
    .await;
    assert_eq!((code, body.as_str()), (403, "Permission denied"));
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/search/fuzzy",
        Some(&reader),
        Some(&json!({"Text": "findme", "Context": "jobs", "Namespace": "*"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("findme-here") && !body.contains("findme-there"),
        "{body}"
    );
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/search/fuzzy",
        Some(&mgmt),
        Some(&json!({"Text": "findme", "Context": "jobs", "Namespace": "*"})),
    )
    .await;
    assert_eq!(code, 200);
    assert!(body.contains("findme-there"), "{body}");
    // Nodes need node read.
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/search",
        Some(&reader),
        Some(&json!({"Prefix": "", "Context": "all"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(v["Matches"]["nodes"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_named_by_id_are_checked_in_their_own_namespace() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/namespace/prod",
        Some(&mgmt),
        Some(&json!({"Name": "prod"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let mut job = super::tests::sleeper_job("secretive", 1);
    job["Job"]["Namespace"] = json!("prod");
    let (code, body) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&job)).await;
    assert_eq!(code, 200, "{body}");
    let reg: Value = serde_json::from_str(&body).unwrap_or_default();
    let eval = reg["EvalID"].as_str().unwrap_or_default().to_string();
    let alloc_of = || async {
        let (_, body) = call(
            &a,
            &Method::GET,
            "/v1/job/secretive/allocations?namespace=prod",
            Some(&mgmt),
            None,
        )
        .await;
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v[0]["ID"].as_str().unwrap_or_default().to_string()
    };
    crate::wait_for!(!alloc_of().await.is_empty());
    let alloc = alloc_of().await;
    policy(
        &a,
        &mgmt,
        "default-write",
        "namespace \"default\" {\n  policy = \"write\"\n}\n",
    )
    .await;
    let other = token(&a, &mgmt, &["default-write"]).await;
    for (method, path) in [
        (Method::GET, format!("/v1/allocation/{alloc}")),
        (Method::GET, format!("/v1/allocation/{}", &alloc[..8])),
        (Method::PUT, format!("/v1/allocation/{alloc}/stop")),
        (Method::GET, format!("/v1/evaluation/{eval}")),
        (Method::GET, format!("/v1/client/fs/ls/{}", &alloc[..8])),
        (Method::GET, format!("/v1/client/allocation/{alloc}/stats")),
    ] {
        let (code, body) = call(&a, &method, &path, Some(&other), None).await;
        assert_eq!(code, 403, "{method} {path}: {body}");
    }
    let (code, body) = call(
        &a,
        &Method::GET,
        &format!("/v1/allocation/{alloc}"),
        Some(&mgmt),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        call(
            &a,
            &Method::GET,
            "/v1/job/secretive/allocations?namespace=prod",
            Some(&mgmt),
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_objects_have_events_for_management_only() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    policy(
        &a,
        &mgmt,
        "reader",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["reader"]).await;
    let mut r = a
        .http
        .get(format!(
            "{}/v1/event/stream?topic=ACLToken&topic=ACLPolicy&index=1",
            a.base
        ))
        .header("X-Nomad-Token", &mgmt)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, r.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("\"ACLPolicyUpserted\"") && text.contains("\"reader\""),
        "{text}"
    );
    assert!(text.contains("\"ACLTokenUpserted\""), "{text}");
    assert!(
        !text.contains(&reader) && !text.contains(&mgmt),
        "secrets never stream: {text}"
    );
    let (code, _) = stream_events(&a, "/v1/event/stream?topic=ACLPolicy", &reader, 200).await;
    assert_eq!(code, 403, "only management follows ACL objects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_cover_namespaces_node_pools_and_variables() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    for (path, body) in [
        ("/v1/namespace/prod", json!({"Name": "prod"})),
        ("/v1/node/pool/gpu", json!({"Name": "gpu"})),
        (
            "/v1/var/app/config",
            json!({"Path": "app/config", "Items": {"k": "v"}}),
        ),
        (
            "/v1/var/other/config?namespace=prod",
            json!({"Path": "other/config", "Namespace": "prod", "Items": {"k": "v"}}),
        ),
    ] {
        let (code, text) = call(&a, &Method::PUT, path, Some(&mgmt), Some(&body)).await;
        assert!(code == 200 || code == 204, "{path}: {code} {text}");
    }
    let search = |token: String, body: Value| {
        let a = &a;
        async move {
            let (code, text) = call(a, &Method::PUT, "/v1/search", Some(&token), Some(&body)).await;
            assert_eq!(code, 200, "{text}");
            serde_json::from_str::<Value>(&text).unwrap_or_default()
        }
    };
    let m = search(
        mgmt.clone(),
        json!({"Prefix": "pr", "Context": "namespaces"}),
    )
    .await;
    assert_eq!(m["Matches"]["namespaces"], json!(["prod"]), "{m}");
    let m = search(
        mgmt.clone(),
        json!({"Prefix": "g", "Context": "node_pools"}),
    )
    .await;
    assert_eq!(m["Matches"]["node_pools"], json!(["gpu"]), "{m}");
    let m = search(mgmt.clone(), json!({"Prefix": "app", "Context": "vars"})).await;
    assert_eq!(m["Matches"]["vars"], json!(["app/config"]), "{m}");
    let m = search(
        mgmt.clone(),
        json!({"Prefix": "", "Context": "vars", "Namespace": "*"}),
    )
    .await;
    assert_eq!(
        m["Matches"]["vars"].as_array().map(|l| l.len()),
        Some(2),
        "{m}"
    );
    let (code, text) = call(
        &a,
        &Method::PUT,
        "/v1/search/fuzzy",
        Some(&mgmt),
        Some(&json!({"Text": "config", "Context": "vars", "Namespace": "*"})),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    assert!(
        text.contains("app/config") && text.contains("other/config"),
        "{text}"
    );

    // A reader of the default namespace without variable rules sees neither prod nor variables.
    policy(
        &a,
        &mgmt,
        "default-read",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["default-read"]).await;
    let m = search(reader.clone(), json!({"Prefix": "", "Context": "all"})).await;
    assert_eq!(m["Matches"]["namespaces"], json!(["default"]), "{m}");
    assert_eq!(m["Matches"]["vars"], json!([]), "{m}");
    assert_eq!(m["Matches"]["node_pools"], json!([]), "{m}");
}
