//! Deployment bookkeeping for service jobs with an `update` block: creating the deployment
//! of a new job version, cancelling an older one, and noticing when one has completed.

use caravan_structs::{
    Deployment, DeploymentState, DeploymentStatusUpdate, Job, TaskGroup, UpdateStrategy,
    DEPLOYMENT_DESC_RUNNING, DEPLOYMENT_STATUS_CANCELLED, DEPLOYMENT_STATUS_FAILED,
    DEPLOYMENT_STATUS_PAUSED, DEPLOYMENT_STATUS_RUNNING, DEPLOYMENT_STATUS_SUCCESSFUL,
    JOB_TYPE_SERVICE,
};

/// The group's rolling-update strategy, if it has one that deployments apply to.
pub fn strategy<'a>(job: &Job, tg: &'a TaskGroup) -> Option<&'a UpdateStrategy> {
    if job.job_type != JOB_TYPE_SERVICE {
        return None;
    }
    tg.update.as_ref().filter(|u| u.max_parallel > 0)
}

/// A new running deployment for the job's current version.
pub fn new_deployment(job: &Job, now: i64) -> Deployment {
    Deployment {
        id: caravan_structs::new_id(),
        namespace: job.namespace.clone(),
        job_id: job.id.clone(),
        job_version: job.version,
        job_modify_index: job.modify_index,
        job_spec_modify_index: job.job_modify_index,
        job_create_index: job.create_index,
        is_multiregion: false,
        task_groups: Default::default(),
        status: DEPLOYMENT_STATUS_RUNNING.into(),
        status_description: DEPLOYMENT_DESC_RUNNING.into(),
        create_index: 0,
        modify_index: 0,
        create_time: now,
        modify_time: now,
    }
}

/// The per-group state a new deployment tracks.
pub fn group_state(tg: &TaskGroup, u: &UpdateStrategy) -> DeploymentState {
    DeploymentState {
        auto_revert: u.auto_revert,
        auto_promote: u.auto_promote,
        promoted: false,
        placed_canaries: vec![],
        desired_canaries: 0,
        desired_total: tg.count,
        placed_allocs: 0,
        healthy_allocs: 0,
        unhealthy_allocs: 0,
        require_progress_by: None,
        progress_deadline: u.progress_deadline,
    }
}

/// Whether the deployment was made for this exact job version.
pub fn for_job_version(d: &Deployment, job: &Job) -> bool {
    d.job_version == job.version && d.job_create_index == job.create_index
}

/// Whether the deployment holds back new placements and destructive updates.
pub fn blocks_progress(d: &Deployment) -> bool {
    matches!(
        d.status.as_str(),
        DEPLOYMENT_STATUS_PAUSED | DEPLOYMENT_STATUS_FAILED | DEPLOYMENT_STATUS_CANCELLED
    )
}

pub fn status_update(d: &Deployment, status: &str, desc: &str) -> DeploymentStatusUpdate {
    DeploymentStatusUpdate {
        deployment_id: d.id.clone(),
        status: status.into(),
        status_description: desc.into(),
    }
}

pub fn cancel(d: &Deployment, desc: &str) -> DeploymentStatusUpdate {
    status_update(d, DEPLOYMENT_STATUS_CANCELLED, desc)
}

pub fn succeed(d: &Deployment) -> DeploymentStatusUpdate {
    status_update(
        d,
        DEPLOYMENT_STATUS_SUCCESSFUL,
        caravan_structs::DEPLOYMENT_DESC_SUCCESSFUL,
    )
}
