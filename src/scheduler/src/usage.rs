//! Per-node usage for one scheduling run: cpu, memory and disk in use, host ports taken, and
//! how many allocations of the job being scheduled sit there. Built lazily the first time a
//! node is visited (one `allocs_by_node` read), then kept current as the plan stops and places
//! allocations, so a placement never re-scans every allocation of the cluster.

use crate::snapshot::StateSnapshot;
use caravan_structs::{parse_port_ranges, Allocation, ComparableResources, Node};
use std::collections::{HashMap, HashSet};

/// What is in use on one node, counting the plan so far.
#[derive(Debug, Default, Clone)]
pub struct NodeUsage {
    pub used: ComparableResources,
    /// Host ports held by allocations or reserved by the operator.
    pub ports: HashSet<u16>,
    /// Existing allocations already collide on a port (a state bug; the node is skipped).
    pub collision: bool,
    /// Allocations of the job being scheduled, per task group.
    pub job_groups: HashMap<String, u32>,
    pub job_total: u32,
    /// Ports the operator reserved on the node (never freed).
    reserved: HashSet<u16>,
}

impl NodeUsage {
    fn add(&mut self, a: &Allocation, namespace: &str, job_id: &str) {
        self.used.add(&a.allocated_resources.comparable());
        // A port shows up both in `shared.ports` and in the network it belongs to.
        let mine: HashSet<u16> = a
            .allocated_resources
            .host_ports()
            .filter(|p| *p != 0)
            .collect();
        for p in mine {
            if !self.ports.insert(p) {
                self.collision = true;
            }
        }
        if a.job_id == job_id && a.namespace == namespace {
            *self.job_groups.entry(a.task_group.clone()).or_default() += 1;
            self.job_total += 1;
        }
    }

    fn remove(&mut self, a: &Allocation, namespace: &str, job_id: &str) {
        self.used.sub(&a.allocated_resources.comparable());
        for p in a.allocated_resources.host_ports() {
            if !self.reserved.contains(&p) {
                self.ports.remove(&p);
            }
        }
        if a.job_id == job_id && a.namespace == namespace {
            if let Some(c) = self.job_groups.get_mut(&a.task_group) {
                *c = c.saturating_sub(1);
            }
            self.job_total = self.job_total.saturating_sub(1);
        }
    }
}

/// The usage of every node visited in this run.
#[derive(Debug, Default)]
pub struct UsageIndex {
    namespace: String,
    job_id: String,
    nodes: HashMap<String, NodeUsage>,
    /// Allocation IDs the plan stops (their resources are free).
    stopped: HashSet<String>,
    /// Allocation IDs the plan placed, by node (so a rebuild would not double count).
    placed: HashSet<String>,
}

impl UsageIndex {
    pub fn new(namespace: &str, job_id: &str) -> Self {
        UsageIndex {
            namespace: namespace.into(),
            job_id: job_id.into(),
            ..Default::default()
        }
    }

    /// The node's usage, reading its allocations from the snapshot on first use.
    pub fn get(&mut self, state: &dyn StateSnapshot, node: &Node) -> &mut NodeUsage {
        if !self.nodes.contains_key(&node.id) {
            let mut u = NodeUsage::default();
            let spec = &node.reserved_resources.networks.reserved_host_ports;
            if !spec.is_empty() {
                match parse_port_ranges(spec) {
                    Ok(ports) => {
                        u.reserved.extend(ports.iter().copied());
                        u.ports.extend(ports);
                    }
                    Err(e) => {
                        tracing::warn!(node_id = %node.id, error = %e, "ignoring invalid reserved_host_ports")
                    }
                }
            }
            for a in state.allocs_by_node(&node.id) {
                if a.terminal() || self.stopped.contains(&a.id) || self.placed.contains(&a.id) {
                    continue;
                }
                u.add(&a, &self.namespace, &self.job_id);
            }
            self.nodes.insert(node.id.clone(), u);
        }
        // The entry was inserted above when missing.
        self.nodes.entry(node.id.clone()).or_default()
    }

    /// Whether the plan stops this allocation.
    pub fn is_stopped(&self, id: &str) -> bool {
        self.stopped.contains(id)
    }

    /// The plan stops `a`: its resources are free from now on.
    pub fn stop(&mut self, a: &Allocation) {
        if a.terminal() || !self.stopped.insert(a.id.clone()) {
            return;
        }
        if let Some(u) = self.nodes.get_mut(&a.node_id) {
            u.remove(a, &self.namespace, &self.job_id);
        }
    }

    /// Takes back a stop (its replacement could not be placed).
    pub fn undo_stop(&mut self, a: &Allocation) {
        if !self.stopped.remove(&a.id) {
            return;
        }
        if let Some(u) = self.nodes.get_mut(&a.node_id) {
            u.add(a, &self.namespace, &self.job_id);
        }
    }

    /// The plan places `a` on its node (whose usage was built when it was ranked).
    pub fn place(&mut self, a: &Allocation) {
        self.placed.insert(a.id.clone());
        if let Some(u) = self.nodes.get_mut(&a.node_id) {
            u.add(a, &self.namespace, &self.job_id);
        }
    }
}
