//! The node drainer: moves allocations off draining nodes at the pace each group's `migrate`
//! block allows (`max_parallel` at a time, the next ones only once the replacements are
//! healthy), forces whatever is left when the deadline passes, and marks the drain complete
//! when the node holds nothing more.

use super::command::Command;
use super::Server;
use crate::state::{Table, Tables};
use caravan_structs::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// Nomad's `migrate` defaults.
const DEFAULT_MAX_PARALLEL: usize = 1;

pub async fn run(server: Arc<Server>) {
    let mut seen = 0u64;
    loop {
        server
            .store
            .watches
            .wait_any(&[Table::Nodes, Table::Allocs], seen, Duration::from_secs(1))
            .await;
        let snap = server.store.snapshot();
        seen = snap.max_index(&[Table::Nodes, Table::Allocs]);
        for node in snap.nodes.values().filter(|n| n.drain) {
            for cmd in step(&snap, node, time::now_nanos()) {
                server.raft_apply(cmd);
            }
        }
    }
}

/// The drain spec's force deadline, Unix nanoseconds; `None` = no deadline.
fn force_deadline(node: &Node) -> Option<i64> {
    let s = node.drain_strategy.as_ref()?;
    let deadline = s
        .pointer("/DrainSpec/Deadline")
        .and_then(|v| v.as_i64())
        .unwrap_or(0);
    if deadline < 0 {
        return Some(0);
    }
    if deadline == 0 {
        return None;
    }
    s.get("ForceDeadline")
        .and_then(|v| v.as_str())
        .and_then(crate::util::parse_rfc3339)
}

fn max_parallel(job: &Job, group: &str) -> usize {
    job.lookup_group(group)
        .and_then(|g| g.migrate.as_ref())
        .or(job.migrate.as_ref())
        .and_then(|m| m.get("MaxParallel"))
        .and_then(|v| v.as_u64())
        .map(|n| n as usize)
        .unwrap_or(DEFAULT_MAX_PARALLEL)
}

/// What the drainer does for one draining node now. Pure, for tests.
pub fn step(snap: &Tables, node: &Node, now: i64) -> Vec<Command> {
    let on_node: Vec<Arc<Allocation>> = snap
        .allocs_by_node(&node.id)
        .into_iter()
        .filter(|a| !a.terminal())
        .collect();
    if on_node.is_empty() {
        return vec![Command::NodeDrainUpdate {
            node_id: node.id.clone(),
            drain_strategy: None,
            mark_eligible: false,
            completed: true,
        }];
    }
    let forced = force_deadline(node).map(|d| now >= d).unwrap_or(false);
    let mut to_mark: Vec<String> = Vec::new();
    let mut jobs: BTreeSet<(String, String)> = BTreeSet::new();
    // Group the node's allocations by job and task group.
    let mut groups: BTreeMap<(String, String, String), Vec<Arc<Allocation>>> = BTreeMap::new();
    for a in on_node {
        groups
            .entry((a.namespace.clone(), a.job_id.clone(), a.task_group.clone()))
            .or_default()
            .push(a);
    }
    for ((ns, job_id, group), allocs) in groups {
        let pending: Vec<&Arc<Allocation>> = allocs
            .iter()
            .filter(|a| a.desired_transition.migrate != Some(true))
            .collect();
        if pending.is_empty() {
            continue;
        }
        let Some(job) = snap.job(&ns, &job_id) else {
            continue;
        };
        let budget = if forced {
            pending.len()
        } else {
            // In flight: marked but still here, or replaced by one not yet healthy.
            let all = snap.allocs_by_job(&ns, &job_id);
            let migrating: BTreeSet<&str> = all
                .iter()
                .filter(|a| a.task_group == group && a.desired_transition.migrate == Some(true))
                .map(|a| a.id.as_str())
                .collect();
            let still_here = allocs
                .iter()
                .filter(|a| a.desired_transition.migrate == Some(true))
                .count();
            let unhealthy_replacements = all
                .iter()
                .filter(|a| migrating.contains(a.previous_allocation.as_str()) && !a.terminal())
                .filter(|a| a.deployment_status.as_ref().and_then(|d| d.healthy) != Some(true))
                .count();
            max_parallel(&job, &group).saturating_sub(still_here + unhealthy_replacements)
        };
        let mut pending = pending;
        pending.sort_by_key(|a| a.index());
        for a in pending.into_iter().take(budget) {
            to_mark.push(a.id.clone());
            jobs.insert((ns.clone(), job_id.clone()));
        }
    }
    if to_mark.is_empty() {
        return vec![];
    }
    let evals = jobs
        .iter()
        .filter_map(|(ns, id)| snap.job(ns, id))
        .map(|j| {
            let mut e = Evaluation::for_job(&j, TRIGGER_NODE_UPDATE);
            e.node_id = node.id.clone();
            e
        })
        .collect();
    vec![Command::AllocsMigrate {
        alloc_ids: to_mark,
        evals,
    }]
}

/// Nomad's `DrainStrategy` for a new drain: the spec, when it started and when it is forced.
pub fn new_strategy(deadline: i64, ignore_system_jobs: bool, now: i64) -> serde_json::Value {
    let force = if deadline > 0 {
        crate::util::rfc3339(now + deadline)
    } else {
        "0001-01-01T00:00:00Z".to_string()
    };
    serde_json::json!({
        "DrainSpec": {"Deadline": deadline, "IgnoreSystemJobs": ignore_system_jobs},
        "ForceDeadline": force,
        "StartedAt": crate::util::rfc3339(now),
    })
}
