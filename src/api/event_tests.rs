//! `/v1/event/stream` and `/v1/search/fuzzy` against a real in-process agent: a job's events
//! arrive in index order, a reconnect resumes from an index, topic filters deliver only what
//! they name, bad parameters are refused, a client that goes away ends its subscription, and a
//! fuzzy search finds a job by part of a task's name.

use super::tests::{sleeper_job, start_nodes, TestAgent};
use super::{router, AgentInfo, AppState};
use crate::server::{Server, ServerConfig};
use crate::wait_for;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Reads an NDJSON event stream line by line.
pub(super) struct Stream {
    resp: reqwest::Response,
    pending: Vec<u8>,
}

impl Stream {
    pub(super) async fn open(a: &TestAgent, query: &str) -> Stream {
        let resp = a
            .http
            .get(format!("{}/v1/event/stream{query}", a.base))
            .send()
            .await
            .expect("stream request");
        assert_eq!(resp.status().as_u16(), 200, "{query}");
        Stream {
            resp,
            pending: Vec::new(),
        }
    }

    /// The next line as JSON: a heartbeat `{}` or a frame.
    async fn line(&mut self) -> Value {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                return serde_json::from_slice(&line).expect("each line is JSON");
            }
            // A guard against a hung test, not a timing assertion.
            let chunk = tokio::time::timeout(Duration::from_secs(30), self.resp.chunk())
                .await
                .expect("a line within 30 s")
                .expect("stream readable")
                .expect("stream still open");
            self.pending.extend_from_slice(&chunk);
        }
    }

    /// The next frame with events, skipping heartbeats.
    pub(super) async fn frame(&mut self) -> Value {
        loop {
            let v = self.line().await;
            if v != json!({}) {
                return v;
            }
        }
    }
}

fn events(frame: &Value) -> Vec<Value> {
    frame["Events"].as_array().cloned().unwrap_or_default()
}

