//! The S3 getter, as go-getter's: `s3::https://s3.amazonaws.com/bucket/key` (and the
//! `s3-<region>`/`s3.<region>` hosts, virtual-host names rewritten by detection, or any endpoint
//! such as `s3::http://127.0.0.1:9000/bucket/key` path-style), requests signed with our own
//! SigV4 signer. Credentials come from the options `aws_access_key_id`, `aws_access_key_secret`,
//! `aws_access_token`, else the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`
//! environment, else the shared credentials file (`aws_profile`/`AWS_PROFILE`/`default`);
//! without any the request is anonymous (public buckets). A key that is no object
//! but a prefix downloads every object under it (ListObjectsV2).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use url::Url;

use crate::error::{GetterError, Result};
use crate::http::{self, Progress};
use crate::sandbox;
use crate::sigv4::{self, Credentials, EMPTY_SHA256};
use crate::source::Source;

/// Where an S3 source points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `scheme://host[:port]` of the endpoint (path-style requests).
    pub endpoint: Url,
    pub bucket: String,
    /// The object key or prefix, without a leading `/`.
    pub key: String,
    pub region: String,
    /// `version`: an object version id.
    pub version: Option<String>,
    pub credentials: Option<Credentials>,
}

/// A variable of the agent's environment (a function so tests can pass their own).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Reads the bucket, key, region and credentials from a parsed S3 source.
pub fn locate(src: &Source, env: Env<'_>) -> Result<Location> {
    let invalid = |reason: &str| GetterError::InvalidSource {
        src: crate::source::redact(&src.url),
        reason: reason.to_string(),
    };
    let url = &src.url;
    let host = url.host_str().unwrap_or("").to_string();
    let (endpoint, path, host_region) = if url.scheme() == "s3" {
        // s3://bucket/key: the bucket is the host.
        (None, format!("{host}{}", url.path()), None::<String>)
    } else {
        let region = if host.ends_with(".amazonaws.com") {
            let first = host.split('.').next().unwrap_or("");
            let labels: Vec<&str> = host.split('.').collect();
            if let Some(r) = first.strip_prefix("s3-") {
                Some(r.to_string())
            } else if first == "s3" && labels.len() == 4 {
                Some(labels[1].to_string())
            } else {
                None
            }
        } else {
            None
        };
        let mut ep = url.clone();
        ep.set_path("/");
        ep.set_query(None);
        ep.set_fragment(None);
        (
            Some(ep),
            url.path().trim_start_matches('/').to_string(),
            region,
        )
    };
    let decoded = percent_decode(&path);
    let (bucket, key) = decoded.split_once('/').unwrap_or((decoded.as_str(), ""));
    if bucket.is_empty() {
        return Err(invalid(
            "an S3 source names a bucket and a key: s3::https://<endpoint>/<bucket>/<key>",
        ));
    }
    let param = |k: &str| src.params.get(k).filter(|v| !v.is_empty()).cloned();
    let region = param("region")
        .or(host_region)
        .or_else(|| env("AWS_REGION").filter(|v| !v.is_empty()))
        .or_else(|| env("AWS_DEFAULT_REGION").filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "us-east-1".to_string());
    let endpoint = match endpoint {
        Some(e) => e,
        None => Url::parse(&format!("https://s3.{region}.amazonaws.com/"))
            .map_err(|e| invalid(&format!("bad region {region:?}: {e}")))?,
    };
    let credentials = match (param("aws_access_key_id"), param("aws_access_key_secret")) {
        (Some(id), Some(secret)) => Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: param("aws_access_token"),
        }),
        (Some(_), None) | (None, Some(_)) => {
            return Err(GetterError::InvalidOption {
                name: "aws_access_key_id".into(),
                reason: "aws_access_key_id and aws_access_key_secret must be given together".into(),
            })
        }
        (None, None) => match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Some(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: env("AWS_SESSION_TOKEN").filter(|t| !t.is_empty()),
            }),
            _ => shared_credentials(param("aws_profile"), env)?,
        },
    };
    Ok(Location {
        endpoint,
        bucket: bucket.to_string(),
        key: key.to_string(),
        region,
        version: param("version"),
        credentials,
    })
}

