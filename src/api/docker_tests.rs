//! Docker tasks through a whole in-process agent, against Debian's dockerd and Podman's
//! Docker-compatible service (started by e2e/containers/dockerd-setup.sh and podman-setup.sh,
//! as the driver's own tests do; the same lock files keep those tests' reapers away): a job
//! runs a container whose output reaches the task's logs and whose stop removes it; an image
//! that cannot be pulled is a `Driver Failure` event with the engine's error, after the pull's
//! `Driver` progress event, and is retried per the restart policy.
//! Each test prints SKIPPED with why and returns when an engine cannot be started.

use super::tests::{start_with_drivers, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use caravan_driver_docker::plugin_config::GcConfig;
use caravan_driver_docker::{DockerDriver, DockerPluginConfig};
use serde_json::{json, Value};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IMAGE: &str = "localhost/busybox:test";

/// An advisory lock in the temp dir, shared with drivers/docker/tests/common.
struct Lock(#[allow(dead_code)] std::fs::File);

fn lock(name: &str, shared: bool) -> Result<Lock, String> {
    let path = std::env::temp_dir().join(format!("caravan-test-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {path:?}: {e}"))?;
    let op = if shared { libc::LOCK_SH } else { libc::LOCK_EX };
    if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
        return Err(format!("cannot lock {path:?}"));
    }
    Ok(Lock(file))
}

/// Starts the engine (`podman` or `dockerd`) and returns its socket with a shared hold on its
/// containers.
fn engine(name: &str) -> Result<(String, Lock), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("e2e/containers")
        .join(format!("{name}-setup.sh"));
    let out = {
        let _one = lock(&format!("{name}-setup"), false)?;
        Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {script:?}: {e}"))?
    };
    if !out.status.success() {
        return Err(format!(
            "{script:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let sock = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .ok_or("the setup script printed no socket")?;
    Ok((sock, lock(&format!("{name}-containers"), true)?))
}

async fn agent(sock: &str) -> TestAgent {
    let sock = sock.to_string();
    start_with_drivers(
        1,
        ServerConfig::default(),
        ClientConfig::default(),
        move || {
            vec![Arc::new(DockerDriver::new(DockerPluginConfig {
                endpoint: format!("unix://{sock}"),
                // The shared test image stays for the other tests (this process may outlive
                // the default delay).
                gc: Some(GcConfig {
                    image: false,
                    ..Default::default()
                }),
                ..Default::default()
            }))]
        },
    )
    .await
}

fn docker_job(id: &str, config: Value) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 1, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "t", "Driver": "docker",
                "Config": config,
                "Resources": {"CPU": 20, "MemoryMB": 32},
                "KillTimeout": 1_000_000_000
            }]
        }]
    }})
}

/// Ids of the containers labelled with this allocation.
fn containers_of(sock: &str, alloc_id: &str) -> Vec<String> {
    let filter = format!(r#"{{"label":["com.hashicorp.nomad.alloc_id={alloc_id}"]}}"#);
    let out = Command::new("curl")
        .args([
            "-fsS",
            "--unix-socket",
            sock,
            "-G",
            "http://d/containers/json",
        ])
        .args(["--data-urlencode", "all=1", "--data-urlencode"])
        .arg(format!("filters={filter}"))
        .output()
        .expect("curl");
    let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    list.as_array()
        .map(|l| {
            l.iter()
                .filter_map(|c| c["Id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn runs_logs_and_stop_removes_the_container(engine_name: &str) {
    let (sock, _hold) = match engine(engine_name) {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED: no {engine_name} for this test: {why}");
            return;
        }
    };
    let a = agent(&sock).await;
    let job = docker_job(
        "web",
        json!({"image": IMAGE, "command": "/bin/sh",
               "args": ["-c", "echo hello from $NOMAD_TASK_NAME; exec sleep 600"]}),
    );
    let (status, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(status, 200, "{body}");
    wait_for!(a.running("web").await.len() == 1);
    let id = a.running("web").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(containers_of(&sock, &id).len(), 1);
    let url = format!(
        "{}/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true",
        a.base
    );
    let mut text = String::new();
    for _ in 0..100 {
        text = a.http.get(&url).send().await.unwrap().text().await.unwrap();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text, "hello from t\n");

    a.http
        .delete(format!("{}/v1/job/web", a.base))
        .send()
        .await
        .unwrap();
    wait_for!(containers_of(&sock, &id).is_empty());
    wait_for!(a.get(&format!("/v1/allocation/{id}")).await["TaskStates"]["t"]["State"] == "dead");
}

async fn unpullable_image_is_retried_per_restart_policy(engine_name: &str) {
    let (sock, _hold) = match engine(engine_name) {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED: no {engine_name} for this test: {why}");
            return;
        }
    };
    let a = agent(&sock).await;
    // Nothing listens on port 1: the engine cannot reach the registry.
    let image = "127.0.0.1:1/caravan/no-such-image:1";
    let (status, body) = a
        .put("/v1/jobs", &docker_job("nopull", json!({"image": image})))
        .await;
    assert_eq!(status, 200, "{body}");
    wait_for!(a
        .allocs("nopull")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "failed")
        .unwrap_or(false));
    let id = a.allocs("nopull").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let alloc = a.get(&format!("/v1/allocation/{id}")).await;
    let state = &alloc["TaskStates"]["t"];
    let events = state["Events"].as_array().cloned().unwrap_or_default();
    let types: Vec<&str> = events.iter().filter_map(|e| e["Type"].as_str()).collect();
    assert!(types.contains(&"Restarting"), "{types:?}");
    assert!(types.contains(&"Not Restarting"), "{types:?}");
    // The pull's progress event, from the driver through the client.
    let pulling = events
        .iter()
        .find(|e| e["Type"] == "Driver")
        .unwrap_or_else(|| panic!("no Driver event: {types:?}"));
    assert_eq!(
        pulling["DisplayMessage"],
        format!("Downloading image {image}"),
        "{pulling}"
    );
    let failures: Vec<&Value> = events
        .iter()
        .filter(|e| e["Type"] == "Driver Failure")
        .collect();
    assert_eq!(failures.len(), 2, "a start and one restart: {types:?}");
    let msg = failures[0]["DisplayMessage"].as_str().unwrap();
    assert!(msg.contains(image), "{msg}");
    assert!(
        msg.contains("connection refused") || msg.contains("connect: "),
        "the engine's error: {msg}"
    );
    assert_eq!(state["Failed"], true);
    assert_eq!(state["Restarts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_job_runs_logs_and_stop_removes_the_container() {
    runs_logs_and_stop_removes_the_container("dockerd").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_job_runs_logs_and_stop_removes_the_container() {
    runs_logs_and_stop_removes_the_container("podman").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_unpullable_image_is_a_driver_failure_retried_per_restart_policy() {
    unpullable_image_is_retried_per_restart_policy("dockerd").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_unpullable_image_is_a_driver_failure_retried_per_restart_policy() {
    unpullable_image_is_retried_per_restart_policy("podman").await
}
