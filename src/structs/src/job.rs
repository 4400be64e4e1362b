//! Jobs, task groups and tasks: what a user submits, in Nomad's API JSON shape, with Nomad's
//! defaults in the `Default` impls and the type-dependent ones in [`Job::canonicalize`].

use crate::resources::{NetworkResource, Resources};
use crate::time::{MINUTE, SECOND};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const JOB_TYPE_SERVICE: &str = "service";
pub const JOB_TYPE_BATCH: &str = "batch";
pub const JOB_TYPE_SYSTEM: &str = "system";
pub const JOB_TYPE_SYSBATCH: &str = "sysbatch";

pub const JOB_STATUS_PENDING: &str = "pending";
pub const JOB_STATUS_RUNNING: &str = "running";
pub const JOB_STATUS_DEAD: &str = "dead";

pub const DEFAULT_NAMESPACE: &str = "default";
pub const DEFAULT_REGION: &str = "global";
pub const DEFAULT_NODE_POOL: &str = "default";

/// A job, as stored by the server and returned by `GET /v1/job/:id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Job {
    pub region: String,
    pub namespace: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub job_type: String,
    pub priority: i32,
    pub all_at_once: bool,
    pub datacenters: Vec<String>,
    pub node_pool: String,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub task_groups: Vec<TaskGroup>,
    pub update: Option<UpdateStrategy>,
    pub periodic: Option<serde_json::Value>,
    pub parameterized_job: Option<serde_json::Value>,
    pub reschedule: Option<ReschedulePolicy>,
    pub migrate: Option<serde_json::Value>,
    pub meta: BTreeMap<String, String>,
    pub stop: bool,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub dispatched: bool,
    pub payload: Option<String>,
    pub consul_namespace: String,
    pub vault_namespace: String,
    /// Deprecated job-level tokens, kept as Nomad's API keeps them.
    pub consul_token: Option<String>,
    pub vault_token: Option<String>,
    /// The `multiregion` block, in the API's JSON form.
    pub multiregion: Option<serde_json::Value>,
    /// The `ui` block (`Description`, `Links`).
    #[serde(rename = "UI")]
    pub ui: Option<serde_json::Value>,
    pub status: String,
    pub status_description: String,
    pub stable: bool,
    pub version: u64,
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
}

impl Default for Job {
    fn default() -> Self {
        Job {
            region: DEFAULT_REGION.into(),
            namespace: DEFAULT_NAMESPACE.into(),
            id: String::new(),
            name: String::new(),
            job_type: JOB_TYPE_SERVICE.into(),
            priority: 50,
            all_at_once: false,
            datacenters: vec!["*".into()],
            node_pool: DEFAULT_NODE_POOL.into(),
            constraints: vec![],
            affinities: vec![],
            spreads: vec![],
            task_groups: vec![],
            update: None,
            periodic: None,
            parameterized_job: None,
            reschedule: None,
            migrate: None,
            meta: BTreeMap::new(),
            stop: false,
            parent_id: String::new(),
            dispatched: false,
            payload: None,
            consul_namespace: String::new(),
            vault_namespace: String::new(),
            consul_token: None,
            vault_token: None,
            multiregion: None,
            ui: None,
            status: String::new(),
            status_description: String::new(),
            stable: false,
            version: 0,
            submit_time: 0,
            create_index: 0,
            modify_index: 0,
            job_modify_index: 0,
        }
    }
}

