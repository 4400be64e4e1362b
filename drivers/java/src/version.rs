//! The host's Java as `java -version` describes it: the parser ([`parse_java_version`]) and
//! the background probe ([`Probe`]) that runs the command off the agent's start-up path.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::watch;

/// How long the probe lets `java -version` run before giving up on it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// What `java -version` says about the host's Java (Nomad's node attributes
/// `driver.java.version`, `driver.java.runtime`, `driver.java.vm`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaVersion {
    /// The quoted version, e.g. `17.0.15` or `1.8.0_392`.
    pub version: String,
    /// The runtime line, e.g. `OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)`.
    pub runtime: String,
    /// The VM line, e.g. `OpenJDK 64-Bit Server VM (build 17.0.15+6-..., mixed mode, sharing)`.
    pub vm: String,
}

/// Why `java -version` output could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionParseError {
    /// No line of the form `... version "X" ...`.
    #[error("no 'version \"...\"' line in java -version output: {0:?}")]
    NoVersionLine(String),
    /// The version line is not followed by the runtime and VM lines.
    #[error("java -version output lacks the runtime and VM lines after the version: {0:?}")]
    MissingLines(String),
}

/// Parses `java -version` output (its stderr). Lines the JVM prints first about picked-up
/// options (`Picked up JAVA_TOOL_OPTIONS: ...`) are skipped; the version line is followed
/// by the runtime line and the VM line, taken whole, as Nomad does.
pub fn parse_java_version(output: &str) -> Result<JavaVersion, VersionParseError> {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Picked up "))
        .collect();
    let (at, version) = lines
        .iter()
        .enumerate()
        .find_map(|(i, l)| quoted_version(l).map(|v| (i, v)))
        .ok_or_else(|| VersionParseError::NoVersionLine(output.trim().to_string()))?;
    match (lines.get(at + 1), lines.get(at + 2)) {
        (Some(runtime), Some(vm)) => Ok(JavaVersion {
            version,
            runtime: runtime.to_string(),
            vm: vm.to_string(),
        }),
        _ => Err(VersionParseError::MissingLines(output.trim().to_string())),
    }
}

/// `X` from a line holding `version "X"`.
fn quoted_version(line: &str) -> Option<String> {
    let rest = &line[line.find("version \"")? + "version \"".len()..];
    let v = &rest[..rest.find('"')?];
    (!v.is_empty()).then(|| v.to_string())
}

/// The outcome of one probe: the version, or why Java is not usable, worded for the
/// node's driver health.
pub type ProbeResult = Result<JavaVersion, String>;

/// A `java -version` run in a thread of its own; its result arrives on a watch channel.
#[derive(Debug, Clone)]
pub struct Probe {
    rx: watch::Receiver<Option<ProbeResult>>,
    started: Instant,
}

impl Probe {
    /// Starts `<java> -version` in a new thread and returns at once.
    pub fn start(java: &Path) -> Probe {
        let (tx, rx) = watch::channel(None);
        let java = java.to_path_buf();
        let spawned = std::thread::Builder::new()
            .name("java-version-probe".into())
            .spawn({
                let tx = tx.clone();
                move || {
                    let r = run_java_version(&java, PROBE_TIMEOUT);
                    match &r {
                        Ok(v) => tracing::debug!(version = %v.version, "java detected"),
                        Err(e) => tracing::debug!("java not usable: {e}"),
                    }
                    tx.send_replace(Some(r));
                }
            });
        if let Err(e) = spawned {
            tx.send_replace(Some(Err(format!(
                "cannot start a thread to run java -version: {e}"
            ))));
        }
        Probe {
            rx,
            started: Instant::now(),
        }
    }

    /// The result, waiting for it at most `bound`; `None` while the probe still runs.
    pub async fn result_within(&self, bound: Duration) -> Option<ProbeResult> {
        let mut rx = self.rx.clone();
        let result = match tokio::time::timeout(bound, rx.wait_for(Option::is_some)).await {
            Ok(Ok(r)) => r.clone(),
            // The sender is gone without a result (the thread panicked).
            Ok(Err(_)) => Some(Err("the java -version probe ended without a result".into())),
            Err(_) => None,
        };
        result
    }

    /// When the probe was started.
    pub fn started(&self) -> Instant {
        self.started
    }
}

