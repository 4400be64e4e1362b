//! The namespace and node pool tables. Both start with their built-ins (the `default`
//! namespace; the `all` and `default` pools, at index 1 as Nomad's state store creates them),
//! so every snapshot has them. Written by the FSM only; the endpoints validate before.

use super::{Table, Tables};
use caravan_structs::{Job, Namespace, Node, NodePool, JOB_STATUS_DEAD};
use im::OrdMap;
use std::sync::Arc;

#[derive(Clone)]
pub struct PartitionTables {
    pub namespaces: OrdMap<String, Arc<Namespace>>,
    pub node_pools: OrdMap<String, Arc<NodePool>>,
}

impl Default for PartitionTables {
    fn default() -> Self {
        let ns = Namespace::builtin_default(1);
        PartitionTables {
            namespaces: OrdMap::unit(ns.name.clone(), Arc::new(ns)),
            node_pools: NodePool::builtins(1)
                .into_iter()
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
        }
    }
}

impl Tables {
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        self.partitions.namespaces.get(name).cloned()
    }

    pub fn node_pool(&self, name: &str) -> Option<Arc<NodePool>> {
        self.partitions.node_pools.get(name).cloned()
    }

    /// Jobs in namespace `ns`, by ID.
    pub fn jobs_in_namespace(&self, ns: &str) -> Vec<Arc<Job>> {
        let from = (ns.to_string(), String::new());
        self.jobs
            .range(from..)
            .take_while(|((n, _), _)| n == ns)
            .map(|(_, j)| j.clone())
            .collect()
    }

    /// Jobs whose `node_pool` is `pool` (a job naming `all` is only in `all`).
    pub fn jobs_in_pool(&self, pool: &str) -> Vec<Arc<Job>> {
        self.jobs
            .values()
            .filter(|j| j.node_pool == pool)
            .cloned()
            .collect()
    }

    /// Nodes in pool `pool`; every node for `all`.
    pub fn nodes_in_pool(&self, pool: &str) -> Vec<Arc<Node>> {
        self.nodes
            .values()
            .filter(|n| pool == caravan_structs::NODE_POOL_ALL || n.node_pool == pool)
            .cloned()
            .collect()
    }

    /// Why namespace `ns` cannot be deleted yet, as Nomad says it: jobs that are not dead,
    /// allocations that are not terminal on their client.
    pub fn namespace_in_use(&self, ns: &str, region: &str) -> Vec<String> {
        let mut why = Vec::new();
        if self
            .jobs_in_namespace(ns)
            .iter()
            .any(|j| j.status != JOB_STATUS_DEAD)
        {
            why.push(format!(
                "namespace {ns:?} has non-terminal jobs in regions: [{region}]"
            ));
        }
        if self
            .allocs
            .values()
            .any(|a| a.namespace == ns && !a.client_terminal())
        {
            why.push(format!(
                "namespace {ns:?} has non-terminal allocations in regions: [{region}]"
            ));
        }
        // As Nomad: without naming a path (the caller may not be allowed to list them).
        if self.variables.keys().any(|(n, _)| n == ns) {
            why.push(format!(
                "namespace {ns:?} contains at least one variable. All variables in namespace must be deleted before it can be deleted"
            ));
        }
        why
    }

    /// Why node pool `pool` cannot be deleted yet: nodes in it, jobs in it that are not dead.
    pub fn node_pool_in_use(&self, pool: &str, region: &str) -> Vec<String> {
        let mut why = Vec::new();
        if self
            .jobs_in_pool(pool)
            .iter()
            .any(|j| j.status != JOB_STATUS_DEAD)
        {
            why.push(format!(
                "node pool {pool:?} has non-terminal jobs in regions: [{region}]"
            ));
        }
        if self.nodes.values().any(|n| n.node_pool == pool) {
            why.push(format!(
                "node pool {pool:?} has nodes in regions: [{region}]"
            ));
        }
        why
    }

    // ---- writes (called by the FSM only) ----

    pub fn upsert_namespace(&mut self, index: u64, mut ns: Namespace) {
        ns.create_index = self
            .namespace(&ns.name)
            .map(|old| old.create_index)
            .unwrap_or(index);
        ns.modify_index = index;
        self.partitions
            .namespaces
            .insert(ns.name.clone(), Arc::new(ns));
        self.touch(Table::Namespaces, index);
    }

    /// Deletes namespaces; `default` stays whatever the entry says.
    pub fn delete_namespaces(&mut self, index: u64, names: &[String]) {
        for n in names {
            if n != caravan_structs::DEFAULT_NAMESPACE {
                self.partitions.namespaces.remove(n);
            }
        }
        self.touch(Table::Namespaces, index);
    }

    /// Creates or updates pools; the built-ins are never changed.
    pub fn upsert_node_pools(&mut self, index: u64, pools: &[NodePool]) {
        for p in pools {
            if NodePool::is_builtin_name(&p.name) {
                continue;
            }
            let mut p = p.clone();
            p.create_index = self
                .node_pool(&p.name)
                .map(|old| old.create_index)
                .unwrap_or(index);
            p.modify_index = index;
            self.partitions
                .node_pools
                .insert(p.name.clone(), Arc::new(p));
        }
        self.touch(Table::NodePools, index);
    }

    /// Creates the pool a registering node names, when it does not exist yet.
    pub fn ensure_node_pool(&mut self, index: u64, name: &str) {
        if !name.is_empty() && self.node_pool(name).is_none() {
            self.upsert_node_pools(index, &[NodePool::implicit(name)]);
        }
    }

    /// Deletes pools; the built-ins stay whatever the entry says.
    pub fn delete_node_pools(&mut self, index: u64, names: &[String]) {
        for n in names {
            if !NodePool::is_builtin_name(n) {
                self.partitions.node_pools.remove(n);
            }
        }
        self.touch(Table::NodePools, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_exist_and_survive_writes() {
        let mut t = Tables::default();
        assert_eq!(t.namespace("default").unwrap().create_index, 1);
        assert!(t.node_pool("all").is_some() && t.node_pool("default").is_some());
        t.delete_namespaces(3, &["default".into()]);
        t.delete_node_pools(4, &["all".into(), "default".into()]);
        let mut changed = NodePool::implicit("all");
        changed.description = "mine".into();
        t.upsert_node_pools(5, &[changed]);
        assert!(t.namespace("default").is_some());
        assert_eq!(
            t.node_pool("all").unwrap().description,
            caravan_structs::NODE_POOL_ALL_DESCRIPTION
        );
        assert_eq!(t.table_index(Table::NodePools), 5);
    }

    #[test]
    fn upserts_keep_the_create_index_and_nodes_create_missing_pools() {
        let mut t = Tables::default();
        let ns = |d: &str| Namespace {
            name: "prod".into(),
            description: d.into(),
            ..Default::default()
        };
        t.upsert_namespace(7, ns("one"));
        t.upsert_namespace(9, ns("two"));
        let got = t.namespace("prod").unwrap();
        assert_eq!(
            (got.create_index, got.modify_index, got.description.as_str()),
            (7, 9, "two")
        );
        t.ensure_node_pool(10, "gpu");
        t.ensure_node_pool(11, "gpu");
        assert_eq!(t.node_pool("gpu").unwrap().create_index, 10);
        assert_eq!(t.table_index(Table::NodePools), 10);
    }

    #[test]
    fn in_use_names_jobs_and_nodes() {
        let mut t = Tables::default();
        let mut j = Job {
            id: "web".into(),
            namespace: "prod".into(),
            node_pool: "gpu".into(),
            ..Default::default()
        };
        t.upsert_job(2, j.clone());
        t.upsert_node(
            3,
            Node {
                id: "n1".into(),
                node_pool: "gpu".into(),
                ..Default::default()
            },
        );
        assert_eq!(
            t.namespace_in_use("prod", "global"),
            vec!["namespace \"prod\" has non-terminal jobs in regions: [global]"]
        );
        assert!(t.namespace_in_use("default", "global").is_empty());
        assert_eq!(t.node_pool_in_use("gpu", "global").len(), 2);
        assert_eq!(t.nodes_in_pool("all").len(), 1);
        assert_eq!(t.nodes_in_pool("default").len(), 0);
        j.status = JOB_STATUS_DEAD.into();
        t.upsert_job(4, j);
        assert!(t.namespace_in_use("prod", "global").is_empty());
    }
}
