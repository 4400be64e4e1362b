//! The pieces the e2e tests that restart an agent share: a dev agent with a `-data-dir`
//! started through the real binary, its CLI, its log, and the two ways it stops (SIGINT, as
//! an operator stops it, and SIGKILL, as a crash does); and what they read of the tasks it
//! runs (job submission, task states, saved handles, logs).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_caravan");

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Agent {
    pub child: Child,
    pub addr: String,
    pub log: PathBuf,
}

impl Agent {
    /// A dev agent on `dir/data`, waited for until its node is ready.
    pub fn start(dir: &Path, name: &str) -> Agent {
        Agent::start_with(dir, name, &[])
    }

    /// As [`Agent::start`], with more command line arguments (`-config=...`).
    pub fn start_with(dir: &Path, name: &str, extra: &[String]) -> Agent {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .args(["agent", "-dev", &format!("-http-port={port}")])
            .arg(format!("-data-dir={}", dir.join("data").display()))
            .args(extra)
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("start agent");
        let agent = Agent {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let o = agent.cli(dir, &["node", "status"]);
            if o.status.success() && text(&o).contains("ready") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready:\n{}",
                agent.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        agent
    }

    pub fn cli(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env("CARAVAN_ADDR", &self.addr)
            .env_remove("NOMAD_ADDR")
            .env_remove("NOMAD_TOKEN")
            .stdin(Stdio::null())
            .output()
            .expect("run caravan")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a crash: nothing of the agent gets to run, tasks are left behind.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGINT, then wait for the agent to exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on the pid we spawned.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        panic!("agent did not stop on SIGINT:\n{}", self.log());
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.child.kill();
        }
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json(agent: &Agent, dir: &Path, path: &str) -> serde_json::Value {
    let o = agent.cli(dir, &["operator", "api", path]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

/// Prints `tick N` every 200 ms for ever.
pub const TICKER: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";

/// Submits the job file `spec` through the CLI, detached.
pub fn run_job(agent: &Agent, dir: &Path, name: &str, spec: &str) {
    let file = dir.join(format!("{name}.nomad.hcl"));
    std::fs::write(&file, spec).expect("job file");
    let o = agent.cli(dir, &["job", "run", "-detach", &file.display().to_string()]);
    assert!(o.status.success(), "{name}: {}\n{}", text(&o), agent.log());
}

/// Alloc id → the state of its task `t`, for a job.
pub fn task_states(agent: &Agent, dir: &Path, job: &str) -> BTreeMap<String, serde_json::Value> {
    let allocs = json(agent, dir, &format!("/v1/job/{job}/allocations"));
    allocs
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| Some((x["ID"].as_str()?.to_string(), x["TaskStates"]["t"].clone())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn wait_until(agent: &Agent, what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "{what}\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether the agent's node has `driver` detected and healthy.
pub fn node_driver_healthy(agent: &Agent, dir: &Path, driver: &str) -> bool {
    let nodes = json(agent, dir, "/v1/nodes");
    let Some(id) = nodes[0]["ID"].as_str() else {
        return false;
    };
    let node = json(agent, dir, &format!("/v1/node/{id}"));
    node["Drivers"][driver]["Detected"] == true && node["Drivers"][driver]["Healthy"] == true
}

/// The driver handle the client saved for task `t` of `alloc` (under `dir/data`).
pub fn saved_handle(dir: &Path, alloc: &str) -> serde_json::Value {
    let p = dir.join(format!("data/client/allocs/{alloc}/t.handle.json"));
    serde_json::from_slice(&std::fs::read(&p).expect("handle")).expect("handle json")
}

/// Task `t`'s stdout, all rotated files in order.
pub fn stdout_log(dir: &Path, alloc: &str) -> String {
    let logs = dir.join(format!("data/alloc/{alloc}/alloc/logs"));
    let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&logs)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n = e
                        .file_name()
                        .to_str()?
                        .strip_prefix("t.stdout.")?
                        .parse()
                        .ok()?;
                    Some((n, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).unwrap_or_default())
        .collect()
}

/// The number of ticks in a log, which must run `tick 0`, `tick 1`, ... without a gap or a
/// duplicate.
pub fn ticks(log: &str) -> usize {
    for (i, line) in log.lines().enumerate() {
        assert_eq!(line, format!("tick {i}"), "line {i} of the log:\n{log}");
    }
    log.lines().count()
}

/// How many `Started` events a task state holds.
pub fn started_events(state: &serde_json::Value) -> usize {
    state["Events"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["Type"] == "Started").count())
        .unwrap_or(0)
}
