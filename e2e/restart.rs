//! End to end: a dev agent with `-data-dir` keeps its server state across a restart. Runs a
//! job, writes a variable and a namespace, saves a snapshot, stops the agent with SIGINT,
//! starts it again on the same data dir, and finds everything back with the same indexes,
//! through the real `caravan` binary only.

mod common;

use common::{json, text, Agent};
use std::time::{Duration, Instant};

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