/// A task group: the unit of placement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroup {
    pub name: String,
    pub count: i32,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub spreads: Vec<Spread>,
    pub tasks: Vec<Task>,
    pub restart_policy: Option<RestartPolicy>,
    pub reschedule_policy: Option<ReschedulePolicy>,
    pub ephemeral_disk: EphemeralDisk,
    pub update: Option<UpdateStrategy>,
    pub migrate: Option<serde_json::Value>,
    pub networks: Vec<NetworkResource>,
    pub meta: BTreeMap<String, String>,
    pub services: Vec<Service>,
    pub volumes: BTreeMap<String, serde_json::Value>,
    pub shutdown_delay: Option<i64>,
    pub max_run_duration: Option<i64>,
    pub stop_after_client_disconnect: Option<i64>,
    pub max_client_disconnect: Option<i64>,
    pub prevent_reschedule_on_lost: bool,
    pub scaling: Option<serde_json::Value>,
    pub consul: Option<serde_json::Value>,
    pub disconnect: Option<serde_json::Value>,
}

impl Default for TaskGroup {
    fn default() -> Self {
        TaskGroup {
            name: String::new(),
            count: 1,
            constraints: vec![],
            affinities: vec![],
            spreads: vec![],
            tasks: vec![],
            restart_policy: None,
            reschedule_policy: None,
            ephemeral_disk: EphemeralDisk::default(),
            update: None,
            migrate: None,
            networks: vec![],
            meta: BTreeMap::new(),
            services: vec![],
            volumes: BTreeMap::new(),
            shutdown_delay: None,
            max_run_duration: None,
            stop_after_client_disconnect: None,
            max_client_disconnect: None,
            prevent_reschedule_on_lost: false,
            scaling: None,
            consul: None,
            disconnect: None,
        }
    }
}

/// A task: one process run by a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    pub lifecycle: Option<TaskLifecycle>,
    pub config: BTreeMap<String, serde_json::Value>,
    pub constraints: Vec<Constraint>,
    pub affinities: Vec<Affinity>,
    pub env: BTreeMap<String, String>,
    pub services: Vec<Service>,
    pub resources: Resources,
    pub restart_policy: Option<RestartPolicy>,
    pub meta: BTreeMap<String, String>,
    pub kill_timeout: i64,
    pub log_config: LogConfig,
    pub artifacts: Vec<serde_json::Value>,
    pub vault: Option<serde_json::Value>,
    pub consul: Option<serde_json::Value>,
    pub templates: Vec<serde_json::Value>,
    pub dispatch_payload: Option<serde_json::Value>,
    pub volume_mounts: Vec<serde_json::Value>,
    pub leader: bool,
    pub shutdown_delay: i64,
    pub kill_signal: String,
    pub kind: String,
    pub identities: Vec<serde_json::Value>,
    pub actions: Vec<serde_json::Value>,
    pub schedule: Option<serde_json::Value>,
    /// The `csi_plugin` block.
    #[serde(rename = "CSIPluginConfig")]
    pub csi_plugin_config: Option<serde_json::Value>,
    /// The `scaling "cpu"` / `scaling "mem"` blocks.
    pub scaling_policies: Vec<serde_json::Value>,
    /// The `secret` blocks.
    pub secrets: Vec<serde_json::Value>,
    /// The default workload identity (an `identity` block without a name, or named
    /// "default"); the others are in `identities`.
    pub identity: Option<serde_json::Value>,
}

impl Default for Task {
    fn default() -> Self {
        Task {
            name: String::new(),
            driver: String::new(),
            user: String::new(),
            lifecycle: None,
            config: BTreeMap::new(),
            constraints: vec![],
            affinities: vec![],
            env: BTreeMap::new(),
            services: vec![],
            resources: Resources::default(),
            restart_policy: None,
            meta: BTreeMap::new(),
            kill_timeout: 5 * SECOND,
            log_config: LogConfig::default(),
            artifacts: vec![],
            vault: None,
            consul: None,
            templates: vec![],
            dispatch_payload: None,
            volume_mounts: vec![],
            leader: false,
            shutdown_delay: 0,
            kill_signal: String::new(),
            kind: String::new(),
            identities: vec![],
            actions: vec![],
            schedule: None,
            csi_plugin_config: None,
            scaling_policies: vec![],
            secrets: vec![],
            identity: None,
        }
    }
}

