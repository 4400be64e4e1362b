//! The one error type of the crate: every message says what failed and, where it can, what to change.

use std::path::PathBuf;

/// Why an artifact could not be fetched. The `Display` text is meant for the task event
/// (`Failed Artifact Download: <message>`), so it names the source, the limit or the option at fault.
#[derive(Debug, thiserror::Error)]
pub enum GetterError {
    /// The artifact JSON is not in Nomad's shape.
    #[error("invalid artifact: {0}")]
    InvalidArtifact(String),

    /// The source string cannot be understood.
    #[error("invalid artifact source {src:?}: {reason}")]
    InvalidSource { src: String, reason: String },

    /// An option (`options {}` or the source's query) has a bad value.
    #[error("invalid artifact option {name:?}: {reason}")]
    InvalidOption { name: String, reason: String },

    /// The destination would land outside the allocation directory.
    #[error("artifact destination {dest:?} escapes the allocation directory")]
    DestinationEscapes { dest: String },

    /// `file://` sources are switched off on this client.
    #[error("local file artifact source {url} is not allowed on this client (use an http(s):// or git:: source, or enable file sources in the client's artifact configuration)")]
    FileUrlsDisabled { url: String },

    /// A local source outside the allocation directory while filesystem isolation is on.
    #[error("local artifact source {path} is outside the allocation directory; with filesystem isolation (the default) only files inside the allocation can be used (set disable_filesystem_isolation = true in the client's artifact block to allow host paths)")]
    FileOutsideAlloc { path: PathBuf },

    /// The downloaded bytes do not match the expected checksum.
    #[error("checksum mismatch: expected {algo}:{expected}, got {actual}")]
    ChecksumMismatch {
        algo: String,
        expected: String,
        actual: String,
    },

    /// The `checksum` option is malformed.
    #[error("invalid checksum {value:?}: {reason}")]
    InvalidChecksum { value: String, reason: String },

    /// A `file:` checksum file has no line for the artifact.
    #[error("checksum file {url} has no checksum for {file:?}")]
    ChecksumNotFound { url: String, file: String },

    /// The server answered with an error status.
    #[error("GET {url}: server returned {status}")]
    HttpStatus { url: String, status: u16 },

    /// The request failed (connection, TLS, body).
    #[error("GET {url}: {message}")]
    Http { url: String, message: String },

    /// The download is larger than the client allows.
    #[error("GET {url}: download exceeds the client's http_max_size of {limit} bytes")]
    TooLarge { url: String, limit: u64 },

    /// No bytes arrived for longer than the read timeout.
    #[error("GET {url}: no data received for {secs}s (client http_read_timeout)")]
    ReadTimeout { url: String, secs: u64 },

    /// A `git` command failed.
    #[error("git {action} {url} failed: {message}")]
    Git {
        action: String,
        url: String,
        message: String,
    },

    /// A `git` command ran past `git_timeout`.
    #[error("git {action} {url} timed out after {secs}s (client git_timeout)")]
    GitTimeout {
        action: String,
        url: String,
        secs: u64,
    },

    /// The archive holds an entry that would land outside the destination, or is corrupt.
    #[error("archive {archive}: {message}")]
    Archive { archive: String, message: String },

    /// Unpacking would write more bytes than `decompression_size_limit`.
    #[error("archive {archive}: unpacked size exceeds the client's decompression_size_limit of {limit} bytes")]
    DecompressedTooLarge { archive: String, limit: u64 },

    /// Unpacking would write more files than `decompression_file_count_limit`.
    #[error("archive {archive}: more than {limit} files (client decompression_file_count_limit)")]
    TooManyFiles { archive: String, limit: u64 },

    /// The `//subdir` part names nothing in the download.
    #[error("subdirectory {0:?} not found in the artifact")]
    SubdirNotFound(String),

    /// The download does not fit the requested `mode`.
    #[error("{0}")]
    Mode(String),

    /// An S3 request failed.
    #[error("s3 {url}: {message}")]
    S3 { url: String, message: String },

    /// A GCS request failed.
    #[error("gcs {url}: {message}")]
    Gcs { url: String, message: String },

    /// An hg command failed or ran too long.
    #[error("hg {action} {url} failed: {message}")]
    Hg {
        action: String,
        url: String,
        message: String,
    },

    /// A local filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl GetterError {
    /// Wraps an I/O error with the operation and path it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        GetterError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = GetterError> = std::result::Result<T, E>;
