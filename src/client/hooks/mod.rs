//! Task runner hooks: each concern of running a task is one hook in one file, implementing
//! only the phases it needs. [`task_hooks`] lists them in the one fixed order they run in;
//! later features (artifacts, Vault, templates, services, networks) add a hook here and leave
//! the runner alone.
//!
//! ```text
//!   prestart (in order, each must succeed) ─► driver start ─► poststart
//!        │ failure: "Setup Failure", task dead                  │
//!        │ recoverable failure (artifacts): restart policy, retried from that hook
//!        │
//!        ▼                                                       ▼
//!   (restart loop: update on in-place job change) ─► exited (after each exit)
//!                                                    └─► stop (once, when the task is done)
//! ```

pub(crate) mod artifact;
mod check_restart;
mod dispatch_payload;
mod identity;
mod logmon;
pub mod nomad_services;
mod script_checks;
pub mod services;
mod task_dir;
mod template;
mod template_vault;
mod vault;
mod volumes;

use super::allocdir::AllocDir;
use super::taskenv::TaskEnv;
use caravan_driver::async_trait;
use caravan_structs::{Allocation, Node, Task, TaskEvent};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// What hooks see of the task they serve, and what prestart hooks may add to.
pub struct HookContext {
    pub alloc: Arc<Allocation>,
    pub task: Task,
    pub alloc_dir: AllocDir,
    /// Extra environment for the task (e.g. a Vault token), merged over the built env.
    pub env: BTreeMap<String, String>,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Events the hook wants recorded on the task (`Downloading Artifacts`, ...).
    pub events: Vec<TaskEvent>,
    /// The task's environment, for `${...}` interpolation of job-file values.
    pub task_env: Option<Arc<TaskEnv>>,
    /// The node the task runs on (its host volumes, attributes).
    pub node: Arc<Node>,
    /// Whether the task's driver can bind host paths into the task.
    pub driver_mounts: bool,
    /// Host paths to bind into the task (filled by the volumes hook).
    pub mounts: Vec<caravan_driver::MountConfig>,
    /// The local Consul agent, when the client has one (service registration).
    pub consul: Option<Arc<super::consul::Consul>>,
    /// The running task, for hooks that act on it later (templates restart or signal it).
    pub control: Option<Arc<dyn TaskControl>>,
    /// The task's Vault token client, once the vault hook logged in (templates read secrets
    /// with it; it is replaced after a new login).
    pub vault: Option<Arc<std::sync::Mutex<caravan_vault::Client>>>,
    /// The task is still running from before an agent restart and is being re-attached:
    /// hooks set up again what the agent needs (log capture, watches, renewals) but leave
    /// what the running task already has alone (its artifacts, its Vault token).
    pub restoring: bool,
}

/// What a hook may do to its task after prestart (the task runner implements it).
#[async_trait]
pub trait TaskControl: Send + Sync {
    /// Records a task event now.
    fn event(&self, ev: TaskEvent);
    /// Records a progress event, replacing the last event if that is the same kind of progress
    /// event (see `artifact::record_progress`).
    fn update_event(&self, ev: TaskEvent) {
        self.event(ev)
    }
    fn is_running(&self) -> bool;
    /// Environment for the task's next start, merged over what prestart hooks set (the
    /// variables of `env = true` templates after a re-render).
    fn set_env(&self, env: BTreeMap<String, String>);
    /// Whether the task was asked to stop (a prestart hook that waits should give up).
    fn killed(&self) -> bool;
    /// Restarts the task (not counted by the restart policy), recording `ev`.
    fn restart(&self, ev: TaskEvent) -> Result<(), String>;
    /// Kills the task and marks it failed, recording `ev` (its message is the kill reason).
    fn fail(&self, ev: TaskEvent);
    async fn signal(&self, sig: &str) -> Result<(), String>;
    /// Runs a command in the task's context through its driver (a template's change script).
    async fn exec(
        &self,
        cmd: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<caravan_driver::ExecResult, String>;
}

#[derive(Debug, thiserror::Error)]
#[error("{hook}: {message}")]
pub struct HookError {
    pub hook: &'static str,
    pub message: String,
    /// A failure that may pass on a retry (a download): the restart policy decides, as Nomad's
    /// recoverable errors. Otherwise the task fails at once with "Setup Failure".
    pub recoverable: bool,
}

#[async_trait]
pub trait TaskHook: Send + Sync {
    fn name(&self) -> &'static str;

    async fn prestart(&self, _ctx: &mut HookContext) -> Result<(), HookError> {
        Ok(())
    }
    async fn poststart(&self, _ctx: &HookContext) -> Result<(), HookError> {
        Ok(())
    }
    /// The task is about to start again (a restart); hooks may refresh what they gave it.
    async fn restarting(&self, _ctx: &mut HookContext) -> Result<(), HookError> {
        Ok(())
    }
    /// The allocation changed in place (a new job version that needs no restart).
    async fn update(&self, _ctx: &HookContext) -> Result<(), HookError> {
        Ok(())
    }
    async fn exited(&self, _ctx: &HookContext) -> Result<(), HookError> {
        Ok(())
    }
    async fn stop(&self, _ctx: &HookContext) -> Result<(), HookError> {
        Ok(())
    }
}

/// The client's `artifact {}` settings, replaced on reload.
pub type SharedGetterConfig = Arc<std::sync::RwLock<caravan_getter::GetterConfig>>;

/// The hooks of one task, in the order they run.
pub fn task_hooks(
    artifact: SharedGetterConfig,
    template: super::template_settings::SharedTemplateSettings,
    rpc: Arc<dyn super::rpc::ServerRpc>,
    vault: Arc<super::vault::VaultClusters>,
) -> Vec<Box<dyn TaskHook>> {
    vec![
        Box::new(task_dir::TaskDirHook),
        Box::new(dispatch_payload::DispatchPayloadHook),
        Box::new(identity::IdentityHook::new(rpc.clone())),
        Box::new(volumes::VolumeHook),
        Box::new(artifact::ArtifactHook::new(artifact)),
        Box::new(vault::VaultHook::new(vault, template.clone())),
        Box::new(template::TemplateHook::new(template).with_rpc(rpc.clone())),
        Box::new(logmon::LogMonHook::default()),
        Box::new(services::ServiceHook::default()),
        Box::new(nomad_services::NomadServiceHook::new(rpc)),
    ]
}
