//! Templates through the API, against the in-process Consul test server: a raw_exec task
//! waits for its Consul KV key ("Missing: kv.block(...)" event), starts with the rendered file
//! and `env = true` variables, and a KV change re-renders the file within seconds; with
//! `change_mode = "restart"` the task restarts (a new start line from a new PID), with
//! `"noop"` it keeps running untouched.

use super::consul_tests::{consul_at, start_with_consul};
use super::tests::start_with;
use crate::client::consul::ConsulTiming;
use crate::client::ClientConfig;
use crate::server::ServerConfig;
use caravan_consul::{ConsulClient, WriteOptions};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn job(id: &str, prefix: &str, mode: &str) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh",
                           "args": ["-c", "echo \"start $$ $APP_MODE\" >> \"$NOMAD_ALLOC_DIR/starts.log\"; exec sleep 300"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Templates": [
                    {"EmbeddedTmpl": format!("port={{{{ key \"{prefix}/port\" }}}}\nname={{{{ env \"NOMAD_TASK_NAME\" }}}}\n"),
                     "DestPath": "local/app.conf", "ChangeMode": mode, "Perms": "0640"},
                    {"EmbeddedTmpl": format!("APP_MODE=[[ key \"{prefix}/mode\" ]]\n"),
                     "DestPath": "local/app.env", "Envvars": true, "ChangeMode": "noop",
                     "LeftDelim": "[[", "RightDelim": "]]"},
                    {"EmbeddedTmpl": format!("first={{{{ key \"{prefix}/port\" }}}}"),
                     "DestPath": "local/once.conf", "Once": true, "ChangeMode": "restart"}
                ]
            }]
        }]
    }})
}

fn find(dir: &Path, tail: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.to_string_lossy().ends_with(tail) {
            return Some(p);
        }
        if p.is_dir() {
            if let Some(f) = find(&p, tail) {
                return Some(f);
            }
        }
    }
    None
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