/// Runs `<java> -version`, killing it after `timeout`, and parses what it printed.
pub fn run_java_version(java: &Path, timeout: Duration) -> ProbeResult {
    let shown = java.display();
    let mut child = Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "java not found: cannot run {shown:?} -version: {e}; install a JDK/JRE \
                 (java on the agent's PATH) to use the java driver"
            )
        })?;
    // Read both pipes in threads so a chatty JVM cannot block on a full pipe.
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown:?} -version did not finish within {timeout:?}; java driver disabled \
                     until it answers"
                ));
            }
            Err(e) => return Err(format!("waiting for {shown:?} -version: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        return Err(format!(
            "{shown:?} -version failed ({status}): {}",
            stderr.trim()
        ));
    }
    // `java -version` writes to stderr; tolerate a JVM that writes to stdout.
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    parse_java_version(&text).map_err(|e| format!("unrecognised java: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENJDK17: &str = "openjdk version \"17.0.15\" 2025-04-15\n\
        OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n\
        OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n";

    const OPENJDK11: &str = "openjdk version \"11.0.21\" 2023-10-17\n\
        OpenJDK Runtime Environment (build 11.0.21+9-post-Ubuntu-0ubuntu122.04)\n\
        OpenJDK 64-Bit Server VM (build 11.0.21+9-post-Ubuntu-0ubuntu122.04, mixed mode, sharing)\n";

    const OPENJDK8: &str = "openjdk version \"1.8.0_392\"\n\
        OpenJDK Runtime Environment (build 1.8.0_392-8u392-ga-1~22.04-b08)\n\
        OpenJDK 64-Bit Server VM (build 25.392-b08, mixed mode)\n";

    const ORACLE8_PICKED_UP: &str = "Picked up JAVA_TOOL_OPTIONS: -Xmx512m\n\
        java version \"1.8.0_181\"\n\
        Java(TM) SE Runtime Environment (build 1.8.0_181-b13)\n\
        Java HotSpot(TM) 64-Bit Server VM (build 25.181-b13, mixed mode)\n";

    const TEMURIN21: &str = "openjdk version \"21.0.1\" 2023-10-17 LTS\r\n\
        OpenJDK Runtime Environment Temurin-21.0.1+12 (build 21.0.1+12-LTS)\r\n\
        OpenJDK 64-Bit Server VM Temurin-21.0.1+12 (build 21.0.1+12-LTS, mixed mode, sharing)\r\n";

    #[test]
    fn parses_openjdk_17_11_and_8() {
        let v = parse_java_version(OPENJDK17).unwrap();
        assert_eq!(v.version, "17.0.15");
        assert_eq!(
            v.runtime,
            "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)"
        );
        assert_eq!(
            v.vm,
            "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)"
        );
        let v = parse_java_version(OPENJDK11).unwrap();
        assert_eq!(v.version, "11.0.21");
        assert!(v
            .runtime
            .ends_with("(build 11.0.21+9-post-Ubuntu-0ubuntu122.04)"));
        assert!(v
            .vm
            .starts_with("OpenJDK 64-Bit Server VM (build 11.0.21+9"));
        let v = parse_java_version(OPENJDK8).unwrap();
        assert_eq!(v.version, "1.8.0_392");
        assert_eq!(
            v.runtime,
            "OpenJDK Runtime Environment (build 1.8.0_392-8u392-ga-1~22.04-b08)"
        );
        assert_eq!(
            v.vm,
            "OpenJDK 64-Bit Server VM (build 25.392-b08, mixed mode)"
        );
    }

    #[test]
    fn skips_picked_up_options_and_handles_crlf() {
        let v = parse_java_version(ORACLE8_PICKED_UP).unwrap();
        assert_eq!(v.version, "1.8.0_181");
        assert_eq!(
            v.runtime,
            "Java(TM) SE Runtime Environment (build 1.8.0_181-b13)"
        );
        let v = parse_java_version(TEMURIN21).unwrap();
        assert_eq!(v.version, "21.0.1");
        assert_eq!(
            v.vm,
            "OpenJDK 64-Bit Server VM Temurin-21.0.1+12 (build 21.0.1+12-LTS, mixed mode, sharing)"
        );
    }

    #[test]
    fn rejects_output_that_is_not_java_version() {
        assert!(matches!(
            parse_java_version("bash: java: command not found"),
            Err(VersionParseError::NoVersionLine(_))
        ));
        assert!(matches!(
            parse_java_version("openjdk version \"17\"\nOpenJDK Runtime Environment"),
            Err(VersionParseError::MissingLines(_))
        ));
        assert!(parse_java_version("").is_err());
        assert!(parse_java_version("openjdk version \"\"\na\nb").is_err());
    }

    #[test]
    fn missing_java_is_reported_with_the_path() {
        let e = run_java_version(
            Path::new("/nonexistent/caravan/java"),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(e.contains("java not found"), "{e}");
        assert!(e.contains("/nonexistent/caravan/java"), "{e}");
    }
}
