//! A small Vault (and OpenBao) HTTP API client for Caravan's Vault integration: JWT login with a
//! workload identity, token lookup/renew/revoke of the client's own token, KV v1/v2 reads,
//! and for templates any path's read, write and list, lease renewal and the KV v2 mount
//! preflight ([`secrets`]). Every request carries `X-Vault-Namespace` when one is set, and
//! transient failures (connection errors, 5xx, 429) are retried with exponential back-off;
//! answers Vault gives on purpose (4xx) are returned at once, with Vault's own error
//! messages. `https` addresses use rustls with the agent's TLS settings ([`TlsConfig`]).
pub mod dev_server;
pub mod secrets;
mod tls;

pub use secrets::{kv2_data_path, MountInfo, Secret};
pub use tls::TlsConfig;

use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Vault answered with an error status; `errors` are Vault's messages.
    #[error("Vault {method} {path}: {status}: {}", errors.join("; "))]
    Api {
        method: &'static str,
        path: String,
        status: u16,
        errors: Vec<String>,
    },
    /// Vault could not be reached (after the retries).
    #[error("Vault {method} {path}: {source}")]
    Transport {
        method: &'static str,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Vault {path}: unexpected answer: {message}")]
    Decode { path: String, message: String },
    #[error("invalid Vault address {0:?}")]
    Address(String),
    /// A TLS file that cannot be read or used.
    #[error("Vault TLS: {0}")]
    Tls(String),
}

impl VaultError {
    /// The HTTP status of an answered request.
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether Vault could not be reached at all (an outage rather than a refusal).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, VaultError::Transport { .. })
            || matches!(self, VaultError::Api { status, .. } if *status >= 500)
    }
}

/// How failed requests are retried.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts after the first one.
    pub attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            initial: Duration::from_millis(250),
            max: Duration::from_secs(5),
        }
    }
}

/// Where Vault is and how to talk to it.
#[derive(Debug, Clone, Default)]
pub struct VaultConfig {
    /// `http(s)://host:port`.
    pub address: String,
    /// Enterprise namespace sent as `X-Vault-Namespace` (empty: none).
    pub namespace: String,
    pub retry: Retry,
    /// Per-request timeout; zero means 30 s.
    pub timeout: Duration,
    /// CA, client certificate and verification for `https` addresses.
    pub tls: TlsConfig,
}

/// The `auth` part of a login or renewal answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Auth {
    pub client_token: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub token_policies: Vec<String>,
    /// Seconds.
    pub lease_duration: u64,
    pub renewable: bool,
    pub entity_id: String,
}

/// `auth/token/lookup-self`'s `data`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    pub id: String,
    pub accessor: String,
    pub policies: Vec<String>,
    pub display_name: String,
    pub meta: Option<std::collections::BTreeMap<String, String>>,
    /// Seconds left.
    pub ttl: i64,
    pub renewable: bool,
    pub entity_id: String,
}

