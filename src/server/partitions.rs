//! Namespaces and node pools on the server: their writes (one log command, [`PartitionOp`]),
//! the checks Nomad makes before each (names, built-ins, what still uses a namespace or pool),
//! the admission check every job passes (its namespace and pool exist, the namespace allows
//! its drivers and network modes), and the scheduler settings a pool overrides.

use super::command::Command;
use super::endpoints::format_multi;
use super::{Server, ServerError};
use crate::state::Tables;
use caravan_scheduler::{Algorithm, SchedulerConfig};
use caravan_structs::*;
use serde::{Deserialize, Serialize};

/// The namespace and node pool writes, carried by [`Command::Partition`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "Op")]
pub enum PartitionOp {
    UpsertNamespaces { namespaces: Vec<Namespace> },
    DeleteNamespaces { names: Vec<String> },
    UpsertNodePools { pools: Vec<NodePool> },
    DeleteNodePools { names: Vec<String> },
}

/// Applies one op to the tables (the FSM's arm for [`Command::Partition`]).
pub fn apply(t: &mut Tables, index: u64, op: &PartitionOp) {
    match op {
        PartitionOp::UpsertNamespaces { namespaces } => {
            for ns in namespaces {
                t.upsert_namespace(index, ns.clone());
            }
        }
        PartitionOp::DeleteNamespaces { names } => t.delete_namespaces(index, names),
        PartitionOp::UpsertNodePools { pools } => t.upsert_node_pools(index, pools),
        PartitionOp::DeleteNodePools { names } => t.delete_node_pools(index, names),
    }
}

/// Nomad's job admission checks for namespaces and node pools (`namespace-constraint-check`
/// and `node-pool-validation`): every problem, in Nomad's words.
pub fn admit_job(t: &Tables, job: &Job) -> Result<(), ServerError> {
    let mut errs = Vec::new();
    match t.namespace(&job.namespace) {
        None => errs.push(format!(
            "job {:?} is in nonexistent namespace {:?}",
            job.id, job.namespace
        )),
        Some(ns) => {
            let drivers: Vec<&str> = job
                .task_groups
                .iter()
                .flat_map(|g| &g.tasks)
                .filter(|task| !ns.allows_driver(&task.driver))
                .map(|task| task.driver.as_str())
                .collect();
            match drivers.as_slice() {
                [] => {}
                [one] => errs.push(format!(
                    "used task driver {one:?} is not allowed in namespace {:?}",
                    ns.name
                )),
                many => errs.push(format!(
                    "used task drivers {} are not allowed in namespace {:?}",
                    go_list(many),
                    ns.name
                )),
            }
            let modes: Vec<String> = job
                .task_groups
                .iter()
                .flat_map(|g| &g.networks)
                .map(|n| {
                    if n.mode.is_empty() {
                        "host".to_string()
                    } else {
                        n.mode.clone()
                    }
                })
                .filter(|m| !ns.allows_network_mode(m))
                .collect();
            match modes.as_slice() {
                [] => {}
                [one] => errs.push(format!(
                    "used group network mode {one:?} is not allowed in namespace {:?}",
                    ns.name
                )),
                many => errs.push(format!(
                    "used group network modes {} are not allowed in namespace {:?}",
                    go_list(many),
                    ns.name
                )),
            }
        }
    }
    if t.node_pool(&job.node_pool).is_none() {
        errs.push(format!(
            "job {:?} is in nonexistent node pool {:?}",
            job.id, job.node_pool
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format_multi(&errs)))
    }
}

/// A registering node's pool: `default` when it names none; an invalid name, or `all` (which
/// no node may join), is refused.
pub fn node_pool_of_registering(node: &mut Node) -> Result<(), ServerError> {
    if node.node_pool.is_empty() {
        node.node_pool = DEFAULT_NODE_POOL.into();
    }
    validate_node_pool_name(&node.node_pool)
        .map_err(|e| ServerError::BadRequest(format!("invalid node pool: {e}")))?;
    if node.node_pool == NODE_POOL_ALL {
        return Err(ServerError::BadRequest(format!(
            "invalid node pool: node is not allowed to register in node pool {NODE_POOL_ALL:?}"
        )));
    }
    Ok(())
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn go_list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{:?}", s.as_ref())).collect();
    format!("[{}]", quoted.join(" "))
}

