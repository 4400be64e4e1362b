//! End to end: container tasks outlive a crash of their agent. A dev agent whose docker driver
//! talks to a test engine (Podman's Docker-compatible service and Debian's dockerd, each set
//! up by its script in e2e/containers/, or the sockets in CARAVAN_TEST_DOCKER_SOCK and
//! CARAVAN_TEST_DOCKERD_SOCK) runs three containers printing a tick every 200 ms and a batch
//! container that exits with code 6 after 3 s; the agent is killed with SIGKILL, stays down
//! for 10 s and is started again on the same data dir. Proves that the containers are
//! re-attached, not restarted (same container ids and engine start times, Restarts 0, one
//! Started event), that the ticks written during the outage are in the task logs without a
//! gap or a duplicate, and that the batch task is reported dead with exit code 6 and the
//! output it wrote while no agent ran. Each engine's test prints SKIPPED with why and returns
//! when that engine cannot be started (not root, no package).

mod common;

use common::{
    node_driver_healthy, run_job, saved_handle, started_events, stdout_log, task_states, text,
    ticks, wait_until, Agent, TICKER,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Prints `tick N` every 200 ms for ever.
/// Says it began, runs 3 s, says it ends and exits with code 6.
const SHORT: &str = "echo begin; sleep 3; echo end; exit 6";
const TICKERS: usize = 3;

/// An advisory lock on a file in the temp dir (the same files as the docker driver's engine
/// tests use), released on drop.
struct Lock {
    _file: std::fs::File,
}

fn lock(name: &str, shared: bool) -> Result<Lock, String> {
    let path = std::env::temp_dir().join(format!("caravan-test-{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {path:?}: {e}"))?;
    let op = if shared { libc::LOCK_SH } else { libc::LOCK_EX };
    // SAFETY: flock(2) on a file we hold open.
    if unsafe { libc::flock(file.as_raw_fd(), op) } != 0 {
        return Err(format!(
            "cannot lock {path:?}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(Lock { _file: file })
}

/// Starts the engine (`podman` or `dockerd`) and returns its socket with a shared hold on its
/// containers (the tests that reap every unclaimed container wait meanwhile).
fn engine(name: &str, env: &str) -> Result<(String, Lock), String> {
    let hold = |sock: String| Ok((sock, lock(&format!("{name}-containers"), true)?));
    if let Ok(s) = std::env::var(env) {
        if !s.is_empty() {
            return hold(s);
        }
    }
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err(format!("not root: {name} cannot be started"));
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
    hold(sock)
}

/// One request to the engine's API over its socket; `None` on a 404.
fn engine_api(sock: &str, method: &str, path: &str) -> Option<Value> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
            "--unix-socket",
            sock,
        ])
        .arg(format!("http://d{path}"))
        .output()
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    let (body, code) = body.rsplit_once('\n').unwrap_or(("", "000"));
    match code {
        "404" => None,
        c if c.starts_with('2') => Some(serde_json::from_str(body).unwrap_or(Value::Null)),
        c => panic!("{method} {path}: HTTP {c}: {body} {}", text(&out)),
    }
}

/// Removes the containers it knows of when the test ends, however it ends.
struct Containers {
    sock: String,
    ids: Vec<String>,
}

impl Drop for Containers {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = Command::new("curl")
                .args(["-sS", "-X", "DELETE", "--unix-socket", &self.sock])
                .arg(format!("http://d/containers/{id}?force=1&v=1"))
                .output();
        }
    }
}

fn job(name: &str, kind: &str, count: usize, script: &str) -> String {
    format!(
        r#"
job "{name}" {{
  datacenters = ["dc1"]
  type = "{kind}"
  group "g" {{
    count = {count}
    restart {{
      attempts = 0
      mode     = "fail"
    }}
    reschedule {{
      attempts  = 0
      unlimited = false
    }}
    task "t" {{
      driver = "docker"
      config {{
        image   = "localhost/busybox:test"
        command = "/bin/sh"
        args    = ["-c", {script:?}]
      }}
      kill_timeout = "1s"
      resources {{
        cpu    = 20
        memory = 32
      }}
    }}
  }}
}}
"#
    )
}

