//! Health of one service allocation, as Nomad judges it: healthy once every long-running task
//! has run, and (with `health_check = "checks"`, the default, when the group has Consul checks)
//! every check that counts has passed, without interruption for `min_healthy_time`; unhealthy
//! if a task fails or `healthy_deadline` passes first. `"task_states"` looks at tasks only.
//! Deployments take the settings from the group's `update` block; other allocations (which a
//! node drain waits on) from its `migrate` block.

use caravan_structs::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How often Consul's check states are read while an allocation's health is undecided.
pub const CHECK_POLL: Duration = Duration::from_millis(500);

pub struct HealthTracker {
    enabled: bool,
    /// Whether Consul checks must pass too (`health_check = "checks"` and the group has a
    /// Consul check that counts).
    checks: bool,
    min_healthy: Duration,
    deadline: Instant,
    healthy_since: Option<Instant>,
    restarts_seen: u64,
    decided: Option<bool>,
}

impl HealthTracker {
    pub fn new(alloc: &Allocation, group: &TaskGroup) -> Self {
        let service = alloc
            .job
            .as_ref()
            .map(|j| j.job_type == JOB_TYPE_SERVICE)
            .unwrap_or(false);
        let (min_healthy, deadline, mode) = match (&group.update, alloc.deployment_id.is_empty()) {
            (Some(u), false) => (
                u.min_healthy_time,
                u.healthy_deadline,
                u.health_check.clone(),
            ),
            _ => {
                // Nomad's `migrate` defaults: 10s healthy, 5m deadline.
                let m = group.migrate.as_ref();
                let get = |k: &str, d: i64| {
                    m.and_then(|m| m.get(k))
                        .and_then(|v| v.as_i64())
                        .unwrap_or(d)
                };
                (
                    get("MinHealthyTime", 10 * time::SECOND),
                    get("HealthyDeadline", 5 * time::MINUTE),
                    m.and_then(|m| m.get("HealthCheck"))
                        .and_then(|v| v.as_str())
                        .unwrap_or("checks")
                        .to_string(),
                )
            }
        };
        HealthTracker {
            enabled: service,
            checks: (mode.is_empty() || mode == "checks") && has_counted_checks(group),
            min_healthy: time::nanos(min_healthy),
            deadline: Instant::now() + time::nanos(deadline),
            healthy_since: None,
            restarts_seen: 0,
            decided: None,
        }
    }

    /// Whether the verdict waits on Consul checks (read them and pass them to `observe`).
    pub fn wants_checks(&self) -> bool {
        self.enabled && self.checks && self.decided.is_none()
    }

    /// Returns the verdict once there is one. `checks` is what Consul says of the allocation's
    /// checks (see `Consul::checks_healthy`); None while they are not registered or Consul
    /// did not answer.
    pub fn observe(
        &mut self,
        states: &BTreeMap<String, TaskState>,
        group: &TaskGroup,
        checks: Option<bool>,
    ) -> Option<bool> {
        if !self.enabled || self.decided.is_some() {
            return self.decided;
        }
        let now = Instant::now();
        if states.values().any(|s| s.failed) {
            self.decided = Some(false);
            return self.decided;
        }
        let restarts: u64 = states.values().map(|s| s.restarts).sum();
        if restarts != self.restarts_seen {
            self.restarts_seen = restarts;
            self.healthy_since = None;
        }
        let long_running = group.tasks.iter().filter(|t| {
            t.lifecycle
                .as_ref()
                .map(|l| l.sidecar || l.hook.is_empty())
                .unwrap_or(true)
        });
        let mut all_running = true;
        for t in long_running {
            if states
                .get(&t.name)
                .map(|s| s.state != TASK_STATE_RUNNING)
                .unwrap_or(true)
            {
                all_running = false;
            }
        }
        let checks_ok = !self.checks || checks == Some(true);
        if all_running && checks_ok {
            let since = *self.healthy_since.get_or_insert(now);
            if now.duration_since(since) >= self.min_healthy {
                self.decided = Some(true);
                return self.decided;
            }
        } else {
            self.healthy_since = None;
        }
        if now >= self.deadline {
            self.decided = Some(false);
        }
        self.decided
    }

