//! Client configuration: where Consul is (HTTP, HTTPS or a Unix socket), the ACL token, the
//! datacenter, namespace and partition, and TLS files. Mirrors `consul {}` in Nomad's agent
//! configuration and the `CONSUL_*` environment variables.

use std::path::PathBuf;

use crate::error::ConsulError;

/// How to reach and talk to Consul.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsulConfig {
    /// `http://host:port`, `https://host:port`, `unix:///path/to.sock`, or `host:port` (HTTP).
    pub address: String,
    /// ACL token sent as `X-Consul-Token`.
    pub token: Option<String>,
    /// Datacenter for queries (`?dc=`); none means the agent's own.
    pub datacenter: Option<String>,
    /// Consul Enterprise namespace (`?ns=`).
    pub namespace: Option<String>,
    /// Consul Enterprise admin partition (`?partition=`).
    pub partition: Option<String>,
    /// PEM CA bundle to verify Consul's certificate.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (with `key_file`) for mutual TLS.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Skip verifying Consul's certificate (never in production).
    pub tls_skip_verify: bool,
}

impl Default for ConsulConfig {
    fn default() -> Self {
        ConsulConfig {
            address: "http://127.0.0.1:8500".into(),
            token: None,
            datacenter: None,
            namespace: None,
            partition: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            tls_skip_verify: false,
        }
    }
}

impl ConsulConfig {
    /// The default configuration overridden by Consul's environment variables:
    /// `CONSUL_HTTP_ADDR`, `CONSUL_HTTP_TOKEN`, `CONSUL_HTTP_SSL`, `CONSUL_HTTP_SSL_VERIFY`,
    /// `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`, `CONSUL_NAMESPACE`,
    /// `CONSUL_PARTITION`.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut c = ConsulConfig::default();
        let ssl = get("CONSUL_HTTP_SSL").is_some_and(|v| truthy(&v));
        if let Some(addr) = get("CONSUL_HTTP_ADDR") {
            c.address = if ssl && !addr.contains("://") {
                format!("https://{addr}")
            } else {
                addr
            };
        } else if ssl {
            c.address = "https://127.0.0.1:8501".into();
        }
        c.token = get("CONSUL_HTTP_TOKEN");
        c.ca_file = get("CONSUL_CACERT").map(PathBuf::from);
        c.cert_file = get("CONSUL_CLIENT_CERT").map(PathBuf::from);
        c.key_file = get("CONSUL_CLIENT_KEY").map(PathBuf::from);
        c.tls_skip_verify = get("CONSUL_HTTP_SSL_VERIFY").is_some_and(|v| !truthy(&v));
        c.namespace = get("CONSUL_NAMESPACE");
        c.partition = get("CONSUL_PARTITION");
        c
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "t" | "true" | "yes")
}

/// Where requests go, parsed from [`ConsulConfig::address`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `http(s)://host:port`, without a trailing slash.
    Http { base: String, https: bool },
    /// A Unix domain socket.
    Unix { path: PathBuf },
}

impl Endpoint {
    /// Parses an address the way Consul's CLI does (a bare `host:port` means HTTP).
    pub fn parse(address: &str) -> Result<Endpoint, ConsulError> {
        let invalid = |reason: &str| ConsulError::InvalidAddress {
            address: address.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = address.trim();
        if trimmed.is_empty() {
            return Err(invalid("it is empty"));
        }
        if let Some(path) = trimmed.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a unix socket path must be absolute (unix:///path)",
                ));
            }
            return Ok(Endpoint::Unix {
                path: PathBuf::from(path),
            });
        }
        let (scheme, rest) = match trimmed.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_string(), trimmed),
        };
        let https = match scheme.as_str() {
            "http" => false,
            "https" => true,
            other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(invalid("expected host:port with no path"));
        }
        let base = format!("{scheme}://{host}");
        reqwest::Url::parse(&base).map_err(|e| invalid(&e.to_string()))?;
        Ok(Endpoint::Http { base, https })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        assert_eq!(
            Endpoint::parse("127.0.0.1:8500").ok(),
            Some(Endpoint::Http {
                base: "http://127.0.0.1:8500".into(),
                https: false
            })
        );
        assert_eq!(
            Endpoint::parse("https://consul.local:8501/").ok(),
            Some(Endpoint::Http {
                base: "https://consul.local:8501".into(),
                https: true
            })
        );
        assert_eq!(
            Endpoint::parse("unix:///run/consul.sock").ok(),
            Some(Endpoint::Unix {
                path: "/run/consul.sock".into()
            })
        );
        assert!(Endpoint::parse("unix://relative.sock").is_err());
        assert!(Endpoint::parse("ftp://x:1").is_err());
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse("http://host:1/v1").is_err());
    }

    #[test]
    fn reads_consul_environment() {
        let env = |k: &str| match k {
            "CONSUL_HTTP_ADDR" => Some("10.0.0.1:8501".to_string()),
            "CONSUL_HTTP_SSL" => Some("true".to_string()),
            "CONSUL_HTTP_SSL_VERIFY" => Some("false".to_string()),
            "CONSUL_HTTP_TOKEN" => Some("secret".to_string()),
            _ => None,
        };
        let c = ConsulConfig::from_lookup(env);
        assert_eq!(c.address, "https://10.0.0.1:8501");
        assert!(c.tls_skip_verify);
        assert_eq!(c.token.as_deref(), Some("secret"));
        assert_eq!(c.namespace, None);
    }
}
