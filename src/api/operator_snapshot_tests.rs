//! `operator snapshot save/inspect/restore` through the CLI and `/v1/operator/snapshot`
//! against an in-process server on a data dir, with ACLs on.

use super::{router, AgentInfo, AppState};
use crate::server::{Server, ServerConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn cli(env: BTreeMap<String, String>, args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = caravan_cli::run_with(args, &env, &mut out, &mut err);
        (
            code,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&err).into_owned(),
        )
    })
    .await
    .expect("cli thread")
}

fn job(id: &str) -> caravan_structs::Job {
    let mut j = caravan_structs::Job {
        id: id.into(),
        datacenters: vec!["dc1".into()],
        ..Default::default()
    };
    j.task_groups.push(caravan_structs::TaskGroup {
        name: "g".into(),
        tasks: vec![caravan_structs::Task {
            name: "t".into(),
            driver: "raw_exec".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
    j
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_save_inspect_and_restore_with_a_management_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig {
        data_dir: Some(dir.path().join("server")),
        ..Default::default()
    };
    config.acl.enabled = true;
    let server = Server::open(config).unwrap();
    server.start();
    let token = server.acl_bootstrap(None).unwrap().secret_id;
    server.job_register(job("web"), None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(AppState {
        server: server.clone(),
        client: None,
        agent: Arc::new(AgentInfo::default()),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    let url = format!("{base}/v1/operator/snapshot");

    // Without a token: refused.
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    // With one: an archive with Nomad's Digest header.
    let r = http
        .get(&url)
        .header("X-Nomad-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["digest"]
        .to_str()
        .unwrap()
        .starts_with("sha-256="));

    let mut env = BTreeMap::new();
    env.insert("CARAVAN_ADDR".to_string(), base.clone());
    env.insert("CARAVAN_TOKEN".to_string(), token.clone());
    let file = dir.path().join("backup.snap").display().to_string();
    let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // The client may commit entries (allocation updates, heartbeats) around the save: the
    // snapshot's index lies between the indexes before and after it.
    let before_save = server.last_index();
    let (code, out, err) = cli(env.clone(), args(&["operator", "snapshot", "save", &file])).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("State file written to {file}")),
        "{out}"
    );
    let after_save = server.last_index();

    let (code, out, err) = cli(
        env.clone(),
        args(&["operator", "snapshot", "inspect", &file]),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let saved_at: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("Index   = "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no index in {out}"));
    assert!(
        (before_save..=after_save).contains(&saved_at),
        "{saved_at} not in {before_save}..={after_save}: {out}"
    );
    assert!(out.contains("Version = 1"), "{out}");
    let (code, out, _) = cli(
        env.clone(),
        args(&["operator", "snapshot", "inspect", "-json", &file]),
    )
    .await;
    assert_eq!(code, 0);
    let meta: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(meta["Index"], json!(saved_at));

    // Something written after the save is gone after the restore.
    server.job_register(job("later"), None).unwrap();
    let (code, out, err) = cli(
        env.clone(),
        args(&["operator", "snapshot", "restore", &file]),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Snapshot Restored"), "{out}");
    let t = server.store.snapshot();
    assert!(t.job("default", "web").is_some());
    assert!(t.job("default", "later").is_none());
    assert!(t.index > saved_at);
    // The bootstrap token came back with the state: it still works.
    let r = http
        .get(format!("{base}/v1/jobs"))
        .header("X-Nomad-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // A damaged file: refused, by inspect locally and by the server, and nothing changes.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.truncate(bytes.len() - 4);
    let bad = dir.path().join("bad.snap").display().to_string();
    std::fs::write(&bad, &bytes).unwrap();
    let (code, _, err) = cli(
        env.clone(),
        args(&["operator", "snapshot", "inspect", &bad]),
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("Error verifying snapshot"), "{err}");
    let before = server.last_index();
    let r = http
        .put(&url)
        .header("X-Nomad-Token", &token)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("not a valid snapshot"));
    assert_eq!(server.last_index(), before);
}
