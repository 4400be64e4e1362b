//! A java task's `config {}` block ([`JavaTaskConfig`]) and its translation into the exec
//! driver's block: `command = "java"` with `[jvm_options] [-cp class_path] [-jar jar_path]
//! [class] [args]`, in the order Nomad's java driver builds it.

use caravan_driver::config_value::{kind, string_list};
use caravan_driver::DriverError;
use serde_json::{Map, Value};

/// Keys a java task's `config {}` block may hold (Nomad's java driver task schema).
pub const KNOWN_KEYS: &[&str] = &[
    "class",
    "class_path",
    "jar_path",
    "jvm_options",
    "args",
    "pid_mode",
    "ipc_mode",
    "cap_add",
    "cap_drop",
];

/// A parsed java task `config {}` block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JavaTaskConfig {
    /// The main class to run (`class`).
    pub class: Option<String>,
    /// The class path handed to `-cp` (`class_path`), paths as seen inside the chroot.
    pub class_path: Option<String>,
    /// The jar to run with `-jar` (`jar_path`), relative to the task dir or absolute
    /// inside the chroot.
    pub jar_path: Option<String>,
    /// Options for the JVM, placed before the class or jar (`jvm_options`).
    pub jvm_options: Vec<String>,
    /// Arguments of the program (`args`).
    pub args: Vec<String>,
    /// `pid_mode`, `ipc_mode`, `cap_add`, `cap_drop`: passed on to the exec driver as given.
    pub isolation: Map<String, Value>,
}

impl JavaTaskConfig {
    /// Parses the task's `config {}` block. Unknown keys, values of the wrong kind, neither
    /// `jar_path` nor `class`, and paths that climb out of the task dir are errors.
    pub fn parse(cfg: &Map<String, Value>) -> Result<Self, DriverError> {
        for key in cfg.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                return Err(DriverError::InvalidConfig(format!(
                    "unknown java config option {key:?}; expected one of {}",
                    KNOWN_KEYS.join(", ")
                )));
            }
        }
        let class = opt_string(cfg, "class")?;
        let class_path = opt_string(cfg, "class_path")?;
        let jar_path = opt_string(cfg, "jar_path")?;
        if class.is_none() && jar_path.is_none() {
            return Err(DriverError::InvalidConfig(
                "the java config block needs \"jar_path\" (a jar to run) or \"class\" \
                 (a main class, with \"class_path\")"
                    .into(),
            ));
        }
        if let Some(jar) = &jar_path {
            check_inside_task_dir("jar_path", jar)?;
        }
        if let Some(cp) = &class_path {
            for entry in cp.split(':').filter(|e| !e.is_empty()) {
                check_inside_task_dir("class_path", entry)?;
            }
        }
        let mut isolation = Map::new();
        for key in ["pid_mode", "ipc_mode", "cap_add", "cap_drop"] {
            if let Some(v) = cfg.get(key) {
                isolation.insert(key.to_string(), v.clone());
            }
        }
        Ok(JavaTaskConfig {
            class,
            class_path,
            jar_path,
            jvm_options: string_list(cfg, "jvm_options")?,
            args: string_list(cfg, "args")?,
            isolation,
        })
    }

    /// The java arguments after the `java` program name.
    pub fn java_args(&self) -> Vec<String> {
        let mut out = self.jvm_options.clone();
        if let Some(cp) = &self.class_path {
            out.extend(["-cp".to_string(), cp.clone()]);
        }
        if let Some(jar) = &self.jar_path {
            out.extend(["-jar".to_string(), jar.clone()]);
        }
        if let Some(class) = &self.class {
            out.push(class.clone());
        }
        out.extend(self.args.iter().cloned());
        out
    }

    /// The exec driver's `config {}` block that runs this java task.
    pub fn to_exec_config(&self) -> Map<String, Value> {
        let mut out = self.isolation.clone();
        out.insert("command".into(), Value::String("java".into()));
        out.insert(
            "args".into(),
            Value::Array(self.java_args().into_iter().map(Value::String).collect()),
        );
        out
    }
}