async fn events(a: &super::tests::TestAgent, alloc: &str) -> Vec<(String, String)> {
    let v = a.get(&format!("/v1/allocation/{alloc}")).await;
    v["TaskStates"]["web"]["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["Type"].as_str().unwrap_or_default().to_string(),
                e["DisplayMessage"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .or(e["Message"].as_str())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

async fn put(c: &ConsulClient, k: &str, v: &str) {
    assert!(c
        .kv_put(k, v.as_bytes(), 0, &WriteOptions::default())
        .await
        .expect("kv put"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_renders_consul_kv_and_rerenders_on_change() {
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    let a = start_with_consul(link).await;

    // change_mode = "restart": the key is missing at first.
    let (code, body) = a
        .put("/v1/jobs", &job("tmpl-restart", "app", "restart"))
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.allocs("tmpl-restart").await.is_empty());
    let alloc = a.allocs("tmpl-restart").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Template" && m.contains("Missing: kv.block(app/port)")));
    assert!(
        a.running("tmpl-restart").await.is_empty(),
        "started before its data"
    );
    put(&direct, "app/port", "8080").await;
    put(&direct, "app/mode", "prod").await;
    crate::wait_for!(!a.running("tmpl-restart").await.is_empty());
    let conf = find(&a.data_dir, &format!("{alloc}/web/local/app.conf")).expect("app.conf");
    assert_eq!(read(&conf), "port=8080\nname=web\n");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o640
    );
    let starts = conf
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("alloc/starts.log");
    crate::wait_for!(read(&starts).lines().count() == 1);
    assert!(
        read(&starts).trim_end().ends_with(" prod"),
        "env from the template: {}",
        read(&starts)
    );

    // A noop env template changes: no restart, but the next start gets the new variable.
    put(&direct, "app/mode", "canary").await;
    let env_file = conf.with_file_name("app.env");
    crate::wait_for!(read(&env_file) == "APP_MODE=canary\n");
    let t0 = Instant::now();
    put(&direct, "app/port", "9090").await;
    crate::wait_for!(read(&conf) == "port=9090\nname=web\n");
    eprintln!("KV write to re-rendered file: {:?}", t0.elapsed());
    crate::wait_for!(read(&starts).lines().count() == 2);
    let lines: Vec<String> = read(&starts).lines().map(String::from).collect();
    assert_ne!(lines[0], lines[1], "a new process (PID) after the restart");
    assert!(
        lines[1].ends_with(" canary"),
        "env after the restart: {lines:?}"
    );
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Restart Signaled" && m.contains("Template")));

    // change_mode = "noop": the file changes, the task keeps running untouched.
    put(&direct, "quiet/port", "1").await;
    put(&direct, "quiet/mode", "dev").await;
    let (code, body) = a.put("/v1/jobs", &job("tmpl-noop", "quiet", "noop")).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("tmpl-noop").await.is_empty());
    let alloc2 = a.allocs("tmpl-noop").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let conf2 = find(&a.data_dir, &format!("{alloc2}/web/local/app.conf")).expect("app.conf");
    let starts2 = conf2
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("alloc/starts.log");
    crate::wait_for!(read(&starts2).lines().count() == 1);
    put(&direct, "quiet/port", "2").await;
    crate::wait_for!(read(&conf2) == "port=2\nname=web\n");
    // `once`: rendered at the start, never again (and it asks for no restart).
    assert_eq!(read(&conf2.with_file_name("once.conf")), "first=1");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(read(&starts2).lines().count(), 1, "noop must not restart");
    assert!(!events(&a, &alloc2)
        .await
        .iter()
        .any(|(t, _)| t == "Restart Signaled"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_templates_are_refused_with_the_reason() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let mut j = job("tmpl-bad", "x", "script");
    let (code, body) = a.put("/v1/jobs", &j).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("must specify script path value when change mode is script"),
        "{body}"
    );
    j["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"][0] = json!({"EmbeddedTmpl": "# the node list\n{{ range nodes }}{{ .Address }}{{ end }}", "DestPath": "local/x"});
    let (code, body) = a.put("/v1/jobs", &j).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("nodes function needs Consul catalog node queries"),
        "{body}"
    );
    // Plain text that merely mentions a function name is not refused.
    j["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"][0] =
        json!({"EmbeddedTmpl": "nomadService node list\n", "DestPath": "local/x"});
    let (code, body) = a.put("/v1/jobs", &j).await;
    assert_eq!(code, 200, "{body}");
}

fn signal_job(id: &str, dest: &str) -> Value {
    json!({"Job": {
        "ID": id,
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh",
                           "args": ["-c", "trap 'echo \"hup $(cat local/sig.conf)\" >> \"$NOMAD_ALLOC_DIR/signals.log\"' HUP; echo \"start $$\" >> \"$NOMAD_ALLOC_DIR/starts.log\"; while true; do sleep 0.1; done"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Templates": [
                    {"EmbeddedTmpl": "level={{ key \"sig/level\" }}", "DestPath": dest,
                     "ChangeMode": "signal", "ChangeSignal": "SIGHUP",
                     "Wait": {"Min": 400_000_000, "Max": 3_000_000_000i64}}
                ]
            }]
        }]
    }})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_mode_sends_the_signal_and_escaping_destinations_fail() {
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    let a = start_with_consul(link).await;
    put(&direct, "sig/level", "info").await;
    let (code, body) = a
        .put("/v1/jobs", &signal_job("tmpl-sig", "local/sig.conf"))
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("tmpl-sig").await.is_empty());
    let alloc = a.allocs("tmpl-sig").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    let conf = find(&a.data_dir, &format!("{alloc}/web/local/sig.conf")).expect("sig.conf");
    let alloc_dir = conf
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    crate::wait_for!(read(&alloc_dir.join("alloc/starts.log")).lines().count() == 1);
    // Two writes in quick succession settle into one render (`wait { min = 400ms }`): the
    // task's own trap sees one SIGHUP, after the file has the last value.
    put(&direct, "sig/level", "debug").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    put(&direct, "sig/level", "trace").await;
    crate::wait_for!(read(&alloc_dir.join("alloc/signals.log")).contains("hup level=trace"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        read(&alloc_dir.join("alloc/signals.log")),
        "hup level=trace\n",
        "one signal after the data settled"
    );
    assert_eq!(read(&alloc_dir.join("alloc/starts.log")).lines().count(), 1);
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Signaling" && m.contains("SIGHUP")));

    // A destination outside the allocation directory fails the task before it starts.
    let (code, body) = a
        .put(
            "/v1/jobs",
            &signal_job("tmpl-escape", "../../../../etc/caravan-escape"),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.allocs("tmpl-escape").await.is_empty());
    let alloc = a.allocs("tmpl-escape").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Setup Failure" && m.contains("destination")));
    assert!(!Path::new("/etc/caravan-escape").exists());

    // A `source` file that is not there fails the task before it starts, saying so.
    let mut j = signal_job("tmpl-src", "local/out.conf");
    j["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"][0] =
        json!({"SourcePath": "local/missing.tpl", "DestPath": "local/out.conf"});
    let (code, body) = a.put("/v1/jobs", &j).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.allocs("tmpl-src").await.is_empty());
    let alloc = a.allocs("tmpl-src").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Setup Failure" && m.contains("reading source")));

    // Stopping a job whose task still waits for its data ends the wait: the task never starts.
    let (code, body) = a
        .put("/v1/jobs", &job("tmpl-wait", "never", "restart"))
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.allocs("tmpl-wait").await.is_empty());
    let alloc = a.allocs("tmpl-wait").await[0]["ID"]
        .as_str()
        .unwrap()
        .to_string();
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(t, m)| t == "Template" && m.starts_with("Missing: kv.block(never/port)")));
    let r = a
        .http
        .delete(format!("{}/v1/job/tmpl-wait", a.base))
        .send()
        .await
        .expect("stop job");
    assert_eq!(r.status().as_u16(), 200);
    crate::wait_for!(a.allocs("tmpl-wait").await[0]["ClientStatus"] == "complete");
    let ev = events(&a, &alloc).await;
    assert!(!ev.iter().any(|(t, _)| t == "Started"), "{ev:?}");
}

