//! `vault`: how long a task takes from submit to its rendered Vault secret, and how many
//! requests each task makes to Vault per hour once it runs. Starts an OpenBao dev server
//! (installed from PyPI as the tests do), a counting TCP proxy in front of it and
//! `caravan agent -dev` whose client uses Vault through the proxy, configures OpenBao to
//! trust the agent's workload identities, then runs raw_exec jobs whose template reads a KV
//! v2 secret. Requests are counted as HTTP/1.1 request lines the agent sends through the
//! proxy, so logins, reads, renewals and preflights all count.

use crate::agent::Agent;
use crate::api::Api;
use crate::args::Args;
use crate::error::BenchError;
use crate::report::{ms, percentile, Report};
use crate::submit_latency::cleanup;
use crate::template::{find_file, run_job, wait_for_content};
use caravan_vault::dev_server::DevServer;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The secret every task renders.
const SECRET: &str = "s3cr3t";

#[derive(Debug, Clone)]
pub struct Options {
    pub tasks: usize,
    pub window: Duration,
    pub caravan: PathBuf,
    pub log_level: Option<String>,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        Ok(Options {
            tasks: a.count("tasks", 20)?,
            window: Duration::from_secs(a.u64("window-s", 300)?),
            caravan: a.caravan_path()?,
            log_level: a.string("log-level"),
        })
    }
}

/// Forwards connections to `to`, counting the HTTP/1.1 requests sent through it.
async fn counting_proxy(
    to: std::net::SocketAddr,
) -> Result<(std::net::SocketAddr, Arc<AtomicU64>), BenchError> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Io {
            what: "binding the counting proxy".into(),
            source: e,
        })?;
    let addr = l.local_addr().map_err(|e| BenchError::Io {
        what: "reading the proxy's address".into(),
        source: e,
    })?;
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = l.accept().await {
            let c = c.clone();
            tokio::spawn(async move {
                let Ok(out) = tokio::net::TcpStream::connect(to).await else {
                    return;
                };
                let (mut ir, mut iw) = inbound.into_split();
                let (mut or, mut ow) = out.into_split();
                let up = async {
                    let marker = b" HTTP/1.1\r\n";
                    let mut buf = vec![0u8; 16 * 1024];
                    // The end of the previous read, so a marker split across reads counts.
                    let mut tail: Vec<u8> = Vec::new();
                    loop {
                        let n = match ir.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let mut scan = std::mem::take(&mut tail);
                        scan.extend_from_slice(&buf[..n]);
                        let hits = scan.windows(marker.len()).filter(|w| w == marker).count();
                        c.fetch_add(hits as u64, Ordering::Relaxed);
                        let keep = scan.len().min(marker.len() - 1);
                        tail = scan[scan.len() - keep..].to_vec();
                        if ow.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                };
                let down = tokio::io::copy(&mut or, &mut iw);
                tokio::select! {
                    _ = up => {}
                    _ = down => {}
                }
            });
        }
    });
    Ok((addr, count))
}

fn vault_job(id: &str) -> Value {
    json!({
        "ID": id, "Name": id, "Type": "service", "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["3600"]},
                "Resources": {"CPU": 10, "MemoryMB": 10},
                "Vault": {"Role": "bench"},
                "Templates": [{
                    "EmbeddedTmpl": "{{ with secret \"secret/data/bench\" }}{{ .Data.data.pw }}{{ end }}",
                    "DestPath": "local/0.txt", "ChangeMode": "noop"
                }]
            }]
        }]
    })
}

/// OpenBao trusts the agent's workload identities: JWT auth reading its JWKS, a `bench`
/// role (audience `vault.io`, one hour tokens, Vault's usual default) and policy, a secret.
async fn configure(root: &caravan_vault::Client, agent_base: &str) -> Result<(), BenchError> {
    let steps: Vec<(&str, Value)> = vec![
        ("sys/auth/jwt-nomad", json!({"type": "jwt"})),
        (
            "auth/jwt-nomad/config",
            json!({"jwks_url": format!("{agent_base}/.well-known/jwks.json"),
                   "jwt_supported_algs": ["EdDSA"]}),
        ),
        (
            "sys/policies/acl/bench",
            json!({"policy": "path \"secret/data/bench\" { capabilities = [\"read\"] }"}),
        ),
        (
            "auth/jwt-nomad/role/bench",
            json!({"role_type": "jwt", "bound_audiences": ["vault.io"],
                   "user_claim": "nomad_job_id", "token_policies": ["bench"],
                   "token_ttl": "1h"}),
        ),
        ("secret/data/bench", json!({"data": {"pw": SECRET}})),
    ];
    for (path, body) in steps {
        root.request(reqwest::Method::POST, path, Some(&body))
            .await
            .map_err(|e| BenchError::Usage(format!("configuring OpenBao ({path}): {e}")))?;
    }
    Ok(())
}

