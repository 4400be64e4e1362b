//! The artifact as a job carries it: Nomad's `TaskArtifact` JSON (`GetterSource`, `GetterOptions`,
//! `GetterHeaders`, `GetterMode`, `RelativeDest`, `Chown`) read into a typed value.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{GetterError, Result};

/// How the destination is treated (`mode` in the job file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GetterMode {
    /// A file goes into the destination directory under its own name; archives and git
    /// repositories fill the directory.
    #[default]
    Any,
    /// The destination is the file itself.
    File,
    /// The destination is a directory.
    Dir,
}

impl GetterMode {
    /// Parses Nomad's spelling (`any`, `file`, `dir`; empty means `any`).
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "" | "any" => Ok(GetterMode::Any),
            "file" => Ok(GetterMode::File),
            "dir" => Ok(GetterMode::Dir),
            other => Err(GetterError::InvalidArtifact(format!(
                "mode {other:?} is not one of \"any\", \"file\", \"dir\""
            ))),
        }
    }
}

/// One `artifact {}` block of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `GetterSource`: the go-getter source string.
    pub source: String,
    /// `GetterOptions`: merged into the source's query (`checksum`, `archive`, `ref`, ...).
    pub options: BTreeMap<String, String>,
    /// `GetterHeaders`: HTTP headers sent with the download.
    pub headers: BTreeMap<String, String>,
    /// `GetterMode`.
    pub mode: GetterMode,
    /// `RelativeDest`: relative to the task directory; Nomad's default is `local/`.
    pub relative_dest: String,
    /// `Chown`: hand the files to the task's user.
    pub chown: bool,
}

impl Artifact {
    /// A plain artifact with Nomad's defaults (`mode = any`, `destination = "local/"`).
    pub fn new(source: impl Into<String>) -> Self {
        Artifact {
            source: source.into(),
            options: BTreeMap::new(),
            headers: BTreeMap::new(),
            mode: GetterMode::Any,
            relative_dest: "local/".to_string(),
            chown: false,
        }
    }

    /// Reads one element of `Task.Artifacts` in Nomad's API shape.
    pub fn from_nomad_json(value: &Value) -> Result<Self> {
        let obj = value
            .as_object()
            .ok_or_else(|| GetterError::InvalidArtifact("expected a JSON object".into()))?;
        let source = match obj.get("GetterSource") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(GetterError::InvalidArtifact(
                    "GetterSource (source) is required".into(),
                ))
            }
        };
        let mode = match obj.get("GetterMode") {
            None | Some(Value::Null) => GetterMode::Any,
            Some(Value::String(s)) => GetterMode::parse(s)?,
            Some(_) => {
                return Err(GetterError::InvalidArtifact(
                    "GetterMode must be a string".into(),
                ))
            }
        };
        let relative_dest = match obj.get("RelativeDest") {
            None | Some(Value::Null) => "local/".to_string(),
            Some(Value::String(s)) if s.is_empty() => "local/".to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(GetterError::InvalidArtifact(
                    "RelativeDest must be a string".into(),
                ))
            }
        };
        let chown = match obj.get("Chown") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(GetterError::InvalidArtifact(
                    "Chown must be a boolean".into(),
                ))
            }
        };
        Ok(Artifact {
            source,
            options: string_map(obj.get("GetterOptions"), "GetterOptions")?,
            headers: string_map(obj.get("GetterHeaders"), "GetterHeaders")?,
            mode,
            relative_dest,
            chown,
        })
    }

    /// The artifact with `${...}` interpolation applied to the source, options, headers and
    /// destination, as Nomad does before fetching.
    pub fn interpolated(&self, interpolate: &dyn Fn(&str) -> String) -> Artifact {
        Artifact {
            source: interpolate(&self.source),
            options: self
                .options
                .iter()
                .map(|(k, v)| (k.clone(), interpolate(v)))
                .collect(),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), interpolate(v)))
                .collect(),
            mode: self.mode,
            relative_dest: interpolate(&self.relative_dest),
            chown: self.chown,
        }
    }
}

