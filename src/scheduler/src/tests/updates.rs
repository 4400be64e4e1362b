//! Reconciliation: scaling, updates, rolling deployments, stops, lost nodes, reschedules.

use super::*;
use crate::reconcile::{
    STATUS_ALLOC_LOST, STATUS_ALLOC_NOT_NEEDED, STATUS_ALLOC_RESCHEDULED, STATUS_ALLOC_UPDATING,
};
use crate::StateSnapshot;
use caravan_structs::{
    UpdateStrategy, DEPLOYMENT_DESC_NEWER_JOB, DEPLOYMENT_DESC_STOPPED_JOB,
    DEPLOYMENT_STATUS_CANCELLED, DEPLOYMENT_STATUS_SUCCESSFUL,
};

fn names(allocs: &[&Allocation]) -> Vec<String> {
    let mut v: Vec<String> = allocs.iter().map(|a| a.name.clone()).collect();
    v.sort();
    v
}

/// Places the job and commits the plan, allocations running and healthy, the deployment
/// of the first version marked successful.
fn deployed(nodes: usize, j: &Job) -> MemSnapshot {
    let (mut snap, _) = cluster(nodes, j);
    let o = run(&snap, j);
    snap.apply_plan(&o.plan);
    set_running(&mut snap, true);
    let o = run(&snap, j);
    assert!(o.plan.node_allocation.is_empty() && o.plan.node_update.is_empty());
    snap.apply_plan(&o.plan);
    snap
}

#[test]
fn unchanged_job_is_a_no_op_and_rerun_is_idempotent() {
    let j = job("app", 3);
    let snap = deployed(2, &j);
    let o = run(&snap, &j);
    assert!(o.plan.is_no_op(), "{:?}", o.plan);
    assert_eq!(o.annotations.desired_tg_updates["web"].ignore, 3);
    assert_eq!(o.queued_allocations["web"], 0);
}

#[test]
fn scale_up_and_down_touch_only_the_difference() {
    let j = job("app", 3);
    let mut snap = deployed(3, &j);
    let mut up = j.clone();
    up.task_groups[0].count = 5;
    let up = new_version(&mut snap, up);
    let o = run(&snap, &up);
    assert!(stopped(&o).is_empty());
    let p = placed(&o);
    // The three existing allocs are updated in place (new version), two are new.
    let new: Vec<&Allocation> = p
        .iter()
        .copied()
        .filter(|a| {
            a.previous_allocation.is_empty()
                && a.create_time == NOW
                && a.job_id == "app"
                && a.client_status == "pending"
        })
        .collect();
    assert_eq!(names(&new), vec!["app.web[3]", "app.web[4]"]);
    assert_eq!(o.annotations.desired_tg_updates["web"].place, 2);
    snap.apply_plan(&o.plan);
    set_running(&mut snap, true);

    let mut down = up.clone();
    down.task_groups[0].count = 2;
    let down = new_version(&mut snap, down);
    let o = run(&snap, &down);
    let s = stopped(&o);
    assert_eq!(names(&s), vec!["app.web[2]", "app.web[3]", "app.web[4]"]);
    assert!(s
        .iter()
        .all(|a| a.desired_description == STATUS_ALLOC_NOT_NEEDED));
    assert!(s.iter().all(|a| a.desired_status == "stop"));
    assert_eq!(o.annotations.desired_tg_updates["web"].stop, 3);
}

#[test]
fn lowest_free_indexes_are_filled() {
    let j = job("app", 3);
    let mut snap = deployed(2, &j);
    // Stop index 1 by hand (as `alloc stop` would), then re-evaluate.
    let a1 = snap
        .all_allocs()
        .into_iter()
        .find(|a| a.name == "app.web[1]")
        .unwrap();
    let mut a1 = (*a1).clone();
    a1.desired_status = "stop".into();
    a1.client_status = "complete".into();
    snap.upsert_alloc(a1);
    let o = run(&snap, &j);
    assert_eq!(names(&placed(&o)), vec!["app.web[1]"]);
}

