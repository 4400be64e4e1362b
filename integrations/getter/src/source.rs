//! Source strings as go-getter reads them: forced getters (`git::`, `s3::` ...), detectors
//! (`github.com/x/y`, `git@host:repo`, `s3.amazonaws.com/...`, `www.googleapis.com/storage/...`,
//! bare paths), the `//subdir` suffix and the query options the getters consume.

use std::collections::BTreeMap;
use std::path::Path;

use url::Url;

use crate::error::{GetterError, Result};

/// Which getter downloads a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetterKind {
    /// `http://` and `https://` (also forced with `http::`/`https::`).
    Http,
    /// `file://`, only where the client allows it.
    File,
    /// `git::` through the `git` command line.
    Git,
    /// `s3::`, signed with AWS SigV4.
    S3,
    /// `gcs::`, Google Cloud Storage's JSON API.
    Gcs,
    /// `hg::` through the `hg` command line (Mercurial).
    Hg,
}

/// A parsed source: the URL the getter uses and the options it consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The getter.
    pub kind: GetterKind,
    /// The URL with the getter options removed from its query.
    pub url: Url,
    /// The `//subdir` part, if any.
    pub subdir: Option<String>,
    /// `archive`: `None` detects from the extension, `Some("false")` keeps the file as is,
    /// anything else names the archive type.
    pub archive: Option<String>,
    /// `checksum` (`sha256:<hex>`, `file:<url>` ...).
    pub checksum: Option<String>,
    /// `filename`: the name to store a single file under.
    pub filename: Option<String>,
    /// `ref` for git.
    pub git_ref: Option<String>,
    /// `depth` for git.
    pub depth: Option<u32>,
    /// `sshkey` for git: a base64-encoded private key.
    pub sshkey: Option<String>,
    /// Getter-specific settings (S3 credentials and region, GCS token).
    pub params: BTreeMap<String, String>,
}

const COMMON_KEYS: &[&str] = &["archive", "checksum", "filename"];
const GIT_KEYS: &[&str] = &["ref", "depth", "sshkey"];
const S3_KEYS: &[&str] = &[
    "aws_access_key_id",
    "aws_access_key_secret",
    "aws_access_token",
    "aws_profile",
    "region",
    "version",
];
const GCS_KEYS: &[&str] = &["token"];
const HG_KEYS: &[&str] = &["rev"];

/// Splits a `getter::rest` prefix off, as go-getter's forced getters.
pub fn split_forced(src: &str) -> (Option<&str>, &str) {
    if let Some(idx) = src.find("::") {
        let name = &src[..idx];
        let rest = &src[idx + 2..];
        if !name.is_empty() && !rest.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) {
            return (Some(name), rest);
        }
    }
    (None, src)
}

/// Splits the `//subdir` part off a source; the query stays with the source.
pub fn split_subdir(src: &str) -> (String, Option<String>) {
    let stop = src.find('?').unwrap_or(src.len());
    let offset = src[..stop].find("://").map(|i| i + 3).unwrap_or(0);
    let Some(rel) = src[offset..stop].find("//") else {
        return (src.to_string(), None);
    };
    let idx = offset + rel;
    let mut subdir = src[idx + 2..].to_string();
    let mut base = src[..idx].to_string();
    if let Some(q) = subdir.find('?') {
        base.push_str(&subdir[q..]);
        subdir.truncate(q);
    }
    let subdir = subdir.trim_matches('/').to_string();
    (
        base,
        if subdir.is_empty() {
            None
        } else {
            Some(subdir)
        },
    )
}

fn is_url(s: &str) -> bool {
    match Url::parse(s) {
        Ok(u) => u.scheme().len() > 1,
        Err(_) => false,
    }
}

