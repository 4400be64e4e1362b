//! Garbage collection through a real in-process agent: finished batch jobs leave the server
//! after their thresholds, the client keeps at most `gc_max_allocs` allocation directories,
//! and the GC endpoints collect on request.

use super::tests::{start_with, TestAgent};
use crate::client::{gc::GcSettings, ClientConfig};
use crate::server::{gc::GcConfig, ServerConfig};
use crate::wait_for;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn batch_job(id: &str, script: &str) -> Value {
    json!({"Job": {"ID": id, "Type": "batch", "TaskGroups": [{
        "Name": "g",
        "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c", script]},
            "Resources": {"CPU": 10, "MemoryMB": 10},
            "KillTimeout": 500_000_000
        }]
    }]}})
}

fn alloc_dirs(a: &TestAgent) -> Vec<String> {
    std::fs::read_dir(a.data_dir.join("n1").join("alloc"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn list_len(a: &TestAgent, path: &str) -> usize {
    a.get(path)
        .await
        .as_array()
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

async fn all_dead(a: &TestAgent, n: usize) -> bool {
    let jobs = a.get("/v1/jobs").await;
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    jobs.len() == n && jobs.iter().all(|j| j["Status"] == "dead")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_finished_batch_jobs_are_collected_after_the_threshold() {
    let threshold = Duration::from_secs(3);
    let gc = GcConfig {
        interval: Duration::from_secs(1),
        job_threshold: threshold,
        eval_threshold: threshold,
        batch_eval_threshold: threshold,
        deployment_threshold: threshold,
        node_threshold: threshold,
    };
    let a = start_with(
        1,
        ServerConfig {
            gc,
            ..Default::default()
        },
        ClientConfig::default(),
    )
    .await;
    for i in 0..50 {
        let (code, body) = a
            .put("/v1/jobs", &batch_job(&format!("b{i}"), "exit 0"))
            .await;
        assert_eq!(code, 200, "{body}");
    }
    wait_for!(all_dead(&a, 50).await);
    let finished_at = Instant::now();
    assert_eq!(list_len(&a, "/v1/allocations").await, 50);
    // Everything goes once the threshold has passed: jobs, evals, allocs, then the
    // client's directories for them.
    let deadline = Instant::now() + Duration::from_secs(30);
    while list_len(&a, "/v1/jobs").await != 0 {
        assert!(Instant::now() < deadline, "jobs not collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        finished_at.elapsed() >= threshold - Duration::from_millis(500),
        "collected before job_gc_threshold: {:?}",
        finished_at.elapsed()
    );
    wait_for!(list_len(&a, "/v1/evaluations").await == 0);
    wait_for!(list_len(&a, "/v1/allocations").await == 0);
    wait_for!(alloc_dirs(&a).is_empty());
    let handles = a.data_dir.join("n1").join("client").join("allocs");
    wait_for!(std::fs::read_dir(&handles)
        .map(|rd| rd.count() == 0)
        .unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_keeps_at_most_gc_max_allocs_directories() {
    let a = start_with(
        1,
        ServerConfig::default(),
        ClientConfig {
            gc: GcSettings {
                max_allocs: 3,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    for i in 0..6 {
        let (code, body) = a
            .put("/v1/jobs", &batch_job(&format!("m{i}"), "exit 0"))
            .await;
        assert_eq!(code, 200, "{body}");
        // One at a time, so "oldest" is well defined.
        wait_for!(a
            .allocs(&format!("m{i}"))
            .await
            .first()
            .map(|x| x["ClientStatus"] == "complete")
            .unwrap_or(false));
    }
    wait_for!(alloc_dirs(&a).len() == 3);
    // The newest three are kept; the server still knows all six, none re-runs.
    let mut kept = alloc_dirs(&a);
    kept.sort();
    let mut newest = Vec::new();
    for i in 3..6 {
        newest.push(
            a.allocs(&format!("m{i}")).await[0]["ID"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    newest.sort();
    assert_eq!(kept, newest);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(alloc_dirs(&a).len(), 3);
    assert_eq!(list_len(&a, "/v1/allocations").await, 6);
    for i in 0..3 {
        assert_eq!(
            a.allocs(&format!("m{i}")).await[0]["ClientStatus"],
            "complete"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_endpoints_collect_finished_work_and_refuse_running_work() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let (code, body) = a
        .put("/v1/jobs", &batch_job("long", "exec sleep 600"))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .allocs("long")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "running")
        .unwrap_or(false));
    let id = a.allocs("long").await[0]["ID"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let gc_alloc = |id: String| {
        let url = format!("{}/v1/client/allocation/{id}/gc", a.base);
        let http = a.http.clone();
        async move {
            let r = http.get(url).send().await.expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (code, body) = gc_alloc(id.clone()).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("still running"), "{body}");
    assert!(alloc_dirs(&a).contains(&id));
    let (code, _) = gc_alloc("00000000-no-such-alloc".into()).await;
    assert_eq!(code, 404);

    // Stopped, it can be collected; the server-side forced GC then purges the dead job.
    let r = a
        .http
        .delete(format!("{}/v1/job/long", a.base))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status().as_u16(), 200);
    wait_for!(a
        .allocs("long")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "complete" || x["ClientStatus"] == "failed")
        .unwrap_or(false));
    wait_for!(gc_alloc(id.clone()).await.0 == 200);
    wait_for!(!alloc_dirs(&a).contains(&id));

    let (code, body) = a.put("/v1/jobs", &batch_job("short", "exit 0")).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(all_dead(&a, 2).await);
    let r = a
        .http
        .get(format!("{}/v1/client/gc", a.base))
        .send()
        .await
        .expect("client gc");
    assert_eq!(r.status().as_u16(), 200);
    wait_for!(alloc_dirs(&a).is_empty());

    let (code, body) = a.put("/v1/system/gc", &json!({})).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(list_len(&a, "/v1/jobs").await, 0);
    assert_eq!(list_len(&a, "/v1/allocations").await, 0);
    assert_eq!(list_len(&a, "/v1/evaluations").await, 0);
}
