//! The service and batch scheduler (Nomad's `generic_sched.go`): reconcile, then place what
//! is missing through the [`Stack`], and assemble the plan and its side results.

use crate::constraints::{datacenter_matches, node_pool_matches, RegexCache};
use crate::feasible::GroupChecks;
use crate::metrics::exhaust_resources;
use crate::reconcile::{
    reconcile, PlaceKind, ReconcileInput, Taint, STATUS_ALLOC_RESCHEDULED, STATUS_ALLOC_UPDATING,
};
use crate::reschedule;
use crate::select::Stack;
use crate::snapshot::StateSnapshot;
use crate::{Outcome, SchedulerConfig, SchedulerError};
use caravan_structs::{
    AllocMetric, Allocation, Evaluation, Job, Plan, PlanAnnotations, TaskGroup,
    ALLOC_CLIENT_PENDING, ALLOC_DESIRED_RUN, JOB_TYPE_BATCH, JOB_TYPE_SERVICE, JOB_TYPE_SYSBATCH,
    JOB_TYPE_SYSTEM, NODE_STATUS_DISCONNECTED, NODE_STATUS_DOWN,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Which nodes holding the job's allocations are lost or draining.
fn tainted_nodes(state: &dyn StateSnapshot, allocs: &[Arc<Allocation>]) -> HashMap<String, Taint> {
    let mut out = HashMap::new();
    let mut seen = HashSet::new();
    for a in allocs {
        if a.terminal() || !seen.insert(a.node_id.as_str()) {
            continue;
        }
        match state.node(&a.node_id) {
            None => {
                out.insert(a.node_id.clone(), Taint::Lost);
            }
            Some(n) if n.status == NODE_STATUS_DOWN || n.status == NODE_STATUS_DISCONNECTED => {
                out.insert(a.node_id.clone(), Taint::Lost);
            }
            Some(n) if n.drain || n.drain_strategy.is_some() => {
                out.insert(a.node_id.clone(), Taint::Drain);
            }
            Some(_) => {}
        }
    }
    out
}

/// Removes a stop the plan holds for `alloc` (its replacement failed).
fn pop_stop(plan: &mut Plan, alloc: &Allocation) {
    if let Some(list) = plan.node_update.get_mut(&alloc.node_id) {
        list.retain(|a| a.id != alloc.id);
        if list.is_empty() {
            plan.node_update.remove(&alloc.node_id);
        }
    }
}

pub fn process(
    eval: &Evaluation,
    state: &dyn StateSnapshot,
    cfg: &SchedulerConfig,
) -> Result<Outcome, SchedulerError> {
    if eval.job_id.is_empty() {
        return Err(SchedulerError::MissingJobId(eval.id.clone()));
    }
    let job = state.job(&eval.namespace, &eval.job_id);
    let job_type = job
        .as_ref()
        .map(|j| j.job_type.clone())
        .unwrap_or_else(|| eval.eval_type.clone());
    match job_type.as_str() {
        JOB_TYPE_SERVICE | JOB_TYPE_BATCH => {}
        JOB_TYPE_SYSTEM | JOB_TYPE_SYSBATCH => return Err(SchedulerError::Unsupported(job_type)),
        other => return Err(SchedulerError::UnknownType(other.to_string())),
    }
    let now = cfg
        .now_nanos
        .unwrap_or_else(caravan_structs::time::now_nanos);
    let allocs = state.allocs_by_job(&eval.namespace, &eval.job_id);
    let tainted = tainted_nodes(state, &allocs);
    let deployment = state.latest_deployment(&eval.namespace, &eval.job_id);

    let regex = RefCell::new(RegexCache::default());
    let inplace_ok = |a: &Allocation, tg: &TaskGroup| -> bool {
        let Some(job) = &job else { return false };
        let Some(node) = state.node(&a.node_id) else {
            return false;
        };
        // Like Nomad, an ineligible node keeps its allocations; only a node that no longer
        // matches the job's placement rules forces a replacement.
        datacenter_matches(job, &node)
            && node_pool_matches(job, &node)
            && GroupChecks::new(job, tg)
                .check(&mut regex.borrow_mut(), &node)
                .is_ok()
    };
    let result = reconcile(&ReconcileInput {
        job: job.as_ref(),
        job_type: &job_type,
        allocs: &allocs,
        tainted: &tainted,
        deployment: deployment.as_ref(),
        eval,
        now,
        inplace_ok: &inplace_ok,
    });
    tracing::debug!(
        eval_id = %eval.id,
        job_id = %eval.job_id,
        stops = result.stops.len(),
        places = result.places.len(),
        inplace = result.inplace.len(),
        "reconciled job allocations"
    );

    let mut plan = Plan {
        eval_id: eval.id.clone(),
        priority: job.as_ref().map(|j| j.priority).unwrap_or(eval.priority),
        all_at_once: job.as_ref().is_some_and(|j| j.all_at_once),
        ..Default::default()
    };
    let annotations = PlanAnnotations {
        desired_tg_updates: result.desired_tg_updates.clone(),
    };
    let mut out = Outcome {
        followup_evals: result.followup_evals.clone(),
        ..Default::default()
    };
    plan.deployment = result.new_deployment.clone();
    plan.deployment_updates = result.deployment_updates.clone();

    let mut stack = job
        .as_ref()
        .filter(|_| !result.places.is_empty())
        .map(|j| Stack::new(state, j.clone(), &allocs, cfg, &eval.id));

    for s in &result.stops {
        plan.append_stop(&s.alloc, s.desc, s.client_status);
        if let Some(st) = &mut stack {
            st.stop(&s.alloc);
        }
    }
    for a in &result.attribute_updates {
        plan.append_alloc(a.clone());
    }
    if let Some(job) = &job {
        for a in &result.inplace {
            let mut u = (**a).clone();
            u.job = Some(job.clone());
            u.eval_id = eval.id.clone();
            u.modify_time = now;
            if !result.deployment_id.is_empty() && u.deployment_id != result.deployment_id {
                u.deployment_id = result.deployment_id.clone();
                u.deployment_status = None;
            }
            plan.append_alloc(u);
        }
        for tg in &job.task_groups {
            out.queued_allocations.insert(tg.name.clone(), 0);
        }
    }

    let mut failed: BTreeMap<String, AllocMetric> = BTreeMap::new();
    if let (Some(job), Some(stack)) = (&job, &mut stack) {
        for p in &result.places {
            *out.queued_allocations.entry(p.group.clone()).or_default() += 1;
        }
        for p in &result.places {
            place_one(
                job,
                eval,
                p,
                stack,
                &mut plan,
                &mut failed,
                &mut out,
                &result.deployment_id,
                now,
            );
        }
    }

    out.create_blocked_eval = !failed.is_empty();
    out.failed_tg_allocs = failed;
    if eval.annotate_plan {
        plan.annotations = Some(annotations.clone());
    }
    out.annotations = annotations;
    out.plan = plan;
    Ok(out)
}

/// Places one allocation (or records why it could not be).
#[allow(clippy::too_many_arguments)]
fn place_one(
    job: &Arc<Job>,
    eval: &Evaluation,
    p: &crate::reconcile::PlaceRequest,
    stack: &mut Stack,
    plan: &mut Plan,
    failed: &mut BTreeMap<String, AllocMetric>,
    out: &mut Outcome,
    deployment_id: &str,
    now: i64,
) {
    if let Some(m) = failed.get_mut(&p.group) {
        m.coalesced_failures += 1;
        return;
    }
    let Some(tg) = job.lookup_group(&p.group) else {
        return;
    };
    let new_id = caravan_structs::new_id();

    // Replacements that stop their predecessor free its resources first.
    let stop_desc = match p.kind {
        PlaceKind::Destructive => Some(STATUS_ALLOC_UPDATING),
        PlaceKind::Reschedule => Some(STATUS_ALLOC_RESCHEDULED),
        _ => None,
    };
    if let (Some(desc), Some(prev)) = (stop_desc, &p.previous) {
        let mut stopped = (**prev).clone();
        stopped.next_allocation = new_id.clone();
        plan.append_stop(&stopped, desc, None);
        stack.stop(prev);
    }

    let mut penalty = HashSet::new();
    if p.kind == PlaceKind::Reschedule {
        if let Some(prev) = &p.previous {
            penalty.insert(prev.node_id.clone());
            if let Some(t) = &prev.reschedule_tracker {
                penalty.extend(t.events.iter().map(|e| e.prev_node_id.clone()));
            }
        }
    }

    // A sticky ephemeral disk keeps its data by staying on the previous node when it can.
    let preferred = match &p.previous {
        Some(prev) if tg.ephemeral_disk.sticky && p.kind != PlaceKind::Reschedule => {
            Some(prev.node_id.clone())
        }
        _ => None,
    };
    let (choice, mut metrics) = match &preferred {
        Some(node_id) => stack.select_preferring(tg, node_id, &penalty),
        None => stack.select(tg, &penalty),
    };
    let Some(choice) = choice else {
        if let (Some(_), Some(prev)) = (stop_desc, &p.previous) {
            pop_stop(plan, prev);
            stack.undo_stop(prev);
        }
        exhaust_resources(&mut metrics, tg);
        failed.insert(p.group.clone(), metrics);
        return;
    };

    let resources = stack.allocated_resources(tg, choice.offer.as_ref());
    let mut alloc = Allocation {
        id: new_id,
        namespace: job.namespace.clone(),
        eval_id: eval.id.clone(),
        name: p.name.clone(),
        node_id: choice.node.id.clone(),
        node_name: choice.node.name.clone(),
        job_id: job.id.clone(),
        job: Some(job.clone()),
        task_group: tg.name.clone(),
        allocated_resources: resources,
        metrics: Some(metrics),
        desired_status: ALLOC_DESIRED_RUN.into(),
        client_status: ALLOC_CLIENT_PENDING.into(),
        deployment_id: deployment_id.to_string(),
        create_time: now,
        modify_time: now,
        ..Default::default()
    };
    if let Some(prev) = &p.previous {
        alloc.previous_allocation = prev.id.clone();
        if p.kind == PlaceKind::Reschedule {
            alloc.reschedule_tracker = Some(reschedule::tracker_for_replacement(
                prev,
                tg.reschedule_policy.as_ref(),
                now,
            ));
        }
    }
    stack.commit(&choice.node, &alloc);
    plan.append_alloc(alloc);
    if let Some(q) = out.queued_allocations.get_mut(&p.group) {
        *q -= 1;
    }
}
