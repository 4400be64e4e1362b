//! End-to-end tests of the commands against a tiny in-test HTTP server that answers canned
//! Nomad JSON and records every request it gets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    query: String,
    body: String,
}

type Route = (String, String, u16, String);

struct Server {
    addr: String,
    reqs: Arc<Mutex<Vec<Req>>>,
}

impl Server {
    /// Serves `routes` (method, path, status, body); unknown paths get 404.
    fn start(routes: Vec<Route>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        let reqs: Arc<Mutex<Vec<Req>>> = Arc::default();
        let seen = reqs.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() || line.is_empty() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let target = parts.next().unwrap_or("").to_string();
                let mut len = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_string(), q.to_string()),
                    None => (target.clone(), String::new()),
                };
                seen.lock().unwrap().push(Req {
                    method: method.clone(),
                    path: path.clone(),
                    query,
                    body: String::from_utf8_lossy(&body).into(),
                });
                let (status, body) = routes
                    .iter()
                    .find(|(m, p, _, _)| *m == method && *p == path)
                    .map(|(_, _, s, b)| (*s, b.clone()))
                    .unwrap_or((404, "not found".into()));
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nX-Nomad-Index: 10\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            }
        });
        Server { addr, reqs }
    }

    fn requests(&self) -> Vec<Req> {
        self.reqs.lock().unwrap().clone()
    }
}

fn route(method: &str, path: &str, body: serde_json::Value) -> Route {
    (method.into(), path.into(), 200, body.to_string())
}

/// Runs the CLI with `CARAVAN_ADDR` set to `addr`; returns (exit code, stdout, stderr).
fn cli(addr: &str, args: &[&str]) -> (i32, String, String) {
    cli_env(addr, args, &[])
}

fn cli_env(addr: &str, args: &[&str], extra: &[(&str, &str)]) -> (i32, String, String) {
    let mut env = BTreeMap::new();
    env.insert("CARAVAN_ADDR".to_string(), addr.to_string());
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = caravan_cli::run_with(
        args.iter().map(|s| s.to_string()).collect(),
        &env,
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8_lossy(&out).into(),
        String::from_utf8_lossy(&err).into(),
    )
}

