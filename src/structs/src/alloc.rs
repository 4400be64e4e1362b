//! Allocations: a task group placed on a node, its task states, events and placement metrics.

use crate::job::Job;
use crate::resources::AllocatedResources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const ALLOC_DESIRED_RUN: &str = "run";
pub const ALLOC_DESIRED_STOP: &str = "stop";
pub const ALLOC_DESIRED_EVICT: &str = "evict";

pub const ALLOC_CLIENT_PENDING: &str = "pending";
pub const ALLOC_CLIENT_RUNNING: &str = "running";
pub const ALLOC_CLIENT_COMPLETE: &str = "complete";
pub const ALLOC_CLIENT_FAILED: &str = "failed";
pub const ALLOC_CLIENT_LOST: &str = "lost";
pub const ALLOC_CLIENT_UNKNOWN: &str = "unknown";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Allocation {
    #[serde(rename = "ID")]
    pub id: String,
    pub namespace: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    /// Shared with every allocation of the same job version.
    pub job: Option<Arc<Job>>,
    pub task_group: String,
    pub allocated_resources: AllocatedResources,
    pub metrics: Option<AllocMetric>,
    pub desired_status: String,
    pub desired_description: String,
    pub desired_transition: DesiredTransition,
    pub client_status: String,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    #[serde(rename = "DeploymentID")]
    pub deployment_id: String,
    pub deployment_status: Option<AllocDeploymentStatus>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    pub previous_allocation: String,
    pub next_allocation: String,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub preempted_allocations: Vec<String>,
    pub create_index: u64,
    pub modify_index: u64,
    pub alloc_modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
    /// Task name → the JWT of its default workload identity, signed when the plan is applied.
    pub signed_identities: BTreeMap<String, String>,
    /// The root key that signed them.
    #[serde(rename = "SigningKeyID")]
    pub signing_key_id: String,
    /// Task name → identity name → JWT of the task's named identities. Caravan's addition:
    /// Nomad's client asks the server for these later; Caravan signs them with the default.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub signed_named_identities: BTreeMap<String, BTreeMap<String, String>>,
}

impl Default for Allocation {
    fn default() -> Self {
        Allocation {
            id: String::new(),
            namespace: crate::DEFAULT_NAMESPACE.into(),
            eval_id: String::new(),
            name: String::new(),
            node_id: String::new(),
            node_name: String::new(),
            job_id: String::new(),
            job: None,
            task_group: String::new(),
            allocated_resources: AllocatedResources::default(),
            metrics: None,
            desired_status: ALLOC_DESIRED_RUN.into(),
            desired_description: String::new(),
            desired_transition: DesiredTransition::default(),
            client_status: ALLOC_CLIENT_PENDING.into(),
            client_description: String::new(),
            task_states: BTreeMap::new(),
            deployment_id: String::new(),
            deployment_status: None,
            followup_eval_id: String::new(),
            previous_allocation: String::new(),
            next_allocation: String::new(),
            reschedule_tracker: None,
            preempted_allocations: vec![],
            create_index: 0,
            modify_index: 0,
            alloc_modify_index: 0,
            create_time: 0,
            modify_time: 0,
            signed_identities: BTreeMap::new(),
            signing_key_id: String::new(),
            signed_named_identities: BTreeMap::new(),
        }
    }
}

impl Allocation {
    /// The client has finished with it: complete, failed or lost.
    pub fn client_terminal(&self) -> bool {
        matches!(
            self.client_status.as_str(),
            ALLOC_CLIENT_COMPLETE | ALLOC_CLIENT_FAILED | ALLOC_CLIENT_LOST
        )
    }

    /// The server wants it gone.
    pub fn server_terminal(&self) -> bool {
        matches!(
            self.desired_status.as_str(),
            ALLOC_DESIRED_STOP | ALLOC_DESIRED_EVICT
        )
    }

    pub fn terminal(&self) -> bool {
        self.client_terminal() || self.server_terminal()
    }

