//! `client { template {} }` turned into the template hook's settings: Nomad's client defaults
//! where unset, the deprecated `function_blacklist` read as `function_denylist`, and values a
//! template cannot work with refused with the key named.

use super::config::file::{RetryConfig, WaitConfig};
use super::config::AgentConfig;
use crate::client::template_settings::{Retry, TemplateSettings, WaitBounds};
use anyhow::{anyhow, bail};

pub fn template_settings(cfg: &AgentConfig) -> anyhow::Result<TemplateSettings> {
    let mut s = TemplateSettings::default();
    if let Some(o) = cfg
        .file
        .client
        .as_ref()
        .and_then(|c| c.vault_outage.as_ref())
    {
        s.vault_outage = o.parse().map_err(|e: String| anyhow!(e))?;
    }
    let Some(t) = cfg.file.client.as_ref().and_then(|c| c.template.as_ref()) else {
        return Ok(s);
    };
    if let Some(list) = t
        .function_denylist
        .as_ref()
        .or(t.function_blacklist.as_ref())
    {
        s.function_denylist = list.clone();
    }
    if let Some(b) = t.disable_file_sandbox {
        s.disable_file_sandbox = b;
    }
    if let Some(d) = &t.max_stale {
        s.max_stale = d.as_std();
    }
    if let Some(d) = &t.block_query_wait {
        s.block_query_wait = d.as_std();
        if s.block_query_wait.is_zero() {
            bail!("client.template.block_query_wait must be greater than zero");
        }
    }
    if let Some(w) = &t.wait {
        let b = bounds(w);
        let (min, max) = (b.min.unwrap_or_default(), b.max.unwrap_or_default());
        if max < min {
            bail!("client.template.wait: max ({max:?}) must not be less than min ({min:?})");
        }
        s.wait = Some((min, max.max(min)));
    }
    if let Some(w) = &t.wait_bounds {
        let b = bounds(w);
        if let (Some(min), Some(max)) = (b.min, b.max) {
            if max < min {
                bail!("client.template.wait_bounds: max ({max:?}) must not be less than min ({min:?})");
            }
        }
        s.wait_bounds = Some(b);
    }
    if let Some(r) = &t.consul_retry {
        s.consul_retry = retry(r, "consul_retry")?;
    }
    if let Some(r) = &t.vault_retry {
        s.vault_retry = retry(r, "vault_retry")?;
    }
    if let Some(r) = &t.nomad_retry {
        s.nomad_retry = retry(r, "nomad_retry")?;
    }
    if let Some(d) = &t.vault_default_lease_duration {
        s.vault_default_lease_duration = d.as_std();
    }
    if let Some(b) = t.coordinated_restarts {
        s.coordinated_restarts = b;
    }
    if let Some(b) = t.render_secrets_on_restart {
        s.render_secrets_on_restart = b;
    }
    Ok(s)
}

fn bounds(w: &WaitConfig) -> WaitBounds {
    WaitBounds {
        min: w.min.as_ref().map(|d| d.as_std()),
        max: w.max.as_ref().map(|d| d.as_std()),
    }
}

