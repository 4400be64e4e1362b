//! The alloc runner: prepares an allocation's directory, runs its tasks in lifecycle order
//! (prestart, main with poststart, poststop; sidecars alongside), stops them when the server
//! says so, tracks deployment health, and reports the allocation's state.

use super::allocdir::AllocDir;
use super::health::HealthTracker;
use super::task_runner::{TaskRunner, TaskRunnerConfig};
use super::ClientShared;
use caravan_structs::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub struct AllocRunner {
    pub alloc_id: String,
    pub alloc_dir: AllocDir,
    /// Where this allocation's task handles are persisted.
    pub handles_dir: std::path::PathBuf,
    alloc: watch::Sender<Arc<Allocation>>,
    tasks: Mutex<BTreeMap<String, Arc<TaskRunner>>>,
    /// Tasks that could not even get a runner (their driver is missing on this node).
    unrunnable: Mutex<BTreeMap<String, TaskState>>,
    pub destroyed: watch::Sender<bool>,
}

impl AllocRunner {
    pub fn spawn(shared: Arc<ClientShared>, alloc: Arc<Allocation>) -> Arc<AllocRunner> {
        let (tx, _) = watch::channel(alloc.clone());
        let (destroyed, _) = watch::channel(false);
        let ar = Arc::new(AllocRunner {
            alloc_id: alloc.id.clone(),
            alloc_dir: AllocDir::new(&shared.config.data_dir, &alloc.id),
            handles_dir: super::restore::alloc_dir(&shared.config.data_dir, &alloc.id),
            alloc: tx,
            tasks: Mutex::new(BTreeMap::new()),
            unrunnable: Mutex::new(BTreeMap::new()),
            destroyed,
        });
        let runner = ar.clone();
        tokio::spawn(async move { runner.run(shared).await });
        ar
    }

    /// The server changed the allocation (desired status, in-place job update).
    pub fn update(&self, alloc: Arc<Allocation>) {
        self.alloc.send_replace(alloc);
    }

    pub fn current(&self) -> Arc<Allocation> {
        self.alloc.borrow().clone()
    }

    /// Every task has ended for good (no restart is coming), or no task could get a runner
    /// here, or the servers stopped an allocation before any task started.
    pub fn finished(&self) -> bool {
        let tasks = self.tasks();
        if tasks.is_empty() {
            let unrunnable = match self.unrunnable.lock() {
                Ok(u) => !u.is_empty(),
                Err(p) => !p.into_inner().is_empty(),
            };
            return unrunnable || self.current().server_terminal();
        }
        tasks.iter().all(|t| t.is_done())
    }

    pub fn task(&self, name: &str) -> Option<Arc<TaskRunner>> {
        self.lock_tasks().get(name).cloned()
    }

