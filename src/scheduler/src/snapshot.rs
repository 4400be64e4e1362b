//! The read-only view of cluster state the scheduler works from, and [`MemSnapshot`], an
//! in-memory implementation for tests and benchmarks.

use crate::usage::NodeAllocated;
use caravan_structs::{Allocation, Deployment, Job, Node, Plan};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// A consistent snapshot of the state store at one index.
pub trait StateSnapshot {
    /// The Raft index the snapshot was taken at.
    fn index(&self) -> u64;
    fn job(&self, namespace: &str, id: &str) -> Option<Arc<Job>>;
    /// Every node, whatever its status; the scheduler filters.
    fn nodes(&self) -> Vec<Arc<Node>>;
    fn node(&self, id: &str) -> Option<Arc<Node>>;
    /// Every allocation of the job, terminal ones included.
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Allocation>>;
    /// Every allocation on the node, terminal ones included (only non-terminal ones use
    /// capacity).
    fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>>;
    fn latest_deployment(
        &self,
        namespace: &str,
        job_id: &str,
    ) -> Option<caravan_structs::Deployment>;
    /// The sum of the node's non-terminal allocations, for a snapshot that keeps such a
    /// per-node index (it must count exactly what `allocs_by_node` holds). `None`, the
    /// default: the scheduler reads `allocs_by_node` and sums them itself.
    fn node_allocated(&self, _node_id: &str) -> Option<crate::usage::NodeAllocated> {
        None
    }
}

/// An in-memory [`StateSnapshot`]: what the tests and `caravan-bench scheduler` use.
#[derive(Debug, Clone, Default)]
pub struct MemSnapshot {
    pub index: u64,
    jobs: HashMap<(String, String), Arc<Job>>,
    nodes: BTreeMap<String, Arc<Node>>,
    allocs: HashMap<String, Arc<Allocation>>,
    by_job: HashMap<(String, String), Vec<String>>,
    by_node: HashMap<String, Vec<String>>,
    deployments: HashMap<(String, String), Deployment>,
    /// Per-node sums of non-terminal allocations, when [`MemSnapshot::keep_node_index`] is on.
    node_index: Option<HashMap<String, NodeAllocated>>,
}

impl MemSnapshot {
    pub fn new() -> Self {
        MemSnapshot::default()
    }

    /// Keeps (or stops keeping) a per-node index of allocated resources and answers
    /// [`StateSnapshot::node_allocated`] from it, as a state store with such an index would.
    pub fn keep_node_index(&mut self, on: bool) {
        self.node_index = on.then(|| {
            let mut idx: HashMap<String, NodeAllocated> = HashMap::new();
            for a in self.allocs.values().filter(|a| !a.terminal()) {
                idx.entry(a.node_id.clone()).or_default().add(a);
            }
            idx
        });
    }

    /// Adds or replaces a job; returns the shared copy allocations should point at.
    pub fn upsert_job(&mut self, job: Job) -> Arc<Job> {
        self.index += 1;
        let job = Arc::new(job);
        self.jobs
            .insert((job.namespace.clone(), job.id.clone()), job.clone());
        job
    }

    pub fn delete_job(&mut self, namespace: &str, id: &str) {
        self.index += 1;
        self.jobs.remove(&(namespace.to_string(), id.to_string()));
    }

    pub fn upsert_node(&mut self, node: Node) -> Arc<Node> {
        self.index += 1;
        let node = Arc::new(node);
        self.nodes.insert(node.id.clone(), node.clone());
        node
    }

    /// Adds or replaces an allocation (by ID), keeping the job and node indexes.
    pub fn upsert_alloc(&mut self, alloc: Allocation) {
        self.index += 1;
        let id = alloc.id.clone();
        if let Some(idx) = &mut self.node_index {
            if let Some(old) = self.allocs.get(&id).filter(|o| !o.terminal()) {
                if let Some(u) = idx.get_mut(&old.node_id) {
                    u.remove(old);
                }
            }
            if !alloc.terminal() {
                idx.entry(alloc.node_id.clone()).or_default().add(&alloc);
            }
        }
        if let Some(old) = self.allocs.get(&id) {
            if old.node_id != alloc.node_id {
                if let Some(v) = self.by_node.get_mut(&old.node_id) {
                    v.retain(|x| x != &id);
                }
                self.by_node
                    .entry(alloc.node_id.clone())
                    .or_default()
                    .push(id.clone());
            }
        } else {
            self.by_job
                .entry((alloc.namespace.clone(), alloc.job_id.clone()))
                .or_default()
                .push(id.clone());
            self.by_node
                .entry(alloc.node_id.clone())
                .or_default()
                .push(id.clone());
        }
        self.allocs.insert(id, Arc::new(alloc));
    }

    pub fn alloc(&self, id: &str) -> Option<Arc<Allocation>> {
        self.allocs.get(id).cloned()
    }

    /// Every allocation in the snapshot.
    pub fn all_allocs(&self) -> Vec<Arc<Allocation>> {
        self.allocs.values().cloned().collect()
    }

    pub fn upsert_deployment(&mut self, d: Deployment) {
        self.index += 1;
        self.deployments
            .insert((d.namespace.clone(), d.job_id.clone()), d);
    }

    /// Commits a whole plan, as a plan applier that accepts everything would: stops,
    /// placements and in-place updates, the new deployment and deployment status updates.
    /// Sets `next_allocation` on the allocations new ones replace.
    pub fn apply_plan(&mut self, plan: &Plan) {
        for allocs in plan.node_update.values() {
            for a in allocs {
                self.upsert_alloc(a.clone());
            }
        }
        for allocs in plan.node_allocation.values() {
            for a in allocs {
                if !a.previous_allocation.is_empty() {
                    if let Some(prev) = self.allocs.get(&a.previous_allocation) {
                        let mut prev = (**prev).clone();
                        prev.next_allocation = a.id.clone();
                        self.upsert_alloc(prev);
                    }
                }
                self.upsert_alloc(a.clone());
            }
        }
        if let Some(d) = &plan.deployment {
            self.upsert_deployment(d.clone());
        }
        for u in &plan.deployment_updates {
            let key = self
                .deployments
                .iter()
                .find(|(_, d)| d.id == u.deployment_id)
                .map(|(k, _)| k.clone());
            if let Some(k) = key {
                if let Some(d) = self.deployments.get_mut(&k) {
                    d.status = u.status.clone();
                    d.status_description = u.status_description.clone();
                }
            }
        }
    }
}

impl StateSnapshot for MemSnapshot {
    fn index(&self) -> u64 {
        self.index
    }
    fn job(&self, namespace: &str, id: &str) -> Option<Arc<Job>> {
        self.jobs
            .get(&(namespace.to_string(), id.to_string()))
            .cloned()
    }
    fn nodes(&self) -> Vec<Arc<Node>> {
        self.nodes.values().cloned().collect()
    }
    fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.nodes.get(id).cloned()
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Allocation>> {
        self.by_job
            .get(&(namespace.to_string(), job_id.to_string()))
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| self.allocs.get(i).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>> {
        self.by_node
            .get(node_id)
            .map(|ids| {
                ids.iter()
                    .filter_map(|i| self.allocs.get(i).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }
    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<Deployment> {
        self.deployments
            .get(&(namespace.to_string(), job_id.to_string()))
            .cloned()
    }
    fn node_allocated(&self, node_id: &str) -> Option<NodeAllocated> {
        let idx = self.node_index.as_ref()?;
        Some(idx.get(node_id).cloned().unwrap_or_default())
    }
}
