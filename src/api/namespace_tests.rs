//! Namespaces through a real in-process agent: create, read, update and delete with Nomad's
//! refusals; jobs registered into a namespace (by the job, by `?namespace=`) are listed there
//! and under `*` only, and keep the namespace from being deleted; a job for a missing
//! namespace is refused and stores nothing; and the `caravan namespace` commands, with
//! `NOMAD_NAMESPACE` and `-namespace`, against the same agent.

use super::tests::{sleeper_job, start_nodes, TestAgent};
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

impl TestAgent {
    /// Any request, answering (status, X-Nomad-Index, body).
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, u64, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let r = rb.send().await.expect("request");
        let index = r
            .headers()
            .get("X-Nomad-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (
            r.status().as_u16(),
            index,
            r.text().await.unwrap_or_default(),
        )
    }

    /// The IDs of the objects a list endpoint answers.
    async fn ids(&self, path: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .get(path)
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| o["ID"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    }
}

/// The sleeper job, in namespace `ns`.
pub(super) fn job_in(ns: &str, id: &str, count: i64) -> Value {
    let mut j = sleeper_job(id, count);
    j["Job"]["Namespace"] = json!(ns);
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_crud_and_refusals() {
    let a = start_nodes(0).await;
    let list = a.get("/v1/namespaces").await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["Name"], "default");
    assert_eq!(list[0]["Description"], "Default shared namespace");

    // Create: empty body, the index in X-Nomad-Index.
    let prod = json!({"Name": "prod", "Description": "Production", "Meta": {"owner": "sre"}});
    let (code, index, body) = a.call("PUT", "/v1/namespace/prod", Some(&prod)).await;
    assert_eq!((code, body.as_str()), (200, ""));
    assert!(index > 1);
    let got = a.get("/v1/namespace/prod").await;
    assert_eq!(got["Description"], "Production");
    assert_eq!(got["Meta"], json!({"owner": "sre"}));
    assert_eq!(got["CreateIndex"], json!(index));
    assert_eq!(got["ModifyIndex"], json!(index));

    // A blocking list wakes for the next write and sees it.
    let (_, list_index, _) = a.call("GET", "/v1/namespaces", None).await;
    let waiter = {
        let (http, url) = (
            a.http.clone(),
            format!("{}/v1/namespaces?index={list_index}&wait=20s", a.base),
        );
        tokio::spawn(async move {
            let r = http.get(url).send().await.expect("request");
            r.json::<Value>().await.unwrap_or(Value::Null)
        })
    };
    // Update through the create route; the create index stays.
    let (code, index2, body) = a
        .call(
            "POST",
            "/v1/namespace",
            Some(&json!({"Name": "prod", "Description": "Live"})),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let got = a.get("/v1/namespace/prod").await;
    assert_eq!(got["Description"], "Live");
    assert_eq!(
        (got["CreateIndex"].clone(), got["ModifyIndex"].clone()),
        (json!(index), json!(index2))
    );
    let woke = waiter.await.unwrap_or(Value::Null);
    assert!(
        woke.as_array()
            .is_some_and(|l| l.iter().any(|n| n["Description"] == "Live")),
        "{woke}"
    );

    // Refusals change nothing.
    let refusals = [
        (
            "PUT",
            "/v1/namespace/bad_name",
            Some(json!({"Name": "bad_name"})),
            400,
            "Invalid namespace \"bad_name\"",
        ),
        (
            "PUT",
            "/v1/namespace/prod",
            Some(json!({"Name": "other"})),
            400,
            "Namespace name does not match request path",
        ),
        (
            "PUT",
            "/v1/namespace/q",
            Some(json!({"Name": "q", "Quota": "small"})),
            400,
            "namespace \"q\" using non-existent quota \"small\"",
        ),
        (
            "PUT",
            "/v1/namespace/v",
            Some(json!({"Name": "v", "VaultConfiguration": {"Default": "x"}})),
            400,
            "invalid vault configuration",
        ),
        (
            "DELETE",
            "/v1/namespace/default",
            None,
            400,
            "can not delete default namespace",
        ),
        (
            "DELETE",
            "/v1/namespace/nope",
            None,
            404,
            "namespace not found",
        ),
        (
            "GET",
            "/v1/namespace/nope",
            None,
            404,
            "Namespace not found",
        ),
    ];
    for (method, path, body, want_code, want) in refusals {
        let (code, _, msg) = a.call(method, path, body.as_ref()).await;
        assert_eq!(code, want_code, "{method} {path}: {msg}");
        assert!(msg.contains(want), "{method} {path}: {msg}");
    }
    let names: Vec<Value> = a
        .get("/v1/namespaces")
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|n| n["Name"].clone())
        .collect();
    assert_eq!(names, vec![json!("default"), json!("prod")]);

    // The default namespace can be described, and is still there.
    let (code, _, _) = a
        .call(
            "PUT",
            "/v1/namespace/default",
            Some(&json!({"Name": "default", "Description": "Shared"})),
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        a.get("/v1/namespace/default").await["Description"],
        "Shared"
    );

    // Capabilities refuse drivers at registration, in Nomad's words.
    let locked = json!({"Name": "locked", "Capabilities": {"DisabledTaskDrivers": ["raw_exec"]}});
    assert_eq!(
        a.call("PUT", "/v1/namespace/locked", Some(&locked)).await.0,
        200
    );
    let (code, msg) = a.put("/v1/jobs", &job_in("locked", "web", 1)).await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("used task driver \"raw_exec\" is not allowed in namespace \"locked\""),
        "{msg}"
    );
    assert_eq!(a.get("/v1/jobs?namespace=*").await, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_live_in_their_namespace() {
    let a = start_nodes(1).await;

    // A job for a namespace that does not exist is refused and stores nothing.
    let (code, msg) = a.put("/v1/jobs", &job_in("prod", "web", 1)).await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("job \"web\" is in nonexistent namespace \"prod\""),
        "{msg}"
    );
    assert_eq!(a.get("/v1/jobs?namespace=*").await, json!([]));
    assert_eq!(a.get("/v1/evaluations?namespace=*").await, json!([]));

    let (code, _, _) = a
        .call("PUT", "/v1/namespace/prod", Some(&json!({"Name": "prod"})))
        .await;
    assert_eq!(code, 200);
    // Into prod by the job's own namespace, and by `?namespace=` (what `-namespace` sends)
    // for a job that names none.
    let (code, msg) = a.put("/v1/jobs", &job_in("prod", "web", 1)).await;
    assert_eq!(code, 200, "{msg}");
    let (code, msg) = a
        .put("/v1/jobs?namespace=prod", &sleeper_job("api", 1))
        .await;
    assert_eq!(code, 200, "{msg}");
    let (code, msg) = a.put("/v1/jobs", &sleeper_job("home", 1)).await;
    assert_eq!(code, 200, "{msg}");
    let running = |job: &'static str, ns: &'static str| {
        let a = &a;
        async move {
            a.get(&format!("/v1/job/{job}/allocations?namespace={ns}"))
                .await
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|x| x["ClientStatus"] == "running")
                .count()
        }
    };
    wait_for!(running("web", "prod").await == 1);
    wait_for!(running("api", "prod").await == 1);
    wait_for!(running("home", "default").await == 1);

    assert_eq!(a.ids("/v1/jobs?namespace=prod").await, vec!["api", "web"]);
    assert_eq!(a.ids("/v1/jobs").await, vec!["home"]);
    assert_eq!(
        a.ids("/v1/jobs?namespace=*").await,
        vec!["api", "home", "web"]
    );
    let in_ns = |path: &'static str| {
        let a = &a;
        async move {
            let mut v: Vec<String> = a
                .get(path)
                .await
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|o| {
                    format!(
                        "{}/{}",
                        o["Namespace"].as_str().unwrap_or_default(),
                        o["JobID"].as_str().unwrap_or_default()
                    )
                })
                .collect();
            v.sort();
            v.dedup();
            v
        }
    };
    assert_eq!(
        in_ns("/v1/allocations?namespace=prod").await,
        vec!["prod/api", "prod/web"]
    );
    assert_eq!(in_ns("/v1/allocations").await, vec!["default/home"]);
    assert_eq!(in_ns("/v1/allocations?namespace=*").await.len(), 3);
    assert_eq!(
        in_ns("/v1/evaluations?namespace=prod").await,
        vec!["prod/api", "prod/web"]
    );
    assert_eq!(in_ns("/v1/evaluations").await, vec!["default/home"]);
    assert_eq!(in_ns("/v1/deployments?namespace=*").await.len(), 3);
    assert_eq!(in_ns("/v1/deployments").await, vec!["default/home"]);
    assert_eq!(a.call("GET", "/v1/job/web", None).await.0, 404);
    assert_eq!(
        a.get("/v1/job/web?namespace=prod").await["Namespace"],
        "prod"
    );

    // A namespace with live jobs cannot go.
    let (code, _, msg) = a.call("DELETE", "/v1/namespace/prod", None).await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("namespace \"prod\" has non-terminal jobs in regions: [global]"),
        "{msg}"
    );
    assert!(
        msg.contains("namespace \"prod\" has non-terminal allocations in regions: [global]"),
        "{msg}"
    );
    assert!(a.get("/v1/namespace/prod").await["Name"] == "prod");

    // Once its jobs are purged and their allocations stopped, it can.
    for job in ["web", "api"] {
        let (code, _, msg) = a
            .call(
                "DELETE",
                &format!("/v1/job/{job}?namespace=prod&purge=true"),
                None,
            )
            .await;
        assert_eq!(code, 200, "{msg}");
    }
    wait_for!(a
        .get("/v1/allocations?namespace=prod")
        .await
        .as_array()
        .is_some_and(|l| l.iter().all(|x| x["ClientStatus"] == "complete")));
    let (code, _, msg) = a.call("DELETE", "/v1/namespace/prod", None).await;
    assert_eq!(code, 200, "{msg}");
    assert_eq!(a.call("GET", "/v1/namespace/prod", None).await.0, 404);
    assert_eq!(a.ids("/v1/jobs").await, vec!["home"]);
}

