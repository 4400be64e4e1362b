//! The GCS getter, as go-getter's: `gcs::https://www.googleapis.com/storage/v1/<bucket>/<object>`
//! (or any endpoint speaking the JSON API, e.g. an emulator on `http://127.0.0.1:<port>`),
//! with a bearer token from the `token` option or `GOOGLE_OAUTH_ACCESS_TOKEN`; without one the
//! request is anonymous (public objects). An object name that is a prefix downloads every object
//! under it.

use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::error::{GetterError, Result};
use crate::http::{self, Progress};
use crate::sandbox;
use crate::sigv4::uri_encode;
use crate::source::Source;

/// Where a GCS source points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `scheme://host[:port]/` of the JSON API.
    pub endpoint: Url,
    pub bucket: String,
    pub object: String,
    pub token: Option<String>,
}

/// Reads bucket, object and token from a parsed GCS source; `env` reads the agent's environment.
pub fn locate(src: &Source, env: &dyn Fn(&str) -> Option<String>) -> Result<Location> {
    let invalid = |reason: &str| GetterError::InvalidSource {
        src: crate::source::redact(&src.url),
        reason: reason.to_string(),
    };
    let url = &src.url;
    let (endpoint, rest) = if matches!(url.scheme(), "gs" | "gcs") {
        (
            Url::parse("https://www.googleapis.com/").map_err(|e| invalid(&e.to_string()))?,
            format!("{}{}", url.host_str().unwrap_or(""), url.path()),
        )
    } else {
        let path = url.path();
        let Some(rest) = path.strip_prefix("/storage/v1/") else {
            return Err(invalid(
                "GCS sources are written gcs::https://www.googleapis.com/storage/v1/<bucket>/<object>",
            ));
        };
        let mut ep = url.clone();
        ep.set_path("/");
        ep.set_query(None);
        ep.set_fragment(None);
        (ep, rest.to_string())
    };
    let rest = crate::s3::percent_decode(&rest);
    let (bucket, object) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    if bucket.is_empty() {
        return Err(invalid("the source names no bucket"));
    }
    let token = src
        .params
        .get("token")
        .filter(|t| !t.is_empty())
        .cloned()
        .or_else(|| env("GOOGLE_OAUTH_ACCESS_TOKEN").filter(|t| !t.is_empty()));
    Ok(Location {
        endpoint,
        bucket: bucket.to_string(),
        object: object.to_string(),
        token,
    })
}

impl Location {
    fn shown(&self, object: &str) -> String {
        format!("gs://{}/{}", self.bucket, object)
    }

    fn request(
        &self,
        client: &reqwest::Client,
        object: Option<&str>,
        query: &[(&str, &str)],
    ) -> Result<reqwest::RequestBuilder> {
        let mut text = format!(
            "{}storage/v1/b/{}/o",
            self.endpoint,
            uri_encode(&self.bucket, false)
        );
        if let Some(o) = object {
            text.push('/');
            text.push_str(&uri_encode(o, false));
        }
        let mut url = Url::parse(&text).map_err(|e| GetterError::Gcs {
            url: self.shown(object.unwrap_or("")),
            message: format!("cannot build the request URL: {e}"),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        let req = client.get(url);
        Ok(match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        })
    }
}

async fn status_error(resp: reqwest::Response, loc: &Location, object: &str) -> GetterError {
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string));
    let mut message = format!("server returned {status}");
    if let Some(d) = detail {
        message.push_str(&format!(": {d}"));
    }
    if status == 401 || status == 403 {
        message.push_str(if loc.token.is_some() {
            " (check that the access token is valid and may read the bucket)"
        } else {
            " (no token was sent: set GOOGLE_OAUTH_ACCESS_TOKEN on the client or the token option)"
        });
    }
    GetterError::Gcs {
        url: loc.shown(object),
        message,
    }
}

