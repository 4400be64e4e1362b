//! Workload identities: a task's `identity` blocks typed (Nomad's `WorkloadIdentity`), and the
//! claims of the JWTs the servers sign for them (Nomad's `IdentityClaims`), so the signer, the
//! client hook that hands them to tasks and the ACL resolver that accepts them agree on names.

use crate::job::Task;
use serde::{Deserialize, Serialize};

/// The name of the identity every task has, with or without an `identity` block.
pub const WORKLOAD_IDENTITY_DEFAULT_NAME: &str = "default";
/// The audience of the default identity when its block names none.
pub const WORKLOAD_IDENTITY_DEFAULT_AUD: &str = "nomadproject.io";

/// One `identity` block of a task (Nomad's JSON names).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WorkloadIdentity {
    pub name: String,
    pub audience: Vec<String>,
    pub change_mode: String,
    pub change_signal: String,
    /// Expose the token to the task as `NOMAD_TOKEN` (`NOMAD_TOKEN_<name>`).
    pub env: bool,
    /// Write the token to `secrets/nomad_token` (`secrets/nomad_<name>.jwt`).
    pub file: bool,
    /// Where to write it instead, relative to the task directory.
    pub filepath: String,
    pub service_name: String,
    /// Nanoseconds; 0: the token does not expire (it stays valid while the alloc runs).
    #[serde(rename = "TTL")]
    pub ttl: i64,
    pub extra_claims: serde_json::Value,
}

impl WorkloadIdentity {
    pub fn is_default(&self) -> bool {
        self.name.is_empty() || self.name == WORKLOAD_IDENTITY_DEFAULT_NAME
    }

    /// The name the `sub` claim and the file/env names use.
    pub fn handle(&self) -> &str {
        if self.is_default() {
            WORKLOAD_IDENTITY_DEFAULT_NAME
        } else {
            &self.name
        }
    }
}

/// A block as the job carries it (the jobspec has checked its shape; one that does not decode
/// gives no identity).
fn parse(v: &serde_json::Value) -> Option<WorkloadIdentity> {
    serde_json::from_value::<WorkloadIdentity>(v.clone()).ok()
}

impl Task {
    /// The task's default identity: its unnamed `identity` block, or the implicit one Nomad
    /// gives every task (audience `nomadproject.io`, neither env nor file).
    pub fn default_identity(&self) -> WorkloadIdentity {
        let mut w = self
            .identity
            .as_ref()
            .and_then(parse)
            .or_else(|| {
                self.identities
                    .iter()
                    .filter_map(parse)
                    .find(WorkloadIdentity::is_default)
            })
            .unwrap_or_default();
        w.name = WORKLOAD_IDENTITY_DEFAULT_NAME.into();
        if w.audience.is_empty() {
            w.audience = vec![WORKLOAD_IDENTITY_DEFAULT_AUD.into()];
        }
        w
    }

    /// The task's named identities (not the default one).
    pub fn named_identities(&self) -> Vec<WorkloadIdentity> {
        let mut out: Vec<WorkloadIdentity> = self
            .identities
            .iter()
            .filter_map(parse)
            .filter(|w| !w.is_default())
            .collect();
        // A `vault` block implies its login identity (Nomad's implicit identities hook).
        if let Some(v) = self.vault_identity() {
            match out.iter_mut().find(|w| w.name == v.name) {
                Some(w) => *w = v,
                None => out.push(v),
            }
        }
        out
    }
}

/// The audience of the identity a task with a `vault` block logs in to Vault with, when the
/// task names none (Nomad's `vault.default_identity.aud` default).
pub const VAULT_IDENTITY_DEFAULT_AUD: &str = "vault.io";

/// A task's `vault` block (Nomad's `Vault`, JSON names), with the defaults the jobspec fills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskVault {
    pub role: String,
    pub namespace: String,
    /// The agent's `vault "<cluster>"` block to use.
    pub cluster: String,
    /// Expose the token as `VAULT_TOKEN`.
    pub env: bool,
    /// Do not write `secrets/vault_token`.
    pub disable_file: bool,
    pub change_mode: String,
    pub change_signal: String,
    pub allow_token_expiration: bool,
}

impl Default for TaskVault {
    fn default() -> Self {
        TaskVault {
            role: String::new(),
            namespace: String::new(),
            cluster: "default".into(),
            env: true,
            disable_file: false,
            change_mode: "restart".into(),
            change_signal: String::new(),
            allow_token_expiration: false,
        }
    }
}

impl TaskVault {
    /// The name of the workload identity the task logs in to Vault with: `vault_<cluster>`.
    pub fn identity_name(&self) -> String {
        let cluster = if self.cluster.is_empty() {
            "default"
        } else {
            &self.cluster
        };
        format!("vault_{cluster}")
    }
}