#[test]
fn in_place_versus_destructive_updates() {
    let j = job("app", 2);
    let mut snap = deployed(2, &j);
    let ids: Vec<String> = snap.all_allocs().iter().map(|a| a.id.clone()).collect();

    // Job meta only: in place, same IDs and nodes, new job version.
    let mut meta = j.clone();
    meta.meta.insert("owner".into(), "team".into());
    let meta = new_version(&mut snap, meta);
    let o = run(&snap, &meta);
    assert!(stopped(&o).is_empty());
    let p = placed(&o);
    assert_eq!(p.len(), 2);
    for a in &p {
        assert!(ids.contains(&a.id));
        assert_eq!(a.job.as_ref().unwrap().version, meta.version);
    }
    assert_eq!(o.annotations.desired_tg_updates["web"].in_place_update, 2);
    snap.apply_plan(&o.plan);
    set_running(&mut snap, true);

    // Task env: destructive, stop old + place new with the same name. The job has no
    // update block of its own: the default max_parallel is 1.
    let mut env = meta.clone();
    env.task_groups[0].tasks[0]
        .env
        .insert("MODE".into(), "fast".into());
    let env = new_version(&mut snap, env);
    let o = run(&snap, &env);
    let s = stopped(&o);
    let p = placed(&o);
    assert_eq!(s.len(), 1);
    assert_eq!(p.len(), 1);
    assert_eq!(s[0].desired_description, STATUS_ALLOC_UPDATING);
    assert_eq!(p[0].name, s[0].name);
    assert_eq!(p[0].previous_allocation, s[0].id);
    assert_ne!(p[0].id, s[0].id);
    assert_eq!(
        o.annotations.desired_tg_updates["web"].destructive_update,
        1
    );
    assert_eq!(o.annotations.desired_tg_updates["web"].ignore, 1);
}

#[test]
fn rolling_update_respects_max_parallel_and_health() {
    let mut j = job("app", 4);
    j.update = Some(UpdateStrategy {
        max_parallel: 2,
        ..Default::default()
    });
    for tg in &mut j.task_groups {
        tg.update = None;
    }
    j.canonicalize();
    let (mut snap, _) = cluster(4, &j);
    let o = run(&snap, &j);
    // The first version gets a deployment too.
    let d0 = o
        .plan
        .deployment
        .clone()
        .expect("deployment for the first version");
    assert_eq!(d0.task_groups["web"].desired_total, 4);
    assert!(placed(&o).iter().all(|a| a.deployment_id == d0.id));
    snap.apply_plan(&o.plan);
    set_running(&mut snap, true);
    // Healthy and complete: the deployment is marked successful.
    let o = run(&snap, &j);
    assert_eq!(o.plan.deployment_updates.len(), 1);
    assert_eq!(
        o.plan.deployment_updates[0].status,
        DEPLOYMENT_STATUS_SUCCESSFUL
    );
    snap.apply_plan(&o.plan);

    let mut v1 = j.clone();
    v1.task_groups[0].tasks[0]
        .env
        .insert("V".into(), "1".into());
    let v1 = new_version(&mut snap, v1);
    let o = run(&snap, &v1);
    let d1 = o.plan.deployment.clone().expect("new deployment");
    assert_eq!(d1.status, "running");
    assert_eq!(d1.status_description, "Deployment is running");
    assert_eq!(d1.job_version, v1.version);
    assert_eq!(placed(&o).len(), 2);
    assert_eq!(stopped(&o).len(), 2);
    assert!(placed(&o).iter().all(|a| a.deployment_id == d1.id));
    snap.apply_plan(&o.plan);

    // Not healthy yet: nothing more.
    set_running(&mut snap, false);
    let o = run(&snap, &v1);
    assert!(placed(&o).is_empty(), "{:?}", placed(&o));
    assert!(stopped(&o).is_empty());

    // Healthy: the next two.
    set_running(&mut snap, true);
    let o = run(&snap, &v1);
    assert_eq!(placed(&o).len(), 2);
    assert_eq!(stopped(&o).len(), 2);
    snap.apply_plan(&o.plan);
    set_running(&mut snap, true);
    let o = run(&snap, &v1);
    assert!(placed(&o).is_empty());
    assert_eq!(
        o.plan.deployment_updates[0].status,
        DEPLOYMENT_STATUS_SUCCESSFUL
    );

    // A newer version cancels the running deployment of the previous one.
    snap.apply_plan(&o.plan);
    let mut v2 = v1.clone();
    v2.task_groups[0].tasks[0]
        .env
        .insert("V".into(), "2".into());
    let mut d_running = d1.clone();
    d_running.status = "running".into();
    snap.upsert_deployment(d_running);
    let v2 = new_version(&mut snap, v2);
    let o = run(&snap, &v2);
    assert!(o
        .plan
        .deployment_updates
        .iter()
        .any(|u| u.deployment_id == d1.id
            && u.status == DEPLOYMENT_STATUS_CANCELLED
            && u.status_description == DEPLOYMENT_DESC_NEWER_JOB));
}

