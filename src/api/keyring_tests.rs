//! The keyring through the API and CLI: a new cluster has one active key; rotation makes a
//! new active key and keeps the old one (so its tokens still verify); the JWKS lists every
//! key's public key; the active key cannot be removed, an inactive one can; full rotation and
//! other algorithms are refused with the reason.

use super::jobops_tests::cli;
use super::tests::start_with;
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_publish_and_are_removed() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let keys = a.get("/v1/operator/keyring/keys").await;
    let keys = keys.as_array().cloned().unwrap_or_default();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0]["State"], "active");
    assert_eq!(keys[0]["Algorithm"], "aes256-gcm");
    let first = keys[0]["KeyID"].as_str().unwrap_or_default().to_string();

    let (code, body) = a.put("/v1/operator/keyring/rotate", &json!({})).await;
    assert_eq!(code, 200, "{body}");
    let rotated: Value = serde_json::from_str(&body).unwrap_or_default();
    let second = rotated["Key"]["KeyID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_ne!(first, second);
    let keys = a.get("/v1/operator/keyring/keys").await;
    let state_of = |id: &str| {
        keys.as_array()
            .and_then(|l| l.iter().find(|k| k["KeyID"] == id))
            .map(|k| k["State"].clone())
            .unwrap_or_default()
    };
    assert_eq!(state_of(&second), "active");
    assert_eq!(state_of(&first), "inactive");

    let jwks = a.get("/.well-known/jwks.json").await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .map(|l| l.iter().filter_map(|k| k["kid"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        kids.contains(&first.as_str()) && kids.contains(&second.as_str()),
        "{jwks}"
    );
    assert_eq!(jwks["keys"][0]["crv"], "Ed25519");
    let r = a
        .http
        .get(format!("{}/.well-known/openid-configuration", a.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 404, "no oidc_issuer configured");

    let (code, body) = a
        .put("/v1/operator/keyring/rotate?full=true", &json!({}))
        .await;
    assert_eq!(code, 400);
    assert!(body.contains("full rotation"), "{body}");
    let (code, body) = a
        .put("/v1/operator/keyring/rotate?algo=xchacha20", &json!({}))
        .await;
    assert_eq!(code, 400, "{body}");

    let del = |id: String| {
        let (http, base) = (a.http.clone(), a.base.clone());
        async move {
            let r = http
                .delete(format!("{base}/v1/operator/keyring/key/{id}"))
                .send()
                .await
                .expect("request");
            (r.status().as_u16(), r.text().await.unwrap_or_default())
        }
    };
    let (code, body) = del(second.clone()).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("active root key cannot be deleted"), "{body}");

    // The CLI lists both (short IDs), removes the inactive one.
    let (code, out, err) = cli(&a.base, &["operator", "root", "keyring", "list"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&first[..8]) && out.contains("inactive"),
        "{out}"
    );
    let (code, out, err) = cli(&a.base, &["operator", "root", "keyring", "remove", &first]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Removed encryption key"), "{out}");
    let (code, body) = del(first).await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(
        a.get("/v1/operator/keyring/keys")
            .await
            .as_array()
            .map(|l| l.len()),
        Some(1)
    );
}
