//! The raw_exec task `config {}` block: `command`, `args`, and the Nomad options accepted
//! for compatibility.

use caravan_driver::config_value::{kind, string_list};
use caravan_driver::DriverError;
use serde_json::{Map, Value};

/// Keys Nomad's raw_exec accepts that Caravan accepts too but does not act on.
const IGNORED_KEYS: &[&str] = &[
    "cgroup_v1_override",
    "cgroup_v2_override",
    "oom_score_adj",
    "denied_envvars",
    "pid_mode",
    "ipc_mode",
    "cap_add",
    "cap_drop",
];

/// A parsed raw_exec task config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawExecConfig {
    /// The program: an absolute path, a path relative to the task dir, or a name looked up in
    /// `local/`, the task dir, then `PATH`.
    pub command: String,
    pub args: Vec<String>,
    /// Optional working directory (absolute) instead of the task dir.
    pub work_dir: Option<String>,
}

impl RawExecConfig {
    /// Parses the task's `config {}` block.
    pub fn parse(cfg: &Map<String, Value>) -> Result<Self, DriverError> {
        for key in cfg.keys() {
            if !matches!(key.as_str(), "command" | "args" | "work_dir")
                && !IGNORED_KEYS.contains(&key.as_str())
            {
                return Err(DriverError::InvalidConfig(format!(
                    "unknown raw_exec config option {key:?}; expected \"command\", \"args\" or \"work_dir\""
                )));
            }
        }
        let command = match cfg.get("command") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                return Err(DriverError::InvalidConfig(
                    "missing required \"command\" in the raw_exec config block".into(),
                ))
            }
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"command\" must be a string, got {}",
                    kind(other)
                )))
            }
        };
        let args = string_list(cfg, "args")?;
        let work_dir = match cfg.get("work_dir") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) if s.starts_with('/') => Some(s.clone()),
            Some(Value::String(s)) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"work_dir\" must be an absolute path, got {s:?}"
                )))
            }
            Some(other) => {
                return Err(DriverError::InvalidConfig(format!(
                    "\"work_dir\" must be a string, got {}",
                    kind(other)
                )))
            }
        };
        Ok(RawExecConfig {
            command,
            args,
            work_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<RawExecConfig, DriverError> {
        RawExecConfig::parse(v.as_object().unwrap())
    }

    #[test]
    fn parses_command_and_args() {
        let c = parse(json!({"command": "/bin/sh", "args": ["-c", "echo hi", 8080]})).unwrap();
        assert_eq!(c.command, "/bin/sh");
        assert_eq!(c.args, vec!["-c", "echo hi", "8080"]);
        assert_eq!(c.work_dir, None);
        let c = parse(json!({"command": "sleep"})).unwrap();
        assert!(c.args.is_empty());
    }

    #[test]
    fn missing_command_is_clear() {
        let e = parse(json!({"args": ["x"]})).unwrap_err();
        assert!(
            matches!(&e, DriverError::InvalidConfig(m) if m.contains("missing required \"command\"")),
            "{e}"
        );
        assert!(parse(json!({"command": ""})).is_err());
        assert!(parse(json!({"command": 5})).is_err());
    }

    #[test]
    fn args_must_be_strings() {
        let e = parse(json!({"command": "x", "args": "a b"})).unwrap_err();
        assert!(
            e.to_string().contains("\"args\" must be a list of strings"),
            "{e}"
        );
        let e = parse(json!({"command": "x", "args": ["a", {"b": 1}]})).unwrap_err();
        assert!(e.to_string().contains("element 1 is a map"), "{e}");
    }

    #[test]
    fn unknown_key_rejected_known_ignored() {
        assert!(parse(json!({"command": "x", "foo": 1})).is_err());
        assert!(parse(json!({"command": "x", "pid_mode": "host"})).is_ok());
        assert!(parse(json!({"command": "x", "work_dir": "rel"})).is_err());
        assert_eq!(
            parse(json!({"command": "x", "work_dir": "/tmp"}))
                .unwrap()
                .work_dir,
            Some("/tmp".into())
        );
    }
}
