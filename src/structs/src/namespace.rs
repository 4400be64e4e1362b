//! Namespaces and node pools, the two ways Nomad partitions a cluster: a namespace groups jobs
//! (and what they make) for access control and listing; a node pool groups nodes, and a job
//! runs only on the nodes of its pool. Both have built-ins that always exist (`default`, and
//! the `all` pool), and both serialise as Nomad's API does.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The built-in `default` namespace's description.
pub const DEFAULT_NAMESPACE_DESCRIPTION: &str = "Default shared namespace";
/// `?namespace=*`: every namespace.
pub const ALL_NAMESPACES: &str = "*";
/// The built-in pool that holds every node.
pub const NODE_POOL_ALL: &str = "all";
pub const NODE_POOL_ALL_DESCRIPTION: &str = "Node pool with all nodes in the cluster.";
pub const NODE_POOL_DEFAULT_DESCRIPTION: &str = "Default node pool.";
/// Nomad's default `node_identity_ttl` (24h), in nanoseconds.
pub const DEFAULT_NODE_IDENTITY_TTL: i64 = 24 * 3600 * 1_000_000_000;

const MAX_DESCRIPTION: usize = 256;
const MAX_NAME: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Namespace {
    pub name: String,
    pub description: String,
    /// A quota specification name (quotas are a Nomad Enterprise feature; Caravan has none,
    /// so only the empty quota is accepted).
    pub quota: String,
    /// Which task drivers and network modes jobs in the namespace may use.
    pub capabilities: Option<NamespaceCapabilities>,
    pub meta: BTreeMap<String, String>,
    /// Nomad Enterprise settings Caravan does not have: decoded only so that a request that
    /// sets them is refused by name instead of dropped.
    #[serde(skip_serializing)]
    pub node_pool_configuration: Option<serde_json::Value>,
    #[serde(skip_serializing)]
    pub vault_configuration: Option<serde_json::Value>,
    #[serde(skip_serializing)]
    pub consul_configuration: Option<serde_json::Value>,
    #[serde(skip_serializing)]
    pub required_extra_claims: BTreeMap<String, String>,
    #[serde(skip_serializing)]
    pub optional_extra_claims: BTreeMap<String, String>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NamespaceCapabilities {
    pub enabled_task_drivers: Vec<String>,
    pub disabled_task_drivers: Vec<String>,
    pub enabled_network_modes: Vec<String>,
    pub disabled_network_modes: Vec<String>,
}

impl Namespace {
    /// The `default` namespace as a new cluster has it.
    pub fn builtin_default(index: u64) -> Self {
        Namespace {
            name: crate::DEFAULT_NAMESPACE.into(),
            description: DEFAULT_NAMESPACE_DESCRIPTION.into(),
            create_index: index,
            modify_index: index,
            ..Default::default()
        }
    }

    /// Nomad's `Namespace.Validate`: every problem, one message each.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if !valid_name(&self.name, false) {
            errs.push(format!(
                "invalid name {:?}. Must match regex ^[a-zA-Z0-9-]{{1,128}}$",
                self.name
            ));
        }
        if self.description.len() > MAX_DESCRIPTION {
            errs.push(format!("description longer than {MAX_DESCRIPTION}"));
        }
        let enterprise = [
            (
                "node pool configuration",
                self.node_pool_configuration.is_some(),
            ),
            ("vault configuration", self.vault_configuration.is_some()),
            ("consul configuration", self.consul_configuration.is_some()),
            (
                "required extra claims",
                !self.required_extra_claims.is_empty(),
            ),
            (
                "optional extra claims",
                !self.optional_extra_claims.is_empty(),
            ),
        ];
        for (what, set) in enterprise {
            if set {
                errs.push(format!(
                    "invalid {what}: a Nomad Enterprise setting that Caravan does not have"
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// Whether jobs in this namespace may use task driver `driver`.
    pub fn allows_driver(&self, driver: &str) -> bool {
        let Some(c) = &self.capabilities else {
            return true;
        };
        allowed(&c.enabled_task_drivers, &c.disabled_task_drivers, driver)
    }

    /// Whether groups in this namespace may use network mode `mode` (`""` is `host`).
    pub fn allows_network_mode(&self, mode: &str) -> bool {
        let Some(c) = &self.capabilities else {
            return true;
        };
        let mode = if mode.is_empty() { "host" } else { mode };
        allowed(&c.enabled_network_modes, &c.disabled_network_modes, mode)
    }
}

/// Nomad's rule: allowed when the enabled list is empty or names it, unless disabled names it.
fn allowed(enabled: &[String], disabled: &[String], what: &str) -> bool {
    (enabled.is_empty() || enabled.iter().any(|e| e == what)) && !disabled.iter().any(|d| d == what)
}

/// Namespace names are `^[a-zA-Z0-9-]{1,128}$`; node pool names also allow `_`.
fn valid_name(name: &str, underscore: bool) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || (underscore && c == '_'))
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodePool {
    pub name: String,
    pub description: String,
    pub meta: BTreeMap<String, String>,
    /// Overrides of the cluster's scheduler settings for jobs in this pool.
    pub scheduler_configuration: Option<NodePoolSchedulerConfiguration>,
    /// Nanoseconds; Nomad also accepts a duration string (`"24h"`) on input.
    #[serde(rename = "NodeIdentityTTL", deserialize_with = "duration_or_nanos")]
    pub node_identity_ttl: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodePoolSchedulerConfiguration {
    /// `binpack` or `spread`; empty: the cluster's.
    pub scheduler_algorithm: String,
    /// Unset: the cluster's.
    pub memory_oversubscription_enabled: Option<bool>,
}

impl NodePool {
    /// The built-in pools, as a new cluster has them.
    pub fn builtins(index: u64) -> [NodePool; 2] {
        let pool = |name: &str, description: &str| NodePool {
            name: name.into(),
            description: description.into(),
            node_identity_ttl: DEFAULT_NODE_IDENTITY_TTL,
            create_index: index,
            modify_index: index,
            ..Default::default()
        };
        [
            pool(NODE_POOL_ALL, NODE_POOL_ALL_DESCRIPTION),
            pool(crate::DEFAULT_NODE_POOL, NODE_POOL_DEFAULT_DESCRIPTION),
        ]
    }

    /// A pool a node registers into before anyone created it (Nomad creates it then).
    pub fn implicit(name: &str) -> Self {
        NodePool {
            name: name.into(),
            node_identity_ttl: DEFAULT_NODE_IDENTITY_TTL,
            ..Default::default()
        }
    }

    /// `default` and `all` always exist and cannot be changed or deleted.
    pub fn is_builtin_name(name: &str) -> bool {
        name == NODE_POOL_ALL || name == crate::DEFAULT_NODE_POOL
    }

    /// Nomad's `Canonicalize`: the default identity TTL.
    pub fn canonicalize(&mut self) {
        if self.node_identity_ttl == 0 {
            self.node_identity_ttl = DEFAULT_NODE_IDENTITY_TTL;
        }
    }

    /// Nomad's `NodePool.Validate`.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errs = Vec::new();
        if let Err(e) = validate_node_pool_name(&self.name) {
            errs.push(e);
        }
        if self.description.len() > MAX_DESCRIPTION {
            errs.push(format!("description longer than {MAX_DESCRIPTION}"));
        }
        if self.node_identity_ttl < 0 {
            errs.push("node identity TTL must not be negative".into());
        }
        if let Some(sc) = &self.scheduler_configuration {
            if !matches!(sc.scheduler_algorithm.as_str(), "" | "binpack" | "spread") {
                errs.push(format!(
                    "invalid scheduler configuration: invalid scheduler algorithm {:?}: must be \"binpack\" or \"spread\"",
                    sc.scheduler_algorithm
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// Nomad's `ValidateNodePoolName`.
pub fn validate_node_pool_name(name: &str) -> Result<(), String> {
    if valid_name(name, true) {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}, must match regex ^[a-zA-Z0-9-_]{{1,128}}$"
        ))
    }
}

fn duration_or_nanos<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(0),
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .ok_or_else(|| serde::de::Error::custom(format!("invalid duration {n}"))),
        serde_json::Value::String(s) if s.is_empty() => Ok(0),
        serde_json::Value::String(s) => crate::time::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}"))),
        other => Err(serde::de::Error::custom(format!(
            "invalid duration {other}: want nanoseconds or a duration string"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nomads_patterns() {
        let ns = |name: &str| Namespace {
            name: name.into(),
            ..Default::default()
        };
        assert!(ns("prod-1").validate().is_ok());
        let errs = ns("no_underscore").validate().unwrap_err();
        assert_eq!(
            errs,
            vec!["invalid name \"no_underscore\". Must match regex ^[a-zA-Z0-9-]{1,128}$"]
        );
        assert!(ns("").validate().is_err());
        assert!(ns(&"a".repeat(129)).validate().is_err());
        assert!(validate_node_pool_name("gpu_pool-1").is_ok());
        assert!(validate_node_pool_name("gpu pool").is_err());
        assert!(validate_node_pool_name("").is_err());
    }

    #[test]
    fn enterprise_settings_are_refused_by_name() {
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "Name": "x", "VaultConfiguration": {"Default": "other"}
        }))
        .unwrap();
        let errs = ns.validate().unwrap_err();
        assert!(errs[0].contains("vault configuration"), "{errs:?}");
    }

    #[test]
    fn capabilities_allow_and_deny_as_nomad() {
        let mut ns = Namespace::builtin_default(1);
        assert!(ns.allows_driver("docker"));
        ns.capabilities = Some(NamespaceCapabilities {
            enabled_task_drivers: vec!["docker".into(), "exec".into()],
            disabled_task_drivers: vec!["exec".into()],
            disabled_network_modes: vec!["host".into()],
            ..Default::default()
        });
        assert!(ns.allows_driver("docker"));
        assert!(!ns.allows_driver("exec"));
        assert!(!ns.allows_driver("raw_exec"));
        assert!(!ns.allows_network_mode(""));
        assert!(ns.allows_network_mode("bridge"));
    }

    #[test]
    fn node_identity_ttl_reads_strings_and_numbers() {
        let p: NodePool =
            serde_json::from_value(serde_json::json!({"Name": "a", "NodeIdentityTTL": "1h"}))
                .unwrap();
        assert_eq!(p.node_identity_ttl, 3_600_000_000_000);
        let p: NodePool =
            serde_json::from_value(serde_json::json!({"Name": "a", "NodeIdentityTTL": 5})).unwrap();
        assert_eq!(p.node_identity_ttl, 5);
        assert!(serde_json::from_value::<NodePool>(
            serde_json::json!({"Name": "a", "NodeIdentityTTL": "soon"})
        )
        .is_err());
    }
}