pub async fn run(o: Options, report: &mut Report) -> Result<(), BenchError> {
    eprintln!(
        "== vault: {} tasks rendering a Vault secret, then requests over {} s",
        o.tasks,
        o.window.as_secs()
    );
    let bao = DevServer::start()
        .map_err(|why| BenchError::Usage(format!("OpenBao is not available: {why}")))?;
    let bao_addr: std::net::SocketAddr = bao
        .address
        .trim_start_matches("http://")
        .parse()
        .map_err(|_| BenchError::Usage(format!("OpenBao address {}", bao.address)))?;
    let (proxy, requests) = counting_proxy(bao_addr).await?;
    let (mut agent, dir, data_dir) = Agent::spawn_configured(
        &o.caravan,
        o.log_level.as_deref(),
        "vault",
        &format!(
            "vault {{\n  enabled = true\n  address = \"http://{proxy}\"\n}}\n\
             client {{\n  template {{\n    wait {{\n      min = \"0s\"\n      max = \"0s\"\n    }}\n  }}\n}}\n"
        ),
    )?;
    let api = Api::new(agent.base_url())?;
    agent.wait_healthy(&api, Duration::from_secs(60)).await?;
    configure(&bao.root_client(), &agent.base_url()).await?;

    let prefix = format!("caravan-bench-{}-vault-", std::process::id());
    let ids: Vec<String> = (0..o.tasks).map(|i| format!("{prefix}{i}")).collect();
    let measured = measure(&o, &api, &mut agent, &data_dir, &ids, &requests, report).await;
    let cleanup = cleanup(&api, &mut agent, &ids, &prefix).await;
    drop(bao);
    measured?;
    let leftover = cleanup?;
    agent.discard_log();
    let _ = std::fs::remove_dir_all(&dir);
    report.add("leftover_tasks", leftover as f64, 0, "tasks");
    Ok(())
}

async fn measure(
    o: &Options,
    api: &Api,
    agent: &mut Agent,
    data_dir: &std::path::Path,
    ids: &[String],
    requests: &AtomicU64,
    report: &mut Report,
) -> Result<(), BenchError> {
    let base_url = agent.base_url();
    let mut samples = Vec::with_capacity(ids.len());
    let before = requests.load(Ordering::Relaxed);
    for (i, id) in ids.iter().enumerate() {
        let submitted = SystemTime::now();
        run_job(api, agent, &vault_job(id)).await?;
        let file = find_file(&base_url, data_dir, id, "0.txt").await?;
        wait_for_content(&file, SECRET, agent).await?;
        // The file's modification time is when the renderer wrote it.
        let rendered = std::fs::metadata(&file)
            .and_then(|m| m.modified())
            .map_err(|e| BenchError::Io {
                what: format!("reading {}", file.display()),
                source: e,
            })?;
        samples.push(rendered.duration_since(submitted).unwrap_or_default());
        if (i + 1) % 10 == 0 || i + 1 == ids.len() {
            eprintln!("  {}/{} tasks rendered", i + 1, ids.len());
        }
    }
    let start_requests = requests.load(Ordering::Relaxed) - before;
    samples.sort();
    for (key, p) in [
        ("submit_to_rendered_p50", 50.0),
        ("submit_to_rendered_p99", 99.0),
    ] {
        if let Some(d) = percentile(&samples, p) {
            report.add(key, ms(d), 1, "ms");
        }
    }
    report.add(
        "requests_per_task_start",
        start_requests as f64 / ids.len() as f64,
        1,
        "requests",
    );

    // Steady state: every task runs and renders; count what they ask of Vault.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at = requests.load(Ordering::Relaxed);
    eprintln!("  counting requests for {} s", o.window.as_secs());
    tokio::time::sleep(o.window).await;
    agent.check_alive()?;
    let n = requests.load(Ordering::Relaxed) - at;
    let per_hour = n as f64 / ids.len() as f64 * 3600.0 / o.window.as_secs_f64();
    report.add("steady_requests", n as f64, 0, "requests");
    report.add("steady_requests_per_task_hour", per_hour, 1, "requests");
    Ok(())
}
