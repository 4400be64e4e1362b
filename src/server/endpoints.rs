//! Server endpoints: the domain operations behind the HTTP API and the client RPC interface.
//! Each validates its input, then changes state only through [`Server::raft_apply`].

use super::command::Command;
use super::Server;
use crate::state::{SchedSnapshot, Table};
use caravan_structs::*;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

/// What `PUT /v1/jobs` answers.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JobRegisterResponse {
    #[serde(rename = "EvalID")]
    pub eval_id: String,
    pub eval_create_index: u64,
    pub job_modify_index: u64,
    pub warnings: String,
    pub index: u64,
    pub last_contact: u64,
    pub known_leader: bool,
}

impl Server {
    /// Validates, canonicalises and registers a job; creates its evaluation.
    pub fn job_register(
        &self,
        mut job: Job,
        enforce_index: Option<u64>,
    ) -> Result<JobRegisterResponse, ServerError> {
        job.canonicalize();
        if let Err(errs) = job.validate() {
            return Err(ServerError::BadRequest(format_multi(&errs)));
        }
        check_features(&job)?;
        check_vault(&job, &self.config.vault_clusters)?;
        add_vault_identities(&mut job, &self.config.vault_default_identity);
        if self.scheduler_config().reject_job_registration {
            return Err(ServerError::BadRequest(
                "job registration, dispatch, and scale are disabled by the scheduler configuration"
                    .into(),
            ));
        }
        let snap = self.store.snapshot();
        super::partitions::admit_job(&snap, &job)?;
        let existing = snap.job(&job.namespace, &job.id);
        super::jobops::validate_job_update(existing.as_deref(), &job)?;
        if let Some(want) = enforce_index {
            let have = existing.as_ref().map(|j| j.job_modify_index).unwrap_or(0);
            if want != have {
                return Err(ServerError::Conflict(format!(
                    "Enforcing job modify index {want}: job {} exists with conflicting job modify index: {have}",
                    if existing.is_some() { "" } else { "not" }
                )));
            }
        }
        // Registration clears server-owned fields the user may have sent back.
        job.stop = false;
        job.status = String::new();
        job.submit_time = time::now_nanos();
        let unchanged = existing
            .as_ref()
            .map(|old| !old.spec_changed(&job) && !old.stop)
            .unwrap_or(false);
        // A parameterized job only registers: its dispatched children are what run.
        let eval =
            (!job.is_parameterized()).then(|| Evaluation::for_job(&job, TRIGGER_JOB_REGISTER));
        let eval_id = eval.as_ref().map(|e| e.id.clone()).unwrap_or_default();
        if unchanged {
            // Nothing changed: Nomad still evaluates, and the scheduler finds nothing to do.
            tracing::debug!(job = %job.id, "job registered unchanged");
        }
        let index = self.raft_apply(Command::JobRegister {
            job: job.clone(),
            eval,
        });
        let stored = self.store.snapshot().job(&job.namespace, &job.id);
        Ok(JobRegisterResponse {
            eval_create_index: if eval_id.is_empty() { 0 } else { index },
            eval_id,
            job_modify_index: stored.map(|j| j.job_modify_index).unwrap_or(index),
            warnings: job_warnings(&job, &self.scheduler_config()),
            index,
            last_contact: 0,
            known_leader: true,
        })
    }

    /// Stops (or purges) a job and evaluates it so its allocations stop.
    pub fn job_deregister(
        &self,
        ns: &str,
        id: &str,
        purge: bool,
    ) -> Result<(String, u64), ServerError> {
        let snap = self.store.snapshot();
        let job = snap
            .job(ns, id)
            .ok_or_else(|| ServerError::NotFound("job not found".into()))?;
        let mut eval = Evaluation::for_job(&job, TRIGGER_JOB_DEREGISTER);
        eval.job_modify_index = job.job_modify_index;
        let eval_id = eval.id.clone();
        let index = self.raft_apply(Command::JobDeregister {
            namespace: ns.into(),
            job_id: id.into(),
            purge,
            eval: Some(eval),
        });
        Ok((eval_id, index))
    }

