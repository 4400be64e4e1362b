//! Job operations after submit: parameterized jobs and their dispatched children, the group
//! `scaling` block and scaling events, in Nomad's JSON shape (`ParameterizedJobConfig`,
//! `DispatchPayloadConfig`, `ScalingEvent`, `JobScaleStatus`). The job keeps these blocks as
//! JSON; the typed views here read them.

use crate::{Job, Task, TaskGroup, JOB_TYPE_BATCH, JOB_TYPE_SYSBATCH};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};

pub const DISPATCH_PAYLOAD_FORBIDDEN: &str = "forbidden";
pub const DISPATCH_PAYLOAD_OPTIONAL: &str = "optional";
pub const DISPATCH_PAYLOAD_REQUIRED: &str = "required";

/// What a dispatched child's ID adds to its parent's: `<parent>/dispatch-<unix>-<8 hex>`.
pub const DISPATCH_LAUNCH_SUFFIX: &str = "/dispatch-";

/// Nomad's limit on a dispatch payload (16 KiB).
pub const DISPATCH_PAYLOAD_SIZE_LIMIT: usize = 16 * 1024;

/// Scaling events kept per task group (Nomad's `JobTrackedScalingEvents`).
pub const JOB_TRACKED_SCALING_EVENTS: usize = 20;

/// The evaluation trigger of a count change through the scaling API.
pub const TRIGGER_SCALING: &str = "job-scaling";

/// The `parameterized` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ParameterizedJobConfig {
    /// `required`, `optional` (the default) or `forbidden`.
    pub payload: String,
    pub meta_required: Vec<String>,
    pub meta_optional: Vec<String>,
}

/// A group's `scaling` block: the bounds the scaling API keeps the count within.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupScaling {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub enabled: Option<bool>,
    #[serde(rename = "Type")]
    pub policy_type: String,
}

/// One scaling request against a task group, as `GET /v1/job/:id/scale` reports it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScalingEvent {
    /// Unix nanoseconds.
    pub time: i64,
    /// The new count, when the request set one.
    pub count: Option<i64>,
    pub previous_count: i64,
    pub message: String,
    pub error: bool,
    pub meta: Option<BTreeMap<String, serde_json::Value>>,
    /// The evaluation the count change created.
    #[serde(rename = "EvalID")]
    pub eval_id: Option<String>,
    pub create_index: u64,
}

/// `GET /v1/job/:id/scale`: Nomad's `JobScaleStatus`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobScaleStatus {
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub namespace: String,
    pub job_create_index: u64,
    pub job_modify_index: u64,
    pub job_stopped: bool,
    pub task_groups: BTreeMap<String, TaskGroupScaleStatus>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroupScaleStatus {
    pub desired: i64,
    pub placed: i64,
    pub running: i64,
    pub healthy: i64,
    pub unhealthy: i64,
    /// Newest first.
    pub events: Vec<ScalingEvent>,
}

/// A dispatched child's ID (Nomad's `DispatchedID`): the parent's ID, `/dispatch-`, the
/// optional prefix template, the Unix time in seconds and 8 random hex characters.
pub fn dispatched_id(parent: &str, prefix_template: &str, unix_secs: i64) -> String {
    let rand = crate::new_id();
    let short = &rand[..8];
    if prefix_template.is_empty() {
        format!("{parent}{DISPATCH_LAUNCH_SUFFIX}{unix_secs}-{short}")
    } else {
        format!("{parent}{DISPATCH_LAUNCH_SUFFIX}{prefix_template}-{unix_secs}-{short}")
    }
}

/// Whether `file`, taken relative to a task's `local/` directory, leads out of the task
/// directory (lexically: `..` past the top, or an absolute path).
pub fn payload_path_escapes(file: &str) -> bool {
    let mut depth: i32 = 1; // inside local/
    for c in Path::new(file).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            Component::RootDir | Component::Prefix(_) => return true,
        }
    }
    false
}

impl Task {
    /// The `dispatch_payload { file }` destination, when set.
    pub fn dispatch_payload_file(&self) -> Option<String> {
        self.dispatch_payload
            .as_ref()
            .and_then(|d| d.get("File"))
            .and_then(|f| f.as_str())
            .filter(|f| !f.is_empty())
            .map(str::to_string)
    }
}

