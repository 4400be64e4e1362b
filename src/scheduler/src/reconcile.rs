//! The reconciler: compares a job's existing allocations with what its current version wants,
//! group by group, and says what to stop, place, update in place or replace (Nomad's
//! `reconcile_cluster.go`). It picks no nodes: that is the placement stack's job.

use crate::deployment;
use crate::reschedule::{self, Decision};
use caravan_structs::{
    Allocation, Deployment, DeploymentStatusUpdate, DesiredUpdates, Evaluation, Job, TaskGroup,
    ALLOC_CLIENT_COMPLETE, ALLOC_CLIENT_FAILED, ALLOC_CLIENT_LOST, ALLOC_DESIRED_STOP,
    DEPLOYMENT_DESC_NEWER_JOB, DEPLOYMENT_DESC_STOPPED_JOB, DEPLOYMENT_STATUS_RUNNING,
    EVAL_STATUS_PENDING, JOB_TYPE_BATCH, TRIGGER_RETRY_FAILED_ALLOC,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Nomad's descriptions for stopped allocations.
pub const STATUS_ALLOC_NOT_NEEDED: &str = "alloc not needed due to job update";
pub const STATUS_ALLOC_MIGRATING: &str = "alloc is being migrated";
pub const STATUS_ALLOC_UPDATING: &str = "alloc is being updated due to job update";
pub const STATUS_ALLOC_LOST: &str = "alloc is lost since its node is down";
pub const STATUS_ALLOC_RESCHEDULED: &str = "alloc was rescheduled because it failed";
pub const DESC_RESCHEDULING_FOLLOWUP_EVAL: &str = "created for delayed rescheduling";

/// Why a node's allocations must move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taint {
    /// Down, disconnected or gone: its allocations are lost.
    Lost,
    /// Draining: its allocations migrate.
    Drain,
}

/// What kind of placement a [`PlaceRequest`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// A new allocation (count increase or first placement).
    New,
    /// Replaces an allocation lost with its node (already stopped).
    Lost,
    /// Replaces an allocation on a draining node (already stopped).
    Migrate,
    /// Replaces a failed allocation; the failed one is stopped only if this succeeds.
    Reschedule,
    /// Replaces an allocation of an older job version; the old one is stopped only if this
    /// succeeds.
    Destructive,
}

/// One allocation to place.
#[derive(Debug, Clone)]
pub struct PlaceRequest {
    pub group: String,
    pub name: String,
    pub kind: PlaceKind,
    pub previous: Option<Arc<Allocation>>,
}

/// One allocation to stop.
#[derive(Debug, Clone)]
pub struct StopRequest {
    pub alloc: Arc<Allocation>,
    pub desc: &'static str,
    pub client_status: Option<&'static str>,
}

/// Everything the reconciler decided.
#[derive(Debug, Default)]
pub struct ReconcileResult {
    pub stops: Vec<StopRequest>,
    /// Destructive replacements first, then the others, group by group.
    pub places: Vec<PlaceRequest>,
    /// Allocations to move to the new job version where they are.
    pub inplace: Vec<Arc<Allocation>>,
    /// Allocations whose attributes change (a follow-up eval ID), kept as they are otherwise.
    pub attribute_updates: Vec<Allocation>,
    pub followup_evals: Vec<Evaluation>,
    /// A deployment created by this evaluation.
    pub new_deployment: Option<Deployment>,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// The deployment new allocations belong to ("" when none).
    pub deployment_id: String,
    pub desired_tg_updates: BTreeMap<String, DesiredUpdates>,
}

