//! Vault over TLS against a real OpenBao `-dev-tls` server (its generated CA names
//! `localhost` and `127.0.0.1`): verification is on by default, `ca_file` trusts the CA,
//! `tls_server_name` checks the certificate against another name than the address's host,
//! `tls_skip_verify` turns verification off. Skips, saying why, when OpenBao is unavailable.

use caravan_vault::dev_server::DevServer;
use caravan_vault::{Client, Retry, TlsConfig, VaultConfig};
use std::time::{Duration, Instant};

fn client(address: &str, tls: TlsConfig) -> Client {
    Client::new(&VaultConfig {
        address: address.to_string(),
        tls,
        retry: Retry {
            attempts: 0,
            ..Default::default()
        },
        timeout: Duration::from_secs(5),
        ..Default::default()
    })
    .expect("client")
}

#[tokio::test]
async fn tls_verification_ca_file_server_name_and_skip_verify() {
    let bao = match DevServer::start_tls() {
        Ok(b) => b,
        Err(why) => {
            println!("SKIPPED: OpenBao unavailable: {why}");
            return;
        }
    };
    let dir = bao.tls_dir.clone().expect("tls dir");
    let ca = Some(dir.join("vault-ca.pem"));
    let trusted = client(
        &bao.address,
        TlsConfig {
            ca_file: ca.clone(),
            ..Default::default()
        },
    );
    // The server may still be unsealing right after it listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match trusted.health().await {
            Ok(h) if h["initialized"] == true => break,
            other => assert!(Instant::now() < deadline, "never healthy: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Without the CA, the certificate is not trusted.
    let e = client(&bao.address, TlsConfig::default())
        .health()
        .await
        .expect_err("an unknown CA must be refused");
    assert!(e.is_unreachable(), "{e}");

    // The certificate names localhost: checked against that name, it passes even though the
    // address is an IP; against another name, it is refused.
    let named = |name: &str| {
        client(
            &bao.address,
            TlsConfig {
                ca_file: ca.clone(),
                server_name: Some(name.to_string()),
                ..Default::default()
            },
        )
    };
    named("localhost")
        .health()
        .await
        .expect("the certificate names localhost");
    let e = named("vault.example.com")
        .health()
        .await
        .expect_err("a name the certificate lacks must be refused");
    let chain = format!("{e:?}");
    assert!(
        chain.contains("NotValidForName") || chain.contains("not valid for name"),
        "{chain}"
    );

    // A directory of CAs works as one file does.
    let ca_dir = dir.join("cas");
    std::fs::create_dir_all(&ca_dir).expect("mkdir");
    std::fs::copy(dir.join("vault-ca.pem"), ca_dir.join("ca.pem")).expect("copy");
    client(
        &bao.address,
        TlsConfig {
            ca_path: Some(ca_dir),
            ..Default::default()
        },
    )
    .health()
    .await
    .expect("ca_path");

    // tls_skip_verify trusts anything.
    client(
        &bao.address,
        TlsConfig {
            skip_verify: true,
            ..Default::default()
        },
    )
    .health()
    .await
    .expect("skip verify");
}
