//! `client { artifact {} }` turned into the getter's settings: Nomad's defaults where unset,
//! sizes in go-humanize's notation (`"100GB"`, `"1 GiB"`, `"512MiB"`, plain bytes).

use super::config::AgentConfig;
use anyhow::anyhow;
use caravan_getter::GetterConfig;

/// Parses a size as Nomad's `humanize.ParseBytes` does: decimal (`kB`, `MB`, `GB`, `TB`) and
/// binary (`KiB`, `MiB`, `GiB`, `TiB`) units, case-insensitive, optional space and `B`.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. \"100GB\", \"512MiB\")"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "p" | "pb" => 1e15,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        "pi" | "pib" => 1024f64.powi(5),
        other => return Err(format!("{s:?}: unknown size unit {other:?}")),
    };
    Ok((n * mult) as u64)
}

pub fn getter_config(cfg: &AgentConfig) -> anyhow::Result<GetterConfig> {
    let mut g = GetterConfig::default();
    let Some(a) = cfg.file.client.as_ref().and_then(|c| c.artifact.as_ref()) else {
        return Ok(g);
    };
    if let Some(d) = &a.http_read_timeout {
        g.http_read_timeout = d.as_std();
    }
    if let Some(s) = &a.http_max_size {
        g.http_max_size =
            parse_bytes(s).map_err(|e| anyhow!("client.artifact.http_max_size: {e}"))?;
    }
    if let Some(d) = &a.git_timeout {
        g.git_timeout = d.as_std();
    }
    if let Some(d) = &a.s3_timeout {
        g.s3_timeout = d.as_std();
    }
    if let Some(d) = &a.gcs_timeout {
        g.gcs_timeout = d.as_std();
    }
    if let Some(s) = &a.decompression_size_limit {
        g.decompression_size_limit =
            parse_bytes(s).map_err(|e| anyhow!("client.artifact.decompression_size_limit: {e}"))?;
    }
    if let Some(n) = a.decompression_file_count_limit {
        g.decompression_file_count_limit = u64::try_from(n).map_err(|_| {
            anyhow!("client.artifact.decompression_file_count_limit = {n}: must not be negative")
        })?;
    }
    if let Some(b) = a.disable_filesystem_isolation {
        g.disable_filesystem_isolation = b;
    }
    if let Some(d) = &a.hg_timeout {
        g.hg_timeout = d.as_std();
    }
    if let Some(list) = &a.set_environment_variables {
        g.set_environment_variables = caravan_getter::subprocess_env::parse_names(list);
    }
    if let Some(paths) = &a.filesystem_isolation_extra_paths {
        g.filesystem_isolation_extra_paths = paths
            .iter()
            .map(|p| {
                parse_extra_path(p)
                    .map_err(|e| anyhow!("client.artifact.filesystem_isolation_extra_paths: {e}"))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(g)
}

/// Reads one `filesystem_isolation_extra_paths` entry in Nomad's `<f|d>:<r|w|x|c...>:<path>`
/// form into the host path (Caravan's isolation only governs what local sources may read, so
/// the kind and mode are checked but not otherwise used).
fn parse_extra_path(entry: &str) -> Result<std::path::PathBuf, String> {
    let mut parts = entry.splitn(3, ':');
    let (kind, mode, path) = match (parts.next(), parts.next(), parts.next()) {
        (Some(k), Some(m), Some(p)) => (k, m, p),
        _ => {
            return Err(format!(
                "{entry:?} is not <f|d>:<mode>:<path> (e.g. \"d:r:/etc/ssl/certs\")"
            ))
        }
    };
    if !matches!(kind, "f" | "d") {
        return Err(format!(
            "{entry:?}: the kind must be f (file) or d (directory)"
        ));
    }
    if mode.is_empty() || !mode.chars().all(|c| matches!(c, 'r' | 'w' | 'x' | 'c')) {
        return Err(format!("{entry:?}: the mode is made of r, w, x and c"));
    }
    if !path.starts_with('/') {
        return Err(format!("{entry:?}: the path must be absolute"));
    }
    Ok(std::path::PathBuf::from(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_as_go_humanize() {
        assert_eq!(parse_bytes("100GB"), Ok(100_000_000_000));
        assert_eq!(parse_bytes("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("512mib"), Ok(512 << 20));
        assert_eq!(parse_bytes("42"), Ok(42));
        assert_eq!(parse_bytes("1.5kB"), Ok(1500));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("3 parsecs")
            .unwrap_err()
            .contains("unknown size unit"));
    }

    #[test]
    fn agent_config_sets_the_getter_limits() {
        let dir = std::env::temp_dir().join(format!(
            "caravan-artifact-cfg-{}",
            caravan_structs::new_id()
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("a.hcl");
        std::fs::write(
            &f,
            "client {\n  artifact {\n    http_max_size = \"1MB\"\n    decompression_file_count_limit = 7\n    http_read_timeout = \"5s\"\n    disable_filesystem_isolation = true\n  }\n}\n",
        )
        .expect("write");
        let cfg = crate::agent::config::from_args(&[
            "-dev".to_string(),
            format!("-config={}", f.display()),
        ])
        .expect("config");
        let g = getter_config(&cfg).expect("getter");
        assert_eq!(g.http_max_size, 1_000_000);
        assert_eq!(g.decompression_file_count_limit, 7);
        assert_eq!(g.http_read_timeout, std::time::Duration::from_secs(5));
        assert!(g.disable_filesystem_isolation);
        std::fs::write(
            &f,
            "client {\n  artifact {\n    set_environment_variables = \"HTTPS_PROXY, NO_PROXY\"\n    filesystem_isolation_extra_paths = [\"d:r:/etc/ssl/certs\", \"f:rx:/usr/bin/ssh\"]\n    hg_timeout = \"2m\"\n  }\n}\n",
        )
        .expect("write");
        let cfg = crate::agent::config::from_args(&[
            "-dev".to_string(),
            format!("-config={}", f.display()),
        ])
        .expect("config");
        let g = getter_config(&cfg).expect("getter");
        assert_eq!(g.set_environment_variables, vec!["HTTPS_PROXY", "NO_PROXY"]);
        assert_eq!(
            g.filesystem_isolation_extra_paths,
            vec![
                std::path::PathBuf::from("/etc/ssl/certs"),
                std::path::PathBuf::from("/usr/bin/ssh")
            ]
        );
        assert_eq!(g.hg_timeout, std::time::Duration::from_secs(120));
        assert!(parse_extra_path("x:r:/a").is_err());
        assert!(parse_extra_path("d:q:/a").is_err());
        assert!(parse_extra_path("d:r:rel").is_err());
        assert!(parse_extra_path("/just/a/path").is_err());
        std::fs::write(
            &f,
            "client {\n  artifact {\n    http_max_size = \"huge\"\n  }\n}\n",
        )
        .expect("write");
        let cfg = crate::agent::config::from_args(&[
            "-dev".to_string(),
            format!("-config={}", f.display()),
        ])
        .expect("config");
        let e = getter_config(&cfg).unwrap_err().to_string();
        assert!(e.contains("client.artifact.http_max_size"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
