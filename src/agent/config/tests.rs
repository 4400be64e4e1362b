//! Flag parsing, loading, merging and refusal tests.

use super::*;

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

#[test]
fn dev_mode_defaults() {
    let c = from_args(&args("-dev")).unwrap();
    assert!(c.dev && c.server && c.client && c.raw_exec_enabled);
    assert_eq!(c.bind_addr, "127.0.0.1");
    assert_eq!(c.http_port, 4646);
    assert!(c.data_dir_is_temp);
}

#[test]
fn acl_is_enabled_by_flag_or_file_and_tls_is_refused() {
    assert!(!from_args(&args("-dev")).unwrap().acl_enabled);
    assert!(from_args(&args("-dev -acl-enabled")).unwrap().acl_enabled);
    let dir = std::env::temp_dir().join(format!("caravan-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("a.hcl");
    std::fs::write(&f, "acl {\n  enabled = true\n}\n").unwrap();
    let c = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap();
    assert!(c.acl_enabled);
    let c = from_args(&[
        "-dev".into(),
        format!("-config={}", f.display()),
        "-acl-enabled=false".into(),
    ])
    .unwrap();
    assert!(!c.acl_enabled, "the flag wins over the file");
    std::fs::write(&f, "tls {\n  http = true\n}\n").unwrap();
    let e = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap_err();
    assert!(format!("{e:#}").contains("TLS is not available"), "{e:#}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unknown_flag_is_an_error() {
    assert!(from_args(&args("-dev -bogus=1")).is_err());
    assert!(from_args(&args("-server"))
        .unwrap_err()
        .to_string()
        .contains("data directory"));
}

#[test]
fn reads_a_config_file() {
    let dir = std::env::temp_dir().join(format!("caravan-cfg2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("agent.hcl");
    std::fs::write(
        &f,
        r#"
data_dir = "/tmp/x"
datacenter = "east"
ports { http = 5656 }
server { enabled = true }
client {
  enabled = true
  meta { rack = "r1" }
  reserved {
    memory         = 256
    reserved_ports = "22,80"
  }
}
plugin "raw_exec" {
  config { enabled = true }
}
"#,
    )
    .unwrap();
    let c = from_args(&[format!("-config={}", f.display())]).unwrap();
    assert_eq!(c.datacenter, "east");
    assert_eq!(c.http_port, 5656);
    assert!(c.server && c.client && c.raw_exec_enabled);
    assert_eq!(c.meta["rack"], "r1");
    assert_eq!(c.reserved.memory.memory_mb, 256);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("caravan-cfg-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn unknown_keys_at_every_level_name_file_line_col() {
    let cases = [
        ("bogus = 1\n", "x.hcl:1:1: unknown key \"bogus\""),
        (
            "ports {\n  htp = 1\n}\n",
            "x.hcl:2:3: ports: unknown key \"htp\"",
        ),
        (
            "client {\n  reserved {\n    cpus = 1\n  }\n}\n",
            "x.hcl:3:5: client.reserved: unknown key \"cpus\"",
        ),
        (
            "client {\n  host_volume \"v\" {\n    pth = \"/\"\n  }\n}\n",
            "x.hcl:3:5: client.host_volume.v: unknown key \"pth\"",
        ),
        (
            "client {\n  template {\n    wait { mn = \"1s\" }\n  }\n}\n",
            "x.hcl:3:12: client.template.wait: unknown key \"mn\"",
        ),
        (
            "server {\n  default_scheduler_config {\n    preemption_config { x = true }\n  }\n}\n",
            "x.hcl:3:25: server.default_scheduler_config.preemption_config: unknown key \"x\"",
        ),
        (
            "plugin \"raw_exec\" {\n  confg {}\n}\n",
            "x.hcl:2:3: plugin.raw_exec: unknown key \"confg\"",
        ),
        (
            "consul \"other\" {\n  adress = \"x\"\n}\n",
            "x.hcl:2:3: consul[\"other\"]: unknown key \"adress\"",
        ),
        (
            "vault {\n  service_identity {}\n}\n",
            "x.hcl:2:3: vault: unknown key \"service_identity\"",
        ),
        (
            "telemetry {\n  prometheus = true\n}\n",
            "x.hcl:2:3: telemetry: unknown key \"prometheus\"",
        ),
        (
            "audit {\n  sink \"s\" {\n    kind = \"file\"\n  }\n}\n",
            "x.hcl:3:5: audit.sink.s: unknown key \"kind\"",
        ),
        (
            "acl { enabeld = true }\n",
            "x.hcl:1:7: acl: unknown key \"enabeld\"",
        ),
        (
            "tls { http2 = true }\n",
            "x.hcl:1:7: tls: unknown key \"http2\"",
        ),
        (
            "ui {\n  label { txt = \"x\" }\n}\n",
            "x.hcl:2:11: ui.label: unknown key \"txt\"",
        ),
        (
            "autopilot { x = 1 }\n",
            "x.hcl:1:13: autopilot: unknown key \"x\"",
        ),
        (
            "limits { x = 1 }\n",
            "x.hcl:1:10: limits: unknown key \"x\"",
        ),
        ("rpc { x = 1 }\n", "x.hcl:1:7: rpc: unknown key \"x\""),
        (
            "reporting {\n  license { on = true }\n}\n",
            "x.hcl:2:13: reporting.license: unknown key \"on\"",
        ),
    ];
    for (src, want) in cases {
        let e = load::parse_text("x.hcl", src).unwrap_err().to_string();
        assert_eq!(e, want, "for {src:?}");
    }
    let e = load::parse_text(
        "x.json",
        "{\n \"client\": {\"enabled\": true, \"nope\": 1}\n}",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(e, "x.json:2:30: client: unknown key \"nope\"");
}

#[test]
fn bad_values_are_errors_with_positions() {
    for (src, want) in [
        (
            "ports { http = 70000 }",
            "x.hcl:1:16: ports.http: invalid value",
        ),
        (
            "client {\n  gc_interval = \"1 minute\"\n}",
            "x.hcl:2:17: client.gc_interval: invalid duration",
        ),
        (
            "client {\n  reserved { reserved_ports = \"80-\" }\n}",
            "x.hcl:2:31: client.reserved.reserved_ports: invalid port list",
        ),
        (
            "server { enabled = \"yes\" }",
            "x.hcl:1:20: server.enabled: expected a boolean",
        ),
        (
            "client = \"on\"",
            "x.hcl:1:10: expected a block, found a string",
        ),
    ] {
        let e = load::parse_text("x.hcl", src).unwrap_err().to_string();
        assert!(e.starts_with(want), "{src:?}: {e}");
    }
}

#[test]
fn files_merge_in_nomad_order() {
    let d = tmpdir("merge");
    std::fs::write(
        d.join("a.hcl"),
        "datacenter = \"a\"\nclient {\n  enabled = true\n  servers = [\"s1\"]\n  meta { x = \"1\", y = \"1\" }\n  host_volume \"v\" { path = \"/a\" }\n  server_join { retry_join = [\"j1\"] }\n}\nserver { retry_join = [\"r1\"] }\n",
    )
    .unwrap();
    std::fs::write(
        d.join("b.json"),
        r#"{"datacenter": "b", "client": {"servers": ["s2"], "meta": {"y": "2"}, "host_volume": [{"v": {"read_only": true}}, {"w": {"path": "/w"}}], "server_join": {"retry_join": ["j2"]}}, "server": {"retry_join": ["r2"]}}"#,
    )
    .unwrap();
    std::fs::write(d.join("c.hcl~"), "garbage {").unwrap();
    std::fs::write(d.join("notes.txt"), "garbage {").unwrap();
    let extra = d.join("extra.hcl");
    let sub = d.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join("z.hcl"), "datacenter = \"dir-last\"\n").unwrap();
    std::fs::write(&extra, "datacenter = \"z\"\nports { http = 1 }\n").unwrap();
    std::fs::rename(&extra, sub.join("0.hcl")).unwrap();

    let (f, files) = load::load_paths(&[d.to_string_lossy().to_string()]).unwrap();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["a.hcl", "b.json"]);
    assert_eq!(f.datacenter.as_deref(), Some("b"));
    let c = f.client.as_ref().unwrap();
    assert_eq!(c.enabled, Some(true));
    assert_eq!(c.servers.0, vec!["s1", "s2"], "client.servers appends");
    assert_eq!(c.meta["x"], "1");
    assert_eq!(c.meta["y"], "2", "maps merge per key");
    let v = c.host_volume.get("v").unwrap();
    assert_eq!(
        (v.path.as_deref(), v.read_only),
        (Some("/a"), Some(true)),
        "host volumes merge by name"
    );
    assert_eq!(c.host_volume.0.len(), 2);
    assert_eq!(
        c.server_join.as_ref().unwrap().retry_join.as_deref(),
        Some(&["j2".to_string()][..]),
        "server_join lists replace"
    );
    assert_eq!(
        f.server.as_ref().unwrap().retry_join.0,
        vec!["r1", "r2"],
        "server.retry_join appends"
    );

    // Several -config paths: in order, directories expanded.
    let (f, files) = load::load_paths(&[
        sub.to_string_lossy().to_string(),
        d.join("a.hcl").to_string_lossy().to_string(),
    ])
    .unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(f.datacenter.as_deref(), Some("a"));
    assert_eq!(f.ports.as_ref().unwrap().http, Some(1));

    // Flags override files.
    let c = from_args(&[
        format!("-config={}", sub.display()),
        "-dc=flag".into(),
        "-dev".into(),
    ])
    .unwrap();
    assert_eq!(c.datacenter, "flag");
    assert_eq!(c.http_port, 1);
    assert_eq!(c.config_files.len(), 2);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn unsafe_settings_are_refused_at_start_but_valid_for_validate() {
    let d = tmpdir("refuse");
    for (src, want) in [
        ("audit { enabled = true }", "audit logging is not available"),
        (
            "server {\n  enabled = true\n  bootstrap_expect = 3\n}",
            "bootstrap_expect = 3",
        ),
        (
            "server {\n  enabled = true\n  server_join { retry_join = [\"10.0.0.1\"] }\n}",
            "joining other servers",
        ),
        ("tls { rpc = true }", "TLS is not available"),
    ] {
        let f = d.join("a.hcl");
        std::fs::write(&f, src).unwrap();
        let e = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap_err();
        assert!(format!("{e:#}").contains(want), "{src}: {e:#}");
        let path = f.to_string_lossy().to_string();
        let checked = check_files(std::slice::from_ref(&path));
        let warnings = checked[0].1.as_ref().unwrap();
        assert!(warnings.iter().any(|w| w.contains(want)), "{warnings:?}");
        assert!(validate_files(&[path])[0].1.is_ok());
    }
    // Safe-to-ignore blocks are accepted.
    let f = d.join("b.hcl");
    std::fs::write(
        &f,
        "telemetry { prometheus_metrics = true }\nui { enabled = true }\nautopilot { cleanup_dead_servers = true }\nconsul { address = \"127.0.0.1:8500\" }\nacl { enabled = false }\ntls { http = false }\n",
    )
    .unwrap();
    assert!(from_args(&["-dev".into(), format!("-config={}", f.display())]).is_ok());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn validate_reports_each_file() {
    let d = tmpdir("validate");
    let good = d.join("fragment.hcl");
    std::fs::write(&good, "client { meta { a = \"b\" } }\n").unwrap();
    let bad = d.join("bad.hcl");
    std::fs::write(&bad, "client {\n  nope = 1\n}\n").unwrap();
    let r = validate_files(&[
        good.to_string_lossy().to_string(),
        bad.to_string_lossy().to_string(),
        d.join("missing.hcl").to_string_lossy().to_string(),
    ]);
    assert!(r[0].1.is_ok(), "a fragment is valid on its own");
    let e = r[1].1.as_ref().unwrap_err();
    assert_eq!(
        e,
        &format!("{}:2:3: client: unknown key \"nope\"", bad.display())
    );
    assert!(r[2].1.as_ref().unwrap_err().contains("missing.hcl"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn raw_exec_old_client_option_and_advertise() {
    let d = tmpdir("rawexec");
    let f = d.join("a.hcl");
    std::fs::write(
        &f,
        "data_dir = \"/tmp/x\"\n\"advertise\" = {\n  http = \"10.1.2.3:4646\"\n}\nserver { enabled = true }\nclient {\n  enabled = true\n  options {\n    \"driver.raw_exec.enable\" = \"1\"\n  }\n}\n",
    )
    .unwrap();
    let c = from_args(&[format!("-config={}", f.display())]).unwrap();
    assert!(c.raw_exec_enabled);
    assert_eq!(c.advertise_ip(), "10.1.2.3");
    std::fs::write(
        &f,
        "plugin \"raw_exec\" {\n  config {\n    enabled = false\n  }\n}\n",
    )
    .unwrap();
    let c = from_args(&["-dev".into(), format!("-config={}", f.display())]).unwrap();
    assert!(
        !c.raw_exec_enabled,
        "an explicit enabled = false wins over -dev"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
