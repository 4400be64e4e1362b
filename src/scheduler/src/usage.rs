//! Per-node usage for one scheduling run: cpu, memory and disk in use, host ports taken, and
//! how many allocations of the job being scheduled sit there. Built lazily the first time a
//! node is visited — from the snapshot's per-node [`NodeAllocated`] summary when it keeps one,
//! else with one `allocs_by_node` read summed here — then kept current as the plan stops and
//! places allocations, so a placement never re-scans every allocation of the cluster.

use crate::fasthash::{FxHashMap, FxHashSet};
use crate::snapshot::StateSnapshot;
use caravan_structs::{parse_port_ranges, Allocation, ComparableResources, Node};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

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
    /// Where each visited node's usage sits in `usages`.
    slots: FxHashMap<String, usize>,
    usages: Vec<NodeUsage>,
    /// Allocation IDs the plan stops (their resources are free).
    stopped: FxHashSet<String>,
    /// The allocations the plan stops, by node: subtracted from a node's
    /// [`NodeAllocated`] summary when its usage is built from one.
    stopped_on: FxHashMap<String, Vec<Arc<Allocation>>>,
    /// Allocation IDs the plan placed, by node (so a rebuild would not double count).
    placed: FxHashSet<String>,
    /// The job's live allocations in the snapshot, by node: counted into `job_groups` when a
    /// node's usage is built from a [`NodeAllocated`] summary.
    job_allocs: FxHashMap<String, Vec<Arc<Allocation>>>,
}

impl UsageIndex {
    /// `job_allocs`: the job's non-terminal allocations in the snapshot.
    pub fn new(namespace: &str, job_id: &str, job_allocs: &[Arc<Allocation>]) -> Self {
        let mut by_node: FxHashMap<String, Vec<Arc<Allocation>>> = FxHashMap::default();
        for a in job_allocs.iter().filter(|a| !a.terminal()) {
            by_node
                .entry(a.node_id.clone())
                .or_default()
                .push(a.clone());
        }
        UsageIndex {
            namespace: namespace.into(),
            job_id: job_id.into(),
            job_allocs: by_node,
            ..Default::default()
        }
    }

    /// The node's slot (for [`UsageIndex::at`]), building its usage on first use: from the
    /// snapshot's per-node summary when it keeps one, otherwise by reading and summing the
    /// node's allocations. Callers
    /// that visit nodes by position keep the slot, so the hot path does not hash IDs.
    pub fn slot(&mut self, state: &dyn StateSnapshot, node: &Node) -> usize {
        if let Some(&s) = self.slots.get(&node.id) {
            return s;
        }
        let u = self.build(state, node);
        self.usages.push(u);
        let s = self.usages.len() - 1;
        self.slots.insert(node.id.clone(), s);
        s
    }

    /// The usage in `slot`, from [`UsageIndex::slot`].
    pub fn at(&mut self, slot: usize) -> &mut NodeUsage {
        &mut self.usages[slot]
    }

    fn build(&self, state: &dyn StateSnapshot, node: &Node) -> NodeUsage {
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
        let Some(mut sum) = state.node_allocated(&node.id) else {
            for a in state.allocs_by_node(&node.id) {
                if a.terminal() || self.stopped.contains(&a.id) || self.placed.contains(&a.id) {
                    continue;
                }
                u.add(&a, &self.namespace, &self.job_id);
            }
            return u;
        };
        // The summary counts every live allocation of the snapshot: take out what the plan
        // stops, then count the job's own allocations that stay.
        for a in self.stopped_on.get(&node.id).into_iter().flatten() {
            sum.remove(a);
        }
        u.used = sum.resources;
        for (p, holders) in sum.ports {
            if holders > 1 || !u.ports.insert(p) {
                u.collision = true;
            }
        }
        for a in self.job_allocs.get(&node.id).into_iter().flatten() {
            if !self.stopped.contains(&a.id) {
                *u.job_groups.entry(a.task_group.clone()).or_default() += 1;
                u.job_total += 1;
            }
        }
        u
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
        self.stopped_on
            .entry(a.node_id.clone())
            .or_default()
            .push(Arc::new(a.clone()));
        if let Some(&slot) = self.slots.get(&a.node_id) {
            self.usages[slot].remove(a, &self.namespace, &self.job_id);
        }
    }

    /// Takes back a stop (its replacement could not be placed).
    pub fn undo_stop(&mut self, a: &Allocation) {
        if !self.stopped.remove(&a.id) {
            return;
        }
        if let Some(v) = self.stopped_on.get_mut(&a.node_id) {
            v.retain(|s| s.id != a.id);
        }
        if let Some(&slot) = self.slots.get(&a.node_id) {
            self.usages[slot].add(a, &self.namespace, &self.job_id);
        }
    }

    /// The plan places `a` on its node (whose usage was built when it was ranked).
    pub fn place(&mut self, a: &Allocation) {
        self.placed.insert(a.id.clone());
        if let Some(&slot) = self.slots.get(&a.node_id) {
            self.usages[slot].add(a, &self.namespace, &self.job_id);
        }
    }
}

/// What a node's non-terminal allocations hold: a summary a state snapshot that keeps a
/// per-node index returns from [`crate::StateSnapshot::node_allocated`], so the scheduler
/// does not read and sum every allocation of every node it visits. [`NodeAllocated::add`]
/// and [`NodeAllocated::remove`] keep it the way the scheduler would count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeAllocated {
    /// CPU, memory and disk in use.
    pub resources: ComparableResources,
    /// Host ports in use, with how many allocations hold each (more than one is a collision).
    pub ports: std::collections::BTreeMap<u16, u32>,
    /// How many allocations are counted.
    pub allocs: u32,
}

impl NodeAllocated {
    /// Counts a non-terminal allocation (the caller skips terminal ones).
    pub fn add(&mut self, a: &Allocation) {
        self.resources.add(&a.allocated_resources.comparable());
        for p in alloc_ports(a) {
            *self.ports.entry(p).or_default() += 1;
        }
        self.allocs += 1;
    }

    /// Takes back what [`NodeAllocated::add`] counted for `a`.
    pub fn remove(&mut self, a: &Allocation) {
        self.resources.sub(&a.allocated_resources.comparable());
        for p in alloc_ports(a) {
            if let Some(c) = self.ports.get_mut(&p) {
                *c -= 1;
                if *c == 0 {
                    self.ports.remove(&p);
                }
            }
        }
        self.allocs = self.allocs.saturating_sub(1);
    }
}

/// The allocation's host ports, once each (a port shows up both in `shared.ports` and in the
/// network it belongs to).
fn alloc_ports(a: &Allocation) -> HashSet<u16> {
    a.allocated_resources
        .host_ports()
        .filter(|p| *p != 0)
        .collect()
}
