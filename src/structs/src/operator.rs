//! Cluster-wide operator settings: Nomad's `SchedulerConfiguration`, read and written through
//! `/v1/operator/scheduler/configuration`.

use serde::{Deserialize, Serialize};

pub const SCHEDULER_ALGORITHM_BINPACK: &str = "binpack";
pub const SCHEDULER_ALGORITHM_SPREAD: &str = "spread";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SchedulerConfiguration {
    pub scheduler_algorithm: String,
    pub preemption_config: PreemptionConfig,
    pub memory_oversubscription_enabled: bool,
    pub reject_job_registration: bool,
    pub pause_eval_broker: bool,
    pub create_index: u64,
    pub modify_index: u64,
}

impl Default for SchedulerConfiguration {
    fn default() -> Self {
        SchedulerConfiguration {
            scheduler_algorithm: SCHEDULER_ALGORITHM_BINPACK.into(),
            preemption_config: PreemptionConfig::default(),
            memory_oversubscription_enabled: false,
            reject_job_registration: false,
            pause_eval_broker: false,
            create_index: 0,
            modify_index: 0,
        }
    }
}

impl SchedulerConfiguration {
    /// Refuses what Nomad refuses: an unknown algorithm.
    pub fn validate(&self) -> Result<(), String> {
        match self.scheduler_algorithm.as_str() {
            SCHEDULER_ALGORITHM_BINPACK | SCHEDULER_ALGORITHM_SPREAD => Ok(()),
            other => Err(format!(
                "invalid scheduler algorithm {other:?}: must be \"binpack\" or \"spread\""
            )),
        }
    }
}

/// Which schedulers may preempt lower-priority allocations (Nomad's defaults: system only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PreemptionConfig {
    pub system_scheduler_enabled: bool,
    pub sys_batch_scheduler_enabled: bool,
    pub batch_scheduler_enabled: bool,
    pub service_scheduler_enabled: bool,
}

impl Default for PreemptionConfig {
    fn default() -> Self {
        PreemptionConfig {
            system_scheduler_enabled: true,
            sys_batch_scheduler_enabled: false,
            batch_scheduler_enabled: false,
            service_scheduler_enabled: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_nomads_names_and_defaults() {
        let c: SchedulerConfiguration =
            serde_json::from_str(r#"{"SchedulerAlgorithm":"spread","PreemptionConfig":{"ServiceSchedulerEnabled":true}}"#)
                .expect("decode");
        assert_eq!(c.scheduler_algorithm, "spread");
        assert!(c.preemption_config.service_scheduler_enabled);
        assert!(c.preemption_config.system_scheduler_enabled);
        let v = serde_json::to_value(&c).expect("encode");
        assert_eq!(v["PreemptionConfig"]["SysBatchSchedulerEnabled"], false);
        assert_eq!(v["MemoryOversubscriptionEnabled"], false);
        assert!(c.validate().is_ok());
        let bad = SchedulerConfiguration {
            scheduler_algorithm: "random".into(),
            ..Default::default()
        };
        assert!(bad.validate().unwrap_err().contains("binpack"));
    }
}
