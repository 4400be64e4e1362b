//! Job operations after submit, as Nomad's `Job.Revert`, `Job.Scale`, `Job.ScaleStatus` and
//! `Job.Dispatch` do them: revert registers an old version's spec as a new version; scale
//! changes one group's count within its `scaling` bounds and records a scaling event; dispatch
//! derives a child job from a parameterized one, with its payload and meta. Every change goes
//! through [`Server::raft_apply`].

use super::command::Command;
use super::endpoints::{JobRegisterResponse, ServerError};
use super::Server;
use base64::Engine;
use caravan_structs::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const REGISTRATION_DISABLED: &str =
    "job registration, dispatch, and scale are disabled by the scheduler configuration";

/// The body of `PUT /v1/job/:id/scale` (Nomad's `api.ScalingRequest`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ScaleRequest {
    pub count: Option<i64>,
    /// `Group` (required), and optionally `Job` and `Namespace`, which must match the request.
    pub target: BTreeMap<String, String>,
    pub message: String,
    pub error: bool,
    pub meta: Option<BTreeMap<String, serde_json::Value>>,
    /// Accepted for compatibility; Caravan has no Sentinel policies to override.
    pub policy_override: bool,
    /// When non-zero, the scale only happens if the job's modify index still is this.
    pub job_modify_index: u64,
}

/// A dispatch request, its payload already decoded.
#[derive(Debug, Clone, Default)]
pub struct DispatchRequest {
    pub payload: Vec<u8>,
    pub meta: BTreeMap<String, String>,
    pub id_prefix_template: String,
    /// 0: the parent's priority.
    pub priority: i32,
}

/// What `PUT /v1/job/:id/dispatch` answers (Nomad's `JobDispatchResponse`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DispatchResponse {
    #[serde(rename = "DispatchedJobID")]
    pub dispatched_job_id: String,
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_create_index: u64,
    pub index: u64,
}

/// The update rules Nomad's `validateJobUpdate` keeps for parameterized and dispatched jobs.
pub(super) fn validate_job_update(old: Option<&Job>, new: &Job) -> Result<(), ServerError> {
    let bad = |m: &str| Err(ServerError::BadRequest(m.into()));
    let Some(old) = old else {
        if new.dispatched {
            return bad("job can't be submitted with 'Dispatched' set");
        }
        return Ok(());
    };
    if old.is_parameterized() && !new.is_parameterized() && !new.dispatched {
        return bad("cannot update parameterized job to being non-parameterized");
    }
    if new.is_parameterized() && !old.is_parameterized() && !old.dispatched {
        return bad("cannot update non-parameterized job to being parameterized");
    }
    if old.dispatched != new.dispatched {
        return bad("field 'Dispatched' is read-only");
    }
    Ok(())
}

impl Server {
    fn registrations_allowed(&self) -> Result<(), ServerError> {
        if self.scheduler_config().reject_job_registration {
            return Err(ServerError::BadRequest(REGISTRATION_DISABLED.into()));
        }
        Ok(())
    }

    /// `PUT /v1/job/:id/revert`: registers version `version`'s spec as a new version. With
    /// `enforce_prior`, only while the current version still is that one.
    pub fn job_revert(
        &self,
        ns: &str,
        id: &str,
        version: u64,
        enforce_prior: Option<u64>,
    ) -> Result<JobRegisterResponse, ServerError> {
        let snap = self.store.snapshot();
        let cur = snap
            .job(ns, id)
            .ok_or_else(|| ServerError::NotFound(format!("job {id:?} not found")))?;
        if version == cur.version {
            return Err(ServerError::BadRequest(format!(
                "can't revert to current version ({version})"
            )));
        }
        let old = snap.job_version(ns, id, version).ok_or_else(|| {
            ServerError::NotFound(format!(
                "job {id:?} in namespace {ns:?} at version {version} not found"
            ))
        })?;
        if let Some(want) = enforce_prior {
            if cur.version != want {
                return Err(ServerError::Conflict(format!(
                    "Current job has version {}; enforcing version {want}",
                    cur.version
                )));
            }
        }
        let mut job = (*old).clone();
        // A revert is a new registration: the new version proves itself again.
        job.stable = false;
        tracing::info!(job = %id, from = cur.version, to = version, "reverting job");
        self.job_register(job, enforce_prior.map(|_| cur.job_modify_index))
    }

