//! The client against a real OpenBao dev server started by the test: JWT login with a locally
//! signed EdDSA token, lookup/renew/revoke of the token, KV v1 and v2 reads, namespaces' header.
//! Skips (printing why) when OpenBao cannot be found or installed.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use caravan_vault::dev_server::DevServer;
use caravan_vault::{Client, VaultConfig};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::json;

fn start() -> Option<DevServer> {
    match DevServer::start() {
        Ok(s) => Some(s),
        Err(why) => {
            println!("SKIPPED: OpenBao unavailable: {why}");
            None
        }
    }
}

/// The public key as PEM (SubjectPublicKeyInfo for Ed25519).
fn public_pem(pair: &Ed25519KeyPair) -> String {
    let mut der = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(pair.public_key().as_ref());
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(der)
    )
}

fn sign(pair: &Ed25519KeyPair, claims: &serde_json::Value) -> String {
    let enc = |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!(
        "{}.{}",
        enc(&json!({"alg": "EdDSA", "typ": "JWT"})),
        enc(claims)
    );
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn jwt_login_token_lifecycle_and_kv_reads() {
    let Some(bao) = start() else { return };
    let root = bao.root_client();
    let post = |path: &'static str, body: serde_json::Value| {
        let root = root.clone();
        async move {
            root.request(reqwest::Method::POST, path, Some(&body))
                .await
                .unwrap_or_else(|e| panic!("{path}: {e}"))
        }
    };

    // JWT auth trusting a local key, a role bound to claims, a policy reading secret/data/app.
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    post("sys/auth/jwt-nomad", json!({"type": "jwt"})).await;
    post(
        "auth/jwt-nomad/config",
        json!({"jwt_validation_pubkeys": [public_pem(&pair)]}),
    )
    .await;
    post(
        "sys/policies/acl/app",
        json!({"policy": "path \"secret/data/app\" { capabilities = [\"read\"] }\npath \"kv1/app\" { capabilities = [\"read\"] }"}),
    )
    .await;
    post(
        "auth/jwt-nomad/role/web",
        json!({
            "role_type": "jwt",
            "bound_audiences": ["vault.io"],
            "user_claim": "nomad_job_id",
            "bound_claims": {"nomad_namespace": "default"},
            "token_policies": ["app"],
            "token_ttl": "1h",
            "token_period": 0,
        }),
    )
    .await;
    post("secret/data/app", json!({"data": {"password": "hunter2"}})).await;
    post(
        "sys/mounts/kv1",
        json!({"type": "kv", "options": {"version": "1"}}),
    )
    .await;
    post("kv1/app", json!({"user": "alice"})).await;

    let claims = json!({
        "aud": "vault.io", "nomad_namespace": "default", "nomad_job_id": "web",
        "sub": "global:default:web:g:t:vault_default", "iat": now(), "nbf": now(),
        "exp": now() + 600,
    });
    let anon = Client::new(&VaultConfig {
        address: bao.address.clone(),
        ..Default::default()
    })
    .unwrap();

    // A role that does not exist: Vault's refusal, at once (no retries on 4xx).
    let e = anon
        .jwt_login("jwt-nomad", "nope", &sign(&pair, &claims))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e}");
    assert!(
        e.to_string().contains("role \"nope\" could not be found"),
        "{e}"
    );
    assert!(!e.is_unreachable());

    // Claims the role is not bound to are refused.
    let mut other = claims.clone();
    other["nomad_namespace"] = json!("prod");
    let e = anon
        .jwt_login("jwt-nomad", "web", &sign(&pair, &other))
        .await
        .unwrap_err();
    assert!(e.status().is_some_and(|s| (400..500).contains(&s)), "{e}");

    let auth = anon
        .jwt_login("jwt-nomad/", "web", &sign(&pair, &claims))
        .await
        .unwrap();
    assert!(!auth.client_token.is_empty());
    assert!(auth.renewable);
    assert_eq!(auth.lease_duration, 3600);
    assert!(auth.token_policies.contains(&"app".to_string()), "{auth:?}");

    let task = anon.with_token(&auth.client_token);
    let info = task.lookup_self().await.unwrap();
    let mut policies = info.policies.clone();
    policies.sort();
    assert_eq!(policies, vec!["app", "default"]);
    assert_eq!(info.accessor, auth.accessor);

    let renewed = task
        .renew_self(Some(std::time::Duration::from_secs(120)))
        .await
        .unwrap();
    assert_eq!(renewed.client_token, auth.client_token);
    assert_eq!(renewed.lease_duration, 120);

    // KV v2 and v1 through the policy; a path the policy does not grant is refused.
    let s = task.kv2_read("secret", "app").await.unwrap().unwrap();
    assert_eq!(s.data["password"], "hunter2");
    assert_eq!(s.metadata["version"], 1);
    let s = task.kv1_read("kv1", "app").await.unwrap().unwrap();
    assert_eq!(s.data["user"], "alice");
    assert!(s.metadata.is_null());
    assert_eq!(root.kv2_read("secret", "missing").await.unwrap(), None);
    assert_eq!(root.kv1_read("kv1", "missing").await.unwrap(), None);
    let e = task.kv2_read("secret", "other").await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");

    // `X-Vault-Namespace` (OpenBao has namespaces): the same path in a child namespace is
    // another secret; the task's token, from the root namespace, sees nothing there.
    post("sys/namespaces/team-a", json!({})).await;
    let team = root.with_namespace("team-a");
    team.request(
        reqwest::Method::POST,
        "sys/mounts/secret",
        Some(&json!({"type": "kv", "options": {"version": "2"}})),
    )
    .await
    .unwrap();
    team.request(
        reqwest::Method::POST,
        "secret/data/app",
        Some(&json!({"data": {"password": "team-a-pw"}})),
    )
    .await
    .unwrap();
    let s = team.kv2_read("secret", "app").await.unwrap().unwrap();
    assert_eq!(s.data["password"], "team-a-pw");
    assert!(task
        .with_namespace("team-a")
        .kv2_read("secret", "app")
        .await
        .is_err());

    let health = anon.health().await.unwrap();
    assert_eq!(health["sealed"], false);

    task.revoke_self().await.unwrap();
    let e = task.lookup_self().await.unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
}
