//! Image references and registry credentials for pulls: a task's `auth {}` block, then the
//! plugin's `auth { config = "config.json" }` file (its `auths` and `credHelpers`), then the
//! plugin's `auth { helper = "..." }` credential helper, in Nomad's order.

use crate::plugin_config::PluginAuth;
use crate::task_config::AuthConfig;
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use caravan_driver::DriverError;
use serde::Deserialize;
use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// Docker Hub's registry name in config files.
const DOCKER_HUB: &str = "docker.io";

/// An image reference split the way the engine's pull API wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (`docker.io` when the reference names none).
    pub registry: String,
    /// Repository including the registry part as written (`localhost:5000/app`, `busybox`).
    pub repository: String,
    /// Tag, `latest` when neither tag nor digest is given; empty with a digest.
    pub tag: String,
    /// `sha256:...` when the reference pins a digest.
    pub digest: String,
}

impl ImageRef {
    /// Parses `[registry/]repo[:tag][@digest]`.
    pub fn parse(image: &str) -> ImageRef {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, d.to_string()),
            None => (image, String::new()),
        };
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repository, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                name[..last_slash + i].to_string(),
                name[last_slash + i + 1..].to_string(),
            ),
            None => (name.to_string(), String::new()),
        };
        let tag = if tag.is_empty() && digest.is_empty() {
            "latest".to_string()
        } else {
            tag
        };
        let registry = match repository.split_once('/') {
            Some((first, _))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                first.to_string()
            }
            _ => DOCKER_HUB.to_string(),
        };
        ImageRef {
            registry,
            repository,
            tag,
            digest,
        }
    }

    /// What to pass as `fromImage` (repository, with the digest when pinned).
    pub fn pull_name(&self) -> String {
        if self.digest.is_empty() {
            self.repository.clone()
        } else {
            format!("{}@{}", self.repository, self.digest)
        }
    }
}

/// Finds credentials for pulling `image`; `None` pulls anonymously.
pub fn resolve(
    image: &ImageRef,
    task_auth: Option<&AuthConfig>,
    plugin_auth: Option<&PluginAuth>,
) -> Result<Option<DockerCredentials>, DriverError> {
    if let Some(a) = task_auth {
        if !a.username.is_empty() || !a.password.is_empty() {
            return Ok(Some(DockerCredentials {
                username: Some(a.username.clone()),
                password: Some(a.password.clone()),
                email: (!a.email.is_empty()).then(|| a.email.clone()),
                serveraddress: Some(if a.server_address.is_empty() {
                    image.registry.clone()
                } else {
                    a.server_address.clone()
                }),
                ..Default::default()
            }));
        }
    }
    let Some(plugin) = plugin_auth else {
        return Ok(None);
    };
    if !plugin.config.is_empty() {
        let text = std::fs::read_to_string(&plugin.config).map_err(|e| {
            DriverError::Other(format!(
                "cannot read the docker auth config {:?} (plugin option auth.config): {e}",
                plugin.config
            ))
        })?;
        let file: ConfigFile = serde_json::from_str(&text).map_err(|e| {
            DriverError::Other(format!(
                "docker auth config {:?} is not valid JSON: {e}",
                plugin.config
            ))
        })?;
        if let Some(c) = file.credentials(&image.registry)? {
            return Ok(Some(c));
        }
    }
    if !plugin.helper.is_empty() {
        return from_helper(&plugin.helper, &image.registry);
    }
    Ok(None)
}

/// The parts of a Docker `config.json` that hold registry credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigFile {
    auths: HashMap<String, ConfigEntry>,
    #[serde(rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(rename = "credsStore")]
    creds_store: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ConfigEntry {
    auth: String,
    username: String,
    password: String,
    identitytoken: String,
}

/// `https://index.docker.io/v1/`, `registry:5000`, `http://registry:5000/v2/` → host[:port].
fn normalize_registry(s: &str) -> String {
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        h => h.to_string(),
    }
}

