//! Consul's API objects, with Consul's JSON field names. Requests omit unset fields; responses
//! tolerate missing and unknown fields.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `Weights` of a service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weights {
    #[serde(rename = "Passing")]
    pub passing: i64,
    #[serde(rename = "Warning")]
    pub warning: i64,
}

/// A check definition inside a service registration (Consul's `AgentServiceCheck`), also the
/// body of a standalone check registration through [`AgentCheckRegistration`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentServiceCheck {
    #[serde(rename = "CheckID", skip_serializing_if = "Option::is_none")]
    pub check_id: Option<String>,
    #[serde(rename = "Name", skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "Notes", skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// Initial status: `passing`, `warning` or `critical` (Consul's default: critical).
    #[serde(rename = "Status", skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        rename = "Interval",
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::opt"
    )]
    pub interval: Option<Duration>,
    #[serde(
        rename = "Timeout",
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::opt"
    )]
    pub timeout: Option<Duration>,
    #[serde(
        rename = "TTL",
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::opt"
    )]
    pub ttl: Option<Duration>,
    #[serde(rename = "HTTP", skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    #[serde(rename = "Header", skip_serializing_if = "HashMap::is_empty")]
    pub header: HashMap<String, Vec<String>>,
    #[serde(rename = "Method", skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(rename = "Body", skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(rename = "TCP", skip_serializing_if = "Option::is_none")]
    pub tcp: Option<String>,
    #[serde(rename = "GRPC", skip_serializing_if = "Option::is_none")]
    pub grpc: Option<String>,
    #[serde(rename = "GRPCUseTLS", skip_serializing_if = "is_false")]
    pub grpc_use_tls: bool,
    #[serde(rename = "TLSServerName", skip_serializing_if = "Option::is_none")]
    pub tls_server_name: Option<String>,
    #[serde(rename = "TLSSkipVerify", skip_serializing_if = "is_false")]
    pub tls_skip_verify: bool,
    #[serde(rename = "SuccessBeforePassing", skip_serializing_if = "is_zero")]
    pub success_before_passing: u32,
    #[serde(rename = "FailuresBeforeWarning", skip_serializing_if = "is_zero")]
    pub failures_before_warning: u32,
    #[serde(rename = "FailuresBeforeCritical", skip_serializing_if = "is_zero")]
    pub failures_before_critical: u32,
    #[serde(
        rename = "DeregisterCriticalServiceAfter",
        skip_serializing_if = "Option::is_none",
        with = "crate::duration::opt"
    )]
    pub deregister_critical_service_after: Option<Duration>,
}

/// The body of `PUT /v1/agent/service/register` (Consul's `AgentServiceRegistration`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentServiceRegistration {
    /// Defaults to `name` in Consul.
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Tags", skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(rename = "Port", skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(rename = "Address", skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(rename = "Meta", skip_serializing_if = "HashMap::is_empty")]
    pub meta: HashMap<String, String>,
    #[serde(rename = "EnableTagOverride", skip_serializing_if = "is_false")]
    pub enable_tag_override: bool,
    #[serde(rename = "Weights", skip_serializing_if = "Option::is_none")]
    pub weights: Option<Weights>,
    #[serde(rename = "Check", skip_serializing_if = "Option::is_none")]
    pub check: Option<AgentServiceCheck>,
    #[serde(rename = "Checks", skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<AgentServiceCheck>,
    #[serde(rename = "Namespace", skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(rename = "Partition", skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// The body of `PUT /v1/agent/check/register`: a check, optionally bound to a service.
/// `definition.name` is required by Consul; `id` defaults to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgentCheckRegistration {
    #[serde(rename = "ID", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "ServiceID", skip_serializing_if = "Option::is_none")]
    pub service_id: Option<String>,
    #[serde(flatten)]
    pub definition: AgentServiceCheck,
}

/// A check status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Passing,
    Warning,
    Critical,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passing => "passing",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }
}

