//! Nomad-native service discovery (`provider = "nomad"`) through the API: a job's group and
//! task services land in the servers' catalog with the allocation's address and port once it
//! runs, are listed, read, filtered by tag and chosen by rendezvous hashing, wake blocking
//! queries, have their http checks run by the client (results in
//! `/v1/client/allocation/:id/checks`), and go away on job stop or `DELETE`; ACLs and bad
//! input are refused.

use super::acl_tests::{acl_agent, bootstrap, call, policy, token};
use super::consul_tests::{assert_gated_not_healthy, open_gate, start_gated_job};
use super::tests::{start_nodes, TestAgent};
use crate::server::acl::AclConfig;
use axum::http::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn shop_job() -> Value {
    json!({"Job": {
        "ID": "shop",
        "TaskGroups": [{
            "Name": "front", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Services": [{
                "Name": "${NOMAD_JOB_NAME}-edge", "PortLabel": "http", "Tags": ["group"],
                "Provider": "nomad",
                "Checks": [{"Type": "tcp", "Interval": 1_000_000_000i64, "Timeout": 1_000_000_000i64}]
            }],
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/usr/bin/python3",
                           "args": ["-m", "http.server", "--bind", "127.0.0.1", "${NOMAD_PORT_http}"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Services": [{
                    "Name": "${NOMAD_JOB_NAME}-web", "PortLabel": "http", "Provider": "nomad",
                    "Tags": ["v1", "${NOMAD_GROUP_NAME}"],
                    "Checks": [
                        {"Name": "root", "Type": "http", "Path": "/", "Interval": 1_000_000_000i64,
                         "Timeout": 1_000_000_000i64, "Header": {"X-Probe": ["caravan"]}},
                        {"Name": "missing", "Type": "http", "Path": "/no-such-page",
                         "Interval": 1_000_000_000i64, "Timeout": 1_000_000_000i64,
                         "OnUpdate": "ignore"}
                    ]
                }]
            }]
        }]
    }})
}

/// A job whose one task sleeps and registers `name` (no port: the node's address, port 0).
fn sleeper_with_service(id: &str, name: &str) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Tasks": [{
                "Name": "t", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", "exec sleep 600"]},
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 1_000_000_000,
                "Services": [{"Name": name, "Provider": "nomad", "Tags": ["a"]}]
            }]
        }]
    }})
}

async fn get_full(a: &TestAgent, path: &str) -> (u16, Option<u64>, Value) {
    let r = a
        .http
        .get(format!("{}{path}", a.base))
        .send()
        .await
        .expect("request");
    let code = r.status().as_u16();
    let index = r
        .headers()
        .get("X-Nomad-Index")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = r.text().await.unwrap_or_default();
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (code, index, v)
}

