//! Nomad-native service checks (`check` blocks of `provider = "nomad"` services): the client
//! runs `http` and `tcp` checks itself every `interval` (bounded by `timeout`) and keeps each
//! check's latest result, in Nomad's `CheckQueryResult` shape, for
//! `GET /v1/client/allocation/:id/checks` and the allocation's health. Results live in one
//! process-wide store keyed by allocation ID (IDs are unique across the clients of a
//! process) and are dropped when the allocation's services are deregistered.

use caravan_structs::{Allocation, Node};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const CHECK_SUCCESS: &str = "success";
pub const CHECK_FAILURE: &str = "failure";
pub const CHECK_PENDING: &str = "pending";

/// Nomad's `CheckQueryResult`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckQueryResult {
    #[serde(rename = "ID")]
    pub id: String,
    /// `healthiness`, or `readiness` for checks with `on_update = "ignore"`.
    pub mode: String,
    pub status: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub status_code: u16,
    pub output: String,
    /// Unix seconds.
    pub timestamp: i64,
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub task: String,
    pub service: String,
    pub check: String,
}

fn is_zero(v: &u16) -> bool {
    *v == 0
}

type Store = Mutex<HashMap<String, BTreeMap<String, CheckQueryResult>>>;

fn store() -> &'static Store {
    static STORE: OnceLock<Store> = OnceLock::new();
    STORE.get_or_init(Default::default)
}

fn with_store<R>(
    f: impl FnOnce(&mut HashMap<String, BTreeMap<String, CheckQueryResult>>) -> R,
) -> R {
    match store().lock() {
        Ok(mut g) => f(&mut g),
        Err(p) => f(&mut p.into_inner()),
    }
}

/// The latest result of each check of `alloc_id`, by check ID.
pub fn results(alloc_id: &str) -> BTreeMap<String, CheckQueryResult> {
    with_store(|s| s.get(alloc_id).cloned().unwrap_or_default())
}

/// Whether every `healthiness` check of the allocation passes (`None`: it has none).
pub fn healthy(alloc_id: &str) -> Option<bool> {
    let r = results(alloc_id);
    let health: Vec<_> = r.values().filter(|c| c.mode == "healthiness").collect();
    if health.is_empty() {
        return None;
    }
    Some(health.iter().all(|c| c.status == CHECK_SUCCESS))
}

fn record(alloc_id: &str, r: CheckQueryResult) {
    with_store(|s| {
        s.entry(alloc_id.to_string())
            .or_default()
            .insert(r.id.clone(), r);
    });
}

/// Forgets the named checks of an allocation.
pub fn forget(alloc_id: &str, check_ids: &[String]) {
    with_store(|s| {
        if let Some(m) = s.get_mut(alloc_id) {
            for id in check_ids {
                m.remove(id);
            }
            if m.is_empty() {
                s.remove(alloc_id);
            }
        }
    });
}

/// One check to run.
#[derive(Debug, Clone)]
pub struct Check {
    pub alloc_id: String,
    /// The result's identity (ID, mode, group, task, service and check names).
    pub template: CheckQueryResult,
    pub kind: Kind,
    pub interval: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Tcp {
        addr: String,
    },
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
    },
}

