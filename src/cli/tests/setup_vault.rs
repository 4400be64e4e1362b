//! `caravan setup vault`: prints the JWT auth method, role and policy; with `-apply` writes
//! them to a real OpenBao dev server started by the test (skipped, saying why, when OpenBao
//! cannot be installed), idempotently.

use caravan_vault::dev_server::DevServer;
use std::collections::BTreeMap;

fn run(args: &[&str], env: &BTreeMap<String, String>) -> (i32, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = caravan_cli::run_with(
        args.iter().map(|s| s.to_string()).collect(),
        env,
        &mut out,
        &mut err,
    );
    (
        code,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

#[test]
fn setup_vault_prints_without_apply_and_refuses_apply_without_vault_env() {
    let env = BTreeMap::from([("NOMAD_ADDR".to_string(), "http://10.0.0.1:4646".to_string())]);
    let (code, out, err) = run(&["setup", "vault"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("\"jwks_url\": \"http://10.0.0.1:4646/.well-known/jwks.json\""),
        "{out}"
    );
    assert!(out.contains("auth/jwt-nomad/role/nomad-workloads"), "{out}");
    assert!(out.contains("\"vault.io\""), "{out}");
    let (code, _, err) = run(&["setup", "vault", "-apply"], &env);
    assert_eq!(code, 1);
    assert!(err.contains("VAULT_ADDR and VAULT_TOKEN"), "{err}");
}

/// A JWKS endpoint (RFC 8037's example Ed25519 key), as Vault checks the URL when configured.
fn serve_jwks() -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/.well-known/jwks.json", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let body = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn setup_vault_apply_writes_auth_method_role_and_policy() {
    let bao = match DevServer::start() {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED: OpenBao unavailable: {why}");
            return;
        }
    };
    let env = BTreeMap::from([
        ("VAULT_ADDR".to_string(), bao.address.clone()),
        ("VAULT_TOKEN".to_string(), "root".to_string()),
    ]);
    let jwks = serve_jwks();
    let jwks = jwks.as_str();
    for round in 0..2 {
        let (code, out, err) = run(&["setup", "vault", "-apply", "-jwks-url", jwks], &env);
        assert_eq!(code, 0, "round {round}: {err}");
        assert!(out.contains("Wrote role nomad-workloads"), "{out}");
        if round == 1 {
            assert!(out.contains("already enabled"), "{out}");
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let root = bao.root_client();
        let get = |p: &'static str| {
            let root = root.clone();
            async move {
                root.request(reqwest::Method::GET, p, None)
                    .await
                    .unwrap_or_else(|e| panic!("{p}: {e}"))
                    .unwrap_or_default()
            }
        };
        let cfg = get("auth/jwt-nomad/config").await;
        assert_eq!(cfg["data"]["jwks_url"], jwks);
        assert_eq!(cfg["data"]["default_role"], "nomad-workloads");
        let role = get("auth/jwt-nomad/role/nomad-workloads").await;
        assert_eq!(role["data"]["bound_audiences"][0], "vault.io");
        assert_eq!(role["data"]["token_policies"][0], "nomad-workloads");
        let auth = get("sys/auth").await;
        let accessor = auth["jwt-nomad/"]["accessor"].as_str().unwrap().to_string();
        let policy = get("sys/policies/acl/nomad-workloads").await;
        let text = policy["data"]["policy"].as_str().unwrap();
        assert!(
            text.contains(&format!(
                "identity.entity.aliases.{accessor}.metadata.nomad_job_id"
            )),
            "{text}"
        );
    });
}
