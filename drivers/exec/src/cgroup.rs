//! Per-task cgroups on cgroup v1 (one directory per controller) and v2 (one directory in
//! the unified tree): detection, creation with the task's limits, membership, killing every
//! member, accounting for stats, OOM-kill detection and removal.
//!
//! Everything works on a root path parameter (normally `/sys/fs/cgroup`), so unit tests run
//! against a synthetic tree in a temporary directory.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thiserror::Error;

/// v1 controllers a task joins (those mounted); `cpuset` only when cores are reserved.
const V1_CONTROLLERS: &[&str] = &["cpu", "cpuacct", "memory", "pids"];

/// v2 controllers enabled for task cgroups (those the kernel offers).
const V2_CONTROLLERS: &[&str] = &["cpu", "cpuset", "memory", "pids"];

/// Errors managing a task's cgroup.
#[derive(Debug, Error)]
pub enum CgroupError {
    #[error("cannot create cgroup {path:?}: {source}; is the cgroup filesystem mounted read-write and is the agent root?")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path:?}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot open {path:?}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove cgroup {path:?}: {source}; processes may still be in it")]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Which cgroup hierarchy the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    /// As Nomad's `os.cgroups.version` attribute spells it: `"1"` or `"2"`.
    pub fn attribute(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "1",
            CgroupVersion::V2 => "2",
        }
    }
}

/// Where the host's cgroups are and which version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupLayout {
    pub version: CgroupVersion,
    pub root: PathBuf,
}

impl CgroupLayout {
    /// Detects the layout under `root`: v2 when `root/cgroup.controllers` exists (a unified
    /// mount), v1 when controller hierarchies such as `root/memory` exist (pure v1 or the
    /// hybrid layout whose `root/unified` is ignored), `None` otherwise.
    pub fn detect(root: &Path) -> Option<CgroupLayout> {
        if root.join("cgroup.controllers").is_file() {
            return Some(CgroupLayout {
                version: CgroupVersion::V2,
                root: root.to_path_buf(),
            });
        }
        let v1 = ["memory", "pids", "cpu"]
            .iter()
            .any(|c| root.join(c).join("cgroup.procs").is_file());
        v1.then(|| CgroupLayout {
            version: CgroupVersion::V1,
            root: root.to_path_buf(),
        })
    }

    /// The v2 parent cgroup: `<root>/<parent>.slice`; a `parent` given as `nomad.slice` or
    /// `/nomad.slice` (as Nomad's `client.cgroup_parent` is written) is taken as is.
    fn parent_dir(&self, parent: &str) -> PathBuf {
        let parent = parent.trim_matches('/');
        if parent.ends_with(".slice") {
            self.root.join(parent)
        } else {
            self.root.join(format!("{parent}.slice"))
        }
    }

    /// The directories of the task cgroup named `name` under `parent`, per controller on
    /// v1 (only mounted controllers; `cpuset` when `with_cpuset`), one on v2.
    fn task_dirs(&self, parent: &str, name: &str, with_cpuset: bool) -> Vec<(String, PathBuf)> {
        match self.version {
            CgroupVersion::V2 => vec![(
                String::new(),
                self.parent_dir(parent).join(format!("{name}.scope")),
            )],
            CgroupVersion::V1 => {
                let mut ctrls: Vec<&str> = V1_CONTROLLERS.to_vec();
                if with_cpuset {
                    ctrls.push("cpuset");
                }
                ctrls
                    .into_iter()
                    .filter(|c| self.root.join(c).is_dir())
                    .map(|c| {
                        let parent = parent.trim_matches('/');
                        (c.to_string(), self.root.join(c).join(parent).join(name))
                    })
                    .collect()
            }
        }
    }
}

/// The limits of one task's cgroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupLimits {
    /// v1 `cpu.shares` (Nomad's `cpu` MHz); converted to `cpu.weight` on v2. 0: unset.
    pub cpu_shares: u64,
    /// Hard memory limit in bytes (`memory.limit_in_bytes` / `memory.max`). 0: unset.
    pub memory_hard_bytes: u64,
    /// Soft limit (`memory.soft_limit_in_bytes` / `memory.low`) when oversubscribed.
    pub memory_soft_bytes: Option<u64>,
    /// `pids.max`; `None`: no limit.
    pub pids_max: Option<u64>,
    /// `cpuset.cpus` (e.g. `"0-1,3"`) for reserved cores.
    pub cpuset_cpus: Option<String>,
}