/// Downloads the object into `file`, or every object under the prefix into `tree`, within the
/// client's `gcs_timeout`.
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
) -> Result<crate::s3::Fetched> {
    let work = async {
        let prefix = if !loc.object.is_empty() && !loc.object.ends_with('/') {
            let req = loc.request(client, Some(&loc.object), &[("alt", "media")])?;
            let resp = http::send(req, &loc.shown(&loc.object), read_timeout).await?;
            if resp.status().is_success() {
                let n = http::save(
                    resp,
                    file,
                    &loc.shown(&loc.object),
                    read_timeout,
                    max_size,
                    progress,
                )
                .await?;
                return Ok(crate::s3::Fetched::File(n));
            }
            if resp.status().as_u16() != 404 {
                return Err(status_error(resp, loc, &loc.object).await);
            }
            format!("{}/", loc.object)
        } else {
            loc.object.clone()
        };
        let names = list(client, loc, &prefix, read_timeout).await?;
        if names.is_empty() {
            return Err(GetterError::Gcs {
                url: loc.shown(&loc.object),
                message: format!(
                    "no such object, and no objects under {prefix:?} (check the bucket and object name)"
                ),
            });
        }
        std::fs::create_dir_all(tree).map_err(|e| GetterError::io("create directory", tree, e))?;
        let mut total = 0;
        for name in &names {
            let rel_name = name.strip_prefix(prefix.as_str()).unwrap_or(name);
            let rel =
                sandbox::safe_entry_path(Path::new(rel_name)).map_err(|why| GetterError::Gcs {
                    url: loc.shown(name),
                    message: format!("refusing object name: {why}"),
                })?;
            let Some(rel) = rel else { continue };
            let dest = tree.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| GetterError::io("create directory", parent, e))?;
            }
            let req = loc.request(client, Some(name), &[("alt", "media")])?;
            let resp = http::send(req, &loc.shown(name), read_timeout).await?;
            if !resp.status().is_success() {
                return Err(status_error(resp, loc, name).await);
            }
            total +=
                http::save(resp, &dest, &loc.shown(name), read_timeout, max_size, None).await?;
        }
        Ok(crate::s3::Fetched::Tree(total))
    };
    tokio::time::timeout(total_timeout, work)
        .await
        .map_err(|_| GetterError::Gcs {
            url: loc.shown(&loc.object),
            message: format!(
                "download did not finish within {}s (client gcs_timeout)",
                total_timeout.as_secs()
            ),
        })?
}

/// Every object name under `prefix` (all pages), "directory" placeholders left out.
async fn list(
    client: &reqwest::Client,
    loc: &Location,
    prefix: &str,
    read_timeout: Duration,
) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut page: Option<String> = None;
    loop {
        let mut query = vec![("prefix", prefix)];
        if let Some(p) = &page {
            query.push(("pageToken", p.as_str()));
        }
        let req = loc.request(client, None, &query)?;
        let resp = http::send(req, &loc.shown(prefix), read_timeout).await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, loc, prefix).await);
        }
        let body: serde_json::Value = tokio::time::timeout(read_timeout, resp.json())
            .await
            .map_err(|_| GetterError::ReadTimeout {
                url: loc.shown(prefix),
                secs: read_timeout.as_secs(),
            })?
            .map_err(|e| GetterError::Gcs {
                url: loc.shown(prefix),
                message: format!("reading the object list: {}", http::error_chain(&e)),
            })?;
        if let Some(items) = body["items"].as_array() {
            names.extend(
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str())
                    .filter(|n| !n.ends_with('/'))
                    .map(str::to_string),
            );
        }
        page = body["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if page.is_none() {
            break;
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::parse_source;
    use std::collections::BTreeMap;

    #[test]
    fn locations() {
        let s = parse_source(
            "www.googleapis.com/storage/v1/bucket/dir/obj.tgz",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        let l = locate(&s, &|k| {
            (k == "GOOGLE_OAUTH_ACCESS_TOKEN").then(|| "tok".into())
        })
        .unwrap();
        assert_eq!(l.endpoint.as_str(), "https://www.googleapis.com/");
        assert_eq!(
            (l.bucket.as_str(), l.object.as_str()),
            ("bucket", "dir/obj.tgz")
        );
        assert_eq!(l.token.as_deref(), Some("tok"));

        let s = parse_source(
            "gcs::http://127.0.0.1:9023/storage/v1/b/o?token=opt",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        let l = locate(&s, &|_| Some("env".into())).unwrap();
        assert_eq!(l.endpoint.as_str(), "http://127.0.0.1:9023/");
        assert_eq!(l.token.as_deref(), Some("opt"));

        let s = parse_source("gcs::https://h/other/b/o", &BTreeMap::new(), None).unwrap();
        assert!(locate(&s, &|_| None).is_err());
    }
}
