//! API tests against a real in-process agent (server, client with raw_exec, HTTP on a free
//! loopback port): bad input, blocking queries, in-place updates, placement failures, task
//! failures and the client filesystem endpoints.

use super::{router, AgentInfo, AppState};
use crate::client::{rpc::InProcess, Client, ClientConfig};
use crate::server::{Server, ServerConfig};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Polls a condition for up to 20 s.
#[macro_export]
macro_rules! wait_for {
    ($cond:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if $cond {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "condition not met in time: {}",
                stringify!($cond)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

pub(super) struct TestAgent {
    pub base: String,
    pub http: reqwest::Client,
    pub data_dir: std::path::PathBuf,
    pub clients: Vec<Arc<Client>>,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        for c in &self.clients {
            for r in c.alloc_runners() {
                for t in r.tasks() {
                    t.kill("test over");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

async fn start() -> TestAgent {
    start_nodes(1).await
}

/// One server and `n` clients (nodes `n1`, `n2`, ...) in process, HTTP on a free port.
pub(super) async fn start_nodes(n: usize) -> TestAgent {
    start_with(n, ServerConfig::default(), ClientConfig::default()).await
}

/// As `start_nodes`, with the given server and client settings (each client gets its own
/// data dir and name).
pub(super) async fn start_with(n: usize, server: ServerConfig, client: ClientConfig) -> TestAgent {
    start_with_drivers(n, server, client, || {
        vec![Arc::new(caravan_driver_raw_exec::RawExecDriver::new(true))]
    })
    .await
}

/// As `start_with`, each client with the drivers `drivers` makes.
pub(super) async fn start_with_drivers(
    n: usize,
    server: ServerConfig,
    client: ClientConfig,
    drivers: impl Fn() -> Vec<Arc<dyn caravan_driver::Driver>>,
) -> TestAgent {
    start_clients(server, vec![client; n], drivers).await
}

/// One server and a client for each of `configs` (each its own settings, such as a node
/// pool), in process, HTTP on a free port.
pub(super) async fn start_clients(
    server: ServerConfig,
    configs: Vec<ClientConfig>,
    drivers: impl Fn() -> Vec<Arc<dyn caravan_driver::Driver>>,
) -> TestAgent {
    let n = configs.len();
    let data_dir =
        std::env::temp_dir().join(format!("caravan-api-test-{}", caravan_structs::new_id()));
    let server = Server::new(server);
    server.start();
    let mut clients = Vec::new();
    // Every client gets its own API listener, advertised as its node's HTTP address, as each
    // agent of a real cluster has (other nodes fetch migrating disks from it).
    let mut listeners = Vec::new();
    for (i, client) in (1..=n).zip(configs) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        listeners.push(listener);
        let client = Client::start(
            ClientConfig {
                http_addr: addr.to_string(),
                data_dir: data_dir.join(format!("n{i}")),
                node_name: if n == 1 {
                    "test-node".into()
                } else {
                    format!("n{i}")
                },
                ..client
            },
            drivers(),
            Arc::new(InProcess(server.clone())),
        )
        .await
        .expect("client starts");
        clients.push(client);
    }
    if listeners.is_empty() {
        listeners.push(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        );
    }
    let addr = listeners[0].local_addr().expect("addr");
    for (i, listener) in listeners.into_iter().enumerate() {
        let app = router(AppState {
            server: server.clone(),
            client: clients.get(i).cloned(),
            agent: Arc::new(AgentInfo {
                node_name: "test-node".into(),
                region: "global".into(),
                datacenter: "dc1".into(),
                rpc_addr: "127.0.0.1:4647".into(),
                ..Default::default()
            }),
        });
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
    }
    let t = TestAgent {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        data_dir,
        clients,
    };
    // Straight from the state store: with ACLs on, `/v1/nodes` wants a token.
    wait_for!(server.store.snapshot().nodes.len() == n);
    t
}

impl TestAgent {
    pub(super) async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .unwrap_or(Value::Null)
    }

    pub(super) async fn put(&self, path: &str, body: &Value) -> (u16, String) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.text().await.unwrap_or_default())
    }

    pub(super) async fn allocs(&self, job: &str) -> Vec<Value> {
        self.get(&format!("/v1/job/{job}/allocations"))
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub(super) async fn running(&self, job: &str) -> Vec<Value> {
        self.allocs(job)
            .await
            .into_iter()
            .filter(|a| a["ClientStatus"] == "running" && a["DesiredStatus"] == "run")
            .collect()
    }
}

pub(super) fn sleeper_job(id: &str, count: i64) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g", "Count": count,
            "RestartPolicy": {"Attempts": 1, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "echo started $NOMAD_ALLOC_INDEX; exec sleep 600"]},
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 1_000_000_000
            }]
        }]
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_rejected_and_registers_nothing() {
    let a = start().await;
    let r = a
        .http
        .put(format!("{}/v1/jobs", a.base))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("Failed to decode request body"));
    let (code, msg) = a.put("/v1/jobs", &json!({"Job": {"ID": "x y"}})).await;
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("Job ID contains a space"), "{msg}");
    let (code, msg) = a.put("/v1/jobs", &json!({"NotAJob": 1})).await;
    assert_eq!(code, 400);
    assert!(msg.contains("Job must be specified"));
    assert_eq!(a.get("/v1/jobs").await, json!([]));
    assert_eq!(a.get("/v1/evaluations").await, json!([]));
    let r = a
        .http
        .get(format!("{}/v1/nope", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = a
        .http
        .get(format!("{}/v1/job/missing", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = a
        .http
        .get(format!("{}/v1/jobs?index=abc", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_updates_touch_only_the_difference() {
    let a = start().await;
    let (code, body) = a.put("/v1/jobs", &sleeper_job("web", 1)).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running("web").await.len() == 1);
    let first = a.running("web").await[0]["ID"].clone();

    // Unchanged: same version, no new allocations.
    let (code, _) = a.put("/v1/jobs", &sleeper_job("web", 1)).await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.get("/v1/job/web").await["Version"], 0);
    assert_eq!(a.allocs("web").await.len(), 1);

    // Count 1 -> 3: two new allocations, the first untouched.
    a.put("/v1/jobs", &sleeper_job("web", 3)).await;
    wait_for!(a.running("web").await.len() == 3);
    assert_eq!(a.allocs("web").await.len(), 3);
    assert!(a.running("web").await.iter().any(|x| x["ID"] == first));
    let alloc = a
        .get(&format!("/v1/allocation/{}", first.as_str().unwrap()))
        .await;
    assert_eq!(alloc["TaskStates"]["t"]["Restarts"], 0);

    // A change that needs no new allocation (priority, job meta) is applied in place: new job
    // version on the same allocations, tasks not restarted.
    let mut changed = sleeper_job("web", 3);
    changed["Job"]["Priority"] = json!(70);
    changed["Job"]["Meta"] = json!({"owner": "ops"});
    a.put("/v1/jobs", &changed).await;
    let version = a.get("/v1/job/web").await["Version"].clone();
    assert_eq!(
        version, 2,
        "count change and priority change each make a version"
    );
    wait_for!(
        a.running("web")
            .await
            .iter()
            .filter(|x| x["JobVersion"] == version)
            .count()
            == 3
    );
    assert_eq!(a.allocs("web").await.len(), 3, "no allocation was replaced");
    let alloc = a
        .get(&format!("/v1/allocation/{}", first.as_str().unwrap()))
        .await;
    assert_eq!(alloc["TaskStates"]["t"]["Restarts"], 0);
    assert_eq!(alloc["Job"]["Priority"], 70);

    // Count 3 -> 1: the highest indexes stop, the first keeps running.
    a.put("/v1/jobs", &sleeper_job("web", 1)).await;
    wait_for!(a.running("web").await.len() == 1);
    assert_eq!(a.running("web").await[0]["ID"], first);
    assert_eq!(a.running("web").await[0]["Name"], "web.g[0]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_constraint_is_explained() {
    let a = start().await;
    let mut job = sleeper_job("nowhere", 1);
    job["Job"]["Constraints"] =
        json!([{"LTarget": "${attr.kernel.name}", "RTarget": "windows", "Operand": "="}]);
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    let eval_id = serde_json::from_str::<Value>(&body).unwrap()["EvalID"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("/v1/evaluation/{eval_id}");
    wait_for!(a.get(&path).await["Status"] == "complete");
    let ev = a.get(&path).await;
    let m = &ev["FailedTGAllocs"]["g"];
    assert_eq!(m["NodesEvaluated"], 1, "{ev}");
    assert_eq!(m["NodesFiltered"], 1, "{ev}");
    assert_eq!(
        m["ConstraintFiltered"]["${attr.kernel.name} = windows"], 1,
        "{ev}"
    );
    assert!(ev["BlockedEval"]
        .as_str()
        .map(|s| !s.is_empty())
        .unwrap_or(false));
    assert!(a.allocs("nowhere").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_command_reports_os_error_and_applies_restart_policy() {
    let a = start().await;
    let mut job = sleeper_job("broken", 1);
    job["Job"]["TaskGroups"][0]["Tasks"][0]["Config"] = json!({"command": "/no/such/binary"});
    // Do not reschedule, so the failed alloc stays the only one.
    job["Job"]["TaskGroups"][0]["ReschedulePolicy"] = json!({"Attempts": 0, "Unlimited": false});
    a.put("/v1/jobs", &job).await;
    wait_for!(a
        .allocs("broken")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "failed")
        .unwrap_or(false));
    let id = a.allocs("broken").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let alloc = a.get(&format!("/v1/allocation/{id}")).await;
    let events = alloc["TaskStates"]["t"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<&str> = events.iter().filter_map(|e| e["Type"].as_str()).collect();
    assert!(types.contains(&"Driver Failure"), "{types:?}");
    assert!(types.contains(&"Restarting"), "{types:?}");
    assert!(types.contains(&"Not Restarting"), "{types:?}");
    let failure = events
        .iter()
        .find(|e| e["Type"] == "Driver Failure")
        .unwrap();
    assert!(
        failure["DisplayMessage"]
            .as_str()
            .unwrap()
            .contains("No such file or directory"),
        "{failure}"
    );
    assert_eq!(alloc["TaskStates"]["t"]["Failed"], true);
    assert_eq!(alloc["TaskStates"]["t"]["Restarts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_query_wakes_on_change_and_logs_are_served() {
    let a = start().await;
    let r = a
        .http
        .get(format!("{}/v1/jobs", a.base))
        .send()
        .await
        .unwrap();
    let index: u64 = r.headers()["X-Nomad-Index"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let http = a.http.clone();
    let url = format!("{}/v1/jobs?index={index}&wait=20s", a.base);
    let waiter = tokio::spawn(async move {
        let start = Instant::now();
        let r = http.get(url).send().await.unwrap();
        let idx: u64 = r.headers()["X-Nomad-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (start.elapsed(), idx, r.json::<Value>().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.put("/v1/jobs", &sleeper_job("logs", 1)).await;
    let (took, idx, jobs) = waiter.await.unwrap();
    assert!(
        took < Duration::from_secs(10),
        "blocking query did not wake: {took:?}"
    );
    assert!(idx > index);
    assert_eq!(jobs[0]["ID"], "logs");

    wait_for!(a.running("logs").await.len() == 1);
    let id = a.running("logs").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!(
        "{}/v1/client/fs/logs/{id}?task=t&type=stdout&plain=true",
        a.base
    );
    let mut text = String::new();
    for _ in 0..50 {
        text = a.http.get(&url).send().await.unwrap().text().await.unwrap();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text, "started 0\n");
    // Paths never leave the allocation directory.
    let r = a
        .http
        .get(format!(
            "{}/v1/client/fs/cat/{id}?path=../../../../etc/passwd",
            a.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("escapes the allocation directory"));
    let ls = a.get(&format!("/v1/client/fs/ls/{id}?path=/")).await;
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Name"].as_str())
        .collect();
    assert_eq!(names, vec!["alloc", "t"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_tasks_run_in_order() {
    let a = start().await;
    let task = |name: &str, hook: Option<&str>, script: &str| {
        let mut t = json!({
            "Name": name, "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c", script]},
            "Resources": {"CPU": 20, "MemoryMB": 10}
        });
        if let Some(h) = hook {
            t["Lifecycle"] = json!({"Hook": h, "Sidecar": false});
        }
        t
    };
    let job = json!({"Job": {"ID": "ordered", "Type": "batch", "TaskGroups": [{
        "Name": "g",
        "Tasks": [
            task("post", Some("poststop"), "echo post >> $NOMAD_ALLOC_DIR/order"),
            task("main", None, "sleep 0.3; echo main >> $NOMAD_ALLOC_DIR/order"),
            task("pre", Some("prestart"), "sleep 0.3; echo pre >> $NOMAD_ALLOC_DIR/order"),
        ]
    }]}});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .allocs("ordered")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "complete")
        .unwrap_or(false));
    let id = a.allocs("ordered").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!("{}/v1/client/fs/cat/{id}?path=alloc/order", a.base);
    let order = a.http.get(url).send().await.unwrap().text().await.unwrap();
    assert_eq!(order, "pre\nmain\npost\n");
    assert_eq!(a.get("/v1/job/ordered").await["Status"], "dead");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_moves_allocations_one_healthy_replacement_at_a_time() {
    let a = start_nodes(2).await;
    let nodes = a.get("/v1/nodes").await;
    let id_of = |name: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["Name"] == name)
            .unwrap()["ID"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (n1, n2) = (id_of("n1"), id_of("n2"));
    // Everything starts on n1.
    let elig = |e: &str| json!({"Eligibility": e});
    assert_eq!(
        a.put(&format!("/v1/node/{n2}/eligibility"), &elig("ineligible"))
            .await
            .0,
        200
    );
    let mut job = sleeper_job("mover", 3);
    job["Job"]["TaskGroups"][0]["Migrate"] = json!({
        "MaxParallel": 1, "HealthCheck": "task_states",
        "MinHealthyTime": 1_000_000_000i64, "HealthyDeadline": 30_000_000_000i64
    });
    a.put("/v1/jobs", &job).await;
    wait_for!(a.running("mover").await.len() == 3);
    assert!(a
        .running("mover")
        .await
        .iter()
        .all(|x| x["NodeID"] == n1.as_str()));
    assert_eq!(
        a.put(&format!("/v1/node/{n2}/eligibility"), &elig("eligible"))
            .await
            .0,
        200
    );

    let (code, body) = a
        .put(
            &format!("/v1/node/{n1}/drain"),
            &json!({"DrainSpec": {"Deadline": 60_000_000_000i64}, "MarkEligible": false}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    let node = a.get(&format!("/v1/node/{n1}")).await;
    assert_eq!(node["Drain"], true);
    assert_eq!(node["SchedulingEligibility"], "ineligible");

    // Watch the migration: never more than one replacement that is not yet healthy, and the
    // allocations leave n1 in index order.
    let mut stop_order: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let allocs = a.allocs("mover").await;
        let unhealthy_new = allocs
            .iter()
            .filter(|x| x["NodeID"] == n2.as_str() && x["DesiredStatus"] == "run")
            .filter(|x| x["DeploymentStatus"]["Healthy"] != true)
            .count();
        assert!(
            unhealthy_new <= 1,
            "more than max_parallel replacements in flight: {allocs:?}"
        );
        for x in allocs
            .iter()
            .filter(|x| x["NodeID"] == n1.as_str() && x["DesiredStatus"] == "stop")
        {
            let name = x["Name"].as_str().unwrap().to_string();
            if !stop_order.contains(&name) {
                stop_order.push(name);
            }
        }
        let moved = a
            .running("mover")
            .await
            .iter()
            .filter(|x| x["NodeID"] == n2.as_str())
            .count();
        if moved == 3 && a.get(&format!("/v1/node/{n1}")).await["Drain"] == false {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drain did not finish: {allocs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stop_order, vec!["mover.g[0]", "mover.g[1]", "mover.g[2]"]);
    let node = a.get(&format!("/v1/node/{n1}")).await;
    assert_eq!(
        node["SchedulingEligibility"], "ineligible",
        "drain keeps the node ineligible"
    );
    let events: Vec<&str> = node["Events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Message"].as_str())
        .collect();
    assert!(events.contains(&"Node drain complete"), "{events:?}");
}

/// Serves one body at `path` on a loopback port (a thread per request); returns the URL and a
/// counter of requests served.
fn serve_artifact(
    path: &'static str,
    body: Vec<u8>,
) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}{path}", listener.local_addr().expect("addr"));
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" {
                    break;
                }
            }
            let resp = if first.split_whitespace().nth(1) == Some(path) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(&body);
                r
            } else {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            };
            let _ = stream.write_all(&resp);
        }
    });
    (url, hits)
}

fn sha256_hex(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("caravan-sum-{}", caravan_structs::new_id()));
    std::fs::write(&dir, bytes).expect("write");
    let sum =
        caravan_getter::checksum::hash_file(caravan_getter::checksum::Algorithm::Sha256, &dir)
            .expect("hash");
    let _ = std::fs::remove_file(&dir);
    sum
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_is_fetched_into_local_before_the_task_starts() {
    let body = b"artifact payload\n".to_vec();
    let (url, hits) = serve_artifact("/files/hello.txt", body.clone());
    let a = start().await;
    let mut job = sleeper_job("fetcher", 1);
    let task = &mut job["Job"]["TaskGroups"][0]["Tasks"][0];
    task["Config"] =
        json!({"command": "/bin/sh", "args": ["-c", "cat local/hello.txt; exec sleep 600"]});
    task["Artifacts"] = json!([{
        "GetterSource": url,
        "GetterOptions": {"checksum": format!("sha256:{}", sha256_hex(&body))},
        "RelativeDest": "local/"
    }]);
    let (status, text) = a.put("/v1/jobs", &job).await;
    assert_eq!(status, 200, "{text}");
    wait_for!(a.running("fetcher").await.len() == 1);
    let id = a.running("fetcher").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let file = a
        .data_dir
        .join("n1/alloc")
        .join(&id)
        .join("t/local/hello.txt");
    assert_eq!(std::fs::read(&file).expect("artifact in local/"), body);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    let alloc = a.get(&format!("/v1/allocation/{id}")).await;
    let types: Vec<String> = alloc["TaskStates"]["t"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["Type"].as_str().map(str::to_string))
        .collect();
    let dl = types.iter().position(|t| t == "Downloading Artifacts");
    let started = types.iter().position(|t| t == "Started");
    assert!(
        dl.is_some() && started.is_some() && dl < started,
        "{types:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_artifact_checksum_fails_the_task_with_the_reason() {
    let (url, hits) = serve_artifact("/app.bin", b"the real bytes".to_vec());
    let a = start().await;

    // A destination outside the allocation is refused at submission.
    let mut bad = sleeper_job("escape", 1);
    bad["Job"]["TaskGroups"][0]["Tasks"][0]["Artifacts"] =
        json!([{"GetterSource": url, "RelativeDest": "../../etc"}]);
    let (status, text) = a.put("/v1/jobs", &bad).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("escapes the allocation directory"), "{text}");

    let mut job = sleeper_job("badsum", 1);
    job["Job"]["TaskGroups"][0]["ReschedulePolicy"] = json!({"Attempts": 0, "Unlimited": false});
    job["Job"]["TaskGroups"][0]["Tasks"][0]["Artifacts"] = json!([{
        "GetterSource": url,
        "GetterOptions": {"checksum": format!("sha256:{}", "0".repeat(64))}
    }]);
    let (status, text) = a.put("/v1/jobs", &job).await;
    assert_eq!(status, 200, "{text}");
    wait_for!(a
        .allocs("badsum")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "failed")
        .unwrap_or(false));
    let id = a.allocs("badsum").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let alloc = a.get(&format!("/v1/allocation/{id}")).await;
    let events = alloc["TaskStates"]["t"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let types: Vec<&str> = events.iter().filter_map(|e| e["Type"].as_str()).collect();
    let failure = events
        .iter()
        .find(|e| e["Type"] == "Failed Artifact Download")
        .unwrap_or_else(|| panic!("no artifact failure event in {types:?}"));
    let msg = failure["DisplayMessage"].as_str().unwrap_or_default();
    assert!(
        msg.contains(&format!(
            "checksum mismatch: expected sha256:{}",
            "0".repeat(64)
        )),
        "{msg}"
    );
    assert!(msg.contains(&sha256_hex(b"the real bytes")), "{msg}");
    // Retried once under the restart policy (Attempts: 1), then failed for good.
    assert!(types.contains(&"Restarting"), "{types:?}");
    assert!(types.contains(&"Not Restarting"), "{types:?}");
    assert!(!types.contains(&"Started"), "{types:?}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(alloc["TaskStates"]["t"]["Failed"], true);
    // Nothing was left in the task's directory.
    let local = a.data_dir.join("n1/alloc").join(&id).join("t/local");
    let left: Vec<_> = std::fs::read_dir(&local)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_artifact_limits_apply_to_downloads() {
    let (url, _hits) = serve_artifact("/big.bin", vec![7u8; 4096]);
    let client = ClientConfig {
        artifact: caravan_getter::GetterConfig {
            http_max_size: 1000,
            ..Default::default()
        },
        ..Default::default()
    };
    let a = start_with(1, ServerConfig::default(), client).await;
    let mut job = sleeper_job("limited", 1);
    let task = &mut job["Job"]["TaskGroups"][0]["Tasks"][0];
    task["Artifacts"] = json!([{"GetterSource": url, "RelativeDest": "local/"}]);
    job["Job"]["TaskGroups"][0]["RestartPolicy"]["Attempts"] = json!(0);
    let (status, text) = a.put("/v1/jobs", &job).await;
    assert_eq!(status, 200, "{text}");
    wait_for!(a
        .allocs("limited")
        .await
        .first()
        .map(|x| x["TaskStates"]["t"]["Events"]
            .to_string()
            .contains("Failed Artifact Download"))
        .unwrap_or(false));
    let events = a.allocs("limited").await[0]["TaskStates"]["t"]["Events"].to_string();
    assert!(events.contains("1000"), "the limit is named: {events}");
}
