//! ACL objects as Nomad's API carries them: policies (named HCL rules), tokens (an accessor
//! ID that names it, a secret ID that proves it, a type, policies and roles, an optional
//! expiry) and roles (named sets of policies).

use serde::{Deserialize, Serialize};

pub const ACL_TOKEN_CLIENT: &str = "client";
pub const ACL_TOKEN_MANAGEMENT: &str = "management";
/// The policy the anonymous token (requests without a token) carries, when it exists.
pub const ANONYMOUS_POLICY: &str = "anonymous";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicy {
    pub name: String,
    pub description: String,
    /// The HCL (or JSON) rules.
    pub rules: String,
    /// Set for policies a job's workload identity is bound to.
    #[serde(rename = "JobACL", skip_serializing_if = "Option::is_none")]
    pub job_acl: Option<JobAcl>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// The job (optionally one group, or one task of it) whose workload identities a policy is
/// granted to (Nomad's `JobACL`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JobAcl {
    pub namespace: String,
    #[serde(rename = "JobID")]
    pub job_id: String,
    pub group: String,
    pub task: String,
}

/// `GET /v1/acl/policies` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicyListStub {
    pub name: String,
    pub description: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AclPolicy {
    pub fn stub(&self) -> AclPolicyListStub {
        AclPolicyListStub {
            name: self.name.clone(),
            description: self.description.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A role or policy a token or role refers to, by ID or name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclTokenRoleLink {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclRolePolicyLink {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub name: String,
    /// `client` or `management`.
    #[serde(rename = "Type")]
    pub kind: String,
    pub policies: Vec<String>,
    pub roles: Vec<AclTokenRoleLink>,
    pub global: bool,
    /// RFC 3339.
    pub create_time: String,
    /// RFC 3339; unset for tokens that never expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    /// Nanoseconds, as given at creation.
    #[serde(rename = "ExpirationTTL")]
    pub expiration_ttl: i64,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/acl/tokens` entries: everything but the secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclTokenListStub {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub kind: String,
    pub policies: Vec<String>,
    pub roles: Vec<AclTokenRoleLink>,
    pub global: bool,
    pub create_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_time: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AclToken {
    pub fn is_management(&self) -> bool {
        self.kind == ACL_TOKEN_MANAGEMENT
    }

    pub fn stub(&self) -> AclTokenListStub {
        AclTokenListStub {
            accessor_id: self.accessor_id.clone(),
            name: self.name.clone(),
            kind: self.kind.clone(),
            policies: self.policies.clone(),
            roles: self.roles.clone(),
            global: self.global,
            create_time: self.create_time.clone(),
            expiration_time: self.expiration_time.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclRole {
    #[serde(rename = "ID")]
    pub id: String,
    pub name: String,
    pub description: String,
    pub policies: Vec<AclRolePolicyLink>,
    pub create_index: u64,
    pub modify_index: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_uses_nomads_names() {
        let t = AclToken {
            accessor_id: "a".into(),
            secret_id: "s".into(),
            kind: ACL_TOKEN_CLIENT.into(),
            policies: vec!["readonly".into()],
            expiration_ttl: 1_000_000_000,
            ..Default::default()
        };
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["AccessorID"], "a");
        assert_eq!(v["SecretID"], "s");
        assert_eq!(v["Type"], "client");
        assert_eq!(v["ExpirationTTL"], 1_000_000_000i64);
        assert!(v.get("ExpirationTime").is_none());
        let stub = serde_json::to_value(t.stub()).unwrap();
        assert!(stub.get("SecretID").is_none(), "lists never carry secrets");
        let r: AclRole =
            serde_json::from_str(r#"{"Name":"ops","Policies":[{"Name":"readonly"}]}"#).unwrap();
        assert_eq!(r.policies[0].name, "readonly");
    }
}
