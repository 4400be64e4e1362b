//! Golden tests: corpus job files in, the canonical API JSON out (what `/v1/jobs/parse` with
//! `canonicalize` returns: the parsed job, then `Job::canonicalize`), compared field by field
//! with `tests/golden/<file>.json`. The expected files hold what Nomad's `api` package
//! `Canonicalize` methods (api/jobs.go, api/tasks.go, api/services.go, api/consul.go,
//! api/resources.go) give: they were first written from the parser's output, then checked
//! block by block against those methods, and every default where Caravan differed was fixed
//! in `src/jobspec/src/canonical.rs` (spread weight, device count, NUMA affinity, volume mount,
//! CSI plugin, disconnect, vault, periodic, multiregion, consul, sidecar task, gateway proxy,
//! job update) or, where the difference comes from Caravan's server-side `Job::canonicalize`,
//! kept at Nomad's value and listed in [`KNOWN`]. Fields Nomad's api has and Caravan's model
//! lacks are not compared; `null`, `[]` and `{}` count as the same (Nomad's nil lists and maps).
//! Together the files cover every block of the jobspec (the third column of [`GOLDEN`]).
//!
//! A mismatch names the field path that differs (`TaskGroups[0].Tasks[1].Resources.CPU`).
//! `GOLDEN_UPDATE=1` rewrites the expected files from the current output, for a reviewed
//! change only. Skips, saying so, when `../shared/corpus` is absent.

use caravan_jobspec::{parse_hcl, VarInputs};
use serde_json::Value as Json;
use std::path::PathBuf;

/// (corpus file, the blocks it is here for). None of them needs `-var` values.
const GOLDEN: &[(&str, &str)] = &[
    ("jobspec__test-fixtures__basic.hcl", "job, group, task, update, migrate, reschedule, restart, ephemeral_disk, volume (host, csi), disconnect, max_client_disconnect, logs, env, service, checks, check_restart, resources, network, port, device, artifact, vault, template, lifecycle, affinity, spread, constraint, kind, dispatch_payload-less batch"),
    ("jobspec__test-fixtures__periodic-cron.hcl", "periodic"),
    (
        "e2e__scaling__input__namespace_default_system.nomad.hcl", "system job: update inherited by groups",
    ),
    ("jobspec__test-fixtures__parameterized_job.hcl", "parameterized, dispatch_payload"),
    ("jobspec__test-fixtures__multiregion.hcl", "multiregion"),
    ("jobspec__test-fixtures__tg-network.hcl", "group network with ports, dns, mode"),
    ("jobspec__test-fixtures__tg-scaling-policy-minimal.hcl", "group scaling, count from scaling"),
    ("jobspec__test-fixtures__task-scaling-policy.hcl", "task scaling (cpu, mem)"),
    ("jobspec__test-fixtures__csi-plugin.hcl", "csi_plugin"),
    ("jobspec__test-fixtures__tg-service-connect-gateway-mesh.hcl", "connect mesh gateway"),
    ("jobspec__test-fixtures__tg-service-connect-gateway-ingress.hcl", "connect ingress gateway"),
    ("jobspec__test-fixtures__tg-service-connect-gateway-terminating.hcl", "connect terminating gateway"),
    ("jobspec2__test-fixtures__connect-example.hcl", "connect sidecar_service, upstreams"),
    ("jobspec__test-fixtures__tg-service-connect-resources.hcl", "sidecar_task resources"),
    ("jobspec__test-fixtures__tg-service-proxy-expose.hcl", "proxy expose paths"),
    ("jobspec__test-fixtures__tg-service-check.hcl", "group service check (grpc, http)"),
    ("jobspec__test-fixtures__service-check-restart.hcl", "check_restart"),
    ("jobspec__test-fixtures__artifacts.hcl", "artifact"),
    ("jobspec__test-fixtures__reschedule-job.hcl", "job reschedule"),
    ("jobspec__test-fixtures__consul-namespace.hcl", "group consul"),
    ("website__content__docs__job-specification__change_script.mdx__L22.hcl", "template change_mode script, change_script"),
    ("jobspec2__test-fixtures__template-wait-config.hcl", "template wait"),
    ("jobspec__test-fixtures__service-check-initial-status.hcl", "check initial_status"),
    ("website__content__docs__job-specification__numa.mdx__L27.hcl", "resources numa"),
    ("website__content__docs__job-specification__ui.mdx__L39.hcl", "ui"),
    ("website__content__docs__job-specification__action.mdx__L30.hcl", "action"),
    ("website__content__docs__job-specification__disconnect.mdx__L30.hcl", "disconnect"),
    ("website__content__docs__job-specification__logs.mdx__L31.hcl", "logs"),
    ("website__content__docs__job-specification__device.mdx__L34.hcl", "device, affinity"),
    ("website__content__docs__job-specification__spread.mdx__L39.hcl", "spread"),
    ("website__content__docs__job-specification__migrate.mdx__L37.hcl", "migrate"),
    ("website__content__docs__job-specification__ephemeral_disk.mdx__L22.hcl", "ephemeral_disk"),
    ("website__content__docs__job-specification__secret.mdx__L33.hcl", "secret"),
    ("website__content__docs__job-specification__schedule.mdx__L33.hcl", "task schedule"),
    ("website__content__docs__job-specification__vault.mdx__L34.hcl", "vault"),
    ("website__content__docs__job-specification__volume_mount.mdx__L22.hcl", "volume, volume_mount"),
    ("command__asset__example-short.nomad.hcl", "identity"),
    ("website__content__docs__job-declare__task-dependencies.mdx__L87.hcl", "lifecycle"),
];

