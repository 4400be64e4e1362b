//! The client's Vault clusters (agent `vault "<name>" {}` blocks with `enabled = true`) as the
//! Vault task hook uses them, and the node attributes that advertise them (`vault.version`,
//! `vault.accessible`, ...; `vault.<name>.*` for clusters other than `default`), which the
//! scheduler's implied `${attr.vault.version}` constraint reads. The attributes are read
//! again periodically, so a Vault that comes up after the client makes the node eligible for
//! Vault jobs; one that goes away flips `vault.accessible` to false but keeps the version it
//! had (its tasks keep running, see [`super::vault_outage`]).

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

/// Whether a node attribute is one [`fingerprint`] sets.
fn owned(key: &str) -> bool {
    key == "vault" || key.starts_with("vault.")
}

/// Merges a new fingerprint into the node's attributes: a cluster that stopped answering
/// keeps its last version, cluster ID and name, with `accessible` false.
pub fn merge_attributes(
    attrs: &mut BTreeMap<String, String>,
    fresh: &BTreeMap<String, String>,
) -> bool {
    let before = attrs.clone();
    let kept: BTreeMap<String, String> = attrs
        .iter()
        .filter(|(k, _)| owned(k) && !k.ends_with(".accessible"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    attrs.retain(|k, _| !owned(k));
    for (k, v) in &kept {
        let prefix = k.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
        let down = fresh
            .get(&format!("{prefix}.accessible"))
            .map(String::as_str)
            == Some("false");
        if down {
            attrs.insert(k.clone(), v.clone());
        }
    }
    attrs.extend(fresh.iter().map(|(k, v)| (k.clone(), v.clone())));
    *attrs != before
}

/// Fingerprints the client's Vault clusters every `period`, re-registering the node when
/// their attributes change.
pub(super) fn spawn_fingerprint(client: std::sync::Arc<super::Client>, period: Duration) {
    if client.shared.config.vault.is_empty() {
        return;
    }
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let fresh = fingerprint(&client.shared.config.vault).await;
            let changed = client
                .shared
                .update_node(|node| merge_attributes(&mut node.attributes, &fresh));
            if changed {
                tracing::info!("Vault attributes changed; updating the node");
                client.register().await;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn vault_coming_up_or_going_away_updates_the_node_attributes() {
        let mut node = attrs(&[("cpu.arch", "amd64"), ("vault.accessible", "false")]);
        // Vault answered: its version arrives.
        let up = attrs(&[("vault.accessible", "true"), ("vault.version", "2.7.2")]);
        assert!(merge_attributes(&mut node, &up));
        assert_eq!(node["vault.version"], "2.7.2");
        assert_eq!(node["cpu.arch"], "amd64");
        assert!(!merge_attributes(&mut node, &up), "no change, no update");
        // Vault went away: not accessible, the version stays (running tasks ride it out).
        let down = attrs(&[("vault.accessible", "false")]);
        assert!(merge_attributes(&mut node, &down));
        assert_eq!(node["vault.accessible"], "false");
        assert_eq!(node["vault.version"], "2.7.2");
        // Another cluster's attributes are kept apart.
        let two = attrs(&[
            ("vault.accessible", "true"),
            ("vault.version", "2.7.3"),
            ("vault.other.accessible", "false"),
        ]);
        assert!(merge_attributes(&mut node, &two));
        assert_eq!(node["vault.version"], "2.7.3");
        assert!(!node.contains_key("vault.other.version"));
    }
}