    /// `PUT /v1/job/:id/evaluate`.
    pub fn job_evaluate(&self, ns: &str, id: &str) -> Result<(String, u64), ServerError> {
        let job = self
            .store
            .snapshot()
            .job(ns, id)
            .ok_or_else(|| ServerError::NotFound("job not found".into()))?;
        if job.is_parameterized() {
            return Err(ServerError::BadRequest(
                "can't evaluate parameterized job".into(),
            ));
        }
        let eval = Evaluation::for_job(&job, TRIGGER_FORCE_EVAL);
        let id = eval.id.clone();
        let index = self.raft_apply(Command::EvalUpsert {
            evals: vec![eval.clone()],
        });
        self.broker.enqueue(eval);
        Ok((id, index))
    }

    /// `PUT /v1/job/:id/plan`: runs the scheduler against a copy of the state with the job
    /// registered, and returns what it would do. Changes nothing.
    pub fn job_plan(&self, mut job: Job) -> Result<serde_json::Value, ServerError> {
        job.canonicalize();
        if let Err(errs) = job.validate() {
            return Err(ServerError::BadRequest(format_multi(&errs)));
        }
        check_features(&job)?;
        check_vault(&job, &self.config.vault_clusters)?;
        let snap = self.store.snapshot();
        super::partitions::admit_job(&snap, &job)?;
        let existing = snap.job(&job.namespace, &job.id);
        let mut scratch = (*snap).clone();
        let index = scratch.index + 1;
        let stored = scratch.upsert_job(index, job.clone());
        let mut eval = Evaluation::for_job(&stored, TRIGGER_JOB_REGISTER);
        eval.annotate_plan = true;
        let cfg = self.scheduler_settings_for_pool(&job.node_pool);
        let outcome = caravan_scheduler::process(&eval, &SchedSnapshot(Arc::new(scratch)), &cfg)
            .map_err(|e| ServerError::Internal(e.to_string()))?;
        let diff_type = match &existing {
            None => "Added",
            Some(old) if old.spec_changed(&job) => "Edited",
            Some(_) => "None",
        };
        Ok(serde_json::json!({
            "Annotations": outcome.annotations,
            "FailedTGAllocs": outcome.failed_tg_allocs,
            "JobModifyIndex": existing.map(|j| j.job_modify_index).unwrap_or(0),
            "CreatedEvals": serde_json::Value::Null,
            "Diff": { "Type": diff_type, "ID": job.id, "Fields": null, "Objects": null, "TaskGroups": job.task_groups.iter().map(|g| serde_json::json!({"Name": g.name, "Type": diff_type, "Updates": outcome.annotations.desired_tg_updates.get(&g.name).map(updates_map).unwrap_or_default()})).collect::<Vec<_>>() },
            "NextPeriodicLaunch": null,
            "Warnings": "",
            "Index": snap.index,
        }))
    }

    pub fn node_register(&self, mut node: Node) -> Result<Duration, ServerError> {
        if node.id.is_empty() {
            return Err(ServerError::BadRequest(
                "missing node ID for client registration".into(),
            ));
        }
        if node.datacenter.is_empty() {
            return Err(ServerError::BadRequest(
                "missing datacenter for client registration".into(),
            ));
        }
        if node.name.is_empty() {
            return Err(ServerError::BadRequest(
                "missing node name for client registration".into(),
            ));
        }
        super::partitions::node_pool_of_registering(&mut node)?;
        if let Some(old) = self.store.snapshot().nodes.get(&node.id) {
            if !old.secret_id.is_empty() && old.secret_id != node.secret_id {
                return Err(ServerError::BadRequest(
                    "node secret ID does not match; not registering".into(),
                ));
            }
        }
        node.status = NODE_STATUS_READY.into();
        node.status_updated_at = time::now_nanos() / 1_000_000_000;
        self.raft_apply(Command::NodeRegister { node: node.clone() });
        Ok(self.heartbeats.beat(self, &node.id))
    }

