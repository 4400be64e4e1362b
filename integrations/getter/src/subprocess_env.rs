//! The environment of the getter's subprocesses (`git`, `hg`, `ssh`), as Nomad builds it: a
//! minimal `PATH` and nothing else from the agent unless the client's `artifact {
//! set_environment_variables = "A,B" }` names it, so the agent's secrets (cloud credentials,
//! tokens) never reach a repository's hooks or helpers.

/// Nomad's default `PATH` for getter subprocesses.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// Parses `set_environment_variables` (`"A,B"`, spaces allowed) into names.
pub fn parse_names(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The variables a subprocess starts with: `PATH` (the minimal one unless `PATH` is passed
/// through) plus the named variables that the agent has, read through `get`.
pub fn build(names: &[String], get: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for n in names {
        if let Some(v) = get(n) {
            out.retain(|(k, _)| k != n);
            out.push((n.clone(), v));
        }
    }
    if !out.iter().any(|(k, _)| k == "PATH") {
        out.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    out
}

/// Applies [`build`] over the agent's own environment to `cmd`, clearing everything else.
pub fn apply(cmd: &mut tokio::process::Command, names: &[String]) {
    cmd.env_clear();
    for (k, v) in build(names, &|k| std::env::var(k).ok()) {
        cmd.env(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_variables_pass() {
        let host = |k: &str| match k {
            "HTTPS_PROXY" => Some("http://proxy:3128".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("secret".to_string()),
            "PATH" => Some("/opt/bin:/usr/bin".to_string()),
            _ => None,
        };
        let none = build(&[], &host);
        assert_eq!(none, vec![("PATH".to_string(), DEFAULT_PATH.to_string())]);
        let some = build(&parse_names(" HTTPS_PROXY , MISSING,"), &host);
        assert_eq!(
            some,
            vec![
                ("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string()),
                ("PATH".to_string(), DEFAULT_PATH.to_string())
            ]
        );
        let path = build(&parse_names("PATH"), &host);
        assert_eq!(
            path,
            vec![("PATH".to_string(), "/opt/bin:/usr/bin".to_string())]
        );
    }
}
