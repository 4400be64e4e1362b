//! The deployment watcher: follows each active deployment's allocations, keeps its counters,
//! asks the scheduler for the next rolling batch when allocations turn healthy, and ends the
//! deployment as successful or failed (unhealthy allocations, progress deadline).

use super::command::Command;
use super::Server;
use crate::state::{Table, Tables};
use caravan_structs::*;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(server: Arc<Server>) {
    let mut seen = 0u64;
    loop {
        server
            .store
            .watches
            .wait_any(
                &[Table::Allocs, Table::Deployments],
                seen,
                Duration::from_secs(1),
            )
            .await;
        let snap = server.store.snapshot();
        seen = snap.max_index(&[Table::Allocs, Table::Deployments]);
        for d in snap.deployments.values().filter(|d| d.active()) {
            if let Some(cmd) = step(&snap, d, time::now_nanos()) {
                server.raft_apply(cmd);
            }
        }
    }
}

/// Decides what, if anything, changes for one active deployment. Pure, for tests.
pub fn step(snap: &Tables, d: &Deployment, now: i64) -> Option<Command> {
    let Some(job) = snap.job(&d.namespace, &d.job_id) else {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            "Cancelled because job was purged",
            vec![],
        ));
    };
    if job.stop {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            DEPLOYMENT_DESC_STOPPED_JOB,
            vec![],
        ));
    }
    if job.version != d.job_version {
        return Some(finish(
            d,
            DEPLOYMENT_STATUS_CANCELLED,
            DEPLOYMENT_DESC_NEWER_JOB,
            vec![],
        ));
    }
    let allocs: Vec<_> = snap
        .allocs_by_job(&d.namespace, &d.job_id)
        .into_iter()
        .filter(|a| a.deployment_id == d.id)
        .collect();
    let mut next = d.clone();
    let mut progressed = false;
    for (group, state) in next.task_groups.iter_mut() {
        let mine: Vec<_> = allocs.iter().filter(|a| &a.task_group == group).collect();
        let placed = mine.len() as i32;
        let healthy = mine
            .iter()
            .filter(|a| a.deployment_status.as_ref().and_then(|s| s.healthy) == Some(true))
            .count() as i32;
        let unhealthy = mine
            .iter()
            .filter(|a| a.deployment_status.as_ref().and_then(|s| s.healthy) == Some(false))
            .count() as i32;
        if state.require_progress_by.is_none() && state.progress_deadline > 0 {
            let start = if d.create_time > 0 {
                d.create_time
            } else {
                now
            };
            state.require_progress_by = Some(crate::util::rfc3339(start + state.progress_deadline));
        }
        if healthy > state.healthy_allocs && state.progress_deadline > 0 {
            state.require_progress_by = Some(crate::util::rfc3339(now + state.progress_deadline));
        }
        if healthy > state.healthy_allocs {
            progressed = true;
        }
        state.placed_allocs = placed;
        state.healthy_allocs = healthy;
        state.unhealthy_allocs = unhealthy;
    }
    if next.task_groups.values().any(|s| s.unhealthy_allocs > 0) {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_FAILED,
            DEPLOYMENT_DESC_FAILED_ALLOCS,
            vec![],
        ));
    }
    let deadline_passed = next.task_groups.values().any(|s| {
        s.healthy_allocs < s.desired_total
            && s.require_progress_by
                .as_deref()
                .and_then(crate::util::parse_rfc3339)
                .map(|t| now > t)
                .unwrap_or(false)
    });
    if deadline_passed {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_FAILED,
            DEPLOYMENT_DESC_PROGRESS_DEADLINE,
            vec![],
        ));
    }
    let complete = next
        .task_groups
        .values()
        .all(|s| s.healthy_allocs >= s.desired_total);
    if complete {
        return Some(finish(
            &next,
            DEPLOYMENT_STATUS_SUCCESSFUL,
            DEPLOYMENT_DESC_SUCCESSFUL,
            vec![],
        ));
    }
    if next != *d {
        // New healthy allocations let the scheduler replace the next batch.
        let evals = if progressed {
            let mut e = Evaluation::for_job(&job, TRIGGER_DEPLOYMENT_WATCHER);
            e.deployment_id = d.id.clone();
            vec![e]
        } else {
            vec![]
        };
        return Some(Command::DeploymentUpsert {
            deployment: next,
            evals,
        });
    }
    None
}

fn finish(d: &Deployment, status: &str, desc: &str, evals: Vec<Evaluation>) -> Command {
    let mut d = d.clone();
    d.status = status.into();
    d.status_description = desc.into();
    Command::DeploymentUpsert {
        deployment: d,
        evals,
    }
}
