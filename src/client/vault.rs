//! The client's Vault clusters (agent `vault "<name>" {}` blocks with `enabled = true`) as the
//! Vault task hook uses them, and the node attributes that advertise them (`vault.version`,
//! `vault.accessible`, ...; `vault.<name>.*` for clusters other than `default`), which the
//! scheduler's implied `${attr.vault.version}` constraint reads.

use std::collections::BTreeMap;
use std::time::Duration;

/// One Vault cluster the client logs tasks in to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSettings {
    pub address: String,
    /// Vault Enterprise namespace; a task's `vault { namespace }` overrides it.
    pub namespace: String,
    /// Where the JWT auth method is mounted (`jwt-nomad`).
    pub jwt_auth_backend_path: String,
    /// The role for tasks whose `vault` block names none.
    pub create_from_role: String,
    /// `ca_file`, `ca_path`, `cert_file`, `key_file`, `tls_skip_verify`.
    pub tls: caravan_vault::TlsConfig,
}

impl Default for VaultSettings {
    fn default() -> Self {
        VaultSettings {
            address: "https://vault.service.consul:8200".into(),
            namespace: String::new(),
            jwt_auth_backend_path: "jwt-nomad".into(),
            create_from_role: String::new(),
            tls: Default::default(),
        }
    }
}

impl VaultSettings {
    pub fn client(&self) -> Result<caravan_vault::Client, caravan_vault::VaultError> {
        caravan_vault::Client::new(&caravan_vault::VaultConfig {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            tls: self.tls.clone(),
            ..Default::default()
        })
    }
}

/// Clusters by name.
pub type VaultClusters = BTreeMap<String, VaultSettings>;

/// Node attributes for the configured clusters: reachable ones advertise their version.
pub async fn fingerprint(clusters: &VaultClusters) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, s) in clusters {
        let prefix = if name == "default" {
            "vault".to_string()
        } else {
            format!("vault.{name}")
        };
        let health = match s.client() {
            Ok(c) => tokio::time::timeout(Duration::from_secs(2), c.health())
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        let Some(h) = health else {
            tracing::warn!(cluster = %name, address = %s.address, "Vault is not reachable");
            out.insert(format!("{prefix}.accessible"), "false".into());
            continue;
        };
        out.insert(format!("{prefix}.accessible"), "true".into());
        for (attr, key) in [
            ("version", "version"),
            ("cluster_id", "cluster_id"),
            ("cluster_name", "cluster_name"),
        ] {
            if let Some(v) = h.get(key).and_then(|v| v.as_str()) {
                // OpenBao's versions are semver; Vault's may carry a `+ent` suffix.
                out.insert(format!("{prefix}.{attr}"), v.to_string());
            }
        }
    }
    out
}
