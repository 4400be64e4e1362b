//! The servers' side of Nomad's native service catalog: clients upsert and delete the
//! registrations of their allocations' `provider = "nomad"` services (Nomad's
//! `ServiceRegistration.Upsert` / `DeleteByID`), operators delete stale ones
//! (`DELETE /v1/service/:name/:id`), and [`prune_after`] keeps the catalog free of
//! registrations whose allocation finished, was garbage-collected, or whose node went down.

use super::command::Command;
use super::{Server, ServerError};
use crate::state::services::{prune, ServiceCommand, ServiceRegistration};
use crate::state::Tables;
use caravan_structs::NODE_STATUS_DOWN;

/// Called by the FSM after every entry: drops the registrations the entry made stale.
pub fn prune_after(t: &mut Tables, index: u64, cmd: &Command) {
    match cmd {
        Command::ApplyPlanResults { allocs, .. } | Command::AllocClientUpdate { allocs, .. } => {
            let ids: Vec<&str> = allocs.iter().map(|a| a.id.as_str()).collect();
            prune(t, index, &ids, None);
        }
        Command::GcDelete { plan } => {
            let ids: Vec<&str> = plan.allocs.iter().map(String::as_str).collect();
            prune(t, index, &ids, None);
        }
        Command::NodeStatusUpdate {
            node_id, status, ..
        } if status == NODE_STATUS_DOWN => prune(t, index, &[], Some(node_id)),
        _ => {}
    }
}

impl Server {
    /// A client's registrations for allocations it runs. Namespace, job, node and datacenter
    /// come from the allocation and its node, not the request.
    pub fn service_upsert(
        &self,
        node_id: &str,
        services: Vec<ServiceRegistration>,
    ) -> Result<u64, ServerError> {
        let snap = self.store.snapshot();
        let mut out = Vec::with_capacity(services.len());
        let mut problems = Vec::new();
        for mut s in services {
            let Some(alloc) = snap.allocs.get(&s.alloc_id) else {
                problems.push(format!(
                    "service registration {:?}: allocation {} not found",
                    s.id, s.alloc_id
                ));
                continue;
            };
            if alloc.node_id != node_id {
                problems.push(format!(
                    "service registration {:?}: allocation {} does not run on node {node_id}",
                    s.id, s.alloc_id
                ));
                continue;
            }
            if s.id.is_empty() || s.service_name.is_empty() {
                problems.push("service registration needs an ID and a service name".into());
                continue;
            }
            // Nomad's `ServiceRegistration.Validate`.
            if matches!(s.address.as_str(), "0.0.0.0" | "::" | "[::]") {
                problems.push("invalid service registration address".into());
                continue;
            }
            s.namespace = alloc.namespace.clone();
            s.job_id = alloc.job_id.clone();
            s.node_id = node_id.to_string();
            s.datacenter = snap
                .nodes
                .get(node_id)
                .map(|n| n.datacenter.clone())
                .unwrap_or_default();
            out.push(s);
        }
        if !problems.is_empty() {
            return Err(ServerError::BadRequest(problems.join("; ")));
        }
        if out.is_empty() {
            return Ok(snap.index);
        }
        Ok(self.raft_apply(Command::Services(ServiceCommand::Upsert { services: out })))
    }

    /// Removes registrations by ID (a client deregistering its allocation's services);
    /// unknown IDs are ignored.
    pub fn service_delete_ids(&self, ids: Vec<String>) -> u64 {
        let snap = self.store.snapshot();
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| snap.service_registrations.contains_key(id))
            .collect();
        if ids.is_empty() {
            return snap.index;
        }
        self.raft_apply(Command::Services(ServiceCommand::DeleteByIds { ids }))
    }

    /// `DELETE /v1/service/:name/:id`: one registration of `namespace`.
    pub fn service_delete(&self, namespace: &str, id: &str) -> Result<u64, ServerError> {
        let snap = self.store.snapshot();
        match snap.service_registrations.get(id) {
            Some(r) if r.namespace == namespace => {}
            _ => {
                return Err(ServerError::NotFound(
                    "service registration not found".into(),
                ))
            }
        }
        Ok(
            self.raft_apply(Command::Services(ServiceCommand::DeleteByIds {
                ids: vec![id.to_string()],
            })),
        )
    }
}
