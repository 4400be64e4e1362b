//! Sends one HTTP request to Consul and returns status, headers and body: over reqwest for
//! HTTP(S), or over a small hyper HTTP/1 client on a `tokio::net::UnixStream` for Unix sockets
//! (reqwest cannot speak to Unix sockets).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

use crate::config::{ConsulConfig, Endpoint};
use crate::error::ConsulError;

/// One request, transport-independent. `path_and_query` starts with `/v1/`.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub path_and_query: String,
    /// The path alone, for error messages (no query: it may name secrets).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub timeout: Duration,
}

/// One answer.
#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The connection to Consul.
#[derive(Debug, Clone)]
pub enum Transport {
    Http {
        client: reqwest::Client,
        base: String,
    },
    Unix {
        path: PathBuf,
    },
}

impl Transport {
    /// Builds the transport for a configuration (reads TLS files for HTTPS).
    pub fn new(config: &ConsulConfig) -> Result<Transport, ConsulError> {
        match Endpoint::parse(&config.address)? {
            Endpoint::Unix { path } => {
                if config.ca_file.is_some()
                    || config.cert_file.is_some()
                    || config.key_file.is_some()
                {
                    return Err(ConsulError::TlsConfig(
                        "TLS files are set but the address is a unix socket, which Consul serves without TLS".into(),
                    ));
                }
                Ok(Transport::Unix { path })
            }
            Endpoint::Http { base, https } => {
                let mut builder = reqwest::Client::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .pool_idle_timeout(Duration::from_secs(90))
                    .user_agent(concat!("caravan-consul/", env!("CARGO_PKG_VERSION")));
                let tls_files = config.ca_file.is_some() || config.cert_file.is_some();
                if https || tls_files || config.tls_skip_verify {
                    builder = crate::tls::configure(builder, config)?;
                }
                let client = builder.build().map_err(|e| {
                    ConsulError::TlsConfig(format!("cannot build the HTTP client: {e}"))
                })?;
                Ok(Transport::Http { client, base })
            }
        }
    }

    /// A printable form of where requests go.
    pub fn address(&self) -> String {
        match self {
            Transport::Http { base, .. } => base.clone(),
            Transport::Unix { path } => format!("unix://{}", path.display()),
        }
    }

    /// Sends a request; network failures and time-outs become [`ConsulError`]s, HTTP error
    /// statuses do not (the caller decides what a 404 means).
    pub async fn send(&self, req: Request) -> Result<Response, ConsulError> {
        let timeout = req.timeout;
        let method = req.method.to_string();
        let path = req.path.clone();
        let fut = async {
            match self {
                Transport::Http { client, base } => send_reqwest(client, base, req).await,
                Transport::Unix { path } => send_unix(path, req).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(message)) => Err(ConsulError::Unreachable {
                address: self.address(),
                method,
                path,
                message,
            }),
            Err(_) => Err(ConsulError::Timeout {
                address: self.address(),
                method,
                path,
                timeout,
            }),
        }
    }
}

async fn send_reqwest(
    client: &reqwest::Client,
    base: &str,
    req: Request,
) -> Result<Response, String> {
    let url = format!("{base}{}", req.path_and_query);
    let mut builder = client.request(req.method, url).headers(req.headers);
    if let Some(body) = req.body {
        builder = builder.body(body);
    }
    let resp = builder.send().await.map_err(|e| error_chain(&e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| error_chain(&e))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}

async fn send_unix(socket: &std::path::Path, req: Request) -> Result<Response, String> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| format!("connect to unix socket {}: {e}", socket.display()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| error_chain(&e))?;
    let conn_task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "consul unix socket connection ended");
        }
    });
    let mut builder = http::Request::builder()
        .method(req.method)
        .uri(&req.path_and_query)
        .header(http::header::HOST, "localhost")
        .header(
            http::header::USER_AGENT,
            concat!("caravan-consul/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in req.headers.iter() {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Full::new(req.body.unwrap_or_default()))
        .map_err(|e| format!("invalid request: {e}"))?;
    let result = async {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| error_chain(&e))?;
        let (parts, body) = resp.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| error_chain(&e))?
            .to_bytes();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
    .await;
    conn_task.abort();
    result
}

/// An error and its causes on one line ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