    /// `PUT /v1/job/:id/scale`: sets one group's count (within its `scaling` bounds) as a new
    /// job version with a `job-scaling` evaluation, and records the scaling event. A request
    /// without a count only records the event (an autoscaler reporting).
    pub fn job_scale(
        &self,
        ns: &str,
        id: &str,
        req: ScaleRequest,
    ) -> Result<JobRegisterResponse, ServerError> {
        let bad = |m: String| Err(ServerError::BadRequest(m));
        if let Some(t) = req.target.get("Namespace").filter(|t| !t.is_empty()) {
            if t != ns {
                return bad("namespace in payload did not match header".into());
            }
        }
        if let Some(t) = req.target.get("Job").filter(|t| !t.is_empty()) {
            if t != id {
                return bad("job ID in payload did not match URL".into());
            }
        }
        let group = req.target.get("Group").cloned().unwrap_or_default();
        if group.is_empty() {
            return bad("missing task group name for scaling action".into());
        }
        if let Some(c) = req.count {
            if c < 0 {
                return bad("scaling action count can't be negative".into());
            }
            if req.error {
                return bad("scaling action should not contain count if error is true".into());
            }
            if i32::try_from(c).is_err() {
                return bad(format!(
                    "new scaling count is too large for TaskGroup.Count (int): {c}"
                ));
            }
        }
        self.registrations_allowed()?;
        let snap = self.store.snapshot();
        let job = snap
            .job(ns, id)
            .ok_or_else(|| ServerError::NotFound(format!("job {id:?} not found")))?;
        let tg = job.lookup_group(&group).ok_or_else(|| {
            ServerError::BadRequest(format!(
                "task group {group:?} specified for scaling does not exist in job"
            ))
        })?;
        let now = time::now_nanos();
        let mut event = ScalingEvent {
            time: now,
            count: req.count,
            previous_count: i64::from(tg.count),
            message: req.message.clone(),
            error: req.error,
            meta: req.meta.clone(),
            eval_id: None,
            create_index: 0,
        };
        let mut resp = JobRegisterResponse {
            known_leader: true,
            ..Default::default()
        };
        if let Some(count) = req.count {
            if let Some(bounds) = tg.scaling_bounds() {
                let min = bounds.min.unwrap_or(0);
                if count < min {
                    return bad(format!(
                        "group count was less than scaling policy minimum: {count} < {min}"
                    ));
                }
                if let Some(max) = bounds.max.filter(|max| *max < count) {
                    return bad(format!(
                        "group count was greater than scaling policy maximum: {count} > {max}"
                    ));
                }
            }
            if snap
                .latest_deployment(ns, id)
                .is_some_and(|d| d.active() && d.job_create_index == job.create_index)
            {
                return bad("job scaling blocked due to active deployment".into());
            }
            if req.job_modify_index > 0 && req.job_modify_index != job.job_modify_index {
                return Err(ServerError::Conflict(format!(
                    "Enforcing job modify index {}: job exists with conflicting job modify index: {}",
                    req.job_modify_index, job.job_modify_index
                )));
            }
            let mut scaled = (*job).clone();
            for g in &mut scaled.task_groups {
                if g.name == group {
                    g.count = i32::try_from(count).unwrap_or(i32::MAX);
                }
            }
            scaled.submit_time = now;
            let eval = (!scaled.is_parameterized() && scaled.periodic.is_none()).then(|| {
                let mut e = Evaluation::for_job(&scaled, TRIGGER_SCALING);
                e.create_time = now;
                e.modify_time = now;
                e
            });
            let eval_id = eval.as_ref().map(|e| e.id.clone()).unwrap_or_default();
            tracing::info!(job = %id, group = %group, from = tg.count, to = count, "scaling job");
            let index = self.raft_apply(Command::JobRegister { job: scaled, eval });
            resp.job_modify_index = self
                .store
                .snapshot()
                .job(ns, id)
                .map(|j| j.job_modify_index)
                .unwrap_or(index);
            if !eval_id.is_empty() {
                resp.eval_create_index = index;
                event.eval_id = Some(eval_id.clone());
                resp.eval_id = eval_id;
            }
        } else {
            resp.job_modify_index = job.modify_index;
        }
        resp.index = self.raft_apply(Command::ScalingEventRegister {
            namespace: ns.into(),
            job_id: id.into(),
            task_group: group,
            event,
        });
        Ok(resp)
    }