    /// The index in the alloc name `job.group[N]`.
    pub fn index(&self) -> usize {
        self.name
            .rsplit_once('[')
            .and_then(|(_, r)| r.strip_suffix(']'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    pub fn job_version(&self) -> u64 {
        self.job.as_ref().map(|j| j.version).unwrap_or(0)
    }

    /// The stub `GET /v1/allocations` lists.
    pub fn stub(&self) -> AllocListStub {
        AllocListStub {
            id: self.id.clone(),
            eval_id: self.eval_id.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            node_id: self.node_id.clone(),
            node_name: self.node_name.clone(),
            job_id: self.job_id.clone(),
            job_type: self
                .job
                .as_ref()
                .map(|j| j.job_type.clone())
                .unwrap_or_default(),
            job_version: self.job_version(),
            task_group: self.task_group.clone(),
            desired_status: self.desired_status.clone(),
            desired_description: self.desired_description.clone(),
            client_status: self.client_status.clone(),
            client_description: self.client_description.clone(),
            task_states: self.task_states.clone(),
            deployment_status: self.deployment_status.clone(),
            followup_eval_id: self.followup_eval_id.clone(),
            reschedule_tracker: self.reschedule_tracker.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
            create_time: self.create_time,
            modify_time: self.modify_time,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub node_name: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub job_type: String,
    pub job_version: u64,
    pub task_group: String,
    pub desired_status: String,
    pub desired_description: String,
    pub client_status: String,
    pub client_description: String,
    pub task_states: BTreeMap<String, TaskState>,
    pub deployment_status: Option<AllocDeploymentStatus>,
    #[serde(rename = "FollowupEvalID")]
    pub followup_eval_id: String,
    pub reschedule_tracker: Option<RescheduleTracker>,
    pub create_index: u64,
    pub modify_index: u64,
    pub create_time: i64,
    pub modify_time: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DesiredTransition {
    pub migrate: Option<bool>,
    pub reschedule: Option<bool>,
    pub force_reschedule: Option<bool>,
    pub no_shutdown_delay: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocDeploymentStatus {
    pub healthy: Option<bool>,
    pub timestamp: String,
    pub canary: bool,
    pub modify_index: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RescheduleTracker {
    pub events: Vec<RescheduleEvent>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RescheduleEvent {
    pub reschedule_time: i64,
    #[serde(rename = "PrevAllocID")]
    pub prev_alloc_id: String,
    #[serde(rename = "PrevNodeID")]
    pub prev_node_id: String,
    pub delay: i64,
}

pub const TASK_STATE_PENDING: &str = "pending";
pub const TASK_STATE_RUNNING: &str = "running";
pub const TASK_STATE_DEAD: &str = "dead";

/// A task's state as the client reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskState {
    pub state: String,
    pub failed: bool,
    pub restarts: u64,
    /// RFC 3339 time, or null (Go's zero time is what Nomad sends: `0001-01-01T00:00:00Z`).
    pub last_restart: Option<String>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub events: Vec<TaskEvent>,
}

impl Default for TaskState {
    fn default() -> Self {
        TaskState {
            state: TASK_STATE_PENDING.into(),
            failed: false,
            restarts: 0,
            last_restart: None,
            started_at: None,
            finished_at: None,
            events: vec![],
        }
    }
}

pub const TASK_EVENT_RECEIVED: &str = "Received";
pub const TASK_EVENT_SETUP: &str = "Task Setup";
pub const TASK_EVENT_STARTED: &str = "Started";
pub const TASK_EVENT_TERMINATED: &str = "Terminated";
pub const TASK_EVENT_DRIVER_FAILURE: &str = "Driver Failure";
pub const TASK_EVENT_RESTARTING: &str = "Restarting";
pub const TASK_EVENT_NOT_RESTARTING: &str = "Not Restarting";
pub const TASK_EVENT_KILLING: &str = "Killing";
pub const TASK_EVENT_KILLED: &str = "Killed";
pub const TASK_EVENT_SETUP_FAILURE: &str = "Setup Failure";
pub const TASK_EVENT_SIGNALING: &str = "Signaling";
pub const TASK_EVENT_RESTART_SIGNAL: &str = "Restart Signaled";
pub const TASK_EVENT_RESTORE_FAILED: &str = "Failed Restoring Task";

/// One entry of a task's event log, as `alloc status` shows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskEvent {
    #[serde(rename = "Type")]
    pub event_type: String,
    pub time: i64,
    pub display_message: String,
    pub details: BTreeMap<String, String>,
    pub message: String,
    pub exit_code: i32,
    pub signal: i32,
    pub kill_timeout: i64,
    pub kill_error: String,
    pub driver_error: String,
    pub setup_error: String,
    pub restart_reason: String,
    pub start_delay: i64,
    pub fails_task: bool,
}

impl TaskEvent {
    pub fn new(event_type: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        TaskEvent {
            event_type: event_type.into(),
            time: crate::time::now_nanos(),
            display_message: message.clone(),
            message,
            ..Default::default()
        }
    }
}

/// Placement metrics, as Nomad reports them for every placement and every failed group.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocMetric {
    pub nodes_evaluated: u64,
    pub nodes_filtered: u64,
    pub nodes_in_pool: u64,
    pub nodes_available: BTreeMap<String, u64>,
    pub class_filtered: BTreeMap<String, u64>,
    pub constraint_filtered: BTreeMap<String, u64>,
    pub nodes_exhausted: u64,
    pub class_exhausted: BTreeMap<String, u64>,
    pub dimension_exhausted: BTreeMap<String, u64>,
    pub quota_exhausted: Vec<String>,
    pub resources_exhausted: BTreeMap<String, serde_json::Value>,
    pub scores: BTreeMap<String, f64>,
    pub score_meta_data: Vec<NodeScoreMeta>,
    pub allocation_time: i64,
    pub coalesced_failures: u64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeScoreMeta {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    pub scores: BTreeMap<String, f64>,
    pub norm_score: f64,
}
