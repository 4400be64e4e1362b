//! API response shapes the shared data model does not carry (list stubs, summaries, plan
//! diffs, agent members, search results), in Nomad's JSON form. Decoding is lenient: every
//! field defaults, so a server that omits one still reads.

use caravan_structs::{AllocMetric, Evaluation, PlanAnnotations};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobListStub {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub name: String,
    pub namespace: String,
    #[serde(rename = "Type")]
    pub job_type: String,
    pub priority: i64,
    pub periodic: bool,
    pub parameterized_job: bool,
    pub stop: bool,
    pub status: String,
    pub submit_time: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupSummary {
    pub queued: i64,
    pub complete: i64,
    pub failed: i64,
    pub running: i64,
    pub starting: i64,
    pub lost: i64,
    pub unknown: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobChildrenSummary {
    pub pending: i64,
    pub running: i64,
    pub dead: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobSummary {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub summary: BTreeMap<String, TaskGroupSummary>,
    pub children: Option<JobChildrenSummary>,
}

/// `PUT /v1/jobs` and `DELETE /v1/job/:id` answers.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobRegisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub warnings: String,
}

/// `PUT /v1/validate/job` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobValidateResponse {
    pub driver_config_validated: bool,
    pub validation_errors: Vec<String>,
    pub error: String,
    pub warnings: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FieldDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub old: String,
    pub new: String,
    pub annotations: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ObjectDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub annotations: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    pub name: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub tasks: Vec<TaskDiff>,
    pub updates: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobDiff {
    #[serde(rename = "Type")]
    pub diff_type: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub fields: Vec<FieldDiff>,
    pub objects: Vec<ObjectDiff>,
    pub task_groups: Vec<TaskGroupDiff>,
}

/// `PUT /v1/job/:id/plan` answer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobPlanResponse {
    pub job_modify_index: u64,
    pub created_evals: Vec<Evaluation>,
    pub diff: Option<JobDiff>,
    pub annotations: Option<PlanAnnotations>,
    #[serde(rename = "FailedTGAllocs")]
    pub failed_tg_allocs: BTreeMap<String, AllocMetric>,
    pub next_periodic_launch: Option<String>,
    pub warnings: String,
}

/// One entry of `GET /v1/agent/members`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AgentMember {
    pub name: String,
    pub addr: String,
    pub port: u16,
    pub tags: BTreeMap<String, String>,
    pub status: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServerMembers {
    pub server_name: String,
    pub server_region: String,
    pub server_dc: String,
    pub members: Vec<AgentMember>,
}

/// `PUT /v1/search` answer: matching IDs per context (`jobs`, `allocs`, `nodes`, `evals`,
/// `deployments`, ...).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SearchResponse {
    pub matches: BTreeMap<String, Vec<String>>,
    pub truncations: BTreeMap<String, bool>,
}
