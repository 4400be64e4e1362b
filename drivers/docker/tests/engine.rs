//! Integration tests against real engines, each scenario once against Podman's
//! Docker-compatible service (e2e/containers/podman-setup.sh, or the socket in
//! CARAVAN_TEST_DOCKER_SOCK) and once against Debian's dockerd (e2e/containers/dockerd-setup.sh,
//! or CARAVAN_TEST_DOCKERD_SOCK), with the busybox image the scripts build from busybox-static
//! (localhost/busybox:test). Each test prints SKIPPED with why and returns when its engine
//! cannot be started (not root, no package).

mod common;

use caravan_driver::{Driver, DriverError, TaskState};
use caravan_driver_docker::{DockerDriver, DockerPluginConfig};
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

on_both_engines!(
    runs_a_container_to_its_exit_code_with_logs_env_and_task_dirs,
    labels_exec_signal_and_stop_with_kill_timeout,
    graceful_stop_and_memory_limit_oom,
    recovers_a_running_container_in_a_new_driver,
    output_written_while_no_driver_ran_is_logged_once,
    port_mapping_answers_on_the_host_port,
    stats_report_cpu_and_memory,
    bad_input_and_fingerprint,
    a_leftover_container_of_the_task_is_replaced_a_foreign_one_is_not,
);

async fn runs_a_container_to_its_exit_code_with_logs_env_and_task_dirs(sock: String) {
    let d = driver(&sock);
    let (cfg, _dirs) = task(
        "exit",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "echo \"out:$GREETING:$NOMAD_TASK_DIR\"; cat /local/in.txt; echo err-line >&2; touch /alloc/written; exit 3"]}),
    );
    std::fs::write(cfg.local_dir.join("in.txt"), "from-local\n").unwrap();
    let h = d.start(cfg.clone()).await.expect("start");
    assert_eq!(h.driver, "docker");
    let id = state(&h).container_id;
    let res = tokio::time::timeout(Duration::from_secs(30), d.wait(&cfg.id))
        .await
        .expect("exit within 30s")
        .unwrap();
    assert_eq!(res.exit_code, 3, "{res:?}");
    assert!(!res.oom_killed);
    let st = d.inspect(&cfg.id).await.unwrap();
    assert_eq!(st.state, TaskState::Exited);
    assert!(st.completed_at.unwrap() >= st.started_at);
    d.destroy(&cfg.id, false).await.unwrap();
    let out = std::fs::read_to_string(&cfg.stdout_path).unwrap();
    assert_eq!(out, "out:hello there:/local\nfrom-local\n");
    assert_eq!(
        std::fs::read_to_string(&cfg.stderr_path).unwrap(),
        "err-line\n"
    );
    assert!(
        cfg.alloc_dir.join("written").exists(),
        "/alloc is the alloc dir"
    );
    assert!(
        !container_exists(&sock, &id).await,
        "container removed on destroy"
    );
    assert!(matches!(
        d.inspect(&cfg.id).await,
        Err(DriverError::TaskNotFound(_))
    ));
}

