//! Caravan's scheduler: a pure function from a state snapshot and an evaluation to a plan.
//!
//! It follows the shape of Nomad's `scheduler/` package: the [`reconcile`] step compares the
//! allocations a job has with what its current version wants; each placement then runs a
//! small pipeline over the cluster's nodes — feasibility ([`feasible`]), ranking ([`rank`],
//! [`spread`]) and selection ([`select`]) — and the result is a [`caravan_structs::Plan`] the
//! server's plan applier commits. Nothing here does I/O, blocks or spawns: the server calls
//! [`process`], and benchmarks call it on a [`bench::synthetic_cluster`].

pub mod bench;
pub mod constraints;
mod deployment;
mod error;
mod fasthash;
pub mod feasible;
mod generic;
mod metrics;
mod network;
pub mod rank;
pub mod reconcile;
pub mod reschedule;
pub mod select;
mod snapshot;
pub mod spread;
mod usage;
pub mod version;

#[cfg(test)]
mod tests;

pub use error::SchedulerError;
pub use snapshot::{MemSnapshot, StateSnapshot};
pub use usage::NodeAllocated;

use caravan_structs::{AllocMetric, Evaluation, Plan, PlanAnnotations};
use std::collections::BTreeMap;

/// Nomad's scheduler algorithms: bin-pack (fill the fullest node that fits) or spread (prefer
/// the emptiest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Algorithm {
    #[default]
    Binpack,
    Spread,
}

/// The cluster-wide scheduler settings (Nomad's `SchedulerConfiguration`) the scheduler needs.
#[derive(Debug, Clone, Default)]
pub struct SchedulerConfig {
    pub algorithm: Algorithm,
    /// When set, tasks get their `memory_max` as a hard limit (placement still fits `memory`).
    pub memory_oversubscription: bool,
    /// Seeds the node shuffle (tests, benchmarks). `None`: seeded from the eval ID and the
    /// snapshot index, as Nomad does, so an evaluation replays the same way.
    pub rng_seed: Option<u64>,
    /// "Now" in Unix nanoseconds, for reschedule decisions and timestamps. `None`: the clock.
    pub now_nanos: Option<i64>,
}

/// What one evaluation produced.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Stops in `node_update`, new and in-place updated allocations in `node_allocation`, a
    /// new deployment in `deployment`, status changes of existing ones in
    /// `deployment_updates`.
    pub plan: Plan,
    /// Groups that could not be fully placed, with the metrics of the last failed attempt.
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    /// Per group, how many allocations still wait for a placement.
    pub queued_allocations: BTreeMap<String, i64>,
    /// Per group counts of what changes (what `job plan` shows).
    pub annotations: PlanAnnotations,
    /// Some placements failed for lack of capacity or feasibility: the server should park a
    /// blocked evaluation (or keep this one blocked, if it already was).
    pub create_blocked_eval: bool,
    /// Evaluations to run later (delayed reschedules carry `wait_until`).
    pub followup_evals: Vec<Evaluation>,
}

/// Schedules one evaluation against a state snapshot. Service and batch jobs are handled;
/// system and sysbatch jobs return [`SchedulerError::Unsupported`].
///
/// Idempotent: running it again on a snapshot that already holds part of an earlier plan
/// only proposes what is still missing.
pub fn process(
    eval: &Evaluation,
    state: &dyn StateSnapshot,
    cfg: &SchedulerConfig,
) -> Result<Outcome, SchedulerError> {
    generic::process(eval, state, cfg)
}
