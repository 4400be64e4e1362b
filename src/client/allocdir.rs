//! The allocation directory, laid out as Nomad lays it out, and the one function every path
//! from a job file or API request goes through so it never escapes the allocation directory.
//!
//! ```text
//! <data_dir>/alloc/<alloc_id>/
//!     alloc/            shared by the group's tasks (NOMAD_ALLOC_DIR)
//!         data/ logs/ tmp/
//!     <task>/           the task's working directory
//!         local/        NOMAD_TASK_DIR
//!         secrets/      NOMAD_SECRETS_DIR (mode 0700)
//!         tmp/
//! ```

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
pub struct AllocDir {
    pub root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("path {0:?} escapes the allocation directory")]
    Escapes(String),
}

impl AllocDir {
    pub fn new(data_dir: &Path, alloc_id: &str) -> Self {
        AllocDir {
            root: data_dir.join("alloc").join(alloc_id),
        }
    }

    pub fn shared_dir(&self) -> PathBuf {
        self.root.join("alloc")
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.shared_dir().join("logs")
    }

    pub fn task_dir(&self, task: &str) -> PathBuf {
        self.root.join(task)
    }

    pub fn local_dir(&self, task: &str) -> PathBuf {
        self.task_dir(task).join("local")
    }

    pub fn secrets_dir(&self, task: &str) -> PathBuf {
        self.task_dir(task).join("secrets")
    }

    /// Creates the shared part of the layout.
    pub fn build(&self) -> io::Result<()> {
        for d in ["data", "logs", "tmp"] {
            std::fs::create_dir_all(self.shared_dir().join(d))?;
        }
        Ok(())
    }

    /// Creates one task's directories.
    pub fn build_task(&self, task: &str) -> io::Result<()> {
        for d in ["local", "secrets", "tmp"] {
            std::fs::create_dir_all(self.task_dir(task).join(d))?;
        }
        std::fs::set_permissions(
            self.secrets_dir(task),
            std::fs::Permissions::from_mode(0o700),
        )?;
        Ok(())
    }

    pub fn destroy(&self) -> io::Result<()> {
        match std::fs::remove_dir_all(&self.root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Resolves a path relative to the allocation directory, refusing any that leads outside
    /// it (`..`, absolute paths are taken as relative to the root, and symlinks that point out).
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, PathError> {
        resolve_within(&self.root, rel)
    }
}

/// Joins `rel` under `base` lexically, then checks the real path (following symlinks that
/// exist) is still under `base`.
pub fn resolve_within(base: &Path, rel: &str) -> Result<PathBuf, PathError> {
    let mut out = PathBuf::new();
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(PathError::Escapes(rel.to_string()));
                }
            }
        }
    }
    let full = base.join(&out);
    // Symlinks inside the alloc dir may point anywhere; check what exists really resolves
    // inside the base.
    if let (Ok(real_base), Ok(real)) = (base.canonicalize(), deepest_existing(&full)) {
        if !real.starts_with(&real_base) {
            return Err(PathError::Escapes(rel.to_string()));
        }
    }
    Ok(full)
}

fn deepest_existing(p: &Path) -> io::Result<PathBuf> {
    let mut cur = p.to_path_buf();
    loop {
        match cur.canonicalize() {
            Ok(c) => return Ok(c),
            Err(_) => {
                if !cur.pop() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        "no existing parent",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_escape() {
        let tmp = std::env::temp_dir().join(format!("caravan-allocdir-{}", std::process::id()));
        let ad = AllocDir::new(&tmp, "a1");
        ad.build().unwrap();
        ad.build_task("web").unwrap();
        assert_eq!(
            ad.resolve("web/local/x").unwrap(),
            ad.root.join("web/local/x")
        );
        assert_eq!(
            ad.resolve("/alloc/logs").unwrap(),
            ad.root.join("alloc/logs")
        );
        assert!(ad.resolve("../../etc/passwd").is_err());
        assert!(ad.resolve("web/../../x").is_err());
        assert!(ad.resolve("web/local/../../alloc").is_ok());
        std::os::unix::fs::symlink("/etc", ad.root.join("web/local/etc")).unwrap();
        assert!(ad.resolve("web/local/etc/passwd").is_err());
        ad.destroy().unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
