//! Templates reading Vault, end to end against a real OpenBao dev server started by the test
//! (skipped, saying why, when OpenBao cannot be installed): a KV v2 secret renders, is
//! re-rendered when it changes and the task is signalled; a PKI certificate is issued and
//! issued again before it expires; a Vault outage (a cut proxy between client and OpenBao)
//! leaves the task running on its last secrets with a stale event and gauge, and renewal and
//! rendering resume when Vault is back; with `vault_outage = "fail"` the outage fails the task
//! once `vault_retry` is used up; `restart { render_templates = true }` reads a secret
//! afresh when the task restarts.

use super::test_proxy::Proxy;
use super::tests::TestAgent;
use super::vault_tests::{
    bao_or_skip, bao_post, first_alloc, get_json, submit_running, trust_agent, vault_agent,
};
use crate::client::template_settings::{Retry, TemplateSettings};
use crate::client::vault_outage::VaultOutage;
use crate::client::ClientConfig;
use crate::wait_for;
use caravan_vault::dev_server::DevServer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// An agent that reaches `bao` through a proxy the test can cut (a Vault outage); with
/// `cut_first`, Vault is already unreachable when the agent starts.
async fn proxied_agent(
    bao: &DevServer,
    client: ClientConfig,
    cut_first: bool,
) -> (Proxy, TestAgent) {
    let proxy = Proxy::start(bao_socket(bao)).await;
    if cut_first {
        proxy.cut();
    }
    let a = vault_agent(&format!("http://{}", proxy.addr), client).await;
    (proxy, a)
}

fn bao_socket(bao: &DevServer) -> std::net::SocketAddr {
    bao.address
        .trim_start_matches("http://")
        .parse()
        .expect("OpenBao listens on an IP address")
}

/// Client settings that re-read lease-less secrets every second and render at once.
fn quick_client(outage: VaultOutage) -> ClientConfig {
    ClientConfig {
        template: TemplateSettings {
            wait: None,
            vault_default_lease_duration: Duration::from_secs(1),
            vault_outage: outage,
            vault_retry: Retry {
                attempts: 3,
                backoff: Duration::from_millis(100),
                max_backoff: Duration::from_millis(500),
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// A service job whose task says when it gets SIGHUP, with `templates`.
fn job(id: &str, templates: Value) -> Value {
    json!({"Job": {
        "ID": id, "Type": "service",
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
            "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c",
                    "trap 'echo got-hup' HUP; echo started; while true; do sleep 0.2; done"]},
                "Vault": {"Role": "app"},
                "Templates": templates,
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 1_000_000_000u64
            }]
        }]
    }})
}

/// How long OpenBao is cut off in the outage test.
const OUTAGE: Duration = Duration::from_secs(60);

const PASSWORD_TEMPLATE: &str =
    "{{ with secret \"secret/data/app\" }}{{ .Data.data.password }}{{ end }}";

fn read(a: &TestAgent, alloc: &str, rel: &str) -> String {
    std::fs::read_to_string(a.data_dir.join("n1/alloc").join(alloc).join(rel)).unwrap_or_default()
}

async fn logs(a: &TestAgent, alloc: &str) -> String {
    a.http
        .get(format!(
            "{}/v1/client/fs/logs/{alloc}?task=web&type=stdout&plain=true",
            a.base
        ))
        .send()
        .await
        .expect("logs")
        .text()
        .await
        .unwrap_or_default()
}

