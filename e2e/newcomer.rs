//! End to end: the newcomer path from the README, with the real `caravan` binary. Starts a dev
//! agent on a free port, then drives it only through the CLI, as a person would: node status,
//! server members, job init/run/status, alloc status/logs, job stop, and bad input.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_caravan");

struct Agent {
    child: Child,
    addr: String,
    dir: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = nix_kill(self.child.id(), libc::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nix_kill(pid: u32, sig: i32) -> i32 {
    // SAFETY: kill(2) with a pid we spawned.
    unsafe { libc::kill(pid as i32, sig) }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn start_agent() -> Agent {
    start_agent_with(|_| vec![])
}

/// A dev agent with extra flags, which may refer to files in the agent's own temp dir, once
/// its node is ready.
fn start_agent_with(extra: impl FnOnce(&Path) -> Vec<String>) -> Agent {
    let agent = launch_agent(extra);
    wait_until(
        "agent healthy with a ready node",
        Duration::from_secs(30),
        || {
            let o = agent.cli(&["node", "status"]);
            o.status.success() && stdout(&o).contains("ready")
        },
    );
    agent
}

/// A dev agent with extra flags, started but not waited for.
fn launch_agent(extra: impl FnOnce(&Path) -> Vec<String>) -> Agent {
    let dir = std::env::temp_dir().join(format!(
        "caravan-e2e-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let port = free_port();
    let log = std::fs::File::create(dir.join("agent.log")).expect("log file");
    let child = Command::new(BIN)
        .args(["agent", "-dev", &format!("-http-port={port}")])
        .arg(format!("-data-dir={}", dir.join("data").display()))
        .args(extra(&dir))
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start agent");
    Agent {
        child,
        addr: format!("http://127.0.0.1:{port}"),
        dir,
    }
}

impl Agent {
    fn cli(&self, args: &[&str]) -> Output {
        self.cli_in(&self.dir, args)
    }

    fn cli_in(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env("CARAVAN_ADDR", &self.addr)
            .env_remove("NOMAD_ADDR")
            .stdin(Stdio::null())
            .output()
            .expect("run caravan")
    }

    fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.join("agent.log")) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn all_output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

/// Pids whose environment carries `NOMAD_ALLOC_ID=<alloc>`: the task's processes.
fn task_pids(alloc_id: &str) -> Vec<i32> {
    let needle = format!("NOMAD_ALLOC_ID={alloc_id}");
    let mut pids = vec![];
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(e.path().join("stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .map(|r| r.trim_start().starts_with('Z'))
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        if !zombie && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn newcomer_path() {
    let agent = start_agent();

    // caravan node status: one node, ready, eligible, with its drivers.
    let o = agent.cli(&["node", "status"]);
    let out = stdout(&o);
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(out.contains("ready") && out.contains("eligible"), "{out}");
    let node_id = out
        .lines()
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    let o = agent.cli(&["node", "status", &node_id]);
    assert!(stdout(&o).contains("raw_exec"), "{}", all_output(&o));

    // caravan server members: one alive leader.
    let o = agent.cli(&["server", "members"]);
    let out = stdout(&o);
    assert!(out.contains("alive") && out.contains("true"), "{out}");

    // caravan job init, then job run with live monitoring.
    let work = agent.dir.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let o = agent.cli_in(&work, &["job", "init"]);
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(work.join("example.nomad.hcl").exists());
    let o = agent.cli_in(&work, &["job", "run", "example.nomad.hcl"]);
    let out = all_output(&o);
    assert!(
        o.status.success(),
        "job run failed:\n{out}\nagent log:\n{}",
        agent.log()
    );
    assert!(out.contains("Monitoring evaluation"), "{out}");
    assert!(
        out.contains("successful"),
        "deployment did not finish: {out}"
    );

    // caravan status example (and job status): running, with its allocation.
    let o = agent.cli(&["status", "example"]);
    let out = stdout(&o);
    assert!(out.contains("running"), "{out}");
    let alloc_prefix = out
        .lines()
        .skip_while(|l| !l.starts_with("Allocations"))
        .nth(2)
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_string();
    assert_eq!(alloc_prefix.len(), 8, "no allocation row in:\n{out}");
    let o = agent.cli(&["job", "status", "example"]);
    assert!(stdout(&o).contains(&alloc_prefix));
    // status <prefix> resolves through /v1/search.
    let o = agent.cli(&["status", &alloc_prefix[..6]]);
    assert!(stdout(&o).contains("redis"), "{}", all_output(&o));

    // caravan alloc status <prefix>: the task is running, with events.
    let o = agent.cli(&["alloc", "status", &alloc_prefix]);
    let out = stdout(&o);
    assert!(out.contains("Task \"redis\" is \"running\""), "{out}");
    assert!(out.contains("Started"), "{out}");
    let full_id = out
        .lines()
        .find(|l| l.starts_with("ID"))
        .and_then(|l| l.split('=').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    assert_eq!(full_id.len(), 36, "{out}");

    // caravan alloc logs: the task's own line.
    let o = agent.cli(&["alloc", "logs", &alloc_prefix, "redis"]);
    assert!(
        stdout(&o).contains("Ready to accept connections"),
        "{}",
        all_output(&o)
    );
    let o = agent.cli(&["alloc", "logs", "-tail", "-n", "1", &alloc_prefix, "redis"]);
    assert_eq!(stdout(&o).trim(), "Ready to accept connections");

    // caravan alloc exec: stdin piped in (no TTY), stdout and stderr apart, and the remote
    // command's exit code as the CLI's own; the command's flags (`-c`) stay its own.
    let mut child = Command::new(BIN)
        .args(["alloc", "exec", "-t=false", &alloc_prefix])
        .args(["/bin/sh", "-c", "cat; echo to-stderr >&2; exit 3"])
        .current_dir(&agent.dir)
        .env("CARAVAN_ADDR", &agent.addr)
        .env_remove("NOMAD_ADDR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run caravan");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"piped in\n").expect("write stdin");
        // Dropping stdin is the end of input, which the command's `cat` sees.
    }
    let o = child.wait_with_output().expect("caravan alloc exec");
    assert_eq!(o.status.code(), Some(3), "{}", all_output(&o));
    assert_eq!(stdout(&o), "piped in\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "to-stderr\n");
    exec_with_a_terminal(&agent, &alloc_prefix);
    // -job: the argument is a job, and one of its running allocations is used.
    let o = agent.cli(&[
        "alloc", "exec", "-job", "-i=false", "-t=false", "example", "echo", "via-job",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert_eq!(stdout(&o), "via-job\n");
    let o = agent.cli(&[
        "alloc",
        "exec",
        "-i=false",
        "-t=false",
        "-task",
        "nope",
        &alloc_prefix,
        "true",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        all_output(&o).contains("Could not find task named: nope"),
        "{}",
        all_output(&o)
    );

    let pids = task_pids(&full_id);
    assert!(!pids.is_empty(), "task process not found");

    // caravan job stop: the task's processes are gone afterwards.
    let o = agent.cli(&["job", "stop", "example"]);
    assert!(o.status.success(), "{}", all_output(&o));
    wait_until("task processes gone", Duration::from_secs(15), || {
        task_pids(&full_id).is_empty()
    });
    wait_until("job dead", Duration::from_secs(15), || {
        stdout(&agent.cli(&["job", "status", "example"])).contains("dead")
    });
    // The client reports the kill in its next update batch.
    wait_until("the Killed task event", Duration::from_secs(10), || {
        let out = stdout(&agent.cli(&["alloc", "status", &alloc_prefix]));
        out.contains("Killing") && out.contains("Killed") && out.contains("complete")
    });

    // Bad input: an HCL syntax error names file:line:column and registers nothing.
    std::fs::write(
        work.join("broken.nomad.hcl"),
        "job \"broken\" {\n  group \"g\" {\n    count = \n  }\n}\n",
    )
    .expect("write broken job");
    let o = agent.cli_in(&work, &["job", "run", "broken.nomad.hcl"]);
    let out = all_output(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("broken.nomad.hcl:"), "{out}");
    let o = agent.cli(&["status"]);
    assert!(!stdout(&o).contains("broken"), "{}", stdout(&o));

    // Agent configuration files are checked with file:line:col too.
    std::fs::write(
        work.join("agent.hcl"),
        "data_dir = \"/tmp/x\"\nbogus_key = 1\n",
    )
    .expect("write config");
    let o = agent.cli_in(&work, &["config", "validate", "agent.hcl"]);
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(
        all_output(&o).contains("agent.hcl:2:1"),
        "{}",
        all_output(&o)
    );
    std::fs::write(work.join("agent.hcl"), "data_dir = \"/tmp/x\"\n").expect("write config");
    let o = agent.cli_in(&work, &["config", "validate", "agent.hcl"]);
    assert!(
        stdout(&o).contains("Configuration is valid!"),
        "{}",
        all_output(&o)
    );
}

/// SIGHUP re-reads the config files: the log level, client meta, artifact and template
/// settings change while the task keeps running with the same PID; a restart-only change is
/// reported as such.
#[test]
fn sighup_reloads_log_level_and_meta_without_restarting_tasks() {
    let write_config = |dir: &Path, level: &str, rack: &str, class: &str| {
        std::fs::write(
            dir.join("agent.hcl"),
            format!(
                "log_level = \"{level}\"\nclient {{\n  node_class = \"{class}\"\n  meta {{\n    rack = \"{rack}\"\n  }}\n  artifact {{\n    http_max_size = \"{rack}MB\"\n  }}\n  template {{\n    block_query_wait = \"{rack}m\"\n  }}\n}}\n"
            ),
        )
        .expect("write config");
    };
    let agent = start_agent_with(|dir| {
        write_config(dir, "INFO", "1", "a");
        vec![format!("-config={}", dir.join("agent.hcl").display())]
    });
    let job = agent.dir.join("sleeper.nomad.hcl");
    std::fs::write(
        &job,
        r#"job "sleeper" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sleep"
        args    = ["600"]
      }
      resources {
        cpu    = 20
        memory = 16
      }
    }
  }
}
"#,
    )
    .expect("job file");
    let job_path = job.display().to_string();
    let o = agent.cli(&["job", "run", "-detach", &job_path]);
    assert!(o.status.success(), "{}", all_output(&o));
    let mut alloc_id = String::new();
    wait_until("the task running", Duration::from_secs(30), || {
        let o = agent.cli(&[
            "job",
            "allocs",
            "-t",
            "{{range .}}{{.ID}} {{.ClientStatus}}{{end}}",
            "sleeper",
        ]);
        let out = stdout(&o);
        if let Some((id, status)) = out.trim().split_once(' ') {
            alloc_id = id.to_string();
            return status == "running" && !task_pids(id).is_empty();
        }
        false
    });
    let pids_before = task_pids(&alloc_id);
    let self_level = |agent: &Agent| stdout(&agent.cli(&["operator", "api", "/v1/agent/self"]));
    assert!(
        self_level(&agent).contains("\"LogLevel\":\"INFO\""),
        "{}",
        self_level(&agent)
    );
    let debug_lines = |log: &str| log.lines().filter(|l| l.contains("[DEBUG]")).count();
    assert_eq!(
        debug_lines(&agent.log()),
        0,
        "DEBUG lines at INFO:\n{}",
        agent.log()
    );

    write_config(&agent.dir, "DEBUG", "2", "b");
    assert_eq!(nix_kill(agent.child.id(), libc::SIGHUP), 0);
    wait_until("the reload to be logged", Duration::from_secs(10), || {
        agent.log().contains("reloaded: logging (level DEBUG")
    });
    let log = agent.log();
    assert!(log.contains("reloaded: client meta"), "{log}");
    assert!(log.contains("reloaded: client artifact settings"), "{log}");
    assert!(log.contains("reloaded: client template settings"), "{log}");
    assert!(
        log.contains("not reloadable, restart the agent to change it: client.node_class (a -> b)"),
        "{log}"
    );
    assert!(self_level(&agent).contains("\"LogLevel\":\"DEBUG\""));
    let node_id = stdout(&agent.cli(&["node", "status", "-t", "{{range .}}{{.ID}}{{end}}"]));
    let node_path = format!("/v1/node/{}", node_id.trim());
    wait_until("the node meta to change", Duration::from_secs(10), || {
        stdout(&agent.cli(&["operator", "api", &node_path])).contains("\"rack\":\"2\"")
    });
    // Debug logging is live: an unchanged re-run logs at DEBUG.
    let o = agent.cli(&["job", "run", "-detach", &job_path]);
    assert!(o.status.success(), "{}", all_output(&o));
    wait_until("a DEBUG line", Duration::from_secs(10), || {
        debug_lines(&agent.log()) > 0
    });
    // The task was not restarted.
    assert_eq!(task_pids(&alloc_id), pids_before);
    let o = agent.cli(&["alloc", "status", &alloc_id]);
    assert!(!stdout(&o).contains("Restarting"), "{}", stdout(&o));

    // agent-info prints the stats sections; monitor streams lines at its own level.
    let o = agent.cli(&["agent-info"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let info = stdout(&o);
    assert!(
        info.contains("raft\n") && info.contains("  applied_index = "),
        "{info}"
    );
    let mut mon = Command::new(BIN)
        .args(["monitor", "-log-level=debug"])
        .env("CARAVAN_ADDR", &agent.addr)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("monitor");
    std::thread::sleep(Duration::from_millis(500));
    let o = agent.cli(&["job", "run", "-detach", &job_path]);
    assert!(o.status.success(), "{}", all_output(&o));
    let mut out = mon.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let n = out.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    wait_until("monitor output", Duration::from_secs(10), || {
        reader.is_finished()
    });
    let _ = mon.kill();
    let _ = mon.wait();
    let first = reader.join().unwrap_or_default();
    assert!(
        first.contains("[DEBUG]") || first.contains("[INFO]"),
        "{first}"
    );

    // A config that does not parse keeps the running one.
    std::fs::write(
        agent.dir.join("agent.hcl"),
        "log_level = \"DEBUG\"\nbogus_key = 1\n",
    )
    .expect("write");
    assert_eq!(nix_kill(agent.child.id(), libc::SIGHUP), 0);
    wait_until(
        "the failed reload to be logged",
        Duration::from_secs(10),
        || {
            agent
                .log()
                .contains("configuration reload failed, keeping the running configuration")
        },
    );
    assert_eq!(task_pids(&alloc_id), pids_before);
}

/// SIGHUP with new client `options`: turning raw_exec off refuses new placements while the
/// running task keeps its PID; turning it on again places them.
#[test]
fn sighup_reloads_client_options_without_stopping_running_tasks() {
    let write_config = |dir: &Path, enable: &str| {
        std::fs::write(
            dir.join("agent.hcl"),
            format!("client {{\n  options {{\n    \"driver.raw_exec.enable\" = \"{enable}\"\n  }}\n}}\n"),
        )
        .expect("write config");
    };
    let agent = start_agent_with(|dir| {
        write_config(dir, "1");
        vec![format!("-config={}", dir.join("agent.hcl").display())]
    });
    let job_file = |name: &str| {
        let p = agent.dir.join(format!("{name}.nomad.hcl"));
        std::fs::write(
            &p,
            format!(
                "job \"{name}\" {{\n  group \"g\" {{\n    task \"t\" {{\n      driver = \"raw_exec\"\n      config {{\n        command = \"/bin/sleep\"\n        args    = [\"600\"]\n      }}\n      resources {{\n        cpu    = 20\n        memory = 16\n      }}\n    }}\n  }}\n}}\n"
            ),
        )
        .expect("job file");
        p.display().to_string()
    };
    let first = job_file("first");
    let o = agent.cli(&["job", "run", "-detach", &first]);
    assert!(o.status.success(), "{}", all_output(&o));
    let mut alloc_id = String::new();
    wait_until("the first task running", Duration::from_secs(30), || {
        let o = agent.cli(&[
            "job",
            "allocs",
            "-t",
            "{{range .}}{{.ID}} {{.ClientStatus}}{{end}}",
            "first",
        ]);
        if let Some((id, status)) = stdout(&o).trim().split_once(' ') {
            alloc_id = id.to_string();
            return status == "running" && !task_pids(id).is_empty();
        }
        false
    });
    let pids = task_pids(&alloc_id);

    write_config(&agent.dir, "0");
    assert_eq!(nix_kill(agent.child.id(), libc::SIGHUP), 0);
    wait_until("the options reload", Duration::from_secs(10), || {
        agent
            .log()
            .contains("reloaded: client options (drivers updated: raw_exec)")
    });
    let second = job_file("second");
    let o = agent.cli(&["job", "run", "-detach", &second]);
    assert!(o.status.success(), "{}", all_output(&o));
    wait_until("the placement failure", Duration::from_secs(15), || {
        stdout(&agent.cli(&["job", "status", "second"])).contains("missing drivers")
    });
    assert_eq!(task_pids(&alloc_id), pids, "the running task was disturbed");

    write_config(&agent.dir, "1");
    assert_eq!(nix_kill(agent.child.id(), libc::SIGHUP), 0);
    wait_until(
        "the blocked job placed once raw_exec is back",
        Duration::from_secs(30),
        || {
            stdout(&agent.cli(&[
                "job",
                "allocs",
                "-t",
                "{{range .}}{{.ClientStatus}}{{end}}",
                "second",
            ]))
            .contains("running")
        },
    );
    assert_eq!(task_pids(&alloc_id), pids);
}

/// ACLs from the CLI: `-acl-enabled` refuses anonymous work, `acl bootstrap` gives the
/// management token, a policy and a token made with `acl policy apply` / `acl token create`
/// let a job run through `NOMAD_TOKEN`, and a second bootstrap is refused.
#[test]
fn acl_bootstrap_policy_and_token_from_the_cli() {
    let agent = launch_agent(|_| vec!["-acl-enabled".to_string()]);
    wait_until("the agent to answer", Duration::from_secs(30), || {
        agent
            .cli(&["operator", "api", "/v1/agent/health"])
            .status
            .success()
    });
    let o = agent.cli(&["node", "status"]);
    assert!(!o.status.success());
    assert!(
        all_output(&o).contains("Permission denied"),
        "{}",
        all_output(&o)
    );

    let o = agent.cli(&["acl", "bootstrap"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let out = stdout(&o);
    assert!(out.contains("Type         = management"), "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("Secret ID    = "))
        .expect("secret line")
        .trim()
        .to_string();
    let o = agent.cli(&["acl", "bootstrap"]);
    assert!(!o.status.success());
    assert!(
        all_output(&o).contains("ACL bootstrap already done"),
        "{}",
        all_output(&o)
    );

    let as_token = |tok: &str, args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .current_dir(&agent.dir)
            .env("CARAVAN_ADDR", &agent.addr)
            .env("NOMAD_TOKEN", tok)
            .stdin(Stdio::null())
            .output()
            .expect("run caravan")
    };
    let policy = agent.dir.join("deployer.hcl");
    std::fs::write(
        &policy,
        "namespace \"default\" {\n  policy = \"write\"\n}\nnode {\n  policy = \"read\"\n}\n",
    )
    .expect("policy file");
    let o = as_token(
        &secret,
        &[
            "acl",
            "policy",
            "apply",
            "-description",
            "deploys",
            "deployer",
            &policy.display().to_string(),
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    assert!(stdout(&o).contains("Successfully wrote \"deployer\" ACL policy!"));
    let o = as_token(&secret, &["acl", "policy", "list"]);
    assert!(
        stdout(&o).contains("deployer") && stdout(&o).contains("deploys"),
        "{}",
        all_output(&o)
    );
    let o = as_token(
        &secret,
        &[
            "acl",
            "token",
            "create",
            "-name",
            "ci",
            "-policy",
            "deployer",
            "-t",
            "{{.SecretID}}",
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let ci = stdout(&o).trim().to_string();
    let o = as_token(&ci, &["acl", "token", "self"]);
    assert!(
        stdout(&o).contains("Name         = ci"),
        "{}",
        all_output(&o)
    );
    assert!(stdout(&o).contains("[deployer]"), "{}", all_output(&o));

    let o = agent.cli(&["job", "init", "-short"]);
    assert!(o.status.success(), "{}", all_output(&o));
    let o = agent.cli(&["job", "run", "-detach", "example.nomad.hcl"]);
    assert!(!o.status.success(), "anonymous job run must fail");
    assert!(
        all_output(&o).contains("Permission denied"),
        "{}",
        all_output(&o)
    );
    let o = as_token(&ci, &["job", "run", "-detach", "example.nomad.hcl"]);
    assert!(o.status.success(), "{}", all_output(&o));
    wait_until(
        "the node listed for the ci token",
        Duration::from_secs(30),
        || stdout(&as_token(&ci, &["node", "status"])).contains("ready"),
    );
    // The ci token may not manage ACLs.
    let o = as_token(&ci, &["acl", "token", "list"]);
    assert!(!o.status.success());
    assert!(
        all_output(&o).contains("Permission denied"),
        "{}",
        all_output(&o)
    );
    let o = as_token(&ci, &["job", "stop", "-purge", "example"]);
    assert!(o.status.success(), "{}", all_output(&o));
}

/// `caravan alloc exec` under a pseudo-terminal of the test (its controlling terminal, so
/// that resizing it sends SIGWINCH): the remote command sees a TTY of the local terminal's
/// size, a resize reaches it, and the CLI exits with the command's exit code.
fn exec_with_a_terminal(agent: &Agent, alloc: &str) {
    use std::io::Write as _;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    use std::sync::mpsc;
    let (mut master, mut slave) = (0, 0);
    let size = |rows, cols| libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let ws = size(20, 70);
    // SAFETY: openpty fills in two new descriptors, owned below.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: fresh descriptors from openpty, owned once each.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let script =
        "test -t 0 && echo IS-A-TTY; while read x; do stty size; [ \"$x\" = q ] && exit 5; done";
    let mut cmd = Command::new(BIN);
    cmd.args(["alloc", "exec", alloc, "/bin/sh", "-c", script])
        .current_dir(&agent.dir)
        .env("CARAVAN_ADDR", &agent.addr)
        .env_remove("NOMAD_ADDR")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and TIOCSCTTY only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("run caravan under a terminal");
    drop(cmd);
    drop(slave);
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut reader = std::fs::File::from(master.try_clone().unwrap());
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut writer = std::fs::File::from(master.try_clone().unwrap());
    let mut out = String::new();
    // Reads until `needle` shows, typing `poke` (when given) while it has not.
    let mut until = |needle: &str, poke: Option<&[u8]>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !out.contains(needle) {
            assert!(Instant::now() < deadline, "no {needle:?} in {out:?}");
            if let Some(p) = poke {
                writer.write_all(p).unwrap();
            }
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(500)) {
                out.push_str(&String::from_utf8_lossy(&b));
            }
        }
    };
    until("IS-A-TTY", None);
    until("20 70", Some(b"x\n"));
    let ws = size(30, 90);
    // SAFETY: TIOCSWINSZ on our terminal's master with a winsize we own.
    assert_eq!(
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) },
        0
    );
    until("30 90", Some(b"x\n"));
    writer.write_all(b"q\n").unwrap();
    let status = child.wait().expect("caravan alloc exec");
    assert_eq!(status.code(), Some(5), "{out}");
}
