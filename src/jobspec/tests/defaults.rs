//! Nomad's defaults (its `api` package's `Job.Canonicalize`, as documented on each block's
//! page) for jobs that leave blocks out or write them in part: restart and reschedule per job
//! type, update, migrate, ephemeral_disk, logs, resources, kill_timeout, and inheritance from
//! job to group to task, field by field.

use caravan_jobspec::{parse_hcl, parse_json, VarInputs};
use caravan_structs::time::{HOUR, MINUTE, SECOND};
use caravan_structs::Job;
use serde_json::json;

fn hcl(src: &str) -> Job {
    match parse_hcl(src, "d.nomad.hcl", &VarInputs::default()) {
        Ok(j) => j,
        Err(e) => panic!("parse failed: {e}"),
    }
}

fn job_of_type(t: &str, group_body: &str) -> Job {
    hcl(&format!(
        "job \"j\" {{\n type = \"{t}\"\n group \"g\" {{\n{group_body}\n task \"t\" {{\n driver = \"exec\"\n }}\n }}\n}}\n"
    ))
}

#[test]
fn service_job_defaults() {
    let job = job_of_type("service", "");
    let g = &job.task_groups[0];
    let r = g.restart_policy.as_ref().expect("restart");
    assert_eq!(
        (r.attempts, r.interval, r.delay, r.mode.as_str()),
        (2, 30 * MINUTE, 15 * SECOND, "fail")
    );
    let rs = g.reschedule_policy.as_ref().expect("reschedule");
    assert_eq!(
        (
            rs.delay,
            rs.delay_function.as_str(),
            rs.max_delay,
            rs.unlimited
        ),
        (30 * SECOND, "exponential", HOUR, true)
    );
    let u = g.update.as_ref().expect("update");
    assert_eq!(
        (
            u.max_parallel,
            u.health_check.as_str(),
            u.min_healthy_time,
            u.healthy_deadline,
            u.progress_deadline,
            u.auto_revert,
            u.canary,
            u.stagger
        ),
        (
            1,
            "checks",
            10 * SECOND,
            5 * MINUTE,
            10 * MINUTE,
            false,
            0,
            30 * SECOND
        )
    );
    assert_eq!(
        g.migrate.clone().expect("migrate"),
        json!({"MaxParallel": 1, "HealthCheck": "checks", "MinHealthyTime": 10 * SECOND, "HealthyDeadline": 5 * MINUTE})
    );
    assert_eq!(g.ephemeral_disk.size_mb, 300);
    assert!(!g.ephemeral_disk.sticky);
    let t = &g.tasks[0];
    assert_eq!((t.resources.cpu, t.resources.memory_mb), (100, 300));
    assert_eq!(
        (t.log_config.max_files, t.log_config.max_file_size_mb),
        (10, 10)
    );
    assert_eq!(t.kill_timeout, 5 * SECOND);
    assert_eq!(t.restart_policy.as_ref(), Some(r));
}

#[test]
fn batch_job_defaults() {
    let job = job_of_type("batch", "");
    let g = &job.task_groups[0];
    let r = g.restart_policy.as_ref().expect("restart");
    assert_eq!(
        (r.attempts, r.interval, r.delay, r.mode.as_str()),
        (3, 24 * HOUR, 15 * SECOND, "fail")
    );
    let rs = g.reschedule_policy.as_ref().expect("reschedule");
    assert_eq!(
        (
            rs.attempts,
            rs.interval,
            rs.delay,
            rs.delay_function.as_str(),
            rs.unlimited
        ),
        (1, 24 * HOUR, 5 * SECOND, "constant", false)
    );
    assert!(
        g.migrate.is_none(),
        "only service groups get a migrate block"
    );
}

#[test]
fn system_job_defaults() {
    let job = job_of_type("system", "");
    let g = &job.task_groups[0];
    let r = g.restart_policy.as_ref().expect("restart");
    assert_eq!((r.attempts, r.interval), (2, 30 * MINUTE));
    assert!(
        g.reschedule_policy.is_none(),
        "system jobs never reschedule"
    );
}