/// A service as the agent (`/v1/agent/services`) or a health entry reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AgentService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Service")]
    pub service: String,
    #[serde(rename = "Tags", deserialize_with = "null_default")]
    pub tags: Vec<String>,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    pub meta: HashMap<String, String>,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "EnableTagOverride")]
    pub enable_tag_override: bool,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "Weights")]
    pub weights: Option<Weights>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// A health check (`/v1/agent/checks`, `/v1/health/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HealthCheck {
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "CheckID")]
    pub check_id: String,
    #[serde(rename = "Name")]
    pub name: String,
    /// `passing`, `warning` or `critical`.
    #[serde(rename = "Status")]
    pub status: String,
    #[serde(rename = "Notes")]
    pub notes: String,
    #[serde(rename = "Output")]
    pub output: String,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceTags", deserialize_with = "null_default")]
    pub service_tags: Vec<String>,
    #[serde(rename = "Type")]
    pub check_type: String,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// A catalog node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Node {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "TaggedAddresses", deserialize_with = "null_default")]
    pub tagged_addresses: HashMap<String, String>,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    pub meta: HashMap<String, String>,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

/// `/v1/catalog/node/:node`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CatalogNode {
    #[serde(rename = "Node")]
    pub node: Option<Node>,
    #[serde(rename = "Services", deserialize_with = "null_default")]
    pub services: HashMap<String, AgentService>,
}

/// An entry of `/v1/catalog/service/:name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct CatalogService {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Node")]
    pub node: String,
    #[serde(rename = "Address")]
    pub address: String,
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "NodeMeta", deserialize_with = "null_default")]
    pub node_meta: HashMap<String, String>,
    #[serde(rename = "ServiceID")]
    pub service_id: String,
    #[serde(rename = "ServiceName")]
    pub service_name: String,
    #[serde(rename = "ServiceAddress")]
    pub service_address: String,
    #[serde(rename = "ServicePort")]
    pub service_port: u16,
    #[serde(rename = "ServiceTags", deserialize_with = "null_default")]
    pub service_tags: Vec<String>,
    #[serde(rename = "ServiceMeta", deserialize_with = "null_default")]
    pub service_meta: HashMap<String, String>,
    #[serde(rename = "ServiceEnableTagOverride")]
    pub service_enable_tag_override: bool,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
}

impl CatalogService {
    /// The address to dial: the service's own, else its node's (Consul's rule).
    pub fn effective_address(&self) -> &str {
        if self.service_address.is_empty() {
            &self.address
        } else {
            &self.service_address
        }
    }
}

/// An entry of `/v1/health/service/:name`: a node, one service instance and all its checks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ServiceEntry {
    #[serde(rename = "Node")]
    pub node: Node,
    #[serde(rename = "Service")]
    pub service: AgentService,
    #[serde(rename = "Checks", deserialize_with = "null_default")]
    pub checks: Vec<HealthCheck>,
}

impl ServiceEntry {
    /// The worst status among the entry's checks (critical > warning > passing).
    pub fn aggregated_status(&self) -> CheckStatus {
        let mut worst = CheckStatus::Passing;
        for c in &self.checks {
            match c.status.as_str() {
                "passing" => {}
                "warning" => {
                    if worst == CheckStatus::Passing {
                        worst = CheckStatus::Warning
                    }
                }
                _ => worst = CheckStatus::Critical,
            }
        }
        worst
    }

    /// The address to dial: the service's own, else its node's.
    pub fn effective_address(&self) -> &str {
        if self.service.address.is_empty() {
            &self.node.address
        } else {
            &self.service.address
        }
    }
}

/// A KV entry; `value` is decoded from Consul's base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct KvPair {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "CreateIndex")]
    pub create_index: u64,
    #[serde(rename = "ModifyIndex")]
    pub modify_index: u64,
    #[serde(rename = "LockIndex")]
    pub lock_index: u64,
    #[serde(rename = "Flags")]
    pub flags: u64,
    #[serde(rename = "Value", deserialize_with = "base64_value")]
    pub value: Vec<u8>,
    #[serde(rename = "Session")]
    pub session: Option<String>,
}

