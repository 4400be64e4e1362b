//! go-getter-style artifact fetching for Caravan task artifacts: parse the source, download it
//! (http/https, file, git, hg, s3, gcs), verify its checksum, unpack archives inside a sandbox, and move the
//! result into the task's destination only once everything succeeded.
//!
//! ```no_run
//! # async fn f() -> Result<(), caravan_getter::GetterError> {
//! use caravan_getter::{Artifact, Getter, GetterConfig};
//! let getter = Getter::new(GetterConfig::default())?;
//! let art = Artifact::new("https://example.com/app.tar.gz");
//! let done = getter
//!     .fetch(&art, "/data/alloc/1".as_ref(), "/data/alloc/1/web".as_ref(), None)
//!     .await?;
//! println!("{} bytes into {}", done.bytes, done.destination.display());
//! # Ok(()) }
//! ```

pub mod artifact;
pub mod cache;
pub mod checksum;
pub mod config;
pub mod error;
pub mod gcs;
mod git;
mod hg;
pub mod http;
pub mod s3;
pub mod sandbox;
pub mod sigv4;
pub mod source;
pub mod subprocess_env;
pub mod unpack;

use std::fs;
use std::path::{Path, PathBuf};

pub use artifact::{Artifact, GetterMode};
pub use config::GetterConfig;
pub use error::{GetterError, Result};
pub use http::Progress;

use cache::Cache;
use checksum::{find_in_checksum_file, Checksum, ChecksumSpec};
use source::{parse_source, redact, GetterKind, Source};
use unpack::{ArchiveKind, Limits};

/// What one fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Where the artifact ended up (a directory, or the file in `mode = "file"`).
    pub destination: PathBuf,
    /// Bytes downloaded or copied from the source (0 for git).
    pub bytes: u64,
    /// Whether the download came from the on-node cache.
    pub from_cache: bool,
}

/// Fetches artifacts with one client configuration.
pub struct Getter {
    config: GetterConfig,
    http: reqwest::Client,
    cache: Option<Cache>,
}

/// What the source step left in the staging directory.
enum Staged {
    /// One file, with the name it should be stored under.
    File { path: PathBuf, name: String },
    /// A directory tree (a git checkout or a local directory).
    Tree(PathBuf),
}

impl Getter {
    pub fn new(config: GetterConfig) -> Result<Self> {
        let cache = config
            .cache_dir
            .clone()
            .map(|d| Cache::new(d, config.cache_max_bytes));
        Ok(Getter {
            http: http::client()?,
            config,
            cache,
        })
    }

    /// The configuration this getter was built with.
    pub fn config(&self) -> &GetterConfig {
        &self.config
    }

