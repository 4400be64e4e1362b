//! Restart slots for coordinated template restarts (client `template { coordinated_restarts
//! = true }`, beyond Nomad): before a template change restarts its task, the client takes a
//! slot for the allocation's job and group; at most the group's `update.max_parallel`
//! allocations hold one at a time, so a change rolls through the group instead of restarting
//! every allocation at once. Slots live in replicated state (decided in the FSM, with the
//! entry's time), are released once the restarted task has been healthy for
//! `update.min_healthy_time`, and expire on their own should a client never release one.

use super::Tables;
use im::OrdMap;
use serde::{Deserialize, Serialize};

/// (namespace, job, group).
pub type GroupKey = (String, String, String);

/// Holders of each group's slots: allocation ID → when the slot expires (Unix nanoseconds).
pub type RestartSlots = OrdMap<GroupKey, OrdMap<String, i64>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SlotCommand {
    /// Takes a slot for `alloc_id` if fewer than `max_parallel` unexpired slots are held (or
    /// renews the one it holds), for `ttl` nanoseconds.
    Acquire {
        group: GroupKey,
        alloc_id: String,
        max_parallel: u32,
        ttl: i64,
    },
    Release {
        group: GroupKey,
        alloc_id: String,
    },
}

pub fn apply(t: &mut Tables, now: i64, cmd: &SlotCommand) {
    match cmd {
        SlotCommand::Acquire {
            group,
            alloc_id,
            max_parallel,
            ttl,
        } => {
            let mut holders: OrdMap<String, i64> = t
                .restart_slots
                .get(group)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, exp)| *exp > now)
                .collect();
            if holders.contains_key(alloc_id) || holders.len() < (*max_parallel).max(1) as usize {
                holders.insert(alloc_id.clone(), now.saturating_add(*ttl));
            }
            t.restart_slots.insert(group.clone(), holders);
        }
        SlotCommand::Release { group, alloc_id } => {
            if let Some(h) = t.restart_slots.get(group).cloned() {
                let h = h.without(alloc_id);
                if h.is_empty() {
                    t.restart_slots.remove(group);
                } else {
                    t.restart_slots.insert(group.clone(), h);
                }
            }
        }
    }
}

impl Tables {
    /// Whether `alloc_id` holds an unexpired restart slot of `group` at `now`.
    pub fn holds_restart_slot(&self, group: &GroupKey, alloc_id: &str, now: i64) -> bool {
        self.restart_slots
            .get(group)
            .and_then(|h| h.get(alloc_id))
            .is_some_and(|exp| *exp > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(t: &mut Tables, now: i64, alloc: &str, max: u32) -> bool {
        let group: GroupKey = ("default".into(), "web".into(), "g".into());
        apply(
            t,
            now,
            &SlotCommand::Acquire {
                group: group.clone(),
                alloc_id: alloc.into(),
                max_parallel: max,
                ttl: 100,
            },
        );
        t.holds_restart_slot(&group, alloc, now)
    }

    #[test]
    fn at_most_max_parallel_hold_a_slot_until_release_or_expiry() {
        let mut t = Tables::default();
        let group: GroupKey = ("default".into(), "web".into(), "g".into());
        assert!(acquire(&mut t, 0, "a", 1));
        assert!(!acquire(&mut t, 1, "b", 1), "the slot is taken");
        assert!(acquire(&mut t, 2, "a", 1), "the holder renews");
        apply(
            &mut t,
            3,
            &SlotCommand::Release {
                group: group.clone(),
                alloc_id: "a".into(),
            },
        );
        assert!(acquire(&mut t, 4, "b", 1));
        // Two in parallel when the group allows it.
        assert!(acquire(&mut t, 5, "c", 2));
        assert!(!acquire(&mut t, 6, "d", 2));
        // An unreleased slot expires (a client that died holding it).
        assert!(acquire(&mut t, 500, "d", 2));
        // max_parallel 0 still lets one through.
        let mut t = Tables::default();
        assert!(acquire(&mut t, 0, "a", 0));
        assert!(!acquire(&mut t, 0, "b", 0));
    }
}
