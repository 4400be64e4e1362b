//! [`RawExecDriver`]: the [`Driver`] implementation that runs tasks as plain host processes.

use crate::config::RawExecConfig;
use crate::monitor::{self, Exited};
use crate::spawn;
use caravan_driver::procfs::{self, CpuSampler};
use caravan_driver::{
    async_trait, parse_signal, Driver, DriverError, ExecResult, ExitResult, Fingerprint,
    TaskConfig, TaskHandle, TaskResourceUsage, TaskState, TaskStatus, HANDLE_VERSION,
};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The driver's name in job files.
pub const DRIVER_NAME: &str = "raw_exec";

/// How long `stop` waits for the process group to vanish after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How often `stop` checks whether the task's processes are gone.
const STOP_POLL: Duration = Duration::from_millis(25);

/// One task known to the driver.
struct Task {
    handle: TaskHandle,
    exit: watch::Receiver<Option<Exited>>,
    sampler: Mutex<CpuSampler>,
}

impl Task {
    fn exited(&self) -> Option<Exited> {
        self.exit.borrow().clone()
    }

    /// The task's process group (its main process leads a session of its own).
    fn pgid(&self) -> i32 {
        self.handle.pid
    }

    /// True while the main process runs or any process of its group is left.
    fn anything_alive(&self) -> bool {
        self.exited().is_none() || procfs::group_alive(self.pgid())
    }
}

/// Runs tasks directly on the host (Nomad's `raw_exec`).
pub struct RawExecDriver {
    enabled: std::sync::atomic::AtomicBool,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
}

impl RawExecDriver {
    /// A raw_exec driver; when not `enabled` it fingerprints as undetected and refuses tasks.
    pub fn new(enabled: bool) -> Self {
        RawExecDriver {
            enabled: std::sync::atomic::AtomicBool::new(enabled),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the operator enabled the driver.
    pub fn enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Relaxed)
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

    /// Registers a task and starts watching its main process.
    fn track(&self, handle: TaskHandle) -> Result<(), DriverError> {
        let (tx, rx) = watch::channel(None);
        let status = caravan_driver::shim::status_path(&handle.config);
        monitor::start(handle.pid, handle.process_start_ticks, status, tx).map_err(|e| {
            DriverError::Other(format!("cannot start a thread to watch the task: {e}"))
        })?;
        let task = Arc::new(Task {
            handle,
            exit: rx,
            sampler: Mutex::new(CpuSampler::new()),
        });
        self.tasks().insert(task.handle.task_id.clone(), task);
        Ok(())
    }

    /// Waits until the main process has been seen to exit and no process of the group is
    /// left, or until `within` passes. True when everything is gone.
    async fn wait_gone(task: &Task, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if !task.anything_alive() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(STOP_POLL.min(deadline - now)).await;
        }
    }
}

fn to_signal(sig: i32) -> Result<Signal, DriverError> {
    Signal::try_from(sig).map_err(|_| DriverError::UnknownSignal(sig.to_string()))
}

/// Signals a whole process group; a group that is already gone is not an error.
fn signal_group(pgid: i32, sig: i32) -> Result<(), DriverError> {
    if pgid <= 1 {
        return Err(DriverError::Signal(format!(
            "refusing to signal process group {pgid}"
        )));
    }
    match killpg(Pid::from_raw(pgid), to_signal(sig)?) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
        Err(e) => Err(DriverError::Signal(format!(
            "cannot signal process group {pgid}: {e}"
        ))),
    }
}