/// Credentials from the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
/// `~/.aws/credentials`) for the `aws_profile` option, else `AWS_PROFILE`, else `default`. A
/// profile named by the option must exist; the implicit ones may be absent.
fn shared_credentials(profile_option: Option<String>, env: Env<'_>) -> Result<Option<Credentials>> {
    let explicit = profile_option.is_some();
    let profile = profile_option
        .or_else(|| env("AWS_PROFILE").filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".to_string());
    let path = match env("AWS_SHARED_CREDENTIALS_FILE").filter(|p| !p.is_empty()) {
        Some(p) => std::path::PathBuf::from(p),
        None => match env("HOME").filter(|h| !h.is_empty()) {
            Some(h) => Path::new(&h).join(".aws/credentials"),
            None => std::path::PathBuf::new(),
        },
    };
    let missing = |why: String| {
        if explicit {
            Err(GetterError::InvalidOption {
                name: "aws_profile".into(),
                reason: why,
            })
        } else {
            Ok(None)
        }
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            return missing(format!(
                "cannot read the shared credentials file {}: {e}",
                path.display()
            ))
        }
    };
    let (mut id, mut secret, mut token) = (None, None, None);
    let mut in_profile = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().to_string();
            match k.trim() {
                "aws_access_key_id" => id = Some(v),
                "aws_secret_access_key" => secret = Some(v),
                "aws_session_token" => token = Some(v),
                _ => {}
            }
        }
    }
    match (id, secret) {
        (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => Ok(Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: token.filter(|t| !t.is_empty()),
        })),
        _ => missing(format!(
            "profile {profile:?} in {} has no aws_access_key_id and aws_secret_access_key",
            path.display()
        )),
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Location {
    fn shown(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    /// A signed GET of `/<bucket>[/<key>]` with `query`.
    fn request(
        &self,
        client: &reqwest::Client,
        key: Option<&str>,
        query: &[(String, String)],
    ) -> Result<reqwest::RequestBuilder> {
        let mut path = format!("/{}", sigv4::uri_encode(&self.bucket, false));
        if let Some(k) = key {
            path.push('/');
            path.push_str(&sigv4::uri_encode(k, true));
        }
        let mut text = format!("{}{}", self.endpoint.as_str().trim_end_matches('/'), path);
        if !query.is_empty() {
            text.push('?');
            text.push_str(
                &query
                    .iter()
                    .map(|(k, v)| {
                        format!(
                            "{}={}",
                            sigv4::uri_encode(k, false),
                            sigv4::uri_encode(v, false)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("&"),
            );
        }
        let url = Url::parse(&text).map_err(|e| GetterError::S3 {
            url: self.shown(key.unwrap_or("")),
            message: format!("cannot build the request URL: {e}"),
        })?;
        let mut req = client.get(url.clone());
        let Some(creds) = &self.credentials else {
            return Ok(req);
        };
        let host = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
            None => url.host_str().unwrap_or("").to_string(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let date = sigv4::amz_date(now);
        let mut headers = vec![
            ("host".to_string(), host),
            ("x-amz-content-sha256".to_string(), EMPTY_SHA256.to_string()),
            ("x-amz-date".to_string(), date.clone()),
        ];
        if let Some(t) = &creds.session_token {
            headers.push(("x-amz-security-token".to_string(), t.clone()));
        }
        let auth = sigv4::authorization(
            &sigv4::Request {
                method: "GET",
                path: url.path(),
                query,
                headers: &headers,
                payload_sha256: EMPTY_SHA256,
            },
            creds,
            &self.region,
            "s3",
            &date,
        );
        for (k, v) in headers.iter().filter(|(k, _)| k != "host") {
            req = req.header(k.as_str(), v.as_str());
        }
        Ok(req.header("authorization", auth))
    }
}

/// An S3 error answer as a message a user can act on.
async fn status_error(resp: reqwest::Response, loc: &Location, key: &str) -> GetterError {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let code = xml_values(&body, "Code").into_iter().next();
    let msg = xml_values(&body, "Message").into_iter().next();
    let mut message = format!("server returned {status}");
    if let Some(c) = code {
        message.push_str(&format!(" {c}"));
    }
    if let Some(m) = msg {
        message.push_str(&format!(": {m}"));
    }
    if status == 403 {
        message.push_str(if loc.credentials.is_some() {
            " (check the credentials and the region, or the bucket policy)"
        } else {
            " (no credentials were sent: set the aws_access_key_id and aws_access_key_secret options or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY on the client)"
        });
    }
    GetterError::S3 {
        url: loc.shown(key),
        message,
    }
}

/// The text values of every `<tag>` element, XML entities decoded.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some(j) = rest.find(&close) else { break };
        out.push(xml_unescape(&rest[..j]));
        rest = &rest[j + close.len()..];
    }
    out
}

fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let ent = &rest[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// What an S3 fetch left in the staging directory.
pub enum Fetched {
    /// One object, downloaded to the given file.
    File(u64),
    /// Every object under a prefix, in a tree.
    Tree(u64),
}

/// Downloads the object (into `file`) or, when the key is a prefix, every object under it
/// (into the directory `tree`), within the client's `s3_timeout`.
#[allow(clippy::too_many_arguments)]
pub async fn fetch(
    client: &reqwest::Client,
    loc: &Location,
    file: &Path,
    tree: &Path,
    read_timeout: Duration,
    total_timeout: Duration,
    max_size: u64,
    progress: Option<Progress<'_>>,
) -> Result<Fetched> {
    let work = async {
        if !loc.key.is_empty() && !loc.key.ends_with('/') {
            let mut query = Vec::new();
            if let Some(v) = &loc.version {
                query.push(("versionId".to_string(), v.clone()));
            }
            let req = loc.request(client, Some(&loc.key), &query)?;
            let resp = http::send(req, &loc.shown(&loc.key), read_timeout).await?;
            if resp.status().is_success() {
                let n = http::save(
                    resp,
                    file,
                    &loc.shown(&loc.key),
                    read_timeout,
                    max_size,
                    progress,
                )
                .await?;
                return Ok(Fetched::File(n));
            }
            if resp.status().as_u16() != 404 {
                return Err(status_error(resp, loc, &loc.key).await);
            }
            // No such object: maybe a "directory".
            let prefix = format!("{}/", loc.key);
            let keys = list(client, loc, &prefix, read_timeout).await?;
            if keys.is_empty() {
                return Err(GetterError::S3 {
                    url: loc.shown(&loc.key),
                    message: format!(
                        "no such object, and no objects under {prefix:?} (check the bucket and key)"
                    ),
                });
            }
            download_tree(client, loc, &prefix, &keys, tree, read_timeout, max_size).await
        } else {
            let keys = list(client, loc, &loc.key, read_timeout).await?;
            if keys.is_empty() {
                return Err(GetterError::S3 {
                    url: loc.shown(&loc.key),
                    message: "no objects under this prefix".into(),
                });
            }
            download_tree(client, loc, &loc.key, &keys, tree, read_timeout, max_size).await
        }
    };
    tokio::time::timeout(total_timeout, work)
        .await
        .map_err(|_| GetterError::S3 {
            url: loc.shown(&loc.key),
            message: format!(
                "download did not finish within {}s (client s3_timeout)",
                total_timeout.as_secs()
            ),
        })?
}

/// Every object key under `prefix` (ListObjectsV2, all pages), "directory" markers left out.
async fn list(
    client: &reqwest::Client,
    loc: &Location,
    prefix: &str,
    read_timeout: Duration,
) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            ("list-type".to_string(), "2".to_string()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        if let Some(t) = &token {
            query.push(("continuation-token".to_string(), t.clone()));
        }
        let req = loc.request(client, None, &query)?;
        let resp = http::send(req, &loc.shown(prefix), read_timeout).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, loc, prefix).await);
        }
        let body = tokio::time::timeout(read_timeout, resp.text())
            .await
            .map_err(|_| GetterError::ReadTimeout {
                url: loc.shown(prefix),
                secs: read_timeout.as_secs(),
            })?
            .map_err(|e| GetterError::S3 {
                url: loc.shown(prefix),
                message: format!("reading the object list: {}", http::error_chain(&e)),
            })?;
        keys.extend(
            xml_values(&body, "Key")
                .into_iter()
                .filter(|k| !k.ends_with('/')),
        );
        let truncated = xml_values(&body, "IsTruncated")
            .first()
            .is_some_and(|v| v == "true");
        token = xml_values(&body, "NextContinuationToken")
            .into_iter()
            .next();
        if !truncated || token.is_none() {
            break;
        }
    }
    Ok(keys)
}