impl TaskGroup {
    /// The group's `scaling` block, read from its JSON (`None` when absent or unreadable;
    /// [`Job::validate_jobops`] reports the unreadable).
    pub fn scaling_bounds(&self) -> Option<GroupScaling> {
        let v = self.scaling.as_ref().filter(|v| !v.is_null())?;
        serde_json::from_value(crate::strip_nulls(v.clone())).ok()
    }
}

impl Job {
    /// A parameterized job that is not itself a dispatched child: it registers, but only its
    /// dispatched children run (Nomad's `IsParameterized`).
    pub fn is_parameterized(&self) -> bool {
        self.parameterized_job
            .as_ref()
            .is_some_and(|p| !p.is_null())
            && !self.dispatched
    }

    /// The `parameterized` block, read from its JSON.
    pub fn parameterized_config(&self) -> Option<ParameterizedJobConfig> {
        let v = self.parameterized_job.as_ref().filter(|v| !v.is_null())?;
        serde_json::from_value(crate::strip_nulls(v.clone())).ok()
    }

    /// Nomad's defaults for the job-operation blocks: a parameterized job's payload is
    /// `optional` unless set.
    pub fn canonicalize_jobops(&mut self) {
        if let Some(serde_json::Value::Object(p)) = self.parameterized_job.as_mut() {
            let empty = p
                .get("Payload")
                .and_then(|v| v.as_str())
                .is_none_or(str::is_empty);
            if empty {
                p.insert("Payload".into(), DISPATCH_PAYLOAD_OPTIONAL.into());
            }
        }
    }

    /// What Nomad's `Job.Validate` checks of the parameterized, dispatch payload and group
    /// scaling blocks, in its words.
    pub fn validate_jobops(&self) -> Vec<String> {
        let mut errs = Vec::new();
        if self.is_parameterized() {
            if self.job_type != JOB_TYPE_BATCH && self.job_type != JOB_TYPE_SYSBATCH {
                errs.push(format!(
                    "Parameterized job can only be used with {JOB_TYPE_BATCH:?} or {JOB_TYPE_SYSBATCH:?} scheduler"
                ));
            }
            match self.parameterized_config() {
                None => errs.push("Parameterized job block is not readable: expected Payload (string), MetaRequired and MetaOptional (lists of strings)".into()),
                Some(p) => {
                    match p.payload.as_str() {
                        DISPATCH_PAYLOAD_OPTIONAL | DISPATCH_PAYLOAD_REQUIRED
                        | DISPATCH_PAYLOAD_FORBIDDEN => {}
                        other => errs.push(format!("Unknown payload requirement: {other:?}")),
                    }
                    let both: Vec<&String> = p
                        .meta_required
                        .iter()
                        .filter(|k| p.meta_optional.contains(k))
                        .collect();
                    if !both.is_empty() {
                        errs.push(format!(
                            "Required and optional meta keys should be disjoint. Following keys exist in both: {both:?}"
                        ));
                    }
                }
            }
        }
        for tg in &self.task_groups {
            for t in &tg.tasks {
                if let Some(file) = t.dispatch_payload_file() {
                    if payload_path_escapes(&file) {
                        errs.push(format!(
                            "Task {} in group {}: Dispatch Payload validation failed: destination {file:?} escapes the task directory",
                            t.name, tg.name
                        ));
                    }
                }
            }
            if tg.scaling.as_ref().is_some_and(|v| !v.is_null()) {
                validate_group_scaling(tg, &mut errs);
            }
        }
        errs
    }
}