/// Checks an artifact as a server does on job submission (Nomad's `TaskArtifact.Validate`):
/// Nomad's JSON shape, a destination that stays inside the allocation directory, and a
/// well-formed `checksum` option (unless it is interpolated at run time).
pub fn validate(value: &Value) -> Result<()> {
    let a = Artifact::from_nomad_json(value)?;
    // The task dir is one level below the allocation dir: "<alloc>/<task>/<dest>".
    let rel = std::path::Path::new("task").join(a.relative_dest.trim_start_matches('/'));
    if crate::sandbox::lexical_clean(&rel).is_none() {
        return Err(GetterError::DestinationEscapes {
            dest: a.relative_dest,
        });
    }
    if let Some(c) = a.options.get("checksum") {
        if !c.contains("${") {
            crate::checksum::ChecksumSpec::parse(c)?;
        }
    }
    Ok(())
}

fn string_map(value: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => {
                        return Err(GetterError::InvalidArtifact(format!(
                            "{field}.{k} must be a string"
                        )))
                    }
                };
                out.insert(k.clone(), s);
            }
        }
        Some(_) => {
            return Err(GetterError::InvalidArtifact(format!(
                "{field} must be an object of strings"
            )))
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_nomad_json() {
        let a = Artifact::from_nomad_json(&json!({
            "GetterSource": "https://example.com/app.tar.gz",
            "GetterOptions": {"checksum": "sha256:abcd"},
            "GetterHeaders": {"X-Token": "t"},
            "GetterMode": "file",
            "RelativeDest": "local/app",
            "Chown": true
        }))
        .unwrap();
        assert_eq!(a.source, "https://example.com/app.tar.gz");
        assert_eq!(a.options["checksum"], "sha256:abcd");
        assert_eq!(a.headers["X-Token"], "t");
        assert_eq!(a.mode, GetterMode::File);
        assert_eq!(a.relative_dest, "local/app");
        assert!(a.chown);
    }

    #[test]
    fn defaults_and_errors() {
        let a = Artifact::from_nomad_json(&json!({"GetterSource": "x", "GetterOptions": null}))
            .unwrap();
        assert_eq!(a.relative_dest, "local/");
        assert_eq!(a.mode, GetterMode::Any);
        assert!(!a.chown);
        assert!(Artifact::from_nomad_json(&json!({})).is_err());
        assert!(
            Artifact::from_nomad_json(&json!({"GetterSource": "x", "GetterMode": "tree"})).is_err()
        );
        assert!(Artifact::from_nomad_json(
            &json!({"GetterSource": "x", "GetterOptions": {"a": [1]}})
        )
        .is_err());
    }

    #[test]
    fn validates_like_nomad() {
        assert!(
            validate(&json!({"GetterSource": "https://h/a", "RelativeDest": "local/x"})).is_ok()
        );
        assert!(
            validate(&json!({"GetterSource": "https://h/a", "RelativeDest": "../alloc/data"}))
                .is_ok()
        );
        let e = validate(&json!({"GetterSource": "https://h/a", "RelativeDest": "../../etc"}))
            .unwrap_err();
        assert!(matches!(e, GetterError::DestinationEscapes { .. }), "{e}");
        let e = validate(
            &json!({"GetterSource": "https://h/a", "GetterOptions": {"checksum": "sha256:12"}}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("invalid checksum"), "{e}");
        assert!(validate(&json!({"GetterSource": "https://h/a", "GetterOptions": {"checksum": "${NOMAD_META_sum}"}})).is_ok());
        assert!(validate(&json!({"RelativeDest": "local"})).is_err());
    }

    #[test]
    fn interpolates_every_string() {
        let mut a = Artifact::new("https://h/${V}.tgz");
        a.options.insert("checksum".into(), "${V}".into());
        a.headers.insert("H".into(), "${V}".into());
        a.relative_dest = "local/${V}".into();
        let b = a.interpolated(&|s: &str| s.replace("${V}", "1"));
        assert_eq!(b.source, "https://h/1.tgz");
        assert_eq!(b.options["checksum"], "1");
        assert_eq!(b.headers["H"], "1");
        assert_eq!(b.relative_dest, "local/1");
    }
}
