//! [`DockerDriver`]: the [`Driver`] implementation that runs each task as one container
//! through the engine's Docker API (Docker, or Podman's Docker-compatible service).
//!
//! Per task the driver keeps the container id, a waiter (the engine's `wait` API, retried
//! while the engine is away) that publishes the exit, and a log pump (see [`crate::logs`]).
//! The handle's `driver_state` holds [`DriverState`], enough to re-attach after an agent
//! restart.

use crate::engine::{describe, engine_error, is_not_found, is_not_modified, Engine};
use crate::gc::{ImageGc, ReaperSettings};
use crate::image::Puller;
use crate::logs;
use crate::plugin_config::DockerPluginConfig;
use crate::spec::{self, NodeCpu, LABEL_CARAVAN_MANAGED, LABEL_CARAVAN_TASK_ID};
use crate::stats::{self, CpuSample};
use crate::task_config::DockerTaskConfig;
use bollard::container::{
    CreateContainerOptions, KillContainerOptions, RemoveContainerOptions, StartContainerOptions,
    StatsOptions, StopContainerOptions, WaitContainerOptions,
};
use bollard::exec::{CreateExecOptions, StartExecResults};
use caravan_driver::procfs;
use caravan_driver::task_events::{self, TaskEventSender};
use caravan_driver::{
    async_trait, parse_signal, Driver, DriverError, ExecResult, ExitResult, Fingerprint,
    TaskConfig, TaskHandle, TaskResourceUsage, TaskState, TaskStatus, HANDLE_VERSION,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long `stop` waits for the container to exit after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(15);

/// How long `destroy` lets the log pump drain the last output of an exited container.
const LOG_DRAIN: Duration = Duration::from_secs(5);

/// How long the waiter pauses before asking an unreachable engine again.
const WAIT_RETRY: Duration = Duration::from_secs(1);

/// Exit code of a process killed by SIGKILL (how a container's OOM kill shows on Podman).
const EXIT_SIGKILL: i32 = 137;

/// Which engine API flavour a driver instance speaks for: its name in job files and the
/// endpoint it uses when none is configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flavor {
    pub name: &'static str,
    pub default_endpoint: &'static str,
}

/// Nomad's `docker` driver.
pub const DOCKER: Flavor = Flavor {
    name: "docker",
    default_endpoint: crate::plugin_config::DEFAULT_ENDPOINT,
};

/// What the task handle carries for this driver.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverState {
    pub container_id: String,
    pub container_name: String,
    pub image_id: String,
    /// The container's hard memory limit in bytes (0: none).
    pub memory_limit: i64,
    /// The image as the task named it (counted by the image GC).
    #[serde(default)]
    pub image: String,
}

/// How a container ended, with when.
#[derive(Debug, Clone)]
struct Exited {
    result: ExitResult,
    completed_at: i64,
}

/// One task known to the driver.
struct Task {
    handle: TaskHandle,
    state: DriverState,
    exit: watch::Receiver<Option<Exited>>,
    /// Set once the driver itself kills the container, so that exit 137 is not taken for OOM.
    killed: Arc<AtomicBool>,
    waiter: JoinHandle<()>,
    logs: Mutex<Option<JoinHandle<()>>>,
    cpu: Mutex<Option<CpuSample>>,
}

impl Task {
    fn exited(&self) -> Option<Exited> {
        self.exit.borrow().clone()
    }

    /// Waits up to `within` for the exit; true when it came.
    async fn wait_exit(&self, within: Duration) -> bool {
        let mut rx = self.exit.clone();
        let done = tokio::time::timeout(within, rx.wait_for(|e| e.is_some()))
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
        done
    }
}

/// Runs tasks as containers (Nomad's `docker` driver; see [`crate::podman`] for `podman`).
pub struct DockerDriver {
    flavor: Flavor,
    plugin: DockerPluginConfig,
    endpoint: String,
    node_cpu: NodeCpu,
    engine: Mutex<Option<Engine>>,
    puller: Puller,
    tasks: Arc<Mutex<HashMap<String, Arc<Task>>>>,
    /// Task events (image pull progress) for the client.
    events: TaskEventSender,
    /// Images in use, removed when unused (`gc { image }`).
    image_gc: Arc<ImageGc>,
    /// The dangling container reaper, started by the first fingerprint.
    reaper: Mutex<Option<JoinHandle<()>>>,
}