/// Nomad's `validateScalingPolicy` for a group's `scaling` block.
fn validate_group_scaling(tg: &TaskGroup, errs: &mut Vec<String>) {
    let prefix = format!("Task group {}: Scaling policy invalid", tg.name);
    let Some(s) = tg.scaling_bounds() else {
        errs.push(format!(
            "{prefix}: expected Min and Max (integers), Enabled (bool) and Type (string)"
        ));
        return;
    };
    if !s.policy_type.is_empty() && s.policy_type != "horizontal" {
        errs.push(format!(
            "{prefix}: a group scaling block is \"horizontal\", not {:?}",
            s.policy_type
        ));
    }
    let min = s.min.unwrap_or(0);
    let Some(max) = s.max.filter(|m| *m >= 0) else {
        errs.push(format!(
            "{prefix}: maximum count must be specified and non-negative"
        ));
        return;
    };
    if min < 0 {
        errs.push(format!(
            "{prefix}: minimum count must be specified and non-negative"
        ));
    }
    if max < min {
        errs.push(format!(
            "{prefix}: maximum count must not be less than minimum count"
        ));
    }
    if max < i64::from(tg.count) {
        errs.push(format!(
            "{prefix}: task group count must not be greater than maximum count in scaling policy"
        ));
    }
    if i64::from(tg.count) < min {
        errs.push(format!(
            "{prefix}: task group count must not be less than minimum count in scaling policy"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(v: serde_json::Value) -> Job {
        let mut j: Job = serde_json::from_value(v).unwrap();
        j.canonicalize();
        j
    }

    #[test]
    fn parameterized_defaults_and_checks() {
        let j = job(
            json!({"ID": "p", "Type": "batch", "ParameterizedJob": {"MetaRequired": ["a"]},
            "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}),
        );
        assert!(j.is_parameterized());
        assert_eq!(j.parameterized_config().unwrap().payload, "optional");
        assert!(j.validate().is_ok(), "{:?}", j.validate());

        let mut child = j.clone();
        child.dispatched = true;
        assert!(!child.is_parameterized());

        let bad = job(
            json!({"ID": "p", "ParameterizedJob": {"Payload": "sometimes", "MetaRequired": ["a"], "MetaOptional": ["a"]},
            "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec",
                "DispatchPayload": {"File": "../../x"}}]}]}),
        );
        let errs = bad.validate().unwrap_err();
        assert!(
            errs.iter()
                .any(|e| e.contains("can only be used with \"batch\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("Unknown payload requirement: \"sometimes\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("disjoint") && e.contains("\"a\"")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.contains("escapes the task directory")),
            "{errs:?}"
        );
    }

    #[test]
    fn payload_paths_stay_in_the_task_dir() {
        assert!(!payload_path_escapes("input.txt"));
        assert!(!payload_path_escapes("in/put.txt"));
        assert!(!payload_path_escapes("../secrets/x"));
        assert!(payload_path_escapes("../../x"));
        assert!(payload_path_escapes("/etc/passwd"));
        assert!(payload_path_escapes("a/../../../x"));
    }

    #[test]
    fn scaling_bounds_are_checked_against_the_count() {
        let mk = |count: i64, scaling: serde_json::Value| {
            job(
                json!({"ID": "s", "TaskGroups": [{"Name": "g", "Count": count, "Scaling": scaling,
                "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}),
            )
        };
        assert!(mk(2, json!({"Min": 1, "Max": 3})).validate().is_ok());
        let e = mk(5, json!({"Min": 1, "Max": 3})).validate().unwrap_err();
        assert!(e[0].contains("greater than maximum"), "{e:?}");
        let e = mk(0, json!({"Min": 1, "Max": 3})).validate().unwrap_err();
        assert!(e[0].contains("less than minimum"), "{e:?}");
        let e = mk(1, json!({"Min": 1})).validate().unwrap_err();
        assert!(e[0].contains("maximum count must be specified"), "{e:?}");
        let e = mk(1, json!({"Min": 4, "Max": 2})).validate().unwrap_err();
        assert!(
            e.iter()
                .any(|x| x.contains("must not be less than minimum count")),
            "{e:?}"
        );
        let g = &mk(2, json!({"Min": 1, "Max": 3})).task_groups[0];
        assert_eq!(g.scaling_bounds().unwrap().max, Some(3));
    }

    #[test]
    fn dispatched_ids_read_like_nomad() {
        let id = dispatched_id("report", "", 1700000000);
        assert!(id.starts_with("report/dispatch-1700000000-"), "{id}");
        assert_eq!(id.len(), "report/dispatch-1700000000-".len() + 8);
        let id = dispatched_id("report", "nightly", 5);
        assert!(id.starts_with("report/dispatch-nightly-5-"), "{id}");
    }

    #[test]
    fn scale_status_serialises_with_nomad_names() {
        let s = JobScaleStatus {
            job_id: "j".into(),
            task_groups: [(
                "g".to_string(),
                TaskGroupScaleStatus {
                    desired: 2,
                    events: vec![ScalingEvent {
                        count: Some(2),
                        eval_id: Some("e".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["JobID"], "j");
        assert_eq!(v["TaskGroups"]["g"]["Desired"], 2);
        assert_eq!(v["TaskGroups"]["g"]["Events"][0]["EvalID"], "e");
        assert_eq!(v["TaskGroups"]["g"]["Events"][0]["Count"], 2);
    }
}
