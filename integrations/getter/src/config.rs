//! Client-side settings of the getter: Nomad's `client { artifact {} }` limits plus the cache.

use std::path::PathBuf;
use std::time::Duration;

/// Settings for a [`crate::Getter`]. `Default` gives Nomad's defaults and no cache.
#[derive(Debug, Clone)]
pub struct GetterConfig {
    /// Longest wait for the next bytes of an HTTP/S3/GCS response (`http_read_timeout`, 30m).
    pub http_read_timeout: Duration,
    /// Largest HTTP download in bytes (`http_max_size`, 100 GB).
    pub http_max_size: u64,
    /// Longest a single `git` command may run (`git_timeout`, 30m).
    pub git_timeout: Duration,
    /// Longest a single `hg` command may run (`hg_timeout`, 30m).
    pub hg_timeout: Duration,
    /// Longest a whole S3 download may take (`s3_timeout`, 30m).
    pub s3_timeout: Duration,
    /// Longest a whole GCS download may take (`gcs_timeout`, 30m).
    pub gcs_timeout: Duration,
    /// Most bytes an archive may unpack to (`decompression_size_limit`, 100 GB; 0 = no limit).
    pub decompression_size_limit: u64,
    /// Most files an archive may hold (`decompression_file_count_limit`, 4096; 0 = no limit).
    pub decompression_file_count_limit: u64,
    /// Where the on-node artifact cache lives; `None` disables caching.
    pub cache_dir: Option<PathBuf>,
    /// Size cap of the cache in bytes; least recently used entries are evicted beyond it.
    pub cache_max_bytes: u64,
    /// Whether `file://` sources (and `git::file://`) are allowed at all.
    pub allow_file_urls: bool,
    /// `disable_filesystem_isolation`: when false (Nomad's default) local sources must lie inside
    /// the allocation directory, as Nomad's sandboxed getter can only see that; when true any
    /// path the agent can read is allowed.
    pub disable_filesystem_isolation: bool,
    /// `filesystem_isolation_extra_paths`: host paths (the path part of Nomad's
    /// `<f|d>:<mode>:<path>` entries) that local sources may read while isolation is on.
    pub filesystem_isolation_extra_paths: Vec<PathBuf>,
    /// `set_environment_variables`: the agent's environment variables passed on to the getter's
    /// subprocesses (`git`, `hg`, `ssh`); by default none are, as in Nomad.
    pub set_environment_variables: Vec<String>,
    /// Least time between two progress reports of one download.
    pub progress_interval: Duration,
}

impl Default for GetterConfig {
    fn default() -> Self {
        GetterConfig {
            http_read_timeout: Duration::from_secs(30 * 60),
            http_max_size: 100_000_000_000,
            git_timeout: Duration::from_secs(30 * 60),
            hg_timeout: Duration::from_secs(30 * 60),
            s3_timeout: Duration::from_secs(30 * 60),
            gcs_timeout: Duration::from_secs(30 * 60),
            decompression_size_limit: 100_000_000_000,
            decompression_file_count_limit: 4096,
            cache_dir: None,
            cache_max_bytes: 10 * 1024 * 1024 * 1024,
            allow_file_urls: true,
            disable_filesystem_isolation: false,
            filesystem_isolation_extra_paths: Vec::new(),
            set_environment_variables: Vec::new(),
            progress_interval: Duration::from_secs(10),
        }
    }
}
