//! Vault end to end against a real OpenBao dev server started by the test: its JWT auth trusts
//! the agent's `/.well-known/jwks.json`; a raw_exec task with `vault { role }` gets
//! `secrets/vault_token` and `VAULT_TOKEN` whose policies are the role's (plus `default`);
//! stopping the job revokes the token; a role that does not exist fails the task before it
//! starts, with the reason in its events. Skips (printing why) when OpenBao cannot be
//! installed.

use super::tests::{start_with, TestAgent};
use crate::client::vault::VaultSettings;
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use caravan_vault::dev_server::DevServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(super) async fn get_json(a: &TestAgent, path: &str) -> Value {
    let r = a
        .http
        .get(format!("{}{path}", a.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    r.json().await.expect("json")
}

fn vault_job(id: &str, role: &str) -> Value {
    json!({"Job": {
        "ID": id, "Type": "batch",
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "server", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c",
                    "echo \"token=$VAULT_TOKEN\"; echo \"addr=$VAULT_ADDR\"; exec sleep 600"]},
                "Vault": {"Role": role},
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 1_000_000_000
            }]
        }]
    }})
}

/// A fresh OpenBao dev server, or `None` after saying why the test is skipped.
pub(super) fn bao_or_skip() -> Option<DevServer> {
    match DevServer::start() {
        Ok(b) => Some(b),
        Err(why) => {
            println!("SKIPPED: OpenBao unavailable: {why}");
            None
        }
    }
}

/// An agent (one node) whose client logs tasks in to Vault at `address`, with `client`'s
/// other settings.
pub(super) async fn vault_agent(address: &str, mut client: ClientConfig) -> TestAgent {
    client.vault.insert(
        "default".into(),
        VaultSettings {
            address: address.to_string(),
            ..Default::default()
        },
    );
    let server = ServerConfig {
        vault_clusters: vec!["default".into()],
        ..Default::default()
    };
    start_with(1, server, client).await
}

/// One write to OpenBao as root; panics with the path on failure.
pub(super) async fn bao_post(
    root: &caravan_vault::Client,
    path: String,
    body: Value,
) -> Option<Value> {
    root.request(reqwest::Method::POST, &path, Some(&body))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// OpenBao trusts the agent's workload identities: JWT auth at `jwt-nomad` reading its JWKS,
/// a policy `app` that reads `secret/data/app`, and a role `app` for tasks of job `job`.
pub(super) async fn trust_agent(root: &caravan_vault::Client, a: &TestAgent, job: &str) {
    bao_post(root, "sys/auth/jwt-nomad".into(), json!({"type": "jwt"})).await;
    bao_post(
        root,
        "auth/jwt-nomad/config".into(),
        json!({
            "jwks_url": format!("{}/.well-known/jwks.json", a.base),
            "jwt_supported_algs": ["EdDSA"],
        }),
    )
    .await;
    bao_post(
        root,
        "sys/policies/acl/app".into(),
        json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }"}),
    )
    .await;
    bao_post(
        root,
        "auth/jwt-nomad/role/app".into(),
        json!({
            "role_type": "jwt",
            "bound_audiences": ["vault.io"],
            "user_claim": "nomad_job_id",
            "bound_claims": {"nomad_namespace": "default", "nomad_job_id": job},
            "token_policies": ["app"],
            "token_ttl": "1h",
        }),
    )
    .await;
}

pub(super) async fn first_alloc(a: &TestAgent, job: &str) -> Option<Value> {
    get_json(a, &format!("/v1/job/{job}/allocations"))
        .await
        .as_array()
        .and_then(|v| v.first().cloned())
}

