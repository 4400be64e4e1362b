//! Artifacts end to end through the API: a local HTTP server (started by the test, counting
//! requests) serves a tar.gz holding a script; a job fetches it with a sha256 checksum,
//! unpacks it into `local/` and runs the script; a second job of the same artifact is served
//! from the node's cache (the server sees one download); a wrong checksum fails the task with
//! Nomad's `Failed Artifact Download` event; a zip-slip archive is refused and nothing lands
//! outside the allocation.

use super::tests::start_with;
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A tar.gz of `entries` (path, mode, body), paths written as given (even `../`).
fn tar_gz(entries: &[(&str, u32, &str)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (path, mode, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(*mode);
        h.set_entry_type(tar::EntryType::Regular);
        // Bypasses the builder's path checks so a hostile archive can be made.
        let name = h.as_old_mut().name.as_mut();
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        tar.append(&h, body.as_bytes()).expect("tar entry");
    }
    tar.into_inner().and_then(|gz| gz.finish()).expect("tar.gz")
}

/// Serves `files` by path on a free port; counts the requests per path.
async fn serve(files: BTreeMap<String, Vec<u8>>) -> (String, Arc<Mutex<BTreeMap<String, u32>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", l.local_addr().expect("addr"));
    let hits: Arc<Mutex<BTreeMap<String, u32>>> = Default::default();
    let (files, h) = (Arc::new(files), hits.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (files, h) = (files.clone(), h.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                if let Ok(mut g) = h.lock() {
                    *g.entry(path.clone()).or_default() += 1;
                }
                let resp = match files.get(&path) {
                    Some(body) => {
                        let mut r = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/gzip\r\nConnection: close\r\n\r\n",
                            body.len()
                        )
                        .into_bytes();
                        r.extend_from_slice(body);
                        r
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                let _ = s.write_all(&resp).await;
            });
        }
    });
    (base, hits)
}

fn job(id: &str, source: &str, checksum: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": "batch",
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "local/app/run.sh"},
                "Artifacts": [{"GetterSource": source,
                               "GetterOptions": {"checksum": format!("sha256:{checksum}")},
                               "RelativeDest": "local/"}],
                "Resources": {"CPU": 20, "MemoryMB": 20}
            }]
        }]
    }})
}

async fn finished(a: &super::tests::TestAgent, id: &str) -> Value {
    crate::wait_for!(a
        .allocs(id)
        .await
        .first()
        .is_some_and(|al| al["ClientStatus"] == "complete" || al["ClientStatus"] == "failed"));
    let id = a.allocs(id).await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    a.get(&format!("/v1/allocation/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_are_verified_unpacked_run_and_cached() {
    let script = "#!/bin/sh\necho hello from the artifact\n";
    let good = tar_gz(&[("app/run.sh", 0o755, script)]);
    let evil = tar_gz(&[("../../../evil.txt", 0o644, "owned")]);
    let sum = hex(&Sha256::digest(&good));
    let evil_sum = hex(&Sha256::digest(&evil));
    let (base, hits) = serve(
        [
            ("/app.tar.gz".to_string(), good),
            ("/evil.tar.gz".to_string(), evil),
        ]
        .into(),
    )
    .await;
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let src = format!("{base}/app.tar.gz");

    // Fetched, verified, unpacked with its mode, run.
    let (code, body) = a.put("/v1/jobs", &job("art-1", &src, &sum)).await;
    assert_eq!(code, 200, "{body}");
    let al = finished(&a, "art-1").await;
    assert_eq!(al["ClientStatus"], "complete", "{al:#}");
    let id = al["ID"].as_str().unwrap_or_default();
    let out = a
        .http
        .get(format!(
            "{}/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true",
            a.base
        ))
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .unwrap_or_default();
    assert!(out.contains("hello from the artifact"), "{out}");

    // The same artifact for another allocation comes from the node's cache.
    let (code, body) = a.put("/v1/jobs", &job("art-2", &src, &sum)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(finished(&a, "art-2").await["ClientStatus"], "complete");
    assert_eq!(hits.lock().map(|h| h["/app.tar.gz"]).unwrap_or(0), 1);

    // A wrong checksum: Nomad's event, the task never runs.
    let bad = "0".repeat(64);
    let (code, body) = a.put("/v1/jobs", &job("art-3", &src, &bad)).await;
    assert_eq!(code, 200, "{body}");
    let al = finished(&a, "art-3").await;
    assert_eq!(al["ClientStatus"], "failed", "{al:#}");
    let events = al["TaskStates"]["t"]["Events"].to_string();
    assert!(events.contains("Failed Artifact Download"), "{events}");
    assert!(events.contains("checksum mismatch"), "{events}");
    assert!(!events.contains("\"Started\""), "{events}");

    // A zip-slip archive is refused; nothing is written outside the allocation.
    let (code, body) = a
        .put(
            "/v1/jobs",
            &job("art-4", &format!("{base}/evil.tar.gz"), &evil_sum),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let al = finished(&a, "art-4").await;
    assert_eq!(al["ClientStatus"], "failed", "{al:#}");
    let events = al["TaskStates"]["t"]["Events"].to_string();
    assert!(events.contains("Failed Artifact Download"), "{events}");
    // The entry aims at <data>/n1/alloc/evil.txt (three levels above the task's local/).
    let mut found = vec![];
    for dir in [
        a.data_dir.clone(),
        a.data_dir.join("n1"),
        a.data_dir.join("n1/alloc"),
    ] {
        if dir.join("evil.txt").exists() {
            found.push(dir);
        }
    }
    assert!(found.is_empty(), "{found:?}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
