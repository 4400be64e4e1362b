//! Operator actions on deployments through the API and CLI: a paused rolling update places
//! nothing new until resumed, then finishes; a failed one stops with Nomad's description;
//! terminal deployments refuse further actions; promote says there are no canaries.

use super::jobops_tests::cli;
use super::tests::{start_with, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn rolling_job(version: &str) -> Value {
    json!({"Job": {
        "ID": "rolling",
        "Update": {"MaxParallel": 1, "MinHealthyTime": 1_500_000_000i64,
                   "HealthyDeadline": 60_000_000_000i64, "ProgressDeadline": 120_000_000_000i64},
        "TaskGroups": [{
            "Name": "g", "Count": 2,
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Env": {"VERSION": version},
                "Config": {"command": "/bin/sh", "args": ["-c", "exec sleep 600"]},
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 500_000_000
            }]
        }]
    }})
}

async fn latest(a: &TestAgent) -> Value {
    a.get("/v1/job/rolling/deployment").await
}

async fn running_version(a: &TestAgent, v: u64) -> usize {
    a.running("rolling")
        .await
        .iter()
        .filter(|x| x["JobVersion"] == v)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_fail_and_promote() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let (code, body) = a.put("/v1/jobs", &rolling_job("1")).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(latest(&a).await["Status"] == "successful");

    // A rolling update, paused as soon as its deployment exists.
    let (code, body) = a.put("/v1/jobs", &rolling_job("2")).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(latest(&a).await["JobVersion"] == 1);
    let d = latest(&a).await["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (code, body) = a
        .put(
            &format!("/v1/deployment/pause/{d}"),
            &json!({"Pause": true}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(latest(&a).await["Status"], "paused");
    assert_eq!(
        latest(&a).await["StatusDescription"],
        "Deployment is paused"
    );
    // Whatever was placed before the pause becomes healthy; nothing further is placed.
    let placed = a
        .allocs("rolling")
        .await
        .iter()
        .filter(|x| x["JobVersion"] == 1)
        .count();
    assert!(placed <= 1, "max_parallel 1: {placed}");
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let now = a
            .allocs("rolling")
            .await
            .iter()
            .filter(|x| x["JobVersion"] == 1)
            .count();
        assert_eq!(now, placed, "a paused deployment placed more");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Resumed from the CLI: the update finishes.
    let (code, out, err) = cli(&a.base, &["deployment", "resume", "-detach", &d[..8]]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resumed"), "{out}");
    wait_for!(running_version(&a, 1).await == 2);
    wait_for!(latest(&a).await["Status"] == "successful");

    // Terminal deployments refuse further actions.
    let (code, body) = a.put(&format!("/v1/deployment/fail/{d}"), &json!({})).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("can't fail terminal deployment"), "{body}");

    // Another update, failed by the operator from the CLI.
    let (code, body) = a.put("/v1/jobs", &rolling_job("3")).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(latest(&a).await["JobVersion"] == 2);
    let d3 = latest(&a).await["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (code, body) = a
        .put(&format!("/v1/deployment/promote/{d3}"), &json!({}))
        .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("no canaries to promote"), "{body}");
    let (code, out, err) = cli(&a.base, &["deployment", "fail", "-detach", &d3]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("Deployment \"{}\" failed", &d3[..8])),
        "{out}"
    );
    let v = latest(&a).await;
    assert_eq!(v["Status"], "failed");
    assert_eq!(v["StatusDescription"], "Deployment marked as failed");
    let (code, body) = a
        .put("/v1/deployment/pause/nope", &json!({"Pause": true}))
        .await;
    assert_eq!(code, 404, "{body}");
    let (code, body) = a
        .put(&format!("/v1/deployment/pause/{d3}"), &json!({"Paws": 1}))
        .await;
    assert_eq!(code, 400, "missing Pause: {body}");
}