/// `signal_job` with `tmpl` as its one template.
fn job_with(id: &str, tmpl: Value) -> Value {
    let mut j = signal_job(id, "local/x");
    j["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"] = json!([tmpl]);
    j
}

async fn first_alloc(a: &super::tests::TestAgent, job: &str) -> String {
    crate::wait_for!(!a.allocs(job).await.is_empty());
    a.allocs(job).await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_template_settings_apply_and_reload_for_new_tasks() {
    use crate::client::template_settings::{Retry, TemplateSettings};
    let (consul_addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let proxy = super::test_proxy::Proxy::start(consul_addr).await;
    let via = proxy.addr;
    let (direct, _) = consul_at(&consul_addr.to_string(), ConsulTiming::default());
    let (_, link) = consul_at(&via.to_string(), ConsulTiming::default());
    let settings = TemplateSettings {
        function_denylist: vec!["env".into()],
        wait: None,
        block_query_wait: Duration::from_secs(1),
        consul_retry: Retry {
            attempts: 3,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..Default::default()
    };
    let a = start_with(
        1,
        ServerConfig::default(),
        ClientConfig {
            consul: Some(link),
            template: settings.clone(),
            ..Default::default()
        },
    )
    .await;
    let setup_failure = |job: &'static str, want: &'static str| {
        let a = &a;
        async move {
            let alloc = first_alloc(a, job).await;
            crate::wait_for!(events(a, &alloc)
                .await
                .iter()
                .any(|(t, m)| t == "Setup Failure" && m.contains(want)));
        }
    };

    // function_denylist: the client's list replaces Nomad's default one.
    let (code, body) = a
        .put(
            "/v1/jobs",
            &job_with(
                "tmpl-denied",
                json!({"EmbeddedTmpl": "{{ env \"NOMAD_TASK_NAME\" }}", "DestPath": "local/x"}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    setup_failure(
        "tmpl-denied",
        "\"env\" is disabled by the client's template function_denylist",
    )
    .await;

    // The file sandbox holds by default ...
    let outside = std::env::temp_dir().join(format!("caravan-tpl-{}", caravan_structs::new_id()));
    std::fs::write(&outside, "from the host").expect("write");
    let read_outside = json!({"EmbeddedTmpl": format!("{{{{ file \"{}\" }}}}", outside.display()), "DestPath": "local/x"});
    let (code, body) = a
        .put(
            "/v1/jobs",
            &job_with("tmpl-sandboxed", read_outside.clone()),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    setup_failure("tmpl-sandboxed", "the client's template sandbox").await;
    // ... and a reload with disable_file_sandbox lets tasks started afterwards read the host.
    a.clients[0].reload_template(TemplateSettings {
        disable_file_sandbox: true,
        ..settings.clone()
    });
    let (code, body) = a
        .put("/v1/jobs", &job_with("tmpl-open", read_outside))
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("tmpl-open").await.is_empty());
    let alloc = first_alloc(&a, "tmpl-open").await;
    let x = find(&a.data_dir, &format!("{alloc}/web/local/x")).expect("rendered");
    assert_eq!(read(&x), "from the host");
    let _ = std::fs::remove_file(&outside);

    // consul_retry { attempts = 3 }: a running task whose Consul goes away fails after three
    // failed reads in a row, saying why ...
    put(&direct, "cfg/port", "1").await;
    let (code, body) = a
        .put(
            "/v1/jobs",
            &job_with(
                "tmpl-kv",
                json!({"EmbeddedTmpl": "{{ key \"cfg/port\" }}", "DestPath": "local/x", "ChangeMode": "noop"}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("tmpl-kv").await.is_empty());
    let alloc = first_alloc(&a, "tmpl-kv").await;
    proxy.cut();
    crate::wait_for!(events(&a, &alloc).await.iter().any(|(t, m)| t == "Killing"
        && m.starts_with(
            "Template failed: reading kv.block(cfg/port) from Consul failed 3 times"
        )));
    crate::wait_for!(a.allocs("tmpl-kv").await[0]["ClientStatus"] == "failed");
    let v = a.get(&format!("/v1/allocation/{alloc}")).await;
    assert_eq!(v["TaskStates"]["web"]["Failed"], true, "{v}");

    // ... and one that starts while Consul is away fails before it runs.
    let (code, body) = a
        .put(
            "/v1/jobs",
            &job_with(
                "tmpl-late",
                json!({"EmbeddedTmpl": "{{ key \"cfg/other\" }}", "DestPath": "local/x"}),
            ),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    setup_failure("tmpl-late", "from Consul failed 3 times").await;
    assert!(a.running("tmpl-late").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_mode_runs_the_change_script_in_the_task() {
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    let a = start_with_consul(link).await;
    put(&direct, "scr/v", "one").await;
    let mut j = signal_job("tmpl-script", "local/v.conf");
    j["Job"]["TaskGroups"][0]["Tasks"][0]["Templates"] = json!([
        {"EmbeddedTmpl": "v={{ key \"scr/v\" }}", "DestPath": "local/v.conf",
         "ChangeMode": "script",
         "ChangeScript": {"Command": "/bin/sh",
                          "Args": ["-c", "echo \"ran $(cat local/v.conf)\" >> local/script.log"],
                          "Timeout": 5_000_000_000i64, "FailOnError": true}},
        {"EmbeddedTmpl": "{{ key \"scr/bad\" }}", "DestPath": "local/bad.conf",
         "ChangeMode": "script",
         "ChangeScript": {"Command": "/bin/sh", "Args": ["-c", "exit 3"], "FailOnError": true}}
    ]);
    put(&direct, "scr/bad", "0").await;
    let (code, body) = a.put("/v1/jobs", &j).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(!a.running("tmpl-script").await.is_empty());
    let alloc = a.allocs("tmpl-script").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let conf = find(&a.data_dir, &format!("{alloc}/web/local/v.conf")).expect("v.conf");
    let log = conf.with_file_name("script.log");
    // A change runs the script inside the task (its working directory), after the render.
    put(&direct, "scr/v", "two").await;
    crate::wait_for!(read(&log) == "ran v=two\n");
    crate::wait_for!(
        events(&a, &alloc)
            .await
            .iter()
            .any(|(t, m)| t == "Template"
                && m.starts_with("Template successfully ran script /bin/sh"))
    );
    let starts = read(
        &conf
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("alloc/starts.log"),
    );
    assert_eq!(
        starts.lines().count(),
        1,
        "a script does not restart the task"
    );
    // A failing script with fail_on_error kills the task.
    put(&direct, "scr/bad", "1").await;
    crate::wait_for!(events(&a, &alloc)
        .await
        .iter()
        .any(|(_, m)| m.contains("exited with code code: 3")));
    crate::wait_for!(a.allocs("tmpl-script").await[0]["ClientStatus"] == "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_source_and_file_files_are_rendered_again() {
    // A prestart task writes the template's source into the shared alloc dir (and a file for
    // `file` into the task's dir); the main task's template reads it with `source`, and a
    // later change to that file is rendered again (beyond Nomad, which reads a source once)
    // and signals the task; a change to the file `file` read renders its template again.
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let job = json!({"Job": {
        "ID": "tmpl-source",
        "TaskGroups": [{
            "Name": "g", "Count": 1,
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [
                {"Name": "prep", "Driver": "raw_exec",
                 "Lifecycle": {"Hook": "prestart", "Sidecar": false},
                 "Config": {"command": "/bin/sh", "args": ["-c",
                    "printf 'v1 {{ env \"NOMAD_TASK_NAME\" }}' > \"$NOMAD_ALLOC_DIR/app.tpl\"; \
                     mkdir -p \"$NOMAD_ALLOC_DIR/../web/local\"; printf one > \"$NOMAD_ALLOC_DIR/../web/local/in.txt\""]},
                 "Resources": {"CPU": 20, "MemoryMB": 30}},
                {"Name": "web", "Driver": "raw_exec",
                 "Config": {"command": "/bin/sh", "args": ["-c",
                    "trap 'echo got-hup' HUP; echo started; while true; do sleep 0.2; done"]},
                 "Resources": {"CPU": 20, "MemoryMB": 30},
                 "KillTimeout": 1_000_000_000,
                 "Templates": [{"SourcePath": "../alloc/app.tpl", "DestPath": "local/out.txt",
                                "ChangeMode": "signal", "ChangeSignal": "SIGHUP"},
                               {"EmbeddedTmpl": "[{{ file \"local/in.txt\" }}]",
                                "DestPath": "local/file-out.txt", "ChangeMode": "noop"}]}
            ]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(find(&a.data_dir, "web/local/out.txt").is_some());
    let out = find(&a.data_dir, "web/local/out.txt").unwrap_or_default();
    assert_eq!(read(&out), "v1 web");
    let alloc_dir = out
        .ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    crate::wait_for!(!a.running("tmpl-source").await.is_empty());
    // Replaced by a rename, as editors and config tools do.
    let tmp = alloc_dir.join("alloc/app.tpl.new");
    std::fs::write(&tmp, "v2 {{ env \"NOMAD_TASK_NAME\" }}").expect("write source");
    std::fs::rename(&tmp, alloc_dir.join("alloc/app.tpl")).expect("rename source");
    crate::wait_for!(read(&out) == "v2 web");
    let logs = alloc_dir.join("alloc/logs/web.stdout.0");
    crate::wait_for!(read(&logs).contains("got-hup"));
    // And written in place.
    std::fs::write(alloc_dir.join("alloc/app.tpl"), "v3").expect("write source");
    crate::wait_for!(read(&out) == "v3");
    // A file read with `file` is watched too (as consul-template does).
    let file_out = alloc_dir.join("web/local/file-out.txt");
    assert_eq!(read(&file_out), "[one]");
    std::fs::write(alloc_dir.join("web/local/in.txt"), "two").expect("write file");
    crate::wait_for!(read(&file_out) == "[two]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinated_restarts_roll_through_the_group_one_allocation_at_a_time() {
    // Beyond Nomad (its issues #6151, #17520): with the client option
    // `template { coordinated_restarts = true }`, a KV change that restarts every allocation
    // of a group rolls through them `update.max_parallel` at a time, each holding a slot the
    // servers hand out until it has been healthy for `min_healthy_time`.
    let (addr, _consul_server) = caravan_consul_test_server::spawn_for_test()
        .await
        .expect("consul test server");
    let (direct, link) = consul_at(&addr.to_string(), ConsulTiming::default());
    put(&direct, "roll/v", "1").await;
    let a = start_with(
        2,
        ServerConfig::default(),
        ClientConfig {
            consul: Some(link),
            template: crate::client::template_settings::TemplateSettings {
                wait: None,
                coordinated_restarts: true,
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .await;
    let min_healthy = Duration::from_secs(2);
    let job = json!({"Job": {
        "ID": "roll",
        "TaskGroups": [{
            "Name": "g", "Count": 3,
            "Update": {"MaxParallel": 1, "MinHealthyTime": min_healthy.as_nanos() as u64},
            "Spreads": [{"Attribute": "${node.unique.id}", "Weight": 100}],
            "RestartPolicy": {"Attempts": 0, "Interval": 60_000_000_000i64, "Delay": 100_000_000, "Mode": "fail"},
            "Tasks": [{
                "Name": "web", "Driver": "raw_exec",
                "Config": {"command": "/bin/sh", "args": ["-c",
                    "echo \"start $(date +%s%3N)\" >> \"$NOMAD_ALLOC_DIR/starts.log\"; exec sleep 300"]},
                "Resources": {"CPU": 20, "MemoryMB": 30},
                "KillTimeout": 1_000_000_000,
                "Templates": [{"EmbeddedTmpl": "v={{ key \"roll/v\" }}", "DestPath": "local/v.conf",
                               "ChangeMode": "restart"}]
            }]
        }]
    }});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    crate::wait_for!(a.running("roll").await.len() == 3);
    let allocs = a.running("roll").await;
    let nodes: std::collections::BTreeSet<String> = allocs
        .iter()
        .filter_map(|al| al["NodeID"].as_str().map(String::from))
        .collect();
    assert_eq!(nodes.len(), 2, "the three allocations span both clients");
    let logs: Vec<PathBuf> = allocs
        .iter()
        .filter_map(|al| al["ID"].as_str())
        .filter_map(|id| find(&a.data_dir, &format!("{id}/alloc/starts.log")))
        .collect();
    assert_eq!(logs.len(), 3);
    let starts = |p: &Path| -> Vec<u64> {
        read(p)
            .lines()
            .filter_map(|l| l.strip_prefix("start ")?.trim().parse().ok())
            .collect()
    };

    put(&direct, "roll/v", "2").await;
    crate::wait_for!(logs.iter().all(|p| starts(p).len() >= 2));
    let mut restarted: Vec<u64> = logs.iter().map(|p| starts(p)[1]).collect();
    restarted.sort();
    for w in restarted.windows(2) {
        // One at a time: the next starts only after the previous ran `min_healthy`.
        assert!(
            w[1] - w[0] >= min_healthy.as_millis() as u64 - 100,
            "restarts overlapped: {restarted:?}"
        );
    }
    assert!(
        logs.iter().all(|p| starts(p).len() == 2),
        "one restart each"
    );
}
