//! The template hook's Vault data source: `secret` (KV v1 and v2 reads, writes for dynamic
//! credentials), `secrets` (lists) and `pkiCert`, read with the task's current Vault token
//! (the vault hook replaces it after a new login), and when each must be renewed or read
//! again, by consul-template's rules: a renewable lease is renewed at a third of its duration
//! and read again shortly before it can no longer be extended; a secret without a renewable
//! lease is read again at about 90 % of its lease (`vault_default_lease_duration` when it has
//! none, as KV secrets); a certificate is issued again at about 90 % of its lifetime.

use caravan_templates::Dependency;
use caravan_vault::{Client, MountInfo, VaultError};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a read of template data failed.
#[derive(Debug, Clone)]
pub struct FetchError {
    pub message: String,
    /// Vault could not be reached (an outage), as opposed to an answer refusing the read.
    pub outage: bool,
}

impl From<VaultError> for FetchError {
    fn from(e: VaultError) -> Self {
        FetchError {
            outage: e.is_unreachable(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A failure that is not an outage.
pub fn refused(message: impl Into<String>) -> FetchError {
    FetchError {
        message: message.into(),
        outage: false,
    }
}

/// The lease of what was fetched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lease {
    pub id: String,
    pub duration: Duration,
    pub renewable: bool,
    /// A certificate's remaining lifetime when it was issued.
    pub cert_lifetime: Option<Duration>,
    /// The duration it was first given (a renewal that gives less is near its max TTL).
    pub first_duration: Duration,
}

/// A dependency's value and its lease.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub value: Value,
    pub lease: Lease,
}

/// Reads Vault for one task.
pub struct VaultSource {
    /// The task's token client, shared with the vault hook.
    client: Arc<Mutex<Client>>,
    /// The mount of each path read, looked up once (consul-template's KV v2 preflight).
    mounts: Mutex<HashMap<String, Option<MountInfo>>>,
    /// The lease of each dependency's last fetch, and when it was fetched.
    leases: Mutex<HashMap<Dependency, (Lease, Instant)>>,
    pub default_lease: Duration,
}

impl VaultSource {
    pub fn new(client: Arc<Mutex<Client>>, default_lease: Duration) -> VaultSource {
        VaultSource {
            client,
            mounts: Mutex::new(HashMap::new()),
            leases: Mutex::new(HashMap::new()),
            default_lease,
        }
    }

    fn client(&self) -> Client {
        super::vault::current_client(&self.client)
    }

    async fn read_path(&self, c: &Client, path: &str) -> Result<String, FetchError> {
        let known = match self.mounts.lock() {
            Ok(g) => g.get(path).cloned(),
            Err(p) => p.into_inner().get(path).cloned(),
        };
        let mount = match known {
            Some(m) => m,
            None => {
                let m = c.mount_info(path).await?;
                if let Ok(mut g) = self.mounts.lock() {
                    g.insert(path.to_string(), m.clone());
                }
                m
            }
        };
        Ok(match mount {
            Some(m) if m.is_kv2() => caravan_vault::kv2_data_path(path, &m.path),
            _ => path.to_string(),
        })
    }

    /// The lease of `dep`'s last fetch and when that was.
    pub fn lease_of(&self, dep: &Dependency) -> Option<(Lease, Instant)> {
        match self.leases.lock() {
            Ok(g) => g.get(dep).cloned(),
            Err(p) => p.into_inner().get(dep).cloned(),
        }
    }

    fn record(&self, dep: &Dependency, lease: Lease) {
        match self.leases.lock() {
            Ok(mut g) => g.insert(dep.clone(), (lease, Instant::now())),
            Err(p) => p.into_inner().insert(dep.clone(), (lease, Instant::now())),
        };
    }

    /// Fetches a Vault dependency and remembers its lease.
    pub async fn fetch(&self, dep: &Dependency) -> Result<Fetched, FetchError> {
        let f = self.fetch_once(dep).await?;
        self.record(dep, f.lease.clone());
        Ok(f)
    }

    /// Renews `dep`'s lease and remembers the new one.
    pub async fn renew_dep(&self, dep: &Dependency, lease: &Lease) -> Result<Lease, FetchError> {
        let l = self.renew(lease).await?;
        self.record(dep, l.clone());
        Ok(l)
    }

    async fn fetch_once(&self, dep: &Dependency) -> Result<Fetched, FetchError> {
        let c = self.client();
        let data_of = |data: &[(String, String)]| -> Map<String, Value> {
            data.iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        };
        match dep {
            Dependency::VaultRead { path } => {
                let p = self.read_path(&c, path).await?;
                let s = c
                    .read_secret(&p)
                    .await?
                    .filter(|s| !kv2_deleted(&s.data))
                    .ok_or_else(|| refused(format!("no secret exists at {p}")))?;
                Ok(secret_fetched(&s))
            }
            Dependency::VaultWrite { path, data } => {
                let s = c
                    .write_secret(path, &data_of(data))
                    .await?
                    .ok_or_else(|| refused(format!("writing {path} returned no secret")))?;
                Ok(secret_fetched(&s))
            }
            Dependency::VaultList { path } => Ok(Fetched {
                value: json!(c.list_secrets(path).await?),
                lease: Lease::default(),
            }),
            Dependency::VaultPki { path, data } => {
                let s = c
                    .write_secret(path, &data_of(data))
                    .await?
                    .ok_or_else(|| refused(format!("{path} issued no certificate")))?;
                let d = &s.data;
                let cert = d["certificate"].as_str().unwrap_or_default();
                if cert.is_empty() {
                    return Err(refused(format!("{path} answered without a certificate")));
                }
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let lifetime = d["expiration"]
                    .as_u64()
                    .map(|exp| Duration::from_secs(exp.saturating_sub(now)));
                Ok(Fetched {
                    value: json!({
                        "Cert": format!("{}\n", cert.trim_end()),
                        "Key": d["private_key"].as_str().map(|k| format!("{}\n", k.trim_end())).unwrap_or_default(),
                        "CA": d["issuing_ca"].as_str().map(|k| format!("{}\n", k.trim_end())).unwrap_or_default(),
                        "CAChain": d["ca_chain"].as_array().cloned().unwrap_or_default(),
                    }),
                    lease: Lease {
                        cert_lifetime: lifetime,
                        ..Lease::default()
                    },
                })
            }
            other => Err(refused(format!("{other} is not a Vault dependency"))),
        }
    }

    /// Renews a lease; the new lease (its data unchanged).
    async fn renew(&self, lease: &Lease) -> Result<Lease, FetchError> {
        let s = self.client().renew_lease(&lease.id, None).await?;
        Ok(Lease {
            duration: Duration::from_secs(s.lease_duration),
            renewable: s.renewable || lease.renewable,
            ..lease.clone()
        })
    }
}

/// A KV v2 secret whose newest version is deleted reads as absent (consul-template's rule).
fn kv2_deleted(data: &Value) -> bool {
    data.get("metadata")
        .and_then(|m| m.get("deletion_time"))
        .and_then(|t| t.as_str())
        .is_some_and(|t| !t.is_empty())
        && data.get("data").is_some_and(Value::is_null)
}

fn secret_fetched(s: &caravan_vault::Secret) -> Fetched {
    let duration = Duration::from_secs(s.lease_duration);
    Fetched {
        value: s.template_value(),
        lease: Lease {
            id: s.lease_id.clone(),
            duration,
            renewable: s.renewable && !s.lease_id.is_empty(),
            cert_lifetime: None,
            first_duration: duration,
        },
    }
}

/// How long to wait before renewing (renewable) or reading again (anything else);
/// `jitter` in [0, 1) spreads many tasks apart.
pub fn next_check(lease: &Lease, default: Duration, jitter: f64) -> Duration {
    let mut base = lease.cert_lifetime.unwrap_or(lease.duration);
    if base.is_zero() {
        base = default;
    }
    let secs = base.as_secs_f64();
    let wait = if lease.renewable {
        secs / 3.0 * (jitter + 1.0) / 2.0
    } else {
        secs * (0.9 + (jitter - 0.5) * 0.1)
    };
    Duration::from_secs_f64(wait.max(0.05))
}

/// Whether a renewed lease is too short to renew again before it ends: the secret must be
/// read again (the lease reached its max TTL).
pub fn near_max_ttl(renewed: &Lease) -> bool {
    let grace = renewed
        .first_duration
        .mul_f64(0.1)
        .max(Duration::from_secs(1));
    renewed.duration <= grace || renewed.duration < renewed.first_duration.mul_f64(0.5)
}

/// When a leased secret runs out.
pub fn expiry(lease: &Lease, fetched_at: Instant) -> Option<Instant> {
    (!lease.duration.is_zero()).then(|| fetched_at + lease.duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_follow_consul_templates_rules() {
        let d = Duration::from_secs;
        let kv = Lease::default();
        // No lease: about 90 % of the default.
        assert_eq!(next_check(&kv, d(300), 0.5), d(270));
        assert!(next_check(&kv, d(300), 0.0) >= d(255));
        assert!(next_check(&kv, d(300), 0.999) <= d(285));
        // A renewable lease: renewed between a sixth and a third of it.
        let db = Lease {
            id: "database/creds/ro/x".into(),
            duration: d(60),
            renewable: true,
            first_duration: d(60),
            ..Default::default()
        };
        assert_eq!(next_check(&db, d(300), 0.0), d(10));
        assert!(next_check(&db, d(300), 0.999) <= d(20));
        // A certificate: at about 90 % of its lifetime.
        let cert = Lease {
            cert_lifetime: Some(d(100)),
            ..Default::default()
        };
        assert_eq!(next_check(&cert, d(300), 0.5), d(90));
        // Renewals cut short by the max TTL mean a new read.
        assert!(!near_max_ttl(&db));
        assert!(near_max_ttl(&Lease {
            duration: d(5),
            ..db.clone()
        }));
    }

    #[test]
    fn deleted_kv2_versions_read_as_absent() {
        assert!(kv2_deleted(&json!({
            "data": null,
            "metadata": {"deletion_time": "2026-01-01T00:00:00Z", "version": 2}
        })));
        assert!(!kv2_deleted(&json!({
            "data": {"a": "b"},
            "metadata": {"deletion_time": "", "version": 2}
        })));
    }
}