    /// `GET /v1/job/:id/scale`.
    pub fn job_scale_status(&self, ns: &str, id: &str) -> Result<JobScaleStatus, ServerError> {
        self.store
            .snapshot()
            .job_scale_status(ns, id)
            .ok_or_else(|| ServerError::NotFound("job not found".into()))
    }

    /// `PUT /v1/job/:id/dispatch`: checks the payload and meta against the parameterized
    /// job's rules, then registers the child `<parent>/dispatch-<time>-<id>` with its
    /// evaluation.
    pub fn job_dispatch(
        &self,
        ns: &str,
        id: &str,
        req: DispatchRequest,
    ) -> Result<DispatchResponse, ServerError> {
        self.registrations_allowed()?;
        let snap = self.store.snapshot();
        let parent = snap
            .job(ns, id)
            .ok_or_else(|| ServerError::NotFound("parameterized job not found".into()))?;
        if !parent.is_parameterized() {
            return Err(ServerError::BadRequest(format!(
                "Specified job {id:?} is not a parameterized job"
            )));
        }
        if parent.stop {
            return Err(ServerError::BadRequest(format!(
                "Specified job {id:?} is stopped"
            )));
        }
        let config = parent.parameterized_config().unwrap_or_default();
        let priority = if req.priority == 0 {
            parent.priority
        } else {
            req.priority
        };
        validate_dispatch(&req, &config, priority).map_err(ServerError::BadRequest)?;

        let now = time::now_nanos();
        let mut child = (*parent).clone();
        child.id = dispatched_id(&parent.id, &req.id_prefix_template, now / 1_000_000_000);
        child.name = child.id.clone();
        child.parent_id = parent.id.clone();
        child.dispatched = true;
        child.status = String::new();
        child.status_description = String::new();
        child.stable = false;
        child.version = 0;
        child.submit_time = now;
        child.priority = priority;
        child.meta.extend(req.meta.clone());
        child.payload = (!req.payload.is_empty())
            .then(|| base64::engine::general_purpose::STANDARD.encode(&req.payload));
        if let Err(errs) = child.validate() {
            return Err(ServerError::BadRequest(super::endpoints::format_multi(
                &errs,
            )));
        }
        let eval = Evaluation::for_job(&child, TRIGGER_JOB_REGISTER);
        let eval_id = eval.id.clone();
        tracing::info!(parent = %id, child = %child.id, "dispatching job");
        let child_id = child.id.clone();
        let index = self.raft_apply(Command::JobRegister {
            job: child,
            eval: Some(eval),
        });
        Ok(DispatchResponse {
            dispatched_job_id: child_id,
            eval_id,
            eval_create_index: index,
            job_create_index: index,
            index,
        })
    }
}

