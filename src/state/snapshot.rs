//! The state store's serialisable image: every object of every table, and the secondary
//! indexes as they are (not rebuilt: a GC'd node or eval leaves its indexes exactly as the
//! FSM left them, and a restored state must answer the same). Raft snapshots and
//! `operator snapshot save` write this; restore and snapshot install read it back.
//!
//! [`StateImage::from_tables`] names every field of [`Tables`] with no `..`, so a table added
//! later fails to compile here until it is carried in the image.

use super::jobops::JobScalingEvents;
use super::keyring::RootKey;
use super::variables::VariableEncrypted;
use super::watch::TABLES;
use super::{table_name, Tables};
use caravan_structs::*;
use im::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

type JobKey = (String, String);

/// One job's scaling events (the serialisable twin of [`JobScalingEvents`]).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingEventsImage {
    pub events: BTreeMap<String, Vec<ScalingEvent>>,
    pub modify_index: u64,
}

/// Every table at one index. Maps keyed by tuples are written as lists of pairs (JSON object
/// keys must be strings).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct StateImage {
    pub index: u64,
    pub table_index: BTreeMap<String, u64>,
    pub acl_policies: Vec<Arc<AclPolicy>>,
    pub acl_tokens: Vec<Arc<AclToken>>,
    pub acl_roles: Vec<Arc<AclRole>>,
    pub acl_bootstrap_index: u64,
    pub root_keys: Vec<Arc<RootKey>>,
    pub namespaces: Vec<Arc<Namespace>>,
    pub node_pools: Vec<Arc<NodePool>>,
    pub jobs: Vec<Arc<Job>>,
    pub job_versions: Vec<(JobKey, Vec<Arc<Job>>)>,
    pub evals: Vec<Arc<Evaluation>>,
    pub allocs: Vec<Arc<Allocation>>,
    pub allocs_by_job: Vec<(JobKey, Vec<String>)>,
    pub allocs_by_node: Vec<(String, Vec<String>)>,
    pub allocs_by_eval: Vec<(String, Vec<String>)>,
    pub evals_by_job: Vec<(JobKey, Vec<String>)>,
    pub nodes: Vec<Arc<Node>>,
    pub deployments: Vec<Arc<Deployment>>,
    pub deployments_by_job: Vec<(JobKey, Vec<String>)>,
    pub scheduler_config: Option<Arc<SchedulerConfiguration>>,
    pub scaling_events: Vec<(JobKey, ScalingEventsImage)>,
    pub variables: Vec<Arc<VariableEncrypted>>,
    /// Absent from images written before coordinated restarts existed.
    #[serde(default)]
    pub restart_slots: Vec<(super::restarts::GroupKey, Vec<(String, i64)>)>,
    /// Absent from images written before the Nomad-native service catalog existed.
    #[serde(default)]
    pub service_registrations: Vec<Arc<super::services::ServiceRegistration>>,
}

