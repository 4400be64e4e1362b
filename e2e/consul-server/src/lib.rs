//! An in-memory server for Consul's HTTP API, written from Consul's API documentation so that
//! Caravan's Consul integration can be tested where no Consul build can be installed. It pretends
//! to be a single Consul server agent (one node, one datacenter). See README.md for exactly which
//! endpoints and fields it implements.
//!
//! Start it in-process with [`spawn_for_test`] (TCP) or [`spawn_unix_for_test`], or serve any
//! listener with [`serve`]; the `caravan-consul-test-server` binary wraps [`serve`].

mod agent;
mod catalog;
mod checks;
pub mod duration;
mod error;
mod kv;
mod model;
mod query;
mod store;
mod view;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, put};
use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, UnixListener};
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::store::{NodeInfo, Store};

/// How the server presents itself.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The datacenter name (`dc1` like Consul's default); other `?dc=` values get Consul's
    /// "No path to datacenter".
    pub datacenter: String,
    /// The node name reported in catalog and health answers.
    pub node_name: String,
    /// The node's address (used for `Address` and `status/leader`).
    pub node_address: String,
    /// When set, ACLs are enforced: every request must carry this token (`X-Consul-Token`,
    /// `Authorization: Bearer` or `?token=`); otherwise 403, as Consul with `default_policy = deny`.
    pub acl_management_token: Option<String>,
    /// How often services critical past `DeregisterCriticalServiceAfter` are reaped
    /// (Consul: 30s; tests may shorten it).
    pub reap_interval: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            datacenter: "dc1".into(),
            node_name: "caravan-consul-test".into(),
            node_address: "127.0.0.1".into(),
            acl_management_token: None,
            reap_interval: Duration::from_secs(30),
        }
    }
}

/// State shared by all handlers.
#[derive(Clone)]
pub(crate) struct AppState {
    pub store: Store,
    pub config: Arc<ServerConfig>,
}

/// A listener the server can accept connections on.
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl From<TcpListener> for Listener {
    fn from(l: TcpListener) -> Self {
        Listener::Tcp(l)
    }
}

impl From<UnixListener> for Listener {
    fn from(l: UnixListener) -> Self {
        Listener::Unix(l)
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/kv/", get(kv::get_root).put(kv::put_root).delete(kv::delete_root))
        .route("/v1/kv/*key", get(kv::get).put(kv::put).delete(kv::delete))
        .route("/v1/agent/self", get(agent::agent_self))
        .route("/v1/agent/members", get(agent::members))
        .route("/v1/agent/services", get(agent::services))
        .route("/v1/agent/service/register", put(agent::service_register))
        .route("/v1/agent/service/deregister/:id", put(agent::service_deregister))
        .route("/v1/agent/service/:id", get(agent::service))
        .route("/v1/agent/checks", get(agent::checks_list))
        .route("/v1/agent/check/register", put(agent::check_register))
        .route("/v1/agent/check/deregister/:id", put(agent::check_deregister))
        .route("/v1/agent/check/pass/:id", put(agent::check_pass))
        .route("/v1/agent/check/warn/:id", put(agent::check_warn))
        .route("/v1/agent/check/fail/:id", put(agent::check_fail))
        .route("/v1/agent/check/update/:id", put(agent::check_update))
        .route("/v1/catalog/services", get(catalog::services))
        .route("/v1/catalog/service/:name", get(catalog::service))
        .route("/v1/catalog/nodes", get(catalog::nodes))
        .route("/v1/catalog/node/:node", get(catalog::node))
        .route("/v1/catalog/datacenters", get(agent::datacenters))
        .route("/v1/health/service/:name", get(catalog::health_service))
        .route("/v1/health/checks/:name", get(catalog::health_checks))
        .route("/v1/health/state/:state", get(catalog::health_state))
        .route("/v1/health/node/:node", get(catalog::health_node))
        .route("/v1/status/leader", get(agent::status_leader))
        .route("/v1/status/peers", get(agent::status_peers))
        .fallback(|| async {
            ApiError::NotFound("Invalid URL path: not a recognized HTTP API endpoint of the Caravan Consul test server".into())
        })
        .with_state(state)
}

/// Serves Consul's API on `listener` until the task is dropped or aborted.
pub async fn serve(listener: impl Into<Listener>, config: ServerConfig) -> std::io::Result<()> {
    let store = Store::new(NodeInfo {
        name: config.node_name.clone(),
        id: uuid::Uuid::new_v4().to_string(),
        address: config.node_address.clone(),
        datacenter: config.datacenter.clone(),
    });
    serve_store(listener.into(), config, store).await
}

async fn serve_store(
    listener: Listener,
    config: ServerConfig,
    store: Store,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(checks::reap_loop(store.clone(), config.reap_interval));
    let _reaper = AbortOnDrop(reaper);
    let app = router(AppState {
        store,
        config: Arc::new(config),
    });
    loop {
        match &listener {
            Listener::Tcp(l) => {
                let (stream, _) = l.accept().await?;
                let _ = stream.set_nodelay(true);
                spawn_connection(TokioIo::new(stream), app.clone());
            }
            Listener::Unix(l) => {
                let (stream, _) = l.accept().await?;
                spawn_connection(TokioIo::new(stream), app.clone());
            }
        }
    }
}

fn spawn_connection<I>(io: TokioIo<I>, app: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let service = TowerToHyperService::new(app);
        if let Err(e) = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, service)
            .await
        {
            tracing::debug!(error = %e, "connection ended with an error");
        }
    });
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A server running inside the test process; stops when dropped.
pub struct TestServer {
    task: JoinHandle<std::io::Result<()>>,
    socket_path: Option<PathBuf>,
}

impl TestServer {
    /// Stops the server now.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = &self.socket_path {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts a server on a free loopback port with the default configuration.
pub async fn spawn_for_test() -> std::io::Result<(SocketAddr, TestServer)> {
    spawn_for_test_with(ServerConfig::default()).await
}

/// Starts a server on a free loopback port with `config`.
pub async fn spawn_for_test_with(
    config: ServerConfig,
) -> std::io::Result<(SocketAddr, TestServer)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(serve(listener, config));
    Ok((
        addr,
        TestServer {
            task,
            socket_path: None,
        },
    ))
}

/// Starts a server on a Unix socket at `path` (removed again when the server is dropped).
pub async fn spawn_unix_for_test(path: &Path, config: ServerConfig) -> std::io::Result<TestServer> {
    let listener = UnixListener::bind(path)?;
    let task = tokio::spawn(serve(listener, config));
    Ok(TestServer {
        task,
        socket_path: Some(path.to_path_buf()),
    })
}
