//! The client's view of the servers: an RPC-shaped interface (register, heartbeat, blocking
//! get-allocs, update allocs, and reads of one allocation or node). The dev agent uses the in-process transport; the clustering
//! issue adds a network one without touching the client.

use crate::server::Server;
use caravan_driver::async_trait;
use caravan_structs::{Allocation, Node};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("rpc error: {0}")]
pub struct RpcError(pub String);

#[async_trait]
pub trait ServerRpc: Send + Sync {
    /// Registers the node; returns the heartbeat TTL.
    async fn register(&self, node: Node) -> Result<Duration, RpcError>;
    /// Heartbeat with the node's status; returns the next TTL.
    async fn heartbeat(&self, node_id: &str, status: &str) -> Result<Duration, RpcError>;
    /// Every allocation placed on the node, once the allocations change past `min_index`
    /// (or `wait` passes).
    async fn get_allocs(
        &self,
        node_id: &str,
        min_index: u64,
        wait: Duration,
    ) -> Result<(Vec<Arc<Allocation>>, u64), RpcError>;
    /// Reports client status, task states and deployment health.
    async fn update_allocs(&self, allocs: Vec<Allocation>) -> Result<(), RpcError>;
    /// One allocation, wherever it runs (a replacement's predecessor on another node).
    async fn get_alloc(&self, alloc_id: &str) -> Result<Option<Arc<Allocation>>, RpcError>;
    /// One node (where a predecessor's data is fetched from).
    async fn get_node(&self, node_id: &str) -> Result<Option<Arc<Node>>, RpcError>;
    /// The token the node that ran `alloc_id` accepts for its disk snapshot.
    async fn migrate_token(&self, alloc_id: &str) -> Result<Option<String>, RpcError>;
    /// Fresh workload identity JWTs for `task` of `alloc_id`, by identity name (renewal of
    /// identities with a `ttl`, Nomad's `Alloc.SignIdentities`).
    async fn sign_identities(
        &self,
        alloc_id: &str,
        task: &str,
        names: Vec<String>,
    ) -> Result<std::collections::BTreeMap<String, String>, RpcError>;
    /// A Nomad variable or variable listing a template of `task` reads, with the task's
    /// workload identity, once the variables change past `min_index` (or `wait` passes): the
    /// value in `caravan-templates`' shape and the index to wait from next.
    async fn template_var(
        &self,
        alloc_id: &str,
        task: &str,
        dep: &caravan_templates::Dependency,
        min_index: u64,
        wait: Duration,
    ) -> Result<(serde_json::Value, u64), RpcError> {
        let _ = (alloc_id, task, min_index, wait);
        Err(RpcError(format!("this transport cannot read {dep}")))
    }

    /// Takes (`acquire`) or gives back a coordinated-restart slot for an allocation; whether
    /// it holds one afterwards.
    async fn restart_slot(&self, alloc_id: &str, acquire: bool) -> Result<bool, RpcError> {
        let _ = (alloc_id, acquire);
        Err(RpcError(
            "this transport cannot coordinate template restarts".into(),
        ))
    }

    /// Registers `provider = "nomad"` services of allocations running on `node_id` in the
    /// servers' catalog (Nomad's `ServiceRegistration.Upsert`).
    async fn upsert_services(
        &self,
        node_id: &str,
        services: Vec<crate::state::services::ServiceRegistration>,
    ) -> Result<(), RpcError> {
        let _ = (node_id, services);
        Err(RpcError(
            "this transport cannot register Nomad services".into(),
        ))
    }

    /// Removes service registrations by ID (Nomad's `ServiceRegistration.DeleteByID`).
    async fn delete_services(&self, ids: Vec<String>) -> Result<(), RpcError> {
        let _ = ids;
        Err(RpcError(
            "this transport cannot deregister Nomad services".into(),
        ))
    }
}

/// Calls the server in the same process.
pub struct InProcess(pub Arc<Server>);

#[async_trait]
impl ServerRpc for InProcess {
    async fn upsert_services(
        &self,
        node_id: &str,
        services: Vec<crate::state::services::ServiceRegistration>,
    ) -> Result<(), RpcError> {
        self.0
            .service_upsert(node_id, services)
            .map(|_| ())
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn delete_services(&self, ids: Vec<String>) -> Result<(), RpcError> {
        self.0.service_delete_ids(ids);
        Ok(())
    }

    async fn restart_slot(&self, alloc_id: &str, acquire: bool) -> Result<bool, RpcError> {
        self.0
            .restart_slot(alloc_id, acquire)
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn register(&self, node: Node) -> Result<Duration, RpcError> {
        self.0
            .node_register(node)
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn heartbeat(&self, node_id: &str, status: &str) -> Result<Duration, RpcError> {
        self.0
            .node_update_status(node_id, status)
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn get_allocs(
        &self,
        node_id: &str,
        min_index: u64,
        wait: Duration,
    ) -> Result<(Vec<Arc<Allocation>>, u64), RpcError> {
        Ok(self.0.client_allocs(node_id, min_index, wait).await)
    }

    async fn update_allocs(&self, allocs: Vec<Allocation>) -> Result<(), RpcError> {
        self.0
            .update_allocs_from_client(allocs)
            .map(|_| ())
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn get_alloc(&self, alloc_id: &str) -> Result<Option<Arc<Allocation>>, RpcError> {
        Ok(self.0.store.snapshot().allocs.get(alloc_id).cloned())
    }

    async fn get_node(&self, node_id: &str) -> Result<Option<Arc<Node>>, RpcError> {
        Ok(self.0.store.snapshot().nodes.get(node_id).cloned())
    }

    async fn migrate_token(&self, alloc_id: &str) -> Result<Option<String>, RpcError> {
        let snap = self.0.store.snapshot();
        Ok(snap
            .allocs
            .get(alloc_id)
            .and_then(|a| snap.nodes.get(&a.node_id))
            .map(|n| crate::util::migrate_token(&n.secret_id, alloc_id)))
    }

    async fn sign_identities(
        &self,
        alloc_id: &str,
        task: &str,
        names: Vec<String>,
    ) -> Result<std::collections::BTreeMap<String, String>, RpcError> {
        self.0
            .sign_task_identities(alloc_id, task, &names)
            .map_err(|e| RpcError(e.to_string()))
    }

    async fn template_var(
        &self,
        alloc_id: &str,
        task: &str,
        dep: &caravan_templates::Dependency,
        min_index: u64,
        wait: Duration,
    ) -> Result<(serde_json::Value, u64), RpcError> {
        self.0
            .template_var(alloc_id, task, dep, min_index, wait)
            .await
            .map_err(|e| RpcError(e.to_string()))
    }
}
