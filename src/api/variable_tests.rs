//! Variables through the API and CLI: CRUD and listing, check-and-set conflicts answered with
//! 409 and the current variable, locks that keep a second holder out until released or lapsed,
//! items held only as ciphertext in the state, bad paths and bodies refused with nothing
//! stored, and ACL path rules.

use super::jobops_tests::cli;
use super::{router, AgentInfo, AppState};
use crate::server::acl::AclConfig;
use crate::server::{Server, ServerConfig};
use crate::state::Table;
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Agent {
    base: String,
    http: reqwest::Client,
    server: Arc<Server>,
}

/// A server (no clients: variables need none) with its HTTP API on a free port.
async fn agent(acl: bool) -> Agent {
    let server = Server::new(ServerConfig {
        acl: AclConfig {
            enabled: acl,
            ..Default::default()
        },
        ..Default::default()
    });
    server.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(AppState {
        server: server.clone(),
        client: None,
        agent: Arc::new(AgentInfo::default()),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Agent {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        server,
    }
}

impl Agent {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .timeout(Duration::from_secs(10));
        if let Some(t) = token {
            req = req.header("X-Nomad-Token", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let code = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        let v = serde_json::from_str(&text).unwrap_or(Value::Null);
        (code, v, text)
    }

    async fn put(&self, path: &str, body: Value) -> (u16, Value, String) {
        self.call(Method::PUT, path, None, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value, String) {
        self.call(Method::GET, path, None, None).await
    }

    fn stored(&self) -> usize {
        self.server.store.snapshot().variables.len()
    }
}

fn items(kv: &[(&str, &str)]) -> Value {
    json!({ "Items": kv.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn variables_crud_check_and_set_and_listing() {
    let a = agent(false).await;
    let (code, v, text) = a
        .put("/v1/var/app/web/config?cas=0", items(&[("port", "8080")]))
        .await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(v["Path"], "app/web/config");
    assert_eq!(v["Namespace"], "default");
    assert_eq!(v["Items"]["port"], "8080");
    let first = v["ModifyIndex"].as_u64().expect("index");
    assert_eq!(v["CreateIndex"].as_u64(), Some(first));

    let (code, v, _) = a.get("/v1/var/app/web/config").await;
    assert_eq!(code, 200);
    assert_eq!(v["Items"], json!({"port": "8080"}));
    assert!(v["CreateTime"].as_i64().unwrap_or(0) > 0);

    // cas=0 again: it exists now, so 409 with the current variable, and nothing changes.
    let (code, v, text) = a
        .put("/v1/var/app/web/config?cas=0", items(&[("port", "9")]))
        .await;
    assert_eq!(code, 409, "{text}");
    assert_eq!(v["Items"]["port"], "8080");
    assert_eq!(v["ModifyIndex"].as_u64(), Some(first));
    // A stale index likewise.
    let (code, v, _) = a
        .put(
            &format!("/v1/var/app/web/config?cas={}", first + 100),
            items(&[("port", "9")]),
        )
        .await;
    assert_eq!(code, 409);
    assert_eq!(v["Items"]["port"], "8080");
    // The right index writes.
    let (code, v, text) = a
        .put(
            &format!("/v1/var/app/web/config?cas={first}"),
            items(&[("port", "9090"), ("host", "h")]),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let second = v["ModifyIndex"].as_u64().expect("index");
    assert!(second > first);
    assert_eq!(v["CreateIndex"].as_u64(), Some(first));
    // Without cas, a plain overwrite.
    let (code, _, _) = a.put("/v1/var/app/db", items(&[("user", "u")])).await;
    assert_eq!(code, 200);
    let (code, _, _) = a
        .put("/v1/var/other/x?namespace=prod", items(&[("k", "v")]))
        .await;
    assert_eq!(code, 200);

    let (_, list, _) = a.get("/v1/vars?prefix=app/").await;
    let paths: Vec<&str> = list
        .as_array()
        .map(|l| l.iter().filter_map(|v| v["Path"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(paths, vec!["app/db", "app/web/config"]);
    assert!(list[0].get("Items").is_none(), "lists carry metadata only");
    let (_, all, _) = a.get("/v1/vars?namespace=*").await;
    assert_eq!(all.as_array().map(|l| l.len()), Some(3));
    let (_, prod, _) = a.get("/v1/vars?namespace=prod").await;
    assert_eq!(prod[0]["Path"], "other/x");
    assert_eq!(prod[0]["Namespace"], "prod");

    // Delete with a stale cas: 409 with the current one; then with the right one: 204.
    let (code, v, _) = a
        .call(Method::DELETE, "/v1/var/app/web/config?cas=1", None, None)
        .await;
    assert_eq!(code, 409);
    assert_eq!(v["ModifyIndex"].as_u64(), Some(second));
    let (code, _, _) = a
        .call(
            Method::DELETE,
            &format!("/v1/var/app/web/config?cas={second}"),
            None,
            None,
        )
        .await;
    assert_eq!(code, 204);
    let (code, _, text) = a.get("/v1/var/app/web/config").await;
    assert_eq!((code, text.as_str()), (404, "variable not found"));
    let (code, _, _) = a.call(Method::DELETE, "/v1/var/app/db", None, None).await;
    assert_eq!(code, 204);
    assert_eq!(a.stored(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_keeps_a_second_holder_out_until_released_or_lapsed() {
    let a = agent(false).await;
    a.put("/v1/var/locks/leader", items(&[("owner", "none")]))
        .await;
    let lock = json!({"Lock": {"TTL": "10s", "LockDelay": "5s"}});
    let (code, v, text) = a
        .put("/v1/var/locks/leader?lock-acquire", lock.clone())
        .await;
    assert_eq!(code, 200, "{text}");
    let id = v["Lock"]["ID"].as_str().expect("lock id").to_string();
    assert_eq!(v["Lock"]["TTL"], "10s");
    assert_eq!(v["Items"]["owner"], "none", "taking a lock keeps the items");

    // Held: a second acquire, a write and a delete without the lock ID all conflict.
    let (code, _, _) = a
        .put("/v1/var/locks/leader?lock-acquire", lock.clone())
        .await;
    assert_eq!(code, 409);
    let (code, _, _) = a
        .put("/v1/var/locks/leader", items(&[("owner", "me")]))
        .await;
    assert_eq!(code, 409);
    let (code, _, _) = a
        .call(Method::DELETE, "/v1/var/locks/leader", None, None)
        .await;
    assert_eq!(code, 409);
    // The holder may write, renew; a stranger may not renew or release.
    let mut by_holder = items(&[("owner", "holder")]);
    by_holder["Lock"] = json!({"ID": id});
    let (code, v, text) = a.put("/v1/var/locks/leader", by_holder).await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(v["Lock"]["ID"], id.as_str());
    let (code, _, text) = a
        .put(
            "/v1/var/locks/leader?lock-renew",
            json!({"Lock": {"ID": id}}),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let (code, _, _) = a
        .put(
            "/v1/var/locks/leader?lock-renew",
            json!({"Lock": {"ID": "someone-else"}}),
        )
        .await;
    assert_eq!(code, 409);
    let (code, _, _) = a
        .put(
            "/v1/var/locks/leader?lock-release",
            json!({"Lock": {"ID": "someone-else"}}),
        )
        .await;
    assert_eq!(code, 409);
    // Released: the next one gets it.
    let (code, v, text) = a
        .put(
            "/v1/var/locks/leader?lock-release",
            json!({"Lock": {"ID": id}}),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    assert!(v.get("Lock").is_none(), "{v}");
    let (code, v, text) = a
        .put("/v1/var/locks/leader?lock-acquire", lock.clone())
        .await;
    assert_eq!(code, 200, "{text}");
    let second = v["Lock"]["ID"].as_str().unwrap_or_default().to_string();
    assert_ne!(second, id);
    assert_eq!(v["Items"]["owner"], "holder");

    // Not renewed: after twice the TTL and the lock delay, the servers release it. The timer
    // pass is driven with a clock set past that point rather than waited for.
    let (code, _, _) = a
        .put("/v1/var/locks/leader?lock-acquire", lock.clone())
        .await;
    assert_eq!(code, 409, "still held");
    assert_eq!(a.server.var_locks_tick(Instant::now()), 0);
    assert_eq!(
        a.server
            .var_locks_tick(Instant::now() + Duration::from_secs(26)),
        1
    );
    let (code, v, _) = a.get("/v1/var/locks/leader").await;
    assert_eq!(code, 200);
    assert!(v.get("Lock").is_none(), "{v}");
    let (code, _, _) = a
        .put(
            "/v1/var/locks/leader?lock-renew",
            json!({"Lock": {"ID": second}}),
        )
        .await;
    assert_eq!(code, 409, "a lapsed lock cannot be renewed");
    let (code, v, text) = a.put("/v1/var/locks/leader?lock-acquire", lock).await;
    assert_eq!(code, 200, "{text}");
    assert!(v["Lock"]["ID"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_holds_only_ciphertext() {
    let a = agent(false).await;
    let secret = "correct-horse-battery-staple";
    let (code, _, _) = a
        .put("/v1/var/db/creds", items(&[("password", secret)]))
        .await;
    assert_eq!(code, 200);
    let snap = a.server.store.snapshot();
    let stored = snap.variable("default", "db/creds").expect("stored");
    assert!(!stored.key_id.is_empty());
    assert!(
        !stored
            .data
            .windows(secret.len())
            .any(|w| w == secret.as_bytes()),
        "raw item bytes in the table"
    );
    let dump = serde_json::to_string(&*stored).unwrap_or_default();
    assert!(
        !dump.contains(secret) && !dump.contains("password"),
        "{dump}"
    );
    // And it still reads back.
    let (_, v, _) = a.get("/v1/var/db/creds").await;
    assert_eq!(v["Items"]["password"], secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_and_bodies_are_refused_and_nothing_is_stored() {
    let a = agent(false).await;
    let before = a.server.store.snapshot().table_index(Table::Variables);
    let ok = items(&[("k", "v")]);
    let long = "a".repeat(129);
    for (path, body, why) in [
        ("/v1/var/..%2Fescape", ok.clone(), "invalid path"),
        ("/v1/var/a%2F..%2Fb", ok.clone(), "invalid path"),
        ("/v1/var/a.b", ok.clone(), "invalid path"),
        ("/v1/var/a%2F%2Fb", ok.clone(), "doubled"),
        ("/v1/var/a%20b", ok.clone(), "invalid path"),
        ("/v1/var/nomad", ok.clone(), "reserved"),
        ("/v1/var/nomad/secrets", ok.clone(), "nomad/jobs"),
        (&format!("/v1/var/{long}"), ok.clone(), "invalid path"),
        ("/v1/var/x", json!({"Items": {}}), "missing required Items"),
        ("/v1/var/x", json!({}), "missing required Items"),
        ("/v1/var/x", json!({"Items": {"n": 1}}), "decode"),
        (
            "/v1/var/x",
            json!({"Items": {"k": "x".repeat(65 * 1024)}}),
            "64KiB",
        ),
        ("/v1/var/x?namespace=*", ok.clone(), "wildcard"),
        ("/v1/var/x?cas=abc", ok.clone(), "can not parse cas"),
        (
            "/v1/var/x?cas=1&lock-acquire",
            ok.clone(),
            "CAS can't be used",
        ),
        (
            "/v1/var/x?lock-acquire&lock-release",
            ok.clone(),
            "multiple lock",
        ),
        (
            "/v1/var/x?lock-acquire",
            json!({"Lock": {"TTL": "1s"}}),
            "TTL must be between",
        ),
        (
            "/v1/var/x?lock-acquire",
            json!({"Lock": {"TTL": "soon"}}),
            "decode",
        ),
        (
            "/v1/var/x?lock-release",
            json!({"Lock": {}}),
            "missing lock",
        ),
        (
            "/v1/var/x",
            json!({"Items": {"k": "v"}, "Lock": {"TTL": "10s"}}),
            "lock definition",
        ),
    ] {
        let (code, _, text) = a.put(path, body).await;
        assert_eq!(code, 400, "{path}: {text}");
        assert!(text.contains(why), "{path}: {text:?} lacks {why:?}");
    }
    let r = a
        .http
        .put(format!("{}/v1/var/x", a.base))
        .body("{not json")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(a.stored(), 0);
    assert_eq!(
        a.server.store.snapshot().table_index(Table::Variables),
        before
    );
}

async fn acl_setup(a: &Agent, rules: &str) -> (String, String) {
    let (code, boot, text) = a.call(Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 200, "{text}");
    let mgmt = boot["SecretID"].as_str().expect("secret").to_string();
    let (code, _, text) = a
        .call(
            Method::PUT,
            "/v1/acl/policy/app-read",
            Some(&mgmt),
            Some(json!({"Name": "app-read", "Rules": rules})),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    let (code, tok, text) = a
        .call(
            Method::PUT,
            "/v1/acl/token",
            Some(&mgmt),
            Some(json!({"Type": "client", "Policies": ["app-read"]})),
        )
        .await;
    assert_eq!(code, 200, "{text}");
    (mgmt, tok["SecretID"].as_str().expect("secret").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_path_rules_decide_who_reads_writes_and_lists() {
    let a = agent(true).await;
    let (mgmt, reader) = acl_setup(
        &a,
        "namespace \"default\" {\n  variables {\n    path \"app/*\" {\n      capabilities = [\"read\"]\n    }\n  }\n}\n",
    )
    .await;
    for p in ["app/x", "other/x"] {
        let (code, _, text) = a
            .call(
                Method::PUT,
                &format!("/v1/var/{p}"),
                Some(&mgmt),
                Some(items(&[("k", "v")])),
            )
            .await;
        assert_eq!(code, 200, "{text}");
    }
    let (code, v, _) = a
        .call(Method::GET, "/v1/var/app/x", Some(&reader), None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["Items"]["k"], "v");
    for (m, p, body) in [
        (Method::PUT, "/v1/var/app/x", Some(items(&[("k", "w")]))),
        (Method::DELETE, "/v1/var/app/x", None),
        (Method::GET, "/v1/var/other/x", None),
        (Method::PUT, "/v1/var/app/x?lock-acquire", Some(json!({}))),
    ] {
        let (code, _, text) = a.call(m.clone(), p, Some(&reader), body).await;
        assert_eq!((code, text.as_str()), (403, "Permission denied"), "{m} {p}");
    }
    // Anonymous and unknown tokens get nothing.
    let (code, _, _) = a.call(Method::GET, "/v1/var/app/x", None, None).await;
    assert_eq!(code, 403);
    let (code, _, text) = a
        .call(Method::GET, "/v1/var/app/x", Some("not-a-token"), None)
        .await;
    assert_eq!(code, 403, "{text}");
    // Lists show only what the token may list (read implies list).
    let (code, list, _) = a.call(Method::GET, "/v1/vars", Some(&reader), None).await;
    assert_eq!(code, 200);
    let paths: Vec<&str> = list
        .as_array()
        .map(|l| l.iter().filter_map(|v| v["Path"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(paths, vec!["app/x"]);
    let (_, list, _) = a.call(Method::GET, "/v1/vars", Some(&mgmt), None).await;
    assert_eq!(list.as_array().map(|l| l.len()), Some(2));
    // Nothing changed through the refusals.
    let (_, v, _) = a
        .call(Method::GET, "/v1/var/app/x", Some(&mgmt), None)
        .await;
    assert_eq!(v["Items"]["k"], "v");
    assert!(v.get("Lock").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_put_get_list_purge() {
    let a = agent(false).await;
    let (code, out, err) = cli(&a.base, &["var", "put", "app/cfg", "user=admin", "port=80"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Created variable \"app/cfg\" with modify index"),
        "{out}"
    );
    // Again without -check-index: Nomad's check-and-set refuses to overwrite.
    let (code, _, err) = cli(&a.base, &["var", "put", "app/cfg", "user=x"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Check-and-Set conflict"), "{err}");
    let (_, v, _) = a.get("/v1/var/app/cfg").await;
    let index = v["ModifyIndex"].as_u64().unwrap_or(0).to_string();
    let (code, out, err) = cli(
        &a.base,
        &["var", "put", "-check-index", &index, "app/cfg", "user=root"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = cli(&a.base, &["var", "put", "-force", "app/other", "a=b"]).await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, _) = cli(&a.base, &["var", "get", "-item", "user", "app/cfg"]).await;
    assert_eq!((code, out.as_str()), (0, "root"));
    let (code, out, _) = cli(&a.base, &["var", "get", "app/cfg"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("Path") && out.contains("app/cfg"), "{out}");
    assert!(
        out.contains("Items") && out.contains("user") && out.contains("root"),
        "{out}"
    );
    let (code, out, _) = cli(&a.base, &["var", "get", "-json", "app/cfg"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["Items"]["user"], "root");
    let (code, _, err) = cli(&a.base, &["var", "get", "nope"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Variable not found"), "{err}");

    let (code, out, _) = cli(&a.base, &["var", "list", "app/"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("Namespace"), "{out}");
    assert!(
        out.contains("app/cfg") && out.contains("app/other"),
        "{out}"
    );

    let (code, out, err) = cli(&a.base, &["var", "purge", "-check-index", "1", "app/cfg"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("Check-and-Set conflict"), "{err}");
    let (code, out, _) = cli(&a.base, &["var", "purge", "app/cfg"]).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "Successfully purged variable \"app/cfg\"!");
    let (code, out, _) = cli(&a.base, &["var", "list", "-json"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v.as_array().map(|l| l.len()), Some(1));

    // `var lock` holds the lock while its command runs (the command sees it held) and
    // releases it after; the command's exit code is the result.
    let seen = std::env::temp_dir().join(format!("caravan-var-lock-{}", caravan_structs::new_id()));
    let script = format!("curl -s {}/v1/var/app/leader > {}", a.base, seen.display());
    let (code, out, err) = cli(
        &a.base,
        &["var", "lock", "app/leader", "--", "sh", "-c", &script],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let during: Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap_or_default())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&seen);
    assert!(
        during["Lock"]["ID"].as_str().is_some(),
        "held while running: {during}"
    );
    let (_, after, _) = a.get("/v1/var/app/leader").await;
    assert!(after.get("Lock").is_none(), "released after: {after}");
    let (code, _, _) = cli(
        &a.base,
        &["var", "lock", "app/leader", "--", "sh", "-c", "exit 3"],
    )
    .await;
    assert_eq!(code, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_with_variables_cannot_be_deleted() {
    let a = agent(false).await;
    let (code, _, text) = a.put("/v1/namespace/team", json!({"Name": "team"})).await;
    assert_eq!(code, 200, "{text}");
    let (code, _, _) = a
        .put("/v1/var/app/x?namespace=team", items(&[("k", "v")]))
        .await;
    assert_eq!(code, 200);
    let (code, _, text) = a
        .call(Method::DELETE, "/v1/namespace/team", None, None)
        .await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("contains at least one variable"), "{text}");
    let (code, _, _) = a
        .call(Method::DELETE, "/v1/var/app/x?namespace=team", None, None)
        .await;
    assert_eq!(code, 204);
    let (code, _, text) = a
        .call(Method::DELETE, "/v1/namespace/team", None, None)
        .await;
    assert_eq!(code, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_identity_reads_its_own_job_variables_only() {
    let a = agent(true).await;
    let (code, boot, text) = a.call(Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 200, "{text}");
    let mgmt = boot["SecretID"].as_str().expect("secret").to_string();
    for p in ["nomad/jobs/web", "nomad/jobs/other", "app/x"] {
        let (code, _, text) = a
            .call(
                Method::PUT,
                &format!("/v1/var/{p}"),
                Some(&mgmt),
                Some(items(&[("k", p)])),
            )
            .await;
        assert_eq!(code, 200, "{text}");
    }
    // A running allocation of job `web`, and the identity the servers signed for its task.
    let alloc = caravan_structs::Allocation {
        id: caravan_structs::new_id(),
        namespace: "default".into(),
        job_id: "web".into(),
        task_group: "g".into(),
        client_status: "running".into(),
        desired_status: "run".into(),
        ..Default::default()
    };
    a.server
        .raft_apply(crate::server::command::Command::ApplyPlanResults {
            allocs: vec![alloc.clone()],
            deployment: None,
            deployment_updates: vec![],
            eval_id: String::new(),
        });
    let now = caravan_structs::time::now_nanos() / 1_000_000_000;
    let jwt = a
        .server
        .sign_identity(&json!({
            "nomad_namespace": "default", "nomad_job_id": "web",
            "nomad_allocation_id": alloc.id, "nomad_task": "t",
            "sub": "global:default:web:g:t:default", "iat": now, "nbf": now,
            "exp": now + 3600, "jti": caravan_structs::new_id(),
        }))
        .expect("signed");
    let (code, v, text) = a
        .call(Method::GET, "/v1/var/nomad/jobs/web", Some(&jwt), None)
        .await;
    assert_eq!(code, 200, "{text}");
    assert_eq!(v["Items"]["k"], "nomad/jobs/web");
    for (m, p, body) in [
        (Method::GET, "/v1/var/nomad/jobs/other", None),
        (Method::GET, "/v1/var/app/x", None),
        (
            Method::PUT,
            "/v1/var/nomad/jobs/web",
            Some(items(&[("k", "w")])),
        ),
    ] {
        let (code, _, text) = a.call(m.clone(), p, Some(&jwt), body).await;
        assert_eq!(code, 403, "{m} {p}: {text}");
    }
    let (_, list, _) = a.call(Method::GET, "/v1/vars", Some(&jwt), None).await;
    assert_eq!(list, json!([list[0].clone()]), "{list}");
    assert_eq!(list[0]["Path"], "nomad/jobs/web");
}

/// A file under `dir` whose path ends with `tail`.
fn find_file(dir: &std::path::Path, tail: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(tail) {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(f) = find_file(&p, tail) {
                return Some(f);
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_wait_for_read_and_rerender_variables() {
    use crate::client::ClientConfig;
    let a = super::tests::start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let tmpl = "{{ with nomadVar \"nomad/jobs/tv\" }}user={{ .user }}{{ end }}\n\
                exists={{ nomadVarExists \"nomad/jobs/none\" }}\n\
                {{ range nomadVarList \"nomad/jobs\" }}path={{ .Path }}\n{{ end }}";
    let job = json!({"Job": {
        "ID": "tv",
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "exec sleep 300"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Templates": [{"EmbeddedTmpl": tmpl, "DestPath": "local/app.conf", "ChangeMode": "noop"}]
            }]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    // The variable does not exist yet: the task waits, saying what for.
    crate::wait_for!(
        a.get("/v1/job/tv/allocations").await[0]["TaskStates"]["web"]["Events"]
            .as_array()
            .is_some_and(|evs| evs.iter().any(|e| e["DisplayMessage"]
                .as_str()
                .or(e["Message"].as_str())
                .is_some_and(|m| m.contains("Missing: nomad.var.block(nomad/jobs/tv)"))))
    );
    let (code, body) = a
        .put("/v1/var/nomad/jobs/tv", &items(&[("user", "admin")]))
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(find_file(&a.data_dir, "web/local/app.conf").is_some());
    let file = find_file(&a.data_dir, "web/local/app.conf").unwrap_or_default();
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    crate::wait_for!(read(&file) == "user=admin\nexists=false\npath=nomad/jobs/tv\n");
    crate::wait_for!(!a.running("tv").await.is_empty());
    // A change to the variable re-renders the file.
    let (code, _) = a
        .put("/v1/var/nomad/jobs/tv", &items(&[("user", "root")]))
        .await;
    assert_eq!(code, 200);
    crate::wait_for!(read(&file).starts_with("user=root\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acls_templates_read_as_the_tasks_workload_identity() {
    use caravan_templates::Dependency;
    let a = agent(true).await;
    for p in ["nomad/jobs/web", "app/x"] {
        a.server
            .var_set(
                "default",
                p,
                [("k".to_string(), p.to_string())].into(),
                None,
                None,
            )
            .expect("written");
    }
    let mut alloc = caravan_structs::Allocation {
        id: caravan_structs::new_id(),
        namespace: "default".into(),
        job_id: "web".into(),
        task_group: "g".into(),
        client_status: "running".into(),
        desired_status: "run".into(),
        ..Default::default()
    };
    let now = caravan_structs::time::now_nanos() / 1_000_000_000;
    let jwt = a
        .server
        .sign_identity(&json!({
            "nomad_namespace": "default", "nomad_job_id": "web",
            "nomad_allocation_id": alloc.id, "nomad_task": "t",
            "sub": "global:default:web:g:t:default", "iat": now, "nbf": now,
            "exp": now + 3600, "jti": caravan_structs::new_id(),
        }))
        .expect("signed");
    alloc.signed_identities.insert("t".into(), jwt);
    a.server
        .raft_apply(crate::server::command::Command::ApplyPlanResults {
            allocs: vec![alloc.clone()],
            deployment: None,
            deployment_updates: vec![],
            eval_id: String::new(),
        });
    let var = |path: &str| Dependency::NomadVar {
        path: path.into(),
        namespace: None,
        block: true,
    };
    let wait = Duration::from_millis(10);
    let (v, _) = a
        .server
        .template_var(&alloc.id, "t", &var("nomad/jobs/web"), 0, wait)
        .await
        .expect("own variable");
    assert_eq!(v, json!({"k": "nomad/jobs/web"}));
    let e = a
        .server
        .template_var(&alloc.id, "t", &var("app/x"), 0, wait)
        .await
        .expect_err("not its own");
    assert!(e.to_string().contains("Permission denied"), "{e}");
    let list = Dependency::NomadVarList {
        prefix: String::new(),
        namespace: None,
    };
    let (v, _) = a
        .server
        .template_var(&alloc.id, "t", &list, 0, wait)
        .await
        .expect("listed");
    assert_eq!(v.as_array().map(|l| l.len()), Some(1), "{v}");
    // A task without an identity reads nothing.
    let e = a
        .server
        .template_var(&alloc.id, "other-task", &var("nomad/jobs/web"), 0, wait)
        .await
        .expect_err("no identity");
    assert!(e.to_string().contains("no workload identity"), "{e}");
}