    /// Fetches one artifact into `task_dir/<destination>`, never outside `alloc_dir`. On error
    /// nothing is left in the destination. `progress` hears `(bytes, total)` during downloads.
    pub async fn fetch(
        &self,
        artifact: &Artifact,
        alloc_dir: &Path,
        task_dir: &Path,
        progress: Option<Progress<'_>>,
    ) -> Result<Fetched> {
        let dest = sandbox::resolve_destination(alloc_dir, task_dir, &artifact.relative_dest)?;
        let src = parse_source(&artifact.source, &artifact.options, Some(task_dir))?;
        let staging = tempfile::Builder::new()
            .prefix(".caravan-artifact-")
            .tempdir_in(task_dir)
            .map_err(|e| GetterError::io("create staging directory in", task_dir, e))?;
        let mut bytes = 0;
        let mut from_cache = false;
        let staged = match src.kind {
            GetterKind::Http => {
                let name = file_name(&src, "index.html");
                let path = staging.path().join("download");
                let checksum = self
                    .expected_checksum(&src, &name, &artifact.headers)
                    .await?;
                let key = src.url.as_str();
                match (&self.cache, &checksum) {
                    (Some(c), Some(sum)) if c.get(key, sum, &path) => {
                        tracing::info!(source = %redact(&src.url), "artifact served from the node cache");
                        from_cache = true;
                        bytes = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    }
                    (Some(c), None) => {
                        // No checksum: reuse a cached copy only if the server says it is current.
                        let known = c.validators(key, &artifact.headers);
                        match http::download_conditional(
                            &self.http,
                            &src.url,
                            &artifact.headers,
                            known.as_ref(),
                            &path,
                            self.config.http_read_timeout,
                            self.config.http_max_size,
                            progress,
                        )
                        .await?
                        {
                            http::Conditional::NotModified => {
                                bytes = c.get_revalidated(key, &artifact.headers, &path)?;
                                from_cache = true;
                                tracing::info!(source = %redact(&src.url), "artifact revalidated (304) and served from the node cache");
                            }
                            http::Conditional::Downloaded {
                                bytes: n,
                                validators,
                            } => {
                                bytes = n;
                                if let Err(e) =
                                    c.put_revalidated(key, &artifact.headers, &validators, &path)
                                {
                                    tracing::warn!("could not cache artifact: {e}");
                                }
                            }
                        }
                    }
                    _ => {
                        bytes = http::download(
                            &self.http,
                            &src.url,
                            &artifact.headers,
                            &path,
                            self.config.http_read_timeout,
                            self.config.http_max_size,
                            progress,
                        )
                        .await?;
                        if let Some(sum) = &checksum {
                            sum.verify_file(&path)?;
                            if let Some(c) = &self.cache {
                                if let Err(e) = c.put(key, sum, &path) {
                                    tracing::warn!("could not cache artifact: {e}");
                                }
                            }
                        }
                    }
                }
                Staged::File { path, name }
            }
            GetterKind::File => {
                if !self.config.allow_file_urls {
                    return Err(GetterError::FileUrlsDisabled {
                        url: src.url.to_string(),
                    });
                }
                let local = src
                    .url
                    .to_file_path()
                    .map_err(|_| GetterError::InvalidSource {
                        src: artifact.source.clone(),
                        reason: "not a local file path".into(),
                    })?;
                self.check_local(&local, alloc_dir)?;
                let meta = fs::metadata(&local).map_err(|e| GetterError::io("read", &local, e))?;
                if meta.is_dir() {
                    let tree = staging.path().join("tree");
                    bytes = sandbox::copy_tree(&local, &tree)?;
                    Staged::Tree(tree)
                } else {
                    let name = file_name(&src, "file");
                    let path = staging.path().join("download");
                    bytes =
                        fs::copy(&local, &path).map_err(|e| GetterError::io("copy", &local, e))?;
                    if let Some(sum) = self
                        .expected_checksum(&src, &name, &artifact.headers)
                        .await?
                    {
                        sum.verify_file(&path)?;
                    }
                    Staged::File { path, name }
                }
            }
            GetterKind::Git => {
                if src.url.scheme() == "file" && !self.config.allow_file_urls {
                    return Err(GetterError::FileUrlsDisabled {
                        url: src.url.to_string(),
                    });
                }
                if let Ok(local) = src.url.to_file_path() {
                    self.check_local(&local, alloc_dir)?;
                }
                let tree = staging.path().join("tree");
                git::clone(
                    &src,
                    &tree,
                    self.config.git_timeout,
                    &self.config.set_environment_variables,
                )
                .await?;
                Staged::Tree(tree)
            }
            GetterKind::Hg => {
                if src.url.scheme() == "file" && !self.config.allow_file_urls {
                    return Err(GetterError::FileUrlsDisabled {
                        url: src.url.to_string(),
                    });
                }
                if let Ok(local) = src.url.to_file_path() {
                    self.check_local(&local, alloc_dir)?;
                }
                let tree = staging.path().join("tree");
                hg::clone(
                    &src,
                    &tree,
                    self.config.hg_timeout,
                    &self.config.set_environment_variables,
                )
                .await?;
                Staged::Tree(tree)
            }
            GetterKind::S3 => {
                let loc = s3::locate(&src, &|k| std::env::var(k).ok())?;
                let path = staging.path().join("download");
                let tree = staging.path().join("tree");
                let fetched = s3::fetch(
                    &self.http,
                    &loc,
                    &path,
                    &tree,
                    self.config.http_read_timeout,
                    self.config.s3_timeout,
                    self.config.http_max_size,
                    progress,
                )
                .await?;
                self.staged_object(&src, artifact, fetched, path, tree, &mut bytes)
                    .await?
            }
            GetterKind::Gcs => {
                let loc = gcs::locate(&src, &|k| std::env::var(k).ok())?;
                let path = staging.path().join("download");
                let tree = staging.path().join("tree");
                let fetched = gcs::fetch(
                    &self.http,
                    &loc,
                    &path,
                    &tree,
                    self.config.http_read_timeout,
                    self.config.gcs_timeout,
                    self.config.http_max_size,
                    progress,
                )
                .await?;
                self.staged_object(&src, artifact, fetched, path, tree, &mut bytes)
                    .await?
            }
        };
        let staged = self.maybe_unpack(&src, staged, staging.path())?;
        let staged = apply_subdir(&src, staged)?;
        place(staged, &dest, artifact.mode)?;
        Ok(Fetched {
            destination: dest,
            bytes,
            from_cache,
        })
    }

