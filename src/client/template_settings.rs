//! `client { template {} }` as the template hook applies it: the function denylist, the `file`
//! sandbox, how stale and how long Consul reads may be, the `wait` for templates that set
//! none and the bounds on those that do, and how failed Consul reads are retried. A reload
//! replaces the settings; a task keeps the ones it started with.

use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How a data source's failed reads are retried (consul-template's `retry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Failed reads in a row before the template fails; 0 retries for ever.
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Retry {
    /// Nomad's client default: unlimited attempts, consul-template's 250ms doubling to 1m.
    fn default() -> Self {
        Retry {
            attempts: 0,
            backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// Whether `failures` reads in a row have used up the attempts.
    pub fn exhausted(&self, failures: u32) -> bool {
        self.attempts > 0 && failures >= self.attempts
    }
}

/// `min`/`max` of a `wait` or `wait_bounds` block; an unset side has no bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WaitBounds {
    pub min: Option<Duration>,
    pub max: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateSettings {
    /// Template functions a job may not call.
    pub function_denylist: Vec<String>,
    /// Lets `file` read any path on the host instead of only the task directory.
    pub disable_file_sandbox: bool,
    /// Consul reads may come from any server at most this far behind the leader (zero: from
    /// the leader only).
    pub max_stale: Duration,
    /// How long one blocking Consul query waits for a change.
    pub block_query_wait: Duration,
    /// Quiescence (`min`, `max`) before a re-render, for templates without their own `wait`.
    pub wait: Option<(Duration, Duration)>,
    /// Limits a template's own `wait` must stay within.
    pub wait_bounds: Option<WaitBounds>,
    pub consul_retry: Retry,
    /// Failed Vault reads in a row before a template fails (an outage counts only with
    /// `vault_outage = "fail"`).
    pub vault_retry: Retry,
    /// Failed reads of Nomad variables in a row before a template fails.
    pub nomad_retry: Retry,
    /// How often a secret without a lease (KV) is read again.
    pub vault_default_lease_duration: Duration,
    /// `client { vault_outage }`: what a Vault outage does to running tasks (their templates
    /// and their token).
    pub vault_outage: super::vault_outage::VaultOutage,
    /// Beyond Nomad: a template restart waits for one of the group's `update.max_parallel`
    /// restart slots, coordinated by the servers.
    pub coordinated_restarts: bool,
    /// Beyond Nomad: Vault secrets are read afresh and their templates rendered again on
    /// every restart of a task (as `restart { render_templates }` would).
    pub render_secrets_on_restart: bool,
}

impl Default for TemplateSettings {
    /// Nomad's client defaults.
    fn default() -> Self {
        TemplateSettings {
            function_denylist: caravan_templates::DEFAULT_DENYLIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            disable_file_sandbox: false,
            max_stale: Duration::from_secs(87_600 * 3600),
            block_query_wait: Duration::from_secs(5 * 60),
            wait: Some((Duration::from_secs(5), Duration::from_secs(4 * 60))),
            wait_bounds: None,
            consul_retry: Retry::default(),
            vault_retry: Retry::default(),
            nomad_retry: Retry::default(),
            vault_default_lease_duration: Duration::from_secs(5 * 60),
            vault_outage: Default::default(),
            coordinated_restarts: false,
            render_secrets_on_restart: false,
        }
    }
}

impl TemplateSettings {
    /// How failed reads of a data source are retried.
    pub fn retry_for(&self, kind: caravan_templates::SourceKind) -> Retry {
        match kind {
            caravan_templates::SourceKind::Consul => self.consul_retry,
            caravan_templates::SourceKind::Nomad => self.nomad_retry,
            caravan_templates::SourceKind::Vault => self.vault_retry,
            // Local files are read at render time, never fetched.
            caravan_templates::SourceKind::Local => Retry::default(),
        }
    }

    /// The quiescence one template gets: its own `wait` held within `wait_bounds`, else the
    /// client's `wait`.
    pub fn wait_for(&self, own: Option<(Duration, Duration)>) -> Option<(Duration, Duration)> {
        let Some((mut min, mut max)) = own else {
            return self.wait;
        };
        if let Some(b) = &self.wait_bounds {
            if let Some(lo) = b.min {
                min = min.max(lo);
            }
            if let Some(hi) = b.max {
                max = max.min(hi);
            }
        }
        Some((min, max.max(min)))
    }
}

/// The settings in force, replaced on reload.
pub type SharedTemplateSettings = Arc<RwLock<TemplateSettings>>;

/// A copy of the settings now in force.
pub fn current(shared: &SharedTemplateSettings) -> TemplateSettings {
    match shared.read() {
        Ok(g) => g.clone(),
        Err(p) => p.into_inner().clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_wait_is_bounded_and_missing_wait_takes_the_clients() {
        let s = |b: Option<WaitBounds>| TemplateSettings {
            wait_bounds: b,
            ..Default::default()
        };
        let secs = Duration::from_secs;
        assert_eq!(s(None).wait_for(None), Some((secs(5), secs(240))));
        assert_eq!(
            s(None).wait_for(Some((secs(1), secs(2)))),
            Some((secs(1), secs(2)))
        );
        let bounded = s(Some(WaitBounds {
            min: Some(secs(3)),
            max: Some(secs(10)),
        }));
        assert_eq!(
            bounded.wait_for(Some((secs(1), secs(60)))),
            Some((secs(3), secs(10)))
        );
        assert_eq!(
            bounded.wait_for(Some((secs(20), secs(30)))),
            Some((secs(20), secs(20))),
            "max is cut to the bound but never below min"
        );
    }

    #[test]
    fn attempts_zero_retries_for_ever() {
        assert!(!Retry::default().exhausted(1_000_000));
        let r = Retry {
            attempts: 3,
            ..Default::default()
        };
        assert!(!r.exhausted(2));
        assert!(r.exhausted(3));
    }
}