/// A placement constraint (`constraint` block).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Constraint {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    pub operand: String,
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.l_target, self.operand, self.r_target)
    }
}

/// A soft placement preference (`affinity` block).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Affinity {
    #[serde(rename = "LTarget")]
    pub l_target: String,
    #[serde(rename = "RTarget")]
    pub r_target: String,
    pub operand: String,
    pub weight: i32,
}

/// A `spread` block: spread allocations over the values of an attribute.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Spread {
    pub attribute: String,
    pub weight: i32,
    pub spread_target: Vec<SpreadTarget>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SpreadTarget {
    pub value: String,
    pub percent: u32,
}

/// The `update` block: how a service job's allocations are replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStrategy {
    pub stagger: i64,
    pub max_parallel: i32,
    pub health_check: String,
    pub min_healthy_time: i64,
    pub healthy_deadline: i64,
    pub progress_deadline: i64,
    pub auto_revert: bool,
    pub auto_promote: bool,
    pub canary: i32,
}

impl Default for UpdateStrategy {
    fn default() -> Self {
        UpdateStrategy {
            stagger: 30 * SECOND,
            max_parallel: 1,
            health_check: "checks".into(),
            min_healthy_time: 10 * SECOND,
            healthy_deadline: 5 * MINUTE,
            progress_deadline: 10 * MINUTE,
            auto_revert: false,
            auto_promote: false,
            canary: 0,
        }
    }
}

/// The `restart` block: what the client does when a task exits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub attempts: i32,
    pub interval: i64,
    pub delay: i64,
    pub mode: String,
    pub render_templates: bool,
}

pub const RESTART_MODE_FAIL: &str = "fail";
pub const RESTART_MODE_DELAY: &str = "delay";

impl RestartPolicy {
    /// Nomad's default for the given job type.
    pub fn default_for(job_type: &str) -> Self {
        match job_type {
            JOB_TYPE_BATCH | JOB_TYPE_SYSBATCH => RestartPolicy {
                attempts: 3,
                interval: 24 * 60 * MINUTE,
                delay: 15 * SECOND,
                mode: RESTART_MODE_FAIL.into(),
                render_templates: false,
            },
            _ => RestartPolicy {
                attempts: 2,
                interval: 30 * MINUTE,
                delay: 15 * SECOND,
                mode: RESTART_MODE_FAIL.into(),
                render_templates: false,
            },
        }
    }
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy::default_for(JOB_TYPE_SERVICE)
    }
}

/// The `reschedule` block: what the server does when an allocation fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReschedulePolicy {
    pub attempts: i32,
    pub interval: i64,
    pub delay: i64,
    pub delay_function: String,
    pub max_delay: i64,
    pub unlimited: bool,
}

impl ReschedulePolicy {
    /// Nomad's default for the given job type (`None` for system jobs, which never reschedule).
    pub fn default_for(job_type: &str) -> Option<Self> {
        match job_type {
            JOB_TYPE_SERVICE => Some(ReschedulePolicy {
                attempts: 0,
                interval: 0,
                delay: 30 * SECOND,
                delay_function: "exponential".into(),
                max_delay: 60 * MINUTE,
                unlimited: true,
            }),
            JOB_TYPE_BATCH => Some(ReschedulePolicy {
                attempts: 1,
                interval: 24 * 60 * MINUTE,
                delay: 5 * SECOND,
                delay_function: "constant".into(),
                max_delay: 0,
                unlimited: false,
            }),
            _ => None,
        }
    }
}

impl Default for ReschedulePolicy {
    fn default() -> Self {
        ReschedulePolicy::default_for(JOB_TYPE_SERVICE).unwrap_or(ReschedulePolicy {
            attempts: 0,
            interval: 0,
            delay: 0,
            delay_function: String::new(),
            max_delay: 0,
            unlimited: false,
        })
    }
}

