//! Parser and decoder tests: HCL v1 syntax HCL2 parsers reject, JSON mode, positions in errors,
//! decoding rules, and a mutation run that must never panic.

use super::*;
use serde::Deserialize;
use std::collections::BTreeMap;

fn json(src: &str) -> serde_json::Value {
    from_node(&parse("t.hcl", src).unwrap()).unwrap()
}

#[test]
fn hcl1_syntax_hcl2_rejects() {
    let v = json(
        r#"
# hash comment
// slash comment
/* block
   comment */
"advertise" = {
  http = "10.0.0.1"
}
client {
  options {
    "docker.privileged.enabled" = "true"
    driver.allowlist = "docker,raw_exec"
  }
  topology { segments { rack = "R1" } }
}
port = 0x1CF1
mode = 0755
ratio = 1.5
neg = -3
on = true
list = [1, "two", false,]
"#,
    );
    assert_eq!(v["advertise"]["http"], "10.0.0.1");
    assert_eq!(v["client"]["options"]["docker.privileged.enabled"], "true");
    assert_eq!(
        v["client"]["options"]["driver.allowlist"],
        "docker,raw_exec"
    );
    assert_eq!(v["client"]["topology"]["segments"]["rack"], "R1");
    assert_eq!(v["port"], 0x1CF1);
    assert_eq!(v["mode"], 0o755);
    assert_eq!(v["ratio"], 1.5);
    assert_eq!(v["neg"], -3);
    assert_eq!(v["on"], true);
    assert_eq!(v["list"], serde_json::json!([1, "two", false]));
}

#[test]
fn heredocs_and_escapes() {
    let v = json("a = <<EOF\nline1\n  line2\nEOF\nb = <<-EOT\n    x\n      y\n    EOT\nc = \"q\\\"\\n${var.\"x\"}\"\n");
    assert_eq!(v["a"], "line1\n  line2\n");
    assert_eq!(v["b"], "x\n  y\n");
    assert_eq!(v["c"], "q\"\n${var.\"x\"}");
    // Wide whitespace in an indented heredoc must not split a character.
    let v = json("a = <<-EOF\n\u{3000}x\n y\nEOF\n");
    assert_eq!(v["a"], "x\ny\n");
}

#[test]
fn labels_become_nested_keys() {
    let v = json("plugin \"raw_exec\" {\n config { enabled = true }\n}\nhost_volume \"a\" \"b\" { path = \"/p\" }\n");
    assert_eq!(v["plugin"]["raw_exec"]["config"]["enabled"], true);
    assert_eq!(v["host_volume"]["a"]["b"]["path"], "/p");
}

#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Client {
    enabled: Option<bool>,
    servers: Vec<String>,
    meta: BTreeMap<String, String>,
    cpu: Option<i64>,
    speed: Option<f64>,
    host_volume: Blocks<Vol>,
}

#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Vol {
    path: String,
    read_only: bool,
}

#[derive(Debug, Deserialize, Default, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Top {
    client: Option<Client>,
    consul: MaybeLabeled<BTreeMap<String, String>>,
    name: Option<String>,
}

#[test]
fn repeated_blocks_merge_and_lists_append() {
    let n = parse(
        "t.hcl",
        r#"
client {
  enabled = false
  servers = ["a"]
  meta { x = 1 }
}
client {
  enabled = true
  servers = ["b"]
  meta { y = "2" }
  cpu = "300"
  speed = 7
  host_volume "data" { path = "/d" }
  host_volume "logs" {
    path      = "/l"
    read_only = true
  }
}
consul { address = "a:1" }
consul "other" { address = "b:2" }
"#,
    )
    .unwrap();
    let t: Top = from_node(&n).unwrap();
    let c = t.client.unwrap();
    assert_eq!(c.enabled, Some(true));
    assert_eq!(c.servers, vec!["a", "b"]);
    assert_eq!(c.meta["x"], "1");
    assert_eq!(c.meta["y"], "2");
    assert_eq!(c.cpu, Some(300));
    assert_eq!(c.speed, Some(7.0));
    assert_eq!(c.host_volume.0.len(), 2);
    assert_eq!(c.host_volume.get("logs").map(|v| v.read_only), Some(true));
    assert_eq!(t.consul.0[0].0, "");
    assert_eq!(t.consul.0[1].0, "other");
    assert_eq!(t.consul.0[1].1["address"], "b:2");
}

#[test]
fn json_mode_decodes_like_hcl() {
    let n = parse_json(
        "t.json",
        r#"{"client": [{"enabled": true, "servers": ["a", "b"], "meta": [{"x": "1"}],
            "host_volume": [{"data": [{"path": "/d"}]}]}],
           "consul": [{"address": "a:1"}], "name": null}"#,
    )
    .unwrap();
    let t: Top = from_node(&n).unwrap();
    let c = t.client.unwrap();
    assert_eq!(c.enabled, Some(true));
    assert_eq!(c.servers, vec!["a", "b"]);
    assert_eq!(c.meta["x"], "1");
    assert_eq!(
        c.host_volume.get("data").map(|v| v.path.as_str()),
        Some("/d")
    );
    assert_eq!(t.consul.0.len(), 1);
    assert_eq!(t.name, None);
}