/// Rewrites a source the way go-getter's detectors do, returning the normalised
/// `[getter::]url[//subdir]` string. `pwd` resolves relative file paths.
pub fn detect(src: &str, pwd: Option<&Path>) -> Result<String> {
    let invalid = |reason: &str| GetterError::InvalidSource {
        src: src.to_string(),
        reason: reason.to_string(),
    };
    let src_trimmed = src.trim();
    if src_trimmed.is_empty() {
        return Err(invalid("the source is empty"));
    }
    let (forced, rest) = split_forced(src_trimmed);
    let (rest, mut subdir) = split_subdir(rest);
    let detected = if is_url(&rest) {
        rest.clone()
    } else {
        detect_one(&rest, pwd).map_err(|reason| invalid(&reason))?
    };
    let (detected_force, detected_rest) = split_forced(&detected);
    let forced = forced.or(detected_force);
    let (mut base, detected_subdir) = split_subdir(detected_rest);
    if let Some(ds) = detected_subdir {
        subdir = Some(match subdir {
            Some(s) => format!("{ds}/{s}"),
            None => ds,
        });
    }
    if let Some(sd) = &subdir {
        // The subdir goes after the path, before the query.
        let (path, query) = match base.find('?') {
            Some(q) => (base[..q].to_string(), base[q..].to_string()),
            None => (base.clone(), String::new()),
        };
        base = format!("{path}//{sd}{query}");
    }
    Ok(match forced {
        Some(f) => format!("{f}::{base}"),
        None => base,
    })
}

fn detect_one(src: &str, pwd: Option<&Path>) -> std::result::Result<String, String> {
    let (path, query) = match src.find('?') {
        Some(q) => (&src[..q], &src[q..]),
        None => (src, ""),
    };
    // GitHub shorthand.
    if let Some(tail) = path.strip_prefix("github.com/") {
        let parts: Vec<&str> = tail.split('/').collect();
        if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
            return Err("GitHub sources are written github.com/<owner>/<repo>".into());
        }
        let mut repo = parts[1].to_string();
        if !repo.ends_with(".git") {
            repo.push_str(".git");
        }
        let mut out = format!("git::https://github.com/{}/{}", parts[0], repo);
        if parts.len() > 2 {
            out.push_str("//");
            out.push_str(&parts[2..].join("/"));
        }
        out.push_str(query);
        return Ok(out);
    }
    // scp-like git over ssh: user@host:path.
    if let Some((user_host, repo_path)) = path.split_once(':') {
        if let Some((user, host)) = user_host.split_once('@') {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
            };
            if ok(user) && ok(host) && !repo_path.is_empty() {
                let repo_path = repo_path.trim_start_matches('/');
                return Ok(format!("git::ssh://{user}@{host}/{repo_path}{query}"));
            }
        }
    }
    // S3 hosts.
    let host = path.split('/').next().unwrap_or("");
    if host.ends_with(".amazonaws.com") {
        return detect_s3(path, query);
    }
    // GCS.
    if path.starts_with("www.googleapis.com/storage/") {
        return Ok(format!("gcs::https://{path}{query}"));
    }
    // A local path.
    if path.starts_with('/') {
        return Ok(format!("file://{path}{query}"));
    }
    if path.contains("://") {
        return Err("not a valid URL".into());
    }
    match pwd {
        Some(pwd) => {
            let joined = pwd.join(path);
            Ok(format!("file://{}{query}", joined.display()))
        }
        None => Err("a relative path needs a working directory; use a URL".into()),
    }
}

fn detect_s3(path: &str, query: &str) -> std::result::Result<String, String> {
    let (host, rest) = path.split_once('/').unwrap_or((path, ""));
    let labels: Vec<&str> = host.split('.').collect();
    if labels.first().is_some_and(|l| l.starts_with("s3")) {
        // Path style: s3.amazonaws.com/bucket/key, s3-eu-west-1..., s3.eu-west-1...
        if rest.is_empty() {
            return Err("S3 sources need a bucket and a key".into());
        }
        return Ok(format!("s3::https://{host}/{rest}{query}"));
    }
    if labels.len() > 2 && labels[1].starts_with("s3") {
        // Virtual-host style: bucket.s3.amazonaws.com/key.
        let bucket = labels[0];
        let endpoint = labels[1..].join(".");
        return Ok(format!("s3::https://{endpoint}/{bucket}/{rest}{query}"));
    }
    Err("not a recognised S3 endpoint (expected s3.amazonaws.com/<bucket>/<key>)".into())
}

