//! The operator's scheduler configuration: read, compare-and-set write, and what the
//! scheduler, the eval workers and job registration take from it.

use super::command::Command;
use super::{Server, ServerError};
use caravan_scheduler::{Algorithm, SchedulerConfig};
use caravan_structs::*;

impl Server {
    /// The scheduler configuration in force (the defaults until a leader wrote one).
    pub fn scheduler_config(&self) -> SchedulerConfiguration {
        self.store
            .snapshot()
            .scheduler_config
            .as_deref()
            .cloned()
            .unwrap_or_else(|| self.config.default_scheduler_config.clone())
    }

    /// Writes a new configuration; with `cas`, only if the current one's modify index is
    /// `cas`. Returns whether it was written and the index.
    pub fn set_scheduler_config(
        &self,
        config: SchedulerConfiguration,
        cas: Option<u64>,
    ) -> Result<(bool, u64), ServerError> {
        config.validate().map_err(ServerError::BadRequest)?;
        if let Some(want) = cas {
            let have = self.scheduler_config().modify_index;
            if want != have {
                return Ok((false, self.store.latest_index()));
            }
        }
        let paused = config.pause_eval_broker;
        let index = self.raft_apply(Command::SchedulerSetConfig { config });
        self.broker.set_paused(paused);
        Ok((true, index))
    }

    /// What the pure scheduler needs of the configuration.
    pub fn scheduler_settings(&self) -> SchedulerConfig {
        let c = self.scheduler_config();
        SchedulerConfig {
            algorithm: if c.scheduler_algorithm == SCHEDULER_ALGORITHM_SPREAD {
                Algorithm::Spread
            } else {
                Algorithm::Binpack
            },
            memory_oversubscription: c.memory_oversubscription_enabled,
            rng_seed: None,
            now_nanos: None,
        }
    }
}
