//! End-to-end tests of the raw_exec driver against real processes, FIFOs and log files.

use caravan_driver::procfs;
use caravan_driver::{Driver, DriverError, LogMon, TaskConfig, TaskHandle, TaskState};
use caravan_driver_raw_exec::RawExecDriver;
use serde_json::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "caravan-rawexec-{name}-{}-{}",
        std::process::id(),
        procfs::now_nanos()
    ));
    std::fs::create_dir_all(d.join("task/local")).unwrap();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    d
}

/// A task config running `/bin/sh -c script`, stdout/stderr into regular files.
fn sh_task(dir: &Path, id: &str, script: &str) -> TaskConfig {
    let mut env = BTreeMap::new();
    env.insert("PATH".to_string(), "/usr/bin:/bin".to_string());
    let mut cfg = TaskConfig {
        id: id.to_string(),
        name: "t".into(),
        alloc_id: "alloc1".into(),
        job_name: "job".into(),
        task_group: "group".into(),
        env,
        alloc_dir: dir.to_path_buf(),
        task_dir: dir.join("task"),
        local_dir: dir.join("task/local"),
        secrets_dir: dir.join("task/secrets"),
        stdout_path: dir.join("logs/out.txt"),
        stderr_path: dir.join("logs/err.txt"),
        ..Default::default()
    };
    cfg.driver_config = json!({"command": "/bin/sh", "args": ["-c", script]})
        .as_object()
        .cloned()
        .unwrap();
    cfg
}

async fn wait_with_timeout(d: &dyn Driver, id: &str, secs: u64) -> caravan_driver::ExitResult {
    tokio::time::timeout(Duration::from_secs(secs), d.wait(id))
        .await
        .expect("wait timed out")
        .expect("wait failed")
}

/// Processes of a group that are still alive (zombies excluded).
fn live_group_members(pgid: i32) -> Vec<i32> {
    procfs::all_stats()
        .into_iter()
        .filter(|s| s.pgrp == pgid && !s.is_dead())
        .map(|s| s.pid)
        .collect()
}

async fn wait_for_file(p: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.trim().is_empty() {
                return s;
            }
        }
        assert!(Instant::now() < deadline, "{p:?} never written");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn logs_go_through_fifos_into_rotated_files() {
    let dir = tempdir("logs");
    let mut cfg = sh_task(&dir, "a/hello", "echo hello; echo err >&2");
    cfg.stdout_path = dir.join("fifo/t.stdout.fifo");
    cfg.stderr_path = dir.join("fifo/t.stderr.fifo");
    let mut out = LogMon::start(&cfg.stdout_path, dir.join("logs"), "t.stdout", 2, 1024).unwrap();
    let mut err = LogMon::start(&cfg.stderr_path, dir.join("logs"), "t.stderr", 2, 1024).unwrap();
    let d = RawExecDriver::new(true);
    d.start(cfg).await.unwrap();
    let res = wait_with_timeout(&d, "a/hello", 10).await;
    assert!(res.successful(), "{res:?}");
    out.stop();
    err.stop();
    let o = std::fs::read_to_string(dir.join("logs/t.stdout.0")).unwrap();
    let e = std::fs::read_to_string(dir.join("logs/t.stderr.0")).unwrap();
    assert_eq!(o, "hello\n");
    assert_eq!(e, "err\n");
}

