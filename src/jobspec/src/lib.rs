//! Reads Nomad job files into [`caravan_structs::Job`]: HCL2 (Nomad's jobspec2 language:
//! blocks, typed variables with validation, locals, Nomad's function library, `dynamic`
//! blocks, runtime `${...}` interpolation kept verbatim), HCL's JSON syntax, and the API JSON
//! form, with Nomad's defaults applied field by field as its `api` package does. Unknown
//! arguments and blocks are errors that name their file, line, column and block path
//! (`job "web" -> group "api" -> task "server"`), with a "did you mean" for near misses; all
//! the problems of a file are reported at once. Filesystem functions (`file()`, ...) work only
//! when [`VarInputs::fs_base_dir`] is set, as the CLI should and a server must not.
//!
//! ```
//! let job = caravan_jobspec::parse_hcl(
//!     caravan_jobspec::init_example(),
//!     "example.nomad.hcl",
//!     &Default::default(),
//! ).unwrap();
//! assert_eq!(job.id, "example");
//! ```

mod canonical;
mod decode;
mod error;
mod eval;
mod example;
mod hcl_file;
mod hcl_json;
mod json;
mod suggest;
mod tree;
mod vars;

pub use error::JobspecError;
pub use example::init_example;

use caravan_structs::Job;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Values for the job file's `variable` blocks, lowest precedence first: `env`, then
/// `var_files` in order, then `vars`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VarInputs {
    /// `-var name=value` flags.
    pub vars: BTreeMap<String, String>,
    /// `-var-file` files: (file name for errors, content). HCL `name = value` pairs or a JSON
    /// object.
    pub var_files: Vec<(String, String)>,
    /// The environment; only `NOMAD_VAR_<name>` entries are read.
    pub env: BTreeMap<String, String>,
    /// Where `file()` and the other filesystem functions resolve relative paths; `None`
    /// disables them (they fail with "filesystem function disabled", as Nomad's do when a
    /// server parses a job). The CLI sets it to the job file's directory.
    pub fs_base_dir: Option<PathBuf>,
}

/// Parses an HCL2 job file and applies Nomad's defaults. Text starting with `{` is read as
/// HCL's JSON syntax (`{"job": {"name": {...}}}`); errors then point into its HCL rewrite,
/// named `<filename> (as HCL)`.
pub fn parse_hcl(src: &str, filename: &str, vars: &VarInputs) -> Result<Job, JobspecError> {
    if src.trim_start().starts_with('{') {
        let native = hcl_json::to_hcl(src, filename)?;
        return hcl_file::parse(&native, &format!("{filename} (as HCL)"), vars);
    }
    hcl_file::parse(src, filename, vars)
}

/// Parses a JSON job (`{"Job": {...}}` or a bare Job object) and applies `Job::canonicalize`.
pub fn parse_json(src: &str) -> Result<Job, JobspecError> {
    json::parse(src)
}

/// Parses API JSON (`{"Job": {...}}` or a bare Job) when the trimmed text starts with `{`
/// and is not HCL's JSON syntax (top-level `job`, `variable`, `locals`), HCL otherwise.
pub fn parse(src: &str, filename: &str, vars: &VarInputs) -> Result<Job, JobspecError> {
    if src.trim_start().starts_with('{') && !hcl_json::looks_like_hcl_json(src) {
        parse_json(src)
    } else {
        parse_hcl(src, filename, vars)
    }
}
