//! Blocked evaluations: evaluations that could not place everything, parked until capacity
//! appears (a node registers or changes, an allocation stops), then handed back to the broker.

use caravan_structs::Evaluation;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct BlockedEvals {
    /// One blocked evaluation per job, the newest.
    by_job: Mutex<HashMap<(String, String), Evaluation>>,
}

impl BlockedEvals {
    pub fn block(&self, eval: Evaluation) {
        let mut g = match self.by_job.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.insert((eval.namespace.clone(), eval.job_id.clone()), eval);
    }

    /// Removes and returns the blocked evaluation of a job (a newer evaluation superseded it).
    pub fn untrack(&self, namespace: &str, job_id: &str) -> Option<Evaluation> {
        let mut g = match self.by_job.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.remove(&(namespace.to_string(), job_id.to_string()))
    }

    /// Capacity changed: every blocked evaluation gets another chance.
    pub fn unblock_all(&self) -> Vec<Evaluation> {
        let mut g = match self.by_job.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.drain().map(|(_, e)| e).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match self.by_job.lock() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }
}