impl DockerDriver {
    /// A `docker` driver with this plugin config.
    pub fn new(plugin: DockerPluginConfig) -> Self {
        Self::with_flavor(DOCKER, plugin)
    }

    /// A driver of the given flavour (docker or podman).
    pub fn with_flavor(flavor: Flavor, plugin: DockerPluginConfig) -> Self {
        let endpoint = if plugin.endpoint.is_empty() && flavor != DOCKER {
            flavor.default_endpoint.to_string()
        } else {
            plugin.endpoint()
        };
        let events = task_events::channel(256);
        let image_gc = ImageGc::new(&plugin.gc(), &endpoint);
        DockerDriver {
            flavor,
            plugin,
            endpoint,
            node_cpu: NodeCpu::detect(),
            engine: Mutex::new(None),
            puller: Puller::new(events.clone()),
            tasks: Arc::new(Mutex::new(HashMap::new())),
            events,
            image_gc,
            reaper: Mutex::new(None),
        }
    }

    /// Reports pull progress at most this often (default 10 s; the first and last report of
    /// each pull always go out).
    pub fn with_pull_progress_interval(mut self, interval: Duration) -> Self {
        self.puller.progress_interval = interval;
        self
    }

    /// Starts the dangling container reaper once (`gc { dangling_containers }`), unless off.
    fn start_reaper(&self) {
        let mut guard = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_some() {
            return;
        }
        let settings = match ReaperSettings::of(&self.plugin.gc()) {
            Ok(Some(s)) => s,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("dangling container reaper not started: {e}");
                return;
            }
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let tasks = self.tasks.clone();
        let tracked = move || {
            tasks
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|t| t.state.container_id.clone())
                .collect()
        };
        tracing::debug!(
            ?settings,
            driver = self.flavor.name,
            "starting the dangling container reaper"
        );
        *guard = Some(rt.spawn(crate::gc::reaper_loop(
            self.endpoint.clone(),
            self.flavor.name,
            settings,
            tracked,
        )));
    }

    /// The engine endpoint this driver talks to.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The plugin config in effect.
    pub fn plugin_config(&self) -> &DockerPluginConfig {
        &self.plugin
    }

    fn engine(&self) -> Result<Engine, DriverError> {
        let mut guard = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = guard.as_ref() {
            return Ok(e.clone());
        }
        let e = Engine::connect(&self.endpoint)?;
        *guard = Some(e.clone());
        Ok(e)
    }

    /// Forgets the cached connection so that the next call connects again (the socket may
    /// have been re-created by an engine restart).
    fn reset_engine(&self) {
        *self.engine.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<String, Arc<Task>>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, task_id: &str) -> Result<Arc<Task>, DriverError> {
        self.tasks()
            .get(task_id)
            .cloned()
            .ok_or_else(|| DriverError::TaskNotFound(task_id.to_string()))
    }

    /// Parses the task's config the way this flavour spells it.
    fn task_config(&self, cfg: &TaskConfig) -> Result<DockerTaskConfig, DriverError> {
        if self.flavor.name == crate::podman::PODMAN.name {
            crate::podman::to_docker_config(&cfg.driver_config)
        } else {
            DockerTaskConfig::parse(&cfg.driver_config)
        }
    }

    /// Registers a task: starts its waiter and, unless log collection is off, its log pump
    /// from `logs_from` (`None`: no log pump).
    fn track(
        &self,
        engine: &Engine,
        handle: TaskHandle,
        state: DriverState,
        logs_from: Option<logs::Origin>,
    ) {
        let (tx, rx) = watch::channel(None);
        let killed = Arc::new(AtomicBool::new(false));
        let waiter = tokio::spawn(watch_exit(
            engine.clone(),
            state.container_id.clone(),
            state.memory_limit,
            killed.clone(),
            tx,
        ));
        let pump = logs_from
            .filter(|_| !self.plugin.disable_log_collection)
            .map(|from| {
                logs::start(
                    engine,
                    &state.container_id,
                    handle.config.stdout_path.clone(),
                    handle.config.stderr_path.clone(),
                    from,
                )
            });
        let task = Arc::new(Task {
            handle,
            state,
            exit: rx,
            killed,
            waiter,
            logs: Mutex::new(pump),
            cpu: Mutex::new(None),
        });
        if let Some(old) = self.tasks().insert(task.handle.task_id.clone(), task) {
            old.waiter.abort();
            self.image_gc.release(&old.state.image);
        }
    }

    /// Removes a leftover container of the same name (an earlier attempt of this task).
    async fn remove_stale(&self, engine: &Engine, name: &str) -> Result<(), DriverError> {
        match engine.api.inspect_container(name, None).await {
            Ok(c) => {
                let ours = c
                    .config
                    .as_ref()
                    .and_then(|c| c.labels.as_ref())
                    .map(|l| l.contains_key(LABEL_CARAVAN_MANAGED))
                    .unwrap_or(false);
                if !ours {
                    return Err(DriverError::Start(format!(
                        "a container named {name:?} exists and was not created by Caravan; \
                         remove it or rename it"
                    )));
                }
                tracing::info!(
                    container = name,
                    "removing leftover container of an earlier attempt"
                );
                remove_container(engine, name).await
            }
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(&engine.endpoint, e)),
        }
    }

    /// Sends `signal` to the container; a container that already stopped is not an error.
    async fn kill(&self, task: &Task, signal: &str) -> Result<(), DriverError> {
        let engine = self.engine()?;
        if signal.eq_ignore_ascii_case("SIGKILL") || signal.eq_ignore_ascii_case("KILL") {
            task.killed.store(true, Ordering::SeqCst);
        }
        match engine
            .api
            .kill_container(
                &task.state.container_id,
                Some(KillContainerOptions { signal }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) || is_not_modified(&e) => Ok(()),
            Err(e) => {
                // The container may have stopped just before the kill (the waiter has not
                // published it yet): that is not an error.
                let stopped = task.exited().is_some()
                    || matches!(
                        engine.api.inspect_container(&task.state.container_id, None).await,
                        Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(false)
                    );
                if stopped {
                    tracing::debug!("kill of a stopped container: {}", describe(&e));
                    return Ok(());
                }
                Err(DriverError::Signal(format!(
                    "cannot send {signal} to container {}: {}",
                    task.state.container_id,
                    describe(&e)
                )))
            }
        }
    }

    /// Removes containers labelled as Caravan's that no task of this driver tracks and that
    /// are older than `grace` (Nomad's dangling container reconciler). Returns the ids
    /// removed (or that would be, with `dry_run`).
    pub async fn remove_dangling(
        &self,
        grace: Duration,
        dry_run: bool,
    ) -> Result<Vec<String>, DriverError> {
        let engine = self.engine()?;
        let tracked: std::collections::HashSet<String> = self
            .tasks()
            .values()
            .map(|t| t.state.container_id.clone())
            .collect();
        crate::gc::remove_dangling(&engine, self.flavor.name, &tracked, grace, dry_run).await
    }
}

