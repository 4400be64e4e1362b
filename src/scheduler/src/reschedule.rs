//! Reschedule policy arithmetic for failed allocations: whether one may be replaced, when
//! (delay functions constant / exponential / fibonacci, capped at `max_delay`), and the
//! tracker a replacement carries.

use caravan_structs::{Allocation, RescheduleEvent, ReschedulePolicy, RescheduleTracker};

/// A failed allocation is replaced now when its reschedule time is within this window.
pub const RESCHEDULE_WINDOW: i64 = caravan_structs::time::SECOND;
/// Delayed reschedules this close together share one follow-up evaluation.
pub const BATCHED_FAILED_ALLOC_WINDOW: i64 = 5 * caravan_structs::time::SECOND;
/// How many past events an unlimited policy keeps.
pub const MAX_PAST_RESCHEDULE_EVENTS: usize = 5;

/// What to do with a failed allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Replace it in this evaluation.
    Now,
    /// Replace it at this time (Unix nanoseconds) through a follow-up evaluation.
    Later(i64),
    /// Leave it (policy exhausted or disabled, or a follow-up is already scheduled).
    No,
}

/// The time the allocation failed: the latest task `finished_at`, else its modify time.
pub fn last_event_time(alloc: &Allocation) -> i64 {
    let latest = alloc
        .task_states
        .values()
        .filter_map(|s| s.finished_at.as_deref())
        .filter_map(parse_rfc3339)
        .max();
    match latest {
        Some(t) if t > 0 => t,
        _ => alloc.modify_time,
    }
}

/// The delay before the next reschedule attempt.
pub fn next_delay(alloc: &Allocation, policy: &ReschedulePolicy) -> i64 {
    let events = alloc
        .reschedule_tracker
        .as_ref()
        .map(|t| t.events.as_slice())
        .unwrap_or(&[]);
    let Some(last) = events.last() else {
        return policy.delay;
    };
    let mut delay = match policy.delay_function.as_str() {
        "exponential" => last.delay.saturating_mul(2),
        "fibonacci" => {
            if events.len() >= 2 {
                let n1 = last.delay;
                let n2 = events[events.len() - 2].delay;
                if n2 == policy.max_delay && n1 == policy.delay {
                    n1
                } else {
                    n1.saturating_add(n2)
                }
            } else {
                policy.delay
            }
        }
        _ => return policy.delay,
    };
    if policy.max_delay > 0 && delay > policy.max_delay {
        delay = policy.max_delay;
        // Restart the series when the allocation ran long enough since the last attempt.
        if last_event_time(alloc) - last.reschedule_time > delay {
            delay = policy.delay;
        }
    }
    delay
}

/// How many attempts fall inside the policy's interval before `fail_time`.
fn attempts_in_interval(
    tracker: &RescheduleTracker,
    policy: &ReschedulePolicy,
    fail_time: i64,
) -> i32 {
    if policy.attempts <= 0 {
        return 0;
    }
    tracker
        .events
        .iter()
        .filter(|e| fail_time - e.reschedule_time < policy.interval)
        .count() as i32
}

/// When the allocation may be rescheduled, and whether the policy allows it at all.
pub fn next_reschedule_time(alloc: &Allocation, policy: &ReschedulePolicy) -> (i64, bool) {
    if policy.attempts == 0 && !policy.unlimited {
        return (0, false);
    }
    let fail_time = last_event_time(alloc);
    if fail_time == 0 {
        return (0, false);
    }
    let delay = next_delay(alloc, policy);
    let at = fail_time + delay;
    let eligible = if policy.unlimited {
        true
    } else {
        match &alloc.reschedule_tracker {
            Some(t) if !t.events.is_empty() => {
                attempts_in_interval(t, policy, fail_time) < policy.attempts
                    && delay < policy.interval
            }
            _ => policy.attempts > 0,
        }
    };
    (at, eligible)
}

/// Decides for a failed allocation (client status `failed`, desired `run`).
pub fn decide(
    alloc: &Allocation,
    policy: Option<&ReschedulePolicy>,
    now: i64,
    eval_id: &str,
) -> Decision {
    let Some(policy) = policy else {
        return Decision::No;
    };
    if alloc.desired_transition.force_reschedule == Some(true) {
        return Decision::Now;
    }
    let (at, eligible) = next_reschedule_time(alloc, policy);
    if !eligible {
        return Decision::No;
    }
    if alloc.followup_eval_id == eval_id || at - now <= RESCHEDULE_WINDOW {
        return Decision::Now;
    }
    if alloc.followup_eval_id.is_empty() {
        Decision::Later(at)
    } else {
        Decision::No
    }
}

