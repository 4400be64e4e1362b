//! The restart tracker: applies a task's `restart` policy (attempts per interval, delay, mode
//! `fail` or `delay`) to each exit or start failure, as Nomad's client does.

use caravan_structs::{time::format_duration, RestartPolicy, RESTART_MODE_DELAY};
use std::time::{Duration, Instant};

pub const REASON_WITHIN_POLICY: &str = "Restart within policy";

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Restart after the delay.
    Restart { delay: Duration, reason: String },
    /// Give up; the task is dead and failed.
    Fail { reason: String },
    /// The task finished for good (batch success, ephemeral lifecycle task).
    Done,
}

pub struct RestartTracker {
    policy: RestartPolicy,
    batch: bool,
    count: i32,
    window_start: Instant,
}

impl RestartTracker {
    pub fn new(policy: RestartPolicy, job_type: &str) -> Self {
        RestartTracker {
            policy,
            batch: job_type == caravan_structs::JOB_TYPE_BATCH
                || job_type == caravan_structs::JOB_TYPE_SYSBATCH,
            count: 0,
            window_start: Instant::now(),
        }
    }

    /// Decides what follows an exit. `success` = exited 0 by itself; `ephemeral` = a
    /// non-sidecar lifecycle task, which is done once it succeeds.
    pub fn on_exit(&mut self, success: bool, ephemeral: bool) -> Decision {
        if success && (self.batch || ephemeral) {
            return Decision::Done;
        }
        self.next(Instant::now())
    }

    /// Decides what follows a failure to start.
    pub fn on_start_failure(&mut self) -> Decision {
        self.next(Instant::now())
    }

    fn next(&mut self, now: Instant) -> Decision {
        let interval = caravan_structs::time::nanos(self.policy.interval);
        if now.duration_since(self.window_start) > interval {
            self.window_start = now;
            self.count = 0;
        }
        self.count += 1;
        let delay = jitter(caravan_structs::time::nanos(self.policy.delay));
        if self.count <= self.policy.attempts {
            return Decision::Restart {
                delay,
                reason: REASON_WITHIN_POLICY.into(),
            };
        }
        if self.policy.mode == RESTART_MODE_DELAY {
            // Wait out the rest of the interval, then start a new window.
            let until_end = interval.saturating_sub(now.duration_since(self.window_start));
            self.window_start = now + until_end;
            self.count = 0;
            return Decision::Restart {
                delay: until_end.max(delay),
                reason: format!(
                    "Exceeded allowed attempts {} in interval {} and mode is \"delay\"",
                    self.policy.attempts,
                    format_duration(self.policy.interval)
                ),
            };
        }
        Decision::Fail {
            reason: format!(
                "Exceeded allowed attempts {} in interval {} and mode is \"fail\"",
                self.policy.attempts,
                format_duration(self.policy.interval)
            ),
        }
    }
}

/// Nomad adds up to 25% jitter to restart delays.
fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0) as u64;
    let max = d.as_nanos() as u64 / 4;
    d + Duration::from_nanos(if max == 0 { 0 } else { nanos % max })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: i32, mode: &str) -> RestartPolicy {
        RestartPolicy {
            attempts,
            interval: 60 * caravan_structs::time::SECOND,
            delay: 0,
            mode: mode.into(),
            render_templates: false,
        }
    }

    #[test]
    fn fail_mode_gives_up_after_attempts() {
        let mut t = RestartTracker::new(policy(2, "fail"), "service");
        assert!(matches!(t.on_exit(false, false), Decision::Restart { .. }));
        assert!(matches!(t.on_start_failure(), Decision::Restart { .. }));
        match t.on_exit(false, false) {
            Decision::Fail { reason } => {
                assert_eq!(
                    reason,
                    "Exceeded allowed attempts 2 in interval 1m0s and mode is \"fail\""
                )
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn batch_success_is_done_service_success_restarts() {
        let mut b = RestartTracker::new(policy(2, "fail"), "batch");
        assert_eq!(b.on_exit(true, false), Decision::Done);
        let mut s = RestartTracker::new(policy(2, "fail"), "service");
        assert!(matches!(s.on_exit(true, false), Decision::Restart { .. }));
        assert_eq!(s.on_exit(true, true), Decision::Done);
    }

    #[test]
    fn delay_mode_keeps_restarting() {
        let mut t = RestartTracker::new(policy(0, "delay"), "service");
        match t.on_exit(false, false) {
            Decision::Restart { delay, reason } => {
                assert!(delay <= Duration::from_secs(60));
                assert!(reason.contains("delay"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