/// The `ephemeral_disk` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EphemeralDisk {
    pub sticky: bool,
    #[serde(rename = "SizeMB")]
    pub size_mb: i64,
    pub migrate: bool,
}

impl Default for EphemeralDisk {
    fn default() -> Self {
        EphemeralDisk {
            sticky: false,
            size_mb: 300,
            migrate: false,
        }
    }
}

/// The task `logs` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    pub max_files: i32,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: i32,
    pub disabled: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            max_files: 10,
            max_file_size_mb: 10,
            disabled: false,
        }
    }
}

/// The task `lifecycle` block.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskLifecycle {
    /// `prestart`, `poststart` or `poststop`.
    pub hook: String,
    pub sidecar: bool,
}

pub const LIFECYCLE_PRESTART: &str = "prestart";
pub const LIFECYCLE_POSTSTART: &str = "poststart";
pub const LIFECYCLE_POSTSTOP: &str = "poststop";

/// A `service` block. Registration is the Consul issue's; the model is here so jobs that
/// carry services round-trip.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Service {
    pub name: String,
    pub tags: Vec<String>,
    pub canary_tags: Vec<String>,
    pub port_label: String,
    pub address_mode: String,
    pub address: String,
    pub provider: String,
    pub task_name: String,
    pub checks: Vec<serde_json::Value>,
    pub connect: Option<serde_json::Value>,
    pub meta: BTreeMap<String, String>,
    pub canary_meta: BTreeMap<String, String>,
    pub tagged_addresses: BTreeMap<String, String>,
    pub on_update: String,
    pub enable_tag_override: bool,
    pub check_restart: Option<serde_json::Value>,
    pub cluster: String,
    /// The service's workload `identity` block.
    pub identity: Option<serde_json::Value>,
    /// The `weights` block (`Passing`, `Warning`).
    pub weights: Option<serde_json::Value>,
}