/// The container id the client saved in the task's handle.
fn saved_container(dir: &Path, alloc: &str) -> String {
    saved_handle(dir, alloc)["driver_state"]["container_id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn containers_survive_a_killed_agent(name: &str, env: &str) {
    let (sock, _hold) = match engine(name, env) {
        Ok(e) => e,
        Err(why) => {
            eprintln!("SKIPPED: no {name} engine for this test: {why}");
            return;
        }
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    // The shared test image stays for the other tests; their containers are not this
    // agent's to reap.
    let config = dir.join("docker.hcl");
    std::fs::write(
        &config,
        format!(
            r#"
plugin "docker" {{
  config {{
    endpoint = "unix://{sock}"
    gc {{
      image = false
      dangling_containers {{
        enabled = false
      }}
    }}
  }}
}}
"#
        ),
    )
    .expect("config");
    let args = [format!("-config={}", config.display())];
    let agent = Agent::start_with(dir, "first", &args);
    wait_until(
        &agent,
        "docker driver healthy",
        Duration::from_secs(30),
        || node_driver_healthy(&agent, dir, "docker"),
    );
    run_job(
        &agent,
        dir,
        "tick",
        &job("tick", "service", TICKERS, TICKER),
    );
    run_job(&agent, dir, "short", &job("short", "batch", 1, SHORT));
    let mut containers = Containers {
        sock: sock.clone(),
        ids: Vec::new(),
    };
    wait_until(
        &agent,
        "every task running",
        Duration::from_secs(120),
        || {
            let t = task_states(&agent, dir, "tick");
            let s = task_states(&agent, dir, "short");
            t.len() == TICKERS
                && s.len() == 1
                && t.values()
                    .chain(s.values())
                    .all(|s| s["State"] == "running")
        },
    );
    let short_alloc = task_states(&agent, dir, "short")
        .into_keys()
        .next()
        .expect("short alloc");
    containers.ids.push(saved_container(dir, &short_alloc));
    // Container id and engine start time of each ticker before the crash, once it ticks.
    let mut before: BTreeMap<String, (String, Value)> = BTreeMap::new();
    for alloc in task_states(&agent, dir, "tick").into_keys() {
        let id = saved_container(dir, &alloc);
        assert!(!id.is_empty(), "{alloc}: no container id in the handle");
        containers.ids.push(id.clone());
        let c = engine_api(&sock, "GET", &format!("/containers/{id}/json")).expect("container");
        before.insert(alloc, (id, c["State"]["StartedAt"].clone()));
    }
    wait_until(&agent, "ticks logged", Duration::from_secs(30), || {
        before.keys().all(|a| ticks(&stdout_log(dir, a)) >= 2)
    });

    agent.kill9();
    std::thread::sleep(Duration::from_secs(10));
    for (alloc, (id, _)) in &before {
        let c = engine_api(&sock, "GET", &format!("/containers/{id}/json"));
        assert!(
            c.is_some_and(|c| c["State"]["Running"] == true),
            "container of {alloc} stopped with the agent"
        );
    }

    let agent = Agent::start_with(dir, "second", &args);
    wait_until(
        &agent,
        "tickers running again",
        Duration::from_secs(60),
        || {
            task_states(&agent, dir, "tick")
                .values()
                .all(|s| s["State"] == "running")
        },
    );
    // Re-attached, not restarted.
    for (alloc, state) in task_states(&agent, dir, "tick") {
        let (id, started) = &before[&alloc];
        assert_eq!(
            &saved_container(dir, &alloc),
            id,
            "{alloc}: another container"
        );
        let c = engine_api(&sock, "GET", &format!("/containers/{id}/json")).expect("container");
        assert_eq!(
            &c["State"]["StartedAt"], started,
            "{alloc}: container restarted"
        );
        assert_eq!(c["State"]["Running"], true, "{alloc}: {c}");
        assert_eq!(state["Restarts"], 0, "{alloc}: {state}");
        assert_eq!(started_events(&state), 1, "{alloc}: {state}");
        assert!(
            state["Events"]
                .as_array()
                .is_some_and(|e| e.iter().all(|e| e["Type"] != "Failed Restoring Task")),
            "{state}"
        );
    }
    // The ticks of the outage (50 in 10 s) are in the logs, each once, and more keep coming.
    wait_until(
        &agent,
        "the outage's ticks logged",
        Duration::from_secs(30),
        || before.keys().all(|a| ticks(&stdout_log(dir, a)) >= 60),
    );
    for alloc in before.keys() {
        let n = ticks(&stdout_log(dir, alloc));
        assert!(n >= 60, "{alloc}: only {n} ticks logged");
    }
    // The batch task ended during the outage: dead, with its real exit code and all of its
    // output.
    wait_until(
        &agent,
        "batch task reported dead",
        Duration::from_secs(60),
        || {
            task_states(&agent, dir, "short")
                .values()
                .all(|s| s["State"] == "dead")
        },
    );
    let state = task_states(&agent, dir, "short")
        .remove(&short_alloc)
        .expect("short state");
    let terminated = state["Events"]
        .as_array()
        .and_then(|e| e.iter().rev().find(|e| e["Type"] == "Terminated").cloned())
        .unwrap_or_else(|| panic!("no Terminated event: {state}"));
    assert_eq!(terminated["ExitCode"], 6, "{terminated}");
    assert_eq!(state["Failed"], true, "{state}");
    assert_eq!(state["Restarts"], 0, "{state}");
    assert_eq!(started_events(&state), 1, "{state}");
    assert_eq!(stdout_log(dir, &short_alloc), "begin\nend\n");

    // Stopping the job removes the containers.
    let o = agent.cli(dir, &["job", "stop", "-detach", "tick"]);
    assert!(o.status.success(), "{}", text(&o));
    wait_until(
        &agent,
        "containers removed",
        Duration::from_secs(60),
        || {
            before.values().all(|(id, _)| {
                engine_api(&sock, "GET", &format!("/containers/{id}/json")).is_none()
            })
        },
    );
    agent.stop();
}

#[test]
fn containers_survive_a_killed_agent_on_podman() {
    containers_survive_a_killed_agent("podman", "CARAVAN_TEST_DOCKER_SOCK");
}

#[test]
fn containers_survive_a_killed_agent_on_dockerd() {
    containers_survive_a_killed_agent("dockerd", "CARAVAN_TEST_DOCKERD_SOCK");
}