async fn labels_exec_signal_and_stop_with_kill_timeout(sock: String) {
    let d = driver(&sock);
    // PID 1 ignores TERM, prints on HUP: stop must fall back to SIGKILL after the timeout.
    let (cfg, _dirs) = task(
        "svc",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "trap 'echo got-hup' HUP; trap '' TERM; echo ready; while true; do sleep 0.1; done"],
            "labels": {"team": "infra"}}),
    );
    let h = d.start(cfg.clone()).await.expect("start");
    let id = state(&h).container_id;
    let docker =
        bollard::Docker::connect_with_unix(&sock, 30, bollard::API_DEFAULT_VERSION).unwrap();
    let labels = docker
        .inspect_container(&id, None)
        .await
        .unwrap()
        .config
        .unwrap()
        .labels
        .unwrap();
    assert_eq!(labels["team"], "infra");
    assert_eq!(labels["com.hashicorp.nomad.alloc_id"], cfg.alloc_id);
    assert_eq!(labels["com.hashicorp.nomad.task_name"], "svc");
    assert_eq!(labels["io.caravan.task_id"], cfg.id);

    let out = d
        .exec(
            &cfg.id,
            vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo $GREETING; echo e >&2; exit 4".into(),
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.exit_code),
        (&b"hello there\n"[..], &b"e\n"[..], 4)
    );

    wait_for_file(&cfg.stdout_path, "ready").await;
    d.signal(&cfg.id, "SIGHUP").await.unwrap();
    let logs = wait_for_file(&cfg.stdout_path, "got-hup").await;
    assert!(logs.contains("got-hup"), "{logs:?}");
    assert!(matches!(
        d.signal(&cfg.id, "SIGNOPE").await,
        Err(DriverError::UnknownSignal(_))
    ));

    let t = Instant::now();
    d.stop(&cfg.id, Duration::from_millis(1500), "SIGTERM")
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "stop waited only {took:?}"
    );
    let res = d.wait(&cfg.id).await.unwrap();
    assert_eq!(res.exit_code, 137, "{res:?}");
    assert!(
        !res.oom_killed,
        "a kill by the driver is not an OOM: {res:?}"
    );
    d.destroy(&cfg.id, false).await.unwrap();
    assert!(!container_exists(&sock, &id).await);
}

async fn graceful_stop_and_memory_limit_oom(sock: String) {
    let d = driver(&sock);
    let (cfg, _dirs) = task(
        "graceful",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"]}),
    );
    d.start(cfg.clone()).await.unwrap();
    let t = Instant::now();
    d.stop(&cfg.id, Duration::from_secs(20), "SIGTERM")
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "graceful stop took {:?}",
        t.elapsed()
    );
    assert_eq!(d.wait(&cfg.id).await.unwrap().exit_code, 0);
    d.destroy(&cfg.id, true).await.unwrap();
    assert!(wait_for_file(&cfg.stdout_path, "bye").await.contains("bye"));

    // 16 MiB limit, 200 MB wanted.
    let (mut cfg, _dirs2) = task(
        "oom",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]}),
    );
    cfg.resources.memory_mb = 16;
    d.start(cfg.clone()).await.unwrap();
    let res = tokio::time::timeout(Duration::from_secs(60), d.wait(&cfg.id))
        .await
        .unwrap()
        .unwrap();
    assert!(res.oom_killed, "expected an OOM kill: {res:?}");
    assert_eq!(res.exit_code, 137);
    d.destroy(&cfg.id, true).await.unwrap();
    assert!(!std::fs::read_to_string(&cfg.stdout_path)
        .unwrap_or_default()
        .contains("survived"));
}

async fn recovers_a_running_container_in_a_new_driver(sock: String) {
    let (cfg, _dirs) = task(
        "rec",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "echo before; trap 'echo after; exit 5' TERM; while true; do sleep 0.1; done"]}),
    );
    let first = driver(&sock);
    let h = first.start(cfg.clone()).await.unwrap();
    wait_for_file(&cfg.stdout_path, "before").await;
    // The agent goes away for a second; the container keeps running.
    drop(first);
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let h_json = serde_json::to_string(&h).unwrap();
    let second = driver(&sock);
    second
        .recover(serde_json::from_str(&h_json).unwrap())
        .await
        .unwrap();
    assert_eq!(
        second.inspect(&cfg.id).await.unwrap().state,
        TaskState::Running
    );
    let st = second.stats(&cfg.id).await.unwrap();
    assert!(
        st.resource_usage.memory_stats.usage > 0 || st.resource_usage.memory_stats.rss > 0,
        "{st:?}"
    );
    second
        .stop(&cfg.id, Duration::from_secs(10), "SIGTERM")
        .await
        .unwrap();
    assert_eq!(second.wait(&cfg.id).await.unwrap().exit_code, 5);
    second.destroy(&cfg.id, false).await.unwrap();
    let out = std::fs::read_to_string(&cfg.stdout_path).unwrap();
    assert_eq!(
        out.matches("before").count(),
        1,
        "no duplicate output after recover: {out:?}"
    );
    assert!(out.contains("after"), "{out:?}");

    // A handle whose container is gone cannot be recovered.
    let third = driver(&sock);
    let e = third
        .recover(serde_json::from_str(&h_json).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, DriverError::Recover(_)), "{e}");
}

