//! The agent-config corpus (`shared/corpus/agent-config`, real Nomad configs) through
//! `validate_files`, and golden decodes of some of its files.

use super::file::*;
use super::*;
use std::path::PathBuf;

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/agent-config");
    dir.is_dir().then_some(dir)
}

fn corpus_file(name: &str) -> Option<FileConfig> {
    let dir = corpus_dir()?;
    let path = dir.join(name);
    match load::parse_file(&path.to_string_lossy()) {
        Ok(f) => Some(f),
        Err(e) => panic!("{name}: {e}"),
    }
}

#[test]
fn corpus_validates() {
    let Some(dir) = corpus_dir() else {
        println!("SKIPPED: no agent-config corpus at ../shared/corpus/agent-config");
        return;
    };
    let mut paths: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().to_string())
        .filter(|p| p.ends_with(".hcl") || p.ends_with(".json"))
        .collect();
    paths.sort();
    let results = validate_files(&paths);
    let failures: Vec<_> = results.iter().filter(|(_, r)| r.is_err()).collect();
    let ok = results.len() - failures.len();
    println!("agent-config corpus: {ok} of {} validate", results.len());
    for (p, r) in &failures {
        if let Err(e) = r {
            let name = p.rsplit('/').next().unwrap_or(p);
            println!("  FAIL {name}: {}", e.lines().next().unwrap_or(""));
        }
    }
    assert!(results.len() >= 100, "corpus too small: {}", results.len());
    assert!(
        ok * 100 >= results.len() * 95,
        "only {ok} of {} corpus files validate",
        results.len()
    );
}

fn ms(s: &str) -> i64 {
    merge::parse_go_duration(s).unwrap()
}

macro_rules! golden {
    ($name:ident, $file:expr, |$f:ident| $body:block) => {
        #[test]
        fn $name() {
            let Some($f) = corpus_file($file) else {
                println!("SKIPPED: no agent-config corpus");
                return;
            };
            $body
        }
    };
}

golden!(
    golden_basic_hcl,
    "command__agent__testdata__basic.hcl",
    |f| {
        assert_eq!(f.region.as_deref(), Some("foobar"));
        assert_eq!(f.datacenter.as_deref(), Some("dc2"));
        assert_eq!(f.log_json, Some(true));
        let p = f.ports.as_ref().unwrap();
        assert_eq!(
            (p.http, p.rpc, p.serf),
            (Some(1234), Some(2345), Some(3456))
        );
        assert_eq!(
            f.addresses.as_ref().unwrap().rpc.as_deref(),
            Some("127.0.0.2")
        );
        let c = f.client.as_ref().unwrap();
        assert_eq!(c.servers.0, vec!["a.b.c:80", "127.0.0.1:1234"]);
        assert_eq!(c.meta["foo"], "bar");
        assert_eq!(c.chroot_env["/opt/myapp/etc"], "/etc");
        let j = c.server_join.as_ref().unwrap();
        assert_eq!(
            j.retry_join.as_deref(),
            Some(&["1.1.1.1".to_string(), "2.2.2.2".to_string()][..])
        );
        assert_eq!(j.retry_interval, Some(merge::Duration(ms("15s"))));
        let r = c.reserved.as_ref().unwrap();
        assert_eq!((r.cpu, r.memory, r.disk), (Some(10), Some(10), Some(10)));
        assert_eq!(
            r.reserved_ports.as_ref().map(|p| p.0.as_str()),
            Some("1,100,10-12")
        );
        let s = f.server.as_ref().unwrap();
        assert_eq!(s.bootstrap_expect, Some(5));
        assert_eq!(s.num_schedulers, Some(2));
        assert_eq!(s.enabled_schedulers.0, vec!["test"]);
        assert_eq!(s.heartbeat_grace, Some(merge::Duration(ms("30s"))));
        assert_eq!(f.vault.0.len(), 1);
        assert_eq!(
            f.vault.0[0].1.create_from_role.as_deref(),
            Some("test_role")
        );
        assert_eq!(f.consul.0[0].0, "default");
        assert_eq!(f.tls.as_ref().unwrap().http, Some(true));
        // The HCL file and its JSON translation decode alike where both say the same.
        let j = corpus_file("command__agent__testdata__basic.json").unwrap();
        assert_eq!(j.ports, f.ports);
        assert_eq!(j.client.as_ref().unwrap().reserved, c.reserved);
        assert_eq!(j.client.as_ref().unwrap().meta, c.meta);
        assert_eq!(j.server.as_ref().unwrap().server_join, s.server_join);
        assert_eq!(j.telemetry, f.telemetry);
        assert_eq!(j.autopilot, f.autopilot);
    }
);

