//! [`ConsulClient`]: builds requests (path escaping, `dc`/`ns`/`partition`/`index`/`wait`/
//! consistency parameters, `X-Consul-Token`), sends them over the transport, and turns Consul's
//! answers into values or [`ConsulError`]s. The endpoint groups live in `agent`, `catalog`,
//! `kv` and `status`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::de::DeserializeOwned;

use crate::config::ConsulConfig;
use crate::duration::format_go_duration;
use crate::error::ConsulError;
use crate::query::{Consistency, QueryMeta, QueryOptions, WriteOptions};
use crate::transport::{Request, Response, Transport};

/// Time allowed for a request that does not block.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Consul's default blocking wait, when `wait_time` is not set.
const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// A Consul HTTP API client. Cheap to clone (shares one connection pool).
#[derive(Debug, Clone)]
pub struct ConsulClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ConsulConfig,
    transport: Transport,
}

/// Percent-encodes a path segment; `/` is kept when `keep_slash` (KV keys).
pub(crate) fn escape(segment: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn encode_query(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                escape(k, false)
            } else {
                format!("{}={}", escape(k, false), escape(v, false))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl ConsulClient {
    /// Builds a client; fails on an unusable address or unreadable TLS files.
    pub fn new(config: ConsulConfig) -> Result<ConsulClient, ConsulError> {
        let transport = Transport::new(&config)?;
        Ok(ConsulClient {
            inner: Arc::new(Inner { config, transport }),
        })
    }

    /// The configuration this client was built from.
    pub fn config(&self) -> &ConsulConfig {
        &self.inner.config
    }

    /// Where requests go (`http://...` or `unix:///...`).
    pub fn address(&self) -> String {
        self.inner.transport.address()
    }

    fn scope_params(
        &self,
        params: &mut Vec<(String, String)>,
        dc: &Option<String>,
        ns: &Option<String>,
        partition: &Option<String>,
    ) {
        let c = &self.inner.config;
        if let Some(dc) = dc.as_ref().or(c.datacenter.as_ref()) {
            params.push(("dc".into(), dc.clone()));
        }
        if let Some(ns) = ns.as_ref().or(c.namespace.as_ref()) {
            params.push(("ns".into(), ns.clone()));
        }
        if let Some(p) = partition.as_ref().or(c.partition.as_ref()) {
            params.push(("partition".into(), p.clone()));
        }
    }

    fn token_header(&self, token: &Option<String>) -> Result<HeaderMap, ConsulError> {
        let mut headers = HeaderMap::new();
        if let Some(t) = token.as_ref().or(self.inner.config.token.as_ref()) {
            let value = HeaderValue::from_str(t).map_err(|_| ConsulError::InvalidAddress {
                address: self.address(),
                reason: "the ACL token holds characters that cannot go in an HTTP header".into(),
            })?;
            headers.insert("x-consul-token", value);
        }
        Ok(headers)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        params: Vec<(String, String)>,
        headers: HeaderMap,
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<Response, ConsulError> {
        let query = encode_query(&params);
        let path_and_query = if query.is_empty() {
            path.to_string()
        } else {
            format!("{path}?{query}")
        };
        tracing::trace!(%method, path, "consul request");
        self.inner
            .transport
            .send(Request {
                method,
                path_and_query,
                path: path.to_string(),
                headers,
                body,
                timeout,
            })
            .await
    }

    fn api_error(method: &Method, path: &str, resp: &Response) -> ConsulError {
        ConsulError::Api {
            status: resp.status.as_u16(),
            method: method.to_string(),
            path: path.to_string(),
            body: String::from_utf8_lossy(&resp.body).trim().to_string(),
        }
    }

    pub(crate) fn decode<T: DeserializeOwned>(
        method: &Method,
        path: &str,
        body: &[u8],
    ) -> Result<T, ConsulError> {
        serde_json::from_slice(body).map_err(|e| ConsulError::Decode {
            method: method.to_string(),
            path: path.to_string(),
            message: e.to_string(),
        })
    }

    /// A read. Returns `None` on 404 (Consul's "no such key"), the raw body otherwise.
    pub(crate) async fn query_raw(
        &self,
        path: &str,
        mut params: Vec<(String, String)>,
        q: &QueryOptions,
    ) -> Result<(Option<Bytes>, QueryMeta), ConsulError> {
        self.scope_params(&mut params, &q.datacenter, &q.namespace, &q.partition);
        match q.consistency {
            Consistency::Default => {}
            Consistency::Consistent => params.push(("consistent".into(), String::new())),
            Consistency::Stale => params.push(("stale".into(), String::new())),
        }
        let mut timeout = REQUEST_TIMEOUT;
        if q.wait_index > 0 {
            params.push(("index".into(), q.wait_index.to_string()));
            let wait = q.wait_time.unwrap_or(DEFAULT_WAIT);
            // Consul adds up to wait/16 of jitter; leave room for it and the round trip.
            timeout = wait + wait / 16 + Duration::from_secs(15);
        }
        if let Some(wait) = q.wait_time {
            params.push(("wait".into(), format_go_duration(wait)));
        }
        if let Some(near) = &q.near {
            params.push(("near".into(), near.clone()));
        }
        for tag in &q.tags {
            params.push(("tag".into(), tag.clone()));
        }
        if let Some(filter) = &q.filter {
            params.push(("filter".into(), filter.clone()));
        }
        let headers = self.token_header(&q.token)?;
        let resp = self
            .send(Method::GET, path, params, headers, None, timeout)
            .await?;
        let meta = QueryMeta::from_headers(&resp.headers);
        if resp.status == http::StatusCode::NOT_FOUND {
            return Ok((None, meta));
        }
        if !resp.status.is_success() {
            return Err(Self::api_error(&Method::GET, path, &resp));
        }
        Ok((Some(resp.body), meta))
    }

    /// A read decoded as JSON; 404 is an error.
    pub(crate) async fn query<T: DeserializeOwned>(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        q: &QueryOptions,
    ) -> Result<(T, QueryMeta), ConsulError> {
        match self.query_raw(path, params, q).await? {
            (Some(body), meta) => Ok((Self::decode(&Method::GET, path, &body)?, meta)),
            (None, _) => Err(ConsulError::Api {
                status: 404,
                method: "GET".into(),
                path: path.to_string(),
                body: "not found".into(),
            }),
        }
    }

    /// A write (PUT/DELETE) with an optional body; returns the answer's body.
    pub(crate) async fn write(
        &self,
        method: Method,
        path: &str,
        mut params: Vec<(String, String)>,
        body: Option<Bytes>,
        w: &WriteOptions,
    ) -> Result<Bytes, ConsulError> {
        self.scope_params(&mut params, &w.datacenter, &w.namespace, &w.partition);
        let mut headers = self.token_header(&w.token)?;
        if body.is_some() {
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        let resp = self
            .send(method.clone(), path, params, headers, body, REQUEST_TIMEOUT)
            .await?;
        if !resp.status.is_success() {
            return Err(Self::api_error(&method, path, &resp));
        }
        Ok(resp.body)
    }

    /// A PUT with a JSON body.
    pub(crate) async fn put_json<B: serde::Serialize>(
        &self,
        path: &str,
        params: Vec<(String, String)>,
        body: &B,
        w: &WriteOptions,
    ) -> Result<Bytes, ConsulError> {
        let json = serde_json::to_vec(body).map_err(|e| ConsulError::Decode {
            method: "PUT".into(),
            path: path.to_string(),
            message: format!("cannot encode the request: {e}"),
        })?;
        self.write(Method::PUT, path, params, Some(Bytes::from(json)), w)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_paths_and_queries() {
        assert_eq!(escape("a/b c", true), "a/b%20c");
        assert_eq!(escape("a/b", false), "a%2Fb");
        assert_eq!(
            encode_query(&[
                ("passing".into(), String::new()),
                ("tag".into(), "a&b".into())
            ]),
            "passing&tag=a%26b"
        );
    }
}
