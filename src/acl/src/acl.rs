//! The ACL a token's policies compile to (Nomad's `acl.NewACL`), and the checks endpoints make
//! against it (Nomad's `ACL.Allow*`).

use crate::capability as cap;
use crate::glob::closest_glob;
use crate::Policy;
use std::collections::{BTreeMap, BTreeSet};

type CapSet = BTreeSet<String>;

/// Rules keyed by name: exact names, and `*` globs consulted when no exact name matches. Both
/// iterate in byte order, like the radix trees Nomad keeps them in.
#[derive(Debug, Clone, Default)]
struct Rules {
    exact: BTreeMap<String, CapSet>,
    globs: BTreeMap<String, CapSet>,
}

impl Rules {
    fn entry(&mut self, key: String, glob: bool) -> &mut CapSet {
        let map = if glob {
            &mut self.globs
        } else {
            &mut self.exact
        };
        map.entry(key).or_default()
    }

    /// The exact rule for `name`, else the closest matching glob (Nomad's
    /// matching*CapabilitySet / findClosestMatchingGlob).
    fn lookup(&self, name: &str) -> Option<&CapSet> {
        self.exact
            .get(name)
            .or_else(|| closest_glob(&self.globs, name))
    }

    fn all(&self) -> impl Iterator<Item = &CapSet> {
        self.exact.values().chain(self.globs.values())
    }
}

/// Adds `caps` to `set` with deny winning: a set holding `deny` takes nothing more, and `deny`
/// among `caps` replaces whatever the set held.
fn grant<'a>(set: &mut CapSet, caps: impl IntoIterator<Item = &'a String>) {
    if set.contains(cap::DENY) {
        return;
    }
    for c in caps {
        if c == cap::DENY {
            set.clear();
            set.insert(cap::DENY.to_string());
            return;
        }
        set.insert(c.clone());
    }
}

/// A coarse policy level. Merging takes the greatest: deny, then write, read, list. `scale` and
/// absence are `None` (Nomad's maxPrivilege knows no other levels).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    #[default]
    None,
    List,
    Read,
    Write,
    Deny,
}

impl Level {
    fn of(policy: &str) -> Level {
        match policy {
            cap::POLICY_DENY => Level::Deny,
            cap::POLICY_WRITE => Level::Write,
            cap::POLICY_READ => Level::Read,
            cap::POLICY_LIST => Level::List,
            _ => Level::None,
        }
    }

    fn merge(&mut self, policy: &str) {
        *self = (*self).max(Level::of(policy));
    }

    fn at_least_read(self) -> bool {
        matches!(self, Level::Read | Level::Write)
    }
}

/// The identity of a workload calling with its workload identity: it may always read and list
/// the variables under its own `nomad/jobs/<job>[/<group>[/<task>]]` paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclClaim {
    pub namespace: String,
    pub job: String,
    pub group: String,
    pub task: String,
}

/// What a token may do: its policies merged (or management, which may do everything).
#[derive(Debug, Clone, Default)]
pub struct Acl {
    management: bool,
    namespaces: Rules,
    node_pools: Rules,
    host_volumes: Rules,
    /// Keyed by `<namespace>\0<path>`; a glob when either part has a `*`.
    variables: Rules,
    agent: Level,
    node: Level,
    operator: Level,
    sentinel: Level,
    quota: Level,
    plugin: Level,
    operator_capabilities: CapSet,
    sentinel_capabilities: CapSet,
}

impl Acl {
    /// The ACL of a management token: everything is allowed.
    pub fn management() -> Acl {
        Acl {
            management: true,
            ..Acl::default()
        }
    }

    /// The ACL of a token with no policy: nothing is allowed.
    pub fn deny_all() -> Acl {
        Acl::default()
    }