impl Task {
    /// The task's `vault` block, typed; `None` without one (or one that does not decode).
    pub fn vault_block(&self) -> Option<TaskVault> {
        let v = self.vault.as_ref()?;
        let mut t: TaskVault = serde_json::from_value(v.clone()).ok()?;
        if t.cluster.is_empty() {
            t.cluster = "default".into();
        }
        Some(t)
    }

    /// The identity the task logs in to Vault with: its own `identity "vault_<cluster>"` block,
    /// or the implicit one Nomad adds for a `vault` block (audience `vault.io`, neither env nor
    /// file). `None` for a task without a `vault` block.
    pub fn vault_identity(&self) -> Option<WorkloadIdentity> {
        let name = self.vault_block()?.identity_name();
        let mut w = self
            .identities
            .iter()
            .filter_map(parse)
            .find(|w| w.name == name)
            .unwrap_or_else(|| WorkloadIdentity {
                name: name.clone(),
                ..Default::default()
            });
        if w.audience.is_empty() {
            w.audience = vec![VAULT_IDENTITY_DEFAULT_AUD.into()];
        }
        Some(w)
    }
}

/// Claims of a workload identity JWT (Nomad's `IdentityClaims` and the registered JWT claims).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdentityClaims {
    pub nomad_namespace: String,
    pub nomad_job_id: String,
    pub nomad_allocation_id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub nomad_task: String,
    /// `<region>:<namespace>:<job>:<group>:<task>:<identity>`.
    pub sub: String,
    #[serde(
        serialize_with = "aud_ser",
        deserialize_with = "aud_de",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub aud: Vec<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub iss: String,
    /// Seconds since the epoch.
    pub iat: i64,
    pub nbf: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    pub jti: String,
    /// The task's `vault { namespace role }`, on `vault_<cluster>` identities.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vault_namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub vault_role: String,
    /// The agent's `vault { default_identity { extra_claims } }`, interpolated.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub extra_claims: std::collections::BTreeMap<String, String>,
}

/// One audience is a string, more an array (as go-jose writes `aud`).
fn aud_ser<S: serde::Serializer>(aud: &[String], s: S) -> Result<S::Ok, S::Error> {
    if aud.len() == 1 {
        s.serialize_str(&aud[0])
    } else {
        aud.serialize(s)
    }
}

fn aud_de<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Aud>::deserialize(d)? {
        None => vec![],
        Some(Aud::One(s)) => vec![s],
        Some(Aud::Many(v)) => v,
    })
}

impl IdentityClaims {
    /// The group the `sub` claim names (the fourth of its parts).
    pub fn group(&self) -> &str {
        self.sub.split(':').nth(3).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_vault_block_implies_its_login_identity() {
        let mut t = Task::default();
        assert_eq!(t.vault_identity(), None);
        t.vault = Some(json!({"Role": "web", "Env": false}));
        let v = t.vault_block().unwrap();
        assert_eq!(v.role, "web");
        assert!(!v.env);
        assert_eq!(v.cluster, "default");
        assert_eq!(v.change_mode, "restart");
        let named = t.named_identities();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].name, "vault_default");
        assert_eq!(named[0].audience, vec!["vault.io".to_string()]);
        assert!(!named[0].env && !named[0].file);
        // The task's own block for that identity wins (its audience, its TTL), once.
        t.identities =
            vec![json!({"Name": "vault_default", "Audience": ["vault.example"], "TTL": 60})];
        let named = t.named_identities();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].audience, vec!["vault.example".to_string()]);
        assert_eq!(named[0].ttl, 60);
        t.vault = Some(json!({"Cluster": "other"}));
        assert_eq!(t.vault_identity().unwrap().name, "vault_other");
        assert_eq!(t.named_identities().len(), 2);
    }

    #[test]
    fn default_identity_is_implicit_and_named_ones_are_kept_apart() {
        let mut t = Task::default();
        let d = t.default_identity();
        assert_eq!((d.name.as_str(), d.env, d.file), ("default", false, false));
        assert_eq!(d.audience, vec!["nomadproject.io".to_string()]);
        t.identity = Some(json!({"Env": true, "File": true, "TTL": 3_000_000_000i64}));
        t.identities = vec![json!({"Name": "vault_default", "Audience": ["vault.io"]})];
        let d = t.default_identity();
        assert!(d.env && d.file);
        assert_eq!(d.ttl, 3_000_000_000);
        let named = t.named_identities();
        assert_eq!(named.len(), 1);
        assert_eq!(named[0].handle(), "vault_default");
        assert_eq!(named[0].audience, vec!["vault.io".to_string()]);
    }

    #[test]
    fn one_audience_is_a_string_and_both_forms_decode() {
        let c = IdentityClaims {
            aud: vec!["a".into()],
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["aud"], json!("a"));
        assert!(v.get("exp").is_none());
        let back: IdentityClaims = serde_json::from_value(v).unwrap();
        assert_eq!(back.aud, vec!["a".to_string()]);
        let many: IdentityClaims = serde_json::from_value(json!({"aud": ["a", "b"]})).unwrap();
        assert_eq!(many.aud.len(), 2);
    }
}
