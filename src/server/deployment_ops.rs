//! Operator actions on a deployment, as Nomad's Deployment endpoints: fail it (the scheduler
//! stops rolling it out), pause or resume it (a paused deployment places nothing new and its
//! progress deadline waits), and promote its canaries. Each is a deployment update with an
//! evaluation for the job, through the typed apply path.

use super::command::Command;
use super::{Server, ServerError};
use caravan_structs::*;

pub const DEPLOYMENT_DESC_FAILED_BY_USER: &str = "Deployment marked as failed";
pub const DEPLOYMENT_DESC_PAUSED: &str = "Deployment is paused";

/// What the deployment endpoints answer (Nomad's `DeploymentUpdateResponse`).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeploymentUpdateResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub deployment_modify_index: u64,
    pub index: u64,
}

impl Server {
    pub(crate) fn lock_deployment_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        match self.deployment_writes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    fn active_deployment(&self, id: &str, verb: &str) -> Result<Deployment, ServerError> {
        let snap = self.store.snapshot();
        let d = snap
            .deployments
            .get(id)
            .ok_or_else(|| ServerError::NotFound(format!("deployment {id:?} not found")))?;
        if !d.active() {
            return Err(ServerError::BadRequest(format!(
                "can't {verb} terminal deployment (status {})",
                d.status
            )));
        }
        Ok((**d).clone())
    }

    fn update_deployment(
        &self,
        mut d: Deployment,
        status: &str,
        desc: &str,
    ) -> DeploymentUpdateResponse {
        d.status = status.into();
        d.status_description = desc.into();
        let job = self.store.snapshot().job(&d.namespace, &d.job_id);
        let evals: Vec<Evaluation> = job
            .map(|j| {
                let mut e = Evaluation::for_job(&j, TRIGGER_DEPLOYMENT_WATCHER);
                e.deployment_id = d.id.clone();
                e
            })
            .into_iter()
            .collect();
        let eval_id = evals.first().map(|e| e.id.clone()).unwrap_or_default();
        let index = self.raft_apply(Command::DeploymentUpsert {
            deployment: d,
            evals,
        });
        DeploymentUpdateResponse {
            eval_create_index: if eval_id.is_empty() { 0 } else { index },
            eval_id,
            deployment_modify_index: index,
            index,
        }
    }

    /// `PUT /v1/deployment/fail/:id`.
    pub fn deployment_fail(&self, id: &str) -> Result<DeploymentUpdateResponse, ServerError> {
        let _writing = self.lock_deployment_writes();
        let d = self.active_deployment(id, "fail")?;
        Ok(self.update_deployment(d, DEPLOYMENT_STATUS_FAILED, DEPLOYMENT_DESC_FAILED_BY_USER))
    }

    /// `PUT /v1/deployment/pause/:id` with `Pause` true or false.
    pub fn deployment_pause(
        &self,
        id: &str,
        pause: bool,
    ) -> Result<DeploymentUpdateResponse, ServerError> {
        let _writing = self.lock_deployment_writes();
        let d = self.active_deployment(id, if pause { "pause" } else { "resume" })?;
        Ok(if pause {
            self.update_deployment(d, DEPLOYMENT_STATUS_PAUSED, DEPLOYMENT_DESC_PAUSED)
        } else {
            // The progress deadline starts over: time spent paused is not a lack of progress.
            let mut d = d;
            let now = time::now_nanos();
            for s in d.task_groups.values_mut() {
                if s.progress_deadline > 0 {
                    s.require_progress_by = Some(crate::util::rfc3339(now + s.progress_deadline));
                }
            }
            self.update_deployment(d, DEPLOYMENT_STATUS_RUNNING, DEPLOYMENT_DESC_RUNNING)
        })
    }

    /// `PUT /v1/deployment/promote/:id`: canaries are not built, so there is never one to
    /// promote; the answer says so instead of pretending.
    pub fn deployment_promote(&self, id: &str) -> Result<DeploymentUpdateResponse, ServerError> {
        let d = self.active_deployment(id, "promote")?;
        Err(ServerError::BadRequest(format!(
            "deployment {} has no canaries to promote (Caravan does not place canaries yet)",
            d.id
        )))
    }
}