/// The tracker a replacement of `prev` carries: recent past events plus this attempt.
pub fn tracker_for_replacement(
    prev: &Allocation,
    policy: Option<&ReschedulePolicy>,
    now: i64,
) -> RescheduleTracker {
    let mut events = Vec::new();
    let delay = policy.map(|p| next_delay(prev, p)).unwrap_or(0);
    if let (Some(t), Some(p)) = (&prev.reschedule_tracker, policy) {
        if p.attempts > 0 {
            events.extend(
                t.events
                    .iter()
                    .filter(|e| p.interval > 0 && now - e.reschedule_time <= p.interval)
                    .cloned(),
            );
        } else {
            let start = t.events.len().saturating_sub(MAX_PAST_RESCHEDULE_EVENTS);
            events.extend(t.events[start..].iter().cloned());
        }
    }
    events.push(RescheduleEvent {
        reschedule_time: now,
        prev_alloc_id: prev.id.clone(),
        prev_node_id: prev.node_id.clone(),
        delay,
    });
    RescheduleTracker { events }
}

/// Parses an RFC 3339 timestamp to Unix nanoseconds (Go's zero time gives a negative value,
/// which callers treat as unset). `None` when malformed.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't' && b[10] != b' ')
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut frac_ns = 0i64;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(|c| c.is_ascii_digit()).count();
        let f = &r[..digits];
        let mut padded = f.chars().take(9).collect::<String>();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac_ns = padded.parse().ok()?;
        rest = &r[digits..];
    }
    let offset_s = if rest == "Z" || rest == "z" {
        0
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let oh: i64 = rest.get(1..3)?.parse().ok()?;
        let om: i64 = rest.get(4..6)?.parse().ok()?;
        sign * (oh * 3600 + om * 60)
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset_s;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(frac_ns))
}

/// Days since 1970-01-01 for a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;
    use caravan_structs::time::{MINUTE, SECOND};

    fn policy(func: &str) -> ReschedulePolicy {
        ReschedulePolicy {
            attempts: 0,
            interval: 0,
            delay: 5 * SECOND,
            delay_function: func.into(),
            max_delay: MINUTE,
            unlimited: true,
        }
    }

    fn with_delays(delays: &[i64]) -> Allocation {
        Allocation {
            modify_time: 1000 * SECOND,
            reschedule_tracker: Some(RescheduleTracker {
                events: delays
                    .iter()
                    .map(|d| RescheduleEvent {
                        reschedule_time: 999 * SECOND,
                        delay: *d,
                        ..Default::default()
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn delay_functions() {
        let a = with_delays(&[5 * SECOND, 10 * SECOND]);
        assert_eq!(next_delay(&a, &policy("constant")), 5 * SECOND);
        assert_eq!(next_delay(&a, &policy("exponential")), 20 * SECOND);
        assert_eq!(next_delay(&a, &policy("fibonacci")), 15 * SECOND);
        let capped = with_delays(&[40 * SECOND]);
        assert_eq!(next_delay(&capped, &policy("exponential")), MINUTE);
        assert_eq!(
            next_delay(&Allocation::default(), &policy("exponential")),
            5 * SECOND
        );
    }

    #[test]
    fn attempts_within_interval() {
        let p = ReschedulePolicy {
            attempts: 1,
            interval: 10 * MINUTE,
            delay: 5 * SECOND,
            delay_function: "constant".into(),
            max_delay: 0,
            unlimited: false,
        };
        let fresh = Allocation {
            modify_time: 1000 * SECOND,
            ..Default::default()
        };
        assert_eq!(next_reschedule_time(&fresh, &p), (1005 * SECOND, true));
        let used = with_delays(&[5 * SECOND]);
        assert!(!next_reschedule_time(&used, &p).1);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01Z"), Some(SECOND));
        assert_eq!(
            parse_rfc3339("2024-03-01T12:00:00.5+01:00"),
            Some(1709290800 * SECOND + 500_000_000)
        );
        assert!(parse_rfc3339("0001-01-01T00:00:00Z").unwrap() < 0);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