/// Parses a source with its options (options override the query) into a [`Source`].
pub fn parse_source(
    src: &str,
    options: &BTreeMap<String, String>,
    pwd: Option<&Path>,
) -> Result<Source> {
    let detected = detect(src, pwd)?;
    let invalid = |reason: String| GetterError::InvalidSource {
        src: src.to_string(),
        reason,
    };
    let (forced, rest) = split_forced(&detected);
    let (base, subdir) = split_subdir(rest);
    let mut url = Url::parse(&base).map_err(|e| invalid(format!("not a valid URL: {e}")))?;
    let kind = match forced {
        Some("git") => GetterKind::Git,
        Some("s3") => GetterKind::S3,
        Some("gcs") => GetterKind::Gcs,
        Some("hg") => GetterKind::Hg,
        Some("http") | Some("https") => GetterKind::Http,
        Some("file") => GetterKind::File,
        Some(other) => return Err(invalid(format!("the {other:?} getter is not supported"))),
        None => match url.scheme() {
            "http" | "https" => GetterKind::Http,
            "file" => GetterKind::File,
            "s3" => GetterKind::S3,
            "gcs" | "gs" => GetterKind::Gcs,
            other => {
                return Err(invalid(format!(
                    "download not supported for scheme {other:?} (force a getter, e.g. git::{base})"
                )))
            }
        },
    };
    match (kind, url.scheme()) {
        (GetterKind::Http, "http" | "https")
        | (GetterKind::File, "file")
        | (GetterKind::Git, "http" | "https" | "ssh" | "file" | "git")
        | (GetterKind::S3, "http" | "https" | "s3")
        | (GetterKind::Gcs, "http" | "https" | "gcs" | "gs")
        | (GetterKind::Hg, "http" | "https" | "ssh" | "file") => {}
        (_, scheme) => {
            return Err(invalid(format!(
                "scheme {scheme:?} cannot be used with this getter"
            )))
        }
    }

    // Merge the query and the options; the options win.
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    for (k, v) in options {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k.clone(), v.clone()));
    }
    let consumed: Vec<&str> = COMMON_KEYS
        .iter()
        .chain(match kind {
            GetterKind::Git => GIT_KEYS.iter(),
            GetterKind::S3 => S3_KEYS.iter(),
            GetterKind::Gcs => GCS_KEYS.iter(),
            GetterKind::Hg => HG_KEYS.iter(),
            _ => [].iter(),
        })
        .copied()
        .collect();
    let mut taken: BTreeMap<String, String> = BTreeMap::new();
    let mut kept = Vec::new();
    for (k, v) in pairs {
        if consumed.contains(&k.as_str()) {
            taken.insert(k, v);
        } else {
            kept.push((k, v));
        }
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept.iter());
    }
    let depth = match taken.remove("depth") {
        None => None,
        Some(d) if d.is_empty() => None,
        Some(d) => Some(d.parse::<u32>().map_err(|_| GetterError::InvalidOption {
            name: "depth".into(),
            reason: format!("{d:?} is not a whole number"),
        })?),
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    Ok(Source {
        kind,
        url,
        subdir,
        archive: non_empty(taken.remove("archive")),
        checksum: non_empty(taken.remove("checksum")),
        filename: non_empty(taken.remove("filename")),
        git_ref: non_empty(taken.remove("ref")),
        depth,
        sshkey: non_empty(taken.remove("sshkey")),
        params: taken,
    })
}

