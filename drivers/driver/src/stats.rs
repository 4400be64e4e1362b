//! Resource usage of a task, shaped like Nomad's `TaskResourceUsage` JSON
//! (`ResourceUsage{MemoryStats{RSS,...},CpuStats{Percent,TotalTicks,...}}`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Memory usage in bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemoryStats {
    #[serde(rename = "RSS")]
    pub rss: u64,
    pub cache: u64,
    pub swap: u64,
    pub mapped_file: u64,
    pub usage: u64,
    pub max_usage: u64,
    pub kernel_usage: u64,
    pub kernel_max_usage: u64,
    /// Which of the fields above were measured, by Nomad's names (`"RSS"`).
    pub measured: Vec<String>,
}

/// CPU usage. Percentages are of one core (`100.0` = one core busy) over the time since the
/// previous sample; `total_ticks` is Nomad's MHz-weighted figure (`percent / 100 * core MHz`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CpuStats {
    pub system_mode: f64,
    pub user_mode: f64,
    pub total_ticks: f64,
    pub throttled_periods: u64,
    pub throttled_time: u64,
    pub percent: f64,
    /// Which of the fields above were measured (`"System Mode"`, `"User Mode"`, `"Percent"`).
    pub measured: Vec<String>,
}

/// Memory and CPU of one process or of a whole task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResourceUsage {
    pub memory_stats: MemoryStats,
    pub cpu_stats: CpuStats,
}

/// Usage of a task: the sum over its processes, and per pid.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskResourceUsage {
    pub resource_usage: ResourceUsage,
    /// When sampled, Unix nanoseconds.
    pub timestamp: i64,
    /// Usage per process id (as a string, like Nomad's JSON).
    pub pids: BTreeMap<String, ResourceUsage>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_nomad_names() {
        let mut u = TaskResourceUsage::default();
        u.resource_usage.memory_stats.rss = 10;
        u.resource_usage.cpu_stats.percent = 1.5;
        let v = serde_json::to_value(&u).unwrap();
        assert_eq!(v["ResourceUsage"]["MemoryStats"]["RSS"], 10);
        assert_eq!(v["ResourceUsage"]["CpuStats"]["Percent"], 1.5);
        assert!(v["ResourceUsage"]["CpuStats"].get("TotalTicks").is_some());
    }
}