/// Builds the check of one `check` block (job JSON) of a service at `address:port`;
/// `Ok(None)` for types the client does not run (validation refuses them for the nomad
/// provider).
#[allow(clippy::too_many_arguments)]
pub fn build(
    raw: &serde_json::Value,
    alloc: &Allocation,
    node: &Node,
    task: &str,
    service: &str,
    address: &str,
    port: Option<u16>,
    env: &crate::client::taskenv::TaskEnv,
) -> Result<Option<Check>, String> {
    let s = |k: &str| {
        raw.get(k)
            .and_then(|v| v.as_str())
            .map(|v| env.interpolate(v))
            .unwrap_or_default()
    };
    let kind = s("Type").to_ascii_lowercase();
    if kind != "http" && kind != "tcp" {
        return Ok(None);
    }
    let (host, port) = match s("PortLabel") {
        l if l.is_empty() => (address.to_string(), port),
        l => crate::client::hooks::services::address(&s("AddressMode"), &l, alloc, node)?,
    };
    let port = port.ok_or("the check has no port (set port on the service or the check)")?;
    let hostport = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let dur = |k: &str, default: u64| -> Result<Duration, String> {
        Ok(crate::client::hooks::services::duration(raw.get(k))?
            .unwrap_or(Duration::from_secs(default)))
    };
    let interval = dur("Interval", 10)?.max(Duration::from_millis(100));
    let timeout = dur("Timeout", 5)?.max(Duration::from_millis(10));
    let name = match s("Name") {
        n if n.is_empty() => format!("service: {service:?} check"),
        n => n,
    };
    let kind = if kind == "tcp" {
        Kind::Tcp { addr: hostport }
    } else {
        let protocol = match s("Protocol") {
            p if p.is_empty() => "http".to_string(),
            p => p,
        };
        let mut path = s("Path");
        if !path.starts_with('/') {
            path.insert(0, '/');
        }
        let method = match s("Method") {
            m if m.is_empty() => "GET".to_string(),
            m => m.to_ascii_uppercase(),
        };
        let headers = raw
            .get("Header")
            .and_then(|v| v.as_object())
            .map(|h| {
                h.iter()
                    .flat_map(|(k, vs)| {
                        vs.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str())
                            .map(move |v| (k.clone(), env.interpolate(v)))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Kind::Http {
            url: format!("{protocol}://{hostport}{path}"),
            method,
            headers,
        }
    };
    let on_update = s("OnUpdate");
    let mut h = Sha256::new();
    for part in [
        alloc.id.as_str(),
        alloc.task_group.as_str(),
        task,
        service,
        &name,
        &format!("{kind:?}"),
        &on_update,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(interval.as_nanos().to_be_bytes());
    h.update(timeout.as_nanos().to_be_bytes());
    let id: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(Check {
        alloc_id: alloc.id.clone(),
        template: CheckQueryResult {
            id,
            mode: if on_update == "ignore" {
                "readiness".into()
            } else {
                "healthiness".into()
            },
            status: CHECK_PENDING.into(),
            group: alloc.task_group.clone(),
            task: task.to_string(),
            service: service.to_string(),
            check: name,
            ..Default::default()
        },
        kind,
        interval,
        timeout,
    }))
}

/// Runs one check once: its status, HTTP status code (0 for tcp) and output.
pub async fn run_once(kind: &Kind, timeout: Duration) -> (&'static str, u16, String) {
    match kind {
        Kind::Tcp { addr } => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
                Ok(Ok(_)) => (CHECK_SUCCESS, 0, "nomad: tcp ok".into()),
                Ok(Err(e)) => (CHECK_FAILURE, 0, format!("dial tcp {addr}: {e}")),
                Err(_) => (CHECK_FAILURE, 0, format!("dial tcp {addr}: i/o timeout")),
            }
        }
        Kind::Http {
            url,
            method,
            headers,
        } => {
            let method = match reqwest::Method::from_bytes(method.as_bytes()) {
                Ok(m) => m,
                Err(e) => return (CHECK_FAILURE, 0, format!("invalid method {method:?}: {e}")),
            };
            let client = match reqwest::Client::builder().timeout(timeout).build() {
                Ok(c) => c,
                Err(e) => return (CHECK_FAILURE, 0, e.to_string()),
            };
            let mut req = client.request(method, url);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            match req.send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let ok = resp.status().is_success();
                    let body = resp.text().await.unwrap_or_default();
                    let mut body: String = body.chars().take(4096).collect();
                    if ok && code == 200 {
                        body = "nomad: http ok".into();
                    }
                    (if ok { CHECK_SUCCESS } else { CHECK_FAILURE }, code, body)
                }
                Err(e) => (CHECK_FAILURE, 0, format!("nomad: {e}")),
            }
        }
    }
}

/// Runs `check` every interval until aborted, recording each result (first `pending`).
pub async fn run(check: Check) {
    record(&check.alloc_id, check.template.clone());
    loop {
        let (status, code, output) = run_once(&check.kind, check.timeout).await;
        record(
            &check.alloc_id,
            CheckQueryResult {
                status: status.into(),
                status_code: code,
                output,
                timestamp: caravan_structs::time::now_nanos() / 1_000_000_000,
                ..check.template.clone()
            },
        );
        tokio::time::sleep(check.interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_and_http_checks_report_success_and_failure() {
        let t = Duration::from_secs(5);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_addr = tcp.local_addr().unwrap().to_string();
        assert_eq!(
            run_once(&Kind::Tcp { addr: tcp_addr }, t).await.0,
            CHECK_SUCCESS
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // A tiny HTTP server answering 503 then 200.
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut c, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                let body = "down";
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                c.write_all(resp.as_bytes()).await.unwrap();
            }
        });
        let http = Kind::Http {
            url: format!("http://{addr}/health"),
            method: "GET".into(),
            headers: vec![("X-A".into(), "b".into())],
        };
        assert_eq!(
            run_once(&http, t).await,
            (CHECK_FAILURE, 503, "down".to_string())
        );
        assert_eq!(
            run_once(&http, t).await,
            (CHECK_SUCCESS, 200, "nomad: http ok".to_string())
        );
        // Nothing listens any more on a fresh port.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone_addr = gone.local_addr().unwrap().to_string();
        drop(gone);
        assert_eq!(
            run_once(&Kind::Tcp { addr: gone_addr }, t).await.0,
            CHECK_FAILURE
        );
    }

    #[test]
    fn store_reports_health_of_healthiness_checks_only() {
        let alloc = "nomad-checks-store-test";
        assert_eq!(healthy(alloc), None);
        let r = |id: &str, mode: &str, status: &str| CheckQueryResult {
            id: id.into(),
            mode: mode.into(),
            status: status.into(),
            ..Default::default()
        };
        record(alloc, r("a", "healthiness", CHECK_SUCCESS));
        record(alloc, r("b", "readiness", CHECK_FAILURE));
        assert_eq!(healthy(alloc), Some(true));
        record(alloc, r("a", "healthiness", CHECK_FAILURE));
        assert_eq!(healthy(alloc), Some(false));
        forget(alloc, &["a".into(), "b".into()]);
        assert!(results(alloc).is_empty());
    }
}