impl Drop for DockerDriver {
    /// Stops the driver's background work (waiters, log pumps) as an agent exit would; the
    /// containers keep running for a later `recover`.
    fn drop(&mut self) {
        if let Some(r) = self.reaper.lock().unwrap_or_else(|e| e.into_inner()).take() {
            r.abort();
        }
        for task in self.tasks().values() {
            task.waiter.abort();
            if let Some(p) = task.logs.lock().unwrap_or_else(|e| e.into_inner()).take() {
                p.abort();
            }
        }
    }
}

/// Force-removes a container and its anonymous volumes; a missing one is fine.
async fn remove_container(engine: &Engine, id: &str) -> Result<(), DriverError> {
    match engine
        .api
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                v: true,
                ..Default::default()
            }),
        )
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(DriverError::Other(format!(
            "cannot remove container {id}: {}",
            describe(&e)
        ))),
    }
}

/// Unix nanoseconds of an RFC 3339 time from the engine (0 when unknown).
fn parse_engine_time(s: &str) -> i64 {
    crate::time::parse_rfc3339_nanos(s).unwrap_or(0)
}

/// Waits for the container to stop (re-asking while the engine is unreachable), then reads
/// its exit code and OOM flag and publishes them.
async fn watch_exit(
    engine: Engine,
    id: String,
    memory_limit: i64,
    killed: Arc<AtomicBool>,
    tx: watch::Sender<Option<Exited>>,
) {
    let mut lost = None;
    loop {
        let mut stream = engine.stream.wait_container(
            &id,
            Some(WaitContainerOptions {
                condition: "not-running",
            }),
        );
        match stream.next().await {
            Some(Ok(_)) | Some(Err(bollard::errors::Error::DockerContainerWaitError { .. })) => {
                break
            }
            Some(Err(e)) if is_not_found(&e) => {
                lost = Some(format!("container {id} disappeared from the engine"));
                break;
            }
            Some(Err(e)) => {
                tracing::debug!(container = %id, "waiting for container: {}", describe(&e));
            }
            None => {}
        }
        // The engine went away or ended the request early: ask whether the container still
        // runs before waiting again.
        match engine.api.inspect_container(&id, None).await {
            Ok(c) if c.state.as_ref().and_then(|s| s.running) == Some(false) => break,
            Err(e) if is_not_found(&e) => {
                lost = Some(format!("container {id} disappeared from the engine"));
                break;
            }
            _ => tokio::time::sleep(WAIT_RETRY).await,
        }
    }
    let exited = match lost {
        Some(msg) => Exited {
            result: ExitResult {
                exit_code: -1,
                err: Some(msg),
                ..Default::default()
            },
            completed_at: procfs::now_nanos(),
        },
        None => exit_of(&engine, &id, memory_limit, killed.load(Ordering::SeqCst)).await,
    };
    tracing::debug!(container = %id, exit = ?exited.result, "container exited");
    tx.send_replace(Some(exited));
}

