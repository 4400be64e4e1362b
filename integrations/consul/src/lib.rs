//! `caravan-consul`: a Consul HTTP API client (consul-rs style) for Caravan.
//!
//! ```no_run
//! # async fn demo() -> Result<(), caravan_consul::ConsulError> {
//! use caravan_consul::{ConsulClient, ConsulConfig, QueryOptions, WriteOptions};
//! let consul = ConsulClient::new(ConsulConfig { address: "http://127.0.0.1:8500".into(), ..Default::default() })?;
//! consul.kv_put("app/config", b"v1", 0, &WriteOptions::default()).await?;
//! let (healthy, meta) = consul.health_service("web", true, &QueryOptions::default()).await?;
//! # let _ = (healthy, meta); Ok(()) }
//! ```
//!
//! Transports: HTTP, HTTPS (rustls; CA and client certificate from PEM files) and Unix sockets.
//! Reads take [`QueryOptions`] (blocking `wait_index`/`wait_time`, consistency, dc, tags, near)
//! and return [`QueryMeta`]; [`Watch`] turns blocking reads into a stream of updates.

mod agent;
pub mod blocking;
mod catalog;
mod client;
mod config;
pub mod duration;
mod error;
mod kv;
mod query;
mod tls;
mod transport;
mod types;
mod watch;

pub use client::ConsulClient;
pub use config::{ConsulConfig, Endpoint};
pub use error::ConsulError;
pub use query::{Consistency, QueryMeta, QueryOptions, WriteOptions};
pub use types::{
    AgentCheckRegistration, AgentMember, AgentSelf, AgentSelfConfig, AgentService,
    AgentServiceCheck, AgentServiceRegistration, CatalogNode, CatalogService, CheckStatus,
    HealthCheck, KvPair, Node, ServiceEntry, Weights,
};
pub use watch::{Watch, WatchOptions, WatchUpdate};
