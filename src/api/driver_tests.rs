//! Drivers are fingerprinted again while the client runs: a driver that turns healthy (an
//! engine started after the agent) shows up on the node and takes placements.

use super::tests::start_with_drivers;
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use caravan_driver::*;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Stands in for the podman driver whose engine starts after the agent: healthy only once
/// `up` is set; runs nothing unless it `records` what it is asked to start (then every task
/// runs until stopped).
struct Flaky {
    up: Arc<AtomicBool>,
    records: Option<Arc<Mutex<Vec<TaskConfig>>>>,
}

fn no(what: &str) -> DriverError {
    DriverError::InvalidConfig(format!("the stand-in driver cannot {what}"))
}

#[async_trait]
impl Driver for Flaky {
    fn name(&self) -> &str {
        "podman"
    }
    async fn fingerprint(&self) -> Fingerprint {
        let up = self.up.load(Ordering::SeqCst);
        Fingerprint {
            detected: up,
            healthy: up,
            health_description: if up {
                "Healthy".into()
            } else {
                "engine away".into()
            },
            attributes: [("driver.podman".to_string(), up.to_string())].into(),
        }
    }
    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError> {
        let Some(records) = &self.records else {
            return Err(no("start"));
        };
        let handle = TaskHandle {
            version: HANDLE_VERSION,
            driver: "podman".into(),
            task_id: cfg.id.clone(),
            config: cfg.clone(),
            ..Default::default()
        };
        records.lock().unwrap().push(cfg);
        Ok(handle)
    }
    async fn wait(&self, _id: &str) -> Result<ExitResult, DriverError> {
        if self.records.is_none() {
            return Err(no("wait"));
        }
        std::future::pending().await
    }
    async fn stop(&self, _id: &str, _t: Duration, _s: &str) -> Result<(), DriverError> {
        Ok(())
    }
    async fn destroy(&self, _id: &str, _force: bool) -> Result<(), DriverError> {
        Ok(())
    }
    async fn inspect(&self, _id: &str) -> Result<TaskStatus, DriverError> {
        Err(no("inspect"))
    }
    async fn signal(&self, _id: &str, _s: &str) -> Result<(), DriverError> {
        Err(no("signal"))
    }
    async fn exec(
        &self,
        _id: &str,
        _cmd: Vec<String>,
        _timeout: Duration,
    ) -> Result<ExecResult, DriverError> {
        Err(no("exec"))
    }
    async fn stats(&self, _id: &str) -> Result<TaskResourceUsage, DriverError> {
        Err(no("stats"))
    }
    async fn recover(&self, _h: TaskHandle) -> Result<(), DriverError> {
        Err(no("recover"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_that_turns_healthy_is_picked_up_without_a_restart() {
    let up = Arc::new(AtomicBool::new(false));
    let flag = up.clone();
    let a = start_with_drivers(
        1,
        ServerConfig::default(),
        ClientConfig {
            driver_fingerprint_period: Duration::from_millis(200),
            ..Default::default()
        },
        move || {
            vec![Arc::new(Flaky {
                up: flag.clone(),
                records: None,
            }) as Arc<dyn Driver>]
        },
    )
    .await;
    let node_id = a.get("/v1/nodes").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let node = a.get(&format!("/v1/node/{node_id}")).await;
    assert_eq!(node["Drivers"]["podman"]["Healthy"], false);

    // A job for the driver cannot be placed yet.
    let job = json!({"Job": {"ID": "needs-podman", "TaskGroups": [{"Name": "g", "Tasks": [{
        "Name": "t", "Driver": "podman", "Config": {}, "Resources": {"CPU": 10, "MemoryMB": 10}
    }]}]}});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(!a.get("/v1/job/needs-podman/evaluations").await[0]["FailedTGAllocs"].is_null());
    assert!(a.allocs("needs-podman").await.is_empty());

    up.store(true, Ordering::SeqCst);
    wait_for!(a.get(&format!("/v1/node/{node_id}")).await["Drivers"]["podman"]["Healthy"] == true);
    let node = a.get(&format!("/v1/node/{node_id}")).await;
    assert_eq!(node["Attributes"]["driver.podman"], "true");
    // The blocked evaluation is retried once the node changed: the job gets its allocation.
    wait_for!(!a.allocs("needs-podman").await.is_empty());
}

/// `memory_max` reaches the driver only when the scheduler allows memory oversubscription; the
/// client passes what the scheduler allocated, as Nomad, not what the job file asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_max_reaches_the_driver_only_with_oversubscription() {
    let records = Arc::new(Mutex::new(Vec::new()));
    let r = records.clone();
    let a = start_with_drivers(
        1,
        ServerConfig::default(),
        ClientConfig::default(),
        move || {
            vec![Arc::new(Flaky {
                up: Arc::new(AtomicBool::new(true)),
                records: Some(r.clone()),
            }) as Arc<dyn Driver>]
        },
    )
    .await;
    let job = |id: &str| {
        json!({"Job": {"ID": id, "TaskGroups": [{"Name": "g", "Tasks": [{
            "Name": "t", "Driver": "podman", "Config": {},
            "Resources": {"CPU": 10, "MemoryMB": 32, "MemoryMaxMB": 64}
        }]}]}})
    };
    let started = |job: &str| {
        records
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.job_name == job)
            .map(|c| c.resources.clone())
    };
    let (code, body) = a.put("/v1/jobs", &job("capped")).await;
    assert_eq!(code, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["Warnings"]
            .as_str()
            .is_some_and(|w| w.contains("memory_max value will be ignored")),
        "{body}"
    );
    wait_for!(started("capped").is_some());
    let r = started("capped").unwrap();
    assert_eq!((r.memory_mb, r.memory_max_mb), (32, 0));

    let (code, body) = a
        .put(
            "/v1/operator/scheduler/configuration",
            &json!({"MemoryOversubscriptionEnabled": true}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = a.put("/v1/jobs", &job("bursty")).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(started("bursty").is_some());
    let r = started("bursty").unwrap();
    assert_eq!((r.memory_mb, r.memory_max_mb), (32, 64));
}