fn corpus_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    root.is_dir().then_some(root)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Where Caravan's `/v1/jobs/parse` output knowingly differs from Nomad's: (field path, with
/// `[*]` for any index, and why). The expected files hold Nomad's value; a difference at one
/// of these paths is printed, not failed.
const KNOWN: &[(&str, &str)] = &[
    (
        "NodePool",
        "Caravan's Job::canonicalize fills the server's default pool (\"default\") at parse; \
         Nomad's api leaves \"\" and its server fills it at register",
    ),
    (
        "Datacenters",
        "Caravan's Job::canonicalize fills [\"*\"] at parse; Nomad's api leaves it null and its \
         server fills [\"*\"] at register",
    ),
    (
        "TaskGroups[*].Tasks[*].KillSignal",
        "Caravan's Job::canonicalize gives raw_exec tasks SIGINT at parse; Nomad's api leaves \
         \"\" (its raw_exec driver sends SIGINT when none is set)",
    ),
    (
        "TaskGroups[*].Update",
        "Caravan's Job::canonicalize keeps update strategies on service groups only; Nomad's api \
         gives system groups the default strategy and batch groups the job's",
    ),
];

/// `null`, `[]` and `{}`: Nomad's api leaves empty lists and maps nil (JSON `null`), Caravan's
/// model writes them empty; a Go client reads both the same.
fn empty(v: &Json) -> bool {
    match v {
        Json::Null => true,
        Json::Array(a) => a.is_empty(),
        Json::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// The path with every index replaced by `[*]`, to match [`KNOWN`].
fn pattern(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push_str("[*]");
            }
            ']' => in_index = false,
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// Every path where `want` and `got` differ: a missing or extra key, a different value.
fn diff(path: &str, want: &Json, got: &Json, out: &mut Vec<String>) {
    if empty(want) && empty(got) {
        return;
    }
    match (want, got) {
        (Json::Object(w), Json::Object(g)) => {
            for (k, wv) in w {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match g.get(k) {
                    Some(gv) => diff(&p, wv, gv, out),
                    None if empty(wv) => {}
                    None => out.push(format!("{p}: missing, Nomad gives {wv}")),
                }
            }
            for (k, gv) in g {
                if !w.contains_key(k) && !empty(gv) {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    out.push(format!("{p}: not in Nomad's output, got {gv}"));
                }
            }
        }
        (Json::Array(w), Json::Array(g)) => {
            for (i, wv) in w.iter().enumerate() {
                match g.get(i) {
                    Some(gv) => diff(&format!("{path}[{i}]"), wv, gv, out),
                    None => out.push(format!("{path}[{i}]: missing, Nomad gives {wv}")),
                }
            }
            for (i, gv) in g.iter().enumerate().skip(w.len()) {
                out.push(format!("{path}[{i}]: not in Nomad's output, got {gv}"));
            }
        }
        _ if want == got => {}
        _ => out.push(format!("{path}: Nomad gives {want}, got {got}")),
    }
}

/// Pretty JSON with sorted keys (serde_json's map is a BTreeMap), so diffs read well.
fn pretty(v: &Json) -> String {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    s
}

#[test]
fn golden_canonical_json() {
    let Some(root) = corpus_dir() else {
        println!("SKIPPED: ../shared/corpus not found");
        return;
    };
    let dir = root.join("jobspecs");
    let update = std::env::var_os("GOLDEN_UPDATE").is_some();
    let mut failures = Vec::new();
    for (name, _covers) in GOLDEN {
        let src = std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("corpus file {name}: {e}"));
        let inputs = VarInputs {
            fs_base_dir: Some(dir.clone()),
            ..Default::default()
        };
        let mut job = match parse_hcl(&src, name, &inputs) {
            Ok(job) => job,
            Err(e) => {
                failures.push(format!("{name}: does not parse: {e}"));
                continue;
            }
        };
        job.canonicalize();
        let got = serde_json::to_value(&job).expect("a job serialises");
        let expected_path = golden_dir().join(format!("{name}.json"));
        if update {
            std::fs::write(&expected_path, pretty(&got)).expect("write golden file");
            continue;
        }
        let want: Json = match std::fs::read_to_string(&expected_path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: expected file {expected_path:?}: {e}"));
                continue;
            }
        };
        let mut diffs = Vec::new();
        diff("", &want, &got, &mut diffs);
        for d in diffs {
            let at = pattern(d.split(':').next().unwrap_or_default());
            match KNOWN.iter().find(|(p, _)| *p == at) {
                Some((_, why)) => println!("known difference: {name}: {d} ({why})"),
                None => failures.push(format!("{name}: {d}")),
            }
        }
    }
    assert!(
        GOLDEN.len() >= 30,
        "the golden set must hold at least 30 files"
    );
    assert!(
        failures.is_empty(),
        "{} differences from Nomad's canonical JSON:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn diff_treats_null_and_empty_alike() {
    let want = serde_json::json!({"Meta": null, "Tags": null, "X": 1});
    let got = serde_json::json!({"Meta": {}, "X": 1, "Extra": []});
    let mut out = Vec::new();
    diff("", &want, &got, &mut out);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(pattern("TaskGroups[12].Update.X"), "TaskGroups[*].Update.X");
}

#[test]
fn diff_names_the_field_path() {
    let want = serde_json::json!({"TaskGroups": [{"Tasks": [{"Resources": {"CPU": 100}}]}]});
    let got = serde_json::json!({"TaskGroups": [{"Tasks": [{"Resources": {"CPU": 500, "X": 1}}]}]});
    let mut out = Vec::new();
    diff("", &want, &got, &mut out);
    assert_eq!(
        out,
        vec![
            "TaskGroups[0].Tasks[0].Resources.CPU: Nomad gives 100, got 500".to_string(),
            "TaskGroups[0].Tasks[0].Resources.X: not in Nomad's output, got 1".to_string(),
        ]
    );
}
