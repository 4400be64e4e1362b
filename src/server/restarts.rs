//! The servers' side of coordinated template restarts: a client asks for a restart slot for
//! one allocation before a template change restarts its task, and gives it back once the task
//! is healthy again; the decision is the FSM's ([`crate::state::restarts`]), so every server
//! agrees on who holds the group's `update.max_parallel` slots.

use super::{Command, Server, ServerError};
use crate::state::restarts::{GroupKey, SlotCommand};
use caravan_structs::time;

/// How long a slot lasts if its client never gives it back.
const SLOT_TTL: i64 = 5 * 60 * 1_000_000_000;

impl Server {
    /// Takes (`acquire`) or gives back a restart slot for `alloc_id`'s group; whether the
    /// allocation holds one afterwards.
    pub fn restart_slot(&self, alloc_id: &str, acquire: bool) -> Result<bool, ServerError> {
        let snap = self.store.snapshot();
        let alloc = snap
            .allocs
            .get(alloc_id)
            .ok_or_else(|| ServerError::NotFound(format!("allocation {alloc_id} not found")))?;
        let job = alloc
            .job
            .clone()
            .or_else(|| snap.job(&alloc.namespace, &alloc.job_id))
            .ok_or_else(|| {
                ServerError::NotFound(format!("the job of allocation {alloc_id} is gone"))
            })?;
        let group: GroupKey = (
            alloc.namespace.clone(),
            alloc.job_id.clone(),
            alloc.task_group.clone(),
        );
        if !acquire {
            self.raft_apply(Command::RestartSlot(SlotCommand::Release {
                group,
                alloc_id: alloc_id.to_string(),
            }));
            return Ok(false);
        }
        if alloc.server_terminal() || alloc.client_terminal() {
            return Err(ServerError::BadRequest(format!(
                "allocation {alloc_id} is terminal"
            )));
        }
        let max_parallel = job
            .lookup_group(&alloc.task_group)
            .and_then(|g| g.update.clone())
            .or_else(|| job.update.clone())
            .map(|u| u.max_parallel.max(1) as u32)
            .unwrap_or(1);
        self.raft_apply(Command::RestartSlot(SlotCommand::Acquire {
            group: group.clone(),
            alloc_id: alloc_id.to_string(),
            max_parallel,
            ttl: SLOT_TTL,
        }));
        Ok(self
            .store
            .snapshot()
            .holds_restart_slot(&group, alloc_id, time::now_nanos()))
    }
}
