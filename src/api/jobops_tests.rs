//! Job operations through a real in-process agent: revert to an old version, scale a group
//! within its `scaling` bounds, dispatch a parameterized job whose child reads its payload,
//! and the `caravan job revert/scale/dispatch` commands against the same agent.

use super::tests::{start_with, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn start() -> TestAgent {
    start_with(1, ServerConfig::default(), ClientConfig::default()).await
}

/// A service job whose task prints `word` and sleeps; no deployments (max_parallel 0), so a
/// new version replaces its allocations at once.
fn service_job(id: &str, word: &str, count: i64, scaling: Option<Value>) -> Value {
    let mut group = json!({
        "Name": "g", "Count": count,
        "Update": {"MaxParallel": 0},
        "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
        "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c", format!("echo {word}; exec sleep 600")]},
            "Resources": {"CPU": 20, "MemoryMB": 10},
            "KillTimeout": 1_000_000_000
        }]
    });
    if let Some(s) = scaling {
        group["Scaling"] = s;
    }
    json!({"Job": {"ID": id, "Update": {"MaxParallel": 0}, "TaskGroups": [group]}})
}

/// A parameterized batch job whose task prints its payload file and its `who` meta.
fn parameterized_job(id: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": "batch",
        "ParameterizedJob": {"Payload": "required", "MetaRequired": ["who"], "MetaOptional": ["extra"]},
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "cat local/input.txt; echo; echo who=$NOMAD_META_who"]},
                "DispatchPayload": {"File": "input.txt"},
                "Resources": {"CPU": 20, "MemoryMB": 10}
            }]
        }]
    }})
}

/// A job ID as one path segment (dispatched children hold a `/`).
fn seg(id: &str) -> String {
    id.replace('/', "%2F")
}

impl TestAgent {
    async fn job(&self, id: &str) -> Value {
        self.get(&format!("/v1/job/{}", seg(id))).await
    }

