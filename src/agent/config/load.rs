//! Reading config paths the way Nomad's `LoadConfig` does: a file, or a directory whose `.hcl`
//! and `.json` files (not editor temporaries) load in name order; each file decodes on its own
//! (HCL v1 or JSON by extension) and later files merge over earlier ones.

use super::file::FileConfig;
use super::merge::Merge;
use std::path::{Path, PathBuf};

/// Why a path could not be loaded; the message names `file:line:col` where it can.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("error loading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Parse(#[from] caravan_hcl1::Error),
}

/// Parses and decodes one file.
pub fn parse_file(path: &str) -> Result<FileConfig, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_string(),
        source,
    })?;
    parse_text(path, &text)
}

/// Parses and decodes text as if read from `path` (the extension picks HCL or JSON).
pub fn parse_text(path: &str, text: &str) -> Result<FileConfig, LoadError> {
    let node = caravan_hcl1::parse_by_name(path, text)?;
    let mut cfg: FileConfig = caravan_hcl1::from_node(&node)?;
    name_integrations(&mut cfg);
    Ok(cfg)
}

/// `consul`/`vault` blocks are named by their label, else their `name`, else `default`.
fn name_integrations(cfg: &mut FileConfig) {
    for (label, c) in &mut cfg.consul.0 {
        if label.is_empty() {
            *label = c.name.clone().unwrap_or_else(|| "default".into());
        }
        c.name = Some(label.clone());
    }
    for (label, v) in &mut cfg.vault.0 {
        if label.is_empty() {
            *label = v.name.clone().unwrap_or_else(|| "default".into());
        }
        v.name = Some(label.clone());
    }
}

/// Editor and OS leftovers Nomad skips in config directories.
fn is_temporary(name: &str) -> bool {
    name.ends_with('~') || name.starts_with(".#") || (name.starts_with('#') && name.ends_with('#'))
}

/// The files a `-config` path stands for, in load order.
pub fn files_for(path: &str) -> Result<Vec<String>, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_string()]);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in std::fs::read_dir(path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let p = entry.path();
        if p.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().to_string();
        if (name.ends_with(".hcl") || name.ends_with(".json")) && !is_temporary(&name) {
            files.push(p);
        }
    }
    files.sort();
    Ok(files
        .iter()
        .map(|p: &PathBuf| Path::to_string_lossy(p).to_string())
        .collect())
}

/// Loads and merges every path in order; returns the merged config and the files read.
pub fn load_paths(paths: &[String]) -> Result<(FileConfig, Vec<String>), LoadError> {
    let mut merged = FileConfig::default();
    let mut loaded = Vec::new();
    for path in paths {
        for f in files_for(path)? {
            let cfg = parse_file(&f)?;
            tracing::debug!(file = %f, "loaded agent configuration");
            merged.merge(cfg);
            loaded.push(f);
        }
    }
    Ok((merged, loaded))
}