async fn event_types(a: &TestAgent, alloc: &str) -> Vec<String> {
    get_json(a, &format!("/v1/allocation/{alloc}")).await["TaskStates"]["web"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["Type"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn node_attr(a: &TestAgent) -> Value {
    let id = a.clients[0].node_id();
    get_json(a, &format!("/v1/node/{id}")).await["Attributes"].clone()
}

async fn stale_gauge(a: &TestAgent) -> f64 {
    get_json(a, "/v1/metrics").await["Gauges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .find(|g| g["Name"] == "nomad.client.vault.stale_tasks")
        .and_then(|g| g["Value"].as_f64())
        .unwrap_or(-1.0)
}

async fn put_password(root: &caravan_vault::Client, password: &str) {
    bao_post(
        root,
        "secret/data/app".into(),
        json!({"data": {"password": password}}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_secrets_render_rerender_with_a_signal_and_certificates_are_reissued() {
    let Some(bao) = bao_or_skip() else { return };
    let a = vault_agent(&bao.address, quick_client(VaultOutage::Keep)).await;
    let root = bao.root_client();
    trust_agent(&root, &a, "vault-tmpl").await;
    bao_post(
        &root,
        "sys/policies/acl/app".into(),
        json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }\n\
                          path \"pki/issue/web\" { capabilities = [\"update\"] }"}),
    )
    .await;
    bao_post(
        &root,
        "sys/mounts/pki".into(),
        json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}}),
    )
    .await;
    bao_post(
        &root,
        "pki/root/generate/internal".into(),
        json!({"common_name": "example.com", "ttl": "87600h"}),
    )
    .await;
    bao_post(
        &root,
        "pki/roles/web".into(),
        json!({"allowed_domains": ["example.com"], "allow_subdomains": true, "max_ttl": "1h"}),
    )
    .await;
    put_password(&root, "hunter2").await;

    let alloc = submit_running(
        &a,
        &job(
            "vault-tmpl",
            json!([
                {"EmbeddedTmpl": PASSWORD_TEMPLATE, "DestPath": "secrets/password",
                 "ChangeMode": "signal", "ChangeSignal": "SIGHUP"},
                {"EmbeddedTmpl": "{{ with pkiCert \"pki/issue/web\" \"common_name=web.example.com\" \"ttl=5s\" }}{{ .Cert }}{{ .Key }}{{ end }}",
                 "DestPath": "secrets/web.pem", "ChangeMode": "noop"}
            ]),
        ),
        "vault-tmpl",
    )
    .await;
    // Rendered before the task started.
    assert_eq!(read(&a, &alloc, "web/secrets/password"), "hunter2");
    let first_cert = read(&a, &alloc, "web/secrets/web.pem");
    assert!(first_cert.contains("BEGIN CERTIFICATE"), "{first_cert}");
    assert!(first_cert.contains("PRIVATE KEY"), "{first_cert}");

    // The secret changes: the file follows and the task gets SIGHUP (change_mode signal).
    put_password(&root, "swordfish").await;
    wait_for!(read(&a, &alloc, "web/secrets/password") == "swordfish");
    wait_for!(logs(&a, &alloc).await.contains("got-hup"));

    // The 5 s certificate is issued again before it expires.
    wait_for!({
        let now = read(&a, &alloc, "web/secrets/web.pem");
        now.contains("BEGIN CERTIFICATE") && now != first_cert
    });
    assert!(
        !event_types(&a, &alloc)
            .await
            .iter()
            .any(|t| t == "Restarting" || t == "Restart Signaled"),
        "no restart"
    );

    // The job stops: the task's token is revoked.
    let task = root.with_token(read(&a, &alloc, "web/secrets/vault_token"));
    task.lookup_self().await.expect("the task's token is valid");
    let r = a
        .http
        .delete(format!("{}/v1/job/vault-tmpl", a.base))
        .send()
        .await
        .expect("stop");
    assert_eq!(r.status().as_u16(), 200);
    wait_for!(task.lookup_self().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_outage_leaves_the_task_running_on_its_last_secrets() {
    let Some(bao) = bao_or_skip() else { return };
    let (proxy, a) = proxied_agent(&bao, quick_client(VaultOutage::Keep), false).await;
    let root = bao.root_client();
    trust_agent(&root, &a, "vault-outage").await;
    // A token short enough to be renewed during the outage, long enough to outlive it.
    bao_post(
        &root,
        "auth/jwt-nomad/role/app".into(),
        json!({
            "role_type": "jwt", "bound_audiences": ["vault.io"], "user_claim": "nomad_job_id",
            "bound_claims": {"nomad_job_id": "vault-outage"}, "token_policies": ["app"],
            "token_ttl": "90s", "token_max_ttl": "1h",
        }),
    )
    .await;
    put_password(&root, "hunter2").await;
    let alloc = submit_running(
        &a,
        &job(
            "vault-outage",
            json!([{"EmbeddedTmpl": PASSWORD_TEMPLATE, "DestPath": "secrets/password",
                    "ChangeMode": "signal", "ChangeSignal": "SIGHUP"}]),
        ),
        "vault-outage",
    )
    .await;
    let token = read(&a, &alloc, "web/secrets/vault_token");
    let task = root.with_token(token.clone());

    // Vault goes away.
    let cut_at = Instant::now();
    proxy.cut();
    wait_for!(event_types(&a, &alloc)
        .await
        .iter()
        .any(|t| t == "Vault Secrets Stale"));
    assert_eq!(stale_gauge(&a).await, 1.0);
    // The secret changes meanwhile: the task cannot see it, and keeps running on the old one.
    put_password(&root, "swordfish").await;
    // A minute (the outage), past the token's first renewal at half its 90 s lease.
    while cut_at.elapsed() < OUTAGE {
        assert_eq!(read(&a, &alloc, "web/secrets/password"), "hunter2");
        assert_eq!(a.running("vault-outage").await.len(), 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let restored_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    proxy.restore();

    // Vault is back: rendering resumes (the task is signalled for the new secret), the token
    // is renewed, nothing restarted.
    wait_for!(read(&a, &alloc, "web/secrets/password") == "swordfish");
    wait_for!(logs(&a, &alloc).await.contains("got-hup"));
    wait_for!(event_types(&a, &alloc)
        .await
        .iter()
        .any(|t| t == "Vault Secrets Refreshed"));
    wait_for!({
        let v = task
            .request(reqwest::Method::GET, "auth/token/lookup-self", None)
            .await
            .expect("the token outlived the outage")
            .unwrap_or_default();
        v["data"]["last_renewal_time"].as_i64().unwrap_or(0) >= restored_at
    });
    wait_for!(stale_gauge(&a).await == 0.0);
    let types = event_types(&a, &alloc).await;
    assert!(
        !types
            .iter()
            .any(|t| t == "Restarting" || t == "Restart Signaled" || t == "Killing"),
        "{types:?}"
    );
    assert_eq!(read(&a, &alloc, "web/secrets/vault_token"), token);
    assert_eq!(logs(&a, &alloc).await.matches("started").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_vault_outage_fail_an_outage_fails_the_task_after_vault_retry() {
    let Some(bao) = bao_or_skip() else { return };
    let (proxy, a) = proxied_agent(&bao, quick_client(VaultOutage::Fail), false).await;
    let root = bao.root_client();
    trust_agent(&root, &a, "vault-fail").await;
    put_password(&root, "hunter2").await;
    let alloc = submit_running(
        &a,
        &job(
            "vault-fail",
            json!([{"EmbeddedTmpl": PASSWORD_TEMPLATE, "DestPath": "secrets/password",
                    "ChangeMode": "noop"}]),
        ),
        "vault-fail",
    )
    .await;
    proxy.cut();
    let killing = |v: &Value| -> String {
        v["TaskStates"]["web"]["Events"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|e| e["Type"] == "Killing")
            .map(|e| e.to_string())
            .collect()
    };
    wait_for!({
        let v = get_json(&a, &format!("/v1/allocation/{alloc}")).await;
        !killing(&v).is_empty() && v["ClientStatus"] == "failed"
    });
    let killing = killing(&get_json(&a, &format!("/v1/allocation/{alloc}")).await);
    assert!(
        killing.contains("vault.read(secret/data/app) from Vault failed 3 times"),
        "{killing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_templates_reads_secrets_afresh_when_the_task_restarts() {
    restart_reads_the_secret_afresh("vault-restart", ClientConfig::default(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_option_render_secrets_on_restart_does_it_for_every_job() {
    let client = ClientConfig {
        template: TemplateSettings {
            render_secrets_on_restart: true,
            ..Default::default()
        },
        ..Default::default()
    };
    restart_reads_the_secret_afresh("vault-restart-opt", client, false).await;
}

/// A task that fails once its secret changed restarts with the new secret, read afresh (the
/// client's default lease would re-read it only after about 4.5 minutes).
async fn restart_reads_the_secret_afresh(id: &str, client: ClientConfig, render_templates: bool) {
    let Some(bao) = bao_or_skip() else { return };
    let a = vault_agent(&bao.address, client).await;
    let root = bao.root_client();
    trust_agent(&root, &a, id).await;
    put_password(&root, "hunter2").await;
    let mut body = job(
        id,
        json!([{"EmbeddedTmpl": PASSWORD_TEMPLATE, "DestPath": "secrets/password",
                "ChangeMode": "noop"}]),
    );
    let task = &mut body["Job"]["TaskGroups"][0]["Tasks"][0];
    task["Config"]["args"] = json!(["-c",
        "echo \"password=$(cat secrets/password)\"; while [ ! -e ../alloc/next ]; do sleep 0.2; done; rm ../alloc/next; exit 1"]);
    body["Job"]["TaskGroups"][0]["RestartPolicy"] = json!({
        "Attempts": 3, "Interval": 600_000_000_000u64, "Delay": 100_000_000,
        "Mode": "fail", "RenderTemplates": render_templates
    });
    let alloc = submit_running(&a, &body, id).await;
    wait_for!(logs(&a, &alloc).await.contains("password=hunter2"));
    put_password(&root, "swordfish").await;
    // The task fails; its restart renders the template again first.
    std::fs::write(
        a.data_dir.join("n1/alloc").join(&alloc).join("alloc/next"),
        "",
    )
    .expect("signal the task to exit");
    wait_for!(logs(&a, &alloc).await.contains("password=swordfish"));
    assert_eq!(read(&a, &alloc, "web/secrets/password"), "swordfish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vault_that_comes_up_after_the_client_makes_the_node_eligible() {
    let Some(bao) = bao_or_skip() else { return };
    let (proxy, a) = proxied_agent(
        &bao,
        ClientConfig {
            driver_fingerprint_period: Duration::from_millis(500),
            ..quick_client(VaultOutage::Keep)
        },
        true,
    )
    .await;
    assert_eq!(node_attr(&a).await["vault.accessible"], "false");
    let root = bao.root_client();
    trust_agent(&root, &a, "vault-late").await;
    put_password(&root, "hunter2").await;
    // Submitted while Vault is unreachable: no node has `vault.version`, nothing is placed.
    let body = job(
        "vault-late",
        json!([{"EmbeddedTmpl": PASSWORD_TEMPLATE, "DestPath": "secrets/password",
                "ChangeMode": "noop"}]),
    );
    let (code, text) = a.put("/v1/jobs", &body).await;
    assert_eq!(code, 200, "{text}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(first_alloc(&a, "vault-late").await.is_none());
    // Vault comes up: the node's attributes follow and the job runs.
    proxy.restore();
    wait_for!(node_attr(&a).await["vault.accessible"] == "true");
    assert!(node_attr(&a).await["vault.version"].is_string());
    wait_for!(a.running("vault-late").await.len() == 1);
}