/// The URL as text with any password replaced, for messages and logs.
pub fn redact(url: &Url) -> String {
    if url.password().is_some() {
        let mut u = url.clone();
        let _ = u.set_password(Some("redacted"));
        u.to_string()
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_table() {
        let pwd = Path::new("/alloc/task");
        let cases: &[(&str, &str)] = &[
            ("https://example.com/a.tgz", "https://example.com/a.tgz"),
            ("http::https://example.com/a", "http::https://example.com/a"),
            (
                "github.com/hashicorp/nomad",
                "git::https://github.com/hashicorp/nomad.git",
            ),
            (
                "github.com/hashicorp/nomad/website/docs?ref=v1",
                "git::https://github.com/hashicorp/nomad.git//website/docs?ref=v1",
            ),
            (
                "git@github.com:hashicorp/nomad.git",
                "git::ssh://git@github.com/hashicorp/nomad.git",
            ),
            (
                "git@example.com:org/repo.git?ref=v1.2&sshkey=abc",
                "git::ssh://git@example.com/org/repo.git?ref=v1.2&sshkey=abc",
            ),
            (
                "git::https://example.com/r.git",
                "git::https://example.com/r.git",
            ),
            (
                "git::file:///srv/repo.git?ref=v1",
                "git::file:///srv/repo.git?ref=v1",
            ),
            (
                "s3.amazonaws.com/bucket/key.tgz",
                "s3::https://s3.amazonaws.com/bucket/key.tgz",
            ),
            (
                "bucket.s3.amazonaws.com/dir/key",
                "s3::https://s3.amazonaws.com/bucket/dir/key",
            ),
            (
                "s3-eu-west-1.amazonaws.com/bucket/key",
                "s3::https://s3-eu-west-1.amazonaws.com/bucket/key",
            ),
            (
                "s3::https://127.0.0.1:9000/b/k",
                "s3::https://127.0.0.1:9000/b/k",
            ),
            (
                "www.googleapis.com/storage/v1/bucket/obj",
                "gcs::https://www.googleapis.com/storage/v1/bucket/obj",
            ),
            ("/srv/file.txt", "file:///srv/file.txt"),
            ("./rel/file.txt", "file:///alloc/task/./rel/file.txt"),
            ("file:///srv/x", "file:///srv/x"),
            (
                "https://example.com/a.tgz//sub/dir?archive=tgz",
                "https://example.com/a.tgz//sub/dir?archive=tgz",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(detect(input, Some(pwd)).unwrap(), *want, "input {input}");
        }
        assert!(detect("", None).is_err());
        assert!(detect("github.com/onlyowner", None).is_err());
        assert!(detect("relative/path", None).is_err());
    }

    #[test]
    fn subdir_split() {
        assert_eq!(
            split_subdir("https://h/a//b?x=1"),
            ("https://h/a?x=1".into(), Some("b".into()))
        );
        assert_eq!(
            split_subdir("file:///abs/path"),
            ("file:///abs/path".into(), None)
        );
        assert_eq!(
            split_subdir("https://h/a?u=http://x//y"),
            ("https://h/a?u=http://x//y".into(), None)
        );
    }

    #[test]
    fn parses_options_per_getter() {
        let mut opts = BTreeMap::new();
        opts.insert("checksum".to_string(), "sha256:ab".to_string());
        let s = parse_source("https://h/a.tgz?archive=false&keep=1", &opts, None).unwrap();
        assert_eq!(s.kind, GetterKind::Http);
        assert_eq!(s.url.as_str(), "https://h/a.tgz?keep=1");
        assert_eq!(s.archive.as_deref(), Some("false"));
        assert_eq!(s.checksum.as_deref(), Some("sha256:ab"));

        let s = parse_source(
            "git::https://h/r.git//sub?ref=v1&depth=1",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(s.kind, GetterKind::Git);
        assert_eq!(s.url.as_str(), "https://h/r.git");
        assert_eq!(s.git_ref.as_deref(), Some("v1"));
        assert_eq!(s.depth, Some(1));
        assert_eq!(s.subdir.as_deref(), Some("sub"));

        let s = parse_source(
            "s3::https://s3.amazonaws.com/b/k?region=eu-west-1&aws_access_key_id=A",
            &BTreeMap::new(),
            None,
        )
        .unwrap();
        assert_eq!(s.kind, GetterKind::S3);
        assert_eq!(s.url.as_str(), "https://s3.amazonaws.com/b/k");
        assert_eq!(s.params["region"], "eu-west-1");

        assert!(parse_source("git::https://h/r?depth=x", &BTreeMap::new(), None).is_err());
        assert!(parse_source("ftp://h/x", &BTreeMap::new(), None).is_err());
        let hg = parse_source("hg::https://h/x?rev=v1", &BTreeMap::new(), None).unwrap();
        assert_eq!(hg.kind, GetterKind::Hg);
        assert_eq!(hg.params["rev"], "v1");
        assert!(parse_source("svn::https://h/x", &BTreeMap::new(), None).is_err());
        assert!(parse_source("git::ftp://h/x", &BTreeMap::new(), None).is_err());
    }

    #[test]
    fn redacts_passwords() {
        let u = Url::parse("https://user:secret@h/x").unwrap();
        assert!(!redact(&u).contains("secret"));
    }
}
