//! `alloc exec` over the websocket endpoint against a real in-process agent: stdin, stdout,
//! stderr and the exit code through Nomad's frames, a TTY that the command sees and that
//! tty_size frames resize, the exec driver's isolation (chroot, PID namespace; needs root),
//! bad input refused before anything starts, and the ACL capabilities it needs.

use super::tests::{start_with, start_with_drivers, TestAgent};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// What one exec session produced.
#[derive(Debug, Default)]
struct Session {
    stdout: String,
    stderr: String,
    exit_code: Option<i64>,
    /// A close frame with a reason (an error after the upgrade).
    close: Option<(u16, String)>,
}

fn exec_url(a: &TestAgent, alloc: &str, task: &str, cmd: &[&str], tty: bool) -> String {
    let command = serde_json::to_string(cmd).unwrap();
    let q = url_encode(&command);
    format!(
        "{}/v1/client/allocation/{alloc}/exec?task={task}&tty={tty}&command={q}",
        a.base.replacen("http://", "ws://", 1)
    )
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Connects, sends `frames` in order, and reads until the command's exit or a close.
async fn run(url: &str, token: Option<&str>, frames: Vec<Value>) -> Result<Session, (u16, String)> {
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("X-Nomad-Token", t.parse().unwrap());
    }
    let (mut ws, _) = match tokio_tungstenite::connect_async(req).await {
        Ok(c) => c,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            return Err((resp.status().as_u16(), body));
        }
        Err(e) => panic!("websocket connect failed: {e}"),
    };
    for f in frames {
        ws.send(Message::Text(f.to_string())).await.unwrap();
    }
    let mut s = Session::default();
    let read = async {
        while let Some(msg) = ws.next().await {
            match msg.expect("websocket frame") {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).expect("json frame");
                    for (key, out) in [("stdout", &mut s.stdout), ("stderr", &mut s.stderr)] {
                        if let Some(d) = v[key]["data"].as_str() {
                            let bytes = base64::engine::general_purpose::STANDARD
                                .decode(d)
                                .expect("base64 data");
                            out.push_str(&String::from_utf8_lossy(&bytes));
                        }
                    }
                    if v["exited"] == true {
                        s.exit_code = v["result"]["exit_code"].as_i64();
                    }
                }
                Message::Close(Some(f)) if !f.reason.is_empty() => {
                    s.close = Some((f.code.into(), f.reason.to_string()));
                    break;
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("the exec session ends");
    Ok(s)
}

/// Submits a one-task job and returns its running allocation's ID.
async fn running_alloc(a: &TestAgent, job: &str, driver: &str, token: Option<&str>) -> String {
    let body = json!({"Job": {
        "ID": job,
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Tasks": [{
                "Name": "t", "Driver": driver,
                "Config": {"command": "/bin/sh", "args": ["-c", "echo ready > $NOMAD_TASK_DIR/ready; exec sleep 600"]},
                "Resources": {"CPU": 20, "MemoryMB": 32},
                "KillTimeout": 1_000_000_000
            }]
        }]
    }});
    let mut r = a.http.put(format!("{}/v1/jobs", a.base)).json(&body);
    if let Some(t) = token {
        r = r.header("X-Nomad-Token", t);
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    // Running as the state store says, and the task's runner says so too.
    wait_for!(a.clients[0]
        .alloc_runners()
        .iter()
        .any(|r| r
            .task("t")
            .is_some_and(|t| t.state().state == caravan_structs::TASK_STATE_RUNNING
                && r.alloc_dir.local_dir("t").join("ready").exists())));
    let runner = a.clients[0]
        .alloc_runners()
        .into_iter()
        .find(|r| r.task("t").is_some())
        .unwrap();
    runner.alloc_id.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_streams_stdin_stdout_stderr_and_the_exit_code() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let alloc = running_alloc(&a, "exec-raw", "raw_exec", None).await;

    // Pipes: stdin in, stdout and stderr apart, the exit code at the end.
    let url = exec_url(
        &a,
        &alloc,
        "t",
        &[
            "/bin/sh",
            "-c",
            "cat; echo to-stderr >&2; cat local/ready; exit 7",
        ],
        false,
    );
    let s = run(
        &url,
        None,
        vec![
            json!({"stdin": {"data": b64(b"hello from stdin\n")}}),
            json!({"stdin": {"close": true}}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.exit_code, Some(7), "{s:?}");
    assert_eq!(
        s.stdout, "hello from stdin\nready\n",
        "runs in the task dir: {s:?}"
    );
    assert_eq!(s.stderr, "to-stderr\n");
    assert!(s.close.is_none(), "{s:?}");

    // A TTY: the command sees a terminal, and a tty_size frame sets its size.
    let url = exec_url(
        &a,
        &alloc,
        "t",
        &[
            "/bin/sh",
            "-c",
            "test -t 0 && test -t 1 && echo stdin-is-a-tty; read line; stty size; exit 3",
        ],
        true,
    );
    let s = run(
        &url,
        None,
        vec![
            json!({"tty_size": {"height": 41, "width": 133}}),
            json!({"stdin": {"data": b64(b"go\n")}}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.exit_code, Some(3), "{s:?}");
    assert!(s.stdout.contains("stdin-is-a-tty"), "{s:?}");
    assert!(
        s.stdout.contains("41 133"),
        "stty size after tty_size: {s:?}"
    );
    assert_eq!(s.stderr, "", "a TTY carries everything as stdout");

    // A program that does not exist: the session says so in its close frame.
    let url = exec_url(&a, &alloc, "t", &["/no/such/program"], false);
    let s = run(&url, None, vec![]).await.unwrap();
    let (code, reason) = s.close.expect("an error close frame");
    assert_eq!(code, 1011);
    assert!(reason.contains("/no/such/program"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_exec_requests_are_refused_and_start_nothing() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let alloc = running_alloc(&a, "exec-bad", "raw_exec", None).await;
    let marker = std::env::temp_dir().join(format!("caravan-exec-marker-{alloc}"));
    let touch = format!("touch {}", marker.display());
    let cmd = ["/bin/sh", "-c", touch.as_str()];
    let base = a.base.replacen("http://", "ws://", 1);
    let path = format!("{base}/v1/client/allocation/{alloc}/exec");
    let cases: Vec<(String, u16, &str)> = vec![
        (
            exec_url(&a, &alloc, "nope", &cmd, false),
            400,
            "unknown task name \"nope\"",
        ),
        (
            exec_url(&a, &alloc, "t", &[], false),
            400,
            "command is not present",
        ),
        (
            format!("{path}?task=t&command=touch%20x"),
            400,
            "command is not a JSON array",
        ),
        (
            format!("{path}?task=t&command=%5B%22sh%22%5D&tty=perhaps"),
            400,
            "tty value is not a boolean",
        ),
        (
            format!("{path}?command=%5B%22sh%22%5D"),
            400,
            "missing task name",
        ),
        (
            exec_url(&a, "00000000-0000-0000-0000-000000000000", "t", &cmd, false),
            404,
            "Unknown allocation",
        ),
    ];
    for (url, want, msg) in cases {
        let (code, body) = run(&url, None, vec![]).await.expect_err("refused");
        assert_eq!(code, want, "{url}: {body}");
        assert!(body.contains(msg), "{url}: {body}");
    }
    // A plain GET (no websocket upgrade) is told what the endpoint speaks.
    let r = a
        .http
        .get(format!(
            "{}/v1/client/allocation/{alloc}/exec?task=t&command=%5B%22sh%22%5D",
            a.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("websocket"));
    assert!(!marker.exists(), "a refused exec ran its command");
}

/// ACL helpers: bootstrap, a policy, a client token.
async fn acl_token(a: &TestAgent, mgmt: &str, name: &str, rules: &str) -> String {
    let r = a
        .http
        .put(format!("{}/v1/acl/policy/{name}", a.base))
        .header("X-Nomad-Token", mgmt)
        .json(&json!({"Name": name, "Rules": rules}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{:?}", r.text().await);
    let r = a
        .http
        .put(format!("{}/v1/acl/token", a.base))
        .header("X-Nomad-Token", mgmt)
        .json(&json!({"Type": "client", "Policies": [name]}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["SecretID"].as_str().expect("secret").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_needs_alloc_exec_and_for_raw_exec_alloc_node_exec() {
    let a = start_with(
        1,
        ServerConfig {
            acl: crate::server::acl::AclConfig {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        },
        ClientConfig::default(),
    )
    .await;
    let r = a
        .http
        .put(format!("{}/v1/acl/bootstrap", a.base))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let mgmt = v["SecretID"].as_str().unwrap().to_string();
    let alloc = running_alloc(&a, "exec-acl", "raw_exec", Some(&mgmt)).await;
    let url = exec_url(&a, &alloc, "t", &["/bin/echo", "allowed"], false);

    let reader = acl_token(
        &a,
        &mgmt,
        "reader",
        "namespace \"default\" {\n  capabilities = [\"read-job\", \"alloc-lifecycle\"]\n}\n",
    )
    .await;
    let exec_only = acl_token(
        &a,
        &mgmt,
        "exec-only",
        "namespace \"default\" {\n  capabilities = [\"alloc-exec\"]\n}\n",
    )
    .await;
    let node_exec = acl_token(
        &a,
        &mgmt,
        "node-exec",
        "namespace \"default\" {\n  capabilities = [\"alloc-exec\", \"alloc-node-exec\"]\n}\n",
    )
    .await;
    for (who, tok) in [
        ("anonymous", None),
        ("without alloc-exec", Some(reader.as_str())),
        // raw_exec has no isolation: alloc-exec alone is not enough, as in Nomad.
        (
            "alloc-exec without alloc-node-exec",
            Some(exec_only.as_str()),
        ),
    ] {
        let (code, body) = run(&url, tok, vec![]).await.expect_err(who);
        assert_eq!(code, 403, "{who}: {body}");
        assert!(body.contains("Permission denied"), "{who}: {body}");
    }
    let s = run(&url, Some(&node_exec), vec![]).await.unwrap();
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    assert_eq!(s.stdout, "allowed\n");

    // ws_handshake: the token comes in the first frame (browsers cannot set headers).
    let url = format!("{url}&ws_handshake=true");
    let hello = |tok: &str| json!({"version": 1, "auth_token": tok});
    let s = run(&url, None, vec![hello(&node_exec)]).await.unwrap();
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    assert_eq!(s.stdout, "allowed\n");
    for (who, tok) in [("without alloc-exec", reader.as_str()), ("no token", "")] {
        let s = run(&url, None, vec![hello(tok)]).await.unwrap();
        assert_eq!(s.exit_code, None, "{who}: {s:?}");
        let (code, reason) = s.close.expect("refused in a close frame");
        assert_eq!(code, 1008, "{who}");
        assert!(reason.contains("Permission denied"), "{who}: {reason}");
        assert_eq!(s.stdout, "", "{who}: nothing ran");
    }
}

/// True (after printing why) when the exec driver cannot run here.
fn exec_driver_skip(test: &str) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED {test}: the exec driver needs root (run the tests as root)");
        return true;
    }
    if !std::path::Path::new("/sys/fs/cgroup").exists() {
        eprintln!("SKIPPED {test}: no cgroup hierarchy under /sys/fs/cgroup");
        return true;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_driver_exec_enters_the_tasks_chroot_and_pid_namespace() {
    if exec_driver_skip("exec_driver_exec_enters_the_tasks_chroot_and_pid_namespace") {
        return;
    }
    let a = start_with_drivers(1, ServerConfig::default(), ClientConfig::default(), || {
        vec![Arc::new(caravan_driver_exec::ExecDriver::new(
            caravan_driver_exec::ExecDriverConfig {
                cgroup_parent: "caravan-test".into(),
                ..Default::default()
            },
        ))]
    })
    .await;
    let alloc = running_alloc(&a, "exec-iso", "exec", None).await;
    let url = exec_url(
        &a,
        &alloc,
        "t",
        &[
            "/bin/sh",
            "-c",
            "ls /; echo ---; tr '\\0' ' ' < /proc/1/cmdline; echo; id -u; cat /local/ready; echo ---; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done",
        ],
        false,
    );
    let s = run(&url, None, vec![]).await.unwrap();
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    let (root, rest) = s.stdout.split_once("---\n").expect("two parts");
    let root: Vec<&str> = root.lines().collect();
    for d in ["alloc", "local", "secrets", "tmp", "bin"] {
        assert!(root.contains(&d), "the chroot has /{d}: {root:?}");
    }
    assert!(
        !root.contains(&"work") && !root.contains(&"root"),
        "the host's root is not visible: {root:?}"
    );
    let (mine, procs) = rest.split_once("---\n").expect("three parts");
    let lines: Vec<&str> = mine.lines().collect();
    // PID 1 of the namespace is the task's main process (or the per-task shim that runs it).
    assert!(
        lines[0].contains("sleep 600"),
        "PID 1 is the task: {lines:?}"
    );
    assert_eq!(lines[1], "65534", "runs as the task's user (nobody)");
    assert_eq!(lines[2], "ready");
    let procs: Vec<&str> = procs.lines().map(str::trim).collect();
    assert!(
        procs.contains(&"sleep 600"),
        "the task is visible: {procs:?}"
    );
    assert!(
        procs.len() <= 8
            && !procs
                .iter()
                .any(|p| p.contains("caravan-") && !p.contains("caravan-shim")),
        "only the task's processes are visible: {procs:?}"
    );

    // Input reaches a command inside the task while it runs.
    let url = exec_url(
        &a,
        &alloc,
        "t",
        &["/bin/sh", "-c", "read line; echo \"got $line\"; cat >&2"],
        false,
    );
    let s = run(
        &url,
        None,
        vec![
            json!({"stdin": {"data": b64(b"hello\n")}}),
            json!({"stdin": {"data": b64(b"to stderr\n")}}),
            json!({"stdin": {"close": true}}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    assert_eq!(s.stdout, "got hello\n");
    assert_eq!(s.stderr, "to stderr\n");

    // With a TTY inside the task.
    let url = exec_url(
        &a,
        &alloc,
        "t",
        &["/bin/sh", "-c", "test -t 0 && echo tty-in-task; stty size"],
        true,
    );
    let s = run(
        &url,
        None,
        vec![json!({"tty_size": {"height": 12, "width": 34}})],
    )
    .await
    .unwrap();
    assert_eq!(s.exit_code, Some(0), "{s:?}");
    assert!(s.stdout.contains("tty-in-task"), "{s:?}");
}
