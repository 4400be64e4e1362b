//! The task runner: runs one task through its hooks and driver, applies its restart policy,
//! records its state and events, and kills it on request.
//!
//! ```text
//!  pending ──prestart hooks──► start ──► running ──exit──► restart policy
//!     │           │ fail          │ fail                      │ restart: pending, delay, start
//!     │           ▼               ▼                           │ fail / done
//!     │      dead (failed)   restart policy                   ▼
//!     └──────────── kill (any time) ──────────────────────► dead ──► stop hooks
//! ```

use super::allocdir::AllocDir;
use super::hooks::{task_hooks, HookContext, TaskHook};
use super::restarts::{Decision, RestartTracker};
use super::taskenv::{EnvInput, TaskEnv};
use crate::util::rfc3339;
use caravan_driver::{Driver, TaskConfig, TaskHandle, TaskResources};
use caravan_structs::*;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// What the alloc runner asks of a running task.
#[derive(Debug, Clone, PartialEq)]
enum Control {
    Run,
    Restart,
    /// `fail`: the task ends failed (a template that can no longer read its data), not
    /// merely stopped.
    Kill {
        reason: String,
        fail: bool,
    },
}

pub struct TaskRunner {
    pub name: String,
    pub task: Task,
    pub task_id: String,
    state: Mutex<TaskState>,
    control: watch::Sender<Control>,
    done: watch::Sender<bool>,
    driver: Arc<dyn Driver>,
    changed: mpsc::UnboundedSender<()>,
    /// Environment hooks set after prestart (`env = true` templates), for the next start.
    hook_env: Mutex<std::collections::BTreeMap<String, String>>,
    /// Where the task's state is persisted on every change, for an agent restart.
    state_path: PathBuf,
}

pub struct TaskRunnerConfig {
    pub alloc: Arc<Allocation>,
    pub task: Task,
    pub node: Arc<Node>,
    pub alloc_dir: AllocDir,
    pub driver: Arc<dyn Driver>,
    /// Where the task's driver handle is persisted (for `recover` after an agent restart).
    pub handle_path: PathBuf,
    /// Nudged on every state change so the alloc runner reports it.
    pub changed: mpsc::UnboundedSender<()>,
    /// The client's `artifact {}` settings.
    pub artifact: super::hooks::SharedGetterConfig,
    /// The client's `template {}` settings.
    pub template: super::template_settings::SharedTemplateSettings,
    /// The local Consul agent, for the service hook.
    pub consul: Option<Arc<super::consul::Consul>>,
    /// The servers, for hooks that ask them for something (identity renewal).
    pub rpc: Arc<dyn super::rpc::ServerRpc>,
    /// The client's Vault clusters, for the Vault hook.
    pub vault: Arc<super::vault::VaultClusters>,
}

impl TaskRunner {
    /// Creates the runner and starts it on its own tokio task. A task this client ran before
    /// an agent restart (its state and handle persisted beside `handle_path`) is restored:
    /// a finished task stays finished, a running one is re-attached through the driver's
    /// `recover` instead of being started again.
    pub fn spawn(cfg: TaskRunnerConfig) -> Arc<TaskRunner> {
        let (control, _) = watch::channel(Control::Run);
        let (done, _) = watch::channel(false);
        let state_path = cfg
            .handle_path
            .with_file_name(format!("{}.state.json", cfg.task.name));
        let restored = super::restore::load(&state_path, &cfg.handle_path);
        let state = match &restored {
            Some(r) => r.state.clone(),
            None => {
                let mut state = TaskState::default();
                state.events.push(TaskEvent::new(
                    TASK_EVENT_RECEIVED,
                    "Task received by client",
                ));
                state
            }
        };
        let finished = state.state == TASK_STATE_DEAD;
        let tr = Arc::new(TaskRunner {
            name: cfg.task.name.clone(),
            task: cfg.task.clone(),
            task_id: format!("{}/{}", cfg.alloc.id, cfg.task.name),
            state: Mutex::new(state),
            control,
            done,
            driver: cfg.driver.clone(),
            changed: cfg.changed.clone(),
            hook_env: Mutex::default(),
            state_path,
        });
        if finished {
            tracing::info!(task = %tr.task_id, "restored a task that had finished");
            tr.done.send_replace(true);
            let _ = tr.changed.send(());
            return tr;
        }
        let handle = restored.and_then(|r| r.handle);
        let runner = tr.clone();
        tokio::spawn(async move { runner.run(cfg, handle).await });
        tr
    }

