//! Plans: what a scheduler proposes for one evaluation, and what the plan applier committed.

use crate::alloc::{AllocMetric, Allocation};
use crate::deployment::Deployment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scheduler's proposal. The plan applier re-checks each node's capacity and may commit
/// only part of it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Plan {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub priority: i32,
    pub all_at_once: bool,
    /// Allocations to stop or evict, by node.
    pub node_update: BTreeMap<String, Vec<Allocation>>,
    /// New or updated allocations, by node.
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    pub deployment: Option<Deployment>,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    pub annotations: Option<PlanAnnotations>,
    /// Groups that could not be placed, with why.
    #[serde(skip)]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Allocations still waiting for capacity, per group.
    #[serde(skip)]
    pub queued_allocations: BTreeMap<String, i64>,
}

impl Plan {
    pub fn is_no_op(&self) -> bool {
        self.node_update.is_empty()
            && self.node_allocation.is_empty()
            && self.deployment.is_none()
            && self.deployment_updates.is_empty()
    }

    pub fn append_stop(&mut self, alloc: &Allocation, desc: &str, client_status: Option<&str>) {
        let mut a = alloc.clone();
        a.desired_status = crate::ALLOC_DESIRED_STOP.into();
        a.desired_description = desc.into();
        if let Some(cs) = client_status {
            a.client_status = cs.into();
        }
        self.node_update
            .entry(a.node_id.clone())
            .or_default()
            .push(a);
    }

    pub fn append_alloc(&mut self, alloc: Allocation) {
        self.node_allocation
            .entry(alloc.node_id.clone())
            .or_default()
            .push(alloc);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeploymentStatusUpdate {
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub status: String,
    pub status_description: String,
}

/// What `job plan` shows: per-group counts of what would change.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PlanAnnotations {
    #[serde(rename = "DesiredTGUpdates")]
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredUpdates {
    pub ignore: u64,
    pub place: u64,
    pub migrate: u64,
    pub stop: u64,
    pub in_place_update: u64,
    pub destructive_update: u64,
    pub canary: u64,
    pub preemptions: u64,
    pub reschedule_now: u64,
    pub reschedule_later: u64,
}

/// What the plan applier committed.
#[derive(Debug, Clone, Default)]
pub struct PlanResult {
    pub node_update: BTreeMap<String, Vec<Allocation>>,
    pub node_allocation: BTreeMap<String, Vec<Allocation>>,
    /// Nodes whose part of the plan was rejected (capacity changed under the scheduler).
    pub rejected_nodes: Vec<String>,
    pub alloc_index: u64,
    /// Set when only part of the plan was committed; the scheduler should refresh from at
    /// least this index and retry.
    pub refresh_index: u64,
}

impl PlanResult {
    /// True when every node of the plan was committed.
    pub fn full_commit(&self, plan: &Plan) -> bool {
        self.rejected_nodes.is_empty()
            && plan
                .node_allocation
                .keys()
                .all(|n| self.node_allocation.contains_key(n))
    }
}