impl ConfigFile {
    fn credentials(&self, registry: &str) -> Result<Option<DockerCredentials>, DriverError> {
        for (server, entry) in &self.auths {
            if normalize_registry(server) != registry {
                continue;
            }
            let (mut user, mut pass) = (entry.username.clone(), entry.password.clone());
            if !entry.auth.is_empty() {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(entry.auth.trim())
                    .map_err(|e| {
                        DriverError::Other(format!(
                            "the auth of {server:?} in the docker auth config is not base64: {e}"
                        ))
                    })?;
                let text = String::from_utf8_lossy(&raw).to_string();
                let (u, p) = text.split_once(':').ok_or_else(|| {
                    DriverError::Other(format!(
                        "the auth of {server:?} in the docker auth config is not \"user:password\""
                    ))
                })?;
                user = u.to_string();
                pass = p.to_string();
            }
            return Ok(Some(DockerCredentials {
                username: (!user.is_empty()).then_some(user),
                password: (!pass.is_empty()).then_some(pass),
                identitytoken: (!entry.identitytoken.is_empty())
                    .then(|| entry.identitytoken.clone()),
                serveraddress: Some(registry.to_string()),
                ..Default::default()
            }));
        }
        let helper = self
            .cred_helpers
            .iter()
            .find(|(server, _)| normalize_registry(server) == registry)
            .map(|(_, h)| h.clone())
            .or_else(|| (!self.creds_store.is_empty()).then(|| self.creds_store.clone()));
        match helper {
            Some(h) => from_helper(&h, registry),
            None => Ok(None),
        }
    }
}

#[derive(Debug, Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Asks `docker-credential-<helper> get` for the registry's credentials. A helper that knows
/// none (it exits non-zero saying so) means an anonymous pull.
fn from_helper(helper: &str, registry: &str) -> Result<Option<DockerCredentials>, DriverError> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            DriverError::Other(format!(
                "cannot run credential helper {program:?} (plugin option auth.helper): {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| DriverError::Other(format!("credential helper {program:?}: {e}")))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(DriverError::Other(format!(
            "credential helper {program:?} failed for {registry}: {msg} {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let reply: HelperReply = serde_json::from_slice(&out.stdout).map_err(|e| {
        DriverError::Other(format!(
            "credential helper {program:?} printed something that is not its JSON reply: {e}"
        ))
    })?;
    let creds = if reply.username == "<token>" {
        DockerCredentials {
            identitytoken: Some(reply.secret),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        }
    } else {
        DockerCredentials {
            username: Some(reply.username),
            password: Some(reply.secret),
            serveraddress: Some(registry.to_string()),
            ..Default::default()
        }
    };
    Ok(Some(creds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("busybox");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("docker.io", "busybox", "latest")
        );
        let r = ImageRef::parse("localhost:5000/team/app:1.2");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("localhost:5000", "localhost:5000/team/app", "1.2")
        );
        let r = ImageRef::parse("redis@sha256:abc");
        assert_eq!(
            (r.tag.as_str(), r.pull_name().as_str()),
            ("", "redis@sha256:abc")
        );
        let r = ImageRef::parse("library/redis:7");
        assert_eq!((r.registry.as_str(), r.tag.as_str()), ("docker.io", "7"));
    }

    #[test]
    fn task_auth_wins() {
        let a = AuthConfig {
            username: "u".into(),
            password: "p".into(),
            ..Default::default()
        };
        let c = resolve(&ImageRef::parse("reg.example:5000/x"), Some(&a), None)
            .unwrap()
            .unwrap();
        assert_eq!(c.username.as_deref(), Some("u"));
        assert_eq!(c.serveraddress.as_deref(), Some("reg.example:5000"));
    }

    #[test]
    fn config_file_auths() {
        let dir = std::env::temp_dir().join(format!("caravan-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths": {{"https://reg.example:5000/v2/": {{"auth": "{auth}"}}}}}}"#),
        )
        .unwrap();
        let plugin = PluginAuth {
            config: path.display().to_string(),
            helper: String::new(),
        };
        let c = resolve(
            &ImageRef::parse("reg.example:5000/x:1"),
            None,
            Some(&plugin),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("alice"), Some("s3cret"))
        );
        assert!(
            resolve(&ImageRef::parse("other.example/x"), None, Some(&plugin))
                .unwrap()
                .is_none()
        );
        let missing = PluginAuth {
            config: dir.join("nope.json").display().to_string(),
            helper: String::new(),
        };
        let e = resolve(&ImageRef::parse("x"), None, Some(&missing)).unwrap_err();
        assert!(e.to_string().contains("auth.config"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn helper_reply() {
        // A helper written as a shell script on PATH is exercised in the integration tests;
        // a helper that does not exist is an error naming the plugin option.
        let e = from_helper("caravan-does-not-exist", "r").unwrap_err();
        assert!(e.to_string().contains("auth.helper"), "{e}");
    }
}
