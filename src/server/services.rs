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

impl Server {
    /// What a task's templates read of the catalog (`nomadService`, `nomadServices`), in the
    /// task's namespace, once the registrations pass `min_index` or `wait` ends; with the
    /// table's index. Values in consul-template's shapes (see `caravan_templates::data`).
    pub async fn template_services(
        &self,
        namespace: &str,
        dep: &caravan_templates::Dependency,
        min_index: u64,
        wait: std::time::Duration,
    ) -> Result<(serde_json::Value, u64), ServerError> {
        use caravan_templates::Dependency;
        use serde_json::{json, Value};
        if min_index > 0 {
            self.store
                .watches
                .wait_any(&[crate::state::Table::Services], min_index, wait)
                .await;
        }
        let snap = self.store.snapshot();
        let index = snap.table_index(crate::state::Table::Services).max(1);
        let sorted_tags = |tags: &[String]| {
            let mut t = tags.to_vec();
            t.sort();
            t
        };
        let value = match dep {
            Dependency::NomadService { name, tag, choose } => {
                let mut regs: Vec<_> = snap
                    .services_by_name(namespace, name)
                    .into_iter()
                    .filter(|r| tag.as_ref().is_none_or(|t| r.tags.contains(t)))
                    .collect();
                if let Some(c) = choose {
                    let (n, key) =
                        crate::state::services::parse_choose(c).map_err(ServerError::BadRequest)?;
                    regs = crate::state::services::choose(regs, n, &key);
                }
                Value::Array(
                    regs.iter()
                        .map(|r| {
                            json!({"ID": r.id, "Name": r.service_name, "Node": r.node_id,
                                   "Address": r.address, "Port": r.port,
                                   "Datacenter": r.datacenter, "Tags": sorted_tags(&r.tags),
                                   "JobID": r.job_id, "AllocID": r.alloc_id})
                        })
                        .collect(),
                )
            }
            Dependency::NomadServices => {
                let mut names: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
                    Default::default();
                for r in snap
                    .service_registrations
                    .values()
                    .filter(|r| r.namespace == namespace)
                {
                    names
                        .entry(&r.service_name)
                        .or_default()
                        .extend(r.tags.iter().map(String::as_str));
                }
                Value::Array(
                    names
                        .into_iter()
                        .map(|(n, tags)| json!({"Name": n, "Tags": tags}))
                        .collect(),
                )
            }
            other => {
                return Err(ServerError::BadRequest(format!(
                    "{other} is not a Nomad service read"
                )))
            }
        };
        Ok((value, index))
    }
}