/// Reads how a stopped container ended.
async fn exit_of(engine: &Engine, id: &str, memory_limit: i64, killed: bool) -> Exited {
    match engine.api.inspect_container(id, None).await {
        Ok(c) => {
            let state = c.state.unwrap_or_default();
            let exit_code = state.exit_code.unwrap_or(-1) as i32;
            // Docker reports OOMKilled; Podman never does, so a SIGKILL exit of a
            // memory-limited container that the driver did not kill is taken as one.
            let oom_killed = state.oom_killed.unwrap_or(false)
                || (exit_code == EXIT_SIGKILL && memory_limit > 0 && !killed);
            // Podman can report a FinishedAt a little before StartedAt for short tasks.
            let started_at = state
                .started_at
                .as_deref()
                .map(parse_engine_time)
                .unwrap_or(0);
            let completed_at = state
                .finished_at
                .as_deref()
                .map(parse_engine_time)
                .filter(|t| *t > 0)
                .unwrap_or_else(procfs::now_nanos)
                .max(started_at);
            let err = state.error.filter(|e| !e.is_empty());
            Exited {
                result: ExitResult {
                    exit_code,
                    signal: 0,
                    oom_killed,
                    err,
                },
                completed_at,
            }
        }
        Err(e) => Exited {
            result: ExitResult {
                exit_code: -1,
                err: Some(format!(
                    "cannot read the exit status of container {id}: {}",
                    describe(&e)
                )),
                ..Default::default()
            },
            completed_at: procfs::now_nanos(),
        },
    }
}

