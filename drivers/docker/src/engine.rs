//! Connecting to the container engine's Docker-compatible API (a unix socket or plain HTTP),
//! and reading what the fingerprint reports about it.

use bollard::{Docker, API_DEFAULT_VERSION};
use caravan_driver::DriverError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Seconds a plain request (inspect, create, kill) may take before it is abandoned.
pub const REQUEST_TIMEOUT_SECS: u64 = 120;

/// Response-header timeout for requests that stay open while a container runs (wait, logs):
/// effectively none.
const STREAM_TIMEOUT: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A connection to one engine: one client for ordinary requests and one without a timeout
/// for the long-lived ones.
#[derive(Debug, Clone)]
pub struct Engine {
    pub endpoint: String,
    pub api: Docker,
    pub stream: Docker,
}

impl Engine {
    /// Connects to `endpoint`: `unix:///path`, `/path`, `tcp://host:port` or
    /// `http://host:port`. No request is made; a missing socket is an error.
    pub fn connect(endpoint: &str) -> Result<Engine, DriverError> {
        let api = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if endpoint.starts_with('/') {
            Docker::connect_with_unix(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if endpoint.starts_with("tcp://") || endpoint.starts_with("http://") {
            Docker::connect_with_http(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else {
            return Err(DriverError::InvalidConfig(format!(
                "container engine endpoint {endpoint:?} is not supported; use unix:///path/to.sock \
                 or tcp://host:port (TLS endpoints are not supported)"
            )));
        }
        .map_err(|e| {
            DriverError::Other(format!(
                "cannot connect to the container engine at {endpoint}: {e}"
            ))
        })?;
        let stream = api.clone().with_timeout(STREAM_TIMEOUT);
        Ok(Engine {
            endpoint: endpoint.to_string(),
            api,
            stream,
        })
    }

    /// Node attributes under `driver.<name>.`: the engine's version and its runtimes.
    /// Fails when the engine does not answer.
    pub async fn attributes(&self, name: &str) -> Result<BTreeMap<String, String>, DriverError> {
        let version = self
            .api
            .version()
            .await
            .map_err(|e| engine_error(&self.endpoint, e))?;
        let mut attrs = BTreeMap::new();
        attrs.insert(format!("driver.{name}"), "1".to_string());
        if let Some(v) = version.version {
            attrs.insert(format!("driver.{name}.version"), v);
        }
        if let Ok(info) = self.api.info().await {
            let mut runtimes: Vec<String> = info
                .runtimes
                .map(|r| r.into_keys().collect())
                .unwrap_or_default();
            runtimes.sort();
            if !runtimes.is_empty() {
                attrs.insert(format!("driver.{name}.runtimes"), runtimes.join(","));
            }
            if let Some(os) = info.os_type {
                attrs.insert(format!("driver.{name}.os_type"), os);
            }
        }
        Ok(attrs)
    }
}

/// An engine error worded for an operator.
pub fn engine_error(endpoint: &str, e: bollard::errors::Error) -> DriverError {
    DriverError::Other(format!("container engine at {endpoint}: {}", describe(&e)))
}

/// The engine's own message when it sent one, else bollard's description.
pub fn describe(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        // Podman reports a failed pull this way; bollard's own wording omits the message.
        bollard::errors::Error::DockerStreamError { error }
        | bollard::errors::Error::DockerContainerWaitError { error, .. } => error.clone(),
        other => other.to_string(),
    }
}

/// True when the engine answered 404 (no such container or image).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// True when a create failed because a container of that name exists: Docker answers 409,
/// Podman 500 saying the name "is already in use".
pub fn is_name_in_use(e: &bollard::errors::Error) -> bool {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => *status_code == 409 || message.contains("is already in use"),
        _ => false,
    }
}

/// True when the engine answered 304 (already started/stopped).
pub fn is_not_modified(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 304,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_forms() {
        assert!(Engine::connect("unix:///nonexistent/caravan-test.sock")
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/caravan-test.sock"));
        assert!(Engine::connect("tcp://127.0.0.1:1").is_ok());
        let e = Engine::connect("ssh://host").unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }
}
