//! How a task rides out a Vault outage (`client { vault_outage = "keep" | "fail" }`). With
//! `keep` (the default, beyond Nomad) a running task keeps its last token and rendered
//! secrets, is neither restarted nor stopped, and Vault is retried with back-off until it is
//! back; with `fail` an outage counts against `template { vault_retry }` as any failed Vault
//! read does in Nomad, and a token that runs out meanwhile fails the task. Either way the task
//! gets an event when its Vault data goes stale and another when it is fresh again, and the
//! agent's `nomad.client.vault.stale_tasks` gauge counts the tasks that are stale now.

use super::hooks::TaskControl;
use caravan_structs::TaskEvent;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Task event while a task's Vault token or secrets cannot be refreshed.
pub const TASK_EVENT_VAULT_STALE: &str = "Vault Secrets Stale";
/// Task event once everything stale was refreshed.
pub const TASK_EVENT_VAULT_FRESH: &str = "Vault Secrets Refreshed";

/// Tasks of this agent whose Vault data is stale now (one agent per process).
static STALE_TASKS: AtomicU64 = AtomicU64::new(0);

/// The `nomad.client.vault.stale_tasks` gauge.
pub fn stale_tasks() -> u64 {
    STALE_TASKS.load(Ordering::Relaxed)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VaultOutage {
    #[default]
    Keep,
    Fail,
}

impl std::str::FromStr for VaultOutage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(VaultOutage::Keep),
            "fail" => Ok(VaultOutage::Fail),
            other => Err(format!(
                "client.vault_outage must be \"keep\" or \"fail\", not {other:?}"
            )),
        }
    }
}

/// What of one task is stale (its token, a template's secret), with the task's events.
pub struct Staleness {
    control: Option<Arc<dyn TaskControl>>,
    stale: Mutex<BTreeSet<String>>,
}

impl Staleness {
    pub fn new(control: Option<Arc<dyn TaskControl>>) -> Arc<Staleness> {
        Arc::new(Staleness {
            control,
            stale: Mutex::new(BTreeSet::new()),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeSet<String>) -> R) -> R {
        match self.stale.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    fn event(&self, kind: &str, msg: String) {
        match &self.control {
            Some(c) => c.event(TaskEvent::new(kind, msg)),
            None => tracing::info!("{kind}: {msg}"),
        }
    }

    /// `what` could not be refreshed because Vault is unreachable.
    pub fn stale(&self, what: &str, error: &str) {
        let first = self.with(|s| {
            let first = s.is_empty();
            s.insert(what.to_string()) && first
        });
        if first {
            STALE_TASKS.fetch_add(1, Ordering::Relaxed);
            self.event(
                TASK_EVENT_VAULT_STALE,
                format!(
                    "Vault is unreachable: the task keeps running on its last Vault token and \
                     secrets while {what} is retried ({error})"
                ),
            );
        }
    }

    /// `what` was refreshed.
    pub fn fresh(&self, what: &str) {
        let last = self.with(|s| s.remove(what) && s.is_empty());
        if last {
            STALE_TASKS.fetch_sub(1, Ordering::Relaxed);
            self.event(
                TASK_EVENT_VAULT_FRESH,
                "Vault is reachable again: the task's Vault token and secrets are fresh".into(),
            );
        }
    }

    pub fn is_stale(&self) -> bool {
        self.with(|s| !s.is_empty())
    }
}

impl Drop for Staleness {
    fn drop(&mut self) {
        if self.with(|s| !s.is_empty()) {
            STALE_TASKS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_is_counted_once_while_anything_of_it_is_stale() {
        let before = stale_tasks();
        let s = Staleness::new(None);
        s.stale("vault.read(a)", "connection refused");
        s.stale("vault.read(b)", "connection refused");
        assert!(s.is_stale());
        assert_eq!(stale_tasks(), before + 1);
        s.fresh("vault.read(a)");
        assert_eq!(stale_tasks(), before + 1);
        s.fresh("vault.read(b)");
        assert!(!s.is_stale());
        assert_eq!(stale_tasks(), before);
        s.stale("token", "timeout");
        drop(s);
        assert_eq!(stale_tasks(), before);
        assert_eq!("keep".parse(), Ok(VaultOutage::Keep));
        assert!("sometimes"
            .parse::<VaultOutage>()
            .unwrap_err()
            .contains("keep"));
    }
}
