//! The two JSON forms of a job file: HCL's JSON syntax (`{"job": {"web": {...}}}`, read as
//! the same job its HCL spelling gives) and the API's `{"Job": {...}}`.

use caravan_jobspec::{parse, parse_hcl, VarInputs};
use std::collections::BTreeMap;

const HCL: &str = r#"
variable "dcs" {
  type    = list(string)
  default = ["dc1"]
}

job "web" {
  datacenters = var.dcs
  type        = "service"
  meta {
    owner = "team"
  }
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
  group "api" {
    count = 2
    network {
      port "http" {
        to = 8080
      }
    }
    restart {
      attempts = 4
    }
    task "server" {
      driver = "exec"
      config {
        command = "/bin/server"
        args    = ["-port", "${NOMAD_PORT_http}"]
      }
      env {
        REGION = "${node.region}"
      }
      resources {
        cpu    = 200
        memory = 64
      }
      template {
        data        = "x={{ key \"x\" }}"
        destination = "local/x.env"
        env         = true
      }
    }
  }
}
"#;

const HCL_JSON: &str = r#"{
  "variable": {"dcs": {"type": "list(string)", "default": ["dc1"]}},
  "job": {
    "web": {
      "datacenters": "${var.dcs}",
      "type": "service",
      "meta": {"owner": "team"},
      "constraint": [{"attribute": "${attr.kernel.name}", "value": "linux"}],
      "group": {
        "api": {
          "count": 2,
          "network": {"port": {"http": {"to": 8080}}},
          "restart": {"attempts": 4},
          "task": {
            "server": {
              "driver": "exec",
              "config": {"command": "/bin/server", "args": ["-port", "${NOMAD_PORT_http}"]},
              "env": {"REGION": "${node.region}"},
              "resources": {"cpu": 200, "memory": 64},
              "template": [{"data": "x={{ key \"x\" }}", "destination": "local/x.env", "env": true}]
            }
          }
        }
      }
    }
  }
}"#;

#[test]
fn hcl_json_syntax_reads_as_the_same_job() {
    let from_hcl = parse_hcl(HCL, "web.nomad.hcl", &VarInputs::default()).unwrap();
    let from_json = parse(HCL_JSON, "web.nomad.json", &VarInputs::default()).unwrap();
    assert_eq!(from_json, from_hcl);
    let t = &from_json.task_groups[0].tasks[0];
    assert_eq!(t.env["REGION"], "${node.region}");
    assert_eq!(from_json.constraints[0].l_target, "${attr.kernel.name}");
    assert_eq!(
        from_json.task_groups[0]
            .restart_policy
            .as_ref()
            .unwrap()
            .attempts,
        4
    );
}

#[test]
fn hcl_json_takes_variables_and_reports_unknown_keys() {
    let mut vars = BTreeMap::new();
    vars.insert("dcs".to_string(), r#"["east", "west"]"#.to_string());
    let job = parse(
        HCL_JSON,
        "web.nomad.json",
        &VarInputs {
            vars,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(job.datacenters, vec!["east", "west"]);

    let bad = r#"{"job": {"web": {"group": {"api": {"cont": 2}}}}}"#;
    let e = parse(bad, "bad.json", &VarInputs::default()).unwrap_err();
    let s = e.to_string();
    assert!(s.starts_with("bad.json (as HCL):"), "{s}");
    assert!(
        s.contains("unsupported argument \"cont\"; did you mean \"count\"?"),
        "{s}"
    );
}

#[test]
fn api_json_is_still_read_as_the_api_job() {
    let job = parse(
        r#"{"Job": {"ID": "web", "TaskGroups": [{"Name": "api", "Tasks": [{"Name": "t", "Driver": "exec"}]}]}}"#,
        "web.json",
        &VarInputs::default(),
    )
    .unwrap();
    assert_eq!(job.id, "web");
    assert_eq!(job.task_groups[0].tasks[0].driver, "exec");
}