/// Refuses a path that `..` components lift above the task dir (the chroot's root).
/// Relative paths start in the task dir, absolute ones at the chroot's root, which is the
/// task dir too.
fn check_inside_task_dir(key: &str, path: &str) -> Result<(), DriverError> {
    let mut depth: usize = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    DriverError::InvalidConfig(format!(
                        "{key} {path:?} escapes the task directory; give a path inside it \
                         (relative to the task dir, e.g. \"local/app.jar\")"
                    ))
                })?
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

fn opt_string(cfg: &Map<String, Value>, key: &str) -> Result<Option<String>, DriverError> {
    match cfg.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(DriverError::InvalidConfig(format!(
            "\"{key}\" must be a string, got {}",
            kind(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<JavaTaskConfig, DriverError> {
        JavaTaskConfig::parse(v.as_object().expect("a map"))
    }

    #[test]
    fn builds_nomads_command_line_order() {
        let c = parse(json!({
            "class": "com.example.Main", "class_path": "/local/lib:/local/classes",
            "jvm_options": ["-Xmx64m", "-Dx=1"], "args": ["a", 2, true]
        }))
        .unwrap();
        assert_eq!(
            c.java_args(),
            vec![
                "-Xmx64m",
                "-Dx=1",
                "-cp",
                "/local/lib:/local/classes",
                "com.example.Main",
                "a",
                "2",
                "true"
            ]
        );
        let c = parse(json!({"jar_path": "local/app.jar", "args": ["x"]})).unwrap();
        assert_eq!(c.java_args(), vec!["-jar", "local/app.jar", "x"]);
    }

    #[test]
    fn exec_block_carries_command_and_isolation_keys() {
        let c = parse(json!({
            "jar_path": "local/app.jar", "pid_mode": "host", "ipc_mode": "private",
            "cap_add": ["net_raw"], "cap_drop": ["all"]
        }))
        .unwrap();
        let e = c.to_exec_config();
        assert_eq!(e["command"], json!("java"));
        assert_eq!(e["args"], json!(["-jar", "local/app.jar"]));
        assert_eq!(e["pid_mode"], json!("host"));
        assert_eq!(e["ipc_mode"], json!("private"));
        assert_eq!(e["cap_add"], json!(["net_raw"]));
        assert_eq!(e["cap_drop"], json!(["all"]));
        assert_eq!(e.len(), 6, "{e:?}");
        // The exec driver accepts what we hand it.
        caravan_driver_exec::ExecTaskConfig::parse(&e).unwrap();
    }

    #[test]
    fn bad_input_is_refused_with_a_clear_message() {
        let e = parse(json!({"jvm_options": ["-Xmx1g"]})).unwrap_err();
        assert!(e.to_string().contains("\"jar_path\""), "{e}");
        assert!(e.to_string().contains("\"class\""), "{e}");
        let e = parse(json!({"jar_path": "", "class": " "})).unwrap_err();
        assert!(e.to_string().contains("needs \"jar_path\""), "{e}");
        let e = parse(json!({"jar_path": "x.jar", "command": "/bin/sh"})).unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown java config option \"command\""),
            "{e}"
        );
        let e = parse(json!({"jar_path": "../../etc/x.jar"})).unwrap_err();
        assert!(e.to_string().contains("escapes the task directory"), "{e}");
        let e = parse(json!({"jar_path": "local/../../x.jar"})).unwrap_err();
        assert!(e.to_string().contains("jar_path"), "{e}");
        let e = parse(json!({"jar_path": "/../host.jar"})).unwrap_err();
        assert!(e.to_string().contains("escapes"), "{e}");
        let e = parse(json!({"class": "M", "class_path": "/local:../up"})).unwrap_err();
        assert!(e.to_string().contains("class_path \"../up\""), "{e}");
        let e = parse(json!({"jar_path": 5})).unwrap_err();
        assert!(
            e.to_string().contains("\"jar_path\" must be a string"),
            "{e}"
        );
        let e = parse(json!({"class": "M", "args": "a b"})).unwrap_err();
        assert!(e.to_string().contains("\"args\" must be a list"), "{e}");
        let e = parse(json!({"class": "M", "jvm_options": [{"a": 1}]})).unwrap_err();
        assert!(e.to_string().contains("element 0 is a map"), "{e}");
        // Paths that stay inside are fine, also ones that go down and up again.
        assert!(parse(json!({"jar_path": "local/lib/../app.jar"})).is_ok());
        assert!(parse(json!({"jar_path": "/local/app.jar"})).is_ok());
    }
}
