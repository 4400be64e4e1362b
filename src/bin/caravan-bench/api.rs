//! The slice of Caravan's (Nomad's) HTTP API the benchmarks use, and an allocation watcher
//! built on blocking queries over `/v1/allocations`.

use crate::error::BenchError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long one blocking query may wait on the server.
const BLOCKING_WAIT: &str = "30s";

#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
}

/// The fields of an allocation stub the benchmarks read.
#[derive(Debug, Clone, Deserialize)]
pub struct AllocStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    #[serde(rename = "ClientStatus", default)]
    pub client_status: String,
}

/// What the watcher saw happen to one allocation of a watched job.
#[derive(Debug)]
pub enum AllocEvent {
    /// First seen at all (the scheduler placed it; the client may not have it yet).
    Placed { job: String, at: Instant },
    /// First seen `running`, at `at` (when the blocking query answered).
    Running { job: String, at: Instant },
    /// Reached a terminal client status without running (failed, lost, complete).
    Ended {
        job: String,
        alloc: String,
        status: String,
    },
    /// The watcher stopped on an error.
    Error(BenchError),
}

/// `raw_exec` job running `/bin/sleep 3600` in `count` allocations of a tiny task (so many
/// fit on one dev node: a 10 MB ephemeral disk, not Nomad's default 300 MB, or the node's free
/// disk would cap the run at a few hundred allocations).
pub fn sleep_job(id: &str, count: usize) -> Value {
    sleep_job_on(id, count, "raw_exec")
}

/// [`sleep_job`] run by `driver` (`raw_exec` or `exec`).
pub fn sleep_job_on(id: &str, count: usize, driver: &str) -> Value {
    json!({
        "ID": id,
        "Name": id,
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "g",
            "Count": count,
            "EphemeralDisk": {"SizeMB": 10},
            "Tasks": [{
                "Name": "t",
                "Driver": driver,
                "Config": {"command": "/bin/sleep", "args": ["3600"]},
                "Resources": {"CPU": 10, "MemoryMB": 10}
            }]
        }]
    })
}

impl Api {
    pub fn new(base: String) -> Result<Api, BenchError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| BenchError::Http {
                what: "building the HTTP client".into(),
                source: e,
            })?;
        Ok(Api { http, base })
    }

    /// Whether `/v1/agent/health` answers 200 right now.
    pub async fn healthy(&self) -> bool {
        let req = self
            .http
            .get(format!("{}/v1/agent/health", self.base))
            .timeout(Duration::from_secs(1));
        matches!(req.send().await, Ok(r) if r.status().is_success())
    }

    /// `PUT /v1/jobs` with `{"Job": job}`.
    pub async fn register(&self, job: &Value) -> Result<(), BenchError> {
        let what = format!("registering job {}", job["ID"]);
        let resp = self
            .http
            .put(format!("{}/v1/jobs", self.base))
            .json(&json!({ "Job": job }))
            .send()
            .await
            .map_err(|e| BenchError::Http {
                what: what.clone(),
                source: e,
            })?;
        check(resp, &what).await.map(|_| ())
    }

    /// `DELETE /v1/job/:id?purge=true`.
    pub async fn purge(&self, job_id: &str) -> Result<(), BenchError> {
        let what = format!("purging job {job_id}");
        let resp = self
            .http
            .delete(format!("{}/v1/job/{job_id}?purge=true", self.base))
            .send()
            .await
            .map_err(|e| BenchError::Http {
                what: what.clone(),
                source: e,
            })?;
        check(resp, &what).await.map(|_| ())
    }

    /// `GET /v1/allocations?index=N&wait=30s`: the stubs and `X-Nomad-Index`, once the allocs
    /// table passes `index` (or the wait ends). `task_states=false` asks the agent to leave
    /// task states out of the stubs, as Nomad does, so big lists stay cheap.
    pub async fn allocations(&self, index: u64) -> Result<(Vec<AllocStub>, u64), BenchError> {
        let what = "listing allocations".to_string();
        let resp = self
            .http
            .get(format!(
                "{}/v1/allocations?index={index}&wait={BLOCKING_WAIT}&task_states=false",
                self.base
            ))
            .send()
            .await
            .map_err(|e| BenchError::Http {
                what: what.clone(),
                source: e,
            })?;
        let new_index = resp
            .headers()
            .get("X-Nomad-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| BenchError::Decode {
                what: what.clone(),
                detail: "no X-Nomad-Index header".into(),
            })?;
        let body = check(resp, &what).await?;
        let stubs: Vec<AllocStub> =
            serde_json::from_str(&body).map_err(|e| BenchError::Decode {
                what,
                detail: e.to_string(),
            })?;
        Ok((stubs, new_index))
    }

    /// Watches every allocation of jobs whose ID starts with `prefix` and reports each one
    /// when first seen (placed), then once more: when first seen running, or when it ends
    /// without running. Abort the handle to
    /// stop watching.
    pub fn watch(&self, prefix: &str) -> (JoinHandle<()>, mpsc::UnboundedReceiver<AllocEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let api = self.clone();
        let prefix = prefix.to_string();
        let handle = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut index = 0u64;
            loop {
                let (stubs, new_index) = match api.allocations(index).await {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = tx.send(AllocEvent::Error(e));
                        return;
                    }
                };
                let at = Instant::now();
                for ev in classify(&stubs, &prefix, &mut seen, at) {
                    if tx.send(ev).is_err() {
                        return;
                    }
                }
                index = next_index(index, new_index);
            }
        });
        (handle, rx)
    }
}