impl CgroupLimits {
    /// Limits from a task's resources: `memory_max_mb` is the hard limit when larger than
    /// `memory_mb` (which then becomes the soft limit), otherwise `memory_mb` is.
    pub fn from_resources(
        cpu_shares: i64,
        memory_mb: i64,
        memory_max_mb: i64,
        pids_limit: u64,
        cores: Option<String>,
    ) -> CgroupLimits {
        const MIB: u64 = 1024 * 1024;
        let mem = memory_mb.max(0) as u64;
        let max = memory_max_mb.max(0) as u64;
        let (hard, soft) = if max > mem {
            (max * MIB, Some(mem * MIB))
        } else {
            (mem * MIB, None)
        };
        CgroupLimits {
            cpu_shares: cpu_shares.max(0) as u64,
            memory_hard_bytes: hard,
            memory_soft_bytes: soft,
            pids_max: (pids_limit > 0).then_some(pids_limit),
            cpuset_cpus: cores.filter(|c| !c.trim().is_empty()),
        }
    }
}

/// v1 `cpu.shares` to v2 `cpu.weight` (runc's conversion: [2, 262144] → [1, 10000]).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// One task's cgroup: its directories (one per controller on v1, one on v2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCgroup {
    pub version: CgroupVersion,
    /// `(controller, dir)`; the controller is empty on v2.
    pub dirs: Vec<(String, PathBuf)>,
}

impl TaskCgroup {
    /// Creates the task cgroup `name` under `parent` and writes `limits` into it. On error
    /// whatever was created is removed again.
    pub fn create(
        layout: &CgroupLayout,
        parent: &str,
        name: &str,
        limits: &CgroupLimits,
    ) -> Result<TaskCgroup, CgroupError> {
        let cg = TaskCgroup {
            version: layout.version,
            dirs: layout.task_dirs(parent, name, limits.cpuset_cpus.is_some()),
        };
        let result = match layout.version {
            CgroupVersion::V1 => cg.setup_v1(layout, limits),
            CgroupVersion::V2 => cg.setup_v2(layout, parent, limits),
        };
        if let Err(e) = result {
            let _ = cg.destroy(Duration::ZERO);
            return Err(e);
        }
        Ok(cg)
    }

    /// The cgroup a recovered task was started in, if its directories still exist.
    pub fn find(state: &TaskCgroup) -> Option<TaskCgroup> {
        (!state.dirs.is_empty() && state.dirs.iter().all(|(_, d)| d.is_dir()))
            .then(|| state.clone())
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| self.version == CgroupVersion::V2 || c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn setup_v1(&self, layout: &CgroupLayout, limits: &CgroupLimits) -> Result<(), CgroupError> {
        for (ctrl, dir) in &self.dirs {
            mkdir_all(dir)?;
            if ctrl == "cpuset" {
                // A v1 cpuset cgroup takes no process until cpus and mems are set: fill
                // each level from its parent, then narrow the task's cpus.
                let base = layout.root.join("cpuset");
                let mut level = base.clone();
                if let Ok(rel) = dir.strip_prefix(&base) {
                    for comp in rel.components() {
                        let parent = level.clone();
                        level = level.join(comp);
                        for f in ["cpuset.mems", "cpuset.cpus"] {
                            if read_trim(&level.join(f)).unwrap_or_default().is_empty() {
                                let v = read_trim(&parent.join(f)).unwrap_or_default();
                                write_file(&level.join(f), &v)?;
                            }
                        }
                    }
                }
                if let Some(cpus) = &limits.cpuset_cpus {
                    write_file(&dir.join("cpuset.cpus"), cpus)?;
                }
            }
        }
        if let Some(d) = self.dir("cpu") {
            if limits.cpu_shares > 0 {
                write_file(&d.join("cpu.shares"), &limits.cpu_shares.max(2).to_string())?;
            }
        }
        if let Some(d) = self.dir("memory") {
            if limits.memory_hard_bytes > 0 {
                let hard = limits.memory_hard_bytes.to_string();
                write_file(&d.join("memory.limit_in_bytes"), &hard)?;
                // No swap beyond the limit, when swap accounting exists.
                let memsw = d.join("memory.memsw.limit_in_bytes");
                if memsw.exists() {
                    write_file(&memsw, &hard)?;
                }
            }
            if let Some(soft) = limits.memory_soft_bytes {
                write_file(&d.join("memory.soft_limit_in_bytes"), &soft.to_string())?;
            }
        }
        if let (Some(d), Some(max)) = (self.dir("pids"), limits.pids_max) {
            write_file(&d.join("pids.max"), &max.to_string())?;
        }
        Ok(())
    }

    fn setup_v2(
        &self,
        layout: &CgroupLayout,
        parent: &str,
        limits: &CgroupLimits,
    ) -> Result<(), CgroupError> {
        let Some(dir) = self.dir("") else {
            return Ok(());
        };
        let available = read_trim(&layout.root.join("cgroup.controllers")).unwrap_or_default();
        let wanted: Vec<&str> = V2_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| available.split_whitespace().any(|a| a == *c))
            .collect();
        let parent_dir = layout.parent_dir(parent);
        mkdir_all(&parent_dir)?;
        enable_controllers(&layout.root, &wanted)?;
        enable_controllers(&parent_dir, &wanted)?;
        mkdir_all(dir)?;
        if limits.cpu_shares > 0 && wanted.contains(&"cpu") {
            write_file(
                &dir.join("cpu.weight"),
                &shares_to_weight(limits.cpu_shares).to_string(),
            )?;
        }
        if wanted.contains(&"memory") {
            if limits.memory_hard_bytes > 0 {
                write_file(
                    &dir.join("memory.max"),
                    &limits.memory_hard_bytes.to_string(),
                )?;
                let swap = dir.join("memory.swap.max");
                if swap.exists() {
                    write_file(&swap, "0")?;
                }
            }
            if let Some(soft) = limits.memory_soft_bytes {
                write_file(&dir.join("memory.low"), &soft.to_string())?;
            }
        }
        if wanted.contains(&"pids") {
            if let Some(max) = limits.pids_max {
                write_file(&dir.join("pids.max"), &max.to_string())?;
            }
        }
        if let Some(cpus) = &limits.cpuset_cpus {
            if wanted.contains(&"cpuset") {
                write_file(&dir.join("cpuset.cpus"), cpus)?;
            }
        }
        Ok(())
    }

