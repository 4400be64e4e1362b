//! Client heartbeats: each node gets a TTL; a node that misses it (plus grace) is marked down,
//! its allocations lost, and its jobs re-evaluated.

use super::command::Command;
use super::Server;
use caravan_structs::*;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Heartbeats {
    deadlines: Mutex<HashMap<String, Instant>>,
}

impl Heartbeats {
    /// Records a heartbeat and returns the TTL the client must beat within.
    pub fn beat(&self, server: &Server, node_id: &str) -> Duration {
        let mut g = match self.deadlines.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        // Nomad scales the TTL with cluster size so heartbeats stay under a rate limit
        // (50/s), and never below the minimum.
        let n = g.len().max(1) as f64;
        let scaled = Duration::from_secs_f64(n / 50.0);
        let ttl = scaled.max(server.config.min_heartbeat_ttl);
        g.insert(
            node_id.to_string(),
            Instant::now() + ttl + server.config.heartbeat_grace,
        );
        ttl
    }

    fn expired(&self) -> Vec<String> {
        let mut g = match self.deadlines.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        let gone: Vec<String> = g
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            g.remove(k);
        }
        gone
    }
}

pub async fn run(server: Arc<Server>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        for node_id in server.heartbeats.expired() {
            tracing::warn!(node = %node_id, "node missed its heartbeat; marking it down");
            let evals = node_evals(&server, &node_id);
            server.raft_apply(Command::NodeStatusUpdate {
                node_id,
                status: NODE_STATUS_DOWN.into(),
                updated_at: time::now_nanos() / 1_000_000_000,
                evals,
            });
        }
    }
}

/// One node-update evaluation for each job with allocations on the node.
pub fn node_evals(server: &Server, node_id: &str) -> Vec<Evaluation> {
    let snap = server.store.snapshot();
    let jobs: BTreeSet<(String, String)> = snap
        .allocs_by_node(node_id)
        .iter()
        .filter(|a| !a.terminal())
        .map(|a| (a.namespace.clone(), a.job_id.clone()))
        .collect();
    jobs.into_iter()
        .filter_map(|(ns, id)| snap.job(&ns, &id))
        .map(|job| {
            let mut e = Evaluation::for_job(&job, TRIGGER_NODE_UPDATE);
            e.node_id = node_id.to_string();
            e
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ServerConfig;

    #[tokio::test]
    async fn missed_heartbeats_mark_the_node_down_and_its_allocs_lost() {
        let s = Server::new(ServerConfig {
            min_heartbeat_ttl: Duration::from_millis(100),
            heartbeat_grace: Duration::from_millis(100),
            ..Default::default()
        });
        s.start();
        let mut n = Node {
            id: new_id(),
            name: "n".into(),
            ..Default::default()
        };
        n.node_resources.cpu.cpu_shares = 4000;
        n.node_resources.memory.memory_mb = 4096;
        n.node_resources.disk.disk_mb = 10_000;
        n.drivers.insert(
            "raw_exec".into(),
            DriverInfo {
                detected: true,
                healthy: true,
                ..Default::default()
            },
        );
        let ttl = s.node_register(n.clone()).unwrap();
        assert_eq!(ttl, Duration::from_millis(100));
        let mut job = Job {
            id: "web".into(),
            ..Default::default()
        };
        job.task_groups.push(TaskGroup {
            name: "g".into(),
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        s.job_register(job, None).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lost = false;
        while Instant::now() < deadline {
            let snap = s.store.snapshot();
            let allocs = snap.allocs_by_node(&n.id);
            if snap.nodes[&n.id].status == NODE_STATUS_DOWN
                && !allocs.is_empty()
                && allocs.iter().all(|a| a.client_status == ALLOC_CLIENT_LOST)
            {
                lost = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(lost, "node was not marked down with its allocs lost");
        // The replacement has nowhere to go: its evaluation is blocked until capacity returns.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!s.blocked.is_empty());
        // The node comes back: a heartbeat marks it ready again.
        s.node_update_status(&n.id, NODE_STATUS_READY).unwrap();
        assert_eq!(s.store.snapshot().nodes[&n.id].status, NODE_STATUS_READY);
    }
}