#[test]
fn partial_blocks_take_the_rest_from_the_job_type_and_the_group() {
    let job = hcl(r#"
job "j" {
  type = "batch"
  reschedule { attempts = 4 }
  group "g" {
    restart { attempts = 5 }
    reschedule { delay = "10s" }
    ephemeral_disk { sticky = true }
    task "a" {
      driver = "exec"
      restart { mode = "delay" }
      resources { cores = 2 }
      logs { max_files = 3 }
    }
  }
}
"#);
    let g = &job.task_groups[0];
    let r = g.restart_policy.as_ref().unwrap();
    assert_eq!(
        (r.attempts, r.interval),
        (5, 24 * HOUR),
        "batch interval kept"
    );
    let t = &g.tasks[0];
    let tr = t.restart_policy.as_ref().unwrap();
    assert_eq!(
        (tr.attempts, tr.interval, tr.mode.as_str()),
        (5, 24 * HOUR, "delay")
    );
    let rs = g.reschedule_policy.as_ref().unwrap();
    assert_eq!(
        (
            rs.attempts,
            rs.delay,
            rs.interval,
            rs.delay_function.as_str()
        ),
        (4, 10 * SECOND, 24 * HOUR, "constant")
    );
    assert_eq!(
        (g.ephemeral_disk.sticky, g.ephemeral_disk.size_mb),
        (true, 300)
    );
    assert_eq!(
        (t.resources.cores, t.resources.cpu, t.resources.memory_mb),
        (2, 0, 300),
        "reserved cores take the place of CPU shares"
    );
    assert_eq!(
        (t.log_config.max_files, t.log_config.max_file_size_mb),
        (3, 10)
    );
}

#[test]
fn group_update_and_migrate_merge_over_the_jobs() {
    let job = hcl(r#"
job "j" {
  update {
    max_parallel = 3
    canary       = 1
  }
  migrate { max_parallel = 2 }
  group "a" {
    update { canary = 2 }
    task "t" { driver = "exec" }
  }
  group "b" {
    migrate { health_check = "task_states" }
    task "t" { driver = "exec" }
  }
}
"#);
    let a = &job.task_groups[0];
    let u = a.update.as_ref().unwrap();
    assert_eq!(
        (u.max_parallel, u.canary, u.min_healthy_time),
        (3, 2, 10 * SECOND)
    );
    let b = &job.task_groups[1];
    let u = b.update.as_ref().unwrap();
    assert_eq!((u.max_parallel, u.canary), (3, 1));
    let m = b.migrate.clone().unwrap();
    assert_eq!(m["MaxParallel"], json!(2));
    assert_eq!(m["HealthCheck"], json!("task_states"));
    assert_eq!(m["HealthyDeadline"], json!(5 * MINUTE));
}

#[test]
fn json_jobs_get_the_same_defaults() {
    let job = parse_json(
        r#"{"Job": {"ID": "j", "Type": "batch", "TaskGroups": [{"Name": "g",
            "RestartPolicy": {"Attempts": 9},
            "Tasks": [{"Name": "t", "Driver": "exec"}]}]}}"#,
    )
    .unwrap();
    let r = job.task_groups[0].restart_policy.as_ref().unwrap();
    assert_eq!((r.attempts, r.interval), (9, 24 * HOUR));
}