impl KvPair {
    /// The value as UTF-8 text (lossy).
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// A gossip pool member (`/v1/agent/members`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AgentMember {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "Port")]
    pub port: u16,
    #[serde(rename = "Tags", deserialize_with = "null_default")]
    pub tags: HashMap<String, String>,
    /// Serf status: 1 alive, 2 leaving, 3 left, 4 failed.
    #[serde(rename = "Status")]
    pub status: i64,
}

/// The `Config` part of `/v1/agent/self`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AgentSelfConfig {
    #[serde(rename = "Datacenter")]
    pub datacenter: String,
    #[serde(rename = "NodeName")]
    pub node_name: String,
    #[serde(rename = "NodeID")]
    pub node_id: String,
    #[serde(rename = "Server")]
    pub server: bool,
    #[serde(rename = "Version")]
    pub version: String,
    #[serde(rename = "Revision")]
    pub revision: String,
}

/// `/v1/agent/self` (the parts Caravan uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AgentSelf {
    #[serde(rename = "Config")]
    pub config: AgentSelfConfig,
    #[serde(rename = "Member")]
    pub member: AgentMember,
    #[serde(rename = "Meta", deserialize_with = "null_default")]
    pub meta: HashMap<String, String>,
    /// The agent's full runtime configuration (`ConnectEnabled`, `GRPCPort`, ...), untyped:
    /// its shape changes between Consul versions.
    #[serde(rename = "DebugConfig")]
    pub debug_config: serde_json::Value,
}

/// JSON `null` reads as the type's default (Go encodes empty slices and maps as null).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn base64_value<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("KV value is not base64: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_kv_pairs_from_consul_docs() {
        // The example response of "Read Key" in Consul's KV API documentation.
        let json = r#"[{"CreateIndex":100,"ModifyIndex":200,"LockIndex":200,"Key":"zip",
            "Flags":0,"Value":"dGVzdA==","Session":"adf4238a-882b-9ddc-4a9d-5b6758e4159e"}]"#;
        let pairs: Vec<KvPair> = serde_json::from_str(json).unwrap();
        assert_eq!(pairs[0].value, b"test");
        assert_eq!(pairs[0].modify_index, 200);
        let null: KvPair = serde_json::from_str(r#"{"Key":"k","Value":null}"#).unwrap();
        assert!(null.value.is_empty());
        assert!(serde_json::from_str::<KvPair>(r#"{"Key":"k","Value":"%%"}"#).is_err());
    }

    #[test]
    fn serializes_registration_with_consul_names() {
        let reg = AgentServiceRegistration {
            id: Some("web-1".into()),
            name: "web".into(),
            tags: vec!["v1".into()],
            port: Some(8080),
            check: Some(AgentServiceCheck {
                ttl: Some(Duration::from_secs(15)),
                deregister_critical_service_after: Some(Duration::from_secs(90)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = serde_json::to_value(&reg).unwrap();
        assert_eq!(v["ID"], "web-1");
        assert_eq!(v["Check"]["TTL"], "15s");
        assert_eq!(v["Check"]["DeregisterCriticalServiceAfter"], "1m30s");
        assert!(v.get("Checks").is_none());
        assert!(v["Check"].get("HTTP").is_none());
    }

    #[test]
    fn aggregates_the_worst_status() {
        let check = |s: &str| HealthCheck {
            status: s.into(),
            ..Default::default()
        };
        let mut e = ServiceEntry {
            checks: vec![check("passing"), check("warning")],
            ..Default::default()
        };
        assert_eq!(e.aggregated_status(), CheckStatus::Warning);
        e.checks.push(check("critical"));
        assert_eq!(e.aggregated_status(), CheckStatus::Critical);
    }
}