    /// Opens every `cgroup.procs` of the task cgroup for writing, so that a child process
    /// can join by writing `0` (itself) before it execs.
    pub fn open_procs(&self) -> Result<Vec<File>, CgroupError> {
        self.dirs
            .iter()
            .map(|(_, d)| {
                let path = d.join("cgroup.procs");
                OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|source| CgroupError::Open { path, source })
            })
            .collect()
    }

    /// Host pids of the processes in the cgroup.
    pub fn pids(&self) -> Vec<i32> {
        let dir = self
            .dir("pids")
            .or_else(|| self.dir("memory"))
            .or_else(|| self.dirs.first().map(|(_, d)| d.as_path()));
        let Some(dir) = dir else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every process in the cgroup (also ones that left the task's process group
    /// or session), through `cgroup.kill` where the kernel has it.
    pub fn kill_all(&self) {
        if let Some(d) = self.dir("") {
            let kill = d.join("cgroup.kill");
            if self.version == CgroupVersion::V2
                && kill.exists()
                && std::fs::write(&kill, "1").is_ok()
            {
                return;
            }
        }
        // Repeat: a process may fork while we kill.
        for _ in 0..10 {
            let pids = self.pids();
            if pids.is_empty() {
                return;
            }
            for p in pids {
                if p > 1 {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// True when the kernel's OOM killer killed a process of this cgroup.
    pub fn oom_killed(&self) -> bool {
        let (dir, file) = match self.version {
            CgroupVersion::V1 => (self.dir("memory"), "memory.oom_control"),
            CgroupVersion::V2 => (self.dir(""), "memory.events"),
        };
        let Some(dir) = dir else {
            return false;
        };
        let content = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        key_value(&content, "oom_kill").unwrap_or(0) > 0
    }

    /// Memory and CPU accounting of the cgroup.
    pub fn usage(&self) -> CgroupUsage {
        match self.version {
            CgroupVersion::V1 => self.usage_v1(),
            CgroupVersion::V2 => self.usage_v2(),
        }
    }

    fn usage_v1(&self) -> CgroupUsage {
        let mut u = CgroupUsage::default();
        if let Some(d) = self.dir("memory") {
            let stat = std::fs::read_to_string(d.join("memory.stat")).unwrap_or_default();
            let get = |k: &str| key_value(&stat, &format!("total_{k}")).or(key_value(&stat, k));
            u.memory = Some(CgroupMemory {
                rss: get("rss").unwrap_or(0),
                cache: get("cache").unwrap_or(0),
                swap: get("swap").unwrap_or(0),
                mapped_file: get("mapped_file").unwrap_or(0),
                usage: read_u64(&d.join("memory.usage_in_bytes")).unwrap_or(0),
                max_usage: read_u64(&d.join("memory.max_usage_in_bytes")).unwrap_or(0),
            });
        }
        if let Some(d) = self.dir("cpuacct") {
            u.cpu_total_ns = read_u64(&d.join("cpuacct.usage"));
            let stat = std::fs::read_to_string(d.join("cpuacct.stat")).unwrap_or_default();
            let tick_ns = 1_000_000_000 / caravan_driver::procfs::clock_ticks_per_sec().max(1);
            u.cpu_user_ns = key_value(&stat, "user").map(|t| t * tick_ns);
            u.cpu_system_ns = key_value(&stat, "system").map(|t| t * tick_ns);
        }
        if let Some(d) = self.dir("cpu") {
            let stat = std::fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
            u.throttled_periods = key_value(&stat, "nr_throttled").unwrap_or(0);
            u.throttled_time_ns = key_value(&stat, "throttled_time").unwrap_or(0);
        }
        u
    }

    fn usage_v2(&self) -> CgroupUsage {
        let mut u = CgroupUsage::default();
        let Some(d) = self.dir("") else {
            return u;
        };
        let stat = std::fs::read_to_string(d.join("memory.stat")).unwrap_or_default();
        if !stat.is_empty() {
            u.memory = Some(CgroupMemory {
                rss: key_value(&stat, "anon").unwrap_or(0),
                cache: key_value(&stat, "file").unwrap_or(0),
                swap: read_u64(&d.join("memory.swap.current")).unwrap_or(0),
                mapped_file: key_value(&stat, "file_mapped").unwrap_or(0),
                usage: read_u64(&d.join("memory.current")).unwrap_or(0),
                max_usage: read_u64(&d.join("memory.peak")).unwrap_or(0),
            });
        }
        let cpu = std::fs::read_to_string(d.join("cpu.stat")).unwrap_or_default();
        u.cpu_total_ns = key_value(&cpu, "usage_usec").map(|v| v * 1000);
        u.cpu_user_ns = key_value(&cpu, "user_usec").map(|v| v * 1000);
        u.cpu_system_ns = key_value(&cpu, "system_usec").map(|v| v * 1000);
        u.throttled_periods = key_value(&cpu, "nr_throttled").unwrap_or(0);
        u.throttled_time_ns = key_value(&cpu, "throttled_usec").unwrap_or(0) * 1000;
        u
    }

    /// Removes the task cgroup's directories, retrying for up to `within` while the kernel
    /// still counts exiting processes in them. Missing directories are fine.
    pub fn destroy(&self, within: Duration) -> Result<(), CgroupError> {
        let deadline = Instant::now() + within;
        for (_, dir) in &self.dirs {
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    // A synthetic tree (tests) holds plain files: remove them too.
                    Err(_) if is_plain_dir(dir) => {
                        let _ = std::fs::remove_dir_all(dir);
                        break;
                    }
                    Err(source) => {
                        if Instant::now() >= deadline {
                            return Err(CgroupError::Remove {
                                path: dir.clone(),
                                source,
                            });
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        }
        Ok(())
    }
}

/// True when `dir` is on an ordinary filesystem, not cgroupfs (whose files cannot be
/// deleted one by one).
fn is_plain_dir(dir: &Path) -> bool {
    let Ok(st) = nix::sys::statfs::statfs(dir) else {
        return false;
    };
    let t = st.filesystem_type();
    t != nix::sys::statfs::CGROUP_SUPER_MAGIC && t != nix::sys::statfs::CGROUP2_SUPER_MAGIC
}

/// Memory figures of a cgroup, bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMemory {
    pub rss: u64,
    pub cache: u64,
    pub swap: u64,
    pub mapped_file: u64,
    pub usage: u64,
    pub max_usage: u64,
}

/// Accounting of a cgroup at one instant; CPU times are cumulative nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupUsage {
    pub memory: Option<CgroupMemory>,
    pub cpu_total_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub throttled_periods: u64,
    pub throttled_time_ns: u64,
}

fn enable_controllers(dir: &Path, wanted: &[&str]) -> Result<(), CgroupError> {
    if wanted.is_empty() {
        return Ok(());
    }
    let path = dir.join("cgroup.subtree_control");
    let current = read_trim(&path).unwrap_or_default();
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|c| {
            !current
                .split_whitespace()
                .any(|x| x == *c || x == format!("+{c}"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let all: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
    if write_file(&path, &all.join(" ")).is_ok() {
        return Ok(());
    }
    // One by one, so that one unavailable controller does not block the others.
    for c in all {
        if let Err(e) = write_file(&path, &c) {
            tracing::warn!(error = %e, "cannot enable cgroup controller");
        }
    }
    Ok(())
}

fn mkdir_all(dir: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(dir).map_err(|source| CgroupError::Create {
        path: dir.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, value: &str) -> Result<(), CgroupError> {
    let fail = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    f.write_all(value.as_bytes()).map_err(fail)
}

fn read_trim(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

fn read_u64(path: &Path) -> Option<u64> {
    read_trim(path)?.parse().ok()
}

/// The value of `key` in a `key value` per line file (`memory.stat`, `memory.events`).
fn key_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        (it.next()? == key).then(|| it.next()?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!(
                "caravan-cg-{tag}-{}-{}",
                std::process::id(),
                caravan_driver::procfs::now_nanos()
            ));
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn synthetic_v2(tag: &str) -> TempDir {
        let t = TempDir::new(tag);
        std::fs::write(
            t.0.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::write(t.0.join("cgroup.subtree_control"), "").unwrap();
        std::fs::write(t.0.join("cgroup.procs"), "").unwrap();
        t
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap().trim().to_string()
    }

    #[test]
    fn limits_use_memory_max_only_when_larger() {
        let l = CgroupLimits::from_resources(500, 256, 0, 0, None);
        assert_eq!(l.memory_hard_bytes, 256 << 20);
        assert_eq!(l.memory_soft_bytes, None);
        assert_eq!(l.pids_max, None);
        let l = CgroupLimits::from_resources(500, 256, 512, 50, Some("1-2".into()));
        assert_eq!(l.memory_hard_bytes, 512 << 20);
        assert_eq!(l.memory_soft_bytes, Some(256 << 20));
        assert_eq!(l.pids_max, Some(50));
        assert_eq!(l.cpuset_cpus.as_deref(), Some("1-2"));
        let l = CgroupLimits::from_resources(500, 256, 100, 0, Some(" ".into()));
        assert_eq!(l.memory_hard_bytes, 256 << 20);
        assert_eq!(l.cpuset_cpus, None);
    }

    #[test]
    fn weight_conversion_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(0), 100);
    }

    #[test]
    fn detects_v2_and_v1_layouts() {
        let t = synthetic_v2("detect2");
        let l = CgroupLayout::detect(&t.0).unwrap();
        assert_eq!(l.version, CgroupVersion::V2);
        let t1 = TempDir::new("detect1");
        assert_eq!(CgroupLayout::detect(&t1.0), None);
        std::fs::create_dir_all(t1.0.join("memory")).unwrap();
        std::fs::write(t1.0.join("memory/cgroup.procs"), "").unwrap();
        assert_eq!(
            CgroupLayout::detect(&t1.0).unwrap().version,
            CgroupVersion::V1
        );
    }

    #[test]
    fn v2_writes_limits_into_synthetic_tree() {
        let t = synthetic_v2("v2");
        let layout = CgroupLayout::detect(&t.0).unwrap();
        let limits = CgroupLimits::from_resources(1024, 128, 256, 64, Some("0-1".into()));
        let cg = TaskCgroup::create(&layout, "caravan", "a1.web", &limits).unwrap();
        let dir = t.0.join("caravan.slice/a1.web.scope");
        assert_eq!(cg.dirs, vec![(String::new(), dir.clone())]);
        assert_eq!(
            read(&t.0.join("cgroup.subtree_control")),
            "+cpu +cpuset +memory +pids"
        );
        assert_eq!(
            read(&t.0.join("caravan.slice/cgroup.subtree_control")),
            "+cpu +cpuset +memory +pids"
        );
        assert_eq!(read(&dir.join("cpu.weight")), "39");
        assert_eq!(read(&dir.join("memory.max")), (256u64 << 20).to_string());
        assert_eq!(read(&dir.join("memory.low")), (128u64 << 20).to_string());
        assert_eq!(read(&dir.join("pids.max")), "64");
        assert_eq!(read(&dir.join("cpuset.cpus")), "0-1");
        // Joining: the child writes into cgroup.procs through these handles.
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        assert_eq!(cg.open_procs().unwrap().len(), 1);
        std::fs::write(dir.join("cgroup.procs"), "4242\n4243\n").unwrap();
        assert_eq!(cg.pids(), vec![4242, 4243]);
        // Accounting and OOM from the v2 files.
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(cg.oom_killed());
        std::fs::write(
            dir.join("memory.stat"),
            "anon 4096\nfile 8192\nfile_mapped 100\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.current"), "12288\n").unwrap();
        std::fs::write(
            dir.join("cpu.stat"),
            "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_throttled 2\nthrottled_usec 7\n",
        )
        .unwrap();
        let u = cg.usage();
        let m = u.memory.unwrap();
        assert_eq!(
            (m.rss, m.cache, m.mapped_file, m.usage),
            (4096, 8192, 100, 12288)
        );
        assert_eq!(u.cpu_total_ns, Some(1_500_000));
        assert_eq!(u.cpu_user_ns, Some(1_000_000));
        assert_eq!(u.throttled_periods, 2);
        assert_eq!(u.throttled_time_ns, 7000);
        assert_eq!(TaskCgroup::find(&cg), Some(cg.clone()));
        cg.destroy(Duration::from_millis(100)).unwrap();
        assert!(!dir.exists());
        assert_eq!(TaskCgroup::find(&cg), None);
    }

    #[test]
    fn v2_parent_may_be_written_as_a_slice() {
        let t = synthetic_v2("v2slice");
        let layout = CgroupLayout::detect(&t.0).unwrap();
        let cg =
            TaskCgroup::create(&layout, "/nomad.slice", "a.t", &CgroupLimits::default()).unwrap();
        assert_eq!(cg.dirs[0].1, t.0.join("nomad.slice/a.t.scope"));
        assert!(t.0.join("nomad.slice/cgroup.subtree_control").is_file());
    }

    #[test]
    fn v2_without_limits_writes_no_limit_files() {
        let t = synthetic_v2("v2none");
        std::fs::write(t.0.join("cgroup.controllers"), "memory pids\n").unwrap();
        let layout = CgroupLayout::detect(&t.0).unwrap();
        let cg = TaskCgroup::create(&layout, "p", "t", &CgroupLimits::default()).unwrap();
        let dir = t.0.join("p.slice/t.scope");
        assert!(dir.is_dir());
        assert!(!dir.join("memory.max").exists());
        assert!(!dir.join("cpu.weight").exists());
        assert_eq!(read(&t.0.join("cgroup.subtree_control")), "+memory +pids");
        assert!(!cg.oom_killed());
    }

    #[test]
    fn v1_writes_per_controller_limits_into_synthetic_tree() {
        let t = TempDir::new("v1");
        for c in ["cpu", "cpuacct", "memory", "pids", "cpuset"] {
            std::fs::create_dir_all(t.0.join(c)).unwrap();
            std::fs::write(t.0.join(c).join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(t.0.join("cpuset/cpuset.cpus"), "0-3").unwrap();
        std::fs::write(t.0.join("cpuset/cpuset.mems"), "0").unwrap();
        let layout = CgroupLayout::detect(&t.0).unwrap();
        let limits = CgroupLimits::from_resources(300, 64, 0, 10, Some("2".into()));
        let cg = TaskCgroup::create(&layout, "caravan", "a.t", &limits).unwrap();
        assert_eq!(cg.dirs.len(), 5);
        assert_eq!(read(&t.0.join("cpu/caravan/a.t/cpu.shares")), "300");
        assert_eq!(
            read(&t.0.join("memory/caravan/a.t/memory.limit_in_bytes")),
            (64u64 << 20).to_string()
        );
        assert_eq!(read(&t.0.join("pids/caravan/a.t/pids.max")), "10");
        assert_eq!(read(&t.0.join("cpuset/caravan/cpuset.cpus")), "0-3");
        assert_eq!(read(&t.0.join("cpuset/caravan/a.t/cpuset.cpus")), "2");
        assert_eq!(read(&t.0.join("cpuset/caravan/a.t/cpuset.mems")), "0");
        std::fs::write(
            t.0.join("memory/caravan/a.t/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        assert!(!cg.oom_killed());
        cg.destroy(Duration::ZERO).unwrap();
        assert!(!t.0.join("memory/caravan/a.t").exists());
    }
}