async fn download_tree(
    client: &reqwest::Client,
    loc: &Location,
    prefix: &str,
    keys: &[String],
    tree: &Path,
    read_timeout: Duration,
    max_size: u64,
) -> Result<Fetched> {
    std::fs::create_dir_all(tree).map_err(|e| GetterError::io("create directory", tree, e))?;
    let mut total = 0;
    for key in keys {
        let rel_name = key.strip_prefix(prefix).unwrap_or(key);
        let rel = sandbox::safe_entry_path(Path::new(rel_name)).map_err(|why| GetterError::S3 {
            url: loc.shown(key),
            message: format!("refusing object key: {why}"),
        })?;
        let Some(rel) = rel else { continue };
        let dest = tree.join(&rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| GetterError::io("create directory", parent, e))?;
        }
        let req = loc.request(client, Some(key), &[])?;
        let resp = http::send(req, &loc.shown(key), read_timeout).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, loc, key).await);
        }
        total += http::save(resp, &dest, &loc.shown(key), read_timeout, max_size, None).await?;
    }
    Ok(Fetched::Tree(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parse_source;
    use std::collections::BTreeMap;

    fn loc(src: &str, env: &[(&str, &str)]) -> Location {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let s = parse_source(src, &BTreeMap::new(), None).unwrap();
        locate(&s, &|k| env.get(k).cloned()).unwrap()
    }

    #[test]
    fn locations_as_go_getter_reads_them() {
        let l = loc("s3.amazonaws.com/bucket/dir/key.tgz", &[]);
        assert_eq!(l.endpoint.as_str(), "https://s3.amazonaws.com/");
        assert_eq!(
            (l.bucket.as_str(), l.key.as_str()),
            ("bucket", "dir/key.tgz")
        );
        assert_eq!(l.region, "us-east-1");
        assert!(l.credentials.is_none());

        let l = loc(
            "bucket.s3.amazonaws.com/key",
            &[("AWS_REGION", "ap-south-1")],
        );
        assert_eq!((l.bucket.as_str(), l.key.as_str()), ("bucket", "key"));
        assert_eq!(l.region, "ap-south-1");

        assert_eq!(
            loc("s3-eu-west-1.amazonaws.com/b/k", &[]).region,
            "eu-west-1"
        );
        assert_eq!(
            loc("s3.eu-west-2.amazonaws.com/b/k", &[]).region,
            "eu-west-2"
        );

        let l = loc(
            "s3::http://127.0.0.1:9000/b/some%20dir/k?region=eu-central-1&aws_access_key_id=A&aws_access_key_secret=S&aws_access_token=T&version=v7",
            &[("AWS_ACCESS_KEY_ID", "ENV")],
        );
        assert_eq!(l.endpoint.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(l.key, "some dir/k");
        assert_eq!(l.region, "eu-central-1");
        assert_eq!(l.version.as_deref(), Some("v7"));
        let c = l.credentials.unwrap();
        assert_eq!(
            (
                c.access_key_id.as_str(),
                c.secret_access_key.as_str(),
                c.session_token.as_deref()
            ),
            ("A", "S", Some("T"))
        );

        let l = loc(
            "s3::https://s3.amazonaws.com/b/k",
            &[("AWS_ACCESS_KEY_ID", "EA"), ("AWS_SECRET_ACCESS_KEY", "ES")],
        );
        assert_eq!(l.credentials.unwrap().access_key_id, "EA");

        let s = parse_source(
            "s3::https://s3.amazonaws.com/b/k?aws_access_key_id=A",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert!(locate(&s, &|_| None).is_err());
    }

    #[test]
    fn shared_credentials_file_profiles() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = DEF\naws_secret_access_key = defsecret\n\n# ci\n[ci]\naws_access_key_id=CI\naws_secret_access_key=cisecret\naws_session_token = citoken\n",
        )
        .unwrap();
        let f = file.display().to_string();
        assert_eq!(
            loc(
                "s3.amazonaws.com/b/k",
                &[("AWS_SHARED_CREDENTIALS_FILE", &f)]
            )
            .credentials
            .unwrap()
            .access_key_id,
            "DEF"
        );
        let c = loc(
            "s3.amazonaws.com/b/k",
            &[("AWS_SHARED_CREDENTIALS_FILE", &f), ("AWS_PROFILE", "ci")],
        )
        .credentials
        .unwrap();
        assert_eq!(c.session_token.as_deref(), Some("citoken"));
        let c = loc(
            "s3.amazonaws.com/b/k?aws_profile=ci",
            &[("AWS_SHARED_CREDENTIALS_FILE", &f)],
        )
        .credentials
        .unwrap();
        assert_eq!(c.access_key_id, "CI");
        // Options and environment keys win over the file.
        let c = loc(
            "s3.amazonaws.com/b/k",
            &[
                ("AWS_SHARED_CREDENTIALS_FILE", &f),
                ("AWS_ACCESS_KEY_ID", "ENV"),
                ("AWS_SECRET_ACCESS_KEY", "envsecret"),
            ],
        )
        .credentials
        .unwrap();
        assert_eq!(c.access_key_id, "ENV");
        // A named profile that is not there is an error; an implicit one is just anonymous.
        let s = parse_source(
            "s3.amazonaws.com/b/k?aws_profile=prod",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        let err = locate(&s, &|k| {
            (k == "AWS_SHARED_CREDENTIALS_FILE").then(|| f.clone())
        })
        .unwrap_err();
        assert!(err.to_string().contains("\"prod\""), "{err}");
        assert!(loc(
            "s3.amazonaws.com/b/k",
            &[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")]
        )
        .credentials
        .is_none());
    }

    #[test]
    fn list_answers_parse() {
        let xml = "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>d/a&amp;b.txt</Key></Contents><Contents><Key>d/sub/</Key></Contents><NextContinuationToken>t&#x2F;1</NextContinuationToken></ListBucketResult>";
        assert_eq!(xml_values(xml, "Key"), vec!["d/a&b.txt", "d/sub/"]);
        assert_eq!(xml_values(xml, "NextContinuationToken"), vec!["t/1"]);
        assert_eq!(xml_unescape("a &bogus; b"), "a &bogus; b");
    }
}
