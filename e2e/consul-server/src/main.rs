//! `caravan-consul-test-server`: serves the in-memory Consul API on a TCP address or a Unix socket.
//!
//! Flags (Consul-like single dash): `-listen 127.0.0.1:8500`, `-unix /path.sock`,
//! `-datacenter dc1`, `-node NAME`, `-acl-token TOKEN` (enforce ACLs with this management token).

use std::process::ExitCode;

use caravan_consul_test_server::{serve, ServerConfig};

const USAGE: &str = "usage: caravan-consul-test-server [-listen ADDR:PORT | -unix PATH] [-datacenter DC] [-node NAME] [-acl-token TOKEN]";

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let mut config = ServerConfig::default();
    let mut listen = "127.0.0.1:8500".to_string();
    let mut unix: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let flag = flag.trim_start_matches('-').to_string();
        if flag == "h" || flag == "help" {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        let Some(value) = args.next() else {
            eprintln!("flag -{flag} needs a value\n{USAGE}");
            return ExitCode::from(2);
        };
        match flag.as_str() {
            "listen" => listen = value,
            "unix" => unix = Some(value),
            "datacenter" => config.datacenter = value,
            "node" => config.node_name = value,
            "acl-token" => config.acl_management_token = Some(value),
            other => {
                eprintln!("unknown flag -{other}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let result = match unix {
        Some(path) => match tokio::net::UnixListener::bind(&path) {
            Ok(l) => {
                tracing::info!(socket = %path, "Consul API test server listening");
                serve(l, config).await
            }
            Err(e) => {
                eprintln!("cannot listen on unix socket {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => match tokio::net::TcpListener::bind(&listen).await {
            Ok(l) => {
                tracing::info!(address = %listen, "Consul API test server listening");
                serve(l, config).await
            }
            Err(e) => {
                eprintln!("cannot listen on {listen}: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("server stopped: {e}");
            ExitCode::FAILURE
        }
    }
}