/// Nomad's `validateDispatchRequest`, in its words.
fn validate_dispatch(
    req: &DispatchRequest,
    config: &ParameterizedJobConfig,
    priority: i32,
) -> Result<(), String> {
    let has_payload = !req.payload.is_empty();
    match config.payload.as_str() {
        DISPATCH_PAYLOAD_REQUIRED if !has_payload => {
            return Err("Payload is not provided but required by parameterized job".into())
        }
        DISPATCH_PAYLOAD_FORBIDDEN if has_payload => {
            return Err("Payload provided but forbidden by parameterized job".into())
        }
        _ => {}
    }
    if req.payload.len() > DISPATCH_PAYLOAD_SIZE_LIMIT {
        return Err(format!(
            "Payload exceeds maximum size; {} > {DISPATCH_PAYLOAD_SIZE_LIMIT}",
            req.payload.len()
        ));
    }
    let unpermitted: Vec<&str> = req
        .meta
        .keys()
        .filter(|k| !config.meta_required.contains(k) && !config.meta_optional.contains(k))
        .map(String::as_str)
        .collect();
    if !unpermitted.is_empty() {
        return Err(format!(
            "Dispatch request included unpermitted metadata keys: [{}]",
            unpermitted.join(" ")
        ));
    }
    let missing: Vec<&str> = config
        .meta_required
        .iter()
        .filter(|k| !req.meta.contains_key(*k))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "Dispatch did not provide required meta keys: [{}]",
            missing.join(" ")
        ));
    }
    if !(1..=100).contains(&priority) {
        return Err("dispatch job priority must be between [1, 100]".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(payload: &str, required: &[&str], optional: &[&str]) -> ParameterizedJobConfig {
        ParameterizedJobConfig {
            payload: payload.into(),
            meta_required: required.iter().map(|s| s.to_string()).collect(),
            meta_optional: optional.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn req(payload: &[u8], meta: &[(&str, &str)]) -> DispatchRequest {
        DispatchRequest {
            payload: payload.to_vec(),
            meta: meta
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn dispatch_requests_are_checked_like_nomad() {
        let c = config("required", &["a"], &["b"]);
        assert!(validate_dispatch(&req(b"x", &[("a", "1")]), &c, 50).is_ok());
        assert!(validate_dispatch(&req(b"x", &[("a", "1"), ("b", "2")]), &c, 50).is_ok());
        let e = validate_dispatch(&req(b"", &[("a", "1")]), &c, 50).unwrap_err();
        assert!(e.contains("not provided but required"), "{e}");
        let e = validate_dispatch(&req(b"x", &[]), &c, 50).unwrap_err();
        assert_eq!(e, "Dispatch did not provide required meta keys: [a]");
        let e = validate_dispatch(&req(b"x", &[("a", "1"), ("zz", "2")]), &c, 50).unwrap_err();
        assert_eq!(
            e,
            "Dispatch request included unpermitted metadata keys: [zz]"
        );
        let e = validate_dispatch(&req(b"x", &[("a", "1")]), &c, 101).unwrap_err();
        assert!(e.contains("priority"), "{e}");
        let big = vec![b'x'; DISPATCH_PAYLOAD_SIZE_LIMIT + 1];
        let e = validate_dispatch(&req(&big, &[("a", "1")]), &c, 50).unwrap_err();
        assert!(e.contains("exceeds maximum size"), "{e}");
        let f = config("forbidden", &[], &[]);
        assert!(validate_dispatch(&req(b"", &[]), &f, 50).is_ok());
        let e = validate_dispatch(&req(b"x", &[]), &f, 50).unwrap_err();
        assert!(e.contains("forbidden"), "{e}");
    }

    #[test]
    fn dispatched_and_parameterized_are_kept_on_update() {
        let plain = Job {
            id: "j".into(),
            ..Default::default()
        };
        let param = Job {
            parameterized_job: Some(serde_json::json!({"Payload": "optional"})),
            ..plain.clone()
        };
        let child = Job {
            dispatched: true,
            ..param.clone()
        };
        assert!(validate_job_update(None, &plain).is_ok());
        assert!(validate_job_update(None, &param).is_ok());
        assert!(validate_job_update(None, &child).is_err());
        assert!(validate_job_update(Some(&param), &plain).is_err());
        assert!(validate_job_update(Some(&plain), &param).is_err());
        assert!(validate_job_update(Some(&child), &child).is_ok());
        assert!(validate_job_update(Some(&child), &param).is_err());
    }
}