fn temp_file(name: &str, contents: &str) -> String {
    let dir = std::env::temp_dir().join(format!(
        "caravan-cli-test-{}-{}",
        std::process::id(),
        name.replace('.', "_")
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_string_lossy().into()
}

const ALLOC_ID: &str = "5e3f1a2b-0000-4000-8000-000000000001";
const NODE_ID: &str = "f7a9c3d1-0000-4000-8000-0000000000aa";
const EVAL_ID: &str = "e1e1e1e1-0000-4000-8000-000000000002";

const JOB_HCL: &str = r#"
job "example" {
  datacenters = ["dc1"]
  type        = "batch"

  group "cache" {
    task "redis" {
      driver = "raw_exec"

      config {
        command = "/bin/sleep"
        args    = ["1"]
      }
    }
  }
}
"#;

fn job_json() -> serde_json::Value {
    serde_json::json!({
        "ID": "example", "Name": "example", "Type": "service", "Priority": 50,
        "Datacenters": ["dc1"], "Namespace": "default", "NodePool": "default",
        "Status": "running", "SubmitTime": 1_700_000_000_000_000_000i64, "Version": 0,
        "TaskGroups": [{"Name": "cache", "Count": 1, "Tasks": [{"Name": "redis", "Driver": "raw_exec"}]}]
    })
}

fn alloc_stub() -> serde_json::Value {
    serde_json::json!({
        "ID": ALLOC_ID, "EvalID": EVAL_ID, "Name": "example.cache[0]", "Namespace": "default",
        "NodeID": NODE_ID, "NodeName": "node1", "JobID": "example", "JobVersion": 0,
        "TaskGroup": "cache", "DesiredStatus": "run", "ClientStatus": "running",
        "CreateTime": 1_700_000_000_000_000_000i64, "ModifyTime": 1_700_000_000_000_000_000i64
    })
}

/// The full allocation of [`alloc_stub`], with its job.
fn alloc_with_job() -> serde_json::Value {
    let mut full = alloc_stub();
    full["Job"] = job_json();
    full
}

/// The allocation list (holding [`alloc_stub`]) and `full` as that allocation.
fn alloc_routes(full: serde_json::Value) -> Vec<Route> {
    vec![
        route("GET", "/v1/allocations", serde_json::json!([alloc_stub()])),
        route("GET", &format!("/v1/allocation/{ALLOC_ID}"), full),
    ]
}

#[test]
fn job_status_lists_jobs_in_a_table() {
    let s = Server::start(vec![route(
        "GET",
        "/v1/jobs",
        serde_json::json!([
            {"ID": "example", "Type": "service", "Priority": 50, "Status": "running", "SubmitTime": 1_700_000_000_000_000_000i64},
            {"ID": "nightly", "Type": "batch", "Priority": 70, "Status": "dead", "Stop": true, "Periodic": true, "SubmitTime": 0}
        ]),
    )]);
    let (code, out, err) = cli(&s.addr, &["job", "status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ID       Type            Priority  Status          Submit Date\n\
         example  service         50        running         2023-11-14T22:13:20Z\n\
         nightly  batch/periodic  70        dead (stopped)  <none>\n"
    );
}

#[test]
fn job_status_shows_one_job_with_summary_and_allocations() {
    let s = Server::start(vec![
        route("GET", "/v1/jobs", serde_json::json!([{"ID": "example"}])),
        route("GET", "/v1/job/example", job_json()),
        route(
            "GET",
            "/v1/job/example/summary",
            serde_json::json!({"JobID": "example", "Summary": {"cache": {"Running": 1}}}),
        ),
        route(
            "GET",
            "/v1/job/example/allocations",
            serde_json::json!([alloc_stub()]),
        ),
        route("GET", "/v1/job/example/evaluations", serde_json::json!([])),
        route("GET", "/v1/job/example/deployment", serde_json::Value::Null),
    ]);
    let (code, out, err) = cli(&s.addr, &["job", "status", "exa"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("ID            = example\nName          = example\nSubmit Date   = 2023-11-14T22:13:20Z\n"), "{out}");
    assert!(out.contains("Node Pool     = default\nStatus        = running\nPeriodic      = false\nParameterized = false\n"), "{out}");
    assert!(out.contains("\nSummary\nTask Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\ncache       0       0         1        0       0         0     0\n"), "{out}");
    assert!(
        out.contains(
            "\nAllocations\nID        Node ID   Task Group  Version  Desired  Status   Created"
        ),
        "{out}"
    );
    assert!(
        out.contains("5e3f1a2b  f7a9c3d1  cache       0        run      running"),
        "{out}"
    );
    // The prefix was resolved through the job list.
    assert!(s
        .requests()
        .iter()
        .any(|r| r.path == "/v1/jobs" && r.query.contains("prefix=exa")));

    let (code, out, _) = cli(
        &s.addr,
        &[
            "job",
            "status",
            "-t",
            "{{range .}}{{.Summary.JobID}}{{end}}",
            "example",
        ],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "example\n");
}

#[test]
fn node_status_lists_and_shows_a_node() {
    let stub = serde_json::json!({
        "ID": NODE_ID, "Datacenter": "dc1", "Name": "node1", "NodeClass": "", "NodePool": "default",
        "Drain": false, "SchedulingEligibility": "eligible", "Status": "ready"
    });
    let mut node = stub.clone();
    node["Drivers"] = serde_json::json!({"raw_exec": {"Detected": true, "Healthy": true}});
    node["Attributes"] = serde_json::json!({"kernel.name": "linux"});
    let s = Server::start(vec![
        route("GET", "/v1/nodes", serde_json::json!([stub])),
        route("GET", &format!("/v1/node/{NODE_ID}"), node),
        route(
            "GET",
            &format!("/v1/node/{NODE_ID}/allocations"),
            serde_json::json!([]),
        ),
    ]);
    let (code, out, err) = cli(&s.addr, &["node", "status"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ID        Node Pool  DC   Name   Class   Drain  Eligibility  Status\n\
         f7a9c3d1  default    dc1  node1  <none>  false  eligible     ready\n"
    );
    let (code, out, err) = cli(&s.addr, &["node-status", "-verbose", "f7a9"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("ID              = {NODE_ID}\n")),
        "{out}"
    );
    assert!(out.contains("Drivers         = raw_exec\n"), "{out}");
    assert!(out.contains("\nAttributes\nkernel.name = linux"), "{out}");
    assert!(
        out.contains("\nAllocations\nNo allocations placed"),
        "{out}"
    );
}

#[test]
fn alloc_status_resolves_a_prefix() {
    let mut full = alloc_with_job();
    full["TaskStates"] = serde_json::json!({"redis": {
        "State": "running", "StartedAt": "2023-11-14T22:13:20Z",
        "Events": [
            {"Type": "Received", "Time": 1_700_000_000_000_000_000i64, "DisplayMessage": "Task received by client"},
            {"Type": "Started", "Time": 1_700_000_001_000_000_000i64, "DisplayMessage": "Task started by client"}
        ]
    }});
    let s = Server::start(alloc_routes(full));
    let (code, out, err) = cli(&s.addr, &["alloc", "status", "5e3f"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!(
            "ID                  = {ALLOC_ID}\nEval ID             = e1e1e1e1\n"
        )),
        "{out}"
    );
    assert!(out.contains("Node ID             = f7a9c3d1\n"), "{out}");
    assert!(out.contains("\nTask \"redis\" is \"running\"\n"), "{out}");
    assert!(
        out.contains("Started At     = 2023-11-14T22:13:20Z"),
        "{out}"
    );
    assert!(out.contains(
        "Recent Events:\nTime                  Type      Description\n2023-11-14T22:13:21Z  Started   Task started by client\n2023-11-14T22:13:20Z  Received  Task received by client"
    ), "{out}");
    let q = s
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/allocations")
        .unwrap();
    assert!(q.query.contains("prefix=5e3f"), "{q:?}");

    // Two matches: list them and fail.
    let mut other = alloc_stub();
    other["ID"] = serde_json::json!("5e3f9999-0000-4000-8000-000000000003");
    let s = Server::start(vec![route(
        "GET",
        "/v1/allocations",
        serde_json::json!([alloc_stub(), other]),
    )]);
    let (code, _, err) = cli(&s.addr, &["alloc", "status", "5e3f"]);
    assert_eq!(code, 1);
    assert!(err.contains("Prefix matched multiple allocations"), "{err}");
    assert!(err.contains("5e3f9999"), "{err}");
}

#[test]
fn job_run_detach_submits_and_prints_the_eval() {
    let s = Server::start(vec![route(
        "PUT",
        "/v1/jobs",
        serde_json::json!({"EvalID": EVAL_ID, "JobModifyIndex": 7}),
    )]);
    let file = temp_file("detach.nomad.hcl", JOB_HCL);
    let (code, out, err) = cli(&s.addr, &["job", "run", "-detach", &file]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!("Job registration successful\nEvaluation ID: {EVAL_ID}\n")
    );
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&reqs[0].body).unwrap();
    assert_eq!(body["Job"]["ID"], "example");
    assert_eq!(
        body["Job"]["TaskGroups"][0]["Tasks"][0]["Driver"],
        "raw_exec"
    );
}

#[test]
fn job_run_output_prints_the_job_without_sending_it() {
    let file = temp_file("output.nomad.hcl", JOB_HCL);
    let (code, out, err) = cli("http://127.0.0.1:1", &["run", "-output", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("{\n    \"Job\": {\n"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Job"]["ID"], "example");
    assert_eq!(v["Job"]["Type"], "batch");
}

#[test]
fn job_run_syntax_error_names_the_place_and_sends_nothing() {
    let s = Server::start(vec![]);
    let file = temp_file(
        "bad.nomad.hcl",
        "job \"x\" {\n  group \"g\" {\n    count = = 1\n  }\n}\n",
    );
    let (code, out, err) = cli(&s.addr, &["job", "run", &file]);
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    let needle = "bad.nomad.hcl:3:";
    assert!(err.contains(needle), "{err}");
    assert!(s.requests().is_empty());
}

#[test]
fn job_run_monitors_the_eval_and_reports_placement_failures() {
    let eval = serde_json::json!({
        "ID": EVAL_ID, "JobID": "example", "Type": "batch", "Status": "complete",
        "FailedTGAllocs": {"cache": {
            "NodesEvaluated": 1, "NodesExhausted": 1,
            "ConstraintFiltered": {"${attr.kernel.name} = windows": 1},
            "DimensionExhausted": {"memory": 1}
        }}
    });
    let s = Server::start(vec![
        route("PUT", "/v1/jobs", serde_json::json!({"EvalID": EVAL_ID})),
        route("GET", &format!("/v1/evaluation/{EVAL_ID}"), eval),
        route(
            "GET",
            &format!("/v1/evaluation/{EVAL_ID}/allocations"),
            serde_json::json!([]),
        ),
    ]);
    let file = temp_file("monitor.nomad.hcl", JOB_HCL);
    let (code, out, err) = cli(&s.addr, &["job", "run", &file]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("==> "), "{out}");
    assert!(
        out.contains(": Monitoring evaluation \"e1e1e1e1\""),
        "{out}"
    );
    assert!(
        out.contains(": Evaluation triggered by job \"example\""),
        "{out}"
    );
    assert!(
        out.contains("Task Group \"cache\" (failed to place 1 allocation):"),
        "{out}"
    );
    assert!(
        out.contains(
            "      * Constraint \"${attr.kernel.name} = windows\": 1 nodes excluded by filter\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("      * Resources exhausted on 1 nodes\n"),
        "{out}"
    );
    assert!(
        out.contains("      * Dimension \"memory\" exhausted on 1 nodes\n"),
        "{out}"
    );
}

#[test]
fn alloc_logs_tail_prints_the_last_lines() {
    let s = Server::start(
        [
            alloc_routes(alloc_with_job()),
            vec![(
                "GET".into(),
                format!("/v1/client/fs/logs/{ALLOC_ID}"),
                200,
                "one\ntwo\nthree\nfour\n".into(),
            )],
        ]
        .concat(),
    );
    let (code, out, err) = cli(&s.addr, &["alloc", "logs", "-tail", "-n", "2", "5e3f1a2b"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "three\nfour\n");
    let q = s
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/v1/client/fs/logs/"))
        .unwrap();
    for part in [
        "task=redis",
        "type=stdout",
        "plain=true",
        "origin=end",
        "follow=false",
    ] {
        assert!(q.query.contains(part), "{} lacks {part}", q.query);
    }
}

#[test]
fn http_errors_read_like_nomad() {
    let s = Server::start(vec![
        route("GET", "/v1/nodes", serde_json::json!([{"ID": NODE_ID}])),
        (
            "GET".into(),
            format!("/v1/node/{NODE_ID}"),
            404,
            "node not found".into(),
        ),
    ]);
    let (code, _, err) = cli(&s.addr, &["node", "status", NODE_ID]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "Error querying node info: Unexpected response code: 404 (node not found)\n"
    );
}

#[test]
fn token_and_namespace_travel_with_requests() {
    let s = Server::start(vec![route("GET", "/v1/jobs", serde_json::json!([]))]);
    let (code, out, _) = cli_env(
        &s.addr,
        &["status", "-namespace=prod"],
        &[("CARAVAN_TOKEN", "secret")],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "No running jobs\n");
    let r = &s.requests()[0];
    assert!(r.query.contains("namespace=prod"), "{r:?}");
    assert_eq!(r.method, "GET");
}

#[test]
fn usage_errors_and_unknown_commands() {
    let (code, _, err) = cli("http://127.0.0.1:1", &["job", "status", "-bogus"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("flag provided but not defined: -bogus"),
        "{err}"
    );
    let (code, _, err) = cli("http://127.0.0.1:1", &["frobnicate"]);
    assert_eq!(code, 127);
    assert!(err.contains("Unknown command: frobnicate"), "{err}");
    let (code, out, _) = cli("http://127.0.0.1:1", &["version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("Caravan v0.1.0 (Nomad API "), "{out}");
    let (code, out, _) = cli("http://127.0.0.1:1", &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: caravan"), "{out}");
}

#[test]
fn completion_through_comp_line() {
    let (code, out, _) = cli_env(
        "http://127.0.0.1:1",
        &["caravan"],
        &[("COMP_LINE", "caravan job st"), ("COMP_POINT", "14")],
    );
    assert_eq!(code, 0);
    assert_eq!(out, "status\nstop\n");
}

#[test]
fn job_init_writes_and_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("caravan-cli-init-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("example.nomad.hcl");
    let _ = std::fs::remove_file(&path);
    let p = path.to_string_lossy().to_string();
    let (code, out, err) = cli("http://127.0.0.1:1", &["job", "init", &p]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("Example job file written to {p}\n"));
    assert!(std::fs::read_to_string(&path)
        .unwrap()
        .contains("job \"example\""));
    let (code, _, err) = cli("http://127.0.0.1:1", &["job", "init", &p]);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn job_plan_prints_the_diff_and_exits_1_on_changes() {
    let plan = serde_json::json!({
        "JobModifyIndex": 0,
        "Diff": {"Type": "Added", "ID": "example", "TaskGroups": [
            {"Type": "Added", "Name": "cache", "Updates": {"create": 1},
             "Tasks": [{"Type": "Added", "Name": "redis", "Annotations": ["forces create"]}]}
        ]},
        "Annotations": {"DesiredTGUpdates": {"cache": {"Place": 1}}},
        "FailedTGAllocs": {}
    });
    let s = Server::start(vec![route("PUT", "/v1/job/example/plan", plan)]);
    let file = temp_file("plan.nomad.hcl", JOB_HCL);
    let (code, out, err) = cli(&s.addr, &["job", "plan", &file]);
    assert_eq!(code, 1, "{err}");
    assert!(out.starts_with("+ Job: \"example\"\n+ Task Group: \"cache\" (1 create)\n  + Task: \"redis\" (forces create)\n\nScheduler dry-run:\n- All tasks successfully allocated.\n"), "{out}");
    assert!(out.contains("Job Modify Index: 0"), "{out}");
    let body: serde_json::Value = serde_json::from_str(&s.requests()[0].body).unwrap();
    assert_eq!(body["Diff"], true);
}

#[test]
fn service_job_run_follows_the_deployment() {
    let eval = serde_json::json!({
        "ID": EVAL_ID, "JobID": "example", "Type": "service", "Status": "complete",
        "DeploymentID": "d0d0d0d0-0000-4000-8000-000000000004", "CreateIndex": 5
    });
    let mut stub = alloc_stub();
    stub["CreateIndex"] = serde_json::json!(6);
    let dep = serde_json::json!({
        "ID": "d0d0d0d0-0000-4000-8000-000000000004", "JobID": "example", "JobVersion": 0,
        "Status": "successful", "StatusDescription": "Deployment completed successfully",
        "ModifyIndex": 9,
        "TaskGroups": {"cache": {"DesiredTotal": 1, "PlacedAllocs": 1, "HealthyAllocs": 1, "ProgressDeadline": 600000000000i64, "RequireProgressBy": "2023-11-14T22:23:20Z"}}
    });
    let s = Server::start(vec![
        route("PUT", "/v1/jobs", serde_json::json!({"EvalID": EVAL_ID})),
        route("GET", &format!("/v1/evaluation/{EVAL_ID}"), eval),
        route(
            "GET",
            &format!("/v1/evaluation/{EVAL_ID}/allocations"),
            serde_json::json!([stub]),
        ),
        route(
            "GET",
            "/v1/deployment/d0d0d0d0-0000-4000-8000-000000000004",
            dep,
        ),
    ]);
    let svc = JOB_HCL.replace("\"batch\"", "\"service\"");
    let file = temp_file("service.nomad.hcl", &svc);
    let (code, out, err) = cli(&s.addr, &["job", "run", &file]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Allocation \"5e3f1a2b\" created: node \"f7a9c3d1\", group \"cache\""),
        "{out}"
    );
    assert!(
        out.contains(": Evaluation within deployment: \"d0d0d0d0\""),
        "{out}"
    );
    assert!(
        out.contains(": Monitoring deployment \"d0d0d0d0\""),
        "{out}"
    );
    assert!(out.contains("Status      = successful"), "{out}");
    assert!(out.contains("Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline\ncache       1        1       1        0          2023-11-14T22:23:20Z"), "{out}");
}

#[test]
fn prefix_lookups_keep_each_commands_messages() {
    let s = Server::start(vec![
        route("GET", "/v1/evaluations", serde_json::json!([])),
        route("GET", "/v1/deployments", serde_json::json!([])),
        route("GET", "/v1/nodes", serde_json::json!([{"ID": NODE_ID}])),
    ]);
    let cases: [(&[&str], &str); 4] = [
        (
            &["eval", "status", "abc"],
            "No evaluation(s) with prefix or id \"ab\" found",
        ),
        (
            &["deployment", "status", "abc"],
            "Deployment ID \"ab\" matched no deployments",
        ),
        (
            &["node", "eligibility", "-enable", "abc"],
            "No node(s) with prefix \"abc\" found",
        ),
        (
            &["eval", "status", "a"],
            "Identifier must contain at least two characters.",
        ),
    ];
    for (args, want) in cases {
        let (code, _, err) = cli(&s.addr, args);
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn alloc_task_arguments() {
    let s = Server::start(
        [
            alloc_routes(alloc_with_job()),
            vec![
                route(
                    "PUT",
                    &format!("/v1/client/allocation/{ALLOC_ID}/signal"),
                    serde_json::json!({}),
                ),
                route(
                    "PUT",
                    &format!("/v1/client/allocation/{ALLOC_ID}/restart"),
                    serde_json::json!({}),
                ),
            ],
        ]
        .concat(),
    );
    let (code, _, err) = cli(
        &s.addr,
        &["alloc", "restart", "-all-tasks", "5e3f", "redis"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("The -all-tasks option cannot be used with a task name"),
        "{err}"
    );
    let (code, _, err) = cli(&s.addr, &["alloc", "signal", "5e3f", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("Could not find task named: nope"), "{err}");
    let (code, _, err) = cli(
        &s.addr,
        &["alloc", "signal", "-s", "SIGHUP", "5e3f", "redis"],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = cli(&s.addr, &["alloc", "restart", "5e3f"]);
    assert_eq!(code, 0, "{err}");
    let bodies: Vec<serde_json::Value> = s
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        vec![
            serde_json::json!({"Task": "redis", "Signal": "SIGHUP"}),
            serde_json::json!({"TaskName": "", "AllTasks": false}),
        ]
    );
}

#[test]
fn file_function_reads_next_to_the_job_file() {
    let job = "job \"files\" {\n  meta {\n    motd = trimspace(file(\"motd.txt\"))\n  }\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      config {\n        command = \"/bin/true\"\n      }\n    }\n  }\n}\n";
    let file = temp_file("files.nomad.hcl", job);
    let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
    std::fs::write(dir.join("motd.txt"), "hello from a file\n").unwrap();
    let (code, out, err) = cli("http://127.0.0.1:1", &["run", "-output", &file]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Job"]["Meta"]["motd"], "hello from a file");
    // A missing file is an error naming it.
    std::fs::remove_file(dir.join("motd.txt")).unwrap();
    let (code, _, err) = cli("http://127.0.0.1:1", &["run", "-output", &file]);
    assert_eq!(code, 1);
    assert!(err.contains("motd.txt"), "{err}");
}

#[test]
fn acl_policy_apply_binds_a_policy_to_a_job_with_job_group_task() {
    let srv = Server::start(vec![route(
        "PUT",
        "/v1/acl/policy/web-read",
        serde_json::json!({}),
    )]);
    let rules = temp_file("web-read.hcl", "namespace \"prod\" { policy = \"read\" }\n");
    let (code, out, err) = cli_env(
        &srv.addr,
        &[
            "acl", "policy", "apply", "-job", "web", "-group", "g", "-task", "t", "web-read",
            &rules,
        ],
        &[("NOMAD_NAMESPACE", "prod")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Successfully wrote \"web-read\" ACL policy!"),
        "{out}"
    );
    let body: serde_json::Value = serde_json::from_str(&srv.requests()[0].body).unwrap();
    assert_eq!(
        body["JobACL"],
        serde_json::json!({"Namespace": "prod", "JobID": "web", "Group": "g", "Task": "t"})
    );
    // Without -job there is no binding; -task alone is refused before any request.
    let (code, _, _) = cli(&srv.addr, &["acl", "policy", "apply", "web-read", &rules]);
    assert_eq!(code, 0);
    let body: serde_json::Value = serde_json::from_str(&srv.requests()[1].body).unwrap();
    assert!(body.get("JobACL").is_none());
    let (code, _, err) = cli(
        &srv.addr,
        &["acl", "policy", "apply", "-task", "t", "web-read", &rules],
    );
    assert_eq!(code, 1);
    assert!(err.contains("-group and -task require -job"), "{err}");
    assert_eq!(srv.requests().len(), 2);
}

#[test]
fn service_list_info_and_delete() {
    let reg = serde_json::json!({
        "ID": "_nomad-task-8f3b1c2d-web-shop-web-http", "ServiceName": "shop-web",
        "Namespace": "default", "NodeID": NODE_ID, "Datacenter": "dc1", "JobID": "shop",
        "AllocID": "8f3b1c2d-0000-0000-0000-000000000000", "Tags": ["v1", "front"],
        "Address": "10.0.0.5", "Port": 8080, "CreateIndex": 9, "ModifyIndex": 9
    });
    let s = Server::start(vec![
        route(
            "GET",
            "/v1/services",
            serde_json::json!([{"Namespace": "default", "Services": [
                {"ServiceName": "shop-web", "Tags": ["v1", "front"]},
                {"ServiceName": "db", "Tags": []}
            ]}]),
        ),
        route("GET", "/v1/service/shop-web", serde_json::json!([reg])),
        route(
            "DELETE",
            "/v1/service/shop-web/_nomad-task-8f3b1c2d-web-shop-web-http",
            serde_json::json!(null),
        ),
    ]);
    let (code, out, err) = cli(&s.addr, &["service", "list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Service Name  Tags\ndb            []\nshop-web      [front,v1]\n"
    );
    let (code, out, err) = cli(&s.addr, &["service", "info", "shop-web"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "Job ID  Address        Tags        Node ID   Alloc ID\n\
         shop    10.0.0.5:8080  [front,v1]  f7a9c3d1  8f3b1c2d\n"
    );
    let (code, out, _) = cli(&s.addr, &["service", "info", "-verbose", "shop-web"]);
    assert_eq!(code, 0);
    assert!(out.contains("Address      = 10.0.0.5:8080\n"), "{out}");
    let (code, out, err) = cli(
        &s.addr,
        &[
            "service",
            "delete",
            "shop-web",
            "_nomad-task-8f3b1c2d-web-shop-web-http",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "Successfully deleted service registration\n");
    let (code, _, err) = cli(&s.addr, &["service", "delete", "shop-web"]);
    assert_eq!(code, 1);
    assert!(err.contains("<service_name> and <service_id>"), "{err}");
    // The fake answers every prefix with both names: neither is an exact match.
    let (code, _, err) = cli(&s.addr, &["service", "info", "s"]);
    assert_eq!(code, 1);
    assert!(err.contains("Prefix matched multiple services"), "{err}");
    let queried = s.requests();
    assert!(
        queried
            .iter()
            .any(|r| r.path == "/v1/services" && r.query.contains("prefix=shop-web")),
        "{queried:?}"
    );
}
