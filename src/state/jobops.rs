//! State for job operations: the scaling events recorded per job and task group, the scale
//! status `GET /v1/job/:id/scale` serves, and the children summary of a parameterized (or
//! periodic) parent job.

use super::summary::JobChildrenSummary;
use super::{Table, Tables};
use caravan_structs::*;
use std::collections::BTreeMap;
use std::sync::Arc;

/// One job's scaling events, by task group, newest first (Nomad's `JobScalingEvents`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobScalingEvents {
    pub events: BTreeMap<String, Vec<ScalingEvent>>,
    pub modify_index: u64,
}

impl Tables {
    /// Records a scaling event for a group, keeping the newest [`JOB_TRACKED_SCALING_EVENTS`].
    pub fn add_scaling_event(
        &mut self,
        index: u64,
        ns: &str,
        job_id: &str,
        group: &str,
        mut event: ScalingEvent,
    ) {
        let key = (ns.to_string(), job_id.to_string());
        let mut all = self
            .scaling_events
            .get(&key)
            .map(|e| (**e).clone())
            .unwrap_or_default();
        event.create_index = index;
        let list = all.events.entry(group.to_string()).or_default();
        list.insert(0, event);
        list.truncate(JOB_TRACKED_SCALING_EVENTS);
        all.modify_index = index;
        self.scaling_events.insert(key, Arc::new(all));
        // Scale status readers block on the jobs table.
        self.touch(Table::Jobs, index);
    }

    /// `GET /v1/job/:id/scale`: desired counts, live allocations and events per group
    /// (Nomad's `Job.ScaleStatus`; canaries are left out as there).
    pub fn job_scale_status(&self, ns: &str, job_id: &str) -> Option<JobScaleStatus> {
        let job = self.job(ns, job_id)?;
        let events = self
            .scaling_events
            .get(&(ns.to_string(), job_id.to_string()))
            .cloned()
            .unwrap_or_default();
        let mut groups: BTreeMap<String, TaskGroupScaleStatus> = job
            .task_groups
            .iter()
            .map(|tg| {
                (
                    tg.name.clone(),
                    TaskGroupScaleStatus {
                        desired: i64::from(tg.count),
                        events: events.events.get(&tg.name).cloned().unwrap_or_default(),
                        ..Default::default()
                    },
                )
            })
            .collect();
        for a in self.allocs_by_job(ns, job_id) {
            if a.terminal() || a.deployment_status.as_ref().is_some_and(|d| d.canary) {
                continue;
            }
            let Some(g) = groups.get_mut(&a.task_group) else {
                continue;
            };
            g.placed += 1;
            if a.client_status == ALLOC_CLIENT_RUNNING {
                g.running += 1;
            }
            match a.deployment_status.as_ref().and_then(|d| d.healthy) {
                Some(true) => g.healthy += 1,
                Some(false) => g.unhealthy += 1,
                None => {}
            }
        }
        Some(JobScaleStatus {
            job_id: job.id.clone(),
            namespace: job.namespace.clone(),
            job_create_index: job.create_index,
            job_modify_index: job.modify_index,
            job_stopped: job.stop,
            task_groups: groups,
        })
    }

    /// The children of a parameterized or periodic job, counted by status (Nomad's
    /// `JobChildrenSummary`). Children's IDs start with the parent's and `/`, so this reads
    /// one range of the jobs table.
    pub fn children_summary(&self, ns: &str, parent_id: &str) -> JobChildrenSummary {
        let mut out = JobChildrenSummary::default();
        let from = (ns.to_string(), format!("{parent_id}/"));
        for ((kns, kid), child) in self.jobs.range(from..) {
            if kns != ns || !kid.starts_with(parent_id) || !kid[parent_id.len()..].starts_with('/')
            {
                break;
            }
            if child.parent_id != parent_id {
                continue;
            }
            match child.status.as_str() {
                JOB_STATUS_RUNNING => out.running += 1,
                JOB_STATUS_DEAD => out.dead += 1,
                _ => out.pending += 1,
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateStore;

    fn job(id: &str, parent: &str, status: &str) -> Job {
        Job {
            id: id.into(),
            parent_id: parent.into(),
            status: status.into(),
            task_groups: vec![TaskGroup {
                name: "g".into(),
                count: 2,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn children_are_counted_from_one_range() {
        let s = StateStore::new();
        s.write(1, |t| {
            t.upsert_job(1, job("p", "", ""));
            t.upsert_job(1, job("p/dispatch-1-aaaaaaaa", "p", JOB_STATUS_RUNNING));
            t.upsert_job(1, job("p/dispatch-2-bbbbbbbb", "p", JOB_STATUS_DEAD));
            t.upsert_job(1, job("p/dispatch-3-cccccccc", "p", ""));
            // Neither is a child of "p".
            t.upsert_job(1, job("p2/dispatch-1-dddddddd", "p2", JOB_STATUS_RUNNING));
            t.upsert_job(1, job("p/other", "", JOB_STATUS_RUNNING));
        });
        let c = s.snapshot().children_summary("default", "p");
        assert_eq!((c.pending, c.running, c.dead), (1, 1, 1));
        assert_eq!(s.snapshot().children_summary("other-ns", "p").running, 0);
    }

    #[test]
    fn scaling_events_are_kept_newest_first_and_capped() {
        let s = StateStore::new();
        s.write(1, |t| t.upsert_job(1, job("j", "", "")));
        for i in 0..25u64 {
            s.write(2 + i, |t| {
                t.add_scaling_event(
                    2 + i,
                    "default",
                    "j",
                    "g",
                    ScalingEvent {
                        count: Some(i as i64),
                        ..Default::default()
                    },
                )
            });
        }
        let st = s.snapshot().job_scale_status("default", "j").unwrap();
        let ev = &st.task_groups["g"].events;
        assert_eq!(ev.len(), JOB_TRACKED_SCALING_EVENTS);
        assert_eq!(ev[0].count, Some(24));
        assert_eq!(ev[0].create_index, 26);
        assert_eq!(st.task_groups["g"].desired, 2);
        s.write(30, |t| t.delete_job(30, "default", "j"));
        assert!(s.snapshot().scaling_events.is_empty());
    }
}
