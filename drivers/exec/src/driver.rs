//! [`ExecDriver`]: the [`Driver`] implementation that runs tasks isolated in namespaces, a
//! chroot and a cgroup.

use crate::caps::{self, CapSet};
use crate::cgroup::{CgroupLayout, CgroupLimits, TaskCgroup};
use crate::child::{self, ChildError, ChildSpec, Privileges};
use crate::chroot::{self, TaskDirs};
use crate::config::{ExecDriverConfig, ExecTaskConfig, IsolationMode};
use crate::enter::Enter;
use caravan_driver::process::{open_output, resolve_user, wait_for_exit};
use caravan_driver::procfs::{self, CpuSampler};
use caravan_driver::{
    async_trait, parse_signal, Driver, DriverError, ExecResult, ExitResult, Fingerprint,
    TaskConfig, TaskHandle, TaskResourceUsage, TaskState, TaskStatus, HANDLE_VERSION,
};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The driver's name in job files.
pub const DRIVER_NAME: &str = "exec";

/// How long `stop` waits for the task's processes to vanish after SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(10);

/// How often `stop` checks whether the task's processes are gone.
const STOP_POLL: Duration = Duration::from_millis(25);

/// How long `destroy` retries removing the task cgroup while the kernel lets go of it.
const CGROUP_REMOVE_WITHIN: Duration = Duration::from_secs(5);

/// What the driver keeps in [`TaskHandle::driver_state`] to find a task again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecState {
    /// The task's cgroup, if cgroups are in use.
    pub cgroup: Option<TaskCgroup>,
    /// Mount points created in the task dir, removed again (when empty) on destroy.
    pub mountpoints: Vec<PathBuf>,
}

/// The end of a task, once known.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exited {
    result: ExitResult,
    completed_at: i64,
}

/// Cumulative cgroup CPU nanoseconds (total, user, system) at one instant.
type CpuMark = (Instant, u64, u64, u64);

/// One task known to the driver.
struct Task {
    handle: TaskHandle,
    state: ExecState,
    exit: watch::Receiver<Option<Exited>>,
    sampler: Mutex<CpuSampler>,
    cpu_mark: Mutex<Option<CpuMark>>,
}

impl Task {
    fn exited(&self) -> Option<Exited> {
        self.exit.borrow().clone()
    }

    /// The task's process group on the host (its main process leads a session).
    fn pgid(&self) -> i32 {
        self.handle.pid
    }

    /// True while the main process runs or any process of its group or cgroup is left.
    fn anything_alive(&self) -> bool {
        self.exited().is_none()
            || procfs::group_alive(self.pgid())
            || self
                .state
                .cgroup
                .as_ref()
                .is_some_and(|c| c.pids().iter().any(|p| procfs::is_alive(*p, 0)))
    }

    fn kill_everything(&self) {
        let _ = signal_group(self.pgid(), libc::SIGKILL);
        if let Some(cg) = &self.state.cgroup {
            cg.kill_all();
        }
    }
}

/// Who a task runs as and how, derived from its config (the same at start and exec).
struct Resolved {
    tc: ExecTaskConfig,
    privileges: Privileges,
    pid_mode: IsolationMode,
    ipc_mode: IsolationMode,
}

/// The parts of the driver the blocking start-up code needs.
struct Inner {
    config: ExecDriverConfig,
    layout: Option<CgroupLayout>,
    /// `user.denylist` as in force now (a config reload may change it).
    denylist: std::sync::RwLock<Vec<String>>,
}

/// Runs tasks isolated in namespaces, a chroot and cgroups (Nomad's `exec`).
pub struct ExecDriver {
    inner: Arc<Inner>,
    tasks: Mutex<HashMap<String, Arc<Task>>>,
}

impl ExecDriver {
    /// An exec driver with the client's options. Detects the cgroup layout under
    /// `config.cgroup_root` once, here.
    pub fn new(config: ExecDriverConfig) -> Self {
        let layout = CgroupLayout::detect(&config.cgroup_root);
        ExecDriver {
            inner: Arc::new(Inner {
                denylist: std::sync::RwLock::new(config.user_denylist.clone()),
                config,
                layout,
            }),
            tasks: Mutex::new(HashMap::new()),
        }
    }

    /// The cgroup layout detected at construction (`None`: no cgroups found).
    pub fn cgroup_layout(&self) -> Option<&CgroupLayout> {
        self.inner.layout.as_ref()
    }

