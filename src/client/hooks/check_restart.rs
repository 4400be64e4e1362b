//! `check_restart { limit grace ignore_warnings }` (Nomad's check watcher): once a task's
//! Consul services are registered, the checks that ask for it are watched; a check unhealthy
//! (critical, or warning unless `ignore_warnings`) for `limit - 1` of its intervals in a row,
//! after the `grace` that follows every (re)start, restarts the task with Nomad's
//! `Restart Signaled: healthcheck: check "<name>" unhealthy`. A check-level block overrides
//! the service's.

use super::TaskControl;
use crate::client::consul::Consul;
use caravan_structs::TaskEvent;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the checks' statuses are read from the local Consul agent (Nomad's too).
const POLL: Duration = Duration::from_secs(1);

/// One check to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub check_id: String,
    pub name: String,
    /// Unhealthy for this long (the check's interval × (limit − 1)) restarts the task.
    pub time_limit: Duration,
    pub grace: Duration,
    pub ignore_warnings: bool,
}

/// The `check_restart` a check gets (its own, else its service's), as Nomad reads it; `None`
/// when there is none or its `limit` is 0.
pub fn rule(
    check: &serde_json::Value,
    service: Option<&serde_json::Value>,
    check_id: &str,
    name: &str,
    interval: Duration,
) -> Option<Watched> {
    let cr = check
        .get("CheckRestart")
        .filter(|v| v.is_object())
        .or(service.filter(|v| v.is_object()))?;
    let limit = cr.get("Limit").and_then(|v| v.as_u64()).unwrap_or(0);
    if limit == 0 {
        return None;
    }
    let grace = cr
        .get("Grace")
        .and_then(|v| v.as_u64())
        .map(Duration::from_nanos)
        .unwrap_or(Duration::from_secs(1));
    Some(Watched {
        check_id: check_id.to_string(),
        name: name.to_string(),
        time_limit: interval * (limit.min(u32::MAX as u64) as u32).saturating_sub(1),
        grace,
        ignore_warnings: cr
            .get("IgnoreWarnings")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

/// What one watched check's latest status means.
#[derive(Debug, Default)]
struct State {
    unhealthy_since: Option<Instant>,
}

impl State {
    /// Whether the check has been unhealthy long enough to restart.
    fn apply(&mut self, w: &Watched, status: &str, now: Instant) -> bool {
        let unhealthy = status == "critical" || (status == "warning" && !w.ignore_warnings);
        if !unhealthy {
            self.unhealthy_since = None;
            return false;
        }
        let since = *self.unhealthy_since.get_or_insert(now);
        now >= since + w.time_limit
    }
}

/// Watches `checks` until aborted.
pub async fn watch(consul: Arc<Consul>, control: Arc<dyn TaskControl>, checks: Vec<Watched>) {
    let mut started = Instant::now();
    let mut states: HashMap<String, State> = HashMap::new();
    loop {
        tokio::time::sleep(POLL).await;
        if control.killed() {
            return;
        }
        if !control.is_running() {
            // Restarting: the grace starts again once it runs.
            started = Instant::now();
            states.clear();
            continue;
        }
        let statuses = match consul.client.agent_checks().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("check_restart: reading Consul checks: {e}");
                continue;
            }
        };
        let now = Instant::now();
        let due = checks.iter().find(|w| {
            if now < started + w.grace {
                return false;
            }
            let status = statuses
                .get(&w.check_id)
                .map(|c| c.status.as_str())
                .unwrap_or("");
            states
                .entry(w.check_id.clone())
                .or_default()
                .apply(w, status, now)
        });
        if let Some(w) = due {
            let reason = format!("healthcheck: check {:?} unhealthy", w.name);
            let mut ev = TaskEvent::new(caravan_structs::TASK_EVENT_RESTART_SIGNAL, &reason);
            ev.restart_reason = reason;
            if let Err(e) = control.restart(ev) {
                tracing::warn!("check_restart: {e}");
            }
            started = Instant::now();
            states.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_follow_nomad() {
        let s = Duration::from_secs;
        let svc = json!({"Limit": 3, "Grace": 5_000_000_000u64});
        let w = rule(&json!({}), Some(&svc), "c1", "web", s(2)).unwrap();
        assert_eq!(w.time_limit, s(4), "interval × (limit − 1)");
        assert_eq!(w.grace, s(5));
        // The check's own block wins; limit 0 turns it off.
        let own = json!({"CheckRestart": {"Limit": 1, "IgnoreWarnings": true}});
        let w = rule(&own, Some(&svc), "c1", "web", s(2)).unwrap();
        assert_eq!(w.time_limit, s(0));
        assert!(w.ignore_warnings);
        assert!(rule(&json!({"CheckRestart": {"Limit": 0}}), None, "c", "n", s(1)).is_none());
        assert!(rule(&json!({}), None, "c", "n", s(1)).is_none());
    }

    #[test]
    fn a_check_unhealthy_for_the_time_limit_restarts() {
        let s = Duration::from_secs;
        let w = Watched {
            check_id: "c".into(),
            name: "web".into(),
            time_limit: s(2),
            grace: s(0),
            ignore_warnings: true,
        };
        let t0 = Instant::now();
        let mut st = State::default();
        assert!(!st.apply(&w, "critical", t0));
        assert!(!st.apply(&w, "critical", t0 + s(1)));
        assert!(st.apply(&w, "critical", t0 + s(2)));
        // Passing in between starts the count again; ignored warnings count as healthy.
        let mut st = State::default();
        assert!(!st.apply(&w, "critical", t0));
        assert!(!st.apply(&w, "passing", t0 + s(1)));
        assert!(!st.apply(&w, "critical", t0 + s(2)));
        assert!(!st.apply(&w, "warning", t0 + s(3)));
        assert!(!st.apply(&w, "critical", t0 + s(4)));
    }
}
