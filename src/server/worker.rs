//! Scheduler workers: take an evaluation from the broker, run the pure scheduler on a state
//! snapshot, submit the plan to the plan applier (refreshing and retrying on partial commits),
//! then record the evaluation's outcome and ack it.

use super::broker::NackOutcome;
use super::command::Command;
use super::Server;
use crate::state::SchedSnapshot;
use caravan_scheduler::Outcome;
use caravan_structs::*;
use std::sync::Arc;

/// Nomad's limit on plan submissions for one evaluation.
const MAX_PLAN_ATTEMPTS: usize = 5;

pub async fn run(server: Arc<Server>, worker_id: usize) {
    loop {
        let (eval, token) = server.broker.dequeue().await;
        tracing::debug!(worker_id, eval = %eval.id, job = %eval.job_id, "processing evaluation");
        match process(&server, &eval).await {
            Ok(()) => {
                if let Err(e) = server.broker.ack(&eval.id, &token) {
                    tracing::warn!(eval = %eval.id, "ack failed: {e}");
                }
            }
            Err(e) => {
                tracing::warn!(eval = %eval.id, "scheduling failed: {e}");
                match server.broker.nack(&eval.id, &token) {
                    Ok(NackOutcome::DeliveryLimitReached(mut ev)) => {
                        ev.status = EVAL_STATUS_FAILED.into();
                        ev.status_description = format!("evaluation reached delivery limit ({e})");
                        ev.modify_time = time::now_nanos();
                        server.raft_apply(Command::EvalUpsert { evals: vec![*ev] });
                    }
                    Ok(NackOutcome::Requeued) => {}
                    Err(e) => tracing::warn!("nack failed: {e}"),
                }
            }
        }
    }
}

async fn process(server: &Arc<Server>, eval: &Evaluation) -> Result<(), String> {
    let cfg = server.scheduler_settings_for_eval(eval);
    let mut last: Option<Outcome> = None;
    for _attempt in 0..MAX_PLAN_ATTEMPTS {
        let snap = SchedSnapshot(server.store.snapshot());
        let outcome = caravan_scheduler::process(eval, &snap, &cfg).map_err(|e| e.to_string())?;
        if outcome.plan.is_no_op() {
            last = Some(outcome);
            break;
        }
        let mut plan = outcome.plan.clone();
        plan.eval_id = eval.id.clone();
        plan.priority = eval.priority;
        let result = server.submit_plan(plan.clone()).await?;
        let full = result.full_commit(&plan);
        last = Some(outcome);
        if full {
            break;
        }
        // Part of the plan was rejected: the state changed under us. Plan again.
    }
    let Some(outcome) = last else {
        return Err("no plan produced".into());
    };
    finish(server, eval, outcome);
    Ok(())
}

/// Records the evaluation's result: status, placement failures, queued allocations, and the
/// blocked or follow-up evaluations it spawns.
fn finish(server: &Arc<Server>, eval: &Evaluation, outcome: Outcome) {
    let now = time::now_nanos();
    let mut evals = Vec::new();
    let mut done = eval.clone();
    done.status = EVAL_STATUS_COMPLETE.into();
    done.status_description = String::new();
    done.failed_tg_allocs = outcome.failed_tg_allocs.clone();
    done.queued_allocations = outcome.queued_allocations.clone();
    done.modify_time = now;
    if let Some(d) = &outcome.plan.deployment {
        done.deployment_id = d.id.clone();
    }
    if outcome.create_blocked_eval && !outcome.failed_tg_allocs.is_empty() {
        // A blocked eval retries when capacity appears. A blocked eval that is itself being
        // processed is re-blocked rather than chained.
        let mut blocked = Evaluation {
            id: new_id(),
            namespace: eval.namespace.clone(),
            priority: eval.priority,
            eval_type: eval.eval_type.clone(),
            triggered_by: TRIGGER_QUEUED_ALLOCS.into(),
            job_id: eval.job_id.clone(),
            job_modify_index: eval.job_modify_index,
            status: EVAL_STATUS_BLOCKED.into(),
            status_description: "created to place remaining allocations".into(),
            previous_eval: eval.id.clone(),
            failed_tg_allocs: outcome.failed_tg_allocs.clone(),
            queued_allocations: outcome.queued_allocations.clone(),
            create_time: now,
            modify_time: now,
            ..Default::default()
        };
        if let Some(old) = server.blocked.untrack(&eval.namespace, &eval.job_id) {
            if old.id != eval.id {
                let mut c = old;
                c.status = EVAL_STATUS_CANCELED.into();
                c.status_description = "superseded by a newer blocked evaluation".into();
                c.modify_time = now;
                evals.push(c);
            }
        }
        done.blocked_eval = blocked.id.clone();
        blocked.class_eligibility = Default::default();
        server.blocked.block(blocked.clone());
        evals.push(blocked);
    } else if let Some(old) = server.blocked.untrack(&eval.namespace, &eval.job_id) {
        // Everything placed: an older blocked eval for this job is moot.
        if old.id != eval.id {
            let mut c = old;
            c.status = EVAL_STATUS_CANCELED.into();
            c.status_description = "evaluation is no longer needed".into();
            c.modify_time = now;
            evals.push(c);
        }
    }
    for f in &outcome.followup_evals {
        let mut f = f.clone();
        f.previous_eval = eval.id.clone();
        if f.status.is_empty() {
            f.status = EVAL_STATUS_PENDING.into();
        }
        evals.push(f.clone());
        server.broker.enqueue(f);
    }
    if let Some(next) = outcome.followup_evals.first() {
        done.next_eval = next.id.clone();
    }
    evals.insert(0, done);
    server.raft_apply(Command::EvalUpsert { evals });
}
