//! End to end: tasks outlive a crash of their agent. A dev agent with a `-data-dir` runs 20
//! tasks across raw_exec, exec and java (exec and java need root and cgroups, java also a
//! JDK; without them those tasks are left out and the test says so), is killed with SIGKILL,
//! stays down for 10 s, and is started again on the same data dir. Proves that every task
//! that was running is re-attached (same host pid, no restart, no new "Started" event), that
//! what the tasks wrote to stdout during the outage is in their logs (a FIFO holds up to
//! 1 MiB per stream while no agent reads it; a task writing more waits, and nothing is lost:
//! one task writes 2.4 MB during the outage), and that tasks which ended while the agent was
//! down are reported with their real exit codes (through the task shim).

mod common;

use common::{
    node_driver_healthy, run_job, saved_handle, started_events, stdout_log, task_states, text,
    ticks, wait_until, Agent, TICKER,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Waits for `local/go` (the test writes it once the agent is down), then exits with the code
/// given as $1.
const SHORT: &str = "while [ ! -f \"$NOMAD_TASK_DIR/go\" ]; do sleep 0.1; done; exit $1";
/// After 1 s (the agent is down by then), writes 30,000 numbered 80-byte lines: 2.4 MB,
/// more than the FIFO holds.
const FLOOD: &str = "sleep 1; i=0; while [ $i -lt 30000 ]; do \
    printf 'line %06d %071d\\n' $i 0; i=$((i+1)); done; sleep 600";

const TICK_JAVA: &str = r#"
public class Tick {
    public static void main(String[] a) throws Exception {
        if (a.length > 0) {
            java.io.File go = new java.io.File(System.getenv("NOMAD_TASK_DIR"), "go");
            while (!go.exists()) Thread.sleep(100);
            System.exit(Integer.parseInt(a[0]));
        }
        for (int i = 0; ; i++) { System.out.println("tick " + i); System.out.flush(); Thread.sleep(200); }
    }
}
"#;

/// A job of `count` allocations of one task `t` (`task` is its body) that is never restarted
/// or rescheduled: a service job, or a batch job for the tasks that end by themselves.
fn job(name: &str, batch: bool, count: u32, task: &str) -> String {
    let kind = if batch { "batch" } else { "service" };
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
{task}
    }}
  }}
}}
"#
    )
}