#[test]
fn templates_artifacts_vault_identity_and_job_secrets_get_nomads_values() {
    let job = hcl(r#"
job "j" {
  vault { policies = ["p"] }
  secret "shared" {
    provider = "nomad"
    path     = "x"
  }
  group "g" {
    task "t" {
      driver = "exec"
      template {
        data        = "x"
        destination = "local/x"
        change_mode = "signal"
      }
      template {
        data          = "y"
        destination   = "local/y"
        change_mode   = "script"
        change_script { command = "/bin/true" }
      }
      artifact { source = "https://example.com/a.tgz" }
      artifact {
        source = "https://example.com/b.bin"
        mode   = "file"
      }
      identity { env = true }
      identity {
        name = "vault_default"
        aud  = ["vault.io"]
      }
    }
  }
}
"#);
    let t = &job.task_groups[0].tasks[0];
    let a = &t.templates[0];
    assert_eq!(
        (
            &a["ChangeSignal"],
            &a["Splay"],
            &a["Perms"],
            &a["LeftDelim"],
            &a["ErrMissingKey"]
        ),
        (
            &json!("SIGHUP"),
            &json!(5 * SECOND),
            &json!("0644"),
            &json!("{{"),
            &json!(false)
        )
    );
    let cs = &t.templates[1]["ChangeScript"];
    assert_eq!(
        (&cs["Timeout"], &cs["Args"]),
        (&json!(5 * SECOND), &json!([]))
    );
    assert_eq!(t.artifacts[0]["RelativeDest"], json!("local/"));
    assert_eq!(t.artifacts[0]["GetterMode"], json!("any"));
    assert_eq!(t.artifacts[1]["RelativeDest"], json!("local/b.bin"));
    let v = t.vault.clone().expect("job vault inherited");
    assert_eq!(
        (&v["Env"], &v["DisableFile"], &v["ChangeMode"]),
        (&json!(true), &json!(false), &json!("restart"))
    );
    assert_eq!(
        t.identity.clone().expect("default identity")["Env"],
        json!(true)
    );
    assert_eq!(t.identities.len(), 1);
    assert_eq!(t.identities[0]["Name"], json!("vault_default"));
    assert_eq!(t.secrets.len(), 1, "job secrets reach every task");
    assert_eq!(t.secrets[0]["Name"], json!("shared"));
}

#[test]
fn services_checks_and_scaling_get_nomads_values() {
    let job = hcl(r#"
job "shop" {
  group "web" {
    scaling {
      min = 3
      max = 10
    }
    service {
      port = "http"
      check_restart { limit = 3 }
      check {
        type     = "http"
        path     = "/"
        interval = "10s"
        timeout  = "2s"
      }
      check {
        type      = "tcp"
        interval  = "10s"
        timeout   = "2s"
        on_update = "ignore"
        check_restart { grace = "30s" }
      }
    }
    task "t" {
      driver = "exec"
      service {
        name     = "named"
        provider = "nomad"
      }
      service {}
    }
  }
}
"#);
    let g = &job.task_groups[0];
    assert_eq!(g.count, 3, "count comes from scaling.min");
    let scaling = g.scaling.clone().unwrap();
    assert_eq!(
        (&scaling["Enabled"], &scaling["Type"]),
        (&json!(true), &json!("horizontal"))
    );
    let s = &g.services[0];
    assert_eq!(s.name, "shop-web");
    assert_eq!(
        (
            s.address_mode.as_str(),
            s.on_update.as_str(),
            s.provider.as_str(),
            s.cluster.as_str()
        ),
        ("auto", "require_healthy", "consul", "default")
    );
    assert_eq!(s.checks[0]["OnUpdate"], json!("require_healthy"));
    assert_eq!(
        s.checks[0]["CheckRestart"],
        json!({"Limit": 3, "Grace": SECOND})
    );
    assert_eq!(s.checks[1]["OnUpdate"], json!("ignore"));
    assert_eq!(
        s.checks[1]["CheckRestart"],
        json!({"Limit": 3, "Grace": 30 * SECOND})
    );
    let ts = &g.tasks[0].services;
    assert_eq!(
        (ts[0].name.as_str(), ts[0].provider.as_str()),
        ("named", "nomad")
    );
    assert_eq!(ts[1].name, "shop-web-t");
}

#[test]
fn connect_blocks_use_the_api_names() {
    let job = hcl(r#"
job "mesh" {
  group "g" {
    network { mode = "bridge" }
    service {
      name = "api"
      port = "9001"
      connect {
        sidecar_service {
          disable_default_tcp_check = true
          proxy {
            upstreams {
              destination_name = "db"
              local_bind_port  = 5432
              config {
                connect_timeout_ms = 9999
              }
            }
            expose {
              path {
                path            = "/health"
                protocol        = "http"
                local_path_port = 9001
                listener_port   = "expose"
              }
            }
            transparent_proxy {
              uid    = "101"
              no_dns = true
            }
          }
        }
        sidecar_task {
          kill_timeout = "7s"
          logs { max_files = 2 }
        }
      }
    }
    service {
      name = "ingress"
      port = "8080"
      connect {
        gateway {
          proxy {
            connect_timeout = "3s"
            envoy_gateway_bind_addresses "web" {
              address = "0.0.0.0"
              port    = 8080
            }
          }
          ingress {
            tls { enabled = true }
            listener {
              port     = 8080
              protocol = "tcp"
              service { name = "api" }
            }
          }
        }
      }
    }
    task "t" { driver = "exec" }
  }
}
"#);
    let c = job.task_groups[0].services[0].connect.clone().unwrap();
    let ss = &c["SidecarService"];
    assert_eq!(ss["DisableDefaultTCPCheck"], json!(true));
    let up = &ss["Proxy"]["Upstreams"][0];
    assert_eq!(up["DestinationName"], json!("db"));
    assert_eq!(up["Config"]["connect_timeout_ms"], json!(9999));
    assert_eq!(
        ss["Proxy"]["Expose"]["Paths"][0]["LocalPathPort"],
        json!(9001)
    );
    assert_eq!(ss["Proxy"]["TransparentProxy"]["UID"], json!("101"));
    assert_eq!(ss["Proxy"]["TransparentProxy"]["NoDNS"], json!(true));
    assert_eq!(c["SidecarTask"]["KillTimeout"], json!(7 * SECOND));
    assert_eq!(c["SidecarTask"]["LogConfig"]["MaxFiles"], json!(2));
    let gw = job.task_groups[0].services[1].connect.clone().unwrap()["Gateway"].clone();
    assert_eq!(gw["Proxy"]["ConnectTimeout"], json!(3 * SECOND));
    assert_eq!(
        gw["Proxy"]["EnvoyGatewayBindAddresses"]["web"],
        json!({"Name": "web", "Address": "0.0.0.0", "Port": 8080})
    );
    assert_eq!(gw["Ingress"]["TLS"]["Enabled"], json!(true));
    assert_eq!(
        gw["Ingress"]["Listeners"][0]["Services"][0]["Name"],
        json!("api")
    );
}