fn sets<K: Clone + Ord + std::hash::Hash>(
    m: &im::HashMap<K, OrdSet<String>>,
) -> Vec<(K, Vec<String>)> {
    let mut v: Vec<(K, Vec<String>)> = m
        .iter()
        .map(|(k, s)| (k.clone(), s.iter().cloned().collect()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn unsets<K: Clone + Eq + std::hash::Hash>(
    v: Vec<(K, Vec<String>)>,
) -> im::HashMap<K, OrdSet<String>> {
    v.into_iter()
        .map(|(k, s)| (k, s.into_iter().collect()))
        .collect()
}

fn values<K: Ord + Clone, V: Clone>(m: &OrdMap<K, V>) -> Vec<V> {
    m.values().cloned().collect()
}

impl StateImage {
    pub fn from_tables(t: &Tables) -> StateImage {
        let Tables {
            index,
            acl,
            root_keys,
            partitions,
            table_index,
            jobs,
            job_versions,
            evals,
            allocs,
            allocs_by_job,
            allocs_by_node,
            allocs_by_eval,
            evals_by_job,
            nodes,
            deployments,
            deployments_by_job,
            // Configuration, not state: the restoring server's own setting applies.
            job_tracked_versions: _,
            scheduler_config,
            scaling_events,
            variables,
            restart_slots,
            service_registrations,
        } = t;
        let mut versions: Vec<(JobKey, Vec<Arc<Job>>)> = job_versions
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        versions.sort_by(|a, b| a.0.cmp(&b.0));
        let mut scaling: Vec<(JobKey, ScalingEventsImage)> = scaling_events
            .iter()
            .map(|(k, e)| {
                (
                    k.clone(),
                    ScalingEventsImage {
                        events: e.events.clone(),
                        modify_index: e.modify_index,
                    },
                )
            })
            .collect();
        scaling.sort_by(|a, b| a.0.cmp(&b.0));
        StateImage {
            index: *index,
            table_index: table_index
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            acl_policies: values(&acl.policies),
            acl_tokens: values(&acl.tokens),
            acl_roles: values(&acl.roles),
            acl_bootstrap_index: acl.bootstrap_index,
            root_keys: values(root_keys),
            namespaces: values(&partitions.namespaces),
            node_pools: values(&partitions.node_pools),
            jobs: values(jobs),
            job_versions: versions,
            evals: values(evals),
            allocs: values(allocs),
            allocs_by_job: sets(allocs_by_job),
            allocs_by_node: sets(allocs_by_node),
            allocs_by_eval: sets(allocs_by_eval),
            evals_by_job: sets(evals_by_job),
            nodes: values(nodes),
            deployments: values(deployments),
            deployments_by_job: sets(deployments_by_job),
            scheduler_config: scheduler_config.clone(),
            scaling_events: scaling,
            variables: values(variables),
            restart_slots: restart_slots
                .iter()
                .map(|(k, h)| (k.clone(), h.iter().map(|(a, e)| (a.clone(), *e)).collect()))
                .collect(),
            service_registrations: values(service_registrations),
        }
    }

    /// Moves a restored image to `index`: the state and every table are stamped with it, so
    /// blocking queries on any table see a change and indexes never go backwards.
    pub fn reindex(&mut self, index: u64) {
        self.index = index;
        self.table_index = TABLES
            .iter()
            .map(|t| (table_name(*t).to_string(), index))
            .collect();
    }

    /// Rebuilds the tables. Unknown table names in `table_index` (written by a newer server)
    /// are an error: the state would be missing what they index.
    pub fn into_tables(self, job_tracked_versions: usize) -> Result<Tables, String> {
        let mut t = Tables {
            index: self.index,
            job_tracked_versions,
            ..Default::default()
        };
        t.acl.policies = self
            .acl_policies
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        for tok in self.acl_tokens {
            // Through the upsert, which keeps the by-secret index; then the stored copy
            // (its indexes as they were) replaces what the upsert stamped.
            t.acl_upsert_token(tok.modify_index, (*tok).clone());
            t.acl.tokens.insert(tok.accessor_id.clone(), tok);
        }
        t.acl.roles = self
            .acl_roles
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        t.acl.bootstrap_index = self.acl_bootstrap_index;
        t.root_keys = self
            .root_keys
            .into_iter()
            .map(|k| (k.meta.key_id.clone(), k))
            .collect();
        // The image holds the built-ins too (they live in the tables from index 1).
        t.partitions.namespaces = self
            .namespaces
            .into_iter()
            .map(|n| (n.name.clone(), n))
            .collect();
        t.partitions.node_pools = self
            .node_pools
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        t.jobs = self
            .jobs
            .into_iter()
            .map(|j| ((j.namespace.clone(), j.id.clone()), j))
            .collect();
        t.job_versions = self.job_versions.into_iter().collect();
        t.evals = self.evals.into_iter().map(|e| (e.id.clone(), e)).collect();
        t.allocs = self.allocs.into_iter().map(|a| (a.id.clone(), a)).collect();
        t.allocs_by_job = unsets(self.allocs_by_job);
        t.allocs_by_node = unsets(self.allocs_by_node);
        t.allocs_by_eval = unsets(self.allocs_by_eval);
        t.evals_by_job = unsets(self.evals_by_job);
        t.nodes = self.nodes.into_iter().map(|n| (n.id.clone(), n)).collect();
        t.deployments = self
            .deployments
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        t.deployments_by_job = unsets(self.deployments_by_job);
        t.scheduler_config = self.scheduler_config;
        t.scaling_events = self
            .scaling_events
            .into_iter()
            .map(|(k, e)| {
                (
                    k,
                    Arc::new(JobScalingEvents {
                        events: e.events,
                        modify_index: e.modify_index,
                    }),
                )
            })
            .collect();
        t.variables = self
            .variables
            .into_iter()
            .map(|v| ((v.meta.namespace.clone(), v.meta.path.clone()), v))
            .collect();
        t.restart_slots = self
            .restart_slots
            .into_iter()
            .map(|(k, h)| (k, h.into_iter().collect::<im::OrdMap<String, i64>>()))
            .collect();
        t.service_registrations = self
            .service_registrations
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        // Last: the token upserts above stamped the ACL table's index.
        t.table_index = im::HashMap::new();
        for (name, idx) in &self.table_index {
            let Some(table) = TABLES.iter().find(|x| table_name(**x) == name) else {
                return Err(format!("snapshot has an unknown table {name:?}"));
            };
            t.table_index.insert(table_name(*table), *idx);
        }
        Ok(t)
    }
}
