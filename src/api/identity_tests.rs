//! Workload identities end to end: a raw_exec task with `identity { env = true, file = true }`
//! gets its JWT in `secrets/nomad_token` and `NOMAD_TOKEN`; it verifies against the keys of
//! `/.well-known/jwks.json` with Nomad's claims; with ACLs on it is accepted as a token with
//! the policies bound to its job (and nothing else), and refused once forged or once the job
//! stops.

use super::tests::{start_with, TestAgent};
use crate::client::ClientConfig;
use crate::server::acl::AclConfig;
use crate::server::ServerConfig;
use crate::wait_for;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn call(
    a: &TestAgent,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut req = a
        .http
        .request(method, format!("{}{path}", a.base))
        .timeout(Duration::from_secs(10));
    if let Some(t) = token {
        req = req.header("X-Nomad-Token", t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.expect("request");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

async fn get_json(a: &TestAgent, path: &str, token: &str) -> Value {
    let (code, body) = call(a, reqwest::Method::GET, path, Some(token), None).await;
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).expect("json")
}

fn identity_job(id: &str) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "web", "Count": 1,
            "Tasks": [{
                "Name": "server", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c",
                    "echo \"token=$NOMAD_TOKEN\"; echo \"extra=$NOMAD_TOKEN_extra\"; exec sleep 600"]},
                "Identity": {"Env": true, "File": true},
                "Identities": [
                    {"Name": "extra", "Audience": ["example.com"], "Env": true, "TTL": 3_600_000_000_000i64},
                    {"Name": "short", "File": true, "TTL": 2_000_000_000i64}
                ],
                "Resources": {"CPU": 20, "MemoryMB": 10},
                "KillTimeout": 1_000_000_000
            }]
        }]
    }})
}