#[test]
fn stopping_the_job_stops_everything() {
    let j = job("app", 3);
    let mut snap = deployed(2, &j);
    let d = snap.latest_deployment_for_test("app");
    let mut stop = j.clone();
    stop.stop = true;
    let stop = new_version(&mut snap, stop);
    let o = run(&snap, &stop);
    let s = stopped(&o);
    assert_eq!(s.len(), 3);
    assert!(s
        .iter()
        .all(|a| a.desired_description == STATUS_ALLOC_NOT_NEEDED));
    assert!(placed(&o).is_empty());
    if let Some(d) = d {
        if d.active() {
            assert_eq!(
                o.plan.deployment_updates[0].status_description,
                DEPLOYMENT_DESC_STOPPED_JOB
            );
        }
    }
    // A purged job too.
    snap.delete_job("default", "app");
    let o = process(&eval_for(&j), &snap, &cfg()).unwrap();
    assert_eq!(stopped(&o).len(), 3);
}

#[test]
fn stopping_the_job_cancels_its_running_deployment() {
    let j = job("app", 2);
    let (mut snap, _) = cluster(2, &j);
    let o = run(&snap, &j);
    let d = o.plan.deployment.clone().expect("deployment");
    snap.apply_plan(&o.plan);
    let mut stop = j.clone();
    stop.stop = true;
    let stop = new_version(&mut snap, stop);
    let o = run(&snap, &stop);
    assert_eq!(stopped(&o).len(), 2);
    assert_eq!(o.plan.deployment_updates.len(), 1);
    assert_eq!(o.plan.deployment_updates[0].deployment_id, d.id);
    assert_eq!(
        o.plan.deployment_updates[0].status,
        DEPLOYMENT_STATUS_CANCELLED
    );
    assert_eq!(
        o.plan.deployment_updates[0].status_description,
        DEPLOYMENT_DESC_STOPPED_JOB
    );
}

#[test]
fn constraint_change_moves_allocs_off_nodes_that_no_longer_match() {
    let j = job("app", 1);
    let mut snap = deployed(2, &j);
    let old = snap.all_allocs()[0].clone();
    let mut pinned = j.clone();
    pinned.constraints.push(caravan_structs::Constraint {
        l_target: "${node.unique.id}".into(),
        r_target: old.node_id.clone(),
        operand: "!=".into(),
    });
    let pinned = new_version(&mut snap, pinned);
    let o = run(&snap, &pinned);
    let p = placed(&o);
    assert_eq!(p.len(), 1);
    assert_ne!(p[0].node_id, old.node_id);
    assert_eq!(p[0].previous_allocation, old.id);
    assert_eq!(stopped(&o)[0].id, old.id);
}

#[test]
fn ineligible_node_keeps_its_alloc_on_in_place_update() {
    let j = job("app", 1);
    let mut snap = deployed(2, &j);
    let old = snap.all_allocs()[0].clone();
    let mut n = (*snap.node(&old.node_id).unwrap()).clone();
    n.scheduling_eligibility = "ineligible".into();
    snap.upsert_node(n);
    let mut meta = j.clone();
    meta.meta.insert("k".into(), "v".into());
    let meta = new_version(&mut snap, meta);
    let o = run(&snap, &meta);
    assert!(stopped(&o).is_empty());
    assert_eq!(placed(&o)[0].id, old.id);
}