/// The numbers after `word ` in `text`, which must be the lines `word 0`, `word 1`, ...
fn numbered(text: &str, word: &str) -> usize {
    for (i, line) in text.lines().enumerate() {
        assert_eq!(line, format!("{word} {i}"), "line {i} of {text:?}");
    }
    text.lines().count()
}

async fn output_written_while_no_driver_ran_is_logged_once(sock: String) {
    let (tick, _d1) = task(
        "tick",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "i=0; while true; do echo tick $i; echo err $i >&2; i=$((i+1)); sleep 0.1; done"]}),
    );
    let (gone, _d2) = task(
        "gone",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c",
            "echo gone 0; sleep 1; for i in 1 2 3 4 5; do echo gone $i; done; exit 4"]}),
    );
    let first = driver(&sock);
    let h_tick = first.start(tick.clone()).await.unwrap();
    let h_gone = first.start(gone.clone()).await.unwrap();
    wait_for_file(&tick.stdout_path, "tick 3\n").await;
    wait_for_file(&gone.stdout_path, "gone 0\n").await;
    drop(first); // the agent goes away; the containers go on (one of them ends meanwhile)
    tokio::time::sleep(Duration::from_millis(2000)).await;

    let second = driver(&sock);
    for h in [h_tick, h_gone] {
        let json = serde_json::to_string(&h).unwrap();
        second
            .recover(serde_json::from_str(&json).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(second.wait(&gone.id).await.unwrap().exit_code, 4);
    second.destroy(&gone.id, false).await.unwrap();
    assert_eq!(
        numbered(&std::fs::read_to_string(&gone.stdout_path).unwrap(), "gone"),
        6
    );

    wait_for_file(&tick.stdout_path, "tick 40\n").await;
    second
        .stop(&tick.id, Duration::from_secs(5), "SIGKILL")
        .await
        .unwrap();
    second.wait(&tick.id).await.unwrap();
    second.destroy(&tick.id, false).await.unwrap();
    let out = std::fs::read_to_string(&tick.stdout_path).unwrap();
    assert!(numbered(&out, "tick") > 40, "{out:?}");
    let err = std::fs::read_to_string(&tick.stderr_path).unwrap();
    assert!(numbered(&err, "err") > 40, "{err:?}");
}

async fn port_mapping_answers_on_the_host_port(sock: String) {
    let d = driver(&sock);
    let host_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (mut cfg, _dirs) = task(
        "web",
        json!({"image": IMAGE, "command": "/bin/httpd", "args": ["-f", "-p", "8080", "-h", "/local"],
               "ports": ["http"]}),
    );
    cfg.env.insert("NOMAD_PORT_http".into(), "8080".into());
    cfg.env
        .insert("NOMAD_HOST_PORT_http".into(), host_port.to_string());
    cfg.env
        .insert("NOMAD_HOST_IP_http".into(), "127.0.0.1".into());
    std::fs::write(cfg.local_dir.join("index.html"), "caravan-container-page").unwrap();
    d.start(cfg.clone()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        use std::io::{Read, Write};
        let got = std::net::TcpStream::connect(("127.0.0.1", host_port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n")?;
            let mut b = String::new();
            s.read_to_string(&mut b)?;
            Ok(b)
        });
        match got {
            Ok(b) if b.contains("caravan-container-page") => break b,
            _ if Instant::now() > deadline => panic!("no answer on host port {host_port}: {got:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    assert!(body.starts_with("HTTP/1."), "{body}");
    let st = d.inspect(&cfg.id).await.unwrap();
    assert_eq!(st.state, TaskState::Running, "{st:?}");
    d.destroy(&cfg.id, true).await.unwrap();
}

async fn stats_report_cpu_and_memory(sock: String) {
    let d = driver(&sock);
    let (cfg, _dirs) = task(
        "busy",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c", "while true; do :; done"]}),
    );
    d.start(cfg.clone()).await.unwrap();
    let first = d.stats(&cfg.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = d.stats(&cfg.id).await.unwrap();
    let cpu = &second.resource_usage.cpu_stats;
    assert!(
        cpu.percent > 20.0,
        "a busy loop uses CPU: {cpu:?} (first {first:?})"
    );
    assert!(second.resource_usage.memory_stats.usage > 0);
    assert!(second.timestamp > first.timestamp);
    d.destroy(&cfg.id, true).await.unwrap();
}

async fn bad_input_and_fingerprint(sock: String) {
    let d = driver(&sock);
    let fp = d.fingerprint().await;
    assert!(fp.detected && fp.healthy, "{fp:?}");
    assert!(
        fp.attributes.contains_key("driver.docker.version"),
        "{fp:?}"
    );

    let (cfg, _dirs) = task(
        "missing",
        json!({"image": "localhost:1/caravan/does-not-exist:1"}),
    );
    let e = d.start(cfg.clone()).await.unwrap_err();
    assert!(e.to_string().contains("does-not-exist"), "{e}");
    assert!(matches!(
        d.inspect(&cfg.id).await,
        Err(DriverError::TaskNotFound(_))
    ));

    let (cfg, _dirs) = task("priv", json!({"image": IMAGE, "privileged": true}));
    let e = d.start(cfg).await.unwrap_err();
    assert!(e.to_string().contains("allow_privileged"), "{e}");

    let (cfg, _dirs) = task("typo", json!({"image": IMAGE, "comand": "/bin/true"}));
    let e = d.start(cfg).await.unwrap_err();
    assert!(e.to_string().contains("comand"), "{e}");

    let gone = DockerDriver::new(DockerPluginConfig {
        endpoint: "unix:///nonexistent/engine.sock".into(),
        ..Default::default()
    });
    let fp = gone.fingerprint().await;
    assert!(
        !fp.healthy && fp.health_description.contains("/nonexistent/engine.sock"),
        "{fp:?}"
    );
}

async fn a_leftover_container_of_the_task_is_replaced_a_foreign_one_is_not(sock: String) {
    let (cfg, _dirs) = task(
        "again",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c", "sleep 300"]}),
    );
    // An earlier attempt's container, left running by an agent that went away.
    let first = driver(&sock);
    let old = state(&first.start(cfg.clone()).await.unwrap());
    drop(first);
    let d = driver(&sock);
    let new = state(&d.start(cfg.clone()).await.expect("start over the leftover"));
    assert_eq!(new.container_name, old.container_name);
    assert_ne!(new.container_id, old.container_id);
    assert!(!container_exists(&sock, &old.container_id).await);
    d.destroy(&cfg.id, true).await.unwrap();

    // A container of that name that Caravan did not make is left alone and named.
    let api = client(&sock);
    let foreign = api
        .create_container(
            Some(bollard::container::CreateContainerOptions {
                name: old.container_name.clone(),
                platform: None,
            }),
            bollard::container::Config {
                image: Some(IMAGE.to_string()),
                cmd: Some(vec!["/bin/true".to_string()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let e = d.start(cfg.clone()).await.unwrap_err().to_string();
    assert!(e.contains("not created by Caravan"), "{e}");
    assert!(container_exists(&sock, &foreign.id).await);
    let _ = api
        .remove_container(
            &foreign.id,
            Some(bollard::container::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
}