    /// What an object-store fetch left: one object (checksum verified) or a tree.
    async fn staged_object(
        &self,
        src: &Source,
        artifact: &Artifact,
        fetched: s3::Fetched,
        path: PathBuf,
        tree: PathBuf,
        bytes: &mut u64,
    ) -> Result<Staged> {
        match fetched {
            s3::Fetched::File(n) => {
                *bytes = n;
                let name = file_name(src, "download");
                if let Some(sum) = self
                    .expected_checksum(src, &name, &artifact.headers)
                    .await?
                {
                    sum.verify_file(&path)?;
                }
                Ok(Staged::File { path, name })
            }
            s3::Fetched::Tree(n) => {
                *bytes = n;
                if src.checksum.is_some() {
                    return Err(GetterError::InvalidOption {
                        name: "checksum".into(),
                        reason: "the source is a prefix with many objects; a checksum applies to a single object".into(),
                    });
                }
                Ok(Staged::Tree(tree))
            }
        }
    }

    /// Refuses a local source outside the allocation directory unless isolation is disabled.
    /// `filesystem_isolation_extra_paths` are readable too.
    fn check_local(&self, local: &Path, alloc_dir: &Path) -> Result<()> {
        if self.config.disable_filesystem_isolation {
            return Ok(());
        }
        let real = fs::canonicalize(local).map_err(|e| GetterError::io("read", local, e))?;
        let alloc =
            fs::canonicalize(alloc_dir).map_err(|e| GetterError::io("resolve", alloc_dir, e))?;
        let extra = self
            .config
            .filesystem_isolation_extra_paths
            .iter()
            .filter_map(|p| fs::canonicalize(p).ok())
            .any(|p| real.starts_with(p));
        if !real.starts_with(&alloc) && !extra {
            return Err(GetterError::FileOutsideAlloc {
                path: local.to_path_buf(),
            });
        }
        Ok(())
    }