fn quoted(args: &[&str]) -> String {
    args.iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn shell_job(name: &str, driver: &str, count: u32, script: &str, args: &[&str]) -> String {
    let task = format!(
        r#"      driver = "{driver}"
      config {{
        command = "/bin/sh"
        args    = ["-c", {script:?}, "sh", {args}]
      }}
      resources {{
        cpu    = 20
        memory = 32
      }}"#,
        args = quoted(args)
    );
    job(name, script == SHORT, count, &task)
}

fn java_job(name: &str, count: u32, args: &[&str], class_url: &str) -> String {
    let task = format!(
        r#"      driver = "java"
      artifact {{
        source      = "{class_url}"
        destination = "local/"
      }}
      config {{
        class       = "Tick"
        class_path  = "/local"
        jvm_options = ["-Xmx32m", "-XX:+UseSerialGC", "-Xshare:off"]
        args        = [{args}]
      }}
      resources {{
        cpu    = 50
        memory = 160
      }}"#,
        args = quoted(args)
    );
    job(name, !args.is_empty(), count, &task)
}

/// Serves `body` over HTTP on loopback for as long as the test runs.
fn serve(body: Vec<u8>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for s in l.incoming().flatten() {
            let mut s = s;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
    format!("http://{addr}/Tick.class")
}

/// Compiles Tick.java; None (with the reason printed) when no JDK is here.
fn compile_tick(dir: &Path) -> Option<Vec<u8>> {
    let src = dir.join("java");
    std::fs::create_dir_all(&src).ok()?;
    std::fs::write(src.join("Tick.java"), TICK_JAVA).ok()?;
    let out = std::process::Command::new("javac")
        .arg("Tick.java")
        .current_dir(&src)
        .output();
    match out {
        Ok(o) if o.status.success() => std::fs::read(src.join("Tick.class")).ok(),
        Ok(o) => {
            eprintln!("SKIPPED java tasks: javac failed: {}", text(&o));
            None
        }
        Err(e) => {
            eprintln!("SKIPPED java tasks: no javac ({e})");
            None
        }
    }
}

/// The host pid and start time the client saved for a task.
fn saved_pid(dir: &Path, alloc: &str) -> (i64, u64) {
    let h = saved_handle(dir, alloc);
    (
        h["pid"].as_i64().unwrap_or(0),
        h["process_start_ticks"].as_u64().unwrap_or(0),
    )
}

#[test]
fn tasks_survive_a_killed_agent() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let agent = Agent::start(dir, "first");
    let root = unsafe { libc::geteuid() } == 0;
    let exec = root && node_driver_healthy(&agent, dir, "exec");
    if !exec {
        eprintln!("SKIPPED exec and java tasks: the exec driver is not usable here (needs root and cgroups)");
    }
    let class = if exec { compile_tick(dir) } else { None };

    // (job, count, expected exit code for the batch ones)
    let mut long: Vec<(&str, u32)> = vec![("raw-long", 6)];
    let mut short: Vec<(&str, u32, i64)> = vec![("raw-short", 2, 3)];
    run_job(
        &agent,
        dir,
        "raw-long",
        &shell_job("raw-long", "raw_exec", 6, TICKER, &[]),
    );
    run_job(
        &agent,
        dir,
        "raw-short",
        &shell_job("raw-short", "raw_exec", 2, SHORT, &["3"]),
    );
    run_job(
        &agent,
        dir,
        "raw-flood",
        &shell_job("raw-flood", "raw_exec", 1, FLOOD, &[]),
    );
    if exec {
        long.push(("exec-long", 5));
        short.push(("exec-short", 2, 4));
        run_job(
            &agent,
            dir,
            "exec-long",
            &shell_job("exec-long", "exec", 5, TICKER, &[]),
        );
        run_job(
            &agent,
            dir,
            "exec-short",
            &shell_job("exec-short", "exec", 2, SHORT, &["4"]),
        );
    }
    if let Some(class) = class {
        let url = serve(class);
        long.push(("java-long", 3));
        short.push(("java-short", 1, 5));
        run_job(
            &agent,
            dir,
            "java-long",
            &java_job("java-long", 3, &[], &url),
        );
        run_job(
            &agent,
            dir,
            "java-short",
            &java_job("java-short", 1, &["5"], &url),
        );
    }
    let total: u32 =
        long.iter().map(|l| l.1).sum::<u32>() + short.iter().map(|s| s.1).sum::<u32>() + 1;
    eprintln!("running {total} tasks");

    let mut jobs: Vec<&str> = long.iter().map(|l| l.0).collect();
    jobs.extend(short.iter().map(|s| s.0));
    jobs.push("raw-flood");
    let want: BTreeMap<&str, usize> = long
        .iter()
        .map(|l| (l.0, l.1 as usize))
        .chain(short.iter().map(|s| (s.0, s.1 as usize)))
        .chain([("raw-flood", 1)])
        .collect();
    // The jobs not yet all running, with their tasks' states.
    let pending = || -> Vec<String> {
        jobs.iter()
            .filter_map(|j| {
                let states = task_states(&agent, dir, j);
                let done =
                    states.len() == want[j] && states.values().all(|s| s["State"] == "running");
                (!done).then(|| {
                    let s: Vec<&str> = states
                        .values()
                        .map(|s| s["State"].as_str().unwrap_or("?"))
                        .collect();
                    format!("{j}: {s:?}")
                })
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let left = pending();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every task runs: {left:?}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // Pids before the crash.
    let mut before: BTreeMap<String, (i64, u64)> = BTreeMap::new();
    for (job, _) in &long {
        for alloc in task_states(&agent, dir, job).keys() {
            before.insert(alloc.clone(), saved_pid(dir, alloc));
        }
    }
    let flood_alloc = task_states(&agent, dir, "raw-flood")
        .keys()
        .next()
        .cloned()
        .expect("flood alloc");

    let mut short_allocs = Vec::new();
    for (job, _, _) in &short {
        short_allocs.extend(task_states(&agent, dir, job).into_keys());
    }

    agent.kill9();
    // The short tasks end while no agent runs.
    for alloc in &short_allocs {
        std::fs::write(dir.join(format!("data/alloc/{alloc}/t/local/go")), b"").expect("go file");
    }
    std::thread::sleep(Duration::from_secs(10));
    // Still running while no agent is there.
    for (alloc, (pid, _)) in &before {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "task of {alloc} died with the agent"
        );
    }

    let agent = Agent::start(dir, "second");
    // Re-attached: same pid, no restart, still one Started event.
    for (job, _) in &long {
        wait_until(
            &agent,
            &format!("{job} running again"),
            Duration::from_secs(60),
            || {
                task_states(&agent, dir, job)
                    .values()
                    .all(|s| s["State"] == "running")
            },
        );
        for (alloc, state) in task_states(&agent, dir, job) {
            assert_eq!(
                saved_pid(dir, &alloc),
                before[&alloc],
                "{job} {alloc} was restarted"
            );
            assert_eq!(state["Restarts"], 0, "{job} {alloc}: {state}");
            assert_eq!(started_events(&state), 1, "{job} {alloc}: {state}");
            assert!(
                state["Events"]
                    .as_array()
                    .is_some_and(|e| e.iter().all(|e| e["Type"] != "Failed Restoring Task")),
                "{state}"
            );
        }
    }
    // Logs: the ticks of the outage are there and keep coming (50 ticks in 10 s).
    std::thread::sleep(Duration::from_secs(1));
    for (job, _) in &long {
        for alloc in task_states(&agent, dir, job).keys() {
            let n = ticks(&stdout_log(dir, alloc));
            assert!(n >= 50, "{job} {alloc}: only {n} ticks logged");
        }
    }
    // The flood: every line, in order, although 2.4 MB is more than the FIFO holds.
    wait_until(
        &agent,
        "the flood fully logged",
        Duration::from_secs(60),
        || stdout_log(dir, &flood_alloc).lines().count() >= 30000,
    );
    for (i, line) in stdout_log(dir, &flood_alloc).lines().enumerate() {
        assert!(
            line.starts_with(&format!("line {i:06} ")),
            "line {i}: {line:?}"
        );
    }
    // Tasks that ended during the outage: dead, with their real exit codes.
    for (job, count, code) in &short {
        wait_until(
            &agent,
            &format!("{job} reported dead"),
            Duration::from_secs(60),
            || {
                let s = task_states(&agent, dir, job);
                s.len() == *count as usize && s.values().all(|s| s["State"] == "dead")
            },
        );
        for (alloc, state) in task_states(&agent, dir, job) {
            let terminated = state["Events"]
                .as_array()
                .and_then(|e| e.iter().rev().find(|e| e["Type"] == "Terminated").cloned())
                .unwrap_or_else(|| panic!("{job} {alloc}: no Terminated event: {state}"));
            assert_eq!(terminated["ExitCode"], *code, "{job} {alloc}: {terminated}");
            assert_eq!(state["Failed"], true, "{job} {alloc}: {state}");
        }
    }
    agent.stop();
    let _ = text;
}
