//! Converts the engine's container stats into Nomad's `TaskResourceUsage` shape: memory from
//! the cgroup (v1 `rss`/`cache`/`swap`/`mapped_file`, v2 `anon`/`file`), CPU percent over the
//! time since the previous sample (the engine's `precpu_stats`, or the driver's own last one).

use bollard::container::{MemoryStatsStats, Stats};
use caravan_driver::{CpuStats, MemoryStats, ResourceUsage, TaskResourceUsage};

/// The CPU counters of one sample, kept for the next percent computation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSample {
    pub total_usage: u64,
    pub system_usage: u64,
    pub user_mode: u64,
    pub kernel_mode: u64,
}

/// Converts one stats reading. `previous` is the driver's last sample of this container,
/// used when the engine sent no `precpu_stats`; `mhz_per_core` scales `TotalTicks`.
pub fn convert(
    s: &Stats,
    previous: Option<CpuSample>,
    mhz_per_core: f64,
    now_nanos: i64,
) -> (TaskResourceUsage, CpuSample) {
    let mut mem = MemoryStats::default();
    match &s.memory_stats.stats {
        Some(MemoryStatsStats::V1(v1)) => {
            mem.rss = v1.rss;
            mem.cache = v1.cache;
            mem.mapped_file = v1.mapped_file;
            mem.measured = vec!["RSS".into(), "Cache".into(), "Mapped File".into()];
        }
        Some(MemoryStatsStats::V2(v2)) => {
            mem.rss = v2.anon;
            mem.cache = v2.file;
            mem.mapped_file = v2.file_mapped;
            mem.measured = vec!["RSS".into(), "Cache".into(), "Mapped File".into()];
        }
        None => {}
    }
    if let Some(u) = s.memory_stats.usage {
        mem.usage = u;
        mem.measured.push("Usage".into());
    }
    if let Some(m) = s.memory_stats.max_usage {
        mem.max_usage = m;
        mem.measured.push("Max Usage".into());
    }
    if mem.rss == 0 && mem.usage > 0 && s.memory_stats.stats.is_none() {
        // Engines that send no breakdown: usage is the best figure for RSS.
        mem.rss = mem.usage.saturating_sub(mem.cache);
        mem.measured.push("RSS".into());
    }

    let cur = CpuSample {
        total_usage: s.cpu_stats.cpu_usage.total_usage,
        system_usage: s.cpu_stats.system_cpu_usage.unwrap_or(0),
        user_mode: s.cpu_stats.cpu_usage.usage_in_usermode,
        kernel_mode: s.cpu_stats.cpu_usage.usage_in_kernelmode,
    };
    let pre_engine = CpuSample {
        total_usage: s.precpu_stats.cpu_usage.total_usage,
        system_usage: s.precpu_stats.system_cpu_usage.unwrap_or(0),
        user_mode: s.precpu_stats.cpu_usage.usage_in_usermode,
        kernel_mode: s.precpu_stats.cpu_usage.usage_in_kernelmode,
    };
    let pre = if pre_engine.system_usage > 0 && pre_engine.system_usage < cur.system_usage {
        Some(pre_engine)
    } else {
        previous.filter(|p| p.system_usage > 0 && p.system_usage < cur.system_usage)
    };
    let cores = s
        .cpu_stats
        .online_cpus
        .filter(|n| *n > 0)
        .or_else(|| {
            s.cpu_stats
                .cpu_usage
                .percpu_usage
                .as_ref()
                .map(|v| v.len() as u64)
        })
        .unwrap_or(1)
        .max(1) as f64;
    let mut cpu = CpuStats {
        throttled_periods: s.cpu_stats.throttling_data.throttled_periods,
        throttled_time: s.cpu_stats.throttling_data.throttled_time,
        measured: vec!["Throttled Periods".into(), "Throttled Time".into()],
        ..Default::default()
    };
    if let Some(p) = pre {
        let system_delta = (cur.system_usage - p.system_usage) as f64;
        let pct = |a: u64, b: u64| a.saturating_sub(b) as f64 / system_delta * cores * 100.0;
        cpu.percent = pct(cur.total_usage, p.total_usage);
        cpu.user_mode = pct(cur.user_mode, p.user_mode);
        cpu.system_mode = pct(cur.kernel_mode, p.kernel_mode);
        cpu.total_ticks = cpu.percent / 100.0 * mhz_per_core;
        cpu.measured.extend(
            ["Percent", "Total Ticks", "User Mode", "System Mode"]
                .into_iter()
                .map(String::from),
        );
    }
    let usage = TaskResourceUsage {
        resource_usage: ResourceUsage {
            memory_stats: mem,
            cpu_stats: cpu,
        },
        timestamp: now_nanos,
        pids: Default::default(),
    };
    (usage, cur)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats(total: u64, system: u64, pre_total: u64, pre_system: u64) -> Stats {
        serde_json::from_value(json!({
            "read": "2024-01-01T00:00:00Z", "preread": "2024-01-01T00:00:00Z",
            "num_procs": 0,
            "pids_stats": {},
            "memory_stats": {"usage": 5000, "max_usage": 9000},
            "blkio_stats": {},
            "cpu_stats": {"cpu_usage": {"total_usage": total, "usage_in_usermode": total / 2,
                          "usage_in_kernelmode": total / 2}, "system_cpu_usage": system,
                          "online_cpus": 2, "throttling_data": {"periods": 0, "throttled_periods": 3, "throttled_time": 7}},
            "precpu_stats": {"cpu_usage": {"total_usage": pre_total, "usage_in_usermode": 0,
                          "usage_in_kernelmode": 0}, "system_cpu_usage": pre_system,
                          "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
            "storage_stats": {},
            "name": "x", "id": "y"
        }))
        .unwrap()
    }

    #[test]
    fn percent_from_engine_precpu() {
        // The container used 50 of 1000 system ns over 2 cores: 10 % of one core.
        let (u, cur) = convert(&stats(150, 2000, 100, 1000), None, 2000.0, 7);
        let cpu = &u.resource_usage.cpu_stats;
        assert!((cpu.percent - 10.0).abs() < 1e-9, "{}", cpu.percent);
        assert!((cpu.total_ticks - 200.0).abs() < 1e-9);
        assert_eq!(cpu.throttled_periods, 3);
        assert_eq!(cur.total_usage, 150);
        assert_eq!(u.timestamp, 7);
        assert_eq!(u.resource_usage.memory_stats.usage, 5000);
        assert_eq!(u.resource_usage.memory_stats.max_usage, 9000);
        assert_eq!(u.resource_usage.memory_stats.rss, 5000);
    }

    #[test]
    fn percent_from_own_previous_sample() {
        let s = stats(400, 3000, 0, 0);
        let (u, _) = convert(&s, None, 1000.0, 0);
        assert_eq!(u.resource_usage.cpu_stats.percent, 0.0);
        assert!(!u
            .resource_usage
            .cpu_stats
            .measured
            .contains(&"Percent".to_string()));
        let prev = CpuSample {
            total_usage: 200,
            system_usage: 1000,
            ..Default::default()
        };
        let (u, _) = convert(&s, Some(prev), 1000.0, 0);
        assert!((u.resource_usage.cpu_stats.percent - 20.0).abs() < 1e-9);
    }
}