    /// The checksum the source asks for, fetching a `file:` checksum list when needed.
    async fn expected_checksum(
        &self,
        src: &Source,
        name: &str,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<Checksum>> {
        let Some(spec) = &src.checksum else {
            return Ok(None);
        };
        match ChecksumSpec::parse(spec)? {
            ChecksumSpec::Inline(c) => Ok(Some(c)),
            ChecksumSpec::File(url) => {
                let u = url::Url::parse(&url).map_err(|e| GetterError::InvalidChecksum {
                    value: spec.clone(),
                    reason: format!("the checksum file URL is not valid: {e}"),
                })?;
                let text = match u.scheme() {
                    "http" | "https" => {
                        http::fetch_text(&self.http, &u, headers, self.config.http_read_timeout)
                            .await?
                    }
                    "file" if self.config.allow_file_urls => {
                        let p = u.to_file_path().map_err(|_| GetterError::InvalidChecksum {
                            value: spec.clone(),
                            reason: "not a local file path".into(),
                        })?;
                        fs::read_to_string(&p).map_err(|e| GetterError::io("read", &p, e))?
                    }
                    "file" => return Err(GetterError::FileUrlsDisabled { url }),
                    other => {
                        return Err(GetterError::InvalidChecksum {
                            value: spec.clone(),
                            reason: format!("checksum files over {other:?} are not supported"),
                        })
                    }
                };
                find_in_checksum_file(&text, name)
                    .map(Some)
                    .ok_or(GetterError::ChecksumNotFound {
                        url: redact(&u),
                        file: name.to_string(),
                    })
            }
        }
    }

    fn maybe_unpack(&self, src: &Source, staged: Staged, staging: &Path) -> Result<Staged> {
        let Staged::File { path, name } = staged else {
            return Ok(staged);
        };
        let kind = match src.archive.as_deref() {
            Some("false") => None,
            Some(opt) => Some(ArchiveKind::from_option(opt).ok_or_else(|| GetterError::InvalidOption {
                name: "archive".into(),
                reason: format!(
                    "{opt:?} is not an archive type (use false, zip, tar, tar.gz, tgz, tar.bz2, tar.xz, tar.zst, gz, bz2, xz or zst)"
                ),
            })?),
            None => ArchiveKind::detect(&name).map(|(k, _)| k),
        };
        let Some(kind) = kind else {
            return Ok(Staged::File { path, name });
        };
        let tree = staging.join("tree");
        fs::create_dir(&tree).map_err(|e| GetterError::io("create directory", &tree, e))?;
        unpack::unpack(
            kind,
            &path,
            &tree,
            &name,
            Limits {
                max_bytes: self.config.decompression_size_limit,
                max_files: self.config.decompression_file_count_limit,
            },
        )?;
        let _ = fs::remove_file(&path);
        Ok(Staged::Tree(tree))
    }
}

/// The name a downloaded file is stored under: the `filename` option, else the last segment of
/// the URL's path.
fn file_name(src: &Source, fallback: &str) -> String {
    if let Some(f) = &src.filename {
        return f.clone();
    }
    src.url
        .path_segments()
        .and_then(|mut s| s.next_back().map(str::to_string))
        .map(|s| percent_decode(&s))
        .filter(|s| !s.is_empty() && s != "." && s != "..")
        .unwrap_or_else(|| fallback.to_string())
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// Narrows a tree to its `//subdir`.
fn apply_subdir(src: &Source, staged: Staged) -> Result<Staged> {
    let Some(sub) = &src.subdir else {
        return Ok(staged);
    };
    let Staged::Tree(root) = staged else {
        return Err(GetterError::SubdirNotFound(sub.clone()));
    };
    let rel = sandbox::safe_entry_path(Path::new(sub))
        .map_err(|why| GetterError::InvalidSource {
            src: sub.clone(),
            reason: format!("the subdirectory {why}"),
        })?
        .ok_or_else(|| GetterError::SubdirNotFound(sub.clone()))?;
    let mut cur = root.clone();
    for c in rel.components() {
        cur.push(c);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            _ => return Err(GetterError::SubdirNotFound(sub.clone())),
        }
    }
    Ok(Staged::Tree(cur))
}

/// Moves the staged result into the destination according to `mode`.
fn place(staged: Staged, dest: &Path, mode: GetterMode) -> Result<()> {
    match (staged, mode) {
        (Staged::File { path, name }, GetterMode::Any) => {
            let name = safe_file_name(&name)?;
            fs::create_dir_all(dest).map_err(|e| GetterError::io("create directory", dest, e))?;
            move_file(&path, &dest.join(name))
        }
        (Staged::File { path, .. }, GetterMode::File) => {
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).map_err(|e| GetterError::io("create directory", parent, e))?;
            }
            move_file(&path, dest)
        }
        (Staged::File { name, .. }, GetterMode::Dir) => Err(GetterError::Mode(format!(
            "mode \"dir\" needs an archive or a directory, but {name:?} is a single file (use mode \"any\" or \"file\")"
        ))),
        (Staged::Tree(tree), GetterMode::File) => {
            // A compressed single file unpacks to a tree of one file: that file is the artifact.
            let entries: Vec<_> = fs::read_dir(&tree)
                .map_err(|e| GetterError::io("read directory", &tree, e))?
                .flatten()
                .collect();
            match entries.as_slice() {
                [one] if one.file_type().map(|t| t.is_file()).unwrap_or(false) => {
                    if let Some(parent) = dest.parent() {
                        fs::create_dir_all(parent)
                            .map_err(|e| GetterError::io("create directory", parent, e))?;
                    }
                    move_file(&one.path(), dest)
                }
                _ => Err(GetterError::Mode(
                    "mode \"file\" needs a single file, but the artifact is a directory or an archive of several files (use mode \"dir\" or \"any\")".into(),
                )),
            }
        }
        (Staged::Tree(tree), GetterMode::Any | GetterMode::Dir) => sandbox::merge_move(&tree, dest),
    }
}

fn safe_file_name(name: &str) -> Result<&str> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(GetterError::InvalidOption {
            name: "filename".into(),
            reason: format!("{name:?} must be a plain file name"),
        });
    }
    Ok(name)
}

fn move_file(from: &Path, to: &Path) -> Result<()> {
    if let Ok(m) = fs::symlink_metadata(to) {
        if m.is_dir() {
            return Err(GetterError::Mode(format!(
                "{} is a directory; cannot write the artifact file there",
                to.display()
            )));
        }
        fs::remove_file(to).map_err(|e| GetterError::io("replace", to, e))?;
    }
    fs::rename(from, to).map_err(|e| GetterError::io("move into place", to, e))
}