/// Registers `body` and waits until job `id`'s allocation runs (never failed); its ID.
pub(super) async fn submit_running(a: &TestAgent, body: &Value, id: &str) -> String {
    let (code, text) = a.put("/v1/jobs", body).await;
    assert_eq!(code, 200, "{text}");
    let mut alloc = String::new();
    wait_for!(match first_alloc(a, id).await {
        Some(al) => {
            assert_ne!(al["ClientStatus"], "failed", "{al:#}");
            alloc = al["ID"].as_str().unwrap_or_default().to_string();
            al["ClientStatus"] == "running"
        }
        None => false,
    });
    alloc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_role_login_gives_the_task_a_token_revoked_when_the_job_stops() {
    let Some(bao) = bao_or_skip() else { return };
    let a = vault_agent(&bao.address, ClientConfig::default()).await;
    let root = bao.root_client();
    let post = |path: String, body: Value| bao_post(&root, path, body);
    trust_agent(&root, &a, "vault-app").await;
    post(
        "secret/data/app".into(),
        json!({"data": {"password": "hunter2"}}),
    )
    .await;

    let alloc_id = submit_running(&a, &vault_job("vault-app", "app"), "vault-app").await;

    let path = a
        .data_dir
        .join("n1/alloc")
        .join(&alloc_id)
        .join("server/secrets/vault_token");
    let file_token = std::fs::read_to_string(&path).expect("secrets/vault_token");
    let logs = format!(
        "{}/v1/client/fs/logs/{alloc_id}?task=server&type=stdout&plain=true",
        a.base
    );
    let mut out;
    wait_for!({
        out = a
            .http
            .get(&logs)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        out.contains("addr=")
    });
    let env_token = out
        .lines()
        .find_map(|l| l.strip_prefix("token="))
        .expect("token line");
    assert_eq!(env_token, file_token);
    assert!(
        out.contains(&format!("addr={}", bao.address)),
        "VAULT_ADDR: {out}"
    );

    // The token is the role's: its policies, and it reads what the policy grants.
    let task = root.with_token(file_token.clone());
    let info = task.lookup_self().await.unwrap();
    let mut policies = info.policies.clone();
    policies.sort();
    assert_eq!(policies, vec!["app", "default"]);
    assert!(info.renewable);
    let s = task.kv2_read("secret", "app").await.unwrap().unwrap();
    assert_eq!(s.data["password"], "hunter2");

    // A task restart keeps the token (prestart runs once per task runner), still valid.
    let r = a
        .http
        .put(format!(
            "{}/v1/client/allocation/{alloc_id}/restart",
            a.base
        ))
        .json(&json!({"TaskName": "server"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
    wait_for!({
        let out = a
            .http
            .get(&logs)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        out.matches("addr=").count() == 2
    });
    let out = a
        .http
        .get(&logs)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        out.lines()
            .filter_map(|l| l.strip_prefix("token="))
            .all(|t| t == file_token),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), file_token);
    assert_eq!(task.lookup_self().await.unwrap().accessor, info.accessor);

    // Stopping the job revokes the token.
    let r = a
        .http
        .delete(format!("{}/v1/job/vault-app", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    wait_for!(match task.lookup_self().await {
        Ok(_) => false,
        Err(e) => {
            assert_eq!(e.status(), Some(403), "{e}");
            true
        }
    });

    // A short-lived token is renewed in the background (Vault records the renewal).
    post(
        "auth/jwt-nomad/role/short".into(),
        json!({
            "role_type": "jwt",
            "bound_audiences": ["vault.io"],
            "user_claim": "nomad_job_id",
            "bound_claims": {"nomad_job_id": "vault-short"},
            "token_policies": ["app"],
            "token_ttl": "4s",
            "token_max_ttl": "1h",
        }),
    )
    .await;
    let short_alloc = submit_running(&a, &vault_job("vault-short", "short"), "vault-short").await;
    let short_token = std::fs::read_to_string(
        a.data_dir
            .join("n1/alloc")
            .join(&short_alloc)
            .join("server/secrets/vault_token"),
    )
    .unwrap();
    let short = root.with_token(short_token);
    // Renewed again and again (every ~2 s for a 4 s token): three distinct renewal times.
    let mut renewals = std::collections::BTreeSet::new();
    wait_for!({
        let v = short
            .request(reqwest::Method::GET, "auth/token/lookup-self", None)
            .await
            .expect("the short token stays valid")
            .unwrap_or_default();
        if let Some(t) = v["data"]["last_renewal_time"].as_i64().filter(|t| *t > 0) {
            renewals.insert(t);
        }
        renewals.len() >= 3
    });

    // A token that reaches its max TTL is replaced by a new login: the file gets the new one
    // and `change_mode = "restart"` restarts the task with it in VAULT_TOKEN.
    post(
        "auth/jwt-nomad/role/capped".into(),
        json!({
            "role_type": "jwt",
            "bound_audiences": ["vault.io"],
            "user_claim": "nomad_job_id",
            "bound_claims": {"nomad_job_id": "vault-capped"},
            "token_policies": ["app"],
            "token_ttl": "2s",
            "token_max_ttl": "3s",
        }),
    )
    .await;
    let capped_alloc =
        submit_running(&a, &vault_job("vault-capped", "capped"), "vault-capped").await;
    let capped_logs = format!(
        "{}/v1/client/fs/logs/{capped_alloc}?task=server&type=stdout&plain=true",
        a.base
    );
    let mut tokens: Vec<String> = vec![];
    wait_for!({
        let out = a
            .http
            .get(&capped_logs)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        tokens = out
            .lines()
            .filter_map(|l| l.strip_prefix("token="))
            .map(str::to_string)
            .collect();
        tokens.len() >= 2
    });
    assert_ne!(tokens[0], tokens[1], "the restarted task has the new token");
    // The client reports the restart's events to the servers shortly after.
    wait_for!(
        get_json(&a, &format!("/v1/allocation/{capped_alloc}")).await["TaskStates"]["server"]
            ["Events"]
            .to_string()
            .contains("new Vault token acquired")
    );

    // A role that does not exist: the task fails before starting, saying why.
    let r = a
        .http
        .put(format!("{}/v1/jobs", a.base))
        .json(&vault_job("vault-norole", "nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let mut state = Value::Null;
    wait_for!(match first_alloc(&a, "vault-norole").await {
        Some(al) if al["ClientStatus"] == "failed" => {
            state = al["TaskStates"]["server"].clone();
            true
        }
        _ => false,
    });
    let events = state["Events"].as_array().cloned().unwrap_or_default();
    let setup = events
        .iter()
        .find(|e| e["Type"] == "Setup Failure")
        .unwrap_or_else(|| panic!("no Setup Failure event: {state:#}"));
    let msg = setup["DisplayMessage"]
        .as_str()
        .unwrap_or_default()
        .to_string()
        + setup["SetupError"].as_str().unwrap_or_default();
    assert!(msg.contains("role \"nope\""), "{msg}");
    assert!(
        !events.iter().any(|e| e["Type"] == "Started"),
        "the task must not start: {state:#}"
    );
}

#[tokio::test]
async fn a_vault_job_is_refused_at_submit_while_vault_is_disabled() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    for path in ["/v1/jobs", "/v1/job/vault-app/plan"] {
        let r = a
            .http
            .put(format!("{}{path}", a.base))
            .json(&vault_job("vault-app", "app"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains("Vault \"default\" not enabled but used in the job"),
            "{path}: {body}"
        );
    }
    let r = a
        .http
        .get(format!("{}/v1/job/vault-app", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404, "nothing was registered");
}

#[tokio::test]
async fn the_agents_default_identity_becomes_the_tasks_vault_identity_at_submit() {
    let server = ServerConfig {
        vault_clusters: vec!["default".into()],
        vault_default_identity: [(
            "default".to_string(),
            caravan_structs::WorkloadIdentity {
                audience: vec!["vault.example".into()],
                ttl: 3_600_000_000_000,
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    let a = start_with(0, server, ClientConfig::default()).await;
    let r = a
        .http
        .put(format!("{}/v1/jobs", a.base))
        .json(&vault_job("vault-app", "app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let job = get_json(&a, "/v1/job/vault-app").await;
    let ids = job["TaskGroups"][0]["Tasks"][0]["Identities"].clone();
    let ids = ids.as_array().cloned().unwrap_or_default();
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0]["Name"], "vault_default");
    assert_eq!(ids[0]["Audience"], json!(["vault.example"]));
    assert_eq!(ids[0]["TTL"], 3_600_000_000_000i64);
    // The task's own block wins: nothing is added.
    let mut own = vault_job("vault-own", "app");
    own["Job"]["TaskGroups"][0]["Tasks"][0]["Identities"] =
        json!([{"Name": "vault_default", "Audience": ["mine"]}]);
    let r = a
        .http
        .put(format!("{}/v1/jobs", a.base))
        .json(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let job = get_json(&a, "/v1/job/vault-own").await;
    let ids = job["TaskGroups"][0]["Tasks"][0]["Identities"].clone();
    assert_eq!(ids.as_array().map(Vec::len), Some(1), "{ids}");
    assert_eq!(ids[0]["Audience"], json!(["mine"]));
}