/// What the reconciler reads.
pub struct ReconcileInput<'a> {
    /// The job's current version; `None` when it was purged.
    pub job: Option<&'a Arc<Job>>,
    pub job_type: &'a str,
    pub allocs: &'a [Arc<Allocation>],
    /// Nodes whose allocations must move.
    pub tainted: &'a HashMap<String, Taint>,
    pub deployment: Option<&'a Deployment>,
    pub eval: &'a Evaluation,
    pub now: i64,
    /// Whether an allocation of an older version may be updated in place on its node
    /// (the node still fits the new group's constraints). Checked only for changes that
    /// are not destructive by themselves.
    pub inplace_ok: &'a dyn Fn(&Allocation, &TaskGroup) -> bool,
}

enum Update {
    Ignore,
    InPlace,
    Destructive,
}

fn update_kind(a: &Allocation, job: &Arc<Job>, tg: &TaskGroup) -> Update {
    let Some(aj) = &a.job else {
        return Update::Destructive;
    };
    if Arc::ptr_eq(aj, job) {
        return Update::Ignore;
    }
    if aj.create_index != job.create_index {
        return Update::Destructive;
    }
    if aj.version == job.version && aj.job_modify_index == job.job_modify_index {
        return Update::Ignore;
    }
    match aj.lookup_group(&tg.name) {
        Some(old) if !Job::group_needs_destructive_update(old, tg) => Update::InPlace,
        _ => Update::Destructive,
    }
}

/// Runs the reconciler.
pub fn reconcile(input: &ReconcileInput) -> ReconcileResult {
    let mut r = ReconcileResult::default();
    let mut by_group: BTreeMap<&str, Vec<&Arc<Allocation>>> = BTreeMap::new();
    for a in input.allocs {
        by_group.entry(a.task_group.as_str()).or_default().push(a);
    }
    // A parameterized job never runs itself; its dispatched children do.
    let stopped = input.job.is_none_or(|j| j.stop || j.is_parameterized());

    // An active deployment of another version is superseded; one of this version continues.
    let mut current: Option<&Deployment> = None;
    if let Some(d) = input.deployment {
        let same = input.job.is_some_and(|j| deployment::for_job_version(d, j));
        if d.active() && (stopped || !same) {
            let desc = if stopped {
                DEPLOYMENT_DESC_STOPPED_JOB
            } else {
                DEPLOYMENT_DESC_NEWER_JOB
            };
            r.deployment_updates.push(deployment::cancel(d, desc));
        } else if same {
            current = Some(d);
        }
    }

    let job = match input.job {
        Some(j) if !stopped => j,
        _ => {
            for (group, allocs) in &by_group {
                stop_all(input, group, allocs, &mut r);
            }
            return r;
        }
    };

    for (group, allocs) in &by_group {
        if job.lookup_group(group).is_none() {
            stop_all(input, group, allocs, &mut r);
        }
    }

    let mut destructive_first = Vec::new();
    let mut others = Vec::new();
    let mut all_complete = true;
    let empty = Vec::new();
    for tg in &job.task_groups {
        let allocs = by_group.get(tg.name.as_str()).unwrap_or(&empty);
        let complete = reconcile_group(
            input,
            job,
            tg,
            allocs,
            current,
            &mut r,
            &mut destructive_first,
            &mut others,
        );
        all_complete &= complete;
    }
    r.places = destructive_first;
    r.places.extend(others);

    if let Some(d) = &mut r.new_deployment {
        for tg in &job.task_groups {
            if let Some(u) = deployment::strategy(job, tg) {
                d.task_groups
                    .entry(tg.name.clone())
                    .or_insert_with(|| deployment::group_state(tg, u));
            }
        }
        r.deployment_id = d.id.clone();
    } else if let Some(d) = current {
        if d.active() {
            r.deployment_id = d.id.clone();
            if all_complete && d.status == DEPLOYMENT_STATUS_RUNNING {
                r.deployment_updates.push(deployment::succeed(d));
            }
        }
    }
    r
}

