//! End to end: a dev agent with `-data-dir` keeps its server state across a restart. Runs a
//! job, writes a variable and a namespace, saves a snapshot, stops the agent with SIGINT,
//! starts it again on the same data dir, and finds everything back with the same indexes,
//! through the real `caravan` binary only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_caravan");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Agent {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Agent {
    /// A dev agent on `dir/data`, waited for until its node is ready.
    fn start(dir: &Path, name: &str) -> Agent {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let child = Command::new(BIN)
            .args(["agent", "-dev", &format!("-http-port={port}")])
            .arg(format!("-data-dir={}", dir.join("data").display()))
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

    fn cli(&self, cwd: &Path, args: &[&str]) -> Output {
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGINT, then wait for the agent to exit.
    fn stop(mut self) {
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(agent: &Agent, dir: &Path, path: &str) -> serde_json::Value {
    let o = agent.cli(dir, &["operator", "api", path]);
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).expect("json")
}

const JOB: &str = r#"
job "persisted" {
  datacenters = ["dc1"]
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["300"]
      }
      resources {
        cpu    = 10
        memory = 16
      }
    }
  }
}
"#;

#[test]
fn server_state_survives_an_agent_restart() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let agent = Agent::start(dir, "first");
    let job_file = dir.join("persisted.nomad.hcl");
    std::fs::write(&job_file, JOB).expect("job file");
    let o = agent.cli(
        dir,
        &["job", "run", "-detach", &job_file.display().to_string()],
    );
    assert!(o.status.success(), "{}\n{}", text(&o), agent.log());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let allocs = json(&agent, dir, "/v1/job/persisted/allocations");
        if allocs
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["ClientStatus"] == "running"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "job never ran:\n{}", agent.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let o = agent.cli(dir, &["var", "put", "app/config", "color=blue"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = agent.cli(
        dir,
        &["namespace", "apply", "-description", "prod things", "prod"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let job_before = json(&agent, dir, "/v1/job/persisted");
    let snap = dir.join("before.snap").display().to_string();
    let o = agent.cli(dir, &["operator", "snapshot", "save", &snap]);
    assert!(o.status.success(), "{}", text(&o));
    agent.stop();

    let agent = Agent::start(dir, "second");
    assert!(
        agent.log().contains("server state restored through index"),
        "{}",
        agent.log()
    );
    let o = agent.cli(dir, &["job", "status", "persisted"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("persisted"), "{}", text(&o));
    let job_after = json(&agent, dir, "/v1/job/persisted");
    for k in ["CreateIndex", "JobModifyIndex", "Version", "SubmitTime"] {
        assert_eq!(job_after[k], job_before[k], "{k}");
    }
    let o = agent.cli(dir, &["var", "get", "app/config"]);
    assert!(text(&o).contains("blue"), "{}", text(&o));
    let o = agent.cli(dir, &["namespace", "status", "prod"]);
    assert!(text(&o).contains("prod things"), "{}", text(&o));
    // The snapshot taken before the restart reads back, at an index the state has passed.
    let o = agent.cli(dir, &["operator", "snapshot", "inspect", "-json", &snap]);
    assert!(o.status.success(), "{}", text(&o));
    let meta: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let index = meta["Index"].as_u64().expect("index");
    assert!(index >= job_before["ModifyIndex"].as_u64().unwrap_or(0));
    // The server files are the owner's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.join("data/server"))
        .expect("server dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    agent.stop();
}
