//! The server's state store: jobs (with their versions), evaluations, allocations, nodes and
//! deployments, with secondary indexes, O(1) snapshots (persistent maps) and per-table
//! watches for blocking queries. Only the FSM writes to it.

pub mod acl;
pub mod jobops;
pub mod keyring;
pub mod partitions;
pub mod restarts;
pub mod services;
pub mod snapshot;
pub mod summary;
pub mod variables;
pub mod watch;

use caravan_structs::*;
use im::{HashMap as IMap, OrdMap, OrdSet};
use std::sync::{Arc, RwLock};
pub use watch::{Table, Watches};

type JobKey = (String, String);

/// Nomad's default for `job_tracked_versions`.
pub const DEFAULT_JOB_TRACKED_VERSIONS: usize = 6;

/// All tables at one index. Cloning is O(1): every map is persistent.
#[derive(Clone, Default)]
pub struct Tables {
    pub index: u64,
    /// ACL policies, tokens and roles.
    pub acl: acl::AclTables,
    /// Root keys by ID.
    pub root_keys: OrdMap<String, Arc<keyring::RootKey>>,
    /// Namespaces and node pools, with their built-ins.
    pub partitions: partitions::PartitionTables,
    pub table_index: IMap<&'static str, u64>,
    pub jobs: OrdMap<JobKey, Arc<Job>>,
    pub job_versions: IMap<JobKey, Vec<Arc<Job>>>,
    pub evals: OrdMap<String, Arc<Evaluation>>,
    pub allocs: OrdMap<String, Arc<Allocation>>,
    pub allocs_by_job: IMap<JobKey, OrdSet<String>>,
    pub allocs_by_node: IMap<String, OrdSet<String>>,
    pub allocs_by_eval: IMap<String, OrdSet<String>>,
    pub evals_by_job: IMap<JobKey, OrdSet<String>>,
    pub nodes: OrdMap<String, Arc<Node>>,
    pub deployments: OrdMap<String, Arc<Deployment>>,
    pub deployments_by_job: IMap<JobKey, OrdSet<String>>,
    /// How many versions of each job are kept (`job_tracked_versions`); 0 means Nomad's 6.
    pub job_tracked_versions: usize,
    /// The operator's scheduler settings, once a leader wrote them.
    pub scheduler_config: Option<Arc<SchedulerConfiguration>>,
    /// Scaling events per job, by task group, newest first (see [`jobops`]).
    pub scaling_events: IMap<JobKey, Arc<jobops::JobScalingEvents>>,
    /// Variables by (namespace, path), their items sealed (see [`variables`]).
    pub variables: variables::VariableMap,
    /// Restart slots of coordinated template restarts (see [`restarts`]).
    pub restart_slots: restarts::RestartSlots,
    /// Nomad-native service registrations by ID (see [`services`]).
    pub service_registrations: services::ServiceMap,
}

fn table_name(t: Table) -> &'static str {
    match t {
        Table::Jobs => "jobs",
        Table::Evals => "evals",
        Table::Allocs => "allocs",
        Table::Nodes => "nodes",
        Table::Deployments => "deployments",
        Table::Acl => "acl",
        Table::Keyring => "keyring",
        Table::Variables => "variables",
        Table::Namespaces => "namespaces",
        Table::NodePools => "node_pools",
        Table::Services => "service_registrations",
    }
}

impl Tables {
    pub fn table_index(&self, t: Table) -> u64 {
        self.table_index.get(table_name(t)).copied().unwrap_or(0)
    }

