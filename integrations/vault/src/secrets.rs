//! Generic secret engine calls for templates: read, write and list any path, renew a secret's
//! lease, and find the KV engine version of a mount (consul-template's KV v2 preflight). The
//! answer keeps Vault's whole secret (lease, data, warnings) so a caller can renew it.

use crate::{Client, VaultError};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// A secret as Vault answers it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Secret {
    pub request_id: String,
    pub lease_id: String,
    /// Seconds.
    pub lease_duration: u64,
    pub renewable: bool,
    pub data: Value,
    pub warnings: Option<Vec<String>>,
}

impl Secret {
    /// The secret as consul-template hands it to a template (`.Data`, `.LeaseID`, ...).
    pub fn template_value(&self) -> Value {
        json!({
            "RequestID": self.request_id,
            "LeaseID": self.lease_id,
            "LeaseDuration": self.lease_duration,
            "Renewable": self.renewable,
            "Data": if self.data.is_null() { Value::Object(Map::new()) } else { self.data.clone() },
            "Warnings": self.warnings.clone().unwrap_or_default(),
        })
    }
}

/// Where a path's secret engine is mounted and, for KV, its version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountInfo {
    /// The mount path with a trailing slash (`secret/`).
    pub path: String,
    /// `"kv"`, `"pki"`, ...
    pub kind: String,
    /// The KV engine's `version` option (`"2"` for KV v2).
    pub version: Option<String>,
}

impl MountInfo {
    pub fn is_kv2(&self) -> bool {
        self.version.as_deref() == Some("2")
    }
}

fn decode(path: &str, v: Option<Value>) -> Result<Option<Secret>, VaultError> {
    match v {
        None => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| VaultError::Decode {
                path: path.to_string(),
                message: e.to_string(),
            }),
    }
}

impl Client {
    /// Reads `path`; `Ok(None)` when nothing is there.
    pub async fn read_secret(&self, path: &str) -> Result<Option<Secret>, VaultError> {
        let path = path.trim_matches('/');
        match self.request(reqwest::Method::GET, path, None).await {
            Err(e) if e.status() == Some(404) => Ok(None),
            r => decode(path, r?),
        }
    }

    /// Writes `data` to `path` and returns Vault's answer (a dynamic credential, a
    /// certificate, ...); `Ok(None)` when Vault answers nothing.
    pub async fn write_secret(
        &self,
        path: &str,
        data: &Map<String, Value>,
    ) -> Result<Option<Secret>, VaultError> {
        let path = path.trim_matches('/');
        let body = Value::Object(data.clone());
        let v = self
            .request(reqwest::Method::PUT, path, Some(&body))
            .await?;
        decode(path, v)
    }

    /// The keys under `path` (Vault's LIST), sorted; empty when there are none.
    pub async fn list_secrets(&self, path: &str) -> Result<Vec<String>, VaultError> {
        let path = path.trim_matches('/');
        let v = match self
            .request(reqwest::Method::GET, &format!("{path}?list=true"), None)
            .await
        {
            Err(e) if e.status() == Some(404) => return Ok(vec![]),
            r => r?,
        };
        let mut keys: Vec<String> = v
            .as_ref()
            .and_then(|v| v["data"]["keys"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        keys.sort();
        Ok(keys)
    }

    /// Renews a secret's lease; the answer carries the new `lease_duration` (no data).
    pub async fn renew_lease(
        &self,
        lease_id: &str,
        increment: Option<Duration>,
    ) -> Result<Secret, VaultError> {
        let mut body = json!({ "lease_id": lease_id });
        if let Some(d) = increment {
            body["increment"] = json!(d.as_secs());
        }
        let path = "sys/leases/renew";
        let v = self
            .request(reqwest::Method::PUT, path, Some(&body))
            .await?;
        Ok(decode(path, v)?.unwrap_or_default())
    }

    /// The mount `path` lives in (`sys/internal/ui/mounts/<path>`, the preflight Vault's
    /// own CLI and consul-template make); `Ok(None)` when the token may not see it.
    pub async fn mount_info(&self, path: &str) -> Result<Option<MountInfo>, VaultError> {
        let p = format!("sys/internal/ui/mounts/{}", path.trim_matches('/'));
        let v = match self.request(reqwest::Method::GET, &p, None).await {
            Err(e) if matches!(e.status(), Some(403) | Some(404)) => return Ok(None),
            r => r?,
        };
        let Some(data) = v.as_ref().map(|v| &v["data"]) else {
            return Ok(None);
        };
        Ok(Some(MountInfo {
            path: data["path"].as_str().unwrap_or_default().to_string(),
            kind: data["type"].as_str().unwrap_or_default().to_string(),
            version: data["options"]["version"].as_str().map(String::from),
        }))
    }
}

/// The API path of a KV v2 read given as consul-template accepts it: `secret/app` and
/// `secret/data/app` both read `secret/data/app`; `metadata/` and `subkeys/` paths are kept.
pub fn kv2_data_path(path: &str, mount: &str) -> String {
    let path = path.trim_matches('/');
    let mount = mount.trim_matches('/');
    if path == mount {
        return format!("{mount}/data");
    }
    let Some(rest) = path.strip_prefix(&format!("{mount}/")) else {
        return path.to_string();
    };
    if ["data/", "metadata/", "subkeys/"]
        .iter()
        .any(|p| rest.starts_with(p))
    {
        return path.to_string();
    }
    format!("{mount}/data/{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv2_paths_get_data_inserted_as_consul_template_does() {
        assert_eq!(kv2_data_path("secret/app", "secret/"), "secret/data/app");
        assert_eq!(
            kv2_data_path("secret/data/app", "secret/"),
            "secret/data/app"
        );
        assert_eq!(
            kv2_data_path("secret/metadata/app", "secret/"),
            "secret/metadata/app"
        );
        assert_eq!(kv2_data_path("/secret/", "secret/"), "secret/data");
        assert_eq!(kv2_data_path("kv/team/a", "kv/team/"), "kv/team/data/a");
        assert_eq!(kv2_data_path("other/x", "secret/"), "other/x");
        assert_eq!(kv2_data_path("secretive/x", "secret/"), "secretive/x");
    }

    #[test]
    fn secrets_reach_templates_in_consul_templates_shape() {
        let s: Secret = serde_json::from_value(json!({
            "request_id": "r", "lease_id": "db/creds/x", "lease_duration": 60,
            "renewable": true, "data": {"username": "u"}, "warnings": null,
        }))
        .unwrap();
        let v = s.template_value();
        assert_eq!(v["LeaseID"], "db/creds/x");
        assert_eq!(v["LeaseDuration"], 60);
        assert_eq!(v["Data"]["username"], "u");
        assert_eq!(v["Warnings"], json!([]));
    }
}
