//! The plan applier: one plan at a time, it re-checks each node's capacity against the latest
//! state (schedulers plan on snapshots, so two may race for the same node), commits the nodes
//! that still fit and rejects the rest, so the scheduler refreshes and retries.

use super::command::Command;
use super::Server;
use crate::state::Tables;
use caravan_structs::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub type PlanRequest = (Plan, oneshot::Sender<PlanResult>);

/// Runs the applier until the channel closes.
pub async fn run(server: Arc<Server>, mut rx: mpsc::Receiver<PlanRequest>) {
    while let Some((plan, reply)) = rx.recv().await {
        let result = apply_plan(&server, plan);
        let _ = reply.send(result);
    }
}

fn apply_plan(server: &Server, plan: Plan) -> PlanResult {
    let snap = server.store.snapshot();
    let mut result = PlanResult::default();
    let mut commit: Vec<Allocation> = Vec::new();

    for (node_id, stops) in &plan.node_update {
        result.node_update.insert(node_id.clone(), stops.clone());
        commit.extend(stops.iter().cloned());
    }
    for (node_id, allocs) in &plan.node_allocation {
        match node_fits(&snap, node_id, &plan) {
            Ok(()) => {
                result
                    .node_allocation
                    .insert(node_id.clone(), allocs.clone());
                commit.extend(allocs.iter().cloned());
            }
            Err(why) => {
                tracing::debug!(node = %node_id, %why, "plan rejected for node");
                result.rejected_nodes.push(node_id.clone());
            }
        }
    }
    if !result.rejected_nodes.is_empty() && plan.all_at_once {
        // All or nothing: commit only the stops.
        result.node_allocation.clear();
        commit.retain(|a| a.server_terminal());
    }
    sign_identities(server, &snap, &mut commit);
    if commit.is_empty() && plan.deployment.is_none() && plan.deployment_updates.is_empty() {
        result.refresh_index = if result.rejected_nodes.is_empty() {
            0
        } else {
            snap.index
        };
        return result;
    }
    let index = server.raft_apply(Command::ApplyPlanResults {
        allocs: commit,
        deployment: plan.deployment.clone(),
        deployment_updates: plan.deployment_updates.clone(),
        eval_id: plan.eval_id.clone(),
    });
    result.alloc_index = index;
    if !result.rejected_nodes.is_empty() {
        result.refresh_index = index;
    }
    result
}

/// Signs the workload identities of every allocation the plan places or updates (not those
/// it stops), as Nomad's applier does. Without a key the allocation still commits; its tasks
/// that ask for their token then fail with why.
fn sign_identities(server: &Server, snap: &Tables, commit: &mut [Allocation]) {
    for a in commit.iter_mut().filter(|a| !a.server_terminal()) {
        let Some(job) = a.job.clone().or_else(|| snap.job(&a.namespace, &a.job_id)) else {
            continue;
        };
        if let Err(e) = server.sign_alloc_identities(&job, a) {
            tracing::error!(alloc = %a.id, "cannot sign workload identities: {e}");
        }
    }
}