    pub fn state(&self) -> TaskState {
        match self.state.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut TaskState)) {
        {
            let mut g = match self.state.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            f(&mut g);
            // Nomad keeps the last 10 events.
            if g.events.len() > 10 {
                let n = g.events.len() - 10;
                g.events.drain(..n);
            }
            super::restore::save_state(&self.state_path, &g);
        }
        let _ = self.changed.send(());
    }

    fn event(&self, ev: TaskEvent) {
        self.update(|s| s.events.push(ev));
    }

    pub fn is_done(&self) -> bool {
        *self.done.borrow()
    }

    pub async fn wait_done(&self) {
        let mut rx = self.done.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Asks the task to stop for good.
    pub fn kill(&self, reason: &str) {
        self.control.send_replace(Control::Kill {
            reason: reason.into(),
            fail: false,
        });
    }

    /// Restarts the task without counting against its restart policy.
    pub fn restart(&self) -> Result<(), String> {
        self.restart_with(TaskEvent::new(
            TASK_EVENT_RESTART_SIGNAL,
            "User requested restart",
        ))
    }

    /// Restarts the task, recording `ev` as the reason.
    pub fn restart_with(&self, ev: TaskEvent) -> Result<(), String> {
        if self.is_done() {
            return Err(format!("task {:?} is not running", self.name));
        }
        self.event(ev);
        self.control.send_replace(Control::Restart);
        Ok(())
    }

    pub async fn signal(&self, sig: &str) -> Result<(), String> {
        if self.state().state != TASK_STATE_RUNNING {
            return Err(format!("task {:?} is not running", self.name));
        }
        let mut ev = TaskEvent::new(
            TASK_EVENT_SIGNALING,
            format!("Task being sent signal {sig}"),
        );
        ev.details.insert("signal".into(), sig.into());
        self.event(ev);
        self.driver
            .signal(&self.task_id, sig)
            .await
            .map_err(|e| e.to_string())
    }

    pub async fn stats(&self) -> Option<caravan_driver::TaskResourceUsage> {
        self.driver.stats(&self.task_id).await.ok()
    }

    /// The driver that runs this task (`alloc exec` streams through it).
    pub fn driver(&self) -> Arc<dyn Driver> {
        self.driver.clone()
    }

    /// Runs the task; `restore` is the handle of a task that was running when the agent
    /// stopped, re-attached instead of started.
    async fn run(self: Arc<Self>, cfg: TaskRunnerConfig, mut restore: Option<TaskHandle>) {
        let hooks = task_hooks(
            cfg.artifact.clone(),
            cfg.template.clone(),
            cfg.rpc.clone(),
            cfg.vault.clone(),
        );
        let job = cfg.alloc.job.clone().unwrap_or_default();
        let group = job
            .lookup_group(&cfg.alloc.task_group)
            .cloned()
            .unwrap_or_default();
        let prestart_env = TaskEnv::build(&EnvInput {
            alloc: &cfg.alloc,
            job: &job,
            group: &group,
            task: &cfg.task,
            node: &cfg.node,
            alloc_dir: &cfg.alloc_dir.root,
            task_dir: &cfg.alloc_dir.task_dir(&cfg.task.name),
            inherit_host_env: cfg.task.driver == "raw_exec",
        });
        let mut ctx = HookContext {
            alloc: cfg.alloc.clone(),
            task: cfg.task.clone(),
            alloc_dir: cfg.alloc_dir.clone(),
            env: Default::default(),
            stdout_path: PathBuf::new(),
            stderr_path: PathBuf::new(),
            events: vec![],
            task_env: Some(Arc::new(prestart_env)),
            node: cfg.node.clone(),
            driver_mounts: cfg.driver.supports_mounts(),
            mounts: vec![],
            consul: cfg.consul.clone(),
            control: Some(self.clone() as Arc<dyn super::hooks::TaskControl>),
            vault: None,
            restoring: restore.is_some(),
        };
        let mut control = self.control.subscribe();

        let policy = cfg
            .task
            .restart_policy
            .clone()
            .or(group.restart_policy.clone())
            .unwrap_or_else(|| RestartPolicy::default_for(&job.job_type));
        let mut tracker = RestartTracker::new(policy, &job.job_type);

        // Prestart hooks in order; a recoverable failure is retried from the failing hook
        // under the restart policy (Nomad's recoverable prestart errors).
        let mut next_hook = 0;
        while next_hook < hooks.len() {
            let r = hooks[next_hook].prestart(&mut ctx).await;
            for ev in ctx.events.drain(..) {
                self.event(ev);
            }
            match r {
                Ok(()) => next_hook += 1,
                Err(e) if e.recoverable => match tracker.on_start_failure() {
                    Decision::Restart { delay, reason } => {
                        if !self.wait_restart(delay, reason, &mut control).await {
                            self.finish(&hooks, &ctx, false).await;
                            return;
                        }
                    }
                    Decision::Fail { reason } => {
                        let mut ev = TaskEvent::new(TASK_EVENT_NOT_RESTARTING, reason.clone());
                        ev.restart_reason = reason;
                        ev.fails_task = true;
                        self.event(ev);
                        self.finish(&hooks, &ctx, true).await;
                        return;
                    }
                    Decision::Done => {
                        self.finish(&hooks, &ctx, false).await;
                        return;
                    }
                },
                Err(e) => {
                    let mut ev = TaskEvent::new(TASK_EVENT_SETUP_FAILURE, e.to_string());
                    ev.setup_error = e.to_string();
                    ev.fails_task = true;
                    self.event(ev);
                    self.finish(&hooks, &ctx, true).await;
                    return;
                }
            }
        }

        let ephemeral = cfg
            .task
            .lifecycle
            .as_ref()
            .map(|l| !l.sidecar && !l.hook.is_empty())
            .unwrap_or(false);
        let mut failed = false;

        // Set when the loop comes round again for a restart.
        let mut restarting = false;
        'run: loop {
            // A task to re-attach to is recovered first even when already told to stop (its
            // allocation was stopped while no agent ran), so that it is then stopped.
            if restore.is_none() && matches!(&*control.borrow(), Control::Kill { .. }) {
                break;
            }
            if std::mem::take(&mut restarting) {
                for hook in &hooks {
                    if let Err(e) = hook.restarting(&mut ctx).await {
                        tracing::warn!(task = %self.task_id, "restart hook failed: {e}");
                    }
                }
                for ev in ctx.events.drain(..) {
                    self.event(ev);
                }
            }
            let env = TaskEnv::build(&EnvInput {
                alloc: &cfg.alloc,
                job: &job,
                group: &group,
                task: &cfg.task,
                node: &cfg.node,
                alloc_dir: &cfg.alloc_dir.root,
                task_dir: &cfg.alloc_dir.task_dir(&cfg.task.name),
                inherit_host_env: cfg.task.driver == "raw_exec",
            });
            let mut full_env = env.env.clone();
            full_env.extend(ctx.env.clone());
            match self.hook_env.lock() {
                Ok(g) => full_env.extend(g.clone()),
                Err(p) => full_env.extend(p.into_inner().clone()),
            }
            let driver_config = match env.interpolate_json(&serde_json::Value::Object(
                cfg.task.config.clone().into_iter().collect(),
            )) {
                serde_json::Value::Object(m) => m,
                _ => Default::default(),
            };
            let task_cfg = TaskConfig {
                id: self.task_id.clone(),
                name: cfg.task.name.clone(),
                alloc_id: cfg.alloc.id.clone(),
                job_name: job.name.clone(),
                task_group: group.name.clone(),
                driver_config,
                env: full_env,
                user: cfg.task.user.clone(),
                alloc_dir: cfg.alloc_dir.shared_dir(),
                task_dir: cfg.alloc_dir.task_dir(&cfg.task.name),
                local_dir: cfg.alloc_dir.local_dir(&cfg.task.name),
                secrets_dir: cfg.alloc_dir.secrets_dir(&cfg.task.name),
                stdout_path: ctx.stdout_path.clone(),
                stderr_path: ctx.stderr_path.clone(),
                resources: task_resources(&cfg.alloc, &cfg.task),
                mounts: ctx.mounts.clone(),
            };
            ctx.restoring = false;
            let recovered = match restore.take() {
                Some(handle) => self.recover(&cfg, handle).await,
                None => None,
            };
            let started = match recovered {
                Some(handle) => Ok((handle, true)),
                None => cfg.driver.start(task_cfg).await.map(|h| (h, false)),
            };
            let decision = match started {
                Err(e) => {
                    let msg = format!("failed to launch command with executor: {e}");
                    let mut ev = TaskEvent::new(TASK_EVENT_DRIVER_FAILURE, msg.clone());
                    ev.driver_error = e.to_string();
                    self.event(ev);
                    tracker.on_start_failure()
                }
                Ok((handle, recovered)) => {
                    if !recovered {
                        super::restore::save_handle(&cfg.handle_path, &handle);
                        let now = rfc3339(time::now_nanos());
                        self.update(|s| {
                            s.state = TASK_STATE_RUNNING.into();
                            if s.started_at.is_none() {
                                s.started_at = Some(now.clone());
                            }
                            s.events
                                .push(TaskEvent::new(TASK_EVENT_STARTED, "Task started by client"));
                        });
                    }
                    for hook in &hooks {
                        if let Err(e) = hook.poststart(&ctx).await {
                            tracing::warn!(task = %self.task_id, "poststart hook failed: {e}");
                        }
                    }
                    // Told to stop while it started (or before it was re-attached).
                    let pending_kill = match &*control.borrow() {
                        Control::Kill { reason, .. } => Some(reason.clone()),
                        _ => None,
                    };
                    if let Some(reason) = pending_kill {
                        self.kill_process(&cfg.task, &reason).await;
                        break 'run;
                    }
                    // Wait for the exit, a kill or a restart request.
                    let exit = loop {
                        tokio::select! {
                            res = cfg.driver.wait(&self.task_id) => break Some(res),
                            ch = control.changed() => {
                                if ch.is_err() { break None; }
                                let c = control.borrow_and_update().clone();
                                match c {
                                    Control::Run => continue,
                                    Control::Restart => {
                                        self.stop_process(&cfg.task).await;
                                        self.control.send_replace(Control::Run);
                                        let _ = control.borrow_and_update();
                                        self.update(|s| {
                                            s.restarts += 1;
                                            s.last_restart = Some(rfc3339(time::now_nanos()));
                                        });
                                        let _ = cfg.driver.destroy(&self.task_id, true).await;
                                        restarting = true;
                                        continue 'run;
                                    }
                                    Control::Kill { reason, .. } => {
                                        self.kill_process(&cfg.task, &reason).await;
                                        break 'run;
                                    }
                                }
                            }
                        }
                    };
                    let res = match exit {
                        Some(Ok(r)) => r,
                        Some(Err(e)) => caravan_driver::ExitResult {
                            exit_code: -1,
                            err: Some(e.to_string()),
                            ..Default::default()
                        },
                        None => break 'run,
                    };
                    self.event(terminated_event(&res));
                    let _ = cfg.driver.destroy(&self.task_id, true).await;
                    for hook in &hooks {
                        let _ = hook.exited(&ctx).await;
                    }
                    tracker.on_exit(res.successful(), ephemeral)
                }
            };
            match decision {
                Decision::Done => break,
                Decision::Fail { reason } => {
                    let mut ev = TaskEvent::new(TASK_EVENT_NOT_RESTARTING, reason.clone());
                    ev.restart_reason = reason;
                    ev.fails_task = true;
                    self.event(ev);
                    failed = true;
                    break;
                }
                Decision::Restart { delay, reason } => {
                    if !self.wait_restart(delay, reason, &mut control).await {
                        break 'run;
                    }
                    restarting = true;
                }
            }
        }
        failed |= matches!(&*control.borrow(), Control::Kill { fail: true, .. });
        self.finish(&hooks, &ctx, failed).await;
    }

    /// Re-attaches to the task the previous agent process started. On failure (the process
    /// is gone and nobody kept its exit status) the task is started again, as Nomad does,
    /// with a "Failed Restoring Task" event.
    async fn recover(&self, cfg: &TaskRunnerConfig, handle: TaskHandle) -> Option<TaskHandle> {
        if handle.driver != cfg.task.driver {
            self.restore_failed(format!(
                "the saved handle is for driver {:?}, the task now uses {:?}",
                handle.driver, cfg.task.driver
            ));
            return None;
        }
        match cfg.driver.recover(handle.clone()).await {
            Ok(()) => {
                tracing::info!(task = %self.task_id, pid = handle.pid, "re-attached to running task");
                Some(handle)
            }
            Err(e) => {
                self.restore_failed(e.to_string());
                None
            }
        }
    }

    fn restore_failed(&self, why: String) {
        tracing::warn!(task = %self.task_id, "cannot re-attach to task: {why}; starting it again");
        let mut ev = TaskEvent::new(TASK_EVENT_RESTORE_FAILED, why.clone());
        ev.driver_error = why;
        self.event(ev);
    }

    /// Records a "Restarting" event, waits out the delay and counts the restart. Returns false
    /// when the task was killed during the wait.
    async fn wait_restart(
        &self,
        delay: Duration,
        reason: String,
        control: &mut watch::Receiver<Control>,
    ) -> bool {
        let mut ev = TaskEvent::new(
            TASK_EVENT_RESTARTING,
            format!(
                "Task restarting in {}",
                time::format_duration(delay.as_nanos() as i64)
            ),
        );
        ev.restart_reason = reason;
        ev.start_delay = delay.as_nanos() as i64;
        self.update(|s| {
            s.state = TASK_STATE_PENDING.into();
            s.events.push(ev);
        });
        let sleep = tokio::time::sleep(delay);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                ch = control.changed() => {
                    if ch.is_err() { return false; }
                    if let Control::Kill { .. } = &*control.borrow_and_update() {
                        return false;
                    }
                }
            }
        }
        self.update(|s| {
            s.restarts += 1;
            s.last_restart = Some(rfc3339(time::now_nanos()));
        });
        true
    }

    /// Stops the process for a restart.
    async fn stop_process(&self, task: &Task) {
        let timeout = time::nanos(task.kill_timeout);
        let _ = self
            .driver
            .stop(&self.task_id, timeout, &task.kill_signal)
            .await;
    }

    /// Stops the process for good, with Nomad's events.
    async fn kill_process(&self, task: &Task, reason: &str) {
        let timeout = time::nanos(task.kill_timeout);
        let mut ev = TaskEvent::new(
            TASK_EVENT_KILLING,
            format!(
                "Sent interrupt. Waiting {} before force killing",
                time::format_duration(task.kill_timeout)
            ),
        );
        ev.kill_timeout = task.kill_timeout;
        if !reason.is_empty() {
            ev.details.insert("kill_reason".into(), reason.into());
        }
        self.event(ev);
        let stop = self
            .driver
            .stop(&self.task_id, timeout, &task.kill_signal)
            .await;
        let res =
            tokio::time::timeout(Duration::from_secs(5), self.driver.wait(&self.task_id)).await;
        if let Ok(Ok(r)) = res {
            self.event(terminated_event(&r));
        }
        let mut killed = TaskEvent::new(TASK_EVENT_KILLED, "Task successfully killed");
        if let Err(e) = stop {
            killed.kill_error = e.to_string();
            killed.display_message = format!("Task killed with error: {e}");
        }
        self.event(killed);
        let _ = self.driver.destroy(&self.task_id, true).await;
    }

    async fn finish(&self, hooks: &[Box<dyn TaskHook>], ctx: &HookContext, failed: bool) {
        for hook in hooks {
            if let Err(e) = hook.stop(ctx).await {
                tracing::warn!(task = %self.task_id, "stop hook failed: {e}");
            }
        }
        self.update(|s| {
            s.state = TASK_STATE_DEAD.into();
            s.failed = s.failed || failed;
            s.finished_at = Some(rfc3339(time::now_nanos()));
        });
        self.done.send_replace(true);
    }
}