#[tokio::test]
async fn start_does_not_hang_without_a_fifo_reader() {
    let dir = tempdir("noreader");
    let mut cfg = sh_task(&dir, "a/nr", "echo hi");
    let fifo = dir.join("lonely.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    cfg.stdout_path = fifo;
    let d = RawExecDriver::new(true);
    tokio::time::timeout(Duration::from_secs(5), d.start(cfg))
        .await
        .expect("start blocked on the FIFO")
        .unwrap();
    assert!(wait_with_timeout(&d, "a/nr", 10).await.successful());
}

#[tokio::test]
async fn exit_code_and_signal_are_reported() {
    let dir = tempdir("exit");
    let d = RawExecDriver::new(true);
    d.start(sh_task(&dir, "a/code", "exit 3")).await.unwrap();
    let r = wait_with_timeout(&d, "a/code", 10).await;
    assert_eq!((r.exit_code, r.signal, r.err.clone()), (3, 0, None));
    assert!(!r.successful());

    d.start(sh_task(&dir, "a/sig", "kill -TERM $$"))
        .await
        .unwrap();
    let r = wait_with_timeout(&d, "a/sig", 10).await;
    assert_eq!(r.signal, libc::SIGTERM);
    assert_eq!(r.exit_code, 128 + libc::SIGTERM);

    let st = d.inspect("a/sig").await.unwrap();
    assert_eq!(st.state, TaskState::Exited);
    assert!(st.completed_at.is_some());
    assert_eq!(st.exit_result.unwrap().signal, libc::SIGTERM);
}

#[tokio::test]
async fn missing_command_reports_the_os_error() {
    let dir = tempdir("missing");
    let mut cfg = sh_task(&dir, "a/missing", "");
    cfg.driver_config = json!({"command": "/no/such"}).as_object().cloned().unwrap();
    let d = RawExecDriver::new(true);
    let e = d.start(cfg).await.unwrap_err();
    assert!(matches!(e, DriverError::Start(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("failed to start command \"/no/such\"")
            && msg.contains("No such file or directory (os error 2)"),
        "{msg}"
    );
    assert!(matches!(
        d.inspect("a/missing").await,
        Err(DriverError::TaskNotFound(_))
    ));
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let dir = tempdir("invalid");
    let mut cfg = sh_task(&dir, "a/bad", "");
    cfg.driver_config = json!({"command": "/bin/sh", "args": "-c true"})
        .as_object()
        .cloned()
        .unwrap();
    let d = RawExecDriver::new(true);
    let e = d.start(cfg).await.unwrap_err();
    assert!(matches!(e, DriverError::InvalidConfig(_)), "{e:?}");
}

#[tokio::test]
async fn stop_kills_a_process_tree_that_ignores_signals() {
    let dir = tempdir("tree");
    let child_pid_file = dir.join("child.pid");
    let script = format!(
        "trap '' INT TERM; \
         sh -c 'trap \"\" INT TERM; while :; do sleep 0.1; done' & \
         echo $! > {}; \
         while :; do sleep 0.1; done",
        child_pid_file.display()
    );
    let d = RawExecDriver::new(true);
    let h = d.start(sh_task(&dir, "a/tree", &script)).await.unwrap();
    let child: i32 = wait_for_file(&child_pid_file).await.trim().parse().unwrap();
    assert!(procfs::is_alive(child, 0));
    assert!(live_group_members(h.pid).len() >= 2);

    let t0 = Instant::now();
    d.stop("a/tree", Duration::from_millis(500), "SIGINT")
        .await
        .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "SIGINT was ignored, so the timeout must run out"
    );
    assert_eq!(live_group_members(h.pid), Vec::<i32>::new());
    assert!(!procfs::is_alive(child, 0));
    let r = wait_with_timeout(&d, "a/tree", 5).await;
    assert_eq!(r.signal, libc::SIGKILL);
    // The main process was reaped: no zombie left behind.
    assert!(
        procfs::read_stat(h.pid).is_none(),
        "zombie left: {:?}",
        procfs::read_stat(h.pid)
    );
}

#[tokio::test]
async fn stop_with_a_signal_the_task_honours_is_quick() {
    let dir = tempdir("quick");
    let d = RawExecDriver::new(true);
    d.start(sh_task(&dir, "a/quick", "exec sleep 30"))
        .await
        .unwrap();
    let t0 = Instant::now();
    d.stop("a/quick", Duration::from_secs(10), "INT")
        .await
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(
        wait_with_timeout(&d, "a/quick", 5).await.signal,
        libc::SIGINT
    );
    // Unknown signal names are an error.
    assert!(matches!(
        d.stop("a/quick", Duration::from_secs(1), "SIGNOPE").await,
        Err(DriverError::UnknownSignal(_))
    ));
}

#[tokio::test]
async fn recover_after_the_driver_is_dropped() {
    let dir = tempdir("recover");
    let d1 = RawExecDriver::new(true);
    let h = d1
        .start(sh_task(&dir, "a/rec", "exec sleep 60"))
        .await
        .unwrap();
    // The client persists the handle as JSON.
    let saved = serde_json::to_string(&h).unwrap();
    drop(d1);

    let d2: Arc<dyn Driver> = Arc::new(RawExecDriver::new(true));
    let h: TaskHandle = serde_json::from_str(&saved).unwrap();
    d2.recover(h.clone()).await.unwrap();
    assert_eq!(d2.inspect("a/rec").await.unwrap().state, TaskState::Running);
    // Right after start the shell may still be exec'ing `sleep` (its memory reads 0 then).
    let mut stats = d2.stats("a/rec").await.unwrap();
    for _ in 0..50 {
        if stats.resource_usage.memory_stats.rss > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        stats = d2.stats("a/rec").await.unwrap();
    }
    assert!(stats.resource_usage.memory_stats.rss > 0);
    assert!(stats.pids.contains_key(&h.pid.to_string()));

    let waiter = {
        let d2 = d2.clone();
        tokio::spawn(async move { d2.wait("a/rec").await })
    };
    d2.stop("a/rec", Duration::from_secs(5), "SIGTERM")
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("wait did not return")
        .unwrap()
        .unwrap();
    assert!(!r.successful(), "{r:?}");
    assert!(live_group_members(h.pid).is_empty());
    assert_eq!(d2.inspect("a/rec").await.unwrap().state, TaskState::Exited);

    // Recovering a task whose process is gone fails clearly.
    let d3 = RawExecDriver::new(true);
    let e = d3.recover(h).await.unwrap_err();
    assert!(matches!(e, DriverError::Recover(_)), "{e:?}");
}

#[tokio::test]
async fn recover_refuses_a_reused_pid() {
    let dir = tempdir("reuse");
    let d = RawExecDriver::new(true);
    let mut h = d
        .start(sh_task(&dir, "a/reuse", "exec sleep 30"))
        .await
        .unwrap();
    h.process_start_ticks += 1;
    h.task_id = "a/other".into();
    let e = RawExecDriver::new(true).recover(h).await.unwrap_err();
    assert!(matches!(e, DriverError::Recover(_)), "{e:?}");
    d.destroy("a/reuse", true).await.unwrap();
}

#[tokio::test]
async fn env_is_exactly_what_was_given_and_cwd_is_the_task_dir() {
    let dir = tempdir("env");
    let mut cfg = sh_task(&dir, "a/env", "");
    cfg.env.insert("FOO".into(), "bar baz".into());
    cfg.env.insert("NOMAD_TASK_NAME".into(), "t".into());
    cfg.driver_config = json!({"command": "env"}).as_object().cloned().unwrap();
    let d = RawExecDriver::new(true);
    d.start(cfg).await.unwrap();
    assert!(wait_with_timeout(&d, "a/env", 10).await.successful());
    let out = std::fs::read_to_string(dir.join("logs/out.txt")).unwrap();
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["FOO=bar baz", "NOMAD_TASK_NAME=t", "PATH=/usr/bin:/bin"]
    );

    let mut cfg = sh_task(&dir, "a/pwd", "pwd > pwd.txt");
    cfg.stdout_path = PathBuf::new();
    d.start(cfg).await.unwrap();
    assert!(wait_with_timeout(&d, "a/pwd", 10).await.successful());
    let pwd = std::fs::read_to_string(dir.join("task/pwd.txt")).unwrap();
    assert_eq!(
        Path::new(pwd.trim()).canonicalize().unwrap(),
        dir.join("task").canonicalize().unwrap()
    );
}

#[tokio::test]
async fn fingerprint_follows_enabled() {
    let on = RawExecDriver::new(true).fingerprint().await;
    assert_eq!(
        on.attributes.get("driver.raw_exec").map(String::as_str),
        Some("1")
    );
    assert!(on.detected && on.healthy);
    let off_driver = RawExecDriver::new(false);
    let off = off_driver.fingerprint().await;
    assert!(!off.detected && !off.healthy && off.attributes.is_empty());
    let dir = tempdir("off");
    assert!(matches!(
        off_driver.start(sh_task(&dir, "a/off", "true")).await,
        Err(DriverError::Disabled(_))
    ));
    assert_eq!(off_driver.name(), "raw_exec");
}

#[tokio::test]
async fn destroy_needs_force_while_running() {
    let dir = tempdir("destroy");
    let d = RawExecDriver::new(true);
    let h = d
        .start(sh_task(&dir, "a/d", "exec sleep 30"))
        .await
        .unwrap();
    assert!(matches!(
        d.start(sh_task(&dir, "a/d", "true")).await,
        Err(DriverError::TaskAlreadyExists(_))
    ));
    assert!(matches!(
        d.destroy("a/d", false).await,
        Err(DriverError::TaskRunning(_))
    ));
    d.destroy("a/d", true).await.unwrap();
    assert!(live_group_members(h.pid).is_empty());
    assert!(matches!(
        d.wait("a/d").await,
        Err(DriverError::TaskNotFound(_))
    ));
}

#[tokio::test]
async fn exec_runs_in_the_task_context() {
    let dir = tempdir("exec");
    let mut cfg = sh_task(&dir, "a/x", "exec sleep 30");
    cfg.env.insert("GREETING".into(), "hi there".into());
    let d = RawExecDriver::new(true);
    d.start(cfg).await.unwrap();
    let r = d
        .exec(
            "a/x",
            vec![
                "sh".into(),
                "-c".into(),
                "echo \"$GREETING\"; pwd; echo oops >&2; exit 4".into(),
            ],
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    let out = String::from_utf8(r.stdout).unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hi there"));
    assert_eq!(
        Path::new(lines.next().unwrap()).canonicalize().unwrap(),
        dir.join("task").canonicalize().unwrap()
    );
    assert_eq!(r.stderr, b"oops\n");
    assert_eq!(r.exit_code, 4);

    let e = d
        .exec(
            "a/x",
            vec!["sleep".into(), "10".into()],
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    d.destroy("a/x", true).await.unwrap();
}

#[tokio::test]
async fn signal_reaches_the_task() {
    let dir = tempdir("signal");
    let d = RawExecDriver::new(true);
    let ready = dir.join("ready");
    let script = format!(
        "trap 'exit 7' HUP; touch {}; while :; do sleep 0.1; done",
        ready.display()
    );
    d.start(sh_task(&dir, "a/s", &script)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !ready.exists() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(
        d.signal("a/s", "SIGWHAT").await,
        Err(DriverError::UnknownSignal(_))
    ));
    d.signal("a/s", "SIGHUP").await.unwrap();
    assert_eq!(wait_with_timeout(&d, "a/s", 10).await.exit_code, 7);
    assert!(d.signal("a/s", "SIGHUP").await.is_err());
    assert!(matches!(
        d.signal("a/none", "SIGHUP").await,
        Err(DriverError::TaskNotFound(_))
    ));
}

#[tokio::test]
async fn user_switch_runs_as_that_user() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: switching users needs root (CI runs as root)");
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipping: no user `nobody` on this host");
        return;
    };
    let dir = tempdir("user");
    let mut cfg = sh_task(&dir, "a/u", "id -u; id -g");
    cfg.user = "nobody".into();
    let d = RawExecDriver::new(true);
    d.start(cfg).await.unwrap();
    assert!(wait_with_timeout(&d, "a/u", 10).await.successful());
    let out = std::fs::read_to_string(dir.join("logs/out.txt")).unwrap();
    assert_eq!(
        out,
        format!("{}\n{}\n", nobody.uid.as_raw(), nobody.gid.as_raw())
    );

    let mut cfg = sh_task(&dir, "a/u2", "true");
    cfg.user = "no-such-user-caravan".into();
    assert!(matches!(
        d.start(cfg).await,
        Err(DriverError::InvalidConfig(_))
    ));
}

#[tokio::test]
async fn task_outlives_its_log_monitor_and_output_is_kept() {
    let dir = tempdir("logrestart");
    let mut cfg = sh_task(&dir, "a/lr", "echo a; sleep 0.6; echo b; sleep 1");
    cfg.stdout_path = dir.join("t.stdout.fifo");
    let logs = dir.join("logs");
    let mut first = LogMon::start(&cfg.stdout_path, &logs, "t.stdout", 3, 1024).unwrap();
    let d = RawExecDriver::new(true);
    d.start(cfg.clone()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The agent goes away: nobody reads while the task writes "b".
    first.stop();
    // "b" is written at 0.6s, while no LogMon reads; the task runs on until 1.6s.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut second = LogMon::start(&cfg.stdout_path, &logs, "t.stdout", 3, 1024).unwrap();
    let r = wait_with_timeout(&d, "a/lr", 10).await;
    assert!(r.successful(), "task died without a log reader: {r:?}");
    second.stop();
    assert_eq!(
        std::fs::read_to_string(logs.join("t.stdout.0")).unwrap(),
        "a\nb\n"
    );
}

#[tokio::test]
async fn stats_measure_cpu_and_memory_of_the_tree() {
    let dir = tempdir("stats");
    let d = RawExecDriver::new(true);
    let h = d
        .start(sh_task(
            &dir,
            "a/busy",
            "sh -c 'while :; do :; done' & exec sleep 30",
        ))
        .await
        .unwrap();
    let first = d.stats("a/busy").await.unwrap();
    assert_eq!(first.resource_usage.cpu_stats.percent, 0.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let u = d.stats("a/busy").await.unwrap();
    assert!(u.pids.len() >= 2, "{:?}", u.pids.keys());
    assert!(u.pids.contains_key(&h.pid.to_string()));
    assert!(u.resource_usage.memory_stats.rss > 0);
    assert!(
        u.resource_usage.cpu_stats.percent > 20.0,
        "busy child should show CPU: {:?}",
        u.resource_usage.cpu_stats
    );
    assert!(u.timestamp > first.timestamp);
    d.destroy("a/busy", true).await.unwrap();
}

#[tokio::test]
async fn recover_checks_driver_and_version() {
    let d = RawExecDriver::new(true);
    let h = TaskHandle {
        version: caravan_driver::HANDLE_VERSION,
        driver: "docker".into(),
        task_id: "a/h".into(),
        pid: std::process::id() as i32,
        ..Default::default()
    };
    assert!(
        matches!(d.recover(h.clone()).await, Err(DriverError::Recover(m)) if m.contains("docker"))
    );
    let h = TaskHandle {
        driver: "raw_exec".into(),
        version: caravan_driver::HANDLE_VERSION + 1,
        ..h
    };
    assert!(
        matches!(d.recover(h.clone()).await, Err(DriverError::Recover(m)) if m.contains("version"))
    );
    assert!(matches!(
        RawExecDriver::new(false).recover(h).await,
        Err(DriverError::Disabled(_))
    ));
}