    /// When to look again even if nothing changes.
    pub fn next_check(&self) -> Option<Duration> {
        if !self.enabled || self.decided.is_some() {
            return None;
        }
        let now = Instant::now();
        let mut next = self.deadline.saturating_duration_since(now);
        if let Some(since) = self.healthy_since {
            next = next.min((since + self.min_healthy).saturating_duration_since(now));
        }
        if self.checks {
            next = next.min(CHECK_POLL);
        }
        Some(next + Duration::from_millis(10))
    }
}

/// Whether the group has a Consul check that counts towards health: one Caravan registers
/// (not `grpc`, which it skips) whose `on_update` is not `ignore`.
fn has_counted_checks(group: &TaskGroup) -> bool {
    let services = group
        .services
        .iter()
        .chain(group.tasks.iter().flat_map(|t| t.services.iter()));
    services
        .filter(|s| s.provider.is_empty() || s.provider == "consul" || s.provider == "nomad")
        .flat_map(|s| s.checks.iter())
        .any(|c| {
            let kind = c.get("Type").and_then(|v| v.as_str()).unwrap_or_default();
            let on_update = c
                .get("OnUpdate")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            kind != "grpc" && on_update != "ignore"
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn group(checks: Vec<serde_json::Value>, health_check: &str) -> (Allocation, TaskGroup) {
        let mut g = TaskGroup {
            name: "g".into(),
            tasks: vec![Task {
                name: "t".into(),
                services: vec![Service {
                    name: "web".into(),
                    checks,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        g.update = Some(UpdateStrategy {
            health_check: health_check.into(),
            min_healthy_time: 0,
            healthy_deadline: 60 * time::SECOND,
            ..Default::default()
        });
        let job = Job {
            job_type: JOB_TYPE_SERVICE.into(),
            task_groups: vec![g.clone()],
            ..Default::default()
        };
        let alloc = Allocation {
            deployment_id: "d1".into(),
            job: Some(std::sync::Arc::new(job)),
            ..Default::default()
        };
        (alloc, g)
    }

    fn running() -> BTreeMap<String, TaskState> {
        [(
            "t".to_string(),
            TaskState {
                state: TASK_STATE_RUNNING.into(),
                ..Default::default()
            },
        )]
        .into()
    }

    #[test]
    fn checks_must_pass_before_a_running_allocation_is_healthy() {
        let (a, g) = group(vec![json!({"Type": "http", "Path": "/"})], "checks");
        let mut h = HealthTracker::new(&a, &g);
        assert!(h.wants_checks());
        assert_eq!(
            h.observe(&running(), &g, None),
            None,
            "checks not registered yet"
        );
        assert_eq!(h.observe(&running(), &g, Some(false)), None, "critical");
        assert!(h
            .next_check()
            .is_some_and(|d| d <= CHECK_POLL + Duration::from_millis(10)));
        assert_eq!(h.observe(&running(), &g, Some(true)), Some(true));
        assert!(!h.wants_checks());
    }

    #[test]
    fn task_states_mode_and_uncounted_checks_ignore_consul() {
        let (a, g) = group(vec![json!({"Type": "http", "Path": "/"})], "task_states");
        let mut h = HealthTracker::new(&a, &g);
        assert!(!h.wants_checks());
        assert_eq!(h.observe(&running(), &g, Some(false)), Some(true));

        for checks in [
            vec![json!({"Type": "grpc"})],
            vec![json!({"Type": "tcp", "OnUpdate": "ignore"})],
            vec![],
        ] {
            let (a, g) = group(checks, "checks");
            let mut h = HealthTracker::new(&a, &g);
            assert!(!h.wants_checks());
            assert_eq!(h.observe(&running(), &g, None), Some(true));
        }
    }
}