async fn stop_job(a: &TestAgent, id: &str) {
    let r = a
        .http
        .delete(format!("{}/v1/job/{id}", a.base))
        .send()
        .await
        .expect("stop job");
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_services_register_list_read_check_and_go_on_stop() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP: /usr/bin/python3 is needed as the task's HTTP server");
        return;
    }
    let a = start_nodes(1).await;
    let (code, body) = a.put("/v1/jobs", &shop_job()).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("shop").await.is_empty());
    let alloc_id = a.running("shop").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let full = a.get(&format!("/v1/allocation/{alloc_id}")).await;
    let port = full["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
        .as_u64()
        .expect("allocated http port");
    let node_id = a.clients[0].node_id();

    // Both services listed, with their tags, in the job's namespace.
    crate::wait_for!(
        a.get("/v1/services").await[0]["Services"]
            .as_array()
            .map(|s| s.len())
            == Some(2)
    );
    let (code, list_index, list) = get_full(&a, "/v1/services").await;
    assert_eq!(code, 200);
    assert!(list_index.unwrap_or(0) > 0);
    assert_eq!(
        list,
        json!([{"Namespace": "default", "Services": [
            {"ServiceName": "shop-edge", "Tags": ["group"]},
            {"ServiceName": "shop-web", "Tags": ["front", "v1"]}
        ]}])
    );
    assert_eq!(a.get("/v1/services?namespace=other").await, json!([]));

    // The registrations carry the allocation's address and port, and Nomad's IDs.
    let (_, _, web) = get_full(&a, "/v1/service/shop-web").await;
    let web = web.as_array().expect("registrations").clone();
    assert_eq!(web.len(), 1, "{web:?}");
    let r = &web[0];
    assert_eq!(r["ID"], format!("_nomad-task-{alloc_id}-web-shop-web-http"));
    assert_eq!(r["ServiceName"], "shop-web");
    assert_eq!(r["Namespace"], "default");
    assert_eq!(r["NodeID"], node_id.as_str());
    assert_eq!(r["Datacenter"], "dc1");
    assert_eq!(r["JobID"], "shop");
    assert_eq!(r["AllocID"], alloc_id.as_str());
    assert_eq!(r["Address"], "127.0.0.1");
    assert_eq!(r["Port"].as_u64(), Some(port));
    assert_eq!(r["Tags"], json!(["v1", "front"]));
    assert!(r["CreateIndex"].as_u64().unwrap_or(0) > 0);
    let edge = a.get("/v1/service/shop-edge").await;
    assert_eq!(
        edge[0]["ID"],
        format!("_nomad-task-{alloc_id}-group-front-shop-edge-http")
    );
    assert_eq!(edge[0]["Port"].as_u64(), Some(port));

    // Tag filter, choose, and what is not there.
    assert_eq!(
        a.get("/v1/service/shop-web?tag=v1")
            .await
            .as_array()
            .map(|v| v.len()),
        Some(1)
    );
    assert_eq!(a.get("/v1/service/shop-web?tag=v2").await, json!([]));
    assert_eq!(
        a.get("/v1/service/shop-web?choose=1%7Cmy-alloc").await[0]["ID"],
        r["ID"]
    );
    let (code, _, msg) = get_full(&a, "/v1/service/shop-web?choose=one").await;
    assert_eq!(code, 400);
    assert!(
        msg.as_str().unwrap_or_default().contains("<number>|<key>"),
        "{msg}"
    );
    assert_eq!(a.get("/v1/service/no-such-service").await, json!([]));

    // The client runs the http checks: `/` passes, a missing page fails.
    let checks_path = format!("/v1/client/allocation/{alloc_id}/checks");
    let by_name = |v: &Value, name: &str| -> Value {
        v.as_object()
            .into_iter()
            .flat_map(|m| m.values())
            .find(|c| c["Check"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    };
    crate::wait_for!({
        let c = a.get(&checks_path).await;
        by_name(&c, "root")["Status"] == "success" && by_name(&c, "missing")["Status"] == "failure"
    });
    let checks = a.get(&checks_path).await;
    assert_eq!(checks.as_object().map(|m| m.len()), Some(3), "{checks}");
    let root = by_name(&checks, "root");
    assert_eq!(root["Mode"], "healthiness");
    assert_eq!(root["Task"], "web");
    assert_eq!(root["Group"], "front");
    assert_eq!(root["Service"], "shop-web");
    assert_eq!(root["Output"], "nomad: http ok");
    let missing = by_name(&checks, "missing");
    assert_eq!(missing["Mode"], "readiness");
    assert_eq!(missing["StatusCode"], 404);
    assert!(missing["Timestamp"].as_i64().unwrap_or(0) > 0);
    let (code, _, _) = get_full(&a, "/v1/client/allocation/00000000-no-such/checks").await;
    assert_eq!(code, 404);

    // A blocking read wakes when the job stops and its registrations go.
    let (_, index, _) = get_full(&a, "/v1/service/shop-web").await;
    let index = index.expect("index");
    let base = a.base.clone();
    let blocked = tokio::spawn(async move {
        let r = reqwest::get(format!("{base}/v1/service/shop-web?index={index}&wait=30s"))
            .await
            .expect("blocking read");
        let next: u64 = r.headers()["X-Nomad-Index"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        (next, r.json::<Value>().await.unwrap())
    });
    stop_job(&a, "shop").await;
    let (next, after) = blocked.await.expect("blocking task");
    assert!(next > index, "{next} > {index}");
    assert!(after.is_array(), "{after}");
    crate::wait_for!(a.get("/v1/services").await == json!([]));
    crate::wait_for!(a.get(&checks_path).await == json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_service_delete_acl_and_bad_jobs() {
    let a = acl_agent(AclConfig::default()).await;
    let mgmt = bootstrap(&a).await;
    policy(
        &a,
        &mgmt,
        "reader",
        "namespace \"default\" {\n  policy = \"read\"\n}\n",
    )
    .await;
    policy(
        &a,
        &mgmt,
        "elsewhere",
        "namespace \"other\" {\n  policy = \"write\"\n}\n",
    )
    .await;
    let reader = token(&a, &mgmt, &["reader"]).await;
    let elsewhere = token(&a, &mgmt, &["elsewhere"]).await;

    // Mixed providers in one group are refused, naming both.
    let mut mixed = sleeper_with_service("mixed", "m");
    mixed["Job"]["TaskGroups"][0]["Services"] = json!([{"Name": "g", "Provider": "consul"}]);
    let (code, msg) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&mixed)).await;
    assert_eq!(code, 400, "{msg}");
    assert!(msg.contains("Multiple service providers used"), "{msg}");
    assert!(msg.contains("consul and nomad"), "{msg}");
    // A script check is not one the nomad provider runs.
    let mut script = sleeper_with_service("script", "s");
    script["Job"]["TaskGroups"][0]["Tasks"][0]["Services"][0]["Checks"] = json!([{"Type": "script", "Command": "/bin/true", "Interval": 1_000_000_000i64, "Timeout": 1_000_000_000i64}]);
    let (code, msg) = call(&a, &Method::PUT, "/v1/jobs", Some(&mgmt), Some(&script)).await;
    assert_eq!(code, 400, "{msg}");
    assert!(
        msg.contains("invalid check type (\"script\"), must be one of tcp, http"),
        "{msg}"
    );

    let (code, msg) = call(
        &a,
        &Method::PUT,
        "/v1/jobs",
        Some(&mgmt),
        Some(&sleeper_with_service("db", "db")),
    )
    .await;
    assert_eq!(code, 200, "{msg}");
    let services = |tok: String| {
        let a = &a;
        async move { call(a, &Method::GET, "/v1/service/db", Some(&tok), None).await }
    };
    crate::wait_for!({
        let (code, body) = services(mgmt.clone()).await;
        code == 200
            && serde_json::from_str::<Value>(&body)
                .map(|v| v.as_array().map(|a| a.len()) == Some(1))
                .unwrap_or(false)
    });
    let (_, body) = services(mgmt.clone()).await;
    let reg: Value = serde_json::from_str::<Value>(&body).unwrap()[0].clone();
    let id = reg["ID"].as_str().unwrap().to_string();
    assert_eq!(reg["Port"], 0);
    assert_eq!(reg["Tags"], json!(["a"]));

    // read-job reads, another namespace's token does not; only submit-job deletes.
    let (code, _) = services(reader.clone()).await;
    assert_eq!(code, 200);
    let (code, body) = call(&a, &Method::GET, "/v1/services", Some(&reader), None).await;
    assert_eq!(code, 200);
    assert!(body.contains("\"db\""), "{body}");
    for tok in [None, Some(elsewhere.as_str())] {
        let (code, body) = call(&a, &Method::GET, "/v1/service/db", tok, None).await;
        assert_eq!(code, 403, "{body}");
        let (code, body) = call(&a, &Method::GET, "/v1/services", tok, None).await;
        assert_eq!(code, 403, "{body}");
    }
    // `*`: the other namespace's token may list there, and sees nothing of default.
    let (code, body) = call(
        &a,
        &Method::PUT,
        "/v1/namespace/other",
        Some(&mgmt),
        Some(&json!({"Name": "other"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(
        &a,
        &Method::GET,
        "/v1/services?namespace=*",
        Some(&elsewhere),
        None,
    )
    .await;
    assert_eq!((code, body.as_str()), (200, "[]"));
    let del = format!("/v1/service/db/{id}");
    let (code, body) = call(&a, &Method::DELETE, &del, Some(&reader), None).await;
    assert_eq!(code, 403, "{body}");
    let (code, body) = call(&a, &Method::DELETE, &del, Some(&mgmt), None).await;
    assert_eq!(code, 200, "{body}");
    let (_, body) = services(mgmt.clone()).await;
    assert_eq!(body, "[]");
    let (code, body) = call(&a, &Method::DELETE, &del, Some(&mgmt), None).await;
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("service registration not found"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nomad_checks_gate_deployment_health() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP: /usr/bin/python3 is needed as the task's HTTP server");
        return;
    }
    let a = start_nodes(1).await;
    let id = start_gated_job(&a, "nomad").await;
    let checks_path = format!("/v1/client/allocation/{id}/checks");
    let status = || async {
        a.get(&checks_path)
            .await
            .as_object()
            .and_then(|m| m.values().next().cloned())
            .map(|c| c["Status"].as_str().unwrap_or_default().to_string())
    };
    crate::wait_for!(status().await.as_deref() == Some("failure"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status().await.as_deref(), Some("failure"));
    assert_gated_not_healthy(&a, &id).await;
    open_gate(&a, &id).await;
    crate::wait_for!(status().await.as_deref() == Some("success"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_read_nomad_services_and_follow_changes() {
    let a = super::tests::start_with(
        1,
        crate::server::ServerConfig::default(),
        crate::client::ClientConfig {
            // Nomad's default client `wait` (5s quiescence) would slow the re-render.
            template: crate::client::template_settings::TemplateSettings {
                wait: None,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let (code, body) = a.put("/v1/jobs", &sleeper_with_service("db", "db")).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a.get("/v1/service/db").await.as_array().map(|v| v.len()) == Some(1));
    let db = a.get("/v1/service/db").await[0].clone();

    let tmpl = "{{ range nomadService \"db\" }}db={{ .Address }}:{{ .Port }} {{ .Tags }} {{ .JobID }}\n{{ end }}\
                {{ range nomadService \"nope.db\" }}tagged={{ .ID }}\n{{ end }}\
                {{ range nomadService 1 \"k\" \"db\" }}chosen={{ .AllocID }}\n{{ end }}\
                {{ range nomadServices }}svc={{ .Name }} {{ .Tags }}\n{{ end }}";
    let mut reader = sleeper_with_service("reader", "reader");
    reader["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"] =
        json!([{"EmbeddedTmpl": tmpl, "DestPath": "local/services.txt", "ChangeMode": "noop"}]);
    let (code, body) = a.put("/v1/jobs", &reader).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a.running("reader").await.len() == 1);
    let id = a.running("reader").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let out = a.clients[0]
        .shared
        .config
        .data_dir
        .join(format!("alloc/{id}/t/local/services.txt"));
    let read = || std::fs::read_to_string(&out).unwrap_or_default();
    crate::wait_for!(read().contains("svc=reader"));
    let text = read();
    assert!(
        text.contains(&format!(
            "db={}:0 [a] db\n",
            db["Address"].as_str().unwrap()
        )),
        "{text}"
    );
    assert!(!text.contains("tagged="), "{text}");
    assert!(
        text.contains(&format!("chosen={}\n", db["AllocID"].as_str().unwrap())),
        "{text}"
    );
    assert!(text.contains("svc=db [a]\n"), "{text}");

    // The db job stops: its registration goes and the template renders again without it.
    stop_job(&a, "db").await;
    crate::wait_for!(!read().contains("db="));
    let text = read();
    assert!(!text.contains("svc=db"), "{text}");
    assert!(text.contains("svc=reader"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_and_removals_are_service_events() {
    let a = start_nodes(1).await;
    let mut stream = super::event_tests::Stream::open(&a, "?topic=Service").await;
    let (code, body) = a.put("/v1/jobs", &sleeper_with_service("db", "db")).await;
    assert_eq!(code, 200, "{body}");
    let frame = stream.frame().await;
    let e = &frame["Events"][0];
    assert_eq!(e["Topic"], "Service");
    assert_eq!(e["Type"], "ServiceRegistration");
    assert_eq!(e["Namespace"], "default");
    assert_eq!(e["FilterKeys"], json!(["db", "db"]));
    assert_eq!(e["Payload"]["Service"]["ServiceName"], "db");
    let id = e["Payload"]["Service"]["ID"].clone();
    assert_eq!(e["Key"], id);
    stop_job(&a, "db").await;
    let frame = stream.frame().await;
    let e = &frame["Events"][0];
    assert_eq!(e["Type"], "ServiceDeregistration");
    assert_eq!(e["Key"], id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_nomad_service_discovery_gets_no_nomad_service_jobs() {
    let a = super::tests::start_with(
        1,
        crate::server::ServerConfig::default(),
        crate::client::ClientConfig {
            nomad_service_discovery: false,
            ..Default::default()
        },
    )
    .await;
    let node = a.clients[0].node_id();
    assert_eq!(
        a.get(&format!("/v1/node/{node}")).await["Attributes"]["nomad.service_discovery"],
        "false"
    );
    let (code, body) = a.put("/v1/jobs", &sleeper_with_service("db", "db")).await;
    assert_eq!(code, 200, "{body}");
    // The implied `${attr.nomad.service_discovery} = true` constraint filters the node.
    let failed = || async {
        a.get("/v1/job/db/evaluations")
            .await
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["FailedTGAllocs"]["g"].is_object())
    };
    crate::wait_for!(failed().await);
    assert!(a.allocs("db").await.is_empty());
}
