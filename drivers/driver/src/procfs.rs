//! Reading Linux `/proc`: process start times (to detect pid reuse), the processes of a task
//! (its process group and descendants), liveness, and CPU/memory sampling for `stats`.

use crate::stats::{CpuStats, MemoryStats, ResourceUsage, TaskResourceUsage};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// The fields of `/proc/<pid>/stat` drivers use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    pub pid: i32,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// `R`, `S`, `D`, `Z`, `T`, ...
    pub state: char,
    /// User-mode CPU time, clock ticks.
    pub utime: u64,
    /// Kernel-mode CPU time, clock ticks.
    pub stime: u64,
    /// Start time in clock ticks since boot.
    pub start_ticks: u64,
    /// Resident set size in pages.
    pub rss_pages: u64,
}

impl ProcStat {
    /// True for a zombie (exited, not yet reaped) or a dead entry.
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses the content of a `/proc/<pid>/stat` file.
pub fn parse_stat(content: &str) -> Option<ProcStat> {
    let open = content.find('(')?;
    let close = content.rfind(')')?;
    let pid = content[..open].trim().parse().ok()?;
    // Fields after the command name, starting with field 3 (state).
    let rest: Vec<&str> = content.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(ProcStat {
        pid,
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        session: field(6)?.parse().ok()?,
        utime: field(14)?.parse().ok()?,
        stime: field(15)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
        rss_pages: field(24)?.parse().ok()?,
    })
}

/// Reads `/proc/<pid>/stat`; `None` when the process does not exist.
pub fn read_stat(pid: i32) -> Option<ProcStat> {
    let content = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&content)
}

/// Start time of `pid` in clock ticks since boot.
pub fn process_start_ticks(pid: i32) -> Option<u64> {
    read_stat(pid).map(|s| s.start_ticks)
}

/// True when `pid` exists, is not a zombie, and (if `start_ticks` is non-zero) is the same
/// process that started at `start_ticks`.
pub fn is_alive(pid: i32, start_ticks: u64) -> bool {
    match read_stat(pid) {
        Some(s) => !s.is_dead() && (start_ticks == 0 || s.start_ticks == start_ticks),
        None => false,
    }
}

/// `stat` of every process on the host.
pub fn all_stats() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(read_stat)
        .collect()
}

/// The live (non-zombie) processes of a task: members of process group `pgid` and all
/// descendants of `root`.
pub fn task_processes(root: i32, pgid: i32) -> Vec<ProcStat> {
    let all = all_stats();
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for s in &all {
        children.entry(s.ppid).or_default().push(s.pid);
    }
    let exists: HashSet<i32> = all.iter().map(|s| s.pid).collect();
    let mut stack: Vec<i32> = all
        .iter()
        .filter(|s| pgid > 0 && s.pgrp == pgid)
        .map(|s| s.pid)
        .collect();
    stack.push(root);
    let mut member: HashSet<i32> = HashSet::new();
    while let Some(p) = stack.pop() {
        if !exists.contains(&p) || !member.insert(p) {
            continue;
        }
        if let Some(c) = children.get(&p) {
            stack.extend(c.iter().copied());
        }
    }
    all.into_iter()
        .filter(|s| member.contains(&s.pid) && !s.is_dead())
        .collect()
}

/// True while any non-zombie process is in process group `pgid`.
pub fn group_alive(pgid: i32) -> bool {
    all_stats().iter().any(|s| s.pgrp == pgid && !s.is_dead())
}

/// Clock ticks per second (`USER_HZ`).
pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 {
        v as u64
    } else {
        100
    }
}

/// Page size in bytes.
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as u64
    } else {
        4096
    }
}

/// MHz of one core from `/proc/cpuinfo` (0 when unknown).
pub fn core_mhz() -> f64 {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("cpu MHz"))
                .and_then(|l| l.split(':').nth(1))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// User and system CPU ticks per pid at one instant.
type CpuSnapshot = (Instant, HashMap<i32, (u64, u64)>);

/// Computes CPU percentages between successive samples of one task.
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: Option<CpuSnapshot>,
    mhz: Option<f64>,
}

impl CpuSampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples the given processes: RSS, CPU ticks and percentages since the previous call
    /// (percentages are 0 on the first call).
    pub fn sample(&mut self, procs: &[ProcStat]) -> TaskResourceUsage {
        let now = Instant::now();
        let hz = clock_ticks_per_sec() as f64;
        let page = page_size();
        let mhz = *self.mhz.get_or_insert_with(core_mhz);
        let elapsed = self
            .last
            .as_ref()
            .map(|(t, _)| now.duration_since(*t).as_secs_f64())
            .unwrap_or(0.0);
        let mut pids = BTreeMap::new();
        let mut total = ResourceUsage::default();
        let mut current = HashMap::new();
        for p in procs {
            current.insert(p.pid, (p.utime, p.stime));
            let (du, ds) = match self.last.as_ref().and_then(|(_, m)| m.get(&p.pid)) {
                Some((u, s)) => (p.utime.saturating_sub(*u), p.stime.saturating_sub(*s)),
                // A process new since the last sample: all its time is in this window.
                None if self.last.is_some() => (p.utime, p.stime),
                None => (0, 0),
            };
            let pct = |ticks: u64| {
                if elapsed > 0.0 {
                    ticks as f64 / hz / elapsed * 100.0
                } else {
                    0.0
                }
            };
            let user = pct(du);
            let system = pct(ds);
            let usage = ResourceUsage {
                memory_stats: MemoryStats {
                    rss: p.rss_pages * page,
                    measured: vec!["RSS".into()],
                    ..Default::default()
                },
                cpu_stats: CpuStats {
                    user_mode: user,
                    system_mode: system,
                    percent: user + system,
                    total_ticks: (user + system) / 100.0 * mhz,
                    measured: vec!["System Mode".into(), "User Mode".into(), "Percent".into()],
                    ..Default::default()
                },
            };
            total.memory_stats.rss += usage.memory_stats.rss;
            total.cpu_stats.user_mode += user;
            total.cpu_stats.system_mode += system;
            total.cpu_stats.percent += user + system;
            total.cpu_stats.total_ticks += usage.cpu_stats.total_ticks;
            pids.insert(p.pid.to_string(), usage);
        }
        total.memory_stats.measured = vec!["RSS".into()];
        total.cpu_stats.measured = vec!["System Mode".into(), "User Mode".into(), "Percent".into()];
        self.last = Some((now, current));
        TaskResourceUsage {
            resource_usage: total,
            timestamp: now_nanos(),
            pids,
        }
    }
}

/// Now, in Unix nanoseconds.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_and_parens_in_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 555 1000 25 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.pid, 1234);
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.pgrp, 1234);
        assert_eq!(s.utime, 7);
        assert_eq!(s.stime, 3);
        assert_eq!(s.start_ticks, 555);
        assert_eq!(s.rss_pages, 25);
    }

    #[test]
    fn own_process_is_alive_and_found() {
        let me = std::process::id() as i32;
        let start = process_start_ticks(me).unwrap();
        assert!(is_alive(me, start));
        assert!(!is_alive(me, start + 1));
        let procs = task_processes(me, 0);
        assert!(procs.iter().any(|p| p.pid == me));
        let mut sampler = CpuSampler::new();
        let u = sampler.sample(&procs);
        assert!(u.resource_usage.memory_stats.rss > 0);
    }
}