/// Runs the CLI against the agent with `env` beside `CARAVAN_ADDR`.
pub(super) async fn cli(addr: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut envs: std::collections::BTreeMap<String, String> =
        [("CARAVAN_ADDR".to_string(), addr.to_string())].into();
    for (k, v) in env {
        envs.insert(k.to_string(), v.to_string());
    }
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = caravan_cli::run_with(args, &envs, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .unwrap_or((-1, String::new(), "CLI thread panicked".into()))
}

const JOB_FILE: &str = r#"
job "web" {
  group "g" {
    restart {
      attempts = 0
      mode     = "fail"
    }
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "exec sleep 600"]
      }
      resources {
        cpu    = 20
        memory = 10
      }
      kill_timeout = "1s"
    }
  }
}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_namespace_commands() {
    let a = start_nodes(1).await;
    let base = a.base.clone();
    let run = |env: &'static [(&'static str, &'static str)], args: Vec<String>| {
        let base = base.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&base, env, &args).await
        }
    };
    let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let (code, out, err) = run(
        &[],
        v(&["namespace", "apply", "-description", "Production", "prod"]),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "Successfully applied namespace \"prod\"!");
    let (code, out, _) = run(&[], v(&["namespace", "list"])).await;
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("Name") && lines[0].contains("Description"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("default") && lines[1].contains("Default shared namespace"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("prod") && lines[2].ends_with("Production"),
        "{out}"
    );
    let (code, out, _) = run(&[], v(&["namespace", "list", "-json"])).await;
    assert_eq!(code, 0);
    let parsed: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    assert_eq!(parsed[1]["Name"], "prod");

    // A specification file: capabilities and metadata; a prefix finds it.
    let spec = a.data_dir.join("ns.hcl");
    std::fs::create_dir_all(&a.data_dir).unwrap_or_default();
    std::fs::write(
        &spec,
        "name = \"staging\"\ndescription = \"Pre-production\"\ncapabilities {\n  disabled_task_drivers = [\"docker\"]\n}\nmeta {\n  owner = \"qa\"\n}\n",
    )
    .unwrap_or_default();
    let spec = spec.to_string_lossy().into_owned();
    let (code, out, err) = run(&[], vec!["namespace".into(), "apply".into(), spec.clone()]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&[], v(&["namespace", "status", "stag"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Name                   = staging"), "{out}");
    assert!(
        out.contains("Description            = Pre-production"),
        "{out}"
    );
    assert!(out.contains("Enabled Drivers        = *"), "{out}");
    assert!(out.contains("Disabled Drivers       = docker"), "{out}");
    assert!(out.contains("Metadata\nowner = qa"), "{out}");
    let bad = a.data_dir.join("bad.hcl");
    std::fs::write(&bad, "name = \"x\"\ncolour = \"red\"\n").unwrap_or_default();
    let bad = bad.to_string_lossy().into_owned();
    let (code, _, err) = run(&[], vec!["namespace".into(), "apply".into(), bad.clone()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("bad.hcl:2:1"), "{err}");
    let (code, _, err) = run(&[], v(&["namespace", "status", "nope"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Namespace \"nope\" matched no namespaces"),
        "{err}"
    );
    let (code, _, err) = run(&[], v(&["namespace", "apply", "bad_name"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("Error applying namespace: Unexpected response code: 400"),
        "{err}"
    );

    // NOMAD_NAMESPACE places a job file that names no namespace, and scopes reads.
    let job = a.data_dir.join("web.nomad.hcl");
    std::fs::write(&job, JOB_FILE).unwrap_or_default();
    let job = job.to_string_lossy().into_owned();
    let (code, out, err) = run(
        &[("NOMAD_NAMESPACE", "prod")],
        vec!["job".into(), "run".into(), "-detach".into(), job.clone()],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        a.get("/v1/job/web?namespace=prod").await["Namespace"],
        "prod"
    );
    wait_for!(a
        .get("/v1/job/web/allocations?namespace=prod")
        .await
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x["ClientStatus"] == "running")));
    let (code, out, _) = run(&[("NOMAD_NAMESPACE", "prod")], v(&["job", "status"])).await;
    assert_eq!(code, 0);
    assert!(out.contains("web"), "{out}");
    let (code, out, _) = run(&[], v(&["job", "status"])).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), "No running jobs");
    let (code, out, _) = run(&[], v(&["job", "status", "-namespace", "*"])).await;
    assert_eq!(code, 0);
    assert!(out.contains("Namespace") && out.contains("prod"), "{out}");
    let (code, out, err) = run(&[], v(&["job", "status", "-namespace", "prod", "web"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Namespace     = prod"), "{out}");

    // Deleting: refused for default and while prod runs a job; fine for staging.
    let (code, _, err) = run(&[], v(&["namespace", "delete", "prod"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("has non-terminal jobs"), "{err}");
    let (code, _, err) = run(&[], v(&["namespace", "delete", "default"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("can not delete default namespace"), "{err}");
    let (code, out, err) = run(&[], v(&["namespace", "delete", "staging"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "Successfully deleted namespace \"staging\"!");
    assert_eq!(a.call("GET", "/v1/namespace/staging", None).await.0, 404);
}

/// A request with a token, answering (status, body).
async fn as_token(
    a: &TestAgent,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, String) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = a.http.request(method, format!("{}{path}", a.base));
    if let Some(t) = token {
        rb = rb.header("X-Nomad-Token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

/// A client token holding one new policy with `rules`.
async fn token_with(a: &TestAgent, mgmt: &str, name: &str, rules: &str) -> String {
    let (code, body) = as_token(
        a,
        "PUT",
        &format!("/v1/acl/policy/{name}"),
        Some(mgmt),
        Some(json!({"Name": name, "Rules": rules})),
    )
    .await;
    assert_eq!(code, 200, "policy {name}: {body}");
    let (code, body) = as_token(
        a,
        "PUT",
        "/v1/acl/token",
        Some(mgmt),
        Some(json!({"Type": "client", "Policies": [name]})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    v["SecretID"].as_str().unwrap_or_default().to_string()
}

fn names_of(body: &str) -> Vec<String> {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|o| o["Name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_scopes_namespaces_and_node_pools() {
    let a = super::tests::start_with(
        0,
        crate::server::ServerConfig {
            acl: crate::server::acl::AclConfig {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        },
        crate::client::ClientConfig::default(),
    )
    .await;
    let (code, body) = as_token(&a, "PUT", "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 200, "{body}");
    let mgmt = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["SecretID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let m = Some(mgmt.as_str());

    // Namespace writes are management's.
    let prod = json!({"Name": "prod"});
    assert_eq!(
        as_token(&a, "PUT", "/v1/namespace/prod", None, Some(prod.clone())).await,
        (403, "Permission denied".to_string())
    );
    for ns in ["prod", "staging"] {
        let (code, body) = as_token(
            &a,
            "PUT",
            &format!("/v1/namespace/{ns}"),
            m,
            Some(json!({ "Name": ns })),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    for pool in ["gpu", "batch"] {
        let (code, body) = as_token(
            &a,
            "PUT",
            "/v1/node/pools",
            m,
            Some(json!({ "Name": pool })),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }

    // A token for prod and the gpu pool sees only those, and may change neither.
    let reader = token_with(
        &a,
        &mgmt,
        "prod-reader",
        "namespace \"prod\" {\n  policy = \"read\"\n}\nnode_pool \"gpu\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    let t = Some(reader.as_str());
    let (code, body) = as_token(&a, "GET", "/v1/namespaces", t, None).await;
    assert_eq!((code, names_of(&body)), (200, vec!["prod".to_string()]));
    assert_eq!(
        as_token(&a, "GET", "/v1/namespace/prod", t, None).await.0,
        200
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/namespace/staging", t, None).await,
        (403, "Permission denied".to_string())
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/namespace/staging", None, None)
            .await
            .0,
        403
    );
    assert_eq!(
        as_token(&a, "PUT", "/v1/namespace/prod", t, Some(prod.clone()))
            .await
            .0,
        403
    );
    assert_eq!(
        as_token(&a, "DELETE", "/v1/namespace/staging", t, None)
            .await
            .0,
        403
    );
    let (code, body) = as_token(&a, "GET", "/v1/node/pools", t, None).await;
    assert_eq!((code, names_of(&body)), (200, vec!["gpu".to_string()]));
    let (code, body) = as_token(&a, "GET", "/v1/node/pools", None, None).await;
    assert_eq!((code, names_of(&body)), (200, Vec::<String>::new()));
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/gpu", t, None).await.0,
        200
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/batch", t, None).await.0,
        403
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/gpu/jobs", t, None)
            .await
            .0,
        200
    );
    // Nodes also need node read.
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/gpu/nodes", t, None)
            .await
            .0,
        403
    );
    let gpu = Some(json!({"Name": "gpu", "Description": "changed"}));
    assert_eq!(
        as_token(&a, "PUT", "/v1/node/pools", t, gpu.clone())
            .await
            .0,
        403
    );
    assert_eq!(
        as_token(&a, "DELETE", "/v1/node/pool/gpu", t, None).await.0,
        403
    );

    // Pool write covers write and delete of that pool only.
    let writer = token_with(
        &a,
        &mgmt,
        "gpu-writer",
        "node_pool \"gpu\" {\n  policy = \"write\"\n}\nnode {\n  policy = \"read\"\n}\n",
    )
    .await;
    let w = Some(writer.as_str());
    assert_eq!(
        as_token(&a, "PUT", "/v1/node/pool/gpu", w, gpu).await.0,
        200
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/gpu/nodes", w, None)
            .await
            .0,
        200
    );
    assert_eq!(
        as_token(&a, "DELETE", "/v1/node/pool/batch", w, None)
            .await
            .0,
        403
    );
    assert_eq!(
        as_token(&a, "DELETE", "/v1/node/pool/gpu", w, None).await.0,
        200
    );
    assert_eq!(
        as_token(&a, "GET", "/v1/node/pool/gpu", m, None).await.0,
        404
    );

    // Submitting into a namespace needs submit-job there, wherever the namespace is named.
    let default_writer = token_with(
        &a,
        &mgmt,
        "default-writer",
        "namespace \"default\" {\n  policy = \"write\"\n}\n",
    )
    .await;
    let d = Some(default_writer.as_str());
    let (code, body) = as_token(&a, "PUT", "/v1/jobs", d, Some(job_in("prod", "web", 1))).await;
    assert_eq!((code, body.as_str()), (403, "Permission denied"));
    let (code, body) = as_token(&a, "GET", "/v1/jobs?namespace=*", m, None).await;
    assert_eq!((code, body.as_str()), (200, "[]"));
    let (code, body) = as_token(&a, "PUT", "/v1/jobs", d, Some(job_in("default", "web", 1))).await;
    assert_eq!(code, 200, "{body}");
}