/// What the scheduler gave the task (its allocated resources: `memory_max` is cleared there
/// when memory oversubscription is off, as Nomad's scheduler does), else what the task asks.
fn task_resources(alloc: &Allocation, task: &Task) -> TaskResources {
    match alloc.allocated_resources.tasks.get(&task.name) {
        Some(r) => TaskResources {
            cpu_shares: r.cpu.cpu_shares,
            memory_mb: r.memory.memory_mb,
            memory_max_mb: r.memory.memory_max_mb,
        },
        None => TaskResources {
            cpu_shares: task.resources.cpu,
            memory_mb: task.resources.memory_mb,
            memory_max_mb: task.resources.memory_max_mb,
        },
    }
}

fn terminated_event(res: &caravan_driver::ExitResult) -> TaskEvent {
    let mut msg = format!("Exit Code: {}", res.exit_code);
    if res.signal != 0 {
        msg.push_str(&format!(", Signal: {}", res.signal));
    }
    if res.oom_killed {
        msg.push_str(", OOM Killed");
    }
    if let Some(e) = &res.err {
        msg.push_str(&format!(", Exit Message: {e:?}"));
    }
    let mut ev = TaskEvent::new(TASK_EVENT_TERMINATED, msg);
    ev.exit_code = res.exit_code;
    ev.signal = res.signal;
    ev.details
        .insert("exit_code".into(), res.exit_code.to_string());
    ev.details.insert("signal".into(), res.signal.to_string());
    ev.details
        .insert("oom_killed".into(), res.oom_killed.to_string());
    ev
}

