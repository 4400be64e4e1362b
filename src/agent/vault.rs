//! The agent's `vault "<name>" {}` blocks as the client uses them: enabled clusters with their
//! address (`VAULT_ADDR` when unset, as Nomad), namespace, JWT auth mount and default role.

use super::config::AgentConfig;
use crate::client::vault::{VaultClusters, VaultSettings};

pub fn vault_clusters(cfg: &AgentConfig) -> anyhow::Result<VaultClusters> {
    let mut out = VaultClusters::new();
    for (name, v) in &cfg.file.vault.0 {
        if v.enabled != Some(true) {
            continue;
        }
        let d = VaultSettings::default();
        let address = v
            .address
            .clone()
            .or_else(|| std::env::var("VAULT_ADDR").ok())
            .unwrap_or(d.address);
        let s = VaultSettings {
            address,
            namespace: v.namespace.clone().unwrap_or_default(),
            jwt_auth_backend_path: v
                .jwt_auth_backend_path
                .clone()
                .unwrap_or(d.jwt_auth_backend_path),
            create_from_role: v.create_from_role.clone().unwrap_or_default(),
            tls: caravan_vault::TlsConfig {
                ca_file: v
                    .ca_file
                    .clone()
                    .or_else(|| std::env::var("VAULT_CACERT").ok())
                    .map(Into::into),
                ca_path: v
                    .ca_path
                    .clone()
                    .or_else(|| std::env::var("VAULT_CAPATH").ok())
                    .map(Into::into),
                cert_file: v
                    .cert_file
                    .clone()
                    .or_else(|| std::env::var("VAULT_CLIENT_CERT").ok())
                    .map(Into::into),
                key_file: v
                    .key_file
                    .clone()
                    .or_else(|| std::env::var("VAULT_CLIENT_KEY").ok())
                    .map(Into::into),
                skip_verify: v.tls_skip_verify.unwrap_or(false),
                server_name: v
                    .tls_server_name
                    .clone()
                    .or_else(|| std::env::var("VAULT_TLS_SERVER_NAME").ok())
                    .filter(|n| !n.is_empty()),
            },
        };
        s.client()
            .map_err(|e| anyhow::anyhow!("vault {name:?}: {e}"))?;
        out.insert(name.clone(), s);
    }
    Ok(out)
}

/// `default_identity { aud ttl env file }` of each enabled cluster that has one, as the
/// identity the servers add to tasks using that cluster.
pub fn default_identities(
    cfg: &AgentConfig,
) -> std::collections::BTreeMap<String, caravan_structs::WorkloadIdentity> {
    cfg.file
        .vault
        .0
        .iter()
        .filter(|(_, v)| v.enabled == Some(true))
        .filter_map(|(name, v)| {
            let d = v.default_identity.as_ref()?;
            Some((
                name.clone(),
                caravan_structs::WorkloadIdentity {
                    audience: d.aud.clone().unwrap_or_default(),
                    ttl: d.ttl.map(|t| t.0).unwrap_or(0),
                    env: d.env.unwrap_or(false),
                    file: d.file.unwrap_or(false),
                    filepath: d.filepath.clone().unwrap_or_default(),
                    extra_claims: serde_json::to_value(&d.extra_claims)
                        .unwrap_or(serde_json::Value::Null),
                    ..Default::default()
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(hcl: &str) -> anyhow::Result<AgentConfig> {
        let dir = std::env::temp_dir().join(format!("caravan-vault-{}", caravan_structs::new_id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("agent.hcl");
        std::fs::write(&path, hcl)?;
        let cfg = super::super::config::from_args(&[
            "-dev".to_string(),
            format!("-config={}", path.display()),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        cfg
    }

    #[test]
    fn enabled_vault_blocks_become_client_clusters() {
        let cfg = load(
            r#"
vault {
  enabled = true
  address = "http://127.0.0.1:8200"
  create_from_role = "nomad-workloads"
  namespace = "ns1"
  default_identity {
    aud = ["vault.example"]
    ttl = "1h"
    extra_claims = {
      unique_id = "${job.id}-${task.name}"
    }
  }
}
vault "other" {
  enabled = false
  address = "http://other:8200"
}
"#,
        )
        .unwrap();
        let c = vault_clusters(&cfg).unwrap();
        assert_eq!(c.len(), 1);
        let d = &c["default"];
        assert_eq!(d.address, "http://127.0.0.1:8200");
        assert_eq!(d.jwt_auth_backend_path, "jwt-nomad");
        assert_eq!(d.create_from_role, "nomad-workloads");
        assert_eq!(d.namespace, "ns1");
        let ids = default_identities(&cfg);
        assert_eq!(ids.len(), 1);
        assert_eq!(ids["default"].audience, vec!["vault.example".to_string()]);
        assert_eq!(ids["default"].ttl, 3_600_000_000_000);
        assert_eq!(
            ids["default"].extra_claims["unique_id"],
            "${job.id}-${task.name}"
        );
        assert!(vault_clusters(&load("").unwrap()).unwrap().is_empty());
        let e =
            vault_clusters(&load("vault {\n enabled = true\n address = \"nope\"\n}\n").unwrap())
                .unwrap_err();
        assert!(e.to_string().contains("invalid Vault address"), "{e}");
        let e = vault_clusters(
            &load(
                "vault {\n enabled = true\n address = \"https://v:8200\"\n \
                 ca_file = \"/nonexistent/ca.pem\"\n}\n",
            )
            .unwrap(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("reading the CA file /nonexistent/ca.pem"),
            "{e}"
        );
    }
}
