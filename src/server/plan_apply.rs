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
