//! Consul integration through the API: an in-process agent whose client talks to the
//! in-process Consul test server (`caravan-consul-test-server`). Job services and their http
//! and tcp checks land in Consul with Nomad's IDs, pass, and go away on job stop; stale
//! `_nomad-task-` registrations are removed at client start; a Consul that comes up late is
//! fingerprinted once it answers.

use super::tests::{start_with, TestAgent};
use crate::client::consul::{Consul, ConsulTiming};
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use caravan_consul::{AgentServiceRegistration, ConsulClient, ConsulConfig, WriteOptions};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn quick() -> ConsulTiming {
    ConsulTiming {
        sync_interval: Duration::from_secs(1),
        fingerprint_interval: Duration::from_secs(1),
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
    }
}

/// A client for the test's own calls and the agent's link, both to the Consul at `addr`.
pub(super) fn consul_at(addr: &str, timing: ConsulTiming) -> (ConsulClient, Arc<Consul>) {
    let cfg = ConsulConfig {
        address: format!("http://{addr}"),
        ..Default::default()
    };
    let direct = ConsulClient::new(cfg.clone()).expect("consul client");
    let link = Consul::new(
        ConsulClient::new(cfg).expect("consul client"),
        "default",
        timing,
    );
    (direct, link)
}

/// One server and one client linked to Consul through `link`.
pub(super) async fn start_with_consul(link: Arc<Consul>) -> TestAgent {
    start_with(
        1,
        ServerConfig::default(),
        ClientConfig {
            consul: Some(link),
            // Nomad's default client `wait` (5s quiescence) would slow every re-render here.
            template: crate::client::template_settings::TemplateSettings {
                wait: None,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await
}

/// A Consul test server and an agent linked to it, for tests whose task serves HTTP with
/// python3; None (with the reason printed) where python3 is missing.
async fn http_task_agent() -> Option<(
    ConsulClient,
    caravan_consul_test_server::TestServer,
    TestAgent,
)> {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("SKIP: /usr/bin/python3 is needed as the task's HTTP server");
        return None;
    }
    let (addr, server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), quick());
    Some((direct, server, start_with_consul(link).await))
}

async fn task_services(c: &ConsulClient) -> Vec<caravan_consul::AgentService> {
    let mut v: Vec<_> = c
        .agent_services()
        .await
        .unwrap_or_default()
        .into_values()
        .filter(|s| s.id.starts_with("_nomad-task-"))
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

async fn node_attr(a: &super::tests::TestAgent, key: &str) -> Option<String> {
    let id = a.clients[0].node_id();
    a.get(&format!("/v1/node/{id}")).await["Attributes"][key]
        .as_str()
        .map(String::from)
}

fn web_job() -> Value {
    json!({"Job": {
        "ID": "shop",
        "TaskGroups": [{
            "Name": "front", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Services": [{
                "Name": "${NOMAD_JOB_NAME}-edge", "PortLabel": "http", "Tags": ["group"],
                "Checks": [{"Type": "tcp", "Interval": 1_000_000_000i64, "Timeout": 1_000_000_000i64}]
            }],
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/usr/bin/python3",
                           "args": ["-m", "http.server", "--bind", "127.0.0.1", "${NOMAD_PORT_http}"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Services": [{
                    "Name": "${NOMAD_JOB_NAME}-web", "PortLabel": "http",
                    "Tags": ["v1", "${NOMAD_GROUP_NAME}"], "Meta": {"owner": "${NOMAD_TASK_NAME}"},
                    "EnableTagOverride": true,
                    "Checks": [{"Type": "http", "Path": "/", "Interval": 1_000_000_000i64,
                                "Timeout": 1_000_000_000i64, "Header": {"X-Probe": ["caravan"]}}]
                }]
            }]
        }]
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_services_register_pass_and_deregister() {
    let Some((direct, _consul_server, a)) = http_task_agent().await else {
        return;
    };
    // The fingerprint satisfies Nomad's implied `${attr.consul.version}` constraint.
    assert_eq!(
        node_attr(&a, "consul.version").await.as_deref(),
        Some("1.20.0")
    );
    assert_eq!(
        node_attr(&a, "consul.datacenter").await.as_deref(),
        Some("dc1")
    );
    assert_eq!(
        node_attr(&a, "consul.server").await.as_deref(),
        Some("true")
    );
    assert!(node_attr(&a, "unique.consul.name").await.is_some());

    let (code, body) = a.put("/v1/jobs", &web_job()).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a
        .allocs("shop")
        .await
        .iter()
        .any(|x| x["ClientStatus"] == "running"));
    let alloc = a.allocs("shop").await.remove(0);
    let alloc_id = alloc["ID"].as_str().unwrap().to_string();
    let full = a.get(&format!("/v1/allocation/{alloc_id}")).await;
    let port = full["AllocatedResources"]["Shared"]["Ports"][0]["Value"]
        .as_u64()
        .expect("allocated http port") as u16;

    crate::wait_for!(task_services(&direct).await.len() == 2);
    let services = task_services(&direct).await;
    let group = &services[0];
    let task = &services[1];
    assert_eq!(
        group.id,
        format!("_nomad-task-{alloc_id}-group-front-shop-edge-http")
    );
    assert_eq!(group.service, "shop-edge");
    assert_eq!(group.tags, vec!["group"]);
    assert_eq!(task.id, format!("_nomad-task-{alloc_id}-web-shop-web-http"));
    assert_eq!(task.service, "shop-web");
    assert_eq!(task.tags, vec!["v1", "front"]);
    assert_eq!(task.meta["owner"], "web");
    assert_eq!(task.meta["external-source"], "nomad");
    assert!(task.enable_tag_override);
    for s in [group, task] {
        assert_eq!(s.address, "127.0.0.1");
        assert_eq!(s.port, port);
    }

    // Consul runs the checks against the task's server: both pass.
    let statuses = || async {
        let mut v: Vec<(String, String, String)> = direct
            .agent_checks()
            .await
            .unwrap_or_default()
            .into_values()
            .filter(|c| c.service_id.starts_with("_nomad-task-"))
            .map(|c| (c.service_id, c.check_type, c.status))
            .collect();
        v.sort();
        v
    };
    crate::wait_for!(statuses().await.iter().filter(|c| c.2 == "passing").count() == 2);
    let checks = statuses().await;
    assert_eq!(checks[0].1.to_lowercase(), "tcp");
    assert_eq!(checks[1].1.to_lowercase(), "http");
    let (healthy, _) = direct
        .health_service("shop-web", true, &Default::default())
        .await
        .expect("health query");
    assert_eq!(healthy.len(), 1);

    // Job stop: both registrations go away.
    let r = a
        .http
        .delete(format!("{}/v1/job/shop", a.base))
        .send()
        .await
        .expect("stop job");
    assert_eq!(r.status().as_u16(), 200);
    crate::wait_for!(task_services(&direct).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_registrations_are_removed_at_client_start() {
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), quick());
    let w = WriteOptions::default();
    let stale = "_nomad-task-00000000-1111-2222-3333-444444444444-web-old-http";
    for (id, name) in [(stale, "old"), ("keep-me", "keep-me")] {
        direct
            .agent_service_register(
                &AgentServiceRegistration {
                    id: Some(id.into()),
                    name: name.into(),
                    port: Some(8080),
                    ..Default::default()
                },
                false,
                &w,
            )
            .await
            .expect("pre-register");
    }
    let _a = start_with_consul(link).await;
    crate::wait_for!(!direct
        .agent_services()
        .await
        .unwrap_or_default()
        .contains_key(stale));
    assert!(
        direct
            .agent_services()
            .await
            .unwrap_or_default()
            .contains_key("keep-me"),
        "services Caravan does not own are left alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consul_down_at_start_is_fingerprinted_when_it_comes_up() {
    // Reserve a port, then leave it closed: Consul is "down".
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = probe.local_addr().expect("addr");
    drop(probe);
    let (_direct, link) = consul_at(&addr.to_string(), quick());
    let a = start_with_consul(link).await;
    assert_eq!(node_attr(&a, "consul.version").await, None);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the consul port");
    tokio::spawn(caravan_consul_test_server::serve(
        listener,
        caravan_consul_test_server::ServerConfig::default(),
    ));
    crate::wait_for!(node_attr(&a, "consul.version").await.as_deref() == Some("1.20.0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_restart_restarts_a_task_whose_check_stays_critical() {
    // A tcp check on a port nothing listens on stays critical: with check_restart
    // { limit = 2, grace = 1s } the task is restarted with Nomad's reason.
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (_direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    let a = start_with_consul(link).await;
    let job = json!({"Job": {
        "ID": "unhealthy",
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["300"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Services": [{
                    "Name": "unhealthy-web", "PortLabel": "http",
                    "CheckRestart": {"Limit": 2, "Grace": 1_000_000_000u64},
                    "Checks": [{"Name": "alive", "Type": "tcp", "Interval": 1_000_000_000i64,
                                "Timeout": 500_000_000i64}]
                }]
            }]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a.running("unhealthy").await.len() == 1);
    let id = a.running("unhealthy").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    crate::wait_for!(
        a.get(&format!("/v1/allocation/{id}")).await["TaskStates"]["web"]["Events"]
            .to_string()
            .contains("healthcheck: check \\\"alive\\\" unhealthy")
    );
    crate::wait_for!(
        a.get(&format!("/v1/allocation/{id}")).await["TaskStates"]["web"]["Restarts"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_checks_run_in_the_task_and_report_to_consul() {
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    let a = start_with_consul(link).await;
    let script = |name: &str, code: u32| {
        json!({"Name": name, "Type": "script", "Command": "/bin/sh",
               "Args": ["-c", format!("echo from $NOMAD_TASK_NAME; exit {code}")],
               "Interval": 1_000_000_000i64, "Timeout": 5_000_000_000i64})
    };
    let job = json!({"Job": {
        "ID": "scripted",
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sleep", "args": ["300"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Services": [{
                    "Name": "scripted-web",
                    "Checks": [script("ok", 0), script("meh", 1), script("bad", 2)]
                }]
            }]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    let status = |checks: &std::collections::HashMap<String, caravan_consul::HealthCheck>,
                  name: &str| {
        checks
            .values()
            .find(|c| c.name == name)
            .map(|c| (c.status.clone(), c.output.clone()))
    };
    crate::wait_for!({
        let checks = direct.agent_checks().await.unwrap_or_default();
        status(&checks, "ok").is_some_and(|(s, _)| s == "passing")
            && status(&checks, "meh").is_some_and(|(s, _)| s == "warning")
            && status(&checks, "bad").is_some_and(|(s, _)| s == "critical")
    });
    let checks = direct.agent_checks().await.unwrap_or_default();
    let (_, output) = status(&checks, "ok").unwrap_or_default();
    assert!(
        output.contains("from web"),
        "ran in the task's environment: {output}"
    );
}

/// Submits the service job `gated` (health_check = "checks", one allocation) whose task
/// serves HTTP with python3 only once [`open_gate`] is called, behind one http check of the
/// service `provider`; returns the running allocation's ID.
pub(super) async fn start_gated_job(a: &TestAgent, provider: &str) -> String {
    let script = "while [ ! -f \"$NOMAD_TASK_DIR/go\" ]; do sleep 0.1; done; \
                  exec /usr/bin/python3 -m http.server --bind 127.0.0.1 \"$NOMAD_PORT_http\"";
    let job = json!({"Job": {
        "ID": "gated",
        "Update": {"MaxParallel": 1, "HealthCheck": "checks",
                   "MinHealthyTime": 200_000_000i64, "HealthyDeadline": 120_000_000_000i64,
                   "ProgressDeadline": 180_000_000_000i64},
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "Networks": [{"DynamicPorts": [{"Label": "http"}]}],
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c", script]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Services": [{
                    "Name": "gated-web", "PortLabel": "http", "Provider": provider,
                    "Checks": [{"Name": "up", "Type": "http", "Path": "/",
                                "Interval": 300_000_000i64, "Timeout": 300_000_000i64}]
                }]
            }]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a.running("gated").await.len() == 1);
    a.running("gated").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The gated allocation runs, far longer than min_healthy_time, yet is not healthy, and its
/// deployment waits.
pub(super) async fn assert_gated_not_healthy(a: &TestAgent, id: &str) {
    let alloc = a.get(&format!("/v1/allocation/{id}")).await;
    assert_eq!(alloc["ClientStatus"], "running");
    assert!(
        alloc["DeploymentStatus"]["Healthy"].is_null(),
        "healthy while its check fails: {}",
        alloc["DeploymentStatus"]
    );
    assert_eq!(a.get("/v1/job/gated/deployment").await["Status"], "running");
}

/// Lets the gated task serve: its allocation turns healthy and the deployment succeeds.
pub(super) async fn open_gate(a: &TestAgent, id: &str) {
    let go = a.clients[0]
        .shared
        .config
        .data_dir
        .join(format!("alloc/{id}/web/local/go"));
    std::fs::write(&go, b"").expect("gate file");
    crate::wait_for!(
        a.get(&format!("/v1/allocation/{id}")).await["DeploymentStatus"]["Healthy"] == true
    );
    crate::wait_for!(a.get("/v1/job/gated/deployment").await["Status"] == "successful");
}

/// `update { health_check = "checks" }` (Nomad's default): an allocation whose task runs but
/// whose Consul check is critical is not healthy, and its deployment waits; once the check
/// passes, the allocation turns healthy and the deployment succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_health_waits_for_consul_checks() {
    let Some((direct, _consul_server, a)) = http_task_agent().await else {
        return;
    };
    let id = start_gated_job(&a, "consul").await;
    let critical = || async {
        direct
            .agent_checks()
            .await
            .unwrap_or_default()
            .values()
            .any(|c| c.service_id.contains(&id) && c.status == "critical")
    };
    crate::wait_for!(critical().await);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(critical().await);
    assert_gated_not_healthy(&a, &id).await;
    open_gate(&a, &id).await;
}
