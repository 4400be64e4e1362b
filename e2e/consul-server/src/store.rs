//! The in-memory state of the test server: KV entries, services and checks, one global
//! Raft-like index, and a `tokio::sync::watch` that wakes blocking queries on every write.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;

/// One KV entry, as `/v1/kv` reports it.
#[derive(Debug, Clone)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub flags: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub lock_index: u64,
}

/// A registered service instance on this (only) node.
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub tags: Vec<String>,
    pub address: String,
    pub port: u16,
    pub meta: BTreeMap<String, String>,
    pub tagged_addresses: serde_json::Map<String, serde_json::Value>,
    pub weights: (i64, i64),
    pub enable_tag_override: bool,
    pub socket_path: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// How a check finds out its status.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// Updated through `/v1/agent/check/{pass,warn,fail,update}`; critical when the TTL runs out.
    Ttl { ttl: Duration },
    /// An HTTP request every interval; 2xx passing, 429 warning, anything else critical.
    Http {
        url: String,
        method: String,
        headers: BTreeMap<String, Vec<String>>,
        body: String,
        tls_skip_verify: bool,
        interval: Duration,
        timeout: Duration,
    },
    /// A TCP connect every interval.
    Tcp {
        address: String,
        interval: Duration,
        timeout: Duration,
    },
}

impl CheckKind {
    pub fn type_name(&self) -> &'static str {
        match self {
            CheckKind::Ttl { .. } => "ttl",
            CheckKind::Http { .. } => "http",
            CheckKind::Tcp { .. } => "tcp",
        }
    }
}

/// A health check registered with the agent.
#[derive(Debug)]
pub struct Check {
    pub id: String,
    pub name: String,
    pub status: String,
    pub notes: String,
    pub output: String,
    pub service_id: String,
    pub kind: CheckKind,
    pub definition: serde_json::Value,
    pub deregister_critical_after: Option<Duration>,
    pub critical_since: Option<Instant>,
    pub success_before_passing: u32,
    pub failures_before_warning: u32,
    pub failures_before_critical: u32,
    pub successes: u32,
    pub failures: u32,
    pub create_index: u64,
    pub modify_index: u64,
    /// The task running the check (HTTP/TCP) or watching its TTL; aborted on deregistration.
    pub runner: Option<AbortHandle>,
    /// Wakes the TTL watcher when the check is refreshed.
    pub ttl_refresh: Arc<Notify>,
    /// When a TTL check expires unless refreshed.
    pub ttl_deadline: Option<Instant>,
}

impl Drop for Check {
    fn drop(&mut self) {
        if let Some(runner) = self.runner.take() {
            runner.abort();
        }
    }
}

/// Fixed facts about the single node this server pretends to be.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub id: String,
    pub address: String,
    pub datacenter: String,
}

/// Everything the server knows. Guarded by one mutex; never held across an await.
#[derive(Debug)]
pub struct Data {
    pub index: u64,
    pub node: NodeInfo,
    pub node_index: u64,
    pub kv: BTreeMap<String, KvEntry>,
    /// Deleted keys and the index of their deletion, so prefix queries see deletes.
    pub tombstones: BTreeMap<String, u64>,
    pub kv_index: u64,
    pub services: BTreeMap<String, Service>,
    pub services_index: u64,
    /// Last change index per service name (registrations and their checks).
    pub service_name_index: BTreeMap<String, u64>,
    pub checks: BTreeMap<String, Check>,
    pub checks_index: u64,
}

impl Data {
    /// Takes the next index for a write.
    pub fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    /// Records that something about service `name` changed at `index`.
    pub fn touch_service(&mut self, name: &str, index: u64) {
        self.service_name_index.insert(name.to_string(), index);
        self.services_index = index;
    }

    /// The index a query about service `name` reports.
    pub fn index_for_service(&self, name: &str) -> u64 {
        self.service_name_index
            .get(name)
            .copied()
            .unwrap_or(self.services_index.max(self.node_index))
    }

    /// The name of the service a check belongs to, if any.
    pub fn check_service_name(&self, check: &Check) -> Option<String> {
        self.services.get(&check.service_id).map(|s| s.name.clone())
    }
}

/// The shared store: data plus the index watch that blocking queries wait on.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Mutex<Data>>,
    index_tx: Arc<watch::Sender<u64>>,
}

impl Store {
    pub fn new(node: NodeInfo) -> Self {
        let data = Data {
            index: 1,
            node,
            node_index: 1,
            kv: BTreeMap::new(),
            tombstones: BTreeMap::new(),
            kv_index: 1,
            services: BTreeMap::new(),
            services_index: 1,
            service_name_index: BTreeMap::from([("consul".to_string(), 1)]),
            checks: BTreeMap::new(),
            checks_index: 1,
        };
        let (tx, _) = watch::channel(1);
        Store {
            inner: Arc::new(Mutex::new(data)),
            index_tx: Arc::new(tx),
        }
    }

    /// Locks the data for reading or writing (a poisoned lock is recovered: state stays usable).
    pub fn lock(&self) -> MutexGuard<'_, Data> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a write and wakes every blocking query if the index moved.
    pub fn write<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        let (out, index) = {
            let mut data = self.lock();
            let out = f(&mut data);
            (out, data.index)
        };
        self.index_tx.send_if_modified(|current| {
            if *current != index {
                *current = index;
                true
            } else {
                false
            }
        });
        out
    }

    /// A receiver that changes whenever the global index moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.index_tx.subscribe()
    }
}
