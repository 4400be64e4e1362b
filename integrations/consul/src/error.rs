//! The errors of the Consul client, with messages that say what to check.

use std::path::PathBuf;
use std::time::Duration;

/// Anything that can go wrong talking to Consul.
#[derive(Debug, thiserror::Error)]
pub enum ConsulError {
    /// The configured address cannot be used.
    #[error("invalid Consul address {address:?}: {reason} (expected http://host:port, https://host:port or unix:///path/to/consul.sock)")]
    InvalidAddress { address: String, reason: String },

    /// A TLS file named in the configuration cannot be read.
    #[error("cannot read Consul TLS {what} file {path}: {source}")]
    TlsFile {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A TLS file was read but is not usable PEM, or the TLS settings do not fit together.
    #[error("invalid Consul TLS configuration: {0}")]
    TlsConfig(String),

    /// Consul could not be reached (connection refused, DNS, TLS handshake...).
    #[error("cannot reach Consul at {address} ({method} {path}): {message}; is the Consul agent running and is the address right?")]
    Unreachable {
        address: String,
        method: String,
        path: String,
        message: String,
    },

    /// Consul did not answer in time.
    #[error("Consul at {address} did not answer {method} {path} within {timeout:?}")]
    Timeout {
        address: String,
        method: String,
        path: String,
        timeout: Duration,
    },

    /// Consul answered with an error status; `body` is Consul's own message.
    #[error("Consul returned {status} for {method} {path}: {body}{hint}", hint = hint(*status))]
    Api {
        status: u16,
        method: String,
        path: String,
        body: String,
    },

    /// Consul's answer could not be decoded.
    #[error("unexpected answer from Consul to {method} {path}: {message}")]
    Decode {
        method: String,
        path: String,
        message: String,
    },
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (check the Consul ACL token: consul { token } or CONSUL_HTTP_TOKEN)",
        _ => "",
    }
}

impl ConsulError {
    /// The HTTP status Consul answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConsulError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether retrying later may help (Consul unreachable, timed out, or a 5xx/429).
    pub fn is_retryable(&self) -> bool {
        match self {
            ConsulError::Unreachable { .. } | ConsulError::Timeout { .. } => true,
            ConsulError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