fn retry(r: &RetryConfig, key: &str) -> anyhow::Result<Retry> {
    let mut out = Retry::default();
    if let Some(n) = r.attempts {
        out.attempts = u32::try_from(n).map_err(|_| {
            anyhow!("client.template.{key}.attempts = {n}: must be 0 (unlimited) or more")
        })?;
    }
    if let Some(d) = &r.backoff {
        out.backoff = d.as_std();
    }
    if let Some(d) = &r.max_backoff {
        out.max_backoff = d.as_std();
    }
    if out.max_backoff < out.backoff {
        bail!(
            "client.template.{key}: max_backoff ({:?}) must not be less than backoff ({:?})",
            out.max_backoff,
            out.backoff
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn load(hcl: &str) -> anyhow::Result<AgentConfig> {
        let dir = std::env::temp_dir().join(format!("caravan-tpl-{}", caravan_structs::new_id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join("agent.hcl");
        std::fs::write(&path, hcl)?;
        let cfg = super::super::config::from_args(&[
            "-dev".to_string(),
            format!("-config={}", path.display()),
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        cfg
    }

    #[test]
    fn unset_takes_nomads_client_defaults() {
        let s = template_settings(&load("client { enabled = true }\n").unwrap()).unwrap();
        assert_eq!(s, TemplateSettings::default());
        assert_eq!(s.block_query_wait, Duration::from_secs(300));
        assert_eq!(
            s.wait,
            Some((Duration::from_secs(5), Duration::from_secs(240)))
        );
        assert_eq!(s.consul_retry.attempts, 0, "unlimited, as Nomad");
        assert!(s.function_denylist.contains(&"plugin".to_string()));
    }

    #[test]
    fn agent_config_sets_every_key() {
        let cfg = load(
            r#"client {
  enabled = true
  vault_outage = "fail"
  template {
    function_denylist = ["env", "file"]
    disable_file_sandbox = true
    max_stale = "10s"
    block_query_wait = "90s"
    wait { min = "2s" max = "30s" }
    wait_bounds { min = "1s" max = "1m" }
    consul_retry { attempts = 3 backoff = "100ms" max_backoff = "2s" }
    vault_retry { attempts = 5 }
    vault_default_lease_duration = "10m"
    coordinated_restarts = true
    render_secrets_on_restart = true
  }
}
"#,
        )
        .unwrap();
        let s = template_settings(&cfg).unwrap();
        let ms = Duration::from_millis;
        assert_eq!(s.function_denylist, vec!["env", "file"]);
        assert!(s.disable_file_sandbox);
        assert_eq!(s.max_stale, ms(10_000));
        assert_eq!(s.block_query_wait, ms(90_000));
        assert_eq!(s.wait, Some((ms(2000), ms(30_000))));
        assert_eq!(
            s.wait_bounds,
            Some(WaitBounds {
                min: Some(ms(1000)),
                max: Some(ms(60_000))
            })
        );
        assert_eq!(
            s.consul_retry,
            Retry {
                attempts: 3,
                backoff: ms(100),
                max_backoff: ms(2000)
            }
        );
        assert_eq!(s.vault_retry.attempts, 5);
        assert_eq!(s.vault_default_lease_duration, ms(600_000));
        assert!(s.coordinated_restarts && s.render_secrets_on_restart);
        assert_eq!(
            s.vault_outage,
            crate::client::vault_outage::VaultOutage::Fail
        );
        assert_eq!(
            template_settings(&load("client {\n enabled = true\n}\n").unwrap())
                .unwrap()
                .vault_outage,
            crate::client::vault_outage::VaultOutage::Keep,
            "keep by default"
        );
    }

    #[test]
    fn deprecated_blacklist_is_read_and_bad_values_are_refused() {
        let s = template_settings(
            &load("client {\n template {\n function_blacklist = [\"env\"]\n }\n}\n").unwrap(),
        )
        .unwrap();
        assert_eq!(s.function_denylist, vec!["env"]);
        for (hcl, want) in [
            (
                "client {\n template {\n consul_retry { attempts = -1 }\n }\n}\n",
                "client.template.consul_retry.attempts = -1",
            ),
            (
                "client {\n template {\n wait { min = \"10s\" max = \"1s\" }\n }\n}\n",
                "client.template.wait: max",
            ),
            (
                "client {\n template {\n block_query_wait = \"0s\"\n }\n}\n",
                "block_query_wait must be greater than zero",
            ),
            (
                "client {\n vault_outage = \"ignore\"\n}\n",
                "client.vault_outage must be \"keep\" or \"fail\"",
            ),
        ] {
            let e = template_settings(&load(hcl).unwrap())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{hcl}: {e}");
        }
    }
}
