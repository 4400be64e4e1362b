//! The HTTP(S) getter: streams a URL to a file with the artifact's headers, enforcing the
//! client's `http_read_timeout` (between chunks) and `http_max_size`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::error::{GetterError, Result};
use crate::source::redact;

/// Something told about the progress of a download: `(bytes so far, total if known)`.
pub type Progress<'a> = &'a (dyn Fn(u64, Option<u64>) + Send + Sync);

/// Builds the shared HTTP client (rustls, redirects followed, no overall timeout: the read
/// timeout is applied per chunk).
pub fn client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(10))
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| GetterError::Http {
            url: String::new(),
            message: format!("cannot build HTTP client: {e}"),
        })
}

/// Downloads `url` into `dest` (created or truncated). Returns the number of bytes written.
pub async fn download(
    client: &reqwest::Client,
    url: &Url,
    headers: &BTreeMap<String, String>,
    dest: &Path,
    read_timeout: Duration,
    max_size: u64,
    progress: Option<Progress<'_>>,
) -> Result<u64> {
    let shown = redact(url);
    let mut req = client.get(url.clone());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = send(req, &shown, read_timeout).await?;
    let status = resp.status();
    if !status.is_success() {
        return Err(GetterError::HttpStatus {
            url: shown.clone(),
            status: status.as_u16(),
        });
    }
    save(resp, dest, &shown, read_timeout, max_size, progress).await
}

/// The validators a server gave for a download (`ETag`, `Last-Modified`), sent back as
/// `If-None-Match` / `If-Modified-Since` to revalidate a cached copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// Whether there is anything to revalidate with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// What a conditional download did.
#[derive(Debug)]
pub enum Conditional {
    /// The server answered 304: the cached copy is current; nothing was written.
    NotModified,
    /// A full body was written; these are its validators.
    Downloaded { bytes: u64, validators: Validators },
}

/// Downloads `url` into `dest` unless the server says (304) that the copy described by `known`
/// is still current.
#[allow(clippy::too_many_arguments)]
pub async fn download_conditional(
    client: &reqwest::Client,
    url: &Url,
    headers: &BTreeMap<String, String>,
    known: Option<&Validators>,
    dest: &Path,
    read_timeout: Duration,
    max_size: u64,
    progress: Option<Progress<'_>>,
) -> Result<Conditional> {
    let shown = redact(url);
    let mut req = client.get(url.clone());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(k) = known {
        if let Some(e) = &k.etag {
            req = req.header("if-none-match", e.as_str());
        }
        if let Some(lm) = &k.last_modified {
            req = req.header("if-modified-since", lm.as_str());
        }
    }
    let resp = send(req, &shown, read_timeout).await?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_MODIFIED && known.is_some() {
        return Ok(Conditional::NotModified);
    }
    if !status.is_success() {
        return Err(GetterError::HttpStatus {
            url: shown.clone(),
            status: status.as_u16(),
        });
    }
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let validators = Validators {
        etag: header("etag"),
        last_modified: header("last-modified"),
    };
    let bytes = save(resp, dest, &shown, read_timeout, max_size, progress).await?;
    Ok(Conditional::Downloaded { bytes, validators })
}

/// Sends a request, waiting at most `read_timeout` for the response head.
pub async fn send(
    req: reqwest::RequestBuilder,
    shown: &str,
    read_timeout: Duration,
) -> Result<reqwest::Response> {
    tokio::time::timeout(read_timeout, req.send())
        .await
        .map_err(|_| GetterError::ReadTimeout {
            url: shown.to_string(),
            secs: read_timeout.as_secs(),
        })?
        .map_err(|e| GetterError::Http {
            url: shown.to_string(),
            message: error_chain(&e),
        })
}

/// Streams a successful response's body into `dest` (created or truncated), enforcing
/// `read_timeout` between chunks and `max_size` (0 = no limit). Returns the bytes written.
pub async fn save(
    resp: reqwest::Response,
    dest: &Path,
    shown: &str,
    read_timeout: Duration,
    max_size: u64,
    progress: Option<Progress<'_>>,
) -> Result<u64> {
    let http_err = |message: String| GetterError::Http {
        url: shown.to_string(),
        message,
    };
    let total = resp.content_length();
    if max_size > 0 && total.is_some_and(|t| t > max_size) {
        return Err(GetterError::TooLarge {
            url: shown.to_string(),
            limit: max_size,
        });
    }
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(|e| GetterError::io("create", dest, e))?;
    let mut stream = resp.bytes_stream();
    let mut written: u64 = 0;
    loop {
        let next = tokio::time::timeout(read_timeout, stream.next())
            .await
            .map_err(|_| GetterError::ReadTimeout {
                url: shown.to_string(),
                secs: read_timeout.as_secs(),
            })?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| http_err(error_chain(&e)))?;
        written += chunk.len() as u64;
        if max_size > 0 && written > max_size {
            return Err(GetterError::TooLarge {
                url: shown.to_string(),
                limit: max_size,
            });
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| GetterError::io("write", dest, e))?;
        if let Some(p) = progress {
            p(written, total);
        }
    }
    file.flush()
        .await
        .map_err(|e| GetterError::io("write", dest, e))?;
    file.sync_all()
        .await
        .map_err(|e| GetterError::io("sync", dest, e))?;
    Ok(written)
}

/// Fetches a small text document (a `file:` checksum list), at most 1 MiB.
pub async fn fetch_text(
    client: &reqwest::Client,
    url: &Url,
    headers: &BTreeMap<String, String>,
    read_timeout: Duration,
) -> Result<String> {
    let tmp = tempfile::NamedTempFile::new()
        .map_err(|e| GetterError::io("create", "temporary file", e))?;
    download(
        client,
        url,
        headers,
        tmp.path(),
        read_timeout,
        1 << 20,
        None,
    )
    .await?;
    std::fs::read_to_string(tmp.path()).map_err(|e| GetterError::io("read", tmp.path(), e))
}

pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}