#[test]
fn unknown_keys_and_type_errors_name_file_line_col() {
    let n = parse(
        "agent.hcl",
        "client {\n  enabled = true\n  bogus   = 1\n}\n",
    )
    .unwrap();
    let e = from_node::<Top>(&n).unwrap_err().to_string();
    assert_eq!(e, "agent.hcl:3:3: client: unknown key \"bogus\"");
    let n = parse(
        "agent.hcl",
        "client {\n  host_volume \"x\" {\n    pth = \"/\"\n  }\n}\n",
    )
    .unwrap();
    let e = from_node::<Top>(&n).unwrap_err().to_string();
    assert!(
        e.starts_with("agent.hcl:3:5: client.host_volume.x: unknown key \"pth\""),
        "{e}"
    );
    let n = parse("agent.hcl", "client {\n  cpu = \"lots\"\n}\n").unwrap();
    let e = from_node::<Top>(&n).unwrap_err().to_string();
    assert!(
        e.starts_with("agent.hcl:2:9: client.cpu: expected an integer"),
        "{e}"
    );
    let n = parse_json("a.json", "{\n  \"client\": {\"nope\": 1}\n}").unwrap();
    let e = from_node::<Top>(&n).unwrap_err().to_string();
    assert_eq!(e, "a.json:2:14: client: unknown key \"nope\"");
}

#[test]
fn syntax_errors_name_file_line_col() {
    for (src, want) in [
        ("a = \n", "x.hcl:2:1: expected a value, found end of file"),
        (
            "a {\n b = 1\n",
            "x.hcl:3:1: expected '}' to close the block",
        ),
        ("a = \"open\n", "x.hcl:1:5: literal not terminated"),
        ("a b = 1", "x.hcl:1:5: nested object expected"),
        ("a = [1 2]", "x.hcl:1:8: expected ',' or ']'"),
        ("a = @", "x.hcl:1:5: illegal character"),
        ("a = <<EOF\nno end\n", "x.hcl:1:5: heredoc not terminated"),
        ("/* open", "x.hcl:1:1: comment not terminated"),
        ("a = 12abc", "x.hcl:1:5: invalid number"),
    ] {
        let e = parse("x.hcl", src).unwrap_err().to_string();
        assert!(e.starts_with(want), "{src:?}: {e}");
    }
    let e = parse_json("x.json", "{\"a\": [1,}")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("x.json:1:10:"), "{e}");
    assert!(parse_json("x.json", "[1]").is_err());
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!("a = {}{}", "[".repeat(5000), "]".repeat(5000));
    assert!(parse("d.hcl", &src).is_err());
    let src = format!("{}{}", "a {".repeat(5000), "}".repeat(5000));
    assert!(parse("d.hcl", &src).is_err());
    let src = format!("{{\"a\":{}{}}}", "[".repeat(5000), "]".repeat(5000));
    assert!(parse_json("d.json", &src).is_err());
}

/// Mutates valid inputs byte by byte (deterministic LCG) and decodes whatever parses: nothing
/// may panic.
#[test]
fn mutations_never_panic() {
    let seeds = [
        "client {\n enabled = true\n meta { \"a.b\" = 1 }\n host_volume \"x\" { path = \"/p\" }\n}\nports = { http = 0x10 }\nx = <<EOF\nhi\nEOF\nl = [1, 2.5, \"s\", {a = 1}]\n",
        "{\"client\": [{\"enabled\": true, \"meta\": {\"a\": \"\\u00e9\"}}], \"n\": -1.5e3, \"z\": null}",
    ];
    let alphabet: &[u8] = b"{}[]=\",.<>-#/*\\\n 0x1aeE$\"";
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut rnd = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    for (si, seed) in seeds.iter().enumerate() {
        for _ in 0..3000 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..(1 + rnd() % 4) {
                let i = rnd() % bytes.len().max(1);
                match rnd() % 3 {
                    0 if !bytes.is_empty() => {
                        bytes.remove(i);
                    }
                    1 => bytes.insert(i.min(bytes.len()), alphabet[rnd() % alphabet.len()]),
                    _ if i < bytes.len() => bytes[i] = alphabet[rnd() % alphabet.len()],
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let parsed = if si == 0 {
                parse("m.hcl", &text)
            } else {
                parse_json("m.json", &text)
            };
            if let Ok(n) = parsed {
                let _ = from_node::<Top>(&n);
                let _ = from_node::<serde_json::Value>(&n);
            }
        }
    }
}
