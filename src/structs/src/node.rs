//! Client nodes: what a client fingerprinted and registered, and its status.

use crate::resources::{NodeReservedResources, NodeResources};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const NODE_STATUS_INIT: &str = "initializing";
pub const NODE_STATUS_READY: &str = "ready";
pub const NODE_STATUS_DOWN: &str = "down";
pub const NODE_STATUS_DISCONNECTED: &str = "disconnected";

pub const NODE_ELIGIBLE: &str = "eligible";
pub const NODE_INELIGIBLE: &str = "ineligible";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "SecretID", skip_serializing_if = "String::is_empty")]
    pub secret_id: String,
    pub datacenter: String,
    pub name: String,
    #[serde(rename = "HTTPAddr")]
    pub http_addr: String,
    #[serde(rename = "TLSEnabled")]
    pub tls_enabled: bool,
    pub attributes: BTreeMap<String, String>,
    pub node_resources: NodeResources,
    pub reserved_resources: NodeReservedResources,
    pub links: BTreeMap<String, String>,
    pub meta: BTreeMap<String, String>,
    pub node_class: String,
    pub node_pool: String,
    pub computed_class: String,
    pub drain: bool,
    pub drain_strategy: Option<serde_json::Value>,
    pub scheduling_eligibility: String,
    pub status: String,
    pub status_description: String,
    pub status_updated_at: i64,
    pub events: Vec<NodeEvent>,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub host_volumes: BTreeMap<String, serde_json::Value>,
    pub host_networks: BTreeMap<String, serde_json::Value>,
    pub node_max_allocs: i32,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            id: String::new(),
            secret_id: String::new(),
            datacenter: "dc1".into(),
            name: String::new(),
            http_addr: String::new(),
            tls_enabled: false,
            attributes: BTreeMap::new(),
            node_resources: NodeResources::default(),
            reserved_resources: NodeReservedResources::default(),
            links: BTreeMap::new(),
            meta: BTreeMap::new(),
            node_class: String::new(),
            node_pool: crate::DEFAULT_NODE_POOL.into(),
            computed_class: String::new(),
            drain: false,
            drain_strategy: None,
            scheduling_eligibility: NODE_ELIGIBLE.into(),
            status: NODE_STATUS_INIT.into(),
            status_description: String::new(),
            status_updated_at: 0,
            events: vec![],
            drivers: BTreeMap::new(),
            host_volumes: BTreeMap::new(),
            host_networks: BTreeMap::new(),
            node_max_allocs: 0,
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl Node {
    /// Whether the scheduler may place new work here.
    pub fn ready_and_eligible(&self) -> bool {
        self.status == NODE_STATUS_READY
            && self.scheduling_eligibility == NODE_ELIGIBLE
            && !self.drain
    }

    /// A stable hash of what makes nodes interchangeable for feasibility (Nomad's computed
    /// class): attributes except `unique.*`, meta, class, pool, datacenter and drivers.
    pub fn compute_class(&mut self) {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.datacenter.hash(&mut h);
        self.node_class.hash(&mut h);
        self.node_pool.hash(&mut h);
        for (k, v) in &self.attributes {
            if !k.starts_with("unique.") {
                k.hash(&mut h);
                v.hash(&mut h);
            }
        }
        for (k, v) in &self.meta {
            if !k.starts_with("unique.") {
                k.hash(&mut h);
                v.hash(&mut h);
            }
        }
        for (k, d) in &self.drivers {
            k.hash(&mut h);
            d.detected.hash(&mut h);
            d.healthy.hash(&mut h);
        }
        self.computed_class = format!("v1:{}", h.finish());
    }

    /// Free capacity after the operator's reservation, before any allocation.
    pub fn comparable_capacity(&self) -> crate::ComparableResources {
        crate::ComparableResources {
            cpu_shares: self.node_resources.cpu.cpu_shares - self.reserved_resources.cpu.cpu_shares,
            memory_mb: self.node_resources.memory.memory_mb
                - self.reserved_resources.memory.memory_mb,
            disk_mb: self.node_resources.disk.disk_mb - self.reserved_resources.disk.disk_mb,
        }
    }

    /// The stub `GET /v1/nodes` lists.
    pub fn stub(&self) -> NodeListStub {
        NodeListStub {
            address: self
                .attributes
                .get("unique.network.ip-address")
                .cloned()
                .unwrap_or_default(),
            id: self.id.clone(),
            attributes: BTreeMap::new(),
            datacenter: self.datacenter.clone(),
            name: self.name.clone(),
            node_class: self.node_class.clone(),
            node_pool: self.node_pool.clone(),
            version: self
                .attributes
                .get("nomad.version")
                .cloned()
                .unwrap_or_default(),
            drain: self.drain,
            scheduling_eligibility: self.scheduling_eligibility.clone(),
            status: self.status.clone(),
            status_description: self.status_description.clone(),
            drivers: self.drivers.clone(),
            last_drain: None,
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeListStub {
    pub address: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    pub datacenter: String,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    pub version: String,
    pub drain: bool,
    pub scheduling_eligibility: String,
    pub status: String,
    pub status_description: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub last_drain: Option<serde_json::Value>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A driver's fingerprint on a node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverInfo {
    pub attributes: BTreeMap<String, String>,
    pub detected: bool,
    pub healthy: bool,
    pub health_description: String,
    pub update_time: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeEvent {
    pub message: String,
    pub subsystem: String,
    pub details: BTreeMap<String, String>,
    pub timestamp: String,
    pub create_index: u64,
}