impl RawExecDriver {
    /// The command `cmd` as run in a task (`exec`, `alloc exec`): the task's environment,
    /// user and working directory. Returns it with the program's name for messages.
    fn command_in_task(
        &self,
        task_id: &str,
        cmd: &[String],
    ) -> Result<(std::process::Command, String), DriverError> {
        let task = self.get(task_id)?;
        let Some((program, args)) = cmd.split_first() else {
            return Err(DriverError::InvalidConfig("exec needs a command".into()));
        };
        if task.exited().is_some() {
            return Err(DriverError::Exec(format!("task {task_id:?} has exited")));
        }
        let cfg = &task.handle.config;
        let identity = spawn::resolve_user(&cfg.user)?;
        let work_dir = RawExecConfig::parse(&cfg.driver_config)
            .ok()
            .and_then(|c| c.work_dir);
        let mut command = std::process::Command::new(spawn::resolve_program(program, cfg));
        command.args(args).env_clear().envs(&cfg.env);
        match work_dir {
            Some(d) => {
                command.current_dir(d);
            }
            None if !cfg.task_dir.as_os_str().is_empty() => {
                command.current_dir(&cfg.task_dir);
            }
            None => {}
        }
        spawn::child_setup(&mut command, identity, false);
        Ok((command, program.clone()))
    }
}