#[async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &str {
        self.flavor.name
    }

    fn supports_mounts(&self) -> bool {
        true
    }

    async fn fingerprint(&self) -> Fingerprint {
        let mut fp = Fingerprint::default();
        let attrs = match self.engine() {
            Ok(engine) => engine.attributes(self.flavor.name).await,
            Err(e) => Err(e),
        };
        match attrs {
            Ok(attrs) => {
                fp.attributes = attrs;
                fp.detected = true;
                fp.healthy = true;
                fp.health_description = "Healthy".to_string();
                self.start_reaper();
                if self.plugin.volumes_enabled() {
                    fp.attributes.insert(
                        format!("driver.{}.volumes.enabled", self.flavor.name),
                        "true".into(),
                    );
                }
                if self.plugin.allow_privileged {
                    fp.attributes.insert(
                        format!("driver.{}.privileged.enabled", self.flavor.name),
                        "true".into(),
                    );
                }
            }
            Err(e) => {
                self.reset_engine();
                fp.health_description = format!(
                    "Failed to connect to the {} engine at {}: {e}",
                    self.flavor.name, self.endpoint
                );
            }
        }
        fp
    }

    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError> {
        if cfg.id.is_empty() {
            return Err(DriverError::InvalidConfig("task id is empty".into()));
        }
        let tc = self.task_config(&cfg)?;
        if let Some(t) = self.tasks().get(&cfg.id) {
            if t.exited().is_none() {
                return Err(DriverError::TaskAlreadyExists(cfg.id.clone()));
            }
        }
        let mut spec = spec::build(&cfg, &tc, &self.plugin, self.node_cpu)?;
        // So that one flavour's reaper leaves the other's containers on a shared engine alone.
        spec.config
            .labels
            .get_or_insert_with(Default::default)
            .insert(spec::LABEL_CARAVAN_DRIVER.into(), self.flavor.name.into());
        let engine = self.engine()?;
        // Held from before the pull, so that the image GC leaves the image alone meanwhile.
        let image_use = self.image_gc.acquire(&tc.image);
        let image_id = match self.puller.ensure(&engine, &cfg, &tc, &self.plugin).await {
            Ok(id) => id,
            Err(e) => {
                if matches!(e, DriverError::Other(_)) {
                    self.reset_engine();
                }
                return Err(e);
            }
        };
        let create = || {
            engine.api.create_container(
                Some(CreateContainerOptions {
                    name: spec.name.clone(),
                    platform: None,
                }),
                spec.config.clone(),
            )
        };
        // A container of the same name (an earlier attempt of this task) is looked at only
        // when the engine says it is there: one request less on every start.
        let created = match create().await {
            Err(e) if crate::engine::is_name_in_use(&e) => {
                self.remove_stale(&engine, &spec.name).await?;
                create().await
            }
            r => r,
        }
        .map_err(|e| {
            DriverError::Start(format!(
                "failed to create container from image {:?}: {}",
                tc.image,
                describe(&e)
            ))
        })?;
        let id = created.id;
        for w in created.warnings {
            tracing::warn!(task = %cfg.id, container = %id, "engine warning: {w}");
        }
        let since = procfs::now_nanos() / 1_000_000_000;
        if let Err(e) = engine
            .api
            .start_container(&id, None::<StartContainerOptions<String>>)
            .await
        {
            let msg = describe(&e);
            let _ = remove_container(&engine, &id).await;
            return Err(DriverError::Start(format!(
                "failed to start container {} ({}): {msg}",
                spec.name, tc.image
            )));
        }
        let inspected = engine.api.inspect_container(&id, None).await.ok();
        let state = inspected
            .as_ref()
            .and_then(|c| c.state.clone())
            .unwrap_or_default();
        let started_at = state
            .started_at
            .as_deref()
            .map(parse_engine_time)
            .filter(|t| *t > 0)
            .unwrap_or_else(procfs::now_nanos);
        let driver_state = DriverState {
            container_id: id.clone(),
            container_name: spec.name.clone(),
            image_id,
            memory_limit: spec.memory_limit,
            image: tc.image.clone(),
        };
        let handle = TaskHandle {
            version: HANDLE_VERSION,
            driver: self.flavor.name.to_string(),
            task_id: cfg.id.clone(),
            pid: state.pid.unwrap_or(0) as i32,
            process_start_ticks: 0,
            started_at,
            driver_state: serde_json::to_value(&driver_state)
                .map_err(|e| DriverError::Other(format!("cannot encode task handle: {e}")))?,
            config: cfg,
        };
        // Logs from a second before the start so that nothing written at once is missed.
        self.track(
            &engine,
            handle.clone(),
            driver_state,
            Some(logs::Origin::Since(since - 1)),
        );
        image_use.keep();
        tracing::info!(task = %handle.task_id, container = %id, image = %tc.image, "container started");
        Ok(handle)
    }

    async fn wait(&self, task_id: &str) -> Result<ExitResult, DriverError> {
        let mut rx = self.get(task_id)?.exit.clone();
        let result = match rx.wait_for(|e| e.is_some()).await {
            Ok(e) => e.as_ref().map(|e| e.result.clone()).unwrap_or_default(),
            Err(_) => ExitResult {
                exit_code: -1,
                err: Some("lost track of the container".into()),
                ..Default::default()
            },
        };
        Ok(result)
    }

    async fn stop(
        &self,
        task_id: &str,
        timeout: Duration,
        signal: &str,
    ) -> Result<(), DriverError> {
        let task = self.get(task_id)?;
        if task.exited().is_some() {
            return Ok(());
        }
        let engine = self.engine()?;
        if signal.trim().is_empty() {
            // As Nomad: the engine's stop sends the image's stop signal (SIGTERM by default),
            // then SIGKILL after the timeout.
            task.killed.store(true, Ordering::SeqCst);
            let t = timeout.as_secs_f64().ceil() as i64;
            match engine
                .stream
                .stop_container(&task.state.container_id, Some(StopContainerOptions { t }))
                .await
            {
                Ok(()) => {}
                Err(e) if is_not_found(&e) || is_not_modified(&e) => {}
                Err(e) => {
                    return Err(DriverError::Signal(format!(
                        "cannot stop container {}: {}",
                        task.state.container_id,
                        describe(&e)
                    )))
                }
            }
        } else {
            let name = caravan_driver::signal_name(parse_signal(signal)?).unwrap_or(signal);
            self.kill(&task, name).await?;
            if task.wait_exit(timeout).await {
                return Ok(());
            }
            tracing::info!(
                task = task_id,
                "container still running after {timeout:?}; sending SIGKILL"
            );
            self.kill(&task, "SIGKILL").await?;
        }
        if task.wait_exit(KILL_GRACE).await {
            Ok(())
        } else {
            Err(DriverError::Signal(format!(
                "container {} of task {task_id:?} still runs after SIGKILL",
                task.state.container_id
            )))
        }
    }

    async fn destroy(&self, task_id: &str, force: bool) -> Result<(), DriverError> {
        let task = self.get(task_id)?;
        if task.exited().is_none() {
            if !force {
                return Err(DriverError::TaskRunning(task_id.to_string()));
            }
            self.stop(task_id, Duration::ZERO, "SIGKILL").await?;
        }
        let pump = task.logs.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut pump) = pump {
            if tokio::time::timeout(LOG_DRAIN, &mut pump).await.is_err() {
                pump.abort();
            }
        }
        task.waiter.abort();
        if self.plugin.gc().container {
            let engine = self.engine()?;
            remove_container(&engine, &task.state.container_id).await?;
        }
        if let Some(t) = self.tasks().remove(task_id) {
            self.image_gc.release(&t.state.image);
        }
        Ok(())
    }

    async fn inspect(&self, task_id: &str) -> Result<TaskStatus, DriverError> {
        let task = self.get(task_id)?;
        let exited = task.exited();
        Ok(TaskStatus {
            id: task.handle.task_id.clone(),
            name: task.handle.config.name.clone(),
            state: if exited.is_some() {
                TaskState::Exited
            } else {
                TaskState::Running
            },
            started_at: task.handle.started_at,
            // The handle's start time is taken after the engine answers; a short container may
            // have finished (by the engine's clock) before it.
            completed_at: exited
                .as_ref()
                .map(|e| e.completed_at.max(task.handle.started_at)),
            exit_result: exited.map(|e| e.result),
        })
    }

    async fn signal(&self, task_id: &str, signal: &str) -> Result<(), DriverError> {
        let sig = parse_signal(signal)?;
        let task = self.get(task_id)?;
        if task.exited().is_some() {
            return Err(DriverError::Signal(format!("task {task_id:?} has exited")));
        }
        let name = caravan_driver::signal_name(sig).unwrap_or(signal);
        self.kill(&task, name).await
    }

    async fn exec(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResult, DriverError> {
        let task = self.get(task_id)?;
        if cmd.is_empty() {
            return Err(DriverError::InvalidConfig("exec needs a command".into()));
        }
        if task.exited().is_some() {
            return Err(DriverError::Exec(format!("task {task_id:?} has exited")));
        }
        let engine = self.engine()?;
        let program = cmd[0].clone();
        let created = engine
            .api
            .create_exec(
                &task.state.container_id,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(cmd),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| DriverError::Exec(format!("cannot create exec: {}", describe(&e))))?;
        let run = async {
            let mut out = ExecResult::default();
            match engine.stream.start_exec(&created.id, None).await {
                Ok(StartExecResults::Attached { mut output, .. }) => {
                    while let Some(item) = output.next().await {
                        match item {
                            Ok(bollard::container::LogOutput::StdErr { message }) => {
                                out.stderr.extend_from_slice(&message)
                            }
                            Ok(bollard::container::LogOutput::StdOut { message })
                            | Ok(bollard::container::LogOutput::Console { message }) => {
                                out.stdout.extend_from_slice(&message)
                            }
                            Ok(_) => {}
                            Err(e) => {
                                return Err(DriverError::Exec(format!(
                                    "reading the output of {program:?}: {}",
                                    describe(&e)
                                )))
                            }
                        }
                    }
                }
                Ok(StartExecResults::Detached) => {}
                Err(e) => {
                    return Err(DriverError::Exec(format!(
                        "cannot start {program:?}: {}",
                        describe(&e)
                    )))
                }
            }
            Ok(out)
        };
        let mut out = if timeout.is_zero() {
            run.await?
        } else {
            tokio::time::timeout(timeout, run).await.map_err(|_| {
                DriverError::Exec(format!("command {program:?} timed out after {timeout:?}"))
            })??
        };
        let inspected = engine
            .api
            .inspect_exec(&created.id)
            .await
            .map_err(|e| DriverError::Exec(format!("cannot inspect exec: {}", describe(&e))))?;
        out.exit_code = inspected.exit_code.unwrap_or(-1) as i32;
        Ok(out)
    }

    fn exec_isolated(&self) -> bool {
        true
    }

    async fn exec_streaming(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        tty: bool,
        io: caravan_driver::ExecStreamIo,
    ) -> Result<i32, DriverError> {
        let task = self.get(task_id)?;
        if cmd.is_empty() {
            return Err(DriverError::InvalidConfig("exec needs a command".into()));
        }
        if task.exited().is_some() {
            return Err(DriverError::Exec(format!("task {task_id:?} has exited")));
        }
        let engine = self.engine()?;
        crate::exec_stream::run(&engine, &task.state.container_id, cmd, tty, io).await
    }

    async fn stats(&self, task_id: &str) -> Result<TaskResourceUsage, DriverError> {
        let task = self.get(task_id)?;
        let now = procfs::now_nanos();
        if task.exited().is_some() {
            return Ok(TaskResourceUsage {
                timestamp: now,
                ..Default::default()
            });
        }
        let engine = self.engine()?;
        let mut stream = engine.api.stats(
            &task.state.container_id,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        let s = match stream.next().await {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                return Err(DriverError::Other(format!(
                    "cannot read stats of container {}: {}",
                    task.state.container_id,
                    describe(&e)
                )))
            }
            None => {
                return Err(DriverError::Other(format!(
                    "the engine sent no stats for container {}",
                    task.state.container_id
                )))
            }
        };
        let per_core = self.node_cpu.total_mhz / self.node_cpu.cores.max(1) as f64;
        let mut prev = task.cpu.lock().unwrap_or_else(|e| e.into_inner());
        let (usage, sample) = stats::convert(&s, *prev, per_core, now);
        *prev = Some(sample);
        Ok(usage)
    }

    fn task_events(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<caravan_driver::TaskDriverEvent>> {
        Some(self.events.subscribe())
    }

    async fn recover(&self, handle: TaskHandle) -> Result<(), DriverError> {
        if handle.driver != self.flavor.name {
            return Err(DriverError::Recover(format!(
                "handle of task {:?} belongs to driver {:?}, not {}",
                handle.task_id, handle.driver, self.flavor.name
            )));
        }
        if handle.version == 0 || handle.version > HANDLE_VERSION {
            return Err(DriverError::Recover(format!(
                "task handle version {} is not supported (this agent reads up to {HANDLE_VERSION})",
                handle.version
            )));
        }
        if self.tasks().contains_key(&handle.task_id) {
            return Ok(());
        }
        let state: DriverState =
            serde_json::from_value(handle.driver_state.clone()).map_err(|e| {
                DriverError::Recover(format!("task handle has no container state: {e}"))
            })?;
        if state.container_id.is_empty() {
            return Err(DriverError::Recover(
                "task handle names no container".into(),
            ));
        }
        let engine = self.engine()?;
        let c = engine
            .api
            .inspect_container(&state.container_id, None)
            .await
            .map_err(|e| {
                DriverError::Recover(format!(
                    "container {} of task {:?}: {}",
                    state.container_id,
                    handle.task_id,
                    describe(&e)
                ))
            })?;
        let owner = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(LABEL_CARAVAN_TASK_ID).cloned());
        if owner.as_deref() != Some(handle.task_id.as_str()) {
            return Err(DriverError::Recover(format!(
                "container {} is not labelled as task {:?}'s",
                state.container_id, handle.task_id
            )));
        }
        let running = c.state.and_then(|s| s.running).unwrap_or(false);
        // The previous agent wrote the output up to its last log write; the rest (what the
        // container wrote while no agent ran, also when it has stopped since) comes from the
        // engine.
        let from = Some(logs::Origin::resume(
            &handle.config.stdout_path,
            &handle.config.stderr_path,
        ));
        tracing::info!(task = %handle.task_id, container = %state.container_id, running, "recovered container task");
        self.image_gc.acquire(&state.image).keep();
        self.track(&engine, handle, state, from);
        Ok(())
    }
}