    /// A client heartbeat (and status change).
    pub fn node_update_status(&self, node_id: &str, status: &str) -> Result<Duration, ServerError> {
        let snap = self.store.snapshot();
        let node = snap
            .nodes
            .get(node_id)
            .ok_or_else(|| ServerError::NotFound(format!("node {node_id} not found")))?;
        if node.status != status {
            let evals = if status == NODE_STATUS_READY || status == NODE_STATUS_DOWN {
                super::heartbeat::node_evals(self, node_id)
            } else {
                vec![]
            };
            self.raft_apply(Command::NodeStatusUpdate {
                node_id: node_id.into(),
                status: status.into(),
                updated_at: time::now_nanos() / 1_000_000_000,
                evals,
            });
        }
        Ok(self.heartbeats.beat(self, node_id))
    }

    pub fn node_eligibility(&self, node_id: &str, eligibility: &str) -> Result<u64, ServerError> {
        if eligibility != NODE_ELIGIBLE && eligibility != NODE_INELIGIBLE {
            return Err(ServerError::BadRequest(format!(
                "invalid scheduling eligibility {eligibility:?}: must be \"eligible\" or \"ineligible\""
            )));
        }
        let snap = self.store.snapshot();
        if !snap.nodes.contains_key(node_id) {
            return Err(ServerError::NotFound("node not found".into()));
        }
        Ok(self.raft_apply(Command::NodeEligibilityUpdate {
            node_id: node_id.into(),
            eligibility: eligibility.into(),
            evals: vec![],
        }))
    }

    /// `PUT /v1/node/:id/drain`: sets (deadline in ns; negative = force now, 0 = none) or
    /// clears a node's drain strategy.
    pub fn node_drain(
        &self,
        node_id: &str,
        spec: Option<(i64, bool)>,
        mark_eligible: bool,
    ) -> Result<u64, ServerError> {
        let snap = self.store.snapshot();
        if !snap.nodes.contains_key(node_id) {
            return Err(ServerError::NotFound("node not found".into()));
        }
        let strategy = spec.map(|(deadline, ignore)| {
            super::drainer::new_strategy(deadline, ignore, time::now_nanos())
        });
        Ok(self.raft_apply(Command::NodeDrainUpdate {
            node_id: node_id.into(),
            drain_strategy: strategy,
            mark_eligible,
            completed: false,
        }))
    }

    /// `PUT /v1/allocation/:id/stop`: marks the alloc for migration and evaluates its job,
    /// which stops it and places a replacement.
    pub fn alloc_stop(&self, alloc_id: &str) -> Result<(String, u64), ServerError> {
        let snap = self.store.snapshot();
        let alloc = snap
            .allocs
            .get(alloc_id)
            .ok_or_else(|| ServerError::NotFound("alloc not found".into()))?;
        let job = snap
            .job(&alloc.namespace, &alloc.job_id)
            .ok_or_else(|| ServerError::NotFound("job not found".into()))?;
        let eval = Evaluation::for_job(&job, TRIGGER_ALLOC_STOP);
        let id = eval.id.clone();
        let index = self.raft_apply(Command::AllocDesiredStop {
            alloc_id: alloc_id.into(),
            eval,
        });
        Ok((id, index))
    }

    /// Clients report their allocations' state. Failed allocations get an evaluation so the
    /// scheduler can reschedule them.
    pub fn update_allocs_from_client(&self, allocs: Vec<Allocation>) -> Result<u64, ServerError> {
        let snap = self.store.snapshot();
        let mut evals = Vec::new();
        for a in &allocs {
            let Some(old) = snap.allocs.get(&a.id) else {
                continue;
            };
            if a.client_status == ALLOC_CLIENT_FAILED && old.client_status != ALLOC_CLIENT_FAILED {
                if let Some(job) = snap.job(&old.namespace, &old.job_id) {
                    if !evals
                        .iter()
                        .any(|e: &Evaluation| e.job_id == job.id && e.namespace == job.namespace)
                    {
                        evals.push(Evaluation::for_job(&job, TRIGGER_RETRY_FAILED_ALLOC));
                    }
                }
            }
        }
        Ok(self.raft_apply(Command::AllocClientUpdate { allocs, evals }))
    }

    /// The client's blocking "what should I run" query: every allocation placed on the node,
    /// once the allocs table passes `min_index`.
    pub async fn client_allocs(
        &self,
        node_id: &str,
        min_index: u64,
        wait: Duration,
    ) -> (Vec<Arc<Allocation>>, u64) {
        self.store
            .watches
            .wait_any(&[Table::Allocs], min_index, wait)
            .await;
        let snap = self.store.snapshot();
        (
            snap.allocs_by_node(node_id),
            snap.max_index(&[Table::Allocs]),
        )
    }
}

