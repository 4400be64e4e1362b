//! Job status and job summaries, derived from a job's allocations and evaluations the way
//! Nomad's state store derives them.

use caravan_structs::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Nomad's `getJobStatus`.
pub fn job_status(job: &Job, allocs: &[Arc<Allocation>], evals: &[Arc<Evaluation>]) -> String {
    if job.job_type == JOB_TYPE_SYSTEM || job.periodic.is_some() || job.is_parameterized() {
        return if job.stop {
            JOB_STATUS_DEAD
        } else {
            JOB_STATUS_RUNNING
        }
        .into();
    }
    if allocs.iter().any(|a| !a.terminal()) {
        return JOB_STATUS_RUNNING.into();
    }
    if evals.iter().any(|e| !e.terminal()) {
        return JOB_STATUS_PENDING.into();
    }
    if job.stop || !allocs.is_empty() || !evals.is_empty() {
        return JOB_STATUS_DEAD.into();
    }
    JOB_STATUS_PENDING.into()
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct TaskGroupSummary {
    pub queued: i64,
    pub complete: i64,
    pub failed: i64,
    pub running: i64,
    pub starting: i64,
    pub lost: i64,
    pub unknown: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub children: JobChildrenSummary,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobChildrenSummary {
    pub pending: i64,
    pub running: i64,
    pub dead: i64,
}

/// `GET /v1/job/:id/summary`.
pub fn job_summary(job: &Job, allocs: &[Arc<Allocation>], evals: &[Arc<Evaluation>]) -> JobSummary {
    let mut summary: BTreeMap<String, TaskGroupSummary> = job
        .task_groups
        .iter()
        .map(|g| (g.name.clone(), TaskGroupSummary::default()))
        .collect();
    for a in allocs {
        let s = summary.entry(a.task_group.clone()).or_default();
        match a.client_status.as_str() {
            ALLOC_CLIENT_PENDING if !a.server_terminal() => s.starting += 1,
            ALLOC_CLIENT_RUNNING => s.running += 1,
            ALLOC_CLIENT_COMPLETE => s.complete += 1,
            ALLOC_CLIENT_FAILED => s.failed += 1,
            ALLOC_CLIENT_LOST => s.lost += 1,
            ALLOC_CLIENT_UNKNOWN => s.unknown += 1,
            _ => {}
        }
    }
    // Queued: what the newest finished evaluation could not place yet.
    if let Some(latest) = evals
        .iter()
        .filter(|e| e.status == EVAL_STATUS_COMPLETE || e.status == EVAL_STATUS_BLOCKED)
        .max_by_key(|e| e.modify_index)
    {
        for (g, q) in &latest.queued_allocations {
            if let Some(s) = summary.get_mut(g) {
                s.queued = *q;
            }
        }
    }
    JobSummary {
        job_id: job.id.clone(),
        namespace: job.namespace.clone(),
        summary,
        children: JobChildrenSummary::default(),
        create_index: job.create_index,
        modify_index: job.modify_index,
    }
}