    /// The driver's options.
    pub fn config(&self) -> &ExecDriverConfig {
        &self.inner.config
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
    fn track(&self, handle: TaskHandle, state: ExecState) -> Result<(), DriverError> {
        let (tx, rx) = watch::channel(None);
        let (pid, ticks, cgroup) = (handle.pid, handle.process_start_ticks, state.cgroup.clone());
        let status = caravan_driver::shim::status_path(&handle.config);
        std::thread::Builder::new()
            .name(format!("exec-wait-{pid}"))
            .spawn(move || {
                let mut result = wait_for_exit(pid, ticks, status.as_deref());
                if cgroup.as_ref().is_some_and(|c| c.oom_killed()) {
                    result.oom_killed = true;
                }
                tracing::debug!(pid, ?result, "exec task process exited");
                tx.send_replace(Some(Exited {
                    result,
                    completed_at: procfs::now_nanos(),
                }));
            })
            .map_err(|e| {
                DriverError::Other(format!("cannot start a thread to watch the task: {e}"))
            })?;
        let task = Arc::new(Task {
            handle,
            state,
            exit: rx,
            sampler: Mutex::new(CpuSampler::new()),
            cpu_mark: Mutex::new(None),
        });
        self.tasks().insert(task.handle.task_id.clone(), task);
        Ok(())
    }

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

/// Why the exec driver cannot run tasks here, if it cannot.
fn unsupported_reason(layout: Option<&CgroupLayout>, root: &Path) -> Option<String> {
    if !cfg!(target_os = "linux") {
        return Some("exec driver requires Linux".into());
    }
    if !nix::unistd::geteuid().is_root() {
        return Some("exec driver requires root".into());
    }
    for ns in ["pid", "mnt", "ipc", "uts"] {
        if !Path::new("/proc/self/ns").join(ns).exists() {
            return Some(format!(
                "exec driver requires {ns} namespaces, which this kernel lacks"
            ));
        }
    }
    if layout.is_none() {
        return Some(format!(
            "exec driver requires cgroups: no cgroup v1 or v2 hierarchy found under {}",
            root.display()
        ));
    }
    None
}

impl Inner {
    fn resolve(&self, cfg: &TaskConfig) -> Result<Resolved, DriverError> {
        let tc = ExecTaskConfig::parse(&cfg.driver_config)?;
        let user = if cfg.user.is_empty() {
            "nobody"
        } else {
            cfg.user.as_str()
        };
        let denylist = self
            .denylist
            .read()
            .map(|d| d.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        let denied = |name: &str| denylist.iter().any(|d| d == name);
        if denied(user) {
            return Err(DriverError::InvalidConfig(format!(
                "running as user {user:?} is disallowed for the exec driver by the client's \
                 user.denylist; choose another user"
            )));
        }
        let id = resolve_user(user)?.ok_or_else(|| {
            DriverError::Start(format!(
                "cannot switch to user {user:?}: the agent is not root"
            ))
        })?;
        if id.uid == 0 && denied("root") {
            return Err(DriverError::InvalidConfig(format!(
                "user {user:?} has uid 0, and root is in the client's user.denylist for the \
                 exec driver"
            )));
        }
        let root_user = id.uid == 0;
        let caps = if root_user {
            CapSet::legacy_root()
        } else {
            let c = caps::calculate(&self.config.allow_caps, &tc.cap_add, &tc.cap_drop)
                .map_err(DriverError::InvalidConfig)?;
            CapSet(c.0 & CapSet::supported().0)
        };
        Ok(Resolved {
            pid_mode: tc.pid_mode.unwrap_or(self.config.default_pid_mode),
            ipc_mode: tc.ipc_mode.unwrap_or(self.config.default_ipc_mode),
            privileges: Privileges {
                uid: id.uid,
                gid: id.gid,
                groups: id.groups,
                caps,
                root_user,
                last_cap: caps::last_cap(),
            },
            tc,
        })
    }

    /// Starts a task: everything blocking (mount points, cgroup, clone, waiting for exec).
    fn start(&self, cfg: &TaskConfig) -> Result<(i32, ExecState), DriverError> {
        let r = self.resolve(cfg)?;
        if cfg.task_dir.as_os_str().is_empty() || !cfg.task_dir.is_dir() {
            return Err(DriverError::InvalidConfig(format!(
                "the exec driver needs an existing task dir, got {:?}",
                cfg.task_dir
            )));
        }
        let dirs = task_dirs(cfg);
        prepare_dirs(&dirs, r.privileges.uid, r.privileges.gid)?;
        let (map, is_default) = self.config.chroot_map();
        let plan = chroot::plan(&dirs, &map, is_default)?;
        let mut state = ExecState {
            cgroup: None,
            mountpoints: plan.mountpoints,
        };
        let cleanup = |state: &ExecState| {
            if let Some(cg) = &state.cgroup {
                let _ = cg.destroy(Duration::from_secs(1));
            }
            chroot::remove_mountpoints(&state.mountpoints);
        };
        let result = (|| {
            if let Some(layout) = &self.layout {
                let limits = CgroupLimits::from_resources(
                    cfg.resources.cpu_shares,
                    cfg.resources.memory_mb,
                    cfg.resources.memory_max_mb,
                    r.tc.pids_limit,
                    cfg.env.get("NOMAD_CPU_CORES").cloned(),
                );
                let cg = TaskCgroup::create(
                    layout,
                    &self.config.cgroup_parent,
                    &cgroup_name(cfg),
                    &limits,
                )
                .map_err(|e| DriverError::Start(e.to_string()))?;
                state.cgroup = Some(cg);
            }
            let cgroup_procs = match &state.cgroup {
                Some(cg) => cg
                    .open_procs()
                    .map_err(|e| DriverError::Start(e.to_string()))?,
                None => Vec::new(),
            };
            let env = chroot::rewrite_env(&cfg.env, &dirs);
            let spec = ChildSpec {
                new_pid_ns: r.pid_mode == IsolationMode::Private,
                new_ipc_ns: r.ipc_mode == IsolationMode::Private,
                hostname: hostname(cfg),
                root: path_cstring(&cfg.task_dir)?,
                mounts: plan.mounts,
                symlinks: plan.symlinks,
                pivot_root: !self.config.no_pivot_root,
                work_dir: cstring(r.tc.work_dir.as_deref().unwrap_or("/"), "work_dir")?,
                privileges: r.privileges.clone(),
                programs: chroot::program_candidates(
                    &r.tc.command,
                    env.get("PATH").map(String::as_str),
                )
                .iter()
                .map(|p| cstring(p, "command"))
                .collect::<Result<_, _>>()?,
                argv: std::iter::once(&r.tc.command)
                    .chain(&r.tc.args)
                    .map(|a| cstring(a, "args"))
                    .collect::<Result<_, _>>()?,
                envp: env
                    .iter()
                    .map(|(k, v)| cstring(&format!("{k}={v}"), "env"))
                    .collect::<Result<_, _>>()?,
                stdin: std::fs::File::open("/dev/null")
                    .map_err(|e| DriverError::Start(format!("cannot open /dev/null: {e}")))?,
                stdout: open_output(&cfg.stdout_path)?,
                stderr: open_output(&cfg.stderr_path)?,
                cgroup_procs,
                shim: child::shim_for(cfg).map_err(|e| {
                    DriverError::Start(format!("cannot prepare the task shim: {e}"))
                })?,
            };
            child::spawn(&spec).map_err(|e| {
                match e.get_ref().and_then(|x| x.downcast_ref::<ChildError>()) {
                    Some(ce) if ce.exec_failed => DriverError::Start(format!(
                        "failed to start command {:?} inside the task's chroot: {}",
                        r.tc.command,
                        std::io::Error::from_raw_os_error(ce.errno)
                    )),
                    Some(ce) => DriverError::Start(format!("exec task setup failed: {ce}")),
                    None => DriverError::Start(format!("cannot start the task process: {e}")),
                }
            })
        })();
        match result {
            Ok(pid) => Ok((pid, state)),
            Err(e) => {
                cleanup(&state);
                Err(e)
            }
        }
    }
}

fn task_dirs(cfg: &TaskConfig) -> TaskDirs<'_> {
    TaskDirs {
        task_dir: &cfg.task_dir,
        alloc_dir: &cfg.alloc_dir,
        local_dir: &cfg.local_dir,
        secrets_dir: &cfg.secrets_dir,
        volumes: &cfg.mounts,
    }
}

/// Makes the task's own dirs (`local`, `secrets`, `tmp`) belong to its user and the shared
/// alloc dir writable by every task of the alloc (Nomad gives both to `nobody`, mode 0777).
fn prepare_dirs(dirs: &TaskDirs<'_>, uid: u32, gid: u32) -> Result<(), DriverError> {
    let tmp = dirs.task_dir.join("tmp");
    for d in [dirs.local_dir, dirs.secrets_dir, tmp.as_path()] {
        if d.as_os_str().is_empty() {
            continue;
        }
        std::fs::create_dir_all(d)
            .and_then(|_| std::os::unix::fs::chown(d, Some(uid), Some(gid)))
            .map_err(|e| DriverError::Start(format!("cannot prepare task dir {d:?}: {e}")))?;
    }
    if !dirs.alloc_dir.as_os_str().is_empty() && dirs.alloc_dir.is_dir() {
        for d in [
            dirs.alloc_dir.to_path_buf(),
            dirs.alloc_dir.join("data"),
            dirs.alloc_dir.join("tmp"),
        ] {
            if d.is_dir() {
                std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).map_err(
                    |e| DriverError::Start(format!("cannot open alloc dir {d:?} to the task: {e}")),
                )?;
            }
        }
    }
    Ok(())
}

/// The task cgroup's name: `<alloc id>.<task>` with unusual characters replaced.
fn cgroup_name(cfg: &TaskConfig) -> String {
    let raw = if cfg.alloc_id.is_empty() {
        cfg.id.clone()
    } else {
        format!("{}.{}", cfg.alloc_id, cfg.name)
    };
    raw.chars()
        .enumerate()
        .map(|(i, c)| {
            // No leading dot: "." or ".." would name a cgroup outside the parent.
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') || (c == '.' && i > 0) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The task's hostname: its alloc id (at most 63 bytes), else the task name.
fn hostname(cfg: &TaskConfig) -> Vec<u8> {
    let h = if cfg.alloc_id.is_empty() {
        &cfg.name
    } else {
        &cfg.alloc_id
    };
    h.bytes().filter(|b| *b != 0).take(63).collect()
}

fn cstring(s: &str, what: &str) -> Result<CString, DriverError> {
    CString::new(s)
        .map_err(|_| DriverError::InvalidConfig(format!("{what} contains a NUL byte: {s:?}")))
}

fn path_cstring(p: &Path) -> Result<CString, DriverError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| DriverError::InvalidConfig(format!("path {p:?} contains a NUL byte")))
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

fn parse_state(handle: &TaskHandle) -> Result<ExecState, DriverError> {
    if handle.driver_state.is_null() {
        return Ok(ExecState::default());
    }
    serde_json::from_value(handle.driver_state.clone()).map_err(|e| {
        DriverError::Recover(format!(
            "unreadable exec driver state of task {:?}: {e}",
            handle.task_id
        ))
    })
}

impl ExecDriver {
    /// The command `cmd` as run in a task (`exec`, `alloc exec`): it enters the task's
    /// cgroup, namespaces and chroot as the task's user ([`Enter`]), with the task's
    /// environment. Returns it with the program's name for messages.
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
        let r = self.inner.resolve(cfg)?;
        let procs = match &task.state.cgroup {
            Some(cg) => cg
                .open_procs()
                .map_err(|e| DriverError::Exec(e.to_string()))?,
            None => Vec::new(),
        };
        let enter = Enter::open(
            task.handle.pid,
            r.tc.work_dir.as_deref().unwrap_or("/"),
            procs,
            r.privileges,
        )
        .map_err(|e| DriverError::Exec(format!("cannot enter the task's namespaces: {e}")))?;
        let env = chroot::rewrite_env(&cfg.env, &task_dirs(cfg));
        let mut command = std::process::Command::new(program);
        command.args(args).env_clear().envs(&env);
        enter.install(&mut command);
        Ok((command, program.clone()))
    }
}

#[async_trait]
impl Driver for ExecDriver {
    fn name(&self) -> &str {
        DRIVER_NAME
    }

    fn supports_mounts(&self) -> bool {
        true
    }

    /// `user.denylist` and `user.checked_drivers` apply to tasks started from now on.
    fn reload_options(&self, options: &std::collections::BTreeMap<String, String>) -> bool {
        let mut cfg = self.inner.config.clone();
        cfg.user_denylist = ExecDriverConfig::default().user_denylist;
        cfg.apply_user_options(
            options.get("user.denylist").map(String::as_str),
            options.get("user.checked_drivers").map(String::as_str),
        );
        let mut cur = self
            .inner
            .denylist
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if *cur == cfg.user_denylist {
            return false;
        }
        *cur = cfg.user_denylist;
        true
    }

    async fn fingerprint(&self) -> Fingerprint {
        let mut fp = Fingerprint::default();
        if let Some(layout) = &self.inner.layout {
            fp.attributes.insert(
                "os.cgroups.version".to_string(),
                layout.version.attribute().to_string(),
            );
        }
        match unsupported_reason(self.inner.layout.as_ref(), &self.inner.config.cgroup_root) {
            None => {
                fp.attributes
                    .insert(format!("driver.{DRIVER_NAME}"), "1".to_string());
                fp.detected = true;
                fp.healthy = true;
                fp.health_description = "Healthy".to_string();
            }
            Some(reason) => {
                // Without cgroups the driver is present but broken; otherwise absent.
                fp.detected = self.inner.layout.is_none() && nix::unistd::geteuid().is_root();
                fp.health_description = reason;
            }
        }
        fp
    }

    async fn start(&self, cfg: TaskConfig) -> Result<TaskHandle, DriverError> {
        if let Some(reason) =
            unsupported_reason(self.inner.layout.as_ref(), &self.inner.config.cgroup_root)
        {
            return Err(DriverError::Start(reason));
        }
        if cfg.id.is_empty() {
            return Err(DriverError::InvalidConfig("task id is empty".into()));
        }
        if let Some(t) = self.tasks().get(&cfg.id) {
            if t.exited().is_none() {
                return Err(DriverError::TaskAlreadyExists(cfg.id.clone()));
            }
        }
        let inner = self.inner.clone();
        let (cfg, started) = tokio::task::spawn_blocking(move || {
            let r = inner.start(&cfg);
            (cfg, r)
        })
        .await
        .map_err(|e| DriverError::Other(format!("task start-up panicked: {e}")))?;
        let (pid, state) = started?;
        // The process cannot be reaped before the monitor starts, so /proc still has it.
        let start_ticks = procfs::process_start_ticks(pid).unwrap_or(0);
        let handle = TaskHandle {
            version: HANDLE_VERSION,
            driver: DRIVER_NAME.to_string(),
            task_id: cfg.id.clone(),
            pid,
            process_start_ticks: start_ticks,
            started_at: procfs::now_nanos(),
            driver_state: serde_json::to_value(&state).unwrap_or(serde_json::Value::Null),
            config: cfg,
        };
        if let Err(e) = self.track(handle.clone(), state.clone()) {
            let _ = signal_group(pid, libc::SIGKILL);
            if let Some(cg) = &state.cgroup {
                cg.kill_all();
            }
            return Err(e);
        }
        tracing::info!(task = %handle.task_id, pid, "exec task started");
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
        tracing::debug!(task = task_id, pgid, sig, "stopping exec task");
        signal_group(pgid, sig)?;
        if sig == libc::SIGKILL {
            task.kill_everything();
        }
        if Self::wait_gone(&task, timeout).await {
            return Ok(());
        }
        tracing::info!(
            task = task_id,
            pgid,
            "task still running after {timeout:?}; sending SIGKILL to its processes"
        );
        task.kill_everything();
        if Self::wait_gone(&task, KILL_GRACE).await {
            Ok(())
        } else {
            Err(DriverError::Signal(format!(
                "processes of task {task_id:?} remain after SIGKILL to its process group and cgroup"
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
        let state = task.state.clone();
        let removed = tokio::task::spawn_blocking(move || {
            let r = match &state.cgroup {
                Some(cg) => cg.destroy(CGROUP_REMOVE_WITHIN),
                None => Ok(()),
            };
            chroot::remove_mountpoints(&state.mountpoints);
            r
        })
        .await
        .map_err(|e| DriverError::Other(format!("task clean-up panicked: {e}")))?;
        self.tasks().remove(task_id);
        removed.map_err(|e| DriverError::Other(e.to_string()))
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
        let child = command.spawn().map_err(|e| {
            DriverError::Exec(format!(
                "failed to start command {program:?} in the task: {e}"
            ))
        })?;
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
        let (command, program) = self.command_in_task(task_id, &cmd)?;
        caravan_driver::exec_stream::run_process(command, tty, io, &program).await
    }

    async fn stats(&self, task_id: &str) -> Result<TaskResourceUsage, DriverError> {
        let task = self.get(task_id)?;
        let alive = task.anything_alive();
        let procs = match (&task.state.cgroup, alive) {
            (_, false) => Vec::new(),
            (Some(cg), true) => cg
                .pids()
                .into_iter()
                .filter_map(procfs::read_stat)
                .collect(),
            (None, true) => procfs::task_processes(task.handle.pid, task.pgid()),
        };
        let mut usage = task
            .sampler
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sample(&procs);
        if let Some(cg) = &task.state.cgroup {
            let u = cg.usage();
            let total = &mut usage.resource_usage;
            if let Some(m) = u.memory {
                total.memory_stats.rss = m.rss;
                total.memory_stats.cache = m.cache;
                total.memory_stats.swap = m.swap;
                total.memory_stats.mapped_file = m.mapped_file;
                total.memory_stats.usage = m.usage;
                total.memory_stats.max_usage = m.max_usage;
                total.memory_stats.measured = ["RSS", "Cache", "Swap", "Usage", "Max Usage"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
            }
            total.cpu_stats.throttled_periods = u.throttled_periods;
            total.cpu_stats.throttled_time = u.throttled_time_ns;
            if let Some(cpu) = u.cpu_total_ns {
                let now = Instant::now();
                let (user, system) = (u.cpu_user_ns.unwrap_or(0), u.cpu_system_ns.unwrap_or(0));
                let mut mark = task.cpu_mark.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((t, c0, u0, s0)) = *mark {
                    let elapsed = now.duration_since(t).as_nanos() as f64;
                    if elapsed > 0.0 {
                        let pct = |d: u64| d as f64 / elapsed * 100.0;
                        let percent = pct(cpu.saturating_sub(c0));
                        total.cpu_stats.percent = percent;
                        total.cpu_stats.user_mode = pct(user.saturating_sub(u0));
                        total.cpu_stats.system_mode = pct(system.saturating_sub(s0));
                        total.cpu_stats.total_ticks = percent / 100.0 * procfs::core_mhz();
                    }
                }
                *mark = Some((now, cpu, user, system));
                total.cpu_stats.measured = [
                    "System Mode",
                    "User Mode",
                    "Percent",
                    "Throttled Periods",
                    "Throttled Time",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect();
            }
        }
        Ok(usage)
    }

    async fn recover(&self, handle: TaskHandle) -> Result<(), DriverError> {
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
        let mut state = parse_state(&handle)?;
        if handle.pid <= 1 || !procfs::is_alive(handle.pid, handle.process_start_ticks) {
            return Err(DriverError::Recover(format!(
                "process {} of task {:?} is no longer running",
                handle.pid, handle.task_id
            )));
        }
        if let Some(cg) = &state.cgroup {
            let found = TaskCgroup::find(cg);
            if found.is_none() {
                tracing::warn!(task = %handle.task_id, "the task's cgroup is gone; recovering without it");
            }
            state.cgroup = found;
        }
        tracing::info!(task = %handle.task_id, pid = handle.pid, "recovered exec task");
        self.track(handle, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_and_bounded() {
        let cfg = TaskConfig {
            id: "a/b".into(),
            alloc_id: "1234-abcd".into(),
            name: "web server".into(),
            ..Default::default()
        };
        assert_eq!(cgroup_name(&cfg), "1234-abcd.web_server");
        assert_eq!(hostname(&cfg), b"1234-abcd".to_vec());
        let cfg = TaskConfig {
            id: "x/y".into(),
            name: "n".repeat(100),
            ..Default::default()
        };
        assert_eq!(cgroup_name(&cfg), "x_y");
        assert_eq!(hostname(&cfg).len(), 63);
        let cfg = TaskConfig {
            id: "..".into(),
            ..Default::default()
        };
        assert_eq!(cgroup_name(&cfg), "_.");
    }

    #[test]
    fn state_roundtrips_and_null_is_empty() {
        let h = TaskHandle::default();
        assert_eq!(parse_state(&h).unwrap(), ExecState::default());
        let st = ExecState {
            cgroup: None,
            mountpoints: vec!["/a/b".into()],
        };
        let h = TaskHandle {
            driver_state: serde_json::to_value(&st).unwrap(),
            ..Default::default()
        };
        assert_eq!(parse_state(&h).unwrap(), st);
    }
}
