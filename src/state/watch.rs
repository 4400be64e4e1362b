//! Per-table change notification for blocking queries: each table has a watch channel that
//! carries its latest modify index, so a query waits for a change instead of polling.

use std::time::Duration;
use tokio::sync::watch;

/// The tables a blocking query can wait on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    Jobs,
    Evals,
    Allocs,
    Nodes,
    Deployments,
    /// ACL policies, tokens and roles.
    Acl,
    /// Root keys (Variables encryption, workload identity signing).
    Keyring,
    /// Variables.
    Variables,
    Namespaces,
    NodePools,
    /// Nomad-native service registrations.
    Services,
}

pub const TABLES: [Table; 11] = [
    Table::Jobs,
    Table::Evals,
    Table::Allocs,
    Table::Nodes,
    Table::Deployments,
    Table::Acl,
    Table::Keyring,
    Table::Variables,
    Table::Namespaces,
    Table::NodePools,
    Table::Services,
];

/// One watch channel per table.
pub struct Watches {
    senders: Vec<watch::Sender<u64>>,
}

impl Default for Watches {
    fn default() -> Self {
        Watches {
            senders: TABLES.iter().map(|_| watch::channel(0).0).collect(),
        }
    }
}

fn slot(t: Table) -> usize {
    TABLES.iter().position(|x| *x == t).unwrap_or(0)
}

impl Watches {
    pub fn notify(&self, table: Table, index: u64) {
        self.senders[slot(table)].send_replace(index);
    }

    pub fn subscribe(&self, table: Table) -> watch::Receiver<u64> {
        self.senders[slot(table)].subscribe()
    }

    /// Waits until any of `tables` passes `min_index`, or `wait` elapses. Returns at once when
    /// one already has.
    pub async fn wait_any(&self, tables: &[Table], min_index: u64, wait: Duration) {
        let mut rxs: Vec<_> = tables.iter().map(|t| self.subscribe(*t)).collect();
        if rxs.iter().any(|r| *r.borrow() > min_index) {
            return;
        }
        let changed = async {
            loop {
                let futs: Vec<_> = rxs.iter_mut().map(|r| Box::pin(r.changed())).collect();
                let _ = futures_util::future::select_all(futs).await;
                if rxs.iter().any(|r| *r.borrow() > min_index) {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(wait, changed).await;
    }
}