/// Every service (and check) port label must name a port of the group's network or of its
/// task's `resources { network {} }`, unless it is a number, interpolated, or resolved by the
/// driver (`address_mode = "driver"`).
fn validate_service_ports(tg: &TaskGroup, errs: &mut Vec<String>) {
    let labels = |nets: &[crate::NetworkResource]| -> Vec<String> {
        nets.iter()
            .flat_map(|n| n.reserved_ports.iter().chain(n.dynamic_ports.iter()))
            .map(|p| p.label.clone())
            .collect()
    };
    let group_ports = labels(&tg.networks);
    let mut check = |owner: String, svc: &Service, known: &[String]| {
        let mut wanted = vec![(svc.port_label.clone(), svc.address_mode.clone())];
        for c in &svc.checks {
            let field = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or_default();
            wanted.push((
                field("PortLabel").to_string(),
                field("AddressMode").to_string(),
            ));
        }
        for (label, mode) in wanted {
            let resolved_elsewhere = label.is_empty()
                || label.parse::<u16>().is_ok()
                || label.contains("${")
                || mode == "driver"
                || mode == "alloc";
            if !resolved_elsewhere && !known.contains(&label) {
                errs.push(format!(
                    "{owner}: service {:?}: port label {label:?} does not exist in the network (known ports: {})",
                    svc.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            }
        }
    };
    for svc in &tg.services {
        check(format!("Task group {}", tg.name), svc, &group_ports);
    }
    for task in &tg.tasks {
        let mut known = group_ports.clone();
        known.extend(labels(&task.resources.networks));
        for svc in &task.services {
            check(
                format!("Task {} in group {}", task.name, tg.name),
                svc,
                &known,
            );
        }
    }
}

impl Job {
    /// Applies Nomad's defaults that depend on the job's type or on other fields. Idempotent.
    pub fn canonicalize(&mut self) {
        if self.name.is_empty() {
            self.name = self.id.clone();
        }
        if self.namespace.is_empty() {
            self.namespace = DEFAULT_NAMESPACE.into();
        }
        if self.region.is_empty() {
            self.region = DEFAULT_REGION.into();
        }
        if self.job_type.is_empty() {
            self.job_type = JOB_TYPE_SERVICE.into();
        }
        if self.node_pool.is_empty() {
            self.node_pool = DEFAULT_NODE_POOL.into();
        }
        if self.datacenters.is_empty() {
            self.datacenters = vec!["*".into()];
        }
        self.canonicalize_jobops();
        let job_type = self.job_type.clone();
        let job_update = self.update.clone();
        let job_reschedule = self.reschedule.clone();
        for tg in &mut self.task_groups {
            if tg.restart_policy.is_none() {
                tg.restart_policy = Some(RestartPolicy::default_for(&job_type));
            }
            if tg.reschedule_policy.is_none() {
                tg.reschedule_policy = job_reschedule
                    .clone()
                    .or_else(|| ReschedulePolicy::default_for(&job_type));
            }
            // Only service jobs have deployments; the group's update block inherits from the
            // job's, field by field in Nomad, whole here.
            if job_type == JOB_TYPE_SERVICE {
                if tg.update.is_none() {
                    tg.update = Some(job_update.clone().unwrap_or_default());
                }
            } else {
                tg.update = None;
            }
            let group_restart = tg.restart_policy.clone();
            for task in &mut tg.tasks {
                if task.restart_policy.is_none() {
                    task.restart_policy = group_restart.clone();
                }
                if task.kill_signal.is_empty() && task.driver == "raw_exec" {
                    // raw_exec (and exec) stop tasks with SIGINT unless told otherwise.
                    task.kill_signal = "SIGINT".into();
                }
                for svc in &mut task.services {
                    if svc.provider.is_empty() {
                        svc.provider = "consul".into();
                    }
                }
            }
            for svc in &mut tg.services {
                if svc.provider.is_empty() {
                    svc.provider = "consul".into();
                }
            }
        }
    }

    /// Checks what Nomad's `Job.Validate` checks for the fields Caravan runs; returns every
    /// problem found, each a sentence a user can act on.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if self.id.is_empty() {
            errs.push("Missing job ID".to_string());
        } else if self.id.contains(' ') {
            errs.push("Job ID contains a space".to_string());
        } else if self.id.contains('\0') {
            errs.push("Job ID contains a null character".to_string());
        }
        if self.name.is_empty() {
            errs.push("Missing job name".to_string());
        }
        match self.job_type.as_str() {
            JOB_TYPE_SERVICE | JOB_TYPE_BATCH | JOB_TYPE_SYSTEM | JOB_TYPE_SYSBATCH => {}
            other => errs.push(format!("Invalid job type: {other:?}")),
        }
        if !(1..=100).contains(&self.priority) {
            errs.push(format!(
                "Job priority must be between [1, 100], got {}",
                self.priority
            ));
        }
        if self.datacenters.iter().any(|d| d.is_empty()) {
            errs.push("Job datacenter must be non-empty string".to_string());
        }
        if self.task_groups.is_empty() {
            errs.push("Missing job task groups".to_string());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, tg) in self.task_groups.iter().enumerate() {
            if tg.name.is_empty() {
                errs.push(format!("Job task group {} missing name", i + 1));
            } else if !seen.insert(tg.name.as_str()) {
                errs.push(format!(
                    "Job task group {} redefines '{}' from group {}",
                    i + 1,
                    tg.name,
                    i
                ));
            }
            if tg.count < 0 {
                errs.push(format!(
                    "Task group {} count can't be negative ({})",
                    tg.name, tg.count
                ));
            }
            if tg.tasks.is_empty() {
                errs.push(format!("Task group {} has no tasks", tg.name));
            }
            let mut task_names = std::collections::HashSet::new();
            for (j, task) in tg.tasks.iter().enumerate() {
                if task.name.is_empty() {
                    errs.push(format!("Task {} in group {} missing name", j + 1, tg.name));
                } else if !task_names.insert(task.name.as_str()) {
                    errs.push(format!(
                        "Task {} in group {} redefines '{}'",
                        j + 1,
                        tg.name,
                        task.name
                    ));
                }
                if task.name.contains('/') {
                    errs.push(format!(
                        "Task {:?} in group {}: name can't contain slashes",
                        task.name, tg.name
                    ));
                }
                if task.driver.is_empty() {
                    errs.push(format!(
                        "Task {} in group {}: missing driver",
                        task.name, tg.name
                    ));
                }
                if task.resources.cpu < 1 && task.resources.cores == 0 {
                    errs.push(format!(
                        "Task {} in group {}: minimum CPU value is 1; got {}",
                        task.name, tg.name, task.resources.cpu
                    ));
                }
                if task.resources.memory_mb < 10 {
                    errs.push(format!(
                        "Task {} in group {}: minimum MemoryMB value is 10; got {}",
                        task.name, tg.name, task.resources.memory_mb
                    ));
                }
                if task.kill_timeout < 0 {
                    errs.push(format!(
                        "Task {} in group {}: kill_timeout must be a positive value",
                        task.name, tg.name
                    ));
                }
                if let Some(lc) = &task.lifecycle {
                    match lc.hook.as_str() {
                        LIFECYCLE_PRESTART | LIFECYCLE_POSTSTART | LIFECYCLE_POSTSTOP => {}
                        other => errs.push(format!(
                            "Task {} in group {}: invalid lifecycle hook {other:?}",
                            task.name, tg.name
                        )),
                    }
                }
                if task.log_config.max_files < 1 {
                    errs.push(format!(
                        "Task {} in group {}: minimum number of log files is 1; got {}",
                        task.name, tg.name, task.log_config.max_files
                    ));
                }
                if task.log_config.max_file_size_mb < 1 {
                    errs.push(format!(
                        "Task {} in group {}: minimum log file size is 1MB; got {}",
                        task.name, tg.name, task.log_config.max_file_size_mb
                    ));
                }
            }
            validate_service_ports(tg, &mut errs);
            crate::service_provider::validate_service_providers(tg, &mut errs);
            if let Some(rp) = &tg.restart_policy {
                if rp.mode != RESTART_MODE_FAIL && rp.mode != RESTART_MODE_DELAY {
                    errs.push(format!(
                        "Task group {}: unsupported restart mode {:?}",
                        tg.name, rp.mode
                    ));
                }
            }
        }
        errs.extend(self.validate_jobops());
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    pub fn lookup_group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().find(|g| g.name == name)
    }

    /// Whether two versions of a job differ only in fields that do not need new allocations
    /// (count, update strategy, meta on the job, ...): Nomad's in-place update test for a group.
    pub fn group_needs_destructive_update(old: &TaskGroup, new: &TaskGroup) -> bool {
        if old.tasks.len() != new.tasks.len() || old.networks != new.networks {
            return true;
        }
        if old.ephemeral_disk != new.ephemeral_disk || old.volumes != new.volumes {
            return true;
        }
        for nt in &new.tasks {
            let Some(ot) = old.tasks.iter().find(|t| t.name == nt.name) else {
                return true;
            };
            if ot.driver != nt.driver
                || ot.user != nt.user
                || ot.config != nt.config
                || ot.env != nt.env
                || ot.resources != nt.resources
                || ot.meta != nt.meta
                || ot.artifacts != nt.artifacts
                || ot.templates != nt.templates
                || ot.vault != nt.vault
                || ot.lifecycle != nt.lifecycle
                || ot.log_config != nt.log_config
                || ot.volume_mounts != nt.volume_mounts
                || ot.dispatch_payload != nt.dispatch_payload
            {
                return true;
            }
        }
        old.meta != new.meta
    }

    /// Whether the job's runnable spec (everything a user wrote) differs, ignoring server
    /// bookkeeping fields. Re-registering an identical spec is a no-op.
    pub fn spec_changed(&self, other: &Job) -> bool {
        let strip = |j: &Job| {
            let mut j = j.clone();
            j.status = String::new();
            j.status_description = String::new();
            j.stable = false;
            j.version = 0;
            j.submit_time = 0;
            j.create_index = 0;
            j.modify_index = 0;
            j.job_modify_index = 0;
            j
        };
        strip(self) != strip(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_with_nomad_names() {
        let mut job = Job {
            id: "example".into(),
            ..Default::default()
        };
        job.task_groups.push(TaskGroup {
            name: "cache".into(),
            tasks: vec![Task {
                name: "redis".into(),
                driver: "raw_exec".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        job.canonicalize();
        let v = serde_json::to_value(&job).unwrap();
        assert_eq!(v["ID"], "example");
        assert_eq!(v["Name"], "example");
        assert_eq!(v["TaskGroups"][0]["Count"], 1);
        assert_eq!(v["TaskGroups"][0]["Tasks"][0]["KillSignal"], "SIGINT");
        assert_eq!(v["TaskGroups"][0]["RestartPolicy"]["Attempts"], 2);
        let back: Job = serde_json::from_value(v).unwrap();
        assert_eq!(back, job);
        assert!(job.validate().is_ok());
    }

    #[test]
    fn missing_fields_take_nomad_defaults() {
        let job: Job = serde_json::from_str(
            r#"{"ID":"x","TaskGroups":[{"Name":"g","Tasks":[{"Name":"t"}]}]}"#,
        )
        .unwrap();
        assert_eq!(job.priority, 50);
        assert_eq!(job.task_groups[0].count, 1);
        assert_eq!(job.task_groups[0].tasks[0].resources.cpu, 100);
        assert_eq!(job.task_groups[0].tasks[0].resources.memory_mb, 300);
        assert_eq!(job.task_groups[0].tasks[0].kill_timeout, 5 * SECOND);
    }

    #[test]
    fn validate_lists_every_problem() {
        let job = Job {
            id: "has space".into(),
            priority: 500,
            ..Default::default()
        };
        let errs = job.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.contains("space")));
        assert!(errs.iter().any(|e| e.contains("priority")));
        assert!(errs.iter().any(|e| e.contains("task groups")));
    }

    #[test]
    fn count_change_is_not_destructive() {
        let a = TaskGroup {
            name: "g".into(),
            tasks: vec![Task::default()],
            ..Default::default()
        };
        let mut b = a.clone();
        b.count = 5;
        assert!(!Job::group_needs_destructive_update(&a, &b));
        b.tasks[0].env.insert("A".into(), "B".into());
        assert!(Job::group_needs_destructive_update(&a, &b));
    }

    #[test]
    fn service_port_labels_must_exist() {
        let mut job = Job {
            id: "web".into(),
            ..Default::default()
        };
        let svc = |port: &str| Service {
            name: "api".into(),
            port_label: port.into(),
            ..Default::default()
        };
        job.task_groups.push(TaskGroup {
            name: "g".into(),
            networks: vec![crate::NetworkResource {
                dynamic_ports: vec![crate::Port {
                    label: "http".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            services: vec![svc("http"), svc("8080")],
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                services: vec![svc("http")],
                ..Default::default()
            }],
            ..Default::default()
        });
        job.canonicalize();
        assert!(job.validate().is_ok(), "{:?}", job.validate());
        job.task_groups[0].tasks[0].services.push(svc("admin"));
        job.task_groups[0].services[0].checks =
            vec![serde_json::json!({"Type": "tcp", "PortLabel": "metrics"})];
        let errs = job.validate().unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].contains("\"metrics\"") && errs[0].contains("Task group g"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("\"admin\"") && errs[1].contains("Task t in group g"),
            "{errs:?}"
        );
        assert!(errs[1].contains("known ports: http"), "{errs:?}");
    }
}