#[test]
fn lost_node_allocs_are_replaced() {
    let j = job("app", 2);
    let mut snap = deployed(2, &j);
    let victim = snap.all_allocs()[0].clone();
    let mut n = (*snap.node(&victim.node_id).unwrap()).clone();
    n.status = "down".into();
    snap.upsert_node(n);
    let o = run(&snap, &j);
    let lost: Vec<_> = stopped(&o)
        .into_iter()
        .filter(|a| a.node_id == victim.node_id)
        .collect();
    assert!(!lost.is_empty());
    assert!(lost
        .iter()
        .all(|a| a.client_status == "lost" && a.desired_description == STATUS_ALLOC_LOST));
    let p = placed(&o);
    assert_eq!(p.len(), lost.len());
    for a in p {
        assert_ne!(a.node_id, victim.node_id);
        assert!(lost
            .iter()
            .any(|l| l.id == a.previous_allocation && l.name == a.name));
    }
}

fn fail(snap: &mut MemSnapshot, name: &str, at: i64) -> Allocation {
    let a = snap
        .all_allocs()
        .into_iter()
        .find(|a| a.name == name && !a.terminal())
        .unwrap();
    let mut a = (*a).clone();
    a.client_status = "failed".into();
    a.modify_time = at;
    snap.upsert_alloc(a.clone());
    a
}

#[test]
fn failed_alloc_rescheduled_now() {
    let j = job("app", 2);
    let mut snap = deployed(3, &j);
    // Default service policy: 30s delay, exponential, unlimited.
    let failed = fail(&mut snap, "app.web[0]", NOW - 60 * SECOND);
    let o = run(&snap, &j);
    let p = placed(&o);
    assert_eq!(p.len(), 1);
    let new = p[0];
    assert_eq!(new.name, "app.web[0]");
    assert_eq!(new.previous_allocation, failed.id);
    let ev = &new.reschedule_tracker.as_ref().unwrap().events;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].prev_alloc_id, failed.id);
    assert_eq!(ev[0].prev_node_id, failed.node_id);
    assert_eq!(ev[0].delay, 30 * SECOND);
    let m = new.metrics.as_ref().unwrap();
    assert!(m
        .score_meta_data
        .iter()
        .filter(|s| s.node_id == failed.node_id)
        .all(|s| s.scores.get("node-reschedule-penalty") == Some(&-1.0)));
    let s = stopped(&o);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].id, failed.id);
    assert_eq!(s[0].desired_description, STATUS_ALLOC_RESCHEDULED);
    assert_eq!(s[0].client_status, "failed");
    assert_eq!(s[0].next_allocation, new.id);
    assert_eq!(o.annotations.desired_tg_updates["web"].reschedule_now, 1);
    // Once committed, nothing more happens.
    snap.apply_plan(&o.plan);
    assert!(run(&snap, &j).plan.is_no_op());
}

#[test]
fn failed_alloc_rescheduled_later() {
    let j = job("app", 2);
    let mut snap = deployed(2, &j);
    let failed = fail(&mut snap, "app.web[1]", NOW);
    let o = run(&snap, &j);
    assert_eq!(o.followup_evals.len(), 1);
    let e = &o.followup_evals[0];
    assert_eq!(e.wait_until, NOW + 30 * SECOND);
    assert_eq!(e.triggered_by, "alloc-failure");
    assert_eq!(e.status, "pending");
    assert_eq!(e.job_id, "app");
    let p = placed(&o);
    assert_eq!(p.len(), 1, "the failed alloc gets its follow-up eval ID");
    assert_eq!(p[0].id, failed.id);
    assert_eq!(p[0].followup_eval_id, e.id);
    assert!(stopped(&o).is_empty());
    snap.apply_plan(&o.plan);
    // Re-running the same eval does not create another follow-up.
    let o2 = run(&snap, &j);
    assert!(o2.followup_evals.is_empty());
    assert!(o2.plan.is_no_op());
    // The follow-up eval itself reschedules it.
    let mut follow = e.clone();
    follow.eval_type = "service".into();
    let o3 = process(&follow, &snap, &cfg()).unwrap();
    assert_eq!(placed(&o3).len(), 1);
    assert_eq!(placed(&o3)[0].previous_allocation, failed.id);
}

