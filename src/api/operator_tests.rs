//! The scheduler configuration through the API and the CLI against a real in-process agent:
//! defaults, compare-and-set, validation, and the settings that change behaviour
//! (`reject_job_registration`, `pause_eval_broker`).

use super::tests::{start_with, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Runs the CLI against the agent; returns (exit code, stdout, stderr).
async fn cli(a: &TestAgent, args: &[&str]) -> (i32, String, String) {
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.push(format!("-address={}", a.base));
    // The address flag goes before positional arguments; these commands take none.
    tokio::task::spawn_blocking(move || {
        let env = std::collections::BTreeMap::new();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = caravan_cli::run_with(argv, &env, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .expect("cli thread")
}

fn sleeper(id: &str) -> Value {
    json!({"Job": {"ID": id, "Type": "batch", "TaskGroups": [{"Name": "g", "Tasks": [{
        "Name": "t", "Driver": "raw_exec",
        "Config": {"command": "/bin/true"},
        "Resources": {"CPU": 10, "MemoryMB": 10}
    }]}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_configuration_reads_writes_and_takes_effect() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let cfg = a.get("/v1/operator/scheduler/configuration").await;
    let c = &cfg["SchedulerConfig"];
    assert_eq!(c["SchedulerAlgorithm"], "binpack");
    assert_eq!(c["PreemptionConfig"]["SystemSchedulerEnabled"], true);
    assert_eq!(c["MemoryOversubscriptionEnabled"], false);
    let index = c["ModifyIndex"].as_u64().expect("index");
    assert!(index > 0);

    // Compare-and-set with a stale index changes nothing.
    let mut new = c.clone();
    new["SchedulerAlgorithm"] = json!("spread");
    let (code, body) = a
        .put(
            &format!("/v1/operator/scheduler/configuration?cas={}", index + 100),
            &new,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"Updated\":false"), "{body}");
    let (code, body) = a
        .put(
            &format!("/v1/operator/scheduler/configuration?cas={index}"),
            &new,
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"Updated\":true"), "{body}");
    assert_eq!(
        a.get("/v1/operator/scheduler/configuration").await["SchedulerConfig"]
            ["SchedulerAlgorithm"],
        "spread"
    );
    // Bad input: an unknown algorithm and garbage are refused and change nothing.
    let mut bad = new.clone();
    bad["SchedulerAlgorithm"] = json!("random");
    let (code, body) = a.put("/v1/operator/scheduler/configuration", &bad).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("binpack"), "{body}");
    let (code, _) = a
        .put("/v1/operator/scheduler/configuration", &json!("nonsense"))
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        a.get("/v1/operator/scheduler/configuration").await["SchedulerConfig"]
            ["SchedulerAlgorithm"],
        "spread"
    );

    // The CLI: set-config changes only what its flags name; get-config prints it.
    let (code, out, err) = cli(
        &a,
        &[
            "operator",
            "scheduler",
            "set-config",
            "-reject-job-registration=true",
            "-scheduler-algorithm=binpack",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Scheduler configuration updated!"), "{out}");
    let (code, out, err) = cli(&a, &["operator", "scheduler", "get-config"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Scheduler Algorithm           = binpack"),
        "{out}"
    );
    assert!(
        out.contains("Reject Job Registration       = true"),
        "{out}"
    );
    assert!(
        out.contains("Preemption System Scheduler   = true"),
        "{out}"
    );
    let (code, _, err) = cli(
        &a,
        &[
            "operator",
            "scheduler",
            "set-config",
            "-pause-eval-broker=maybe",
        ],
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("-pause-eval-broker"), "{err}");

    // Registration is refused while reject_job_registration is set.
    let (code, body) = a.put("/v1/jobs", &sleeper("refused")).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("disabled by the scheduler configuration"),
        "{body}"
    );
    assert!(a.get("/v1/job/refused").await.is_null());

    // A paused broker holds evaluations until it is resumed.
    let (code, out, err) = cli(
        &a,
        &[
            "operator",
            "scheduler",
            "set-config",
            "-reject-job-registration=false",
            "-pause-eval-broker=true",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, body) = a.put("/v1/jobs", &sleeper("held")).await;
    assert_eq!(code, 200, "{body}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(a.allocs("held").await.is_empty(), "placed while paused");
    let (code, out, err) = cli(
        &a,
        &[
            "operator",
            "scheduler",
            "set-config",
            "-pause-eval-broker=false",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    wait_for!(!a.allocs("held").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_max_without_oversubscription_is_a_registration_warning() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let mut job = sleeper("maxed");
    job["Job"]["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMaxMB"] = json!(64);
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    let resp: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let warnings = resp["Warnings"].as_str().unwrap_or_default();
    assert!(
        warnings.contains(
            "Memory oversubscription is not enabled; Task \"g.t\" memory_max value will be ignored"
        ),
        "{body}"
    );
    // With oversubscription on, no warning.
    let (code, out, err) = cli(
        &a,
        &[
            "operator",
            "scheduler",
            "set-config",
            "-memory-oversubscription=true",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    let resp: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    assert_eq!(resp["Warnings"], "", "{body}");
}
