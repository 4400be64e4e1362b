//! Health of one service allocation, judged from its task states (Nomad's
//! `health_check = "task_states"`, and what `"checks"` falls back to without checks): healthy
//! once every long-running task has run for `min_healthy_time`; unhealthy if a task fails or
//! `healthy_deadline` passes first. Deployments take the timings from the group's `update`
//! block; other allocations (which a node drain waits on) from its `migrate` block.

use caravan_structs::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub struct HealthTracker {
    enabled: bool,
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
        let (min_healthy, deadline) = match (&group.update, alloc.deployment_id.is_empty()) {
            (Some(u), false) => (u.min_healthy_time, u.healthy_deadline),
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
                )
            }
        };
        HealthTracker {
            enabled: service,
            min_healthy: time::nanos(min_healthy),
            deadline: Instant::now() + time::nanos(deadline),
            healthy_since: None,
            restarts_seen: 0,
            decided: None,
        }
    }

    /// Returns the verdict once there is one.
    pub fn observe(
        &mut self,
        states: &BTreeMap<String, TaskState>,
        group: &TaskGroup,
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
        if all_running {
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
        Some(next + Duration::from_millis(10))
    }
}