    /// Merges policies as Nomad's NewACL does: capabilities are unioned per namespace, node pool,
    /// host volume and variables path (a `deny` anywhere replaces them all and keeps them out),
    /// and the `agent`, `node`, `operator`, `quota` and `plugin` levels take the most privileged
    /// one unless one is `deny`.
    pub fn from_policies(policies: &[Policy]) -> Acl {
        let mut acl = Acl::default();
        for policy in policies {
            for ns in &policy.namespaces {
                let ns_glob = ns.name.contains('*');
                for path in ns.variables.iter().flatten() {
                    let key = format!("{}\0{}", ns.name, path.path);
                    let glob = ns_glob || path.path.contains('*');
                    // Nomad unions variable capabilities without letting deny win across
                    // policies; here deny wins there too, as everywhere else.
                    grant(acl.variables.entry(key, glob), &path.capabilities);
                }
                grant(
                    acl.namespaces.entry(ns.name.clone(), ns_glob),
                    &ns.capabilities,
                );
            }
            for np in &policy.node_pools {
                let glob = np.name.contains('*');
                grant(
                    acl.node_pools.entry(np.name.clone(), glob),
                    &np.capabilities,
                );
            }
            for hv in &policy.host_volumes {
                let glob = hv.name.contains('*');
                grant(
                    acl.host_volumes.entry(hv.name.clone(), glob),
                    &hv.capabilities,
                );
            }
            if let Some(level) = &policy.agent {
                acl.agent.merge(level);
            }
            if let Some(level) = &policy.node {
                acl.node.merge(level);
            }
            if let Some(op) = &policy.operator {
                acl.operator.merge(&op.policy);
                grant(&mut acl.operator_capabilities, &op.capabilities);
            }
            if let Some(s) = &policy.sentinel {
                acl.sentinel.merge(&s.policy);
                grant(&mut acl.sentinel_capabilities, &s.capabilities);
            }
            if let Some(level) = &policy.quota {
                acl.quota.merge(level);
            }
            if let Some(level) = &policy.plugin {
                acl.plugin.merge(level);
            }
        }
        acl
    }

    pub fn is_management(&self) -> bool {
        self.management
    }

    /// Whether `capability` is allowed in namespace `ns`. `ns` of `*` (all namespaces) asks
    /// whether any namespace rule allows it. A fine-grained job capability such as
    /// `register-job` is also allowed by the broader one Nomad's endpoints accept in its place
    /// (`submit-job`; see [`cap::implied_by`]).
    pub fn allow_namespace_operation(&self, ns: &str, capability: &str) -> bool {
        if self.management {
            return true;
        }
        let allows = |set: &CapSet| {
            set.contains(capability) || cap::implied_by(capability).iter().any(|c| set.contains(*c))
        };
        if ns == "*" && self.namespaces.all().any(allows) {
            return true;
        }
        self.namespaces.lookup(ns).is_some_and(allows)
    }

    /// Whether any of `capabilities` is allowed in `ns` (Nomad's AllowNsOpAnyOf).
    pub fn allow_namespace_operation_any_of(&self, ns: &str, capabilities: &[&str]) -> bool {
        capabilities
            .iter()
            .any(|c| self.allow_namespace_operation(ns, c))
    }

    /// Whether anything is allowed in `ns`: its rule holds a capability and not `deny`. `ns` of
    /// `*` asks whether any namespace rule allows anything.
    pub fn allow_namespace(&self, ns: &str) -> bool {
        if self.management {
            return true;
        }
        let allows = |set: &CapSet| !set.is_empty() && !set.contains(cap::DENY);
        if ns == "*" && self.namespaces.all().any(allows) {
            return true;
        }
        self.namespaces.lookup(ns).is_some_and(allows)
    }

    pub fn allow_node_pool_operation(&self, pool: &str, capability: &str) -> bool {
        self.management
            || self
                .node_pools
                .lookup(pool)
                .is_some_and(|set| set.contains(capability))
    }

    /// Whether anything is allowed in node pool `pool` (Nomad's AllowNodePool).
    pub fn allow_node_pool(&self, pool: &str) -> bool {
        self.management
            || self
                .node_pools
                .lookup(pool)
                .is_some_and(|set| !set.is_empty() && !set.contains(cap::POOL_DENY))
    }

    /// Whether any node pool rule allows anything (Nomad's AllowNodePoolSearch; a loose check
    /// callers follow with per-pool ones).
    pub fn allow_node_pool_search(&self) -> bool {
        self.management
            || self
                .node_pools
                .all()
                .any(|set| !set.contains(cap::POOL_DENY))
    }

    pub fn allow_host_volume_operation(&self, volume: &str, capability: &str) -> bool {
        self.management
            || self
                .host_volumes
                .lookup(volume)
                .is_some_and(|set| set.contains(capability))
    }