golden!(
    golden_plugins,
    "command__agent__testdata__plugin.hcl",
    |f| {
        assert_eq!(f.client.as_ref().unwrap().memory_total_mb, Some(5555));
        let docker = f.plugin.get("docker").unwrap().config.as_ref().unwrap();
        assert_eq!(docker["allow_privileged"], true);
        assert_eq!(raw_exec_setting(&f), Some(true));
        let j = corpus_file("command__agent__testdata__plugin.json").unwrap();
        assert_eq!(raw_exec_setting(&j), Some(true));
        assert_eq!(j.plugin.0.len(), 2);
    }
);

golden!(
    golden_reserved_cores,
    "website__content__docs__configuration__client.mdx__L457.hcl",
    |f| {
        let r = f.client.unwrap().reserved.unwrap();
        assert_eq!(r.cores.as_deref(), Some("0-4"));
    }
);

golden!(
    golden_host_volume,
    "website__content__docs__configuration__client.mdx__L677.hcl",
    |f| {
        let c = f.client.unwrap();
        let v = c.host_volume.get("ca-certificates").unwrap();
        assert_eq!(v.path.as_deref(), Some("/etc/ssl/certs"));
        assert_eq!(v.read_only, Some(true));
    }
);

golden!(
    golden_host_volume_quoted_meta,
    "e2e__terraform__provision-infra__provision-nomad__etc__nomad.d__client-linux-0.hcl",
    |f| {
        let c = f.client.unwrap();
        assert_eq!(c.meta["rack"], "r1");
        assert_eq!(
            c.host_volume.get("shared_data").unwrap().path.as_deref(),
            Some("/srv/data")
        );
        assert_eq!(c.host_volume.get("shared_data").unwrap().read_only, None);
    }
);

golden!(
    golden_dev_cluster_client,
    "dev__cluster__client1.hcl",
    |f| {
        assert_eq!(f.name.as_deref(), Some("client1"));
        assert_eq!(f.ports.as_ref().unwrap().http, Some(7646));
        let c = f.client.as_ref().unwrap();
        assert_eq!(c.enabled, Some(true));
        assert_eq!(
            c.server_join
                .as_ref()
                .unwrap()
                .retry_join
                .as_ref()
                .unwrap()
                .len(),
            3
        );
        assert_eq!(c.meta["tag"], "foo");
        assert_eq!(raw_exec_setting(&f), Some(true));
        let mut cfg = AgentConfig::default();
        apply_file(&mut cfg, &f).unwrap();
        assert_eq!(cfg.http_port, 7646);
        assert!(cfg.client && cfg.raw_exec_enabled);
        assert_eq!(cfg.log_level, "DEBUG");
    }
);

golden!(
    golden_docker_options,
    "dev__docker-clients__docker-privileged.hcl",
    |f| {
        assert_eq!(
            f.client.unwrap().options["docker.privileged.enabled"],
            "true"
        );
    }
);

golden!(
    golden_server_join,
    "website__content__docs__configuration__server.mdx__L27.hcl",
    |f| {
        let s = f.server.as_ref().unwrap();
        assert_eq!(s.bootstrap_expect, Some(3));
        let j = s.server_join.as_ref().unwrap();
        assert_eq!(j.retry_max, Some(3));
        assert_eq!(j.retry_interval, Some(merge::Duration(15_000_000_000)));
        assert!(unsupported(&f)
            .iter()
            .any(|m| m.contains("bootstrap_expect = 3")));
    }
);

golden!(
    golden_label_style_maps,
    "command__agent__testdata__config-slices.hcl",
    |f| {
        let c = f.client.unwrap();
        assert_eq!(c.chroot_env["e0"], "baz");
        assert_eq!(c.meta["m1"], "bar");
        assert_eq!(c.options["o0"], "foo");
    }
);

golden!(
    golden_json_slices,
    "command__agent__testdata__config-slices.json",
    |f| {
        let c = f.client.as_ref().unwrap();
        assert_eq!(c.meta["m2"], "true");
        assert_eq!(c.meta["m3"], "1.2");
        assert_eq!(c.servers.0, vec!["foo", "bar"]);
        let s = f.server.as_ref().unwrap();
        assert_eq!(s.enabled_schedulers.0, vec!["foo", "bar"]);
        assert_eq!(s.retry_join.0, vec!["foo", "bar"]);
        let ci = f.consul.0[0].1.service_identity.as_ref().unwrap();
        assert_eq!(ci.ttl, Some(merge::Duration(ms("1h"))));
        assert_eq!(
            f.vault.0[0]
                .1
                .default_identity
                .as_ref()
                .unwrap()
                .aud
                .as_ref()
                .unwrap()[0],
            "vault.io"
        );
    }
);

golden!(
    golden_extra_vault,
    "command__agent__testdata__extra-vault.hcl",
    |f| {
        let names: Vec<_> = f.vault.0.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["default", "alternate", "other"]);
        assert_eq!(f.vault.0[1].1.address.as_deref(), Some("[0:0::1F]:9501"));
        assert_eq!(
            f.vault.0[2].1.default_identity.as_ref().unwrap().ttl,
            Some(merge::Duration(ms("4h")))
        );
    }
);