/// A group's planned changes under the names Nomad's plan diff uses, zero counts left out.
fn updates_map(u: &DesiredUpdates) -> serde_json::Value {
    let pairs = [
        ("create", u.place),
        ("destroy", u.stop),
        ("ignore", u.ignore),
        ("migrate", u.migrate),
        ("in-place update", u.in_place_update),
        ("create/destroy update", u.destructive_update),
        ("canary", u.canary),
        ("preemptions", u.preemptions),
        ("reschedule-now", u.reschedule_now),
        ("reschedule-later", u.reschedule_later),
    ];
    serde_json::Value::Object(
        pairs
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.to_string(), serde_json::json!(n)))
            .collect(),
    )
}

/// Nomad's multierror format.
pub fn format_multi(errs: &[String]) -> String {
    let mut s = format!(
        "{} error{} occurred:\n",
        errs.len(),
        if errs.len() == 1 { "" } else { "s" }
    );
    for e in errs {
        s.push_str(&format!("\t* {e}\n"));
    }
    s
}

/// Drivers Caravan has. A job naming another driver is refused at submit time with a message
/// naming it, rather than sitting unplaceable.
const KNOWN_DRIVERS: &[&str] = &["raw_exec", "exec", "docker", "podman", "java", "qemu"];

/// Refuses jobs that need features not built yet, naming the feature, so nothing is ignored
/// silently. (Placement-time gaps, such as Consul or Vault missing on every node, are implied
/// constraints the scheduler reports.)
/// What Nomad warns about at registration: `memory_max` without memory oversubscription.
fn job_warnings(job: &Job, cfg: &SchedulerConfiguration) -> String {
    let mut w = Vec::new();
    if !cfg.memory_oversubscription_enabled {
        for tg in &job.task_groups {
            for t in &tg.tasks {
                if t.resources.memory_max_mb > 0 {
                    w.push(format!(
                        "Memory oversubscription is not enabled; Task \"{}.{}\" memory_max value will be ignored. Update the Scheduler Configuration to allow oversubscription.",
                        tg.name, t.name
                    ));
                }
            }
        }
    }
    if w.is_empty() {
        return String::new();
    }
    // Nomad's warnings formatter.
    let mut s = format!("{} warning(s):\n", w.len());
    for e in &w {
        s.push_str(&format!("\n* {e}"));
    }
    s
}

/// Gives each task using a Vault cluster whose agent config has a `default_identity` that
/// identity as `vault_<cluster>`, unless the task has its own (Nomad's implicit identities
/// hook), so the job shows what the servers sign.
fn add_vault_identities(
    job: &mut Job,
    defaults: &std::collections::BTreeMap<String, caravan_structs::WorkloadIdentity>,
) {
    for t in job.task_groups.iter_mut().flat_map(|g| g.tasks.iter_mut()) {
        let Some(v) = t.vault_block() else { continue };
        let Some(d) = defaults.get(&v.cluster) else {
            continue;
        };
        let name = v.identity_name();
        if t.identities
            .iter()
            .any(|i| i.get("Name").and_then(|n| n.as_str()) == Some(name.as_str()))
        {
            continue;
        }
        let mut id = d.clone();
        id.name = name;
        // The agent's extra claims are added when the servers sign, not stored in the job
        // (whose `ExtraClaims` are claim names, as Nomad's).
        id.extra_claims = serde_json::Value::Null;
        if let Ok(v) = serde_json::to_value(&id) {
            t.identities.push(v);
        }
    }
}

/// A task's `vault` block needs its cluster enabled in the agent's `vault` config (Nomad's
/// job Vault hook).
fn check_vault(job: &Job, enabled: &[String]) -> Result<(), ServerError> {
    for t in job.task_groups.iter().flat_map(|g| g.tasks.iter()) {
        if let Some(v) = t.vault_block() {
            if !enabled.contains(&v.cluster) {
                return Err(ServerError::BadRequest(format!(
                    "Vault {:?} not enabled but used in the job",
                    v.cluster
                )));
            }
        }
    }
    Ok(())
}

