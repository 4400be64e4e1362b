//! The HTTP client the commands use: Nomad's `/v1` API with `region`/`namespace` query
//! parameters, the `X-Nomad-Token` header, blocking queries (`index`/`wait` with the
//! `X-Nomad-Index` response header), and Nomad's error text for non-2xx answers.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Where and as whom to talk to the agent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientConfig {
    pub address: String,
    pub region: Option<String>,
    pub namespace: Option<String>,
    pub token: Option<String>,
}

/// An API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The agent answered with a non-2xx status; the body is its message.
    #[error("Unexpected response code: {code} ({body})")]
    Status { code: u16, body: String },
    #[error("{0}")]
    Transport(String),
    #[error("failed to decode the response: {0}")]
    Decode(String),
}

impl ApiError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Status { code: 404, .. })
    }
}

/// A blocking-query position: wait until the index passes `index`, at most `wait`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Blocking {
    pub index: u64,
    pub wait: Option<Duration>,
}

/// A client for one agent.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    pub config: ClientConfig,
}

/// Adds `http://` when the address has no scheme, and drops a trailing `/`.
pub fn normalize_address(addr: &str) -> String {
    let a = addr.trim().trim_end_matches('/');
    if a.contains("://") {
        a.to_string()
    } else {
        format!("http://{a}")
    }
}

impl Client {
    pub fn new(mut config: ClientConfig) -> Result<Self, ApiError> {
        config.address = normalize_address(&config.address);
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ApiError::Transport(format!("Error initializing client: {e}")))?;
        Ok(Client { http, config })
    }

    /// Sets the namespace requests are made in (job run uses the job's own).
    pub fn set_namespace(&mut self, ns: &str) {
        if !ns.is_empty() {
            self.config.namespace = Some(ns.to_string());
        }
    }

    pub fn set_region(&mut self, region: &str) {
        if !region.is_empty() {
            self.config.region = Some(region.to_string());
        }
    }

    fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        params: &[(&str, String)],
    ) -> reqwest::RequestBuilder {
        let url = format!("{}{}", self.config.address, path);
        let mut q: Vec<(String, String)> = vec![];
        if let Some(r) = &self.config.region {
            q.push(("region".into(), r.clone()));
        }
        if let Some(ns) = &self.config.namespace {
            if !params.iter().any(|(k, _)| *k == "namespace") {
                q.push(("namespace".into(), ns.clone()));
            }
        }
        q.extend(params.iter().map(|(k, v)| (k.to_string(), v.clone())));
        let mut rb = self.http.request(method, url);
        if !q.is_empty() {
            rb = rb.query(&q);
        }
        if let Some(t) = &self.config.token {
            rb = rb.header("X-Nomad-Token", t);
        }
        rb
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        if let Some(req) = rb.try_clone().and_then(|r| r.build().ok()) {
            tracing::debug!(method = %req.method(), url = %req.url(), "api request");
        }
        let resp = rb.send().await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            ApiError::Transport(msg)
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ApiError::Status {
                code: status.as_u16(),
                body: body.trim().to_string(),
            });
        }
        Ok(resp)
    }

    fn index_of(resp: &reqwest::Response) -> u64 {
        resp.headers()
            .get("X-Nomad-Index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ApiError> {
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        // Some writes (namespaces, node pools) answer with no body, as Nomad's do.
        let value: serde_json::Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))?
        };
        serde_json::from_value(caravan_structs::strip_nulls(value))
            .map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// GET, returning the decoded body and the `X-Nomad-Index`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        blocking: Option<Blocking>,
    ) -> Result<(T, u64), ApiError> {
        let mut p: Vec<(&str, String)> = params.to_vec();
        if let Some(b) = blocking {
            if b.index > 0 {
                p.push(("index", b.index.to_string()));
            }
            if let Some(w) = b.wait {
                p.push(("wait", format!("{}ms", w.as_millis())));
            }
        }
        let resp = self
            .send(self.request(reqwest::Method::GET, path, &p))
            .await?;
        let idx = Self::index_of(&resp);
        Ok((Self::decode(resp).await?, idx))
    }

    /// GET without blocking, body only.
    pub async fn get_value(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<Value, ApiError> {
        Ok(self.get::<Value>(path, params, None).await?.0)
    }

    /// GET returning the raw response, for streamed bodies (logs, file contents).
    pub async fn get_raw(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<reqwest::Response, ApiError> {
        self.send(self.request(reqwest::Method::GET, path, params))
            .await
    }

    /// PUT with a JSON body.
    pub async fn put<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        params: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let resp = self
            .send(self.request(reqwest::Method::PUT, path, params).json(body))
            .await?;
        Self::decode(resp).await
    }

    /// PUT with a raw body (a snapshot archive); the response as it came.
    pub async fn put_bytes(
        &self,
        path: &str,
        body: Vec<u8>,
        params: &[(&str, String)],
    ) -> Result<reqwest::Response, ApiError> {
        self.send(
            self.request(reqwest::Method::PUT, path, params)
                .header("Content-Type", "application/octet-stream")
                .body(body),
        )
        .await
    }

    /// DELETE.
    pub async fn delete<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let resp = self
            .send(self.request(reqwest::Method::DELETE, path, params))
            .await?;
        Self::decode(resp).await
    }
}

/// Escapes one path segment (job IDs may hold `/` or spaces).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_a_scheme() {
        assert_eq!(normalize_address("127.0.0.1:4646"), "http://127.0.0.1:4646");
        assert_eq!(normalize_address("https://x:1/"), "https://x:1");
    }

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("web/api 1"), "web%2Fapi%201");
        assert_eq!(seg("example"), "example");
    }

    #[test]
    fn status_errors_read_like_nomad() {
        let e = ApiError::Status {
            code: 404,
            body: "job not found".into(),
        };
        assert_eq!(
            e.to_string(),
            "Unexpected response code: 404 (job not found)"
        );
        assert!(e.is_not_found());
    }
}