/// The claims of `jwt` if its EdDSA signature verifies with the JWKS key its `kid` names.
fn verify_with_jwks(jwks: &Value, jwt: &str) -> Option<Value> {
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).ok()?).ok()?;
    let key = jwks["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kid"] == header["kid"])?;
    assert_eq!(
        (&key["kty"], &key["crv"]),
        (&json!("OKP"), &json!("Ed25519"))
    );
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str()?).ok()?;
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).ok()?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .ok()?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workload_identity_reaches_the_task_and_acts_as_its_token() {
    let a = start_with(
        1,
        ServerConfig {
            acl: AclConfig {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        },
        ClientConfig::default(),
    )
    .await;
    let (code, body) = call(&a, reqwest::Method::PUT, "/v1/acl/bootstrap", None, None).await;
    assert_eq!(code, 200, "{body}");
    let mgmt: Value = serde_json::from_str(&body).unwrap();
    let mgmt = mgmt["SecretID"].as_str().unwrap().to_string();

    // A policy bound to the job: read in its namespace.
    let (code, body) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/acl/policy/web-read",
        Some(&mgmt),
        Some(&json!({
            "Name": "web-read",
            "Rules": "namespace \"default\" {\n  policy = \"read\"\n}\n",
            "JobACL": {"Namespace": "default", "JobID": "web"}
        })),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    // A task without its group is refused, as Nomad's validation does.
    let (code, body) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/acl/policy/bad",
        Some(&mgmt),
        Some(&json!({"Name": "bad", "Rules": "", "JobACL": {"Namespace": "default", "JobID": "web", "Task": "server"}})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("group must be set to set task"), "{body}");

    let (code, body) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/jobs",
        Some(&mgmt),
        Some(&identity_job("web")),
    )
    .await;
    assert_eq!(code, 200, "{body}");

    let mut alloc_id = String::new();
    wait_for!({
        let allocs = get_json(&a, "/v1/job/web/allocations", &mgmt).await;
        match allocs.as_array().and_then(|v| v.first()) {
            Some(al) if al["ClientStatus"] == "running" => {
                alloc_id = al["ID"].as_str().unwrap().to_string();
                true
            }
            _ => false,
        }
    });

    // The file and the environment hold the same default token.
    let secrets = a
        .data_dir
        .join("n1/alloc")
        .join(&alloc_id)
        .join("server/secrets");
    let file_token =
        std::fs::read_to_string(secrets.join("nomad_token")).expect("secrets/nomad_token");
    assert!(
        !secrets.join("nomad_extra.jwt").exists(),
        "the named identity did not ask for a file"
    );
    let logs = format!("/v1/client/fs/logs/{alloc_id}?task=server&type=stdout&plain=true");
    let mut out;
    wait_for!({
        let (_, text) = call(&a, reqwest::Method::GET, &logs, Some(&mgmt), None).await;
        out = text;
        out.contains("extra=")
    });
    let env_token = out
        .lines()
        .find_map(|l| l.strip_prefix("token="))
        .expect("token line")
        .to_string();
    let extra_token = out
        .lines()
        .find_map(|l| l.strip_prefix("extra="))
        .expect("extra line")
        .to_string();
    assert_eq!(env_token, file_token);
    assert_ne!(
        extra_token, "",
        "the named identity is in NOMAD_TOKEN_extra"
    );

    // The API never shows the tokens.
    let alloc = get_json(&a, &format!("/v1/allocation/{alloc_id}"), &mgmt).await;
    assert_eq!(alloc["SignedIdentities"], json!({}));
    assert!(alloc["SigningKeyID"]
        .as_str()
        .is_some_and(|k| !k.is_empty()));

    // Nor does the event stream.
    let mut stream = a
        .http
        .get(format!(
            "{}/v1/event/stream?topic=Allocation&index=1",
            a.base
        ))
        .header("X-Nomad-Token", &mgmt)
        .send()
        .await
        .expect("event stream");
    let mut seen = String::new();
    wait_for!({
        if let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::from_secs(1), stream.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
        seen.contains("\"SigningKeyID\"")
    });
    assert!(
        !seen.contains(&file_token),
        "the event stream leaks the token"
    );
    drop(stream);

    // Both verify against the published keys and carry Nomad's claims.
    let (code, body) = call(
        &a,
        reqwest::Method::GET,
        "/.well-known/jwks.json",
        None,
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let jwks: Value = serde_json::from_str(&body).unwrap();
    let claims = verify_with_jwks(&jwks, &file_token).expect("default token verifies");
    assert_eq!(claims["nomad_namespace"], "default");
    assert_eq!(claims["nomad_job_id"], "web");
    assert_eq!(claims["nomad_allocation_id"], json!(alloc_id));
    assert_eq!(claims["nomad_task"], "server");
    assert_eq!(claims["sub"], "global:default:web:web:server:default");
    assert_eq!(claims["aud"], "nomadproject.io");
    assert!(claims["iat"].as_i64().is_some() && claims["nbf"] == claims["iat"]);
    assert!(claims.get("exp").is_none(), "no ttl: no expiry");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let extra = verify_with_jwks(&jwks, &extra_token).expect("named token verifies");
    assert_eq!(extra["sub"], "global:default:web:web:server:extra");
    assert_eq!(extra["aud"], "example.com");
    assert_eq!(
        extra["exp"].as_i64().unwrap() - extra["iat"].as_i64().unwrap(),
        3600
    );

    // An identity with a short ttl is renewed into its file before it expires.
    let short_file = secrets.join("nomad_short.jwt");
    let first_short = std::fs::read_to_string(&short_file).expect("secrets/nomad_short.jwt");
    let mut renewed;
    wait_for!({
        renewed = std::fs::read_to_string(&short_file).unwrap_or_default();
        !renewed.is_empty() && renewed != first_short
    });
    let short = verify_with_jwks(&jwks, &renewed).expect("the renewed token verifies");
    assert_eq!(short["sub"], "global:default:web:web:server:short");
    assert_eq!(
        short["exp"].as_i64().unwrap() - short["iat"].as_i64().unwrap(),
        2
    );

    // As a token: the bound policy reads the job; other namespaces and management do not.
    let (code, body) = call(
        &a,
        reqwest::Method::GET,
        "/v1/job/web",
        Some(&file_token),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = call(
        &a,
        reqwest::Method::GET,
        "/v1/jobs?namespace=other",
        Some(&file_token),
        None,
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = call(
        &a,
        reqwest::Method::GET,
        "/v1/acl/tokens",
        Some(&file_token),
        None,
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/job/web/evaluate",
        Some(&file_token),
        Some(&json!({})),
    )
    .await;
    assert_eq!(code, 403, "read only");

    // A forged token: the payload changed, the signature kept.
    let parts: Vec<&str> = file_token.split('.').collect();
    let mut forged_claims = claims.clone();
    forged_claims["nomad_job_id"] = json!("other");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(forged_claims.to_string()),
        parts[2]
    );
    let (code, body) = call(&a, reqwest::Method::GET, "/v1/job/web", Some(&forged), None).await;
    assert_eq!(code, 403);
    assert!(body.contains("invalid workload identity"), "{body}");

    // Once the job stops, its allocation is terminal and the token is refused.
    let (code, body) = call(
        &a,
        reqwest::Method::DELETE,
        "/v1/job/web",
        Some(&mgmt),
        None,
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let mut last;
    wait_for!({
        let (code, body) = call(
            &a,
            reqwest::Method::GET,
            "/v1/job/web",
            Some(&file_token),
            None,
        )
        .await;
        last = body;
        code == 403
    });
    assert!(last.contains("allocation is terminal"), "{last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_without_bound_policy_grants_only_its_claim() {
    let a = start_with(
        1,
        ServerConfig {
            acl: AclConfig {
                enabled: true,
                ..Default::default()
            },
            ..Default::default()
        },
        ClientConfig::default(),
    )
    .await;
    let (_, body) = call(&a, reqwest::Method::PUT, "/v1/acl/bootstrap", None, None).await;
    let mgmt: Value = serde_json::from_str(&body).unwrap();
    let mgmt = mgmt["SecretID"].as_str().unwrap().to_string();
    // Bound to another job: not this one's.
    let (code, body) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/acl/policy/api-read",
        Some(&mgmt),
        Some(&json!({
            "Name": "api-read",
            "Rules": "namespace \"default\" {\n  policy = \"read\"\n}\n",
            "JobACL": {"Namespace": "default", "JobID": "api"}
        })),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = call(
        &a,
        reqwest::Method::PUT,
        "/v1/jobs",
        Some(&mgmt),
        Some(&identity_job("lonely")),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let mut alloc_id = String::new();
    wait_for!({
        let allocs = get_json(&a, "/v1/job/lonely/allocations", &mgmt).await;
        match allocs.as_array().and_then(|v| v.first()) {
            Some(al) if al["ClientStatus"] == "running" => {
                alloc_id = al["ID"].as_str().unwrap().to_string();
                true
            }
            _ => false,
        }
    });
    let token = std::fs::read_to_string(
        a.data_dir
            .join("n1/alloc")
            .join(&alloc_id)
            .join("server/secrets/nomad_token"),
    )
    .expect("secrets/nomad_token");
    // Accepted as an identity (not "token not found"), but it grants nothing here.
    let (code, body) = call(
        &a,
        reqwest::Method::GET,
        "/v1/job/lonely",
        Some(&token),
        None,
    )
    .await;
    assert_eq!((code, body.as_str()), (403, "Permission denied"));
}