    /// Whether anything is allowed on host volume `volume` (Nomad's AllowHostVolume).
    pub fn allow_host_volume(&self, volume: &str) -> bool {
        self.management
            || self
                .host_volumes
                .lookup(volume)
                .is_some_and(|set| !set.is_empty() && !set.contains(cap::HOST_VOLUME_DENY))
    }

    /// Whether `capability` (`list`, `read`, `write`, `destroy`) is allowed on the variable at
    /// `path` in `ns`: the rule for exactly that namespace and path, else the closest glob over
    /// `<namespace>\0<path>` (Nomad matches both parts as one string).
    pub fn allow_variable_operation(&self, ns: &str, path: &str, capability: &str) -> bool {
        self.allow_variable_operation_with_claim(ns, path, capability, None)
    }

    /// [`Acl::allow_variable_operation`] for a workload: with no exact rule for the path, a
    /// workload may read and list its own `nomad/jobs/...` variables before globs are consulted.
    pub fn allow_variable_operation_with_claim(
        &self,
        ns: &str,
        path: &str,
        capability: &str,
        claim: Option<&AclClaim>,
    ) -> bool {
        if self.management {
            return true;
        }
        let key = format!("{ns}\0{path}");
        if let Some(set) = self.variables.exact.get(&key) {
            return allows_variable(set, capability);
        }
        if let Some(claim) = claim.filter(|c| c.namespace == ns) {
            let own = [
                "nomad/jobs".to_string(),
                format!("nomad/jobs/{}", claim.job),
                format!("nomad/jobs/{}/{}", claim.job, claim.group),
                format!("nomad/jobs/{}/{}/{}", claim.job, claim.group, claim.task),
            ];
            if own.iter().any(|p| p == path) {
                return capability == cap::VAR_READ || capability == cap::VAR_LIST;
            }
        }
        closest_glob(&self.variables.globs, &key)
            .is_some_and(|set| allows_variable(set, capability))
    }

    /// Whether any variables rule exists for `ns` (`*`: for any namespace); a loose check callers
    /// follow with per-path ones (Nomad's AllowVariableSearch).
    pub fn allow_variable_search(&self, ns: &str) -> bool {
        if self.management {
            return true;
        }
        if ns == "*" {
            return self.variables.all().next().is_some();
        }
        // Nomad seeks the namespace as a key prefix.
        self.variables
            .exact
            .keys()
            .chain(self.variables.globs.keys())
            .any(|k| k.starts_with(ns))
    }

    pub fn allow_agent_read(&self) -> bool {
        self.management || self.agent.at_least_read()
    }

    pub fn allow_agent_write(&self) -> bool {
        self.management || self.agent == Level::Write
    }

    pub fn allow_node_read(&self) -> bool {
        self.management || self.node.at_least_read()
    }

    pub fn allow_node_write(&self) -> bool {
        self.management || self.node == Level::Write
    }

    pub fn allow_operator_read(&self) -> bool {
        self.management || self.operator.at_least_read()
    }

    pub fn allow_operator_write(&self) -> bool {
        self.management || self.operator == Level::Write
    }

    /// Whether an operator capability (`snapshot-save`, `license-read`, `keyring-*`) is allowed:
    /// operator `write`, or the capability granted (Nomad's AllowOperatorOperation).
    pub fn allow_operator_operation(&self, capability: &str) -> bool {
        self.management
            || self.operator == Level::Write
            || self.operator_capabilities.contains(capability)
    }

    /// Whether a sentinel capability is allowed (Nomad's AllowSentinelOperation).
    pub fn allow_sentinel_operation(&self, capability: &str) -> bool {
        self.management
            || self.sentinel == Level::Write
            || self.sentinel_capabilities.contains(capability)
    }

    pub fn allow_quota_read(&self) -> bool {
        self.management || self.quota.at_least_read()
    }

    pub fn allow_quota_write(&self) -> bool {
        self.management || self.quota == Level::Write
    }

    /// Plugin `read` (only `read`: Nomad's AllowPluginRead does not count `write`).
    pub fn allow_plugin_read(&self) -> bool {
        self.management || self.plugin == Level::Read
    }

    /// Plugin `list` or `read` (as Nomad's AllowPluginList, `write` does not count).
    pub fn allow_plugin_list(&self) -> bool {
        self.management || matches!(self.plugin, Level::List | Level::Read)
    }
}

fn allows_variable(set: &CapSet, capability: &str) -> bool {
    !set.contains(cap::VAR_DENY) && set.contains(capability)
}
