//! `template`: how fast a Consul KV write reaches a task's rendered file, and how much memory
//! each watched template costs. Starts the in-repo Consul test server
//! (`caravan-consul-test-server`, a separate process) and `caravan agent -dev` pointed at it
//! (`consul { address }`), runs raw_exec jobs whose templates read KV keys with `wait` off
//! and `change_mode = "noop"`, writes keys with `PUT /v1/kv/...` and watches the files.

use crate::agent::{free_port, Agent};
use crate::api::{AllocEvent, Api};
use crate::args::Args;
use crate::error::BenchError;
use crate::report::{ms, percentile, Report};
use crate::submit_latency::cleanup;
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Time the agent gets to settle before each memory reading.
const SETTLE: Duration = Duration::from_secs(3);
/// How long a job may take to run (its templates render first).
const RUN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long one KV write may take to reach the file before the run is abandoned.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the file is looked at while waiting for a write: a `stat` (the renderer writes
/// a new file and renames it over the old, so a new inode means a new render), and a read
/// when the inode changed.
const POLL: Duration = Duration::from_micros(100);

#[derive(Debug, Clone)]
pub struct Options {
    pub writes: usize,
    pub templates: usize,
    pub gap: Duration,
    pub caravan: PathBuf,
    pub consul_server: PathBuf,
    pub log_level: Option<String>,
}

impl Options {
    pub fn from_args(a: &Args) -> Result<Options, BenchError> {
        let caravan = a.caravan_path()?;
        let consul_server = match a.string("consul-server") {
            Some(p) => PathBuf::from(p),
            None => caravan
                .parent()
                .map(|d| d.join("caravan-consul-test-server"))
                .unwrap_or_else(|| PathBuf::from("caravan-consul-test-server")),
        };
        Ok(Options {
            writes: a.count("writes", 200)?,
            templates: a.count("templates", 500)?,
            gap: Duration::from_millis(a.u64("gap-ms", 50)?),
            caravan,
            consul_server,
            log_level: a.string("log-level"),
        })
    }
}

/// The Consul test server process, stopped when dropped.
struct Consul {
    child: Child,
    addr: String,
    http: reqwest::Client,
}

impl Consul {
    async fn start(bin: &Path) -> Result<Consul, BenchError> {
        if !bin.is_file() {
            return Err(BenchError::Usage(format!(
                "cannot find the Consul test server at {}: build it with `cargo build --release -p caravan-consul-test-server` or pass --consul-server PATH",
                bin.display()
            )));
        }
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new(bin)
            .args(["-listen", &addr])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| BenchError::Io {
                what: format!("starting {}", bin.display()),
                source: e,
            })?;
        eprintln!("started {} (pid {}) on {addr}", bin.display(), child.id());
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| BenchError::Http {
                what: "building the HTTP client".into(),
                source: e,
            })?;
        let c = Consul { child, addr, http };
        let start = Instant::now();
        loop {
            let r = c
                .http
                .get(format!("http://{}/v1/status/leader", c.addr))
                .send()
                .await;
            if matches!(r, Ok(r) if r.status().is_success()) {
                return Ok(c);
            }
            if start.elapsed() > Duration::from_secs(30) {
                return Err(BenchError::Usage(format!(
                    "the Consul test server did not answer on {} within 30 s",
                    c.addr
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `PUT /v1/kv/<key>` with `value` as the body.
    async fn put(&self, key: &str, value: &str) -> Result<(), BenchError> {
        let what = format!("writing Consul key {key}");
        let resp = self
            .http
            .put(format!("http://{}/v1/kv/{key}", self.addr))
            .body(value.to_string())
            .send()
            .await
            .map_err(|e| BenchError::Http {
                what: what.clone(),
                source: e,
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status != 200 || body.trim() != "true" {
            return Err(BenchError::Status { what, status, body });
        }
        Ok(())
    }
}

impl Drop for Consul {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw_exec `/bin/sleep` job with one task `t` whose templates render `keys[i]` into
/// `local/<i>.txt`, with `wait` off (`{min 0, max 0}`) and `change_mode = "noop"`.
fn template_job(id: &str, keys: &[String]) -> Value {
    let templates: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            json!({
                "EmbeddedTmpl": format!("{{{{ key \"{k}\" }}}}"),
                "DestPath": format!("local/{i}.txt"),
                "ChangeMode": "noop",
                "Wait": {"Min": 0, "Max": 0}
            })
        })
        .collect();
    json!({
        "ID": id,
        "Name": id,
        "Type": "service",
        "Datacenters": ["*"],
        "TaskGroups": [{
            "Name": "g",
            "Count": 1,
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["3600"]},
                "Resources": {"CPU": 10, "MemoryMB": 10},
                "Templates": templates
            }]
        }]
    })
}

pub async fn run(o: Options, report: &mut Report) -> Result<(), BenchError> {
    eprintln!(
        "== template: {} KV writes to a rendered file, then {} templates in one task",
        o.writes, o.templates
    );
    let consul = Consul::start(&o.consul_server).await?;
    let (mut agent, dir, data_dir) = Agent::spawn_configured(
        &o.caravan,
        o.log_level.as_deref(),
        "template",
        &format!("consul {{\n  address = \"{}\"\n}}\n", consul.addr),
    )?;
    let api = Api::new(agent.base_url())?;
    agent.wait_healthy(&api, Duration::from_secs(60)).await?;

    let prefix = format!("caravan-bench-{}-tpl-", std::process::id());
    let ids: Vec<String> = ["latency", "empty", "many", "one"]
        .iter()
        .map(|s| format!("{prefix}{s}"))
        .collect();
    let measured = measure(&o, &consul, &api, &mut agent, &data_dir, &ids, report).await;
    let cleanup = cleanup(&api, &mut agent, &ids, &prefix).await;
    drop(consul);
    measured?;
    let leftover = cleanup?;
    agent.discard_log();
    let _ = std::fs::remove_dir_all(&dir);
    report.add("leftover_tasks", leftover as f64, 0, "tasks");
    Ok(())
}

async fn measure(
    o: &Options,
    consul: &Consul,
    api: &Api,
    agent: &mut Agent,
    data_dir: &Path,
    ids: &[String],
    report: &mut Report,
) -> Result<(), BenchError> {
    // (a) KV write -> rendered file.
    consul.put("bench/k", "v0").await?;
    run_job(api, agent, &template_job(&ids[0], &["bench/k".into()])).await?;
    let base_url = agent.base_url();
    let file = find_file(&base_url, data_dir, &ids[0], "0.txt").await?;
    eprintln!("watching {}", file.display());
    wait_for_content(&file, "v0", agent).await?;
    let mut samples = Vec::with_capacity(o.writes);
    for i in 1..=o.writes {
        tokio::time::sleep(o.gap).await;
        let value = format!("v{i}");
        let start = Instant::now();
        consul.put("bench/k", &value).await?;
        wait_for_content(&file, &value, agent).await?;
        samples.push(start.elapsed());
        if i % 50 == 0 || i == o.writes {
            eprintln!("  {i}/{} writes", o.writes);
        }
    }
    samples.sort();
    for (key, p) in [("write_to_file_p50", 50.0), ("write_to_file_p99", 99.0)] {
        if let Some(d) = percentile(&samples, p) {
            report.add(key, ms(d), 2, "ms");
        }
    }
    if let (Some(min), Some(max)) = (samples.first(), samples.last()) {
        report.add("write_to_file_min", ms(*min), 2, "ms");
        report.add("write_to_file_max", ms(*max), 2, "ms");
    }

    // (b) Memory per watched template. The agent is warm: the job above paid the one-off
    // costs (the Consul client, the first task runner). Then come a job without templates
    // (one more allocation and task), the same job with one template (a task with a template
    // runner, what Nomad's 2 MiB figure is about), and the same job with N templates reading
    // N distinct keys (N watchers).
    consul.put("bench/one", "one").await?;
    for i in 0..o.templates {
        consul
            .put(&format!("bench/m/{i}"), &format!("m{i}"))
            .await?;
    }
    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let base = agent.rss_kib()?;
    run_job(api, agent, &template_job(&ids[1], &[])).await?;
    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let with_empty = agent.rss_kib()?;
    run_job(api, agent, &template_job(&ids[3], &["bench/one".into()])).await?;
    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let with_one = agent.rss_kib()?;
    let keys: Vec<String> = (0..o.templates).map(|i| format!("bench/m/{i}")).collect();
    let start = Instant::now();
    run_job(api, agent, &template_job(&ids[2], &keys)).await?;
    report.add(
        &format!("time_to_running_{}_templates", o.templates),
        ms(start.elapsed()),
        0,
        "ms",
    );
    // Every file rendered with its own key's value.
    for i in [0, o.templates / 2, o.templates - 1] {
        let f = find_file(&base_url, data_dir, &ids[2], &format!("{i}.txt")).await?;
        wait_for_content(&f, &format!("m{i}"), agent).await?;
    }
    tokio::time::sleep(SETTLE).await;
    agent.check_alive()?;
    let with_many = agent.rss_kib()?;
    let alloc_cost = with_empty.saturating_sub(base);
    report.add("rss_before", base as f64 / 1024.0, 1, "MiB");
    report.add("rss_alloc_no_template", alloc_cost as f64, 0, "KiB");
    report.add(
        "rss_alloc_one_template",
        with_one.saturating_sub(with_empty) as f64,
        0,
        "KiB",
    );
    report.add(
        &format!("rss_alloc_{}_templates", o.templates),
        with_many.saturating_sub(with_one) as f64,
        0,
        "KiB",
    );
    let per = with_many
        .saturating_sub(with_one)
        .saturating_sub(alloc_cost) as f64
        / o.templates as f64;
    report.add("rss_per_template", per, 1, "KiB");

    // The same write path with all those watchers open.
    let mut busy = Vec::new();
    let f = find_file(&base_url, data_dir, &ids[2], "0.txt").await?;
    for i in 1..=o.writes.min(100) {
        tokio::time::sleep(o.gap).await;
        let value = format!("m0-{i}");
        let start = Instant::now();
        consul.put("bench/m/0", &value).await?;
        wait_for_content(&f, &value, agent).await?;
        busy.push(start.elapsed());
    }
    busy.sort();
    for (key, p) in [
        ("busy_write_to_file_p50", 50.0),
        ("busy_write_to_file_p99", 99.0),
    ] {
        if let Some(d) = percentile(&busy, p) {
            report.add(key, ms(d), 2, "ms");
        }
    }
    Ok(())
}

/// Registers `job` and waits until its allocation runs (its templates rendered first).
pub async fn run_job(api: &Api, agent: &mut Agent, job: &Value) -> Result<(), BenchError> {
    let id = job["ID"].as_str().unwrap_or_default().to_string();
    let (watcher, mut events) = api.watch(&id);
    let start = Instant::now();
    let result = async {
        api.register(job).await?;
        loop {
            let left = RUN_TIMEOUT.saturating_sub(start.elapsed());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Some(AllocEvent::Placed { .. })) => {}
                Ok(Some(AllocEvent::Running { .. })) => return Ok(()),
                Ok(Some(AllocEvent::Ended { job, alloc, status })) => {
                    return Err(BenchError::AllocFailed {
                        job,
                        alloc,
                        status,
                        log: agent.log.clone(),
                    })
                }
                Ok(Some(AllocEvent::Error(e))) => return Err(e),
                Ok(None) | Err(_) => {
                    agent.check_alive()?;
                    return Err(BenchError::Timeout {
                        what: format!("job {id} to run"),
                        secs: RUN_TIMEOUT.as_secs(),
                        log: agent.log.clone(),
                    });
                }
            }
        }
    }
    .await;
    watcher.abort();
    result
}

/// The ID of the one allocation of `job` (`GET /v1/job/:id/allocations`).
async fn alloc_id(base: &str, job: &str) -> Result<String, BenchError> {
    let what = format!("listing the allocations of {job}");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| BenchError::Http {
            what: what.clone(),
            source: e,
        })?;
    let resp = http
        .get(format!("{base}/v1/job/{job}/allocations"))
        .send()
        .await
        .map_err(|e| BenchError::Http {
            what: what.clone(),
            source: e,
        })?;
    let list: Value = resp.json().await.map_err(|e| BenchError::Http {
        what: what.clone(),
        source: e,
    })?;
    list.get(0)
        .and_then(|a| a["ID"].as_str())
        .map(String::from)
        .ok_or_else(|| BenchError::Decode {
            what,
            detail: format!("no allocation in {list}"),
        })
}