    pub fn max_index(&self, tables: &[Table]) -> u64 {
        tables
            .iter()
            .map(|t| self.table_index(*t))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    fn touch(&mut self, t: Table, index: u64) {
        self.table_index.insert(table_name(t), index);
    }

    pub fn job(&self, ns: &str, id: &str) -> Option<Arc<Job>> {
        self.jobs.get(&(ns.to_string(), id.to_string())).cloned()
    }

    pub fn job_versions(&self, ns: &str, id: &str) -> Vec<Arc<Job>> {
        self.job_versions
            .get(&(ns.to_string(), id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub fn job_version(&self, ns: &str, id: &str, version: u64) -> Option<Arc<Job>> {
        self.job_versions(ns, id)
            .into_iter()
            .find(|j| j.version == version)
    }

    pub fn allocs_by_job(&self, ns: &str, id: &str) -> Vec<Arc<Allocation>> {
        self.ids_to_allocs(self.allocs_by_job.get(&(ns.to_string(), id.to_string())))
    }

    pub fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>> {
        self.ids_to_allocs(self.allocs_by_node.get(node_id))
    }

    pub fn allocs_by_eval(&self, eval_id: &str) -> Vec<Arc<Allocation>> {
        self.ids_to_allocs(self.allocs_by_eval.get(eval_id))
    }

    fn ids_to_allocs(&self, ids: Option<&OrdSet<String>>) -> Vec<Arc<Allocation>> {
        ids.map(|s| {
            s.iter()
                .filter_map(|id| self.allocs.get(id).cloned())
                .collect()
        })
        .unwrap_or_default()
    }

    pub fn evals_by_job(&self, ns: &str, id: &str) -> Vec<Arc<Evaluation>> {
        self.evals_by_job
            .get(&(ns.to_string(), id.to_string()))
            .map(|s| {
                s.iter()
                    .filter_map(|id| self.evals.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn deployments_by_job(&self, ns: &str, id: &str) -> Vec<Arc<Deployment>> {
        let mut v: Vec<_> = self
            .deployments_by_job
            .get(&(ns.to_string(), id.to_string()))
            .map(|s| {
                s.iter()
                    .filter_map(|id| self.deployments.get(id).cloned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort_by_key(|d| std::cmp::Reverse(d.create_index));
        v
    }

    pub fn latest_deployment(&self, ns: &str, id: &str) -> Option<Arc<Deployment>> {
        self.deployments_by_job(ns, id).into_iter().next()
    }

    // ---- writes (called by the FSM only) ----

    pub fn upsert_job(&mut self, index: u64, mut job: Job) -> Arc<Job> {
        let key = (job.namespace.clone(), job.id.clone());
        let existing = self.jobs.get(&key).cloned();
        match &existing {
            Some(old) => {
                job.create_index = old.create_index;
                if old.spec_changed(&job) {
                    job.version = old.version + 1;
                    job.job_modify_index = index;
                    job.stable = false;
                } else {
                    job.version = old.version;
                    job.job_modify_index = old.job_modify_index;
                    job.stable = old.stable;
                }
            }
            None => {
                job.create_index = index;
                job.job_modify_index = index;
                job.version = 0;
            }
        }
        job.modify_index = index;
        if job.status.is_empty() {
            job.status = JOB_STATUS_PENDING.into();
        }
        let job = Arc::new(job);
        self.jobs.insert(key.clone(), job.clone());
        let versions = self.job_versions.entry(key).or_default();
        versions.retain(|j| j.version != job.version);
        versions.insert(0, job.clone());
        versions.truncate(match self.job_tracked_versions {
            0 => DEFAULT_JOB_TRACKED_VERSIONS,
            n => n,
        });
        self.touch(Table::Jobs, index);
        job
    }

    pub fn delete_job(&mut self, index: u64, ns: &str, id: &str) {
        let key = (ns.to_string(), id.to_string());
        self.jobs.remove(&key);
        self.job_versions.remove(&key);
        self.scaling_events.remove(&key);
        self.touch(Table::Jobs, index);
    }

    /// Recomputes a job's status from its allocations and evaluations, as Nomad's
    /// `setJobStatus` does.
    pub fn refresh_job_status(&mut self, index: u64, ns: &str, id: &str) {
        let Some(job) = self.job(ns, id) else { return };
        let status = summary::job_status(
            &job,
            &self.allocs_by_job(ns, id),
            &self.evals_by_job(ns, id),
        );
        if status != job.status {
            let mut j = (*job).clone();
            j.status = status;
            j.modify_index = index;
            let j = Arc::new(j);
            self.jobs
                .insert((ns.to_string(), id.to_string()), j.clone());
            if let Some(vs) = self.job_versions.get_mut(&(ns.to_string(), id.to_string())) {
                for v in vs.iter_mut() {
                    if v.version == j.version {
                        *v = j.clone();
                    }
                }
            }
            self.touch(Table::Jobs, index);
        }
    }

    /// Marks one version of a job stable (or not), without making a new version.
    pub fn set_job_stability(
        &mut self,
        index: u64,
        ns: &str,
        id: &str,
        version: u64,
        stable: bool,
    ) {
        let key = (ns.to_string(), id.to_string());
        if let Some(vs) = self.job_versions.get_mut(&key) {
            for v in vs.iter_mut() {
                if v.version == version && v.stable != stable {
                    let mut j = (**v).clone();
                    j.stable = stable;
                    *v = Arc::new(j);
                }
            }
        }
        if let Some(cur) = self.jobs.get(&key).cloned() {
            if cur.version == version && cur.stable != stable {
                let mut j = (*cur).clone();
                j.stable = stable;
                j.modify_index = index;
                self.jobs.insert(key, Arc::new(j));
            }
        }
        self.touch(Table::Jobs, index);
    }

    pub fn upsert_eval(&mut self, index: u64, mut eval: Evaluation) {
        match self.evals.get(&eval.id) {
            Some(old) => eval.create_index = old.create_index,
            None => eval.create_index = index,
        }
        eval.modify_index = index;
        let key = (eval.namespace.clone(), eval.job_id.clone());
        self.evals_by_job
            .entry(key)
            .or_default()
            .insert(eval.id.clone());
        self.evals.insert(eval.id.clone(), Arc::new(eval));
        self.touch(Table::Evals, index);
    }

    pub fn upsert_alloc(&mut self, index: u64, mut alloc: Allocation) {
        match self.allocs.get(&alloc.id) {
            Some(old) => {
                alloc.create_index = old.create_index;
                alloc.create_time = old.create_time;
            }
            None => {
                alloc.create_index = index;
                alloc.alloc_modify_index = index;
            }
        }
        alloc.modify_index = index;
        let key = (alloc.namespace.clone(), alloc.job_id.clone());
        self.allocs_by_job
            .entry(key)
            .or_default()
            .insert(alloc.id.clone());
        self.allocs_by_node
            .entry(alloc.node_id.clone())
            .or_default()
            .insert(alloc.id.clone());
        self.allocs_by_eval
            .entry(alloc.eval_id.clone())
            .or_default()
            .insert(alloc.id.clone());
        self.allocs.insert(alloc.id.clone(), Arc::new(alloc));
        self.touch(Table::Allocs, index);
    }

    pub fn delete_alloc(&mut self, index: u64, id: &str) {
        let Some(a) = self.allocs.remove(id) else {
            return;
        };
        let key = (a.namespace.clone(), a.job_id.clone());
        if let Some(s) = self.allocs_by_job.get_mut(&key) {
            s.remove(id);
        }
        if let Some(s) = self.allocs_by_node.get_mut(&a.node_id) {
            s.remove(id);
        }
        if let Some(s) = self.allocs_by_eval.get_mut(&a.eval_id) {
            s.remove(id);
        }
        self.touch(Table::Allocs, index);
    }

    pub fn delete_eval(&mut self, index: u64, id: &str) {
        let Some(e) = self.evals.remove(id) else {
            return;
        };
        if let Some(s) = self
            .evals_by_job
            .get_mut(&(e.namespace.clone(), e.job_id.clone()))
        {
            s.remove(id);
        }
        self.allocs_by_eval.remove(id);
        self.touch(Table::Evals, index);
    }

    pub fn delete_deployment(&mut self, index: u64, id: &str) {
        let Some(d) = self.deployments.remove(id) else {
            return;
        };
        if let Some(s) = self
            .deployments_by_job
            .get_mut(&(d.namespace.clone(), d.job_id.clone()))
        {
            s.remove(id);
        }
        self.touch(Table::Deployments, index);
    }

    pub fn delete_node(&mut self, index: u64, id: &str) {
        if self.nodes.remove(id).is_some() {
            self.allocs_by_node.remove(id);
            self.touch(Table::Nodes, index);
        }
    }

    pub fn set_scheduler_config(&mut self, index: u64, mut config: SchedulerConfiguration) {
        config.create_index = self
            .scheduler_config
            .as_ref()
            .map(|c| c.create_index)
            .unwrap_or(index);
        config.modify_index = index;
        self.scheduler_config = Some(Arc::new(config));
    }

    pub fn upsert_node(&mut self, index: u64, mut node: Node) {
        match self.nodes.get(&node.id) {
            Some(old) => node.create_index = old.create_index,
            None => node.create_index = index,
        }
        node.modify_index = index;
        self.nodes.insert(node.id.clone(), Arc::new(node));
        self.touch(Table::Nodes, index);
    }

    pub fn upsert_deployment(&mut self, index: u64, mut d: Deployment) {
        match self.deployments.get(&d.id) {
            Some(old) => d.create_index = old.create_index,
            None => d.create_index = index,
        }
        d.modify_index = index;
        let key = (d.namespace.clone(), d.job_id.clone());
        self.deployments_by_job
            .entry(key)
            .or_default()
            .insert(d.id.clone());
        self.deployments.insert(d.id.clone(), Arc::new(d));
        self.touch(Table::Deployments, index);
    }
}

/// The store: current tables behind a lock, and the watches that wake blocking queries.
#[derive(Default)]
pub struct StateStore {
    tables: RwLock<Arc<Tables>>,
    pub watches: Watches,
}

impl StateStore {
    pub fn new() -> Arc<Self> {
        Arc::new(StateStore::default())
    }

    /// A store keeping `versions` versions of each job (0: Nomad's default).
    pub fn with_tracked_versions(versions: usize) -> Arc<Self> {
        let tables = Tables {
            job_tracked_versions: versions,
            ..Default::default()
        };
        Arc::new(StateStore {
            tables: RwLock::new(Arc::new(tables)),
            watches: Watches::default(),
        })
    }

    /// A consistent, immutable view of every table.
    pub fn snapshot(&self) -> Arc<Tables> {
        match self.tables.read() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn latest_index(&self) -> u64 {
        self.snapshot().index
    }

    /// Applies `f` to a copy of the tables and publishes it at `index`. Only the FSM calls
    /// this, one write at a time.
    pub fn write<R>(&self, index: u64, f: impl FnOnce(&mut Tables) -> R) -> R {
        let mut guard = match self.tables.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let mut t: Tables = (**guard).clone();
        let before: Vec<u64> = watch::TABLES.iter().map(|x| t.table_index(*x)).collect();
        t.index = index;
        let r = f(&mut t);
        let changed: Vec<(Table, u64)> = watch::TABLES
            .iter()
            .zip(before)
            .filter(|(x, b)| t.table_index(**x) != *b)
            .map(|(x, _)| (*x, t.table_index(*x)))
            .collect();
        *guard = Arc::new(t);
        drop(guard);
        for (table, idx) in changed {
            self.watches.notify(table, idx);
        }
        r
    }

    /// Replaces every table (snapshot restore).
    pub fn restore(&self, tables: Tables) {
        let idx: Vec<(Table, u64)> = watch::TABLES
            .iter()
            .map(|x| (*x, tables.table_index(*x)))
            .collect();
        match self.tables.write() {
            Ok(mut g) => *g = Arc::new(tables),
            Err(p) => *p.into_inner() = Arc::new(tables),
        }
        for (t, i) in idx {
            self.watches.notify(t, i);
        }
    }
}

/// The scheduler reads the state through this view.
pub struct SchedSnapshot(pub Arc<Tables>);

impl caravan_scheduler::StateSnapshot for SchedSnapshot {
    fn index(&self) -> u64 {
        self.0.index
    }
    fn job(&self, namespace: &str, id: &str) -> Option<Arc<Job>> {
        self.0.job(namespace, id)
    }
    fn nodes(&self) -> Vec<Arc<Node>> {
        self.0.nodes.values().cloned().collect()
    }
    fn node(&self, id: &str) -> Option<Arc<Node>> {
        self.0.nodes.get(id).cloned()
    }
    fn allocs_by_job(&self, namespace: &str, job_id: &str) -> Vec<Arc<Allocation>> {
        self.0.allocs_by_job(namespace, job_id)
    }
    fn allocs_by_node(&self, node_id: &str) -> Vec<Arc<Allocation>> {
        self.0.allocs_by_node(node_id)
    }
    fn latest_deployment(&self, namespace: &str, job_id: &str) -> Option<Deployment> {
        self.0
            .latest_deployment(namespace, job_id)
            .map(|d| (*d).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> Job {
        let mut j = Job {
            id: id.into(),
            ..Default::default()
        };
        j.task_groups.push(TaskGroup {
            name: "g".into(),
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        j.canonicalize();
        j
    }

    #[test]
    fn versions_bump_only_on_spec_change() {
        let s = StateStore::new();
        s.write(1, |t| t.upsert_job(1, job("a")));
        s.write(2, |t| t.upsert_job(2, job("a")));
        let snap = s.snapshot();
        let j = snap.job("default", "a").unwrap();
        assert_eq!(j.version, 0);
        assert_eq!(j.job_modify_index, 1);
        let mut changed = job("a");
        changed.task_groups[0].count = 3;
        s.write(3, |t| t.upsert_job(3, changed));
        let snap2 = s.snapshot();
        let j = snap2.job("default", "a").unwrap();
        assert_eq!(j.version, 1);
        assert_eq!(j.job_modify_index, 3);
        assert_eq!(snap2.job_versions("default", "a").len(), 2);
        // The earlier snapshot is unchanged.
        assert_eq!(snap.job("default", "a").unwrap().version, 0);
    }

    #[test]
    fn alloc_indexes() {
        let s = StateStore::new();
        let a = Allocation {
            id: "a1".into(),
            job_id: "j".into(),
            node_id: "n1".into(),
            eval_id: "e1".into(),
            ..Default::default()
        };
        s.write(5, |t| t.upsert_alloc(5, a));
        let snap = s.snapshot();
        assert_eq!(snap.allocs_by_job("default", "j").len(), 1);
        assert_eq!(snap.allocs_by_node("n1").len(), 1);
        assert_eq!(snap.allocs_by_eval("e1").len(), 1);
        assert_eq!(snap.table_index(Table::Allocs), 5);
        assert_eq!(snap.allocs["a1"].create_index, 5);
    }

    #[tokio::test]
    async fn blocking_wait_wakes_on_write() {
        let s = StateStore::new();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move {
            let start = std::time::Instant::now();
            s2.watches
                .wait_any(&[Table::Nodes], 0, std::time::Duration::from_secs(10))
                .await;
            start.elapsed()
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        s.write(7, |t| {
            t.upsert_node(
                7,
                Node {
                    id: "n".into(),
                    ..Default::default()
                },
            )
        });
        let waited = waiter.await.unwrap();
        assert!(waited < std::time::Duration::from_secs(5));
    }
}