impl Server {
    /// `PUT /v1/namespace/:name`: creates or updates a namespace (`default` too).
    pub fn namespace_upsert(&self, mut ns: Namespace) -> Result<u64, ServerError> {
        if let Err(errs) = ns.validate() {
            return Err(ServerError::BadRequest(format!(
                "Invalid namespace {:?}: {}",
                ns.name,
                format_multi(&errs)
            )));
        }
        if !ns.quota.is_empty() {
            return Err(ServerError::BadRequest(format!(
                "namespace {:?} using non-existent quota {:?}",
                ns.name, ns.quota
            )));
        }
        ns.create_index = 0;
        ns.modify_index = 0;
        Ok(self.raft_apply(Command::Partition {
            op: PartitionOp::UpsertNamespaces {
                namespaces: vec![ns],
            },
        }))
    }

    /// `DELETE /v1/namespace/:name`: refused for `default` and while the namespace still has
    /// live jobs or allocations.
    pub fn namespace_delete(&self, name: &str) -> Result<u64, ServerError> {
        if name == DEFAULT_NAMESPACE {
            return Err(ServerError::BadRequest(
                "can not delete default namespace".into(),
            ));
        }
        let snap = self.store.snapshot();
        if snap.namespace(name).is_none() {
            return Err(ServerError::NotFound("namespace not found".into()));
        }
        let why = snap.namespace_in_use(name, &self.config.region);
        if !why.is_empty() {
            return Err(ServerError::BadRequest(format_multi(&why)));
        }
        Ok(self.raft_apply(Command::Partition {
            op: PartitionOp::DeleteNamespaces {
                names: vec![name.to_string()],
            },
        }))
    }

    /// `PUT /v1/node/pool/:name`: creates or updates a pool; the built-ins cannot change.
    pub fn node_pool_upsert(&self, mut pool: NodePool) -> Result<u64, ServerError> {
        pool.canonicalize();
        if let Err(errs) = pool.validate() {
            return Err(ServerError::BadRequest(format!(
                "invalid node pool {:?}: {}",
                pool.name,
                format_multi(&errs)
            )));
        }
        if NodePool::is_builtin_name(&pool.name) {
            return Err(ServerError::BadRequest(format!(
                "modifying node pool {:?} is not allowed",
                pool.name
            )));
        }
        pool.create_index = 0;
        pool.modify_index = 0;
        Ok(self.raft_apply(Command::Partition {
            op: PartitionOp::UpsertNodePools { pools: vec![pool] },
        }))
    }

    /// `DELETE /v1/node/pool/:name`: refused for the built-ins and while nodes or live jobs
    /// are in the pool.
    pub fn node_pool_delete(&self, name: &str) -> Result<u64, ServerError> {
        if name.is_empty() {
            return Err(ServerError::BadRequest("node pool name is empty".into()));
        }
        if NodePool::is_builtin_name(name) {
            return Err(ServerError::BadRequest(format!(
                "deleting node pool {name:?} is not allowed"
            )));
        }
        let snap = self.store.snapshot();
        if snap.node_pool(name).is_none() {
            return Err(ServerError::NotFound(format!("node pool {name} not found")));
        }
        let why = snap.node_pool_in_use(name, &self.config.region);
        if !why.is_empty() {
            return Err(ServerError::BadRequest(format_multi(&why)));
        }
        Ok(self.raft_apply(Command::Partition {
            op: PartitionOp::DeleteNodePools {
                names: vec![name.to_string()],
            },
        }))
    }

    /// The scheduler settings for jobs in `pool`: the cluster's, with what the pool's
    /// `scheduler_config` overrides.
    pub fn scheduler_settings_for_pool(&self, pool: &str) -> SchedulerConfig {
        let mut cfg = self.scheduler_settings();
        let Some(sc) = self
            .store
            .snapshot()
            .node_pool(pool)
            .and_then(|p| p.scheduler_configuration.clone())
        else {
            return cfg;
        };
        match sc.scheduler_algorithm.as_str() {
            SCHEDULER_ALGORITHM_SPREAD => cfg.algorithm = Algorithm::Spread,
            "binpack" => cfg.algorithm = Algorithm::Binpack,
            _ => {}
        }
        if let Some(m) = sc.memory_oversubscription_enabled {
            cfg.memory_oversubscription = m;
        }
        cfg
    }