/// Stops every allocation of a group that is no longer wanted (job stopped or purged, or the
/// group removed from the job).
fn stop_all(
    input: &ReconcileInput,
    group: &str,
    allocs: &[&Arc<Allocation>],
    r: &mut ReconcileResult,
) {
    let du = r.desired_tg_updates.entry(group.to_string()).or_default();
    for a in allocs {
        if a.server_terminal() {
            continue;
        }
        let lost = !a.client_terminal() && input.tainted.get(&a.node_id) == Some(&Taint::Lost);
        r.stops.push(if lost {
            StopRequest {
                alloc: (*a).clone(),
                desc: STATUS_ALLOC_LOST,
                client_status: Some(ALLOC_CLIENT_LOST),
            }
        } else {
            StopRequest {
                alloc: (*a).clone(),
                desc: STATUS_ALLOC_NOT_NEEDED,
                client_status: None,
            }
        });
        du.stop += 1;
    }
}

/// Reconciles one group; returns whether it has nothing left to do for its deployment.
#[allow(clippy::too_many_arguments)]
fn reconcile_group(
    input: &ReconcileInput,
    job: &Arc<Job>,
    tg: &TaskGroup,
    allocs: &[&Arc<Allocation>],
    current: Option<&Deployment>,
    r: &mut ReconcileResult,
    destructive_out: &mut Vec<PlaceRequest>,
    place_out: &mut Vec<PlaceRequest>,
) -> bool {
    let batch = input.job_type == JOB_TYPE_BATCH;
    let mut du = DesiredUpdates::default();
    let mut untainted: Vec<&Arc<Allocation>> = Vec::new();
    let mut migrate = Vec::new();
    let mut lost = Vec::new();
    let mut resched_now = Vec::new();
    let mut later: Vec<(&Arc<Allocation>, i64)> = Vec::new();
    let active_dep = current.filter(|d| d.active());

    for a in allocs {
        if a.terminal() && !a.next_allocation.is_empty() {
            continue; // already replaced
        }
        if a.server_terminal() {
            // A batch allocation that finished successfully still counts: never re-run it.
            if batch
                && a.desired_status == ALLOC_DESIRED_STOP
                && a.client_status == ALLOC_CLIENT_COMPLETE
            {
                untainted.push(a);
            }
            continue;
        }
        if !a.client_terminal() {
            match input.tainted.get(&a.node_id) {
                Some(Taint::Lost) => {
                    lost.push(*a);
                    continue;
                }
                // On a draining node only the allocations the drainer marked move, so it
                // can pace them by the group's `migrate` block; `alloc stop` marks one
                // anywhere.
                _ if a.desired_transition.migrate == Some(true) => {
                    migrate.push(*a);
                    continue;
                }
                Some(Taint::Drain) | None => {}
            }
        }
        match a.client_status.as_str() {
            ALLOC_CLIENT_COMPLETE => {
                if batch {
                    untainted.push(a);
                }
            }
            ALLOC_CLIENT_LOST => {}
            ALLOC_CLIENT_FAILED => {
                let gated = active_dep.is_some_and(|d| a.deployment_id == d.id)
                    && a.desired_transition.reschedule != Some(true);
                let decision = if gated {
                    Decision::No
                } else {
                    reschedule::decide(a, tg.reschedule_policy.as_ref(), input.now, &input.eval.id)
                };
                match decision {
                    Decision::Now => resched_now.push(*a),
                    Decision::Later(t) => {
                        untainted.push(a);
                        later.push((a, t));
                    }
                    Decision::No => untainted.push(a),
                }
            }
            _ => untainted.push(a),
        }
    }

    // Lost allocations are stopped whatever else happens.
    lost.sort_by_key(|a| a.index());
    for a in &lost {
        r.stops.push(StopRequest {
            alloc: (*a).clone(),
            desc: STATUS_ALLOC_LOST,
            client_status: Some(ALLOC_CLIENT_LOST),
        });
        du.stop += 1;
    }

    // Scale down: drop failed replacements first, then migrations, then the highest indexes
    // (failed allocations before healthy ones).
    let count = tg.count.max(0) as usize;
    let mut excess = (untainted.len() + migrate.len() + resched_now.len()).saturating_sub(count);
    let stop_not_needed =
        |a: &Arc<Allocation>, r: &mut ReconcileResult, du: &mut DesiredUpdates| {
            r.stops.push(StopRequest {
                alloc: a.clone(),
                desc: STATUS_ALLOC_NOT_NEEDED,
                client_status: None,
            });
            du.stop += 1;
        };
    resched_now.sort_by_key(|a| a.index());
    while excess > 0 {
        let Some(a) = resched_now.pop() else { break };
        stop_not_needed(a, r, &mut du);
        excess -= 1;
    }
    migrate.sort_by_key(|a| a.index());
    while excess > 0 {
        let Some(a) = migrate.pop() else { break };
        stop_not_needed(a, r, &mut du);
        excess -= 1;
    }
    if excess > 0 {
        // Keep order: healthy first, lowest index first; stop from the end.
        untainted.sort_by_key(|a| (a.client_terminal(), a.index()));
        let removed: Vec<_> = untainted.split_off(untainted.len() - excess.min(untainted.len()));
        for a in removed {
            stop_not_needed(a, r, &mut du);
            later.retain(|(l, _)| l.id != a.id);
        }
    }

    // Migrations are stopped now and replaced below.
    for a in &migrate {
        r.stops.push(StopRequest {
            alloc: (*a).clone(),
            desc: STATUS_ALLOC_MIGRATING,
            client_status: None,
        });
    }

    // Job version changes: in place where possible, else destructive (rolling).
    let mut inplace = Vec::new();
    let mut destructive = Vec::new();
    for a in &untainted {
        if a.client_terminal() {
            du.ignore += 1;
            continue;
        }
        match update_kind(a, job, tg) {
            Update::Ignore => du.ignore += 1,
            Update::InPlace if (input.inplace_ok)(a, tg) => inplace.push(*a),
            _ => destructive.push(*a),
        }
    }
    let strategy = deployment::strategy(job, tg);
    let blocked = current.is_some_and(deployment::blocks_progress) && strategy.is_some();
    let limit = match (strategy, current) {
        (None, _) => usize::MAX,
        (Some(_), Some(d)) if deployment::blocks_progress(d) => 0,
        (Some(u), Some(d)) => {
            let mut l = u.max_parallel as i64;
            for a in allocs {
                if a.deployment_id != d.id || a.terminal() {
                    continue;
                }
                match a.deployment_status.as_ref().and_then(|s| s.healthy) {
                    Some(true) => {}
                    Some(false) => {
                        l = 0;
                        break;
                    }
                    None => l -= 1,
                }
            }
            l.max(0) as usize
        }
        (Some(u), None) => u.max_parallel as usize,
    };
    destructive.sort_by_key(|a| a.index());
    let pending_destructive = destructive.len();
    let held_back = destructive.split_off(limit.min(destructive.len()));
    du.ignore += held_back.len() as u64;

    // A new deployment for this version when the group has something to roll out.
    if let Some(u) = strategy {
        if current.is_none() && r.new_deployment.is_none() && count > 0 {
            let had_running = allocs.iter().any(|a| {
                a.job
                    .as_ref()
                    .is_some_and(|j| j.version == job.version && j.create_index == job.create_index)
            });
            let updating = pending_destructive > 0 || !inplace.is_empty();
            if !had_running || updating {
                let mut d = deployment::new_deployment(job, input.now);
                d.task_groups
                    .insert(tg.name.clone(), deployment::group_state(tg, u));
                r.new_deployment = Some(d);
            }
        }
    }

    du.in_place_update += inplace.len() as u64;
    r.inplace.extend(inplace.iter().map(|a| (*a).clone()));
    for a in &destructive {
        destructive_out.push(PlaceRequest {
            group: tg.name.clone(),
            name: a.name.clone(),
            kind: PlaceKind::Destructive,
            previous: Some((*a).clone()),
        });
        du.destructive_update += 1;
    }

    // Placements: replacements keep their names, new ones fill the lowest free indexes.
    let mut used: HashSet<usize> = untainted
        .iter()
        .chain(migrate.iter())
        .chain(resched_now.iter())
        .map(|a| a.index())
        .collect();
    for a in &resched_now {
        place_out.push(PlaceRequest {
            group: tg.name.clone(),
            name: a.name.clone(),
            kind: PlaceKind::Reschedule,
            previous: Some((*a).clone()),
        });
        du.place += 1;
        du.reschedule_now += 1;
    }
    for a in &migrate {
        place_out.push(PlaceRequest {
            group: tg.name.clone(),
            name: a.name.clone(),
            kind: PlaceKind::Migrate,
            previous: Some((*a).clone()),
        });
        du.migrate += 1;
    }
    let mut missing = count.saturating_sub(untainted.len() + migrate.len() + resched_now.len());
    for a in &lost {
        if missing == 0 {
            break;
        }
        if !used.insert(a.index()) {
            continue;
        }
        place_out.push(PlaceRequest {
            group: tg.name.clone(),
            name: a.name.clone(),
            kind: PlaceKind::Lost,
            previous: Some((*a).clone()),
        });
        du.place += 1;
        missing -= 1;
    }
    if !blocked {
        let mut idx = 0usize;
        while missing > 0 {
            if used.insert(idx) {
                place_out.push(PlaceRequest {
                    group: tg.name.clone(),
                    name: format!("{}.{}[{}]", job.id, tg.name, idx),
                    kind: PlaceKind::New,
                    previous: None,
                });
                du.place += 1;
                missing -= 1;
            }
            idx += 1;
        }
    }

    // Delayed reschedules share follow-up evaluations within a small window.
    later.sort_by_key(|(_, t)| *t);
    let mut window: Option<(i64, String)> = None;
    for (a, t) in &later {
        let eval_id = match &window {
            Some((start, id)) if t - start < reschedule::BATCHED_FAILED_ALLOC_WINDOW => id.clone(),
            _ => {
                let e = followup_eval(input.eval, job, *t);
                let id = e.id.clone();
                r.followup_evals.push(e);
                window = Some((*t, id.clone()));
                id
            }
        };
        let mut updated = Allocation::clone(a);
        updated.followup_eval_id = eval_id;
        updated.modify_time = input.now;
        r.attribute_updates.push(updated);
        du.reschedule_later += 1;
    }

    let nothing_left = pending_destructive == 0
        && inplace.is_empty()
        && resched_now.is_empty()
        && migrate.is_empty()
        && later.is_empty()
        && du.place == 0;
    let healthy_enough = match current {
        Some(d) => match d.task_groups.get(&tg.name) {
            Some(state) => {
                let healthy = allocs
                    .iter()
                    .filter(|a| {
                        a.deployment_id == d.id
                            && !a.terminal()
                            && a.deployment_status.as_ref().and_then(|s| s.healthy) == Some(true)
                    })
                    .count() as i32;
                healthy.max(state.healthy_allocs) >= state.desired_total
            }
            None => true,
        },
        None => true,
    };
    r.desired_tg_updates.insert(tg.name.clone(), du);
    nothing_left && healthy_enough
}

fn followup_eval(eval: &Evaluation, job: &Job, wait_until: i64) -> Evaluation {
    Evaluation {
        id: caravan_structs::new_id(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.job_type.clone(),
        triggered_by: TRIGGER_RETRY_FAILED_ALLOC.into(),
        job_id: job.id.clone(),
        job_modify_index: job.modify_index,
        status: EVAL_STATUS_PENDING.into(),
        status_description: DESC_RESCHEDULING_FOLLOWUP_EVAL.into(),
        wait_until,
        previous_eval: eval.id.clone(),
        create_time: eval.modify_time.max(eval.create_time),
        ..Default::default()
    }
}