#[caravan_driver::async_trait]
impl super::hooks::TaskControl for TaskRunner {
    fn event(&self, ev: TaskEvent) {
        TaskRunner::event(self, ev)
    }
    fn update_event(&self, ev: TaskEvent) {
        self.update(|s| super::hooks::artifact::record_progress(&mut s.events, ev));
    }
    fn is_running(&self) -> bool {
        self.state().state == TASK_STATE_RUNNING
    }
    fn set_env(&self, env: std::collections::BTreeMap<String, String>) {
        match self.hook_env.lock() {
            Ok(mut g) => *g = env,
            Err(p) => *p.into_inner() = env,
        }
    }
    fn killed(&self) -> bool {
        matches!(*self.control.borrow(), Control::Kill { .. })
    }
    fn restart(&self, ev: TaskEvent) -> Result<(), String> {
        self.restart_with(ev)
    }
    fn fail(&self, mut ev: TaskEvent) {
        ev.fails_task = true;
        let reason = ev.display_message.clone();
        self.event(ev);
        self.control
            .send_replace(Control::Kill { reason, fail: true });
    }
    async fn signal(&self, sig: &str) -> Result<(), String> {
        TaskRunner::signal(self, sig).await
    }
    async fn exec(
        &self,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<caravan_driver::ExecResult, String> {
        if !self.is_running() {
            return Err(format!("task {:?} is not running", self.name));
        }
        self.driver
            .exec(&self.task_id, cmd, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}
