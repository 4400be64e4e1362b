//! Behaviour of the public API on hand-written job files: mapping, defaults, variables,
//! interpolation, errors with locations, and bad input that must not panic.

use caravan_jobspec::{init_example, parse, parse_hcl, parse_json, JobspecError, VarInputs};
use caravan_structs::time::SECOND;

fn hcl(src: &str) -> caravan_structs::Job {
    match parse_hcl(src, "t.nomad.hcl", &VarInputs::default()) {
        Ok(j) => j,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn err(src: &str) -> JobspecError {
    match parse_hcl(src, "t.nomad.hcl", &VarInputs::default()) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn init_example_parses_into_the_redis_job() {
    let job = parse_hcl(init_example(), "example.nomad.hcl", &VarInputs::default()).unwrap();
    assert_eq!(job.id, "example");
    assert_eq!(job.name, "example");
    let g = &job.task_groups[0];
    assert_eq!(g.name, "cache");
    assert_eq!(g.count, 1);
    assert_eq!(g.networks[0].dynamic_ports[0].label, "db");
    assert_eq!(g.networks[0].dynamic_ports[0].to, 6379);
    let t = &g.tasks[0];
    assert_eq!(t.name, "redis");
    assert_eq!(t.driver, "raw_exec");
    assert_eq!(t.config["command"], "/bin/sh");
    assert!(t.config["args"][1]
        .as_str()
        .unwrap()
        .contains("Ready to accept connections"));
    assert_eq!(t.resources.cpu, 500);
    assert_eq!(t.resources.memory_mb, 256);
    assert!(job.validate().is_ok(), "{:?}", job.validate());
}

#[test]
fn maps_blocks_durations_and_keeps_explicit_zero() {
    let job = hcl(r#"
job "web" {
  type        = "batch"
  datacenters = ["dc1", "dc2"]
  priority    = 70
  meta { owner = "ops" }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  constraint { distinct_hosts = true }
  constraint {
    attribute = "${attr.vault.version}"
    version   = ">= 1.2"
  }
  affinity {
    attribute = "${node.datacenter}"
    value     = "dc1"
  }
  spread {
    attribute = "${node.datacenter}"
    weight    = 100
    target "dc1" { percent = 60 }
  }
  group "g" {
    count = 0
    restart {
      attempts = 5
      delay    = "1m30s"
    }
    network {
      mode = "bridge"
      port "http" { static = 8080 }
      port "api" { to = 9000 }
    }
    service {
      name = "web"
      port = "http"
      tags = ["a"]
      check {
        type     = "http"
        path     = "/health"
        interval = "10s"
        timeout  = "2s"
      }
    }
    task "t" {
      driver       = "docker"
      kill_timeout = "20s"
      env = { "A.B" = "c" }
      config {
        image = "redis:7"
        port_map { db = 6379 }
        mount {
          type   = "bind"
          target = "/a"
        }
        mount {
          type   = "bind"
          target = "/b"
        }
      }
      lifecycle {
        hook    = "prestart"
        sidecar = false
      }
      logs {
        max_files     = 3
        max_file_size = 5
      }
      template {
        data        = <<-EOF
          port={{ env "NOMAD_PORT_http" }}
          EOF
        destination = "local/app.conf"
        change_mode = "restart"
      }
      artifact {
        source      = "https://example.com/app.tgz"
        destination = "local/app"
        options { checksum = "sha256:abc" }
      }
    }
  }
}
"#);
    assert_eq!(job.job_type, "batch");
    assert_eq!(job.datacenters, vec!["dc1", "dc2"]);
    assert_eq!(job.priority, 70);
    assert_eq!(job.meta["owner"], "ops");
    assert_eq!(job.constraints[0].l_target, "${attr.kernel.name}");
    assert_eq!(job.constraints[0].operand, "=");
    assert_eq!(job.constraints[1].operand, "distinct_hosts");
    assert_eq!(job.constraints[1].r_target, "true");
    assert_eq!(job.constraints[2].operand, "version");
    assert_eq!(job.constraints[2].r_target, ">= 1.2");
    assert_eq!(job.affinities[0].weight, 50);
    assert_eq!(job.spreads[0].spread_target[0].value, "dc1");
    assert_eq!(job.spreads[0].spread_target[0].percent, 60);
    let g = &job.task_groups[0];
    assert_eq!(g.count, 0, "an explicit count = 0 survives canonicalize");
    let rp = g.restart_policy.as_ref().unwrap();
    assert_eq!(rp.attempts, 5);
    assert_eq!(rp.delay, 90 * SECOND);
    assert_eq!(g.networks[0].mode, "bridge");
    assert_eq!(g.networks[0].reserved_ports[0].value, 8080);
    assert_eq!(g.networks[0].dynamic_ports[0].to, 9000);
    assert_eq!(g.services[0].port_label, "http");
    assert_eq!(g.services[0].checks[0]["Interval"], 10 * SECOND);
    assert_eq!(g.services[0].provider, "consul");
    let t = &g.tasks[0];
    assert_eq!(t.kill_timeout, 20 * SECOND);
    assert_eq!(t.env["A.B"], "c");
    assert_eq!(t.config["port_map"][0]["db"], 6379);
    assert_eq!(t.config["mount"].as_array().unwrap().len(), 2);
    assert_eq!(t.lifecycle.as_ref().unwrap().hook, "prestart");
    assert_eq!(t.log_config.max_files, 3);
    assert_eq!(t.log_config.max_file_size_mb, 5);
    assert_eq!(
        t.templates[0]["EmbeddedTmpl"],
        "port={{ env \"NOMAD_PORT_http\" }}\n"
    );
    assert_eq!(t.templates[0]["DestPath"], "local/app.conf");
    assert_eq!(
        t.artifacts[0]["GetterSource"],
        "https://example.com/app.tgz"
    );
    assert_eq!(t.artifacts[0]["GetterOptions"]["checksum"], "sha256:abc");
    // Defaults the file did not set come from canonicalize.
    assert_eq!(t.resources.cpu, 100);
    assert!(g.update.is_none(), "batch jobs have no update strategy");
}

#[test]
fn variables_locals_functions_and_runtime_interpolation() {
    let src = r#"
variable "dcs" {
  type    = list(string)
  default = ["dc1"]
}
variable "image" { type = string }
variable "count" {
  type    = number
  default = 1
  validation {
    condition     = var.count < 10
    error_message = "count must be below 10"
  }
}
locals {
  name = upper(format("%s-app", var.image))
  tag  = "${local.name}:latest"
}
job "j" {
  datacenters = var.dcs
  group "g" {
    count = var.count
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/echo"
        args    = [local.tag, "${NOMAD_ALLOC_ID}", "${node.unique.name}", "${env["HOME"]}", join(",", var.dcs)]
      }
      dynamic "artifact" {
        for_each = ["a", "b"]
        content {
          source = "https://example.com/${artifact.value}"
        }
      }
    }
  }
}
"#;
    let mut inputs = VarInputs::default();
    inputs.vars.insert("image".into(), "redis".into());
    inputs
        .var_files
        .push(("prod.vars".into(), "dcs = [\"x\", \"y\"]\n".into()));
    inputs.env.insert("NOMAD_VAR_count".into(), "3".into());
    let job = parse_hcl(src, "v.nomad.hcl", &inputs).unwrap();
    assert_eq!(job.datacenters, vec!["x", "y"]);
    let g = &job.task_groups[0];
    assert_eq!(g.count, 3);
    let args = &g.tasks[0].config["args"];
    assert_eq!(args[0], "REDIS-APP:latest");
    assert_eq!(args[1], "${NOMAD_ALLOC_ID}");
    assert_eq!(args[2], "${node.unique.name}");
    assert_eq!(args[3], "${env[\"HOME\"]}");
    assert_eq!(args[4], "x,y");
    assert_eq!(g.tasks[0].artifacts.len(), 2);
    assert_eq!(
        g.tasks[0].artifacts[1]["GetterSource"],
        "https://example.com/b"
    );

    // Validation failure names the variable.
    inputs.vars.insert("count".into(), "50".into());
    let e = parse_hcl(src, "v.nomad.hcl", &inputs).unwrap_err();
    assert!(e.to_string().contains("count must be below 10"), "{e}");
}

#[test]
fn missing_variable_value_is_an_error_naming_it() {
    let e = err("variable \"region\" {}\njob \"j\" {\n  region = var.region\n}\n");
    let s = e.to_string();
    assert!(s.starts_with("t.nomad.hcl:1:1: "), "{s}");
    assert!(s.contains("\"region\""), "{s}");
}

#[test]
fn undeclared_var_flag_is_an_error() {
    let mut inputs = VarInputs::default();
    inputs.vars.insert("nope".into(), "1".into());
    let e = parse_hcl("job \"j\" {}\n", "t.hcl", &inputs).unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
}

#[test]
fn syntax_error_reports_file_line_and_column() {
    let e = err("job \"j\" {\n  group \"g\" {\n    count = = 1\n  }\n}\n");
    match &e {
        JobspecError::Syntax {
            file, line, col, ..
        } => {
            assert_eq!(file, "t.nomad.hcl");
            assert_eq!(*line, 3);
            assert_eq!(*col, 13);
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    assert!(e.to_string().starts_with("t.nomad.hcl:3:13: "), "{e}");
}

#[test]
fn unknown_attribute_in_task_reports_location_and_path() {
    let src = "job \"example\" {\n  group \"cache\" {\n    task \"redis\" {\n      driver = \"raw_exec\"\n      comand = \"x\"\n    }\n  }\n}\n";
    let e = err(src);
    assert_eq!(
        e.to_string(),
        "t.nomad.hcl:5:7: job \"example\" -> group \"cache\" -> task \"redis\": unsupported argument \"comand\""
    );
    // Free-form maps accept any key.
    hcl("job \"j\" {\n group \"g\" {\n  task \"t\" {\n   driver = \"x\"\n   config { anything = 1 }\n   meta { whatever = \"v\" }\n  }\n }\n}\n");
}

#[test]
fn unknown_block_in_job_is_an_error() {
    let e = err("job \"j\" {\n  bogus {}\n}\n");
    assert_eq!(
        e.to_string(),
        "t.nomad.hcl:2:3: job \"j\": unsupported block type \"bogus\""
    );
}

#[test]
fn duplicate_job_blocks_are_an_error() {
    let e = err("job \"a\" {}\njob \"b\" {}\n");
    assert_eq!(e.line(), 2);
    assert!(e.to_string().contains("duplicate job block"), "{e}");
    assert!(err("").to_string().contains("missing job block"));
}

#[test]
fn bad_input_never_panics() {
    let inputs = [
        "",
        "job {}",
        "job \"x\" { group \"g\" { task \"t\" { config = 5 }}}",
        "job \"x\" { group \"g\" { count = \"many\" }}",
        "job \"x\" { group \"g\" { network { port \"p\" { static = 70000 } } }}",
        "job \"x\" { group \"g\" { task \"t\" { kill_timeout = \"soon\" }}}",
        "job \"x\" { datacenters = [for x in [1,2] : x / 0] }",
        "job \"x\" { dynamic \"group\" { for_each = 5 content {} } }",
        "job \"x\" { meta = 5 }",
        "job \"x\" \"y\" {}",
        "{",
        "{\"Job\": 5}",
        "<<EOF",
        "job \"x\" { region = \"${\" }",
        "job \"x\" { region = format(\"%d\", \"a\") }",
        "\u{0}\u{1}",
    ];
    for src in inputs {
        let r = std::panic::catch_unwind(|| parse(src, "f.hcl", &VarInputs::default()));
        assert!(r.is_ok(), "panicked on {src:?}");
    }
    // One-line nested blocks are not HCL2: a syntax error with its location.
    let e = err("job \"x\" { group \"g\" { task \"t\" { config = 5 }}}");
    assert!(matches!(e, JobspecError::Syntax { line: 1, .. }), "{e:?}");
    let e = err("job \"x\" {\n group \"g\" {\n  task \"t\" {\n   config = 5\n  }\n }\n}\n");
    assert!(
        e.to_string().contains("config must be a block or a map"),
        "{e}"
    );
}

#[test]
fn json_accepts_wrapped_and_bare_jobs() {
    let bare = r#"{"ID":"j","TaskGroups":[{"Name":"g","Count":0,"Tasks":[{"Name":"t","Driver":"raw_exec","Constraints":null}]}]}"#;
    let a = parse_json(bare).unwrap();
    let b = parse(
        &format!("{{\"Job\": {bare}}}"),
        "x.json",
        &VarInputs::default(),
    )
    .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.name, "j");
    assert_eq!(a.task_groups[0].count, 0);
    assert_eq!(a.task_groups[0].tasks[0].kill_signal, "SIGINT");
    let e = parse_json("{\"ID\": }").unwrap_err();
    assert_eq!(e.line(), 1);
}