fn has_key(e: &Value, key: &str) -> bool {
    e["Key"] == key
        || e["FilterKeys"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_sees_register_eval_and_running_in_order_and_resumes_from_an_index() {
    let a = start_nodes(1).await;
    let mut s = Stream::open(&a, "").await;
    assert_eq!(s.line().await, json!({}), "a stream opens with a heartbeat");
    let (code, body) = a.put("/v1/jobs", &sleeper_job("ev-job", 1)).await;
    assert_eq!(code, 200, "{body}");

    // Read until the job's allocation runs, noting where each step first appeared.
    let mut frames = Vec::new();
    let (mut registered, mut evaluated, mut running) = (None, None, None);
    while running.is_none() {
        let f = s.frame().await;
        let index = f["Index"].as_u64().expect("frame index");
        for e in events(&f) {
            assert_eq!(e["Index"], index, "an event carries its frame's index");
            if !has_key(&e, "ev-job") {
                continue;
            }
            match (e["Topic"].as_str(), e["Type"].as_str()) {
                (Some("Job"), Some("JobRegistered")) => {
                    assert_eq!(e["Payload"]["Job"]["ID"], "ev-job");
                    registered.get_or_insert(index);
                }
                (Some("Evaluation"), Some("EvaluationUpdated")) => {
                    assert_eq!(e["Payload"]["Evaluation"]["JobID"], "ev-job");
                    evaluated.get_or_insert(index);
                }
                (Some("Allocation"), Some("AllocationUpdated"))
                    if e["Payload"]["Allocation"]["ClientStatus"] == "running" =>
                {
                    assert_eq!(e["Payload"]["Allocation"]["Job"], Value::Null);
                    running.get_or_insert(index);
                }
                _ => {}
            }
        }
        frames.push(index);
    }
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "frames in index order: {frames:?}"
    );
    let (registered, evaluated, running) = (
        registered.expect("JobRegistered"),
        evaluated.expect("EvaluationUpdated"),
        running.expect("AllocationUpdated to running"),
    );
    assert!(
        registered < evaluated && evaluated < running,
        "register {registered} < evaluation {evaluated} < running {running}"
    );

    // A reconnect from the evaluation's frame starts there and repeats nothing older.
    let mut again = Stream::open(&a, &format!("?index={evaluated}")).await;
    let expected: Vec<u64> = frames.iter().copied().filter(|i| *i >= evaluated).collect();
    let mut resumed = Vec::new();
    while resumed.len() < expected.len() {
        resumed.push(again.frame().await["Index"].as_u64().expect("index"));
    }
    assert_eq!(resumed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_filters_deliver_only_the_named_jobs_events() {
    let a = start_nodes(1).await;
    let mut jobs = Stream::open(&a, "?topic=Job:myjob").await;
    let mut evals = Stream::open(&a, "?topic=Evaluation:myjob&namespace=default").await;
    let (code, body) = a.put("/v1/jobs", &sleeper_job("otherjob", 1)).await;
    assert_eq!(code, 200, "{body}");
    let other_index = serde_json::from_str::<Value>(&body).expect("JSON")["JobModifyIndex"]
        .as_u64()
        .expect("JobModifyIndex");
    let (code, body) = a.put("/v1/jobs", &sleeper_job("myjob", 1)).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(!a.running("myjob").await.is_empty());
    let r = a
        .http
        .delete(format!("{}/v1/job/myjob?purge=true", a.base))
        .send()
        .await
        .expect("deregister");
    assert_eq!(r.status().as_u16(), 200);

    // Every event up to the purge is about myjob, though otherjob changed first.
    let mut types = Vec::new();
    loop {
        let f = jobs.frame().await;
        assert!(f["Index"].as_u64().expect("index") > 0);
        for e in events(&f) {
            assert_eq!(
                (&e["Topic"], &e["Key"]),
                (&json!("Job"), &json!("myjob")),
                "{e}"
            );
            types.push(e["Type"].as_str().unwrap_or_default().to_string());
            if e["Type"] == "JobDeregistered" {
                assert_eq!(
                    e["Payload"]["Deleted"], true,
                    "a purge says the job is gone"
                );
            }
        }
        if types.last().map(String::as_str) == Some("JobDeregistered") {
            assert!(f["Index"].as_u64().unwrap_or(0) > other_index);
            break;
        }
    }
    assert_eq!(types.first().map(String::as_str), Some("JobRegistered"));

    // An evaluation matches its job's ID through its filter keys.
    let f = evals.frame().await;
    for e in events(&f) {
        assert_eq!(e["Topic"], "Evaluation");
        assert_eq!(e["Payload"]["Evaluation"]["JobID"], "myjob");
        assert!(has_key(&e, "myjob"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_parameters_are_refused_with_a_message() {
    let a = start_nodes(0).await;
    for (query, says) in [
        ("topic=Job:a:b", "Invalid key value pair for topic"),
        ("topic=Jobs", "unknown topic \"Jobs\""),
        ("topic=Job:", "empty key"),
        ("index=soon", "Unable to parse index"),
    ] {
        let r = a
            .http
            .get(format!("{}/v1/event/stream?{query}", a.base))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 400, "{query}");
        let text = r.text().await.unwrap_or_default();
        assert!(text.contains(says), "{query}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_going_away_ends_its_subscription() {
    let server = Server::new(ServerConfig::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(AppState {
        server: server.clone(),
        client: None,
        agent: Arc::new(AgentInfo::default()),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut resp = reqwest::get(format!("http://{addr}/v1/event/stream"))
        .await
        .expect("stream");
    let first = resp.chunk().await.expect("read").expect("a heartbeat");
    assert_eq!(&first[..], b"{}\n");
    assert_eq!(server.events.subscribers(), 1);
    drop(resp);
    // The server notices when it next writes: give it events to send.
    let mut n = 0;
    wait_for!({
        n += 1;
        server.raft_apply(crate::server::command::Command::NodeRegister {
            node: caravan_structs::Node {
                id: format!("node-{n}"),
                name: format!("node-{n}"),
                ..Default::default()
            },
        });
        server.events.subscribers() == 0
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzzy_search_finds_a_job_by_part_of_a_task_name_with_its_scope() {
    let a = start_nodes(1).await;
    let mut job = sleeper_job("fz-web", 1);
    job["Job"]["TaskGroups"][0]["Name"] = json!("web-group");
    job["Job"]["TaskGroups"][0]["Tasks"][0]["Name"] = json!("Frontend-Server");
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");

    let search = |body: Value| {
        let a = &a;
        async move {
            let r = a
                .http
                .post(format!("{}/v1/search/fuzzy", a.base))
                .json(&body)
                .send()
                .await
                .expect("request");
            let code = r.status().as_u16();
            (code, r.text().await.unwrap_or_default())
        }
    };
    let (code, body) = search(json!({"Text": "end-SER", "Context": "all"})).await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        v["Matches"]["tasks"],
        json!([{"ID": "Frontend-Server", "Scope": ["default", "fz-web", "web-group"]}])
    );
    assert_eq!(v["Truncations"]["jobs"], false);
    assert!(v["Index"].as_u64().unwrap_or(0) > 0);
    // Only contexts with matches are listed, besides the UUID-prefix ones.
    assert!(v["Matches"].get("groups").is_none(), "{v}");
    assert_eq!(v["Matches"]["evals"], json!([]));

    // A raw_exec task's command, a group, and the node by name.
    let (_, body) = search(json!({"Text": "bin/s", "Context": "jobs"})).await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(
        v["Matches"]["commands"],
        json!([{"ID": "/bin/sh", "Scope": ["default", "fz-web", "web-group", "Frontend-Server"]}])
    );
    let (_, body) = search(json!({"Text": "test-n", "Context": "nodes"})).await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["Matches"]["nodes"][0]["ID"], "test-node");

    // Another namespace holds nothing; `*` searches them all.
    let (_, body) = search(json!({"Text": "fronte", "Namespace": "other"})).await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert!(v["Matches"].get("tasks").is_none(), "{v}");
    let (_, body) = search(json!({"Text": "fronte", "Namespace": "*"})).await;
    let v: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["Matches"]["tasks"][0]["ID"], "Frontend-Server");

    for (bad, says) in [
        (json!({"Text": "f"}), "at least 2 characters"),
        (
            json!({"Text": "web", "Context": "planets"}),
            "invalid fuzzy search context",
        ),
    ] {
        let (code, body) = search(bad.clone()).await;
        assert_eq!(code, 400, "{bad}");
        assert!(body.contains(says), "{bad}: {body}");
    }
}