/// The index for the next blocking query: the answer's, or a fresh start when the index went
/// backwards (as Nomad's API client does).
fn next_index(prev: u64, answered: u64) -> u64 {
    if answered < prev {
        0
    } else {
        answered.max(1)
    }
}

/// The allocations the watcher has reported placed, and those it has reported settled
/// (running or ended).
#[derive(Default)]
struct Seen {
    placed: HashSet<String>,
    settled: HashSet<String>,
}

/// Events for the stubs of watched jobs not reported yet.
fn classify(stubs: &[AllocStub], prefix: &str, seen: &mut Seen, at: Instant) -> Vec<AllocEvent> {
    let mut out = Vec::new();
    for s in stubs {
        if !s.job_id.starts_with(prefix) {
            continue;
        }
        if seen.placed.insert(s.id.clone()) {
            out.push(AllocEvent::Placed {
                job: s.job_id.clone(),
                at,
            });
        }
        if seen.settled.contains(&s.id) {
            continue;
        }
        let ev = match s.client_status.as_str() {
            "running" => AllocEvent::Running {
                job: s.job_id.clone(),
                at,
            },
            "failed" | "lost" | "complete" => AllocEvent::Ended {
                job: s.job_id.clone(),
                alloc: s.id.clone(),
                status: s.client_status.clone(),
            },
            _ => continue,
        };
        seen.settled.insert(s.id.clone());
        out.push(ev);
    }
    out
}

/// The body of a 2xx answer, or an error carrying the status and body.
async fn check(resp: reqwest::Response, what: &str) -> Result<String, BenchError> {
    let status = resp.status();
    let body = resp.text().await.map_err(|e| BenchError::Http {
        what: what.to_string(),
        source: e,
    })?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(BenchError::Status {
            what: what.to_string(),
            status: status.as_u16(),
            body: body.chars().take(500).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stub(id: &str, job: &str, status: &str) -> AllocStub {
        AllocStub {
            id: id.into(),
            job_id: job.into(),
            client_status: status.into(),
        }
    }

    #[test]
    fn reports_each_watched_alloc_once() {
        let mut seen = Seen::default();
        let now = Instant::now();
        let first = vec![
            stub("a1", "bench-1", "pending"),
            stub("a2", "bench-2", "running"),
            stub("a3", "other", "running"),
            stub("a4", "bench-3", "failed"),
        ];
        let ev = classify(&first, "bench-", &mut seen, now);
        assert_eq!(ev.len(), 5);
        assert!(matches!(&ev[0], AllocEvent::Placed { job, .. } if job == "bench-1"));
        assert!(matches!(&ev[1], AllocEvent::Placed { job, .. } if job == "bench-2"));
        assert!(matches!(&ev[2], AllocEvent::Running { job, .. } if job == "bench-2"));
        assert!(matches!(&ev[3], AllocEvent::Placed { job, .. } if job == "bench-3"));
        assert!(matches!(&ev[4], AllocEvent::Ended { status, .. } if status == "failed"));
        let second = vec![
            stub("a1", "bench-1", "running"),
            stub("a2", "bench-2", "running"),
            stub("a4", "bench-3", "failed"),
        ];
        let ev = classify(&second, "bench-", &mut seen, now);
        assert_eq!(ev.len(), 1);
        assert!(matches!(&ev[0], AllocEvent::Running { job, .. } if job == "bench-1"));
    }

    #[test]
    fn index_handling() {
        assert_eq!(next_index(0, 0), 1);
        assert_eq!(next_index(5, 9), 9);
        assert_eq!(next_index(9, 9), 9);
        assert_eq!(next_index(9, 3), 0);
    }

    #[test]
    fn stubs_decode_from_api_json() {
        let v: Vec<AllocStub> = serde_json::from_str(
            r#"[{"ID":"x","JobID":"j","ClientStatus":"running","TaskGroup":"g"}]"#,
        )
        .unwrap();
        assert_eq!(v[0].client_status, "running");
        assert_eq!(sleep_job("j", 3)["TaskGroups"][0]["Count"], 3);
    }
}