/// The rendered file `local/<name>` of task `t` of `job`'s allocation, under the data dir.
pub async fn find_file(
    base: &str,
    data_dir: &Path,
    job: &str,
    name: &str,
) -> Result<PathBuf, BenchError> {
    let alloc = alloc_id(base, job).await?;
    let tail = format!("{alloc}/t/local/{name}");
    walk(data_dir, &tail, 0).ok_or_else(|| BenchError::Decode {
        what: format!("finding the rendered file of {job}"),
        detail: format!("no .../{tail} under {}", data_dir.display()),
    })
}

fn walk(dir: &Path, tail: &str, depth: usize) -> Option<PathBuf> {
    if depth > 8 {
        return None;
    }
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(tail) {
            return Some(p);
        }
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            if let Some(f) = walk(&p, tail, depth + 1) {
                return Some(f);
            }
        }
    }
    None
}

/// Waits until `file` holds exactly `want`: a `stat` every [`POLL`], a read when the inode
/// changed (the renderer renames a new file over the old one).
pub async fn wait_for_content(
    file: &Path,
    want: &str,
    agent: &mut Agent,
) -> Result<(), BenchError> {
    let start = Instant::now();
    let mut last_ino = None;
    loop {
        if let Ok(m) = std::fs::metadata(file) {
            if last_ino != Some(m.ino()) {
                last_ino = Some(m.ino());
                if std::fs::read_to_string(file).is_ok_and(|t| t == want) {
                    return Ok(());
                }
            }
        }
        if start.elapsed() > WRITE_TIMEOUT {
            agent.check_alive()?;
            return Err(BenchError::Timeout {
                what: format!("{} to hold {want:?}", file.display()),
                secs: WRITE_TIMEOUT.as_secs(),
                log: agent.log.clone(),
            });
        }
        // A blocking sleep: nothing else needs this thread while a write is in flight, and
        // it keeps the poll interval short (tokio's timer has 1 ms granularity).
        std::thread::sleep(POLL);
    }
}