#[test]
fn reschedule_attempts_exhausted_leaves_failed_alloc() {
    let mut j = batch_job("b", 1);
    j.task_groups[0].reschedule_policy = Some(caravan_structs::ReschedulePolicy {
        attempts: 1,
        interval: 3600 * SECOND,
        delay: 5 * SECOND,
        delay_function: "constant".into(),
        max_delay: 0,
        unlimited: false,
    });
    let (mut snap, _) = cluster(2, &j);
    let o = run(&snap, &j);
    snap.apply_plan(&o.plan);
    let first = fail(&mut snap, "b.web[0]", NOW - 60 * SECOND);
    let o = run(&snap, &j);
    assert_eq!(placed(&o).len(), 1);
    snap.apply_plan(&o.plan);
    let second = fail(&mut snap, "b.web[0]", NOW - 30 * SECOND);
    assert_ne!(first.id, second.id);
    let o = run(&snap, &j);
    assert!(o.plan.is_no_op(), "attempts exhausted: {:?}", o.plan);
}

#[test]
fn batch_complete_allocs_are_not_replaced_but_service_ones_are() {
    let j = batch_job("b", 2);
    let (mut snap, _) = cluster(2, &j);
    let o = run(&snap, &j);
    snap.apply_plan(&o.plan);
    for a in snap.all_allocs() {
        let mut a = (*a).clone();
        a.client_status = "complete".into();
        snap.upsert_alloc(a);
    }
    let o = run(&snap, &j);
    assert!(o.plan.is_no_op());

    let s = job("s", 2);
    let mut snap = deployed(2, &s);
    for a in snap.all_allocs() {
        let mut a = (*a).clone();
        a.client_status = "complete".into();
        snap.upsert_alloc(a);
    }
    let o = run(&snap, &s);
    assert_eq!(names(&placed(&o)), vec!["s.web[0]", "s.web[1]"]);
}

#[test]
fn partial_commit_then_rerun_places_only_the_rest() {
    let j = job("app", 4);
    let (mut snap, _) = cluster(2, &j);
    let o = run(&snap, &j);
    assert_eq!(placed(&o).len(), 4);
    // The applier commits only one node's part.
    let mut partial = o.plan.clone();
    let first = partial.node_allocation.keys().next().cloned().unwrap();
    partial.node_allocation.retain(|k, _| *k == first);
    let committed = partial.node_allocation[&first].len();
    snap.apply_plan(&partial);
    let o2 = run(&snap, &j);
    assert_eq!(placed(&o2).len(), 4 - committed);
    assert!(
        o2.plan.deployment.is_none(),
        "the deployment already exists"
    );
    let mut all: Vec<String> = snap
        .all_allocs()
        .iter()
        .map(|a| a.name.clone())
        .chain(placed(&o2).iter().map(|a| a.name.clone()))
        .collect();
    all.sort();
    assert_eq!(
        all,
        vec!["app.web[0]", "app.web[1]", "app.web[2]", "app.web[3]"]
    );
}

impl MemSnapshot {
    fn latest_deployment_for_test(&self, job_id: &str) -> Option<caravan_structs::Deployment> {
        crate::StateSnapshot::latest_deployment(self, "default", job_id)
    }
}

/// Rounds of destructive updates that left the previous alloc's node.
fn moves_over_updates(sticky: bool) -> usize {
    let mut j = job("app", 1);
    j.task_groups[0].ephemeral_disk.sticky = sticky;
    j.task_groups[0].tasks[0].resources.cpu = 100;
    let mut snap = deployed(5, &j);
    let before = snap.all_allocs()[0].clone();
    let mut moved = 0;
    for round in 0..8 {
        let mut next = j.clone();
        next.task_groups[0].tasks[0]
            .env
            .insert("ROUND".into(), round.to_string());
        let next = new_version(&mut snap, next);
        let o = run(&snap, &next);
        let p = placed(&o);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].previous_allocation, before.id);
        if p[0].node_id != before.node_id {
            moved += 1;
        }
    }
    moved
}

#[test]
fn sticky_ephemeral_disk_keeps_destructive_updates_on_their_node() {
    assert_eq!(moves_over_updates(true), 0);
    // Without it the choice among equally empty nodes is the shuffle's.
    assert!(moves_over_updates(false) > 0);
}