fn check_features(job: &Job) -> Result<(), ServerError> {
    let mut errs = Vec::new();
    match job.job_type.as_str() {
        JOB_TYPE_SYSTEM | JOB_TYPE_SYSBATCH => errs.push(format!(
            "job type {:?} is not available in Caravan yet (service and batch are)",
            job.job_type
        )),
        _ => {}
    }
    if job.periodic.is_some() {
        errs.push("periodic jobs are not available in Caravan yet".into());
    }
    for tg in &job.task_groups {
        for t in &tg.tasks {
            if !KNOWN_DRIVERS.contains(&t.driver.as_str()) {
                errs.push(format!(
                    "task {:?} in group {:?}: driver {:?} is not a Caravan driver (known: {})",
                    t.name,
                    tg.name,
                    t.driver,
                    KNOWN_DRIVERS.join(", ")
                ));
            }
            for (i, raw) in t.artifacts.iter().enumerate() {
                if let Err(e) = caravan_getter::artifact::validate(raw) {
                    errs.push(format!("task {:?}: artifact {i}: {e}", t.name));
                }
            }
            for (i, tmpl) in t.templates.iter().enumerate() {
                if let Some(e) = template_unsupported(tmpl) {
                    errs.push(format!("task {:?}: template {i}: {e}", t.name));
                }
            }
            for (i, vm) in t.volume_mounts.iter().enumerate() {
                let name = vm
                    .get("Volume")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let dest = vm
                    .get("Destination")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                if !tg.volumes.contains_key(name) {
                    errs.push(format!(
                        "task {:?}: volume_mount {i} references undefined volume {name:?}",
                        t.name
                    ));
                }
                if dest.is_empty() {
                    errs.push(format!(
                        "task {:?}: volume_mount {i} has no destination",
                        t.name
                    ));
                }
            }
            if !t.resources.devices.is_empty() {
                errs.push(format!(
                    "task {:?}: device requests are not available in Caravan yet",
                    t.name
                ));
            }
        }
        for (name, v) in &tg.volumes {
            let kind = v.get("Type").and_then(|t| t.as_str()).unwrap_or_default();
            let source = v.get("Source").and_then(|t| t.as_str()).unwrap_or_default();
            if kind != "host" {
                errs.push(format!(
                    "group {:?}: volume {name:?} of type {kind:?}: only host volumes are available in Caravan (CSI is not)",
                    tg.name
                ));
            } else if source.is_empty() {
                errs.push(format!(
                    "group {:?}: volume {name:?} has no source (the client's host_volume name)",
                    tg.name
                ));
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format_multi(&errs)))
    }
}

/// Why a `template` block cannot run, if it cannot: `change_mode = "script"` without a
/// script, and data functions whose source Caravan lacks (Vault, Nomad services, ...).
fn template_unsupported(tmpl: &serde_json::Value) -> Option<String> {
    let s = |k: &str| tmpl.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    if s("ChangeMode") == "script"
        && tmpl
            .get("ChangeScript")
            .and_then(|c| c.get("Command"))
            .and_then(|c| c.as_str())
            .unwrap_or_default()
            .is_empty()
    {
        return Some("must specify script path value when change mode is script".into());
    }
    let (ld, rd) = match (s("LeftDelim"), s("RightDelim")) {
        ("", _) | (_, "") => ("{{", "}}"),
        (l, r) => (l, r),
    };
    // Only the actions' text can call functions.
    let mut data = String::new();
    let mut rest = s("EmbeddedTmpl");
    while let Some(i) = rest.find(ld) {
        rest = &rest[i + ld.len()..];
        let end = rest.find(rd).unwrap_or(rest.len());
        data.push_str(&rest[..end]);
        data.push(' ');
        rest = &rest[end..];
    }
    for (func, feature) in caravan_templates::unavailable_functions() {
        let used = data.match_indices(func).any(|(at, _)| {
            let before = data[..at].chars().next_back();
            let after = data[at + func.len()..].chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '$')
                && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        });
        if used {
            return Some(format!(
                "the {func} function needs {feature}, which Caravan does not have yet"
            ));
        }
    }
    None
}
