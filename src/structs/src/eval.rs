//! Evaluations: the server's unit of scheduling work.

use crate::alloc::AllocMetric;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const EVAL_STATUS_BLOCKED: &str = "blocked";
pub const EVAL_STATUS_PENDING: &str = "pending";
pub const EVAL_STATUS_COMPLETE: &str = "complete";
pub const EVAL_STATUS_FAILED: &str = "failed";
pub const EVAL_STATUS_CANCELED: &str = "canceled";

pub const TRIGGER_JOB_REGISTER: &str = "job-register";
pub const TRIGGER_JOB_DEREGISTER: &str = "job-deregister";
pub const TRIGGER_PERIODIC_JOB: &str = "periodic-job";
pub const TRIGGER_NODE_UPDATE: &str = "node-update";
pub const TRIGGER_ALLOC_STOP: &str = "alloc-stop";
pub const TRIGGER_RETRY_FAILED_ALLOC: &str = "alloc-failure";
pub const TRIGGER_QUEUED_ALLOCS: &str = "queued-allocs";
pub const TRIGGER_DEPLOYMENT_WATCHER: &str = "deployment-watcher";
pub const TRIGGER_FAILED_FOLLOW_UP: &str = "failed-follow-up";
pub const TRIGGER_MAX_PLANS: &str = "max-plan-attempts";
pub const TRIGGER_FORCE_EVAL: &str = "job-evaluate";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Evaluation {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    pub priority: i32,
    #[serde(rename = "Type")]
    pub eval_type: String,
    pub triggered_by: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_modify_index: u64,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_modify_index: u64,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub status: String,
    pub status_description: String,
    pub wait: i64,
    /// Unix nanoseconds; 0 = no delay.
    pub wait_until: i64,
    pub next_eval: String,
    pub previous_eval: String,
    pub blocked_eval: String,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub class_eligibility: BTreeMap<String, bool>,
    pub escaped_computed_class: bool,
    pub annotate_plan: bool,
    pub queued_allocations: BTreeMap<String, i64>,
    pub snapshot_index: u64,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation {
            id: String::new(),
            namespace: crate::DEFAULT_NAMESPACE.into(),
            priority: 50,
            eval_type: crate::JOB_TYPE_SERVICE.into(),
            triggered_by: String::new(),
            job_id: String::new(),
            job_modify_index: 0,
            node_id: String::new(),
            node_modify_index: 0,
            deployment_id: String::new(),
            status: EVAL_STATUS_PENDING.into(),
            status_description: String::new(),
            wait: 0,
            wait_until: 0,
            next_eval: String::new(),
            previous_eval: String::new(),
            blocked_eval: String::new(),
            failed_tg_allocs: BTreeMap::new(),
            class_eligibility: BTreeMap::new(),
            escaped_computed_class: false,
            annotate_plan: false,
            queued_allocations: BTreeMap::new(),
            snapshot_index: 0,
            create_index: 0,
            modify_index: 0,
            create_time: 0,
            modify_time: 0,
        }
    }
}

impl Evaluation {
    pub fn terminal(&self) -> bool {
        matches!(
            self.status.as_str(),
            EVAL_STATUS_COMPLETE | EVAL_STATUS_FAILED | EVAL_STATUS_CANCELED
        )
    }

    /// A new pending evaluation for a job.
    pub fn for_job(job: &crate::Job, triggered_by: &str) -> Self {
        let now = crate::time::now_nanos();
        Evaluation {
            id: crate::new_id(),
            namespace: job.namespace.clone(),
            priority: job.priority,
            eval_type: job.job_type.clone(),
            triggered_by: triggered_by.into(),
            job_id: job.id.clone(),
            job_modify_index: job.job_modify_index,
            create_time: now,
            modify_time: now,
            ..Default::default()
        }
    }
}
