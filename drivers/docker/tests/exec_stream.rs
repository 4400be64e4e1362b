//! Interactive exec (`alloc exec`) in a container against a real engine (Podman's service
//! and dockerd, started by the scripts in e2e/containers; see tests/common): stdin, stdout,
//! stderr and the exit code through the hijacked exec stream, and a TTY that the command
//! sees and that resizes. Prints SKIPPED with why and returns when no engine can be started.

mod common;

use caravan_driver::{Driver, ExecInput, ExecOutput, ExecStreamIo};
use common::*;
use serde_json::json;
use std::time::Duration;

on_both_engines!(exec_streaming_pipes_and_tty);

/// Runs `cmd` in the task, feeding `input`, and returns (exit code, stdout, stderr).
async fn exec(
    d: &caravan_driver_docker::DockerDriver,
    task_id: &str,
    cmd: &[&str],
    tty: bool,
    input: Vec<ExecInput>,
) -> (i32, String, String) {
    let (tx, mut rx, io) = ExecStreamIo::channels(16);
    let feeder = tokio::spawn(async move {
        for m in input {
            tx.send(m).await.unwrap();
        }
        // Keep the input open until the command is done (closing it kills the command).
        tx.closed().await;
    });
    let collect = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(m) = rx.recv().await {
            match m {
                ExecOutput::Stdout(d) => out.extend(d),
                ExecOutput::Stderr(d) => err.extend(d),
            }
        }
        (out, err)
    });
    let cmd = cmd.iter().map(|s| s.to_string()).collect();
    let code = tokio::time::timeout(
        Duration::from_secs(60),
        d.exec_streaming(task_id, cmd, tty, io),
    )
    .await
    .expect("the exec ends")
    .expect("exec works");
    feeder.abort();
    let (out, err) = collect.await.unwrap();
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

async fn exec_streaming_pipes_and_tty(sock: String) {
    let d = driver(&sock);
    let (cfg, _dirs) = task(
        "exec-stream",
        json!({"image": IMAGE, "command": "/bin/sh", "args": ["-c", "echo up; sleep 300"]}),
    );
    d.start(cfg.clone()).await.unwrap();
    wait_for_file(&cfg.stdout_path, "up").await;

    let (code, out, err) = exec(
        &d,
        &cfg.id,
        &["/bin/sh", "-c", "cat; echo to-stderr >&2; exit 4"],
        false,
        vec![
            ExecInput::Stdin(b"through stdin\n".to_vec()),
            ExecInput::CloseStdin,
        ],
    )
    .await;
    assert_eq!(code, 4, "{out} {err}");
    assert_eq!(out, "through stdin\n");
    assert_eq!(err, "to-stderr\n");

    let (code, out, _) = exec(
        &d,
        &cfg.id,
        &[
            "/bin/sh",
            "-c",
            "test -t 0 && echo is-a-tty; read line; stty size; exit 2",
        ],
        true,
        vec![
            ExecInput::Resize {
                height: 27,
                width: 91,
            },
            ExecInput::Stdin(b"go\n".to_vec()),
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("is-a-tty"), "{out}");
    assert!(out.contains("27 91"), "{out}");
    d.destroy(&cfg.id, true).await.unwrap();
}