/// Whether the node can hold what the plan puts on it, given everything already there.
fn node_fits(snap: &Tables, node_id: &str, plan: &Plan) -> Result<(), String> {
    let node = snap
        .nodes
        .get(node_id)
        .ok_or_else(|| "node does not exist".to_string())?;
    let placing = plan
        .node_allocation
        .get(node_id)
        .map(|v| v.as_slice())
        .unwrap_or(&[]);
    let new_ids: HashSet<&str> = placing.iter().map(|a| a.id.as_str()).collect();
    let has_new = placing.iter().any(|a| !snap.allocs.contains_key(&a.id));
    if has_new && node.status != NODE_STATUS_READY {
        return Err(format!("node is {}", node.status));
    }
    let stopping: HashSet<&str> = plan
        .node_update
        .get(node_id)
        .map(|v| v.iter().map(|a| a.id.as_str()).collect())
        .unwrap_or_default();

    let mut used = ComparableResources::default();
    let mut ports: HashMap<u16, String> = HashMap::new();
    for p in
        parse_port_ranges(&node.reserved_resources.networks.reserved_host_ports).unwrap_or_default()
    {
        ports.insert(p, "reserved".into());
    }
    let existing = snap.allocs_by_node(node_id);
    let live = existing.iter().filter(|a| {
        !a.terminal() && !stopping.contains(a.id.as_str()) && !new_ids.contains(a.id.as_str())
    });
    for a in live.map(|a| a.as_ref()).chain(placing.iter()) {
        if a.terminal() {
            continue;
        }
        used.add(&a.allocated_resources.comparable());
        for p in a.allocated_resources.host_ports() {
            if let Some(owner) = ports.insert(p, a.id.clone()) {
                if owner != a.id {
                    return Err(format!("port {p} collision"));
                }
            }
        }
    }
    match node.comparable_capacity().superset(&used) {
        None => Ok(()),
        Some(dim) => Err(format!("{dim} exhausted")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;

    fn node(mem: i64) -> Node {
        let mut n = Node {
            id: "n1".into(),
            name: "n1".into(),
            status: NODE_STATUS_READY.into(),
            ..Default::default()
        };
        n.node_resources.cpu.cpu_shares = 1000;
        n.node_resources.memory.memory_mb = mem;
        n.node_resources.disk.disk_mb = 10_000;
        n
    }

    fn alloc(id: &str, mem: i64, port: u16) -> Allocation {
        let mut a = Allocation {
            id: id.into(),
            node_id: "n1".into(),
            job_id: "j".into(),
            ..Default::default()
        };
        a.allocated_resources.tasks.insert(
            "t".into(),
            AllocatedTaskResources {
                memory: AllocatedMemoryResources {
                    memory_mb: mem,
                    memory_max_mb: 0,
                },
                ..Default::default()
            },
        );
        if port > 0 {
            a.allocated_resources
                .shared
                .ports
                .push(AllocatedPortMapping {
                    label: "http".into(),
                    value: port,
                    ..Default::default()
                });
        }
        a
    }

    fn plan_with(allocs: Vec<Allocation>) -> Plan {
        let mut p = Plan::default();
        for a in allocs {
            p.append_alloc(a);
        }
        p
    }

    #[test]
    fn rechecks_capacity_and_rejects_what_no_longer_fits() {
        let s = Server::new(ServerConfig::default());
        s.raft_apply(Command::NodeRegister { node: node(512) });
        let first = apply_plan(&s, plan_with(vec![alloc("a1", 300, 0)]));
        assert!(first.rejected_nodes.is_empty());
        assert_eq!(first.refresh_index, 0);
        // A scheduler working from an older snapshot tries to use the same memory.
        let racing = plan_with(vec![alloc("a2", 300, 0)]);
        let second = apply_plan(&s, racing.clone());
        assert_eq!(second.rejected_nodes, vec!["n1".to_string()]);
        assert!(second.refresh_index > 0);
        assert!(!second.full_commit(&racing));
        assert!(!s.store.snapshot().allocs.contains_key("a2"));
        // Stopping the first alloc in the same plan frees the room.
        let mut replace = plan_with(vec![alloc("a3", 300, 0)]);
        replace.append_stop(
            &alloc("a1", 300, 0),
            "alloc not needed due to job update",
            None,
        );
        let third = apply_plan(&s, replace);
        assert!(third.rejected_nodes.is_empty());
        assert!(s.store.snapshot().allocs.contains_key("a3"));
    }

    #[test]
    fn port_collisions_are_rejected() {
        let s = Server::new(ServerConfig::default());
        let mut n = node(4096);
        n.reserved_resources.networks.reserved_host_ports = "22".into();
        s.raft_apply(Command::NodeRegister { node: n });
        assert!(apply_plan(&s, plan_with(vec![alloc("a1", 10, 8080)]))
            .rejected_nodes
            .is_empty());
        assert_eq!(
            apply_plan(&s, plan_with(vec![alloc("a2", 10, 8080)]))
                .rejected_nodes
                .len(),
            1
        );
        assert_eq!(
            apply_plan(&s, plan_with(vec![alloc("a3", 10, 22)]))
                .rejected_nodes
                .len(),
            1
        );
    }
}