    pub fn tasks(&self) -> Vec<Arc<TaskRunner>> {
        self.lock_tasks().values().cloned().collect()
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<TaskRunner>>> {
        match self.tasks.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn task_states(&self) -> BTreeMap<String, TaskState> {
        let mut states: BTreeMap<String, TaskState> = match self.unrunnable.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (k, t) in self.lock_tasks().iter() {
            states.insert(k.clone(), t.state());
        }
        states
    }

    fn mark_unrunnable(&self, task: &Task) {
        let now = crate::util::rfc3339(time::now_nanos());
        let mut ev = TaskEvent::new(
            TASK_EVENT_DRIVER_FAILURE,
            format!("driver {:?} is not available on this node", task.driver),
        );
        ev.driver_error = ev.message.clone();
        ev.fails_task = true;
        let state = TaskState {
            state: TASK_STATE_DEAD.into(),
            failed: true,
            finished_at: Some(now),
            events: vec![
                TaskEvent::new(TASK_EVENT_RECEIVED, "Task received by client"),
                ev,
            ],
            ..Default::default()
        };
        match self.unrunnable.lock() {
            Ok(mut g) => g.insert(task.name.clone(), state),
            Err(p) => p.into_inner().insert(task.name.clone(), state),
        };
    }

    async fn run(self: Arc<Self>, shared: Arc<ClientShared>) {
        let alloc = self.current();
        let job = alloc.job.clone().unwrap_or_default();
        let Some(group) = job.lookup_group(&alloc.task_group).cloned() else {
            tracing::error!(alloc = %alloc.id, "allocation names a group its job lacks");
            return;
        };
        let (changed_tx, mut changed_rx) = mpsc::unbounded_channel();
        if let Err(e) = self.alloc_dir.build() {
            tracing::error!(alloc = %alloc.id, "cannot build alloc dir: {e}");
        }
        // An allocation this client ran before an agent restart has its data already.
        let ran_here_before = self.handles_dir.exists();
        if !ran_here_before && super::migrate::wants_previous(&alloc, &group) {
            super::migrate::take_over(
                shared.runner(&alloc.previous_allocation),
                &shared.config.data_dir,
                shared.rpc.as_ref(),
                &alloc,
                &group,
                &self.alloc_dir,
            )
            .await;
        }

        let mut health = HealthTracker::new(&alloc, &group);
        let mut group_services =
            super::hooks::services::GroupServices::new(shared.config.consul.clone());
        let mut nomad_group_services =
            super::hooks::nomad_services::NomadGroupServices::new(shared.rpc.clone());
        let mut alloc_rx = self.alloc.subscribe();
        let spawn_task = |task: &Task| -> Option<Arc<TaskRunner>> {
            let Some(driver) = shared.drivers.get(&task.driver).cloned() else {
                self.mark_unrunnable(task);
                return None;
            };
            let tr = TaskRunner::spawn(TaskRunnerConfig {
                alloc: self.current(),
                task: task.clone(),
                node: shared.node(),
                alloc_dir: self.alloc_dir.clone(),
                driver,
                handle_path: self.handles_dir.join(format!("{}.handle.json", task.name)),
                changed: changed_tx.clone(),
                artifact: shared.artifact.clone(),
                template: shared.template.clone(),
                consul: shared.config.consul.clone(),
                rpc: shared.rpc.clone(),
                vault: std::sync::Arc::new(shared.config.vault.clone()),
            });
            self.lock_tasks().insert(task.name.clone(), tr.clone());
            Some(tr)
        };

        let hook_of = |t: &Task| {
            t.lifecycle
                .as_ref()
                .map(|l| l.hook.clone())
                .unwrap_or_default()
        };
        let prestart: Vec<Task> = group
            .tasks
            .iter()
            .filter(|t| hook_of(t) == LIFECYCLE_PRESTART)
            .cloned()
            .collect();
        let main: Vec<Task> = group
            .tasks
            .iter()
            .filter(|t| hook_of(t).is_empty())
            .cloned()
            .collect();
        let poststart: Vec<Task> = group
            .tasks
            .iter()
            .filter(|t| hook_of(t) == LIFECYCLE_POSTSTART)
            .cloned()
            .collect();
        let poststop: Vec<Task> = group
            .tasks
            .iter()
            .filter(|t| hook_of(t) == LIFECYCLE_POSTSTOP)
            .cloned()
            .collect();

        let mut phase = Phase::Prestart;
        let mut started: Vec<String> = Vec::new();
        // Stopped by the servers while no agent ran: what still runs from before is
        // re-attached to be stopped, and nothing new starts.
        let stopped_meanwhile = alloc.server_terminal();
        if stopped_meanwhile {
            for t in group
                .tasks
                .iter()
                .filter(|t| super::restore::was_running(&self.handles_dir, &t.name))
            {
                if let Some(tr) = spawn_task(t) {
                    tr.kill(&alloc.desired_description);
                    started.push(t.name.clone());
                }
            }
        } else {
            for t in &prestart {
                if spawn_task(t).is_some() {
                    started.push(t.name.clone());
                }
            }
        }
        let mut stopping = stopped_meanwhile;
        let mut last_report: Option<(String, BTreeMap<String, TaskState>, Option<bool>)> = None;
        loop {
            // Advance the lifecycle.
            let states = self.task_states();
            let is_dead = |n: &str| {
                states
                    .get(n)
                    .map(|s| s.state == TASK_STATE_DEAD)
                    .unwrap_or(false)
            };
            let is_running = |n: &str| {
                states
                    .get(n)
                    .map(|s| s.state == TASK_STATE_RUNNING)
                    .unwrap_or(false)
            };
            let any_failed = states.values().any(|s| s.failed);
            if any_failed && !stopping {
                // A failed task takes its siblings down, as in Nomad.
                for tr in self.tasks() {
                    if !tr.is_done() {
                        tr.kill("Sibling task failed");
                    }
                }
                stopping = true;
            }
            if !stopping {
                match phase {
                    Phase::Prestart => {
                        let ready = prestart.iter().all(|t| {
                            let sidecar = t.lifecycle.as_ref().map(|l| l.sidecar).unwrap_or(false);
                            if sidecar {
                                is_running(&t.name)
                            } else {
                                is_dead(&t.name) && !states[&t.name].failed
                            }
                        });
                        if ready {
                            for t in &main {
                                spawn_task(t);
                            }
                            phase = Phase::Main;
                        }
                    }
                    Phase::Main => {
                        if main.iter().all(|t| is_running(&t.name) || is_dead(&t.name))
                            && !poststart.is_empty()
                        {
                            for t in &poststart {
                                spawn_task(t);
                            }
                            phase = Phase::MainWithPoststart;
                        } else if poststart.is_empty() {
                            phase = Phase::MainWithPoststart;
                        }
                    }
                    Phase::MainWithPoststart => {}
                    Phase::Poststop => {}
                }
                // Leader dies: the others stop.
                let leader_dead = group.tasks.iter().any(|t| t.leader && is_dead(&t.name));
                if leader_dead {
                    for tr in self.tasks() {
                        if !tr.is_done() {
                            tr.kill("Leader task dead");
                        }
                    }
                }
            }
            // Main tasks all done: stop sidecars, then run poststop tasks.
            let main_done = !main.is_empty()
                && main.iter().all(|t| is_dead(&t.name))
                && matches!(phase, Phase::Main | Phase::MainWithPoststart);
            if main_done || (stopping && !matches!(phase, Phase::Poststop)) {
                for tr in self.tasks() {
                    if !tr.is_done() {
                        tr.kill("Main tasks finished");
                    }
                }
                if self.tasks().iter().all(|t| t.is_done()) && !matches!(phase, Phase::Poststop) {
                    for t in &poststop {
                        spawn_task(t);
                    }
                    phase = Phase::Poststop;
                }
            }

            // Health and reporting.
            let states = self.task_states();
            let checks = match (&shared.config.consul, health.wants_checks()) {
                // A group's services have one provider; nomad's checks run in this client.
                (_, true) if super::hooks::nomad_services::uses_nomad(&group) => {
                    super::nomad_checks::healthy(&self.alloc_id)
                }
                (Some(consul), true) => consul.checks_healthy(&self.alloc_id).await,
                _ => None,
            };
            let healthy = health.observe(&states, &group, checks);
            let status = client_status(&group, &states);
            let running = status.0 == ALLOC_CLIENT_RUNNING && !stopping;
            group_services
                .sync(&self.current(), &shared.node(), running)
                .await;
            nomad_group_services
                .sync(&self.current(), &shared.node(), running)
                .await;
            let report = (status.0.clone(), states.clone(), healthy);
            if last_report.as_ref() != Some(&report) {
                let mut a = (*self.current()).clone();
                a.client_status = status.0;
                a.client_description = status.1;
                a.task_states = states;
                if let Some(h) = healthy {
                    a.deployment_status = Some(AllocDeploymentStatus {
                        healthy: Some(h),
                        timestamp: crate::util::rfc3339(time::now_nanos()),
                        canary: false,
                        modify_index: 0,
                    });
                }
                shared.report(a);
                last_report = Some(report);
            }
            let all_done = self.tasks().iter().all(|t| t.is_done());
            if all_done
                && (matches!(phase, Phase::Poststop) || poststop.is_empty())
                && (stopping || main_done || any_failed)
            {
                // Keep the runner (and its logs) for `alloc logs` until GC; wait for stop.
                if self.current().server_terminal() {
                    break;
                }
            }

            // Wait for something to change.
            let tick = health.next_check();
            tokio::select! {
                _ = changed_rx.recv() => {}
                ch = alloc_rx.changed() => {
                    if ch.is_err() { break; }
                    let a = alloc_rx.borrow_and_update().clone();
                    if a.server_terminal() && !stopping {
                        stopping = true;
                        for tr in self.tasks() {
                            if !tr.is_done() {
                                tr.kill(&a.desired_description);
                            }
                        }
                    }
                }
                _ = tokio::time::sleep(tick.unwrap_or(Duration::from_secs(3600))) => {}
            }
            if phase == Phase::Prestart && prestart.is_empty() {
                // Nothing to wait for before the main tasks.
                continue;
            }
        }
        group_services
            .sync(&self.current(), &shared.node(), false)
            .await;
        nomad_group_services
            .sync(&self.current(), &shared.node(), false)
            .await;
        tracing::debug!(alloc = %self.alloc_id, "alloc runner finished");
    }
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Phase {
    Prestart,
    Main,
    MainWithPoststart,
    Poststop,
}

/// Nomad's `getClientStatus`: any failed task → failed; all dead → complete; a running task →
/// running; else pending.
pub fn client_status(group: &TaskGroup, states: &BTreeMap<String, TaskState>) -> (String, String) {
    if states.values().any(|s| s.failed) {
        return (ALLOC_CLIENT_FAILED.into(), "Failed tasks".into());
    }
    let total = group.tasks.len();
    let dead = states
        .values()
        .filter(|s| s.state == TASK_STATE_DEAD)
        .count();
    if total > 0 && dead == total {
        return (
            ALLOC_CLIENT_COMPLETE.into(),
            "All tasks have completed".into(),
        );
    }
    let main_running = group
        .tasks
        .iter()
        .filter(|t| t.lifecycle.is_none())
        .any(|t| {
            states
                .get(&t.name)
                .map(|s| s.state == TASK_STATE_RUNNING)
                .unwrap_or(false)
        });
    if main_running {
        return (ALLOC_CLIENT_RUNNING.into(), "Tasks are running".into());
    }
    (ALLOC_CLIENT_PENDING.into(), "No tasks have started".into())
}
