//! Node pools through a real in-process agent with two clients in different pools: a client's
//! pool is created when it registers, a job runs only on its pool's nodes (`all`: on any),
//! a job for a missing pool is refused, pools in use and the built-ins cannot be deleted, and
//! the `caravan node pool` commands against the same agent.

use super::namespace_tests::cli;
use super::tests::{sleeper_job, start_clients, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Two clients: `n1` in the default pool, `n2` in `gpu` (which nobody created).
async fn start() -> TestAgent {
    let gpu = ClientConfig {
        node_pool: "gpu".into(),
        ..Default::default()
    };
    start_clients(
        ServerConfig::default(),
        vec![ClientConfig::default(), gpu],
        || {
            vec![std::sync::Arc::new(
                caravan_driver_raw_exec::RawExecDriver::new(true),
            )]
        },
    )
    .await
}

impl TestAgent {
    async fn status_of(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    /// The node ID of the client named `name`.
    async fn node_named(&self, name: &str) -> String {
        self.get("/v1/nodes")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .find(|n| n["Name"] == name)
            .and_then(|n| n["ID"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    /// The nodes a job's running allocations are on.
    async fn running_on(&self, job: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .running(job)
            .await
            .iter()
            .map(|a| a["NodeID"].as_str().unwrap_or_default().to_string())
            .collect();
        v.sort();
        v
    }
}

fn pooled_job(id: &str, pool: &str, count: i64) -> Value {
    let mut j = sleeper_job(id, count);
    j["Job"]["NodePool"] = json!(pool);
    j
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|o| {
            o["Name"]
                .as_str()
                .or(o["ID"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_place_jobs_on_their_nodes() {
    let a = start().await;
    let (n1, n2) = (a.node_named("n1").await, a.node_named("n2").await);
    assert!(!n1.is_empty() && !n2.is_empty());

    // The built-ins, and the pool n2 registered into.
    let pools = a.get("/v1/node/pools").await;
    assert_eq!(names(&pools), vec!["all", "default", "gpu"]);
    assert_eq!(
        pools[0]["Description"],
        "Node pool with all nodes in the cluster."
    );
    assert!(pools[2]["CreateIndex"].as_u64().unwrap_or(0) > 1, "{pools}");
    assert_eq!(pools[2]["NodeIdentityTTL"], json!(86_400_000_000_000i64));

    // A job runs only on its pool's nodes; `all` takes any node.
    let (code, msg) = a.put("/v1/jobs", &pooled_job("train", "gpu", 2)).await;
    assert_eq!(code, 200, "{msg}");
    let (code, msg) = a.put("/v1/jobs", &sleeper_job("web", 2)).await;
    assert_eq!(code, 200, "{msg}");
    let mut anywhere = pooled_job("agent", "all", 2);
    anywhere["Job"]["Constraints"] = json!([{"Operand": "distinct_hosts", "RTarget": "true"}]);
    let (code, msg) = a.put("/v1/jobs", &anywhere).await;
    assert_eq!(code, 200, "{msg}");
    wait_for!(a.running("train").await.len() == 2);
    wait_for!(a.running("web").await.len() == 2);
    wait_for!(a.running("agent").await.len() == 2);
    assert_eq!(a.running_on("train").await, vec![n2.clone(), n2.clone()]);
    assert_eq!(a.running_on("web").await, vec![n1.clone(), n1.clone()]);
    let mut both = vec![n1.clone(), n2.clone()];
    both.sort();
    assert_eq!(a.running_on("agent").await, both);

    // A job for a pool that does not exist is refused and stores nothing.
    let (code, msg) = a.put("/v1/jobs", &pooled_job("lost", "nope", 1)).await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("job \"lost\" is in nonexistent node pool \"nope\""),
        "{msg}"
    );
    assert_eq!(
        a.status_of(reqwest::Method::GET, "/v1/job/lost", None)
            .await
            .0,
        404
    );

    // A pool's nodes and jobs.
    let ids = |v: Value| {
        let mut ids: Vec<String> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|o| o["ID"].as_str().unwrap_or_default().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(a.get("/v1/node/pool/gpu/nodes").await),
        vec![n2.clone()]
    );
    assert_eq!(
        ids(a.get("/v1/node/pool/default/nodes").await),
        vec![n1.clone()]
    );
    assert_eq!(ids(a.get("/v1/node/pool/all/nodes").await), both);
    assert_eq!(ids(a.get("/v1/node/pool/gpu/jobs").await), vec!["train"]);
    assert_eq!(ids(a.get("/v1/node/pool/all/jobs").await), vec!["agent"]);
    assert_eq!(
        ids(a.get("/v1/node/pool/gpu/jobs?namespace=other").await),
        Vec::<String>::new()
    );
    assert_eq!(a.get("/v1/node/pool/nope/nodes").await, json!([]));
    let (code, msg) = a
        .status_of(
            reqwest::Method::GET,
            "/v1/node/pool/gpu/nodes?prefix=ab",
            None,
        )
        .await;
    assert_eq!((code, msg.as_str()), (400, "prefix argument not allowed"));

    // Pools in use, and the built-ins, stay.
    let (code, msg) = a
        .status_of(reqwest::Method::DELETE, "/v1/node/pool/gpu", None)
        .await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("node pool \"gpu\" has non-terminal jobs in regions: [global]"),
        "{msg}"
    );
    assert!(
        msg.contains("node pool \"gpu\" has nodes in regions: [global]"),
        "{msg}"
    );
    for pool in ["all", "default"] {
        let (code, msg) = a
            .status_of(
                reqwest::Method::DELETE,
                &format!("/v1/node/pool/{pool}"),
                None,
            )
            .await;
        assert_eq!(code, 400, "{msg}");
        assert_eq!(msg, format!("deleting node pool {pool:?} is not allowed"));
        let (code, msg) = a
            .status_of(
                reqwest::Method::PUT,
                &format!("/v1/node/pool/{pool}"),
                Some(json!({"Name": pool, "Description": "mine"})),
            )
            .await;
        assert_eq!(code, 400, "{msg}");
        assert_eq!(msg, format!("modifying node pool {pool:?} is not allowed"));
    }
    assert_eq!(
        names(&a.get("/v1/node/pools").await),
        vec!["all", "default", "gpu"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_pool_crud_and_cli() {
    let a = start().await;
    let put = |path: &'static str, body: Value| a.status_of(reqwest::Method::PUT, path, Some(body));

    let (code, msg) = put(
        "/v1/node/pool/batch",
        json!({"Name": "batch", "Description": "Batch work", "Meta": {"team": "data"}, "NodeIdentityTTL": "1h"}),
    )
    .await;
    assert_eq!((code, msg.as_str()), (200, ""));
    let got = a.get("/v1/node/pool/batch").await;
    assert_eq!(got["Description"], "Batch work");
    assert_eq!(got["Meta"], json!({"team": "data"}));
    assert_eq!(got["NodeIdentityTTL"], json!(3_600_000_000_000i64));
    let created = got["CreateIndex"].clone();
    let (code, _) = put(
        "/v1/node/pools",
        json!({"Name": "batch", "Description": "Nightly"}),
    )
    .await;
    assert_eq!(code, 200);
    let got = a.get("/v1/node/pool/batch").await;
    assert_eq!(
        (got["Description"].clone(), got["CreateIndex"].clone()),
        (json!("Nightly"), created)
    );

    let refusals = [
        (
            "/v1/node/pool/bad pool",
            json!({"Name": "bad pool"}),
            "invalid node pool \"bad pool\"",
        ),
        (
            "/v1/node/pool/batch",
            json!({"Name": "other"}),
            "Node pool name does not match request path",
        ),
        (
            "/v1/node/pool/fast",
            json!({"Name": "fast", "SchedulerConfiguration": {"SchedulerAlgorithm": "fastest"}}),
            "invalid scheduler algorithm \"fastest\"",
        ),
    ];
    for (path, body, want) in refusals {
        let (code, msg) = put(path, body).await;
        assert_eq!(code, 400, "{path}: {msg}");
        assert!(msg.contains(want), "{path}: {msg}");
    }
    let (code, msg) = a
        .status_of(reqwest::Method::GET, "/v1/node/pool/nope", None)
        .await;
    assert_eq!((code, msg.as_str()), (404, "node pool not found"));
    let (code, msg) = a
        .status_of(reqwest::Method::DELETE, "/v1/node/pool/nope", None)
        .await;
    assert_eq!((code, msg.as_str()), (404, "node pool nope not found"));

    // A pool may override the scheduler settings (shown by `node pool info`).
    let (code, msg) = put(
        "/v1/node/pool/gpu",
        json!({"Name": "gpu", "SchedulerConfiguration": {"SchedulerAlgorithm": "spread", "MemoryOversubscriptionEnabled": true}}),
    )
    .await;
    assert_eq!(code, 200, "{msg}");

    // The CLI.
    let base = a.base.clone();
    let run = |args: Vec<String>| {
        let base = base.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cli(&base, &[], &args).await
        }
    };
    let v = |args: &[&str]| args.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    std::fs::create_dir_all(&a.data_dir).unwrap_or_default();
    let spec = a.data_dir.join("pool.nomad.hcl");
    std::fs::write(
        &spec,
        "node_pool \"example\" {\n  description = \"Example node pool\"\n  meta {\n    environment = \"prod\"\n    owner       = \"sre\"\n  }\n}\n",
    )
    .unwrap_or_default();
    let spec = spec.to_string_lossy().into_owned();
    let (code, out, err) = run(vec!["node".into(), "pool".into(), "apply".into(), spec]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "Successfully applied node pool \"example\"!");
    let json_spec = a.data_dir.join("pool.json");
    std::fs::write(
        &json_spec,
        r#"{"Name": "fromjson", "Description": "From JSON"}"#,
    )
    .unwrap_or_default();
    let json_spec = json_spec.to_string_lossy().into_owned();
    let (code, out, err) = run(vec![
        "node".into(),
        "pool".into(),
        "apply".into(),
        "-json".into(),
        json_spec,
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");

    let (code, out, _) = run(v(&["node", "pool", "list"])).await;
    assert_eq!(code, 0);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    let firsts: Vec<&str> = rows.iter().filter_map(|r| r.first().copied()).collect();
    assert_eq!(
        firsts,
        vec!["Name", "all", "batch", "default", "example", "fromjson", "gpu"],
        "{out}"
    );
    assert!(out.contains("Example node pool"), "{out}");

    let (code, out, err) = run(v(&["node", "pool", "info", "exam"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Name              = example"), "{out}");
    assert!(
        out.contains("Description       = Example node pool"),
        "{out}"
    );
    assert!(out.contains("Node Identity TTL = 24h0m0s"), "{out}");
    assert!(
        out.contains("Metadata\nenvironment = prod\nowner       = sre"),
        "{out}"
    );
    assert!(
        out.contains("Scheduler Configuration\nNo scheduler configuration"),
        "{out}"
    );
    let (code, out, _) = run(v(&["node", "pool", "info", "gpu"])).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("Scheduler Algorithm             = spread"),
        "{out}"
    );
    assert!(
        out.contains("Memory Oversubscription Enabled = true"),
        "{out}"
    );
    let (code, _, err) = run(v(&["node", "pool", "info", "nope"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("No node pool with prefix \"nope\" found"),
        "{err}"
    );

    let (code, out, _) = run(v(&["node", "pool", "nodes", "gpu"])).await;
    assert_eq!(code, 0);
    assert!(out.contains("n2") && !out.contains("n1"), "{out}");
    assert!(
        out.lines().next().unwrap_or("").contains("Node Pool"),
        "{out}"
    );
    let (code, out, _) = run(v(&["node", "pool", "nodes", "example"])).await;
    assert_eq!((code, out.trim()), (0, "No nodes"));

    let (code, msg) = a.put("/v1/jobs", &pooled_job("train", "gpu", 1)).await;
    assert_eq!(code, 200, "{msg}");
    let (code, out, _) = run(v(&["node", "pool", "jobs", "gpu"])).await;
    assert_eq!(code, 0);
    assert!(out.contains("train"), "{out}");
    let (code, out, _) = run(v(&["node", "pool", "jobs", "batch"])).await;
    assert_eq!((code, out.trim()), (0, "No jobs"));

    let (code, out, err) = run(v(&["node", "pool", "delete", "example"])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "Successfully deleted node pool \"example\"!");
    let (code, _, err) = run(v(&["node", "pool", "delete", "all"])).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("deleting node pool \"all\" is not allowed"),
        "{err}"
    );
    let (code, _, err) = run(v(&["node", "pool", "delete", "gpu"])).await;
    assert_eq!(code, 1);
    assert!(err.contains("has nodes"), "{err}");
}