/// A secret read from a KV engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvSecret {
    /// The key/value pairs.
    pub data: serde_json::Map<String, Value>,
    /// KV v2 metadata (`version`, `created_time`, ...); `Null` for KV v1.
    pub metadata: Value,
    /// Seconds (KV v1 may give a lease).
    pub lease_duration: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Envelope {
    data: Value,
    auth: Option<Auth>,
    lease_duration: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ErrorBody {
    errors: Vec<String>,
}

/// A Vault client, cheap to clone, optionally holding a token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: reqwest::Url,
    namespace: String,
    token: Option<String>,
    retry: Retry,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("address", &self.base.as_str())
            .field("namespace", &self.namespace)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Client {
    pub fn new(cfg: &VaultConfig) -> Result<Client, VaultError> {
        let mut addr = cfg.address.trim().to_string();
        if !addr.ends_with('/') {
            addr.push('/');
        }
        let base = reqwest::Url::parse(&addr)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| VaultError::Address(cfg.address.clone()))?;
        let timeout = if cfg.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            cfg.timeout
        };
        let http = tls::configure(reqwest::Client::builder().timeout(timeout), &cfg.tls)?
            .build()
            .map_err(|e| VaultError::Address(format!("{}: {e}", cfg.address)))?;
        Ok(Client {
            http,
            base,
            namespace: cfg.namespace.clone(),
            token: None,
            retry: cfg.retry.clone(),
        })
    }

    /// The same client using `token`.
    pub fn with_token(&self, token: impl Into<String>) -> Client {
        let mut c = self.clone();
        c.token = Some(token.into());
        c
    }

    /// The same client in another namespace (empty: none).
    pub fn with_namespace(&self, namespace: impl Into<String>) -> Client {
        let mut c = self.clone();
        c.namespace = namespace.into();
        c
    }

    pub fn address(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One API call (`path` below `/v1/`), retried on transient failures; `Ok(None)` for an
    /// empty answer (204).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, VaultError> {
        let name: &'static str = match method {
            reqwest::Method::GET => "GET",
            reqwest::Method::POST => "POST",
            reqwest::Method::PUT => "PUT",
            reqwest::Method::DELETE => "DELETE",
            _ => "LIST",
        };
        let path = path.trim_start_matches('/');
        let url = self
            .base
            .join(&format!("v1/{path}"))
            .map_err(|_| VaultError::Address(format!("{}v1/{path}", self.base)))?;
        let mut delay = self.retry.initial;
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), url.clone());
            if !self.namespace.is_empty() {
                req = req.header("X-Vault-Namespace", &self.namespace);
            }
            if let Some(t) = &self.token {
                req = req.header("X-Vault-Token", t);
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let err = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        if text.trim().is_empty() {
                            return Ok(None);
                        }
                        return serde_json::from_str(&text).map(Some).map_err(|e| {
                            VaultError::Decode {
                                path: path.to_string(),
                                message: e.to_string(),
                            }
                        });
                    }
                    let mut errors = serde_json::from_str::<ErrorBody>(&text)
                        .map(|b| b.errors)
                        .unwrap_or_default();
                    if errors.is_empty() && !text.trim().is_empty() {
                        errors.push(text.trim().to_string());
                    }
                    VaultError::Api {
                        method: name,
                        path: path.to_string(),
                        status,
                        errors,
                    }
                }
                Err(source) => VaultError::Transport {
                    method: name,
                    path: path.to_string(),
                    source,
                },
            };
            let transient = err.is_unreachable() || err.status() == Some(429);
            if !transient || attempt >= self.retry.attempts {
                return Err(err);
            }
            attempt += 1;
            tracing::debug!(error = %err, attempt, "Vault request failed, retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(self.retry.max);
        }
    }

    async fn envelope(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Envelope, VaultError> {
        let v = self.request(method, path, body).await?;
        match v {
            None => Ok(Envelope::default()),
            Some(v) => serde_json::from_value(v).map_err(|e| VaultError::Decode {
                path: path.to_string(),
                message: e.to_string(),
            }),
        }
    }

    fn auth_of(env: Envelope, path: &str) -> Result<Auth, VaultError> {
        env.auth
            .filter(|a| !a.client_token.is_empty())
            .ok_or_else(|| VaultError::Decode {
                path: path.to_string(),
                message: "no auth in the answer".into(),
            })
    }

    /// Logs in to the JWT auth method mounted at `mount` (`jwt-nomad`) with `role` (empty: the
    /// method's default role) and a signed JWT.
    pub async fn jwt_login(&self, mount: &str, role: &str, jwt: &str) -> Result<Auth, VaultError> {
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let mut body = serde_json::json!({ "jwt": jwt });
        if !role.is_empty() {
            body["role"] = Value::String(role.to_string());
        }
        let env = self
            .envelope(reqwest::Method::POST, &path, Some(&body))
            .await?;
        Self::auth_of(env, &path)
    }

    /// The client's token as Vault sees it.
    pub async fn lookup_self(&self) -> Result<TokenInfo, VaultError> {
        let path = "auth/token/lookup-self";
        let env = self.envelope(reqwest::Method::GET, path, None).await?;
        serde_json::from_value(env.data).map_err(|e| VaultError::Decode {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Renews the client's token, asking for `increment` (None: the token's own TTL).
    pub async fn renew_self(&self, increment: Option<Duration>) -> Result<Auth, VaultError> {
        let path = "auth/token/renew-self";
        let body = match increment {
            Some(d) => serde_json::json!({ "increment": format!("{}s", d.as_secs()) }),
            None => serde_json::json!({}),
        };
        let env = self
            .envelope(reqwest::Method::POST, path, Some(&body))
            .await?;
        Self::auth_of(env, path)
    }

    /// Revokes the client's token (and its children).
    pub async fn revoke_self(&self) -> Result<(), VaultError> {
        self.request(reqwest::Method::POST, "auth/token/revoke-self", None)
            .await
            .map(|_| ())
    }

    /// Reads `path` from a KV v1 engine mounted at `mount`; `Ok(None)` when it does not exist.
    pub async fn kv1_read(&self, mount: &str, path: &str) -> Result<Option<KvSecret>, VaultError> {
        let full = format!("{}/{}", mount.trim_matches('/'), path.trim_matches('/'));
        let env = match self.envelope(reqwest::Method::GET, &full, None).await {
            Err(e) if e.status() == Some(404) => return Ok(None),
            r => r?,
        };
        let data = match env.data {
            Value::Object(m) => m,
            _ => Default::default(),
        };
        Ok(Some(KvSecret {
            data,
            metadata: Value::Null,
            lease_duration: env.lease_duration,
        }))
    }

    /// Reads the newest version of `path` from a KV v2 engine mounted at `mount` (the API path
    /// is `<mount>/data/<path>`); `Ok(None)` when it does not exist or its newest version is
    /// deleted.
    pub async fn kv2_read(&self, mount: &str, path: &str) -> Result<Option<KvSecret>, VaultError> {
        let full = format!(
            "{}/data/{}",
            mount.trim_matches('/'),
            path.trim_matches('/')
        );
        let env = match self.envelope(reqwest::Method::GET, &full, None).await {
            Err(e) if e.status() == Some(404) => return Ok(None),
            r => r?,
        };
        let data = match env.data.get("data") {
            Some(Value::Object(m)) => m.clone(),
            _ => return Ok(None),
        };
        Ok(Some(KvSecret {
            data,
            metadata: env.data.get("metadata").cloned().unwrap_or(Value::Null),
            lease_duration: env.lease_duration,
        }))
    }

    /// `sys/health` read over plain HTTP (any status answers; vaultrs cannot parse OpenBao's).
    pub async fn health(&self) -> Result<Value, VaultError> {
        let path = "sys/health";
        let url = self
            .base
            .join("v1/sys/health")
            .map_err(|_| VaultError::Address(self.base.to_string()))?;
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|source| VaultError::Transport {
                method: "GET",
                path: path.into(),
                source,
            })?;
        resp.json().await.map_err(|e| VaultError::Decode {
            path: path.into(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_must_be_http_urls() {
        let bad = Client::new(&VaultConfig {
            address: "vault:8200".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(matches!(bad, VaultError::Address(_)), "{bad}");
        let c = Client::new(&VaultConfig {
            address: "http://127.0.0.1:8200".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.address(), "http://127.0.0.1:8200");
        assert!(!format!("{:?}", c.with_token("s.secret")).contains("s.secret"));
    }

    #[tokio::test]
    async fn unreachable_vault_is_retried_then_reported_as_an_outage() {
        // A port nothing listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(&VaultConfig {
            address: format!("http://127.0.0.1:{port}"),
            retry: Retry {
                attempts: 2,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(2),
            },
            ..Default::default()
        })
        .unwrap();
        let e = c.with_token("t").lookup_self().await.unwrap_err();
        assert!(e.is_unreachable(), "{e}");
        assert!(e.to_string().contains("auth/token/lookup-self"), "{e}");
    }
}