#[async_trait]
impl Driver for RawExecDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    /// `driver.raw_exec.enable`: turning the driver off refuses new tasks; running ones keep
    /// going until they stop.
    fn reload_options(&self, options: &std::collections::BTreeMap<String, String>) -> bool {
        let Some(v) = options.get("driver.raw_exec.enable") else {
            return false;
        };
        let on = matches!(v.as_str(), "true" | "1");
        self.enabled.swap(on, std::sync::atomic::Ordering::Relaxed) != on
    }

    async fn fingerprint(&self) -> Fingerprint {
        let mut fp = Fingerprint::default();
        if self.enabled() {
            fp.attributes
                .insert(format!("driver.{DRIVER_NAME}"), "1".to_string());
            fp.detected = true;
            fp.healthy = true;
            fp.health_description = "Healthy".to_string();
        } else {
            fp.health_description = "disabled".to_string();
        }
        fp
    }

    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError> {
        if !self.enabled() {
            return Err(DriverError::Disabled(DRIVER_NAME.to_string()));
        }
        if cfg.id.is_empty() {
            return Err(DriverError::InvalidConfig("task id is empty".into()));
        }
        let rc = RawExecConfig::parse(&cfg.driver_config)?;
        if let Some(t) = self.tasks().get(&cfg.id) {
            if t.exited().is_none() {
                return Err(DriverError::TaskAlreadyExists(cfg.id.clone()));
            }
        }
        let spawned = spawn::spawn(&cfg, &rc)?;
        // The process cannot be reaped before the monitor starts, so /proc still has it.
        let start_ticks = procfs::process_start_ticks(spawned.pid).unwrap_or(0);
        let handle = TaskHandle {
            version: HANDLE_VERSION,
            driver: DRIVER_NAME.to_string(),
            task_id: cfg.id.clone(),
            pid: spawned.pid,
            process_start_ticks: start_ticks,
            started_at: procfs::now_nanos(),
            driver_state: serde_json::Value::Null,
            config: cfg,
        };
        if let Err(e) = self.track(handle.clone()) {
            let _ = signal_group(spawned.pid, libc::SIGKILL);
            return Err(e);
        }
        tracing::info!(task = %handle.task_id, pid = spawned.pid, command = %rc.command, "raw_exec task started");
        Ok(handle)
    }

    async fn wait(&self, task_id: &str) -> Result<ExitResult, DriverError> {
        let mut rx = self.get(task_id)?.exit.clone();
        let result = match rx.wait_for(|e| e.is_some()).await {
            Ok(e) => e.as_ref().map(|e| e.result.clone()).unwrap_or_default(),
            Err(_) => ExitResult {
                err: Some("lost track of the task process".into()),
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
        let sig = if signal.trim().is_empty() {
            libc::SIGINT
        } else {
            parse_signal(signal)?
        };
        if !task.anything_alive() {
            return Ok(());
        }
        let pgid = task.pgid();
        tracing::debug!(task = task_id, pgid, sig, "stopping raw_exec task");
        signal_group(pgid, sig)?;
        if Self::wait_gone(&task, timeout).await {
            return Ok(());
        }
        tracing::info!(
            task = task_id,
            pgid,
            "task still running after {timeout:?}; sending SIGKILL"
        );
        signal_group(pgid, libc::SIGKILL)?;
        if Self::wait_gone(&task, KILL_GRACE).await {
            Ok(())
        } else {
            Err(DriverError::Signal(format!(
                "processes of task {task_id:?} remain after SIGKILL to process group {pgid}"
            )))
        }
    }

    async fn destroy(&self, task_id: &str, force: bool) -> Result<(), DriverError> {
        let task = self.get(task_id)?;
        if task.anything_alive() {
            if !force {
                return Err(DriverError::TaskRunning(task_id.to_string()));
            }
            self.stop(task_id, Duration::ZERO, "SIGKILL").await?;
        }
        self.tasks().remove(task_id);
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
            completed_at: exited.as_ref().map(|e| e.completed_at),
            exit_result: exited.map(|e| e.result),
        })
    }

    async fn signal(&self, task_id: &str, signal: &str) -> Result<(), DriverError> {
        let sig = to_signal(parse_signal(signal)?)?;
        let task = self.get(task_id)?;
        if task.exited().is_some() {
            return Err(DriverError::Signal(format!("task {task_id:?} has exited")));
        }
        let pid = caravan_driver::shim::signal_target(task.handle.pid, &task.handle.config);
        kill(Pid::from_raw(pid), sig)
            .map_err(|e| DriverError::Signal(format!("cannot signal pid {pid}: {e}")))
    }

    async fn exec(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecResult, DriverError> {
        let (mut command, program) = self.command_in_task(task_id, &cmd)?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut command = tokio::process::Command::from(command);
        command.kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| DriverError::Exec(format!("failed to start command {program:?}: {e}")))?;
        let output = child.wait_with_output();
        let output = if timeout.is_zero() {
            output.await
        } else {
            tokio::time::timeout(timeout, output).await.map_err(|_| {
                DriverError::Exec(format!("command {program:?} timed out after {timeout:?}"))
            })?
        }
        .map_err(|e| DriverError::Exec(format!("waiting for {program:?}: {e}")))?;
        use std::os::unix::process::ExitStatusExt;
        let exit_code = output
            .status
            .code()
            .or_else(|| output.status.signal().map(|s| 128 + s))
            .unwrap_or(-1);
        Ok(ExecResult {
            stdout: output.stdout,
            stderr: output.stderr,
            exit_code,
        })
    }

    async fn exec_streaming(
        &self,
        task_id: &str,
        cmd: Vec<String>,
        tty: bool,
        io: caravan_driver::ExecStreamIo,
    ) -> Result<i32, DriverError> {
        let (command, program) = self.command_in_task(task_id, &cmd)?;
        caravan_driver::exec_stream::run_process(command, tty, io, &program).await
    }

    async fn stats(&self, task_id: &str) -> Result<TaskResourceUsage, DriverError> {
        let task = self.get(task_id)?;
        let procs = if task.anything_alive() {
            procfs::task_processes(task.handle.pid, task.pgid())
        } else {
            Vec::new()
        };
        let mut sampler = task.sampler.lock().unwrap_or_else(|e| e.into_inner());
        Ok(sampler.sample(&procs))
    }

    async fn recover(&self, handle: TaskHandle) -> Result<(), DriverError> {
        if !self.enabled() {
            return Err(DriverError::Disabled(DRIVER_NAME.to_string()));
        }
        if handle.driver != DRIVER_NAME {
            return Err(DriverError::Recover(format!(
                "handle of task {:?} belongs to driver {:?}, not {DRIVER_NAME}",
                handle.task_id, handle.driver
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
        if handle.pid <= 1 || !procfs::is_alive(handle.pid, handle.process_start_ticks) {
            return Err(DriverError::Recover(format!(
                "process {} of task {:?} is no longer running",
                handle.pid, handle.task_id
            )));
        }
        tracing::info!(task = %handle.task_id, pid = handle.pid, "recovered raw_exec task");
        self.track(handle)
    }
}