    /// The scheduler settings for an evaluation: those of its job's pool.
    pub fn scheduler_settings_for_eval(&self, eval: &Evaluation) -> SchedulerConfig {
        let pool = self
            .store
            .snapshot()
            .job(&eval.namespace, &eval.job_id)
            .map(|j| j.node_pool.clone())
            .unwrap_or_default();
        self.scheduler_settings_for_pool(&pool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(ns: &str, pool: &str, drivers: &[&str]) -> Job {
        let mut j = Job {
            id: "web".into(),
            namespace: ns.into(),
            node_pool: pool.into(),
            ..Default::default()
        };
        j.task_groups.push(TaskGroup {
            name: "g".into(),
            tasks: drivers
                .iter()
                .map(|d| Task {
                    name: format!("t-{d}"),
                    driver: d.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
        j
    }

    #[test]
    fn admission_names_missing_namespaces_pools_and_refused_drivers() {
        let mut t = Tables::default();
        assert!(admit_job(&t, &job("default", "default", &["raw_exec"])).is_ok());
        let Err(ServerError::BadRequest(msg)) = admit_job(&t, &job("prod", "gpu", &["exec"]))
        else {
            panic!("admitted")
        };
        assert!(
            msg.contains("job \"web\" is in nonexistent namespace \"prod\""),
            "{msg}"
        );
        assert!(
            msg.contains("job \"web\" is in nonexistent node pool \"gpu\""),
            "{msg}"
        );
        t.upsert_namespace(
            2,
            Namespace {
                name: "prod".into(),
                capabilities: Some(NamespaceCapabilities {
                    disabled_task_drivers: vec!["raw_exec".into(), "exec".into()],
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        let Err(ServerError::BadRequest(msg)) =
            admit_job(&t, &job("prod", "all", &["raw_exec", "exec", "docker"]))
        else {
            panic!("admitted")
        };
        assert!(
            msg.contains(
                "used task drivers [\"raw_exec\" \"exec\"] are not allowed in namespace \"prod\""
            ),
            "{msg}"
        );
        assert!(admit_job(&t, &job("prod", "all", &["docker"])).is_ok());
    }

    #[test]
    fn a_pools_scheduler_settings_override_the_clusters() {
        let server = Server::new(super::super::ServerConfig::default());
        server
            .node_pool_upsert(NodePool {
                name: "gpu".into(),
                scheduler_configuration: Some(NodePoolSchedulerConfiguration {
                    scheduler_algorithm: "spread".into(),
                    memory_oversubscription_enabled: Some(true),
                }),
                ..Default::default()
            })
            .unwrap();
        let cluster = server.scheduler_settings();
        assert_eq!(cluster.algorithm, Algorithm::Binpack);
        assert!(!cluster.memory_oversubscription);
        let gpu = server.scheduler_settings_for_pool("gpu");
        assert_eq!(gpu.algorithm, Algorithm::Spread);
        assert!(gpu.memory_oversubscription);
        let default = server.scheduler_settings_for_pool("default");
        assert_eq!(default.algorithm, Algorithm::Binpack);
        // A job's evaluation takes its pool's.
        let job = Job {
            id: "train".into(),
            node_pool: "gpu".into(),
            ..Default::default()
        };
        server.raft_apply(Command::JobRegister {
            job: job.clone(),
            eval: None,
        });
        let eval = Evaluation::for_job(&job, TRIGGER_JOB_REGISTER);
        assert_eq!(
            server.scheduler_settings_for_eval(&eval).algorithm,
            Algorithm::Spread
        );
    }

    #[test]
    fn ops_round_trip_through_the_log_format() {
        let cmd = Command::Partition {
            op: PartitionOp::DeleteNodePools {
                names: vec!["gpu".into()],
            },
        };
        let entry = super::super::command::LogEntry::new(cmd);
        let back = super::super::command::LogEntry::decode(&entry.encode()).unwrap();
        assert!(matches!(
            back.command,
            Command::Partition { op: PartitionOp::DeleteNodePools { ref names } } if names == &["gpu".to_string()]
        ));
    }
}