    async fn stdout(&self, alloc_id: &str) -> String {
        let url = format!(
            "{}/v1/client/fs/logs/{alloc_id}?task=t&type=stdout&plain=true",
            self.base
        );
        match self.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The running allocations of the job at `version`.
    async fn running_at(&self, job: &str, version: u64) -> Vec<Value> {
        self.running(job)
            .await
            .into_iter()
            .filter(|a| a["JobVersion"] == version)
            .collect()
    }
}

fn index_of(text: &str, key: &str) -> String {
    serde_json::from_str::<Value>(text).unwrap_or(Value::Null)[key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_registers_the_old_spec_as_a_new_version_and_runs_it() {
    let a = start().await;
    let (code, body) = a
        .put("/v1/jobs", &service_job("rv", "first", 1, None))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running_at("rv", 0).await.len() == 1);
    let (code, body) = a
        .put("/v1/jobs", &service_job("rv", "second", 1, None))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running_at("rv", 1).await.len() == 1);
    let v0_args = a.get("/v1/job/rv/versions").await["Versions"][1]["TaskGroups"][0]["Tasks"][0]
        ["Config"]["args"]
        .clone();
    assert!(v0_args.to_string().contains("first"), "{v0_args}");

    // Bad requests change nothing.
    let (code, body) = a
        .put(
            "/v1/job/rv/revert",
            &json!({"JobID": "rv", "JobVersion": 1}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("can't revert to current version"), "{body}");
    let (code, body) = a
        .put(
            "/v1/job/rv/revert",
            &json!({"JobID": "rv", "JobVersion": 7}),
        )
        .await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("at version 7 not found"), "{body}");
    let (code, body) = a
        .put(
            "/v1/job/rv/revert",
            &json!({"JobID": "rv", "JobVersion": 0, "EnforcePriorVersion": 0}),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert!(
        body.contains("Current job has version 1; enforcing version 0"),
        "{body}"
    );
    let (code, body) = a
        .put(
            "/v1/job/rv/revert",
            &json!({"JobID": "other", "JobVersion": 0}),
        )
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = a
        .put(
            "/v1/job/nope/revert",
            &json!({"JobID": "nope", "JobVersion": 0}),
        )
        .await;
    assert_eq!(code, 404);
    assert_eq!(a.job("rv").await["Version"], 1);

    // The revert: version 0's spec becomes version 2, and runs.
    let (code, body) = a
        .put(
            "/v1/job/rv/revert",
            &json!({"JobID": "rv", "JobVersion": 0, "EnforcePriorVersion": 1}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(!index_of(&body, "EvalID").is_empty(), "{body}");
    let job = a.job("rv").await;
    assert_eq!(job["Version"], 2);
    assert_eq!(job["TaskGroups"][0]["Tasks"][0]["Config"]["args"], v0_args);
    assert_eq!(
        a.get("/v1/job/rv/versions").await["Versions"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    wait_for!(a.running_at("rv", 2).await.len() == 1 && a.running("rv").await.len() == 1);
    let id = a.running_at("rv", 2).await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for!(a.stdout(&id).await.contains("first"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_within_bounds_changes_running_allocs_and_records_events() {
    let a = start().await;
    let scaling = json!({"Min": 1, "Max": 3, "Enabled": true});
    let (code, body) = a
        .put("/v1/jobs", &service_job("sc", "hi", 1, Some(scaling)))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running("sc").await.len() == 1);
    let first = a.running("sc").await[0]["ID"].clone();

    let (code, body) = a
        .put(
            "/v1/job/sc/scale",
            &json!({"Count": 3, "Target": {"Group": "g"}, "Message": "busy"}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let eval_id = index_of(&body, "EvalID");
    assert!(!eval_id.is_empty(), "{body}");
    wait_for!(a.running("sc").await.len() == 3);
    // Only the difference started: the first allocation still runs.
    assert!(a.running("sc").await.iter().any(|x| x["ID"] == first));
    let job = a.job("sc").await;
    assert_eq!(job["Version"], 1);
    assert_eq!(job["TaskGroups"][0]["Count"], 3);
    let eval = a.get(&format!("/v1/evaluation/{eval_id}")).await;
    assert_eq!(eval["TriggeredBy"], "job-scaling");

    wait_for!(a.get("/v1/job/sc/scale").await["TaskGroups"]["g"]["Running"] == 3);
    let st = a.get("/v1/job/sc/scale").await;
    let g = &st["TaskGroups"]["g"];
    assert_eq!(st["JobID"], "sc");
    assert_eq!(st["JobStopped"], false);
    assert_eq!(g["Desired"], 3);
    assert_eq!(g["Placed"], 3);
    assert_eq!(g["Events"].as_array().map(Vec::len), Some(1));
    assert_eq!(g["Events"][0]["Count"], 3);
    assert_eq!(g["Events"][0]["PreviousCount"], 1);
    assert_eq!(g["Events"][0]["Message"], "busy");
    assert_eq!(g["Events"][0]["EvalID"], eval_id.as_str());

    // Out of bounds, or naming no group: 400, and nothing changes.
    for (req, want) in [
        (
            json!({"Count": 5, "Target": {"Group": "g"}}),
            "greater than scaling policy maximum: 5 > 3",
        ),
        (
            json!({"Count": 0, "Target": {"Group": "g"}}),
            "less than scaling policy minimum: 0 < 1",
        ),
        (
            json!({"Count": 2, "Target": {"Group": "nope"}}),
            "task group \"nope\" specified for scaling does not exist",
        ),
        (json!({"Count": 2, "Target": {}}), "missing task group name"),
        (
            json!({"Count": -1, "Target": {"Group": "g"}}),
            "can't be negative",
        ),
        (
            json!({"Count": 2, "Error": true, "Target": {"Group": "g"}}),
            "should not contain count",
        ),
        (
            json!({"Count": 2, "Target": {"Group": "g", "Job": "other"}}),
            "did not match URL",
        ),
    ] {
        let (code, body) = a.put("/v1/job/sc/scale", &req).await;
        assert_eq!(code, 400, "{req} → {body}");
        assert!(body.contains(want), "{req} → {body}");
    }
    let (code, _) = a
        .put(
            "/v1/job/nope/scale",
            &json!({"Count": 1, "Target": {"Group": "g"}}),
        )
        .await;
    assert_eq!(code, 404);
    let st = a.get("/v1/job/sc/scale").await;
    assert_eq!(st["TaskGroups"]["g"]["Desired"], 3);
    assert_eq!(
        st["TaskGroups"]["g"]["Events"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(a.job("sc").await["Version"], 1);

    // An event without a count (an autoscaler's error report) is only recorded.
    let (code, body) = a
        .put(
            "/v1/job/sc/scale",
            &json!({"Error": true, "Message": "metrics unavailable", "Target": {"Group": "g"}, "Meta": {"source": "test"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(index_of(&body, "EvalID"), "");
    let st = a.get("/v1/job/sc/scale").await;
    let ev = &st["TaskGroups"]["g"]["Events"];
    assert_eq!(ev.as_array().map(Vec::len), Some(2));
    assert_eq!(ev[0]["Error"], true);
    assert_eq!(ev[0]["Meta"]["source"], "test");
    assert_eq!(a.job("sc").await["Version"], 1);

    // Down again: two stop, one keeps running.
    let (code, body) = a
        .put(
            "/v1/job/sc/scale",
            &json!({"Count": 1, "Target": {"Group": "g"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running("sc").await.len() == 1);
    assert_eq!(a.job("sc").await["Version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_runs_a_child_that_reads_its_payload() {
    let a = start().await;
    let (code, body) = a.put("/v1/jobs", &parameterized_job("pj")).await;
    assert_eq!(code, 200, "{body}");
    // A parameterized job registers but is not evaluated, and cannot be.
    assert_eq!(index_of(&body, "EvalID"), "", "{body}");
    assert_eq!(a.job("pj").await["Status"], "running");
    assert_eq!(a.job("pj").await["ParameterizedJob"]["Payload"], "required");
    let (code, body) = a.put("/v1/job/pj/evaluate", &json!({})).await;
    assert_eq!(code, 400, "{body}");
    assert!(a.allocs("pj").await.is_empty());

    let payload = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    // Bad dispatches: 400, nothing registered.
    for (req, want) in [
        (
            json!({"Payload": payload("x")}),
            "did not provide required meta keys: [who]",
        ),
        (
            json!({"Payload": payload("x"), "Meta": {"who": "a", "bogus": "b"}}),
            "unpermitted metadata keys: [bogus]",
        ),
        (
            json!({"Meta": {"who": "a"}}),
            "Payload is not provided but required",
        ),
        (
            json!({"Payload": "%%%", "Meta": {"who": "a"}}),
            "not valid base64",
        ),
    ] {
        let (code, body) = a.put("/v1/job/pj/dispatch", &req).await;
        assert_eq!(code, 400, "{req} → {body}");
        assert!(body.contains(want), "{req} → {body}");
    }
    assert_eq!(a.get("/v1/jobs").await.as_array().map(Vec::len), Some(1));
    let (code, _) = a
        .put("/v1/job/nope/dispatch", &json!({"Meta": {"who": "a"}}))
        .await;
    assert_eq!(code, 404);

    let (code, body) = a
        .put(
            "/v1/job/pj/dispatch",
            &json!({"Payload": payload("hello payload"), "Meta": {"who": "world"}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let resp: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let child = resp["DispatchedJobID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(child.starts_with("pj/dispatch-"), "{body}");
    assert!(
        !resp["EvalID"].as_str().unwrap_or_default().is_empty(),
        "{body}"
    );
    assert!(resp["JobCreateIndex"].as_u64().unwrap_or(0) > 0, "{body}");

    let job = a.job(&child).await;
    assert_eq!(job["ParentID"], "pj");
    assert_eq!(job["Dispatched"], true);
    assert_eq!(job["Meta"]["who"], "world");
    // The child is listed, and is not itself parameterized.
    let jobs = a.get("/v1/jobs").await;
    let stub = |id: &str| {
        jobs.as_array()
            .and_then(|js| js.iter().find(|j| j["ID"] == id))
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(stub("pj")["ParameterizedJob"], true);
    assert_eq!(stub(&child)["ParameterizedJob"], false);
    assert_eq!(stub(&child)["ParentID"], "pj");

    let allocs_path = format!("/v1/job/{}/allocations", seg(&child));
    wait_for!(a.get(&allocs_path).await[0]["ClientStatus"] == "complete");
    let alloc_id = a.get(&allocs_path).await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for!(a.stdout(&alloc_id).await.contains("who=world"));
    assert_eq!(a.stdout(&alloc_id).await, "hello payload\nwho=world\n");
    // The parent still places nothing, and counts its child.
    assert!(a.allocs("pj").await.is_empty());
    wait_for!(a.get("/v1/job/pj/summary").await["Children"]["Dead"] == 1);
}

/// Runs the CLI in a thread of its own (it starts its own runtime).
pub(super) async fn cli(addr: &str, args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let env: std::collections::BTreeMap<String, String> =
        [("CARAVAN_ADDR".to_string(), addr.to_string())].into();
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = caravan_cli::run_with(args, &env, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .unwrap_or((-1, String::new(), "CLI thread panicked".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_revert_scale_and_dispatch() {
    let a = start().await;
    let scaling = json!({"Min": 1, "Max": 3});
    a.put(
        "/v1/jobs",
        &service_job("cj", "one", 1, Some(scaling.clone())),
    )
    .await;
    a.put("/v1/jobs", &service_job("cj", "two", 1, Some(scaling)))
        .await;
    wait_for!(a.running_at("cj", 1).await.len() == 1);

    // job revert monitors its evaluation to the end.
    let (code, out, err) = cli(&a.base, &["job", "revert", "cj", "0"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Monitoring evaluation"), "{out}");
    assert!(out.contains("finished with status \"complete\""), "{out}");
    assert_eq!(a.job("cj").await["Version"], 2);
    let (code, _, err) = cli(&a.base, &["job", "revert", "cj", "2"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("can't revert to current version"), "{err}");
    let (code, _, err) = cli(&a.base, &["job", "revert", "cj", "latest"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("a version is a number"), "{err}");

    // job scale: the only group is implied; bounds come back as the server's error.
    let (code, out, err) = cli(&a.base, &["job", "scale", "-detach", "cj", "2"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Job scale successful"), "{out}");
    assert!(out.contains("Evaluation ID:"), "{out}");
    wait_for!(a.running("cj").await.len() == 2);
    let (code, _, err) = cli(&a.base, &["job", "scale", "cj", "g", "9"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("greater than scaling policy maximum: 9 > 3"),
        "{err}"
    );
    let (code, _, err) = cli(&a.base, &["job", "scale", "cj", "other", "2"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("Group other not found within job"), "{err}");
    assert_eq!(a.job("cj").await["TaskGroups"][0]["Count"], 2);

    // job dispatch: payload from a file, meta from flags, monitored to the end.
    a.put("/v1/jobs", &parameterized_job("pj")).await;
    let file = a.data_dir.join("payload.txt");
    std::fs::write(&file, "from the cli").unwrap_or_default();
    let file = file.to_string_lossy().into_owned();
    let (code, out, err) = cli(
        &a.base,
        &["job", "dispatch", "-meta", "who=cli", "pj", &file],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Dispatched Job ID = pj/dispatch-"), "{out}");
    let child = out
        .lines()
        .find_map(|l| l.strip_prefix("Dispatched Job ID = "))
        .unwrap_or_default()
        .trim()
        .to_string();
    let allocs_path = format!("/v1/job/{}/allocations", seg(&child));
    wait_for!(a.get(&allocs_path).await[0]["ClientStatus"] == "complete");
    let alloc_id = a.get(&allocs_path).await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    wait_for!(a.stdout(&alloc_id).await == "from the cli\nwho=cli\n");
    let (code, _, err) = cli(&a.base, &["job", "dispatch", "pj", &file]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("did not provide required meta keys: [who]"),
        "{err}"
    );
    let (code, _, err) = cli(&a.base, &["job", "dispatch", "-meta", "who=x", "cj"]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("No parameterized job(s) with prefix or ID \"cj\""),
        "{err}"
    );
}
