//! Nomad's defaults for partly written blocks, applied field by field before the job becomes a
//! [`caravan_structs::Job`] (as Nomad's `api` package does in `Job.Canonicalize`): a group's
//! `restart` fills the rest from the job type's default, a task's from its group's; `update`,
//! `reschedule` and `migrate` take the job's block under the group's, then the defaults. Serde
//! alone would fill a missing field from one fixed default whatever the job type, and would not
//! inherit from the job or group at all. The other blocks get the defaults of their own
//! `Canonicalize` methods (spread and affinity weight, device count, NUMA affinity, volume
//! mounts, CSI plugin, disconnect, vault, consul, periodic, multiregion, sidecar task, gateway
//! proxy), checked by the golden tests in `tests/golden.rs`.

use caravan_structs::time::{MINUTE, SECOND};
use caravan_structs::{ReschedulePolicy, RestartPolicy, UpdateStrategy};
use serde_json::{json, Map, Value as Json};

type JsonMap = Map<String, Json>;

/// Fills in every key of `base` that `over` does not set (a null counts as not set).
fn merge(base: &Json, over: Option<&Json>) -> Json {
    let mut out = match base {
        Json::Object(m) => m.clone(),
        _ => JsonMap::new(),
    };
    if let Some(Json::Object(o)) = over {
        for (k, v) in o {
            if !v.is_null() {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Json::Object(out)
}

fn restart_json(r: &RestartPolicy) -> Json {
    serde_json::to_value(r).unwrap_or(Json::Null)
}

fn reschedule_json(r: &ReschedulePolicy) -> Json {
    serde_json::to_value(r).unwrap_or(Json::Null)
}

fn update_json(u: &UpdateStrategy) -> Json {
    serde_json::to_value(u).unwrap_or(Json::Null)
}

/// Nomad's migrate defaults (`api.DefaultMigrateStrategy`).
fn default_migrate() -> Json {
    json!({
        "MaxParallel": 1,
        "HealthCheck": "checks",
        "MinHealthyTime": 10 * SECOND,
        "HealthyDeadline": 5 * MINUTE,
    })
}

/// Applies the defaults to the job's groups and tasks, in the API's JSON form.
pub(crate) fn apply(job: &mut JsonMap) {
    let job_type = job
        .get("Type")
        .and_then(Json::as_str)
        .filter(|t| !t.is_empty())
        .unwrap_or("service")
        .to_string();
    job_defaults(job, &job_type);
    let job_update = job.get("Update").filter(|v| v.is_object()).cloned();
    let job_reschedule = job.get("Reschedule").filter(|v| v.is_object()).cloned();
    let job_migrate = job.get("Migrate").filter(|v| v.is_object()).cloned();
    let restart_default = restart_json(&RestartPolicy::default_for(match job_type.as_str() {
        "service" | "system" => "service",
        _ => "batch",
    }));
    let reschedule_default = ReschedulePolicy::default_for(&job_type).map(|r| reschedule_json(&r));
    let job_name = job
        .get("Name")
        .or_else(|| job.get("ID"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let job_consul_ns = job
        .get("ConsulNamespace")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(Json::Array(groups)) = job.get_mut("TaskGroups") else {
        return;
    };
    for g in groups.iter_mut() {
        let Json::Object(g) = g else { continue };
        let group_name = g
            .get("Name")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        group_defaults(g, &job_consul_ns);

        // count: from the scaling block's min when not written; the policy's own defaults.
        let scaling_min = g
            .get("Scaling")
            .and_then(|s| s.get("Min"))
            .and_then(Json::as_i64);
        if g.get("Count").is_none_or(Json::is_null) {
            g.insert("Count".into(), json!(scaling_min.unwrap_or(1)));
        }
        let count = g.get("Count").and_then(Json::as_i64).unwrap_or(1);
        if let Some(Json::Object(s)) = g.get_mut("Scaling") {
            fill(
                s,
                json!({"Enabled": true, "Min": count, "Type": "horizontal"}),
            );
        }
        if let Some(Json::Array(services)) = g.get_mut("Services") {
            for s in services.iter_mut() {
                if let Json::Object(s) = s {
                    service_defaults(s, &format!("{job_name}-{group_name}"));
                }
            }
        }

        // update: the job's block under the group's, then Nomad's defaults.
        let update = match (&job_update, g.get("Update").filter(|v| v.is_object())) {
            (Some(j), Some(gu)) => Some(merge(j, Some(gu))),
            (Some(j), None) => Some(j.clone()),
            (None, Some(gu)) => Some(gu.clone()),
            (None, None) => None,
        };
        if let Some(u) = update {
            g.insert(
                "Update".into(),
                merge(&update_json(&UpdateStrategy::default()), Some(&u)),
            );
        }

        // reschedule: the job's under the group's; system jobs have none by default.
        let resched = match (
            &job_reschedule,
            g.get("ReschedulePolicy").filter(|v| v.is_object()),
        ) {
            (Some(j), Some(gr)) => Some(merge(j, Some(gr))),
            (Some(j), None) => Some(j.clone()),
            (None, Some(gr)) => Some(gr.clone()),
            (None, None) => reschedule_default.clone(),
        };
        if let Some(r) = resched {
            let full = match &reschedule_default {
                Some(d) => merge(d, Some(&r)),
                None => r,
            };
            g.insert("ReschedulePolicy".into(), full);
        }

        // migrate: the job's under the group's; service groups always get one.
        let migrate = match (&job_migrate, g.get("Migrate").filter(|v| v.is_object())) {
            (Some(j), Some(gm)) => Some(merge(j, Some(gm))),
            (Some(j), None) => Some(j.clone()),
            (None, Some(gm)) => Some(gm.clone()),
            (None, None) if job_type == "service" => Some(json!({})),
            (None, None) => None,
        };
        if let Some(m) = migrate {
            g.insert("Migrate".into(), merge(&default_migrate(), Some(&m)));
        }

        // restart: the job type's default under the group's, then the group's under each task's.
        let group_restart = merge(&restart_default, g.get("RestartPolicy"));
        g.insert("RestartPolicy".into(), group_restart.clone());
        if let Some(Json::Array(tasks)) = g.get_mut("Tasks") {
            for t in tasks.iter_mut() {
                let Json::Object(t) = t else { continue };
                let restart = merge(&group_restart, t.get("RestartPolicy"));
                t.insert("RestartPolicy".into(), restart);
                task_defaults(t);
                let task_name = t
                    .get("Name")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_string();
                if let Some(Json::Array(services)) = t.get_mut("Services") {
                    for s in services.iter_mut() {
                        if let Json::Object(s) = s {
                            service_defaults(s, &format!("{job_name}-{group_name}-{task_name}"));
                        }
                    }
                }
                // A task that reserves cores gets no default CPU shares.
                if let Some(Json::Object(r)) = t.get_mut("Resources") {
                    let cores = r.get("Cores").and_then(Json::as_i64).unwrap_or(0);
                    if cores > 0 && r.get("CPU").is_none_or(Json::is_null) {
                        r.insert("CPU".into(), json!(0));
                    }
                }
            }
        }
    }
}

/// Fills each key of `defaults` that `m` lacks (or holds as null).
fn fill(m: &mut JsonMap, defaults: Json) {
    if let Json::Object(d) = defaults {
        for (k, v) in d {
            match m.get(&k) {
                Some(x) if !x.is_null() => {}
                _ => {
                    m.insert(k, v);
                }
            }
        }
    }
}

/// A service's defaults (`api.Service.Canonicalize`): its name from job, group and task,
/// address mode, update behaviour, provider and cluster; each check inherits the service's
/// `on_update` and `check_restart` (whose grace defaults to 1s).
fn service_defaults(s: &mut JsonMap, default_name: &str) {
    if s.get("Name")
        .and_then(Json::as_str)
        .is_none_or(str::is_empty)
    {
        s.insert("Name".into(), json!(default_name));
    }
    for (k, v) in [
        ("AddressMode", "auto"),
        ("OnUpdate", "require_healthy"),
        ("Provider", "consul"),
        ("Cluster", "default"),
    ] {
        if s.get(k).and_then(Json::as_str).is_none_or(str::is_empty) {
            s.insert(k.into(), json!(v));
        }
    }
    if let Some(Json::Object(w)) = s.get_mut("Weights") {
        for k in ["Passing", "Warning"] {
            if w.get(k).and_then(Json::as_i64).is_none_or(|n| n <= 0) {
                w.insert(k.into(), json!(1));
            }
        }
    }
    if let Some(Json::Object(c)) = s.get_mut("Connect") {
        connect_defaults(c);
    }
    let on_update = s.get("OnUpdate").cloned().unwrap_or(Json::Null);
    let service_restart = s.get("CheckRestart").filter(|v| v.is_object()).cloned();
    if let Some(Json::Array(checks)) = s.get_mut("Checks") {
        for c in checks.iter_mut() {
            let Json::Object(c) = c else { continue };
            if c.get("OnUpdate")
                .and_then(Json::as_str)
                .is_none_or(str::is_empty)
            {
                c.insert("OnUpdate".into(), on_update.clone());
            }
            let own = c.get("CheckRestart").filter(|v| v.is_object()).cloned();
            let merged = match (&service_restart, own) {
                (Some(sr), own) => Some(merge(sr, own.as_ref())),
                (None, Some(own)) => Some(own),
                (None, None) => None,
            };
            if let Some(Json::Object(mut r)) = merged {
                fill(&mut r, json!({"Grace": SECOND}));
                c.insert("CheckRestart".into(), Json::Object(r));
            }
        }
    }
}

/// Nomad's defaults inside a task: templates, change scripts, artifacts, vault (jobspec2's
/// normalize step and the `api` package's Canonicalize), and the default identity moved out
/// of the list.
fn task_defaults(t: &mut JsonMap) {
    if let Some(Json::Array(templates)) = t.get_mut("Templates") {
        for tpl in templates.iter_mut() {
            let Json::Object(tpl) = tpl else { continue };
            fill(
                tpl,
                json!({
                    "SourcePath": "", "DestPath": "", "EmbeddedTmpl": "",
                    "ChangeMode": "restart", "Once": false, "Splay": 5 * SECOND,
                    "Perms": "0644", "LeftDelim": "{{", "RightDelim": "}}",
                    "Envvars": false, "ErrMissingKey": false, "VaultGrace": 0,
                }),
            );
            let signal = match tpl.get("ChangeSignal").and_then(Json::as_str) {
                Some(s) => s.to_uppercase(),
                None if tpl.get("ChangeMode").and_then(Json::as_str) == Some("signal") => {
                    "SIGHUP".into()
                }
                None => String::new(),
            };
            tpl.insert("ChangeSignal".into(), Json::String(signal));
            if let Some(Json::Object(cs)) = tpl.get_mut("ChangeScript") {
                fill(
                    cs,
                    json!({"Command": "", "Args": [], "Timeout": 5 * SECOND, "FailOnError": false, "RunOnFirstRender": false}),
                );
            }
        }
    }
    if let Some(Json::Array(artifacts)) = t.get_mut("Artifacts") {
        for a in artifacts.iter_mut() {
            let Json::Object(a) = a else { continue };
            fill(
                a,
                json!({"GetterMode": "any", "GetterInsecure": false, "GetterSource": ""}),
            );
            if a.get("RelativeDest").is_none_or(Json::is_null) {
                let dest = if a.get("GetterMode").and_then(Json::as_str) == Some("file") {
                    let src = a.get("GetterSource").and_then(Json::as_str).unwrap_or("");
                    local_file_dest(src)
                } else {
                    "local/".to_string()
                };
                a.insert("RelativeDest".into(), Json::String(dest));
            }
        }
    }
    if let Some(Json::Object(v)) = t.get_mut("Vault") {
        fill(
            v,
            json!({
                "Env": true, "DisableFile": false, "ChangeMode": "restart", "Namespace": "",
                "ChangeSignal": "SIGHUP", "AllowTokenExpiration": false,
            }),
        );
        if v.get("Cluster")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            v.insert("Cluster".into(), json!("default"));
        }
    }
    match t.get_mut("Resources") {
        Some(Json::Object(r)) => resources_defaults(r),
        _ => {
            t.insert(
                "Resources".into(),
                json!({"CPU": 100, "Cores": 0, "MemoryMB": 300}),
            );
        }
    }
    volume_mounts(t.get_mut("VolumeMounts"));
    weights(t.get_mut("Affinities"));
    if let Some(Json::Object(c)) = t.get_mut("Consul") {
        consul_cluster(c);
    }
    if let Some(Json::Object(c)) = t.get_mut("CSIPluginConfig") {
        for (k, v) in [("MountDir", "/csi"), ("StagePublishBaseDir", "/local/csi")] {
            if c.get(k).and_then(Json::as_str).is_none_or(str::is_empty) {
                c.insert(k.into(), json!(v));
            }
        }
        if c.get("HealthTimeout")
            .and_then(Json::as_i64)
            .is_none_or(|n| n == 0)
        {
            c.insert("HealthTimeout".into(), json!(30 * SECOND));
        }
    }
    if let Some(Json::Array(ids)) = t.get_mut("Identities") {
        let default = ids.iter().position(|i| {
            matches!(
                i.get("Name").and_then(Json::as_str),
                None | Some("") | Some("default")
            )
        });
        if let Some(i) = default {
            let id = ids.remove(i);
            t.insert("Identity".into(), id);
        }
    }
}

/// `filepath.Join("local", path.Base(source))`, Nomad's destination for a `mode = "file"`
/// artifact: the last element of the source with trailing slashes dropped, `local` alone when
/// that is empty, `.` or `/`.
fn local_file_dest(source: &str) -> String {
    let trimmed = source.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or(trimmed);
    match base {
        "" | "." => "local".to_string(),
        ".." => ".".to_string(),
        b => format!("local/{b}"),
    }
}

/// Nomad's `UpdateStrategy` defaults (`api.DefaultUpdateStrategy`).
fn default_update() -> Json {
    update_json(&UpdateStrategy::default())
}

/// Job-level defaults of `api.Job.Canonicalize`: service and system jobs get the default
/// update strategy when they have none (and every group of theirs inherits it), a partial one
/// is completed; periodic, multiregion, spreads and affinities get their defaults.
fn job_defaults(job: &mut JsonMap, job_type: &str) {
    match job.get("Update") {
        Some(u) if u.is_object() => {
            let full = merge(&default_update(), Some(u));
            job.insert("Update".into(), full);
        }
        _ if job_type == "service" || job_type == "system" => {
            job.insert("Update".into(), default_update());
        }
        _ => {}
    }
    if let Some(Json::Object(p)) = job.get_mut("Periodic") {
        fill(
            p,
            json!({"Enabled": true, "Spec": "", "Specs": [], "SpecType": "cron", "ProhibitOverlap": false}),
        );
        if p.get("TimeZone")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            p.insert("TimeZone".into(), json!("UTC"));
        }
    }
    if let Some(Json::Object(m)) = job.get_mut("Multiregion") {
        match m.get_mut("Strategy") {
            Some(Json::Object(st)) => fill(st, json!({"MaxParallel": 0, "OnFailure": ""})),
            _ => {
                m.insert(
                    "Strategy".into(),
                    json!({"MaxParallel": 0, "OnFailure": ""}),
                );
            }
        }
        match m.get_mut("Regions") {
            Some(Json::Array(regions)) => {
                for r in regions.iter_mut() {
                    if let Json::Object(r) = r {
                        fill(r, json!({"Count": 1, "Datacenters": [], "Meta": {}}));
                    }
                }
            }
            _ => {
                m.insert("Regions".into(), json!([]));
            }
        }
    }
    weights(job.get_mut("Spreads"));
    weights(job.get_mut("Affinities"));
}

/// Gives every affinity or spread in the list without a weight Nomad's 50.
fn weights(list: Option<&mut Json>) {
    if let Some(Json::Array(items)) = list {
        for i in items.iter_mut() {
            if let Json::Object(i) = i {
                fill(i, json!({"Weight": 50}));
            }
        }
    }
}

/// Group-level defaults of `api.TaskGroup.Canonicalize` beside the inherited policies:
/// ephemeral disk, consul (namespace from the job's, cluster), disconnect, spreads and
/// affinities.
fn group_defaults(g: &mut JsonMap, job_consul_ns: &str) {
    match g.get_mut("EphemeralDisk") {
        Some(Json::Object(d)) => fill(d, json!({"Sticky": false, "Migrate": false, "SizeMB": 300})),
        _ => {
            g.insert(
                "EphemeralDisk".into(),
                json!({"Sticky": false, "Migrate": false, "SizeMB": 300}),
            );
        }
    }
    if let Some(Json::Object(c)) = g.get_mut("Consul") {
        if c.get("Namespace")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            c.insert("Namespace".into(), json!(job_consul_ns));
        }
        consul_cluster(c);
    }
    if let Some(Json::Object(d)) = g.get_mut("Disconnect") {
        fill(d, json!({"Replace": true, "Reconcile": "best_score"}));
    }
    weights(g.get_mut("Spreads"));
    weights(g.get_mut("Affinities"));
}

fn consul_cluster(c: &mut JsonMap) {
    if c.get("Cluster")
        .and_then(Json::as_str)
        .is_none_or(str::is_empty)
    {
        c.insert("Cluster".into(), json!("default"));
    }
}

/// `api.Resources.Canonicalize`: CPU 100 and memory 300 MB unless written (no default CPU
/// when cores are reserved), each device's count 1 and its affinities' weight 50, a NUMA
/// block's affinity `none`.
fn resources_defaults(r: &mut JsonMap) {
    let cores = r.get("Cores").filter(|v| !v.is_null()).cloned();
    if cores.is_none() {
        r.insert("Cores".into(), json!(0));
        if r.get("CPU").is_none_or(Json::is_null) {
            r.insert("CPU".into(), json!(100));
        }
    }
    fill(r, json!({"CPU": 0, "MemoryMB": 300}));
    if let Some(Json::Array(devices)) = r.get_mut("Devices") {
        for d in devices.iter_mut() {
            if let Json::Object(d) = d {
                fill(d, json!({"Count": 1}));
                weights(d.get_mut("Affinities"));
            }
        }
    }
    if let Some(Json::Object(n)) = r.get_mut("NUMA") {
        if n.get("Affinity")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            n.insert("Affinity".into(), json!("none"));
        }
    }
}

/// `api.VolumeMount.Canonicalize`.
fn volume_mounts(list: Option<&mut Json>) {
    if let Some(Json::Array(vms)) = list {
        for vm in vms.iter_mut() {
            if let Json::Object(vm) = vm {
                fill(
                    vm,
                    json!({"PropagationMode": "private", "ReadOnly": false, "SELinuxLabel": ""}),
                );
            }
        }
    }
}

/// `api.ConsulConnect.Canonicalize`: the sidecar task's resources, logs, kill timeout and
/// shutdown delay, a gateway proxy's connect timeout (5s).
fn connect_defaults(c: &mut JsonMap) {
    if let Some(Json::Object(st)) = c.get_mut("SidecarTask") {
        match st.get_mut("Resources") {
            Some(Json::Object(r)) => resources_defaults(r),
            _ => {
                st.insert(
                    "Resources".into(),
                    json!({"CPU": 100, "Cores": 0, "MemoryMB": 300}),
                );
            }
        }
        match st.get_mut("LogConfig") {
            Some(Json::Object(l)) => fill(
                l,
                json!({"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": false}),
            ),
            _ => {
                st.insert(
                    "LogConfig".into(),
                    json!({"MaxFiles": 10, "MaxFileSizeMB": 10, "Disabled": false}),
                );
            }
        }
        fill(st, json!({"KillTimeout": 5 * SECOND, "ShutdownDelay": 0}));
        volume_mounts(st.get_mut("VolumeMounts"));
    }
    if let Some(Json::Object(gw)) = c.get_mut("Gateway") {
        if let Some(Json::Object(p)) = gw.get_mut("Proxy") {
            fill(p, json!({"ConnectTimeout": 5 * SECOND}));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_blocks_inherit_field_by_field() {
        let mut job = json!({
            "Type": "batch",
            "Reschedule": { "Attempts": 5 },
            "TaskGroups": [{
                "RestartPolicy": { "Attempts": 7 },
                "ReschedulePolicy": { "Delay": 1 },
                "Tasks": [{ "RestartPolicy": { "Mode": "delay" } }]
            }]
        });
        let Json::Object(m) = &mut job else { panic!() };
        apply(m);
        let g = &job["TaskGroups"][0];
        // Batch default interval (24h), the group's attempts.
        assert_eq!(g["RestartPolicy"]["Interval"], json!(24 * 60 * MINUTE));
        assert_eq!(g["RestartPolicy"]["Attempts"], json!(7));
        // The task keeps its mode and takes the rest from the group.
        assert_eq!(g["Tasks"][0]["RestartPolicy"]["Attempts"], json!(7));
        assert_eq!(g["Tasks"][0]["RestartPolicy"]["Mode"], json!("delay"));
        // Job reschedule under the group's, batch defaults under both.
        assert_eq!(g["ReschedulePolicy"]["Attempts"], json!(5));
        assert_eq!(g["ReschedulePolicy"]["Delay"], json!(1));
        assert_eq!(g["ReschedulePolicy"]["DelayFunction"], json!("constant"));
        // Batch groups get no migrate block.
        assert!(g.get("Migrate").is_none());
    }

    #[test]
    fn file_artifact_destination_is_gos_base() {
        assert_eq!(local_file_dest("https://x.io/a/tool.tgz"), "local/tool.tgz");
        assert_eq!(local_file_dest("https://x.io/a/dir/"), "local/dir");
        assert_eq!(local_file_dest(""), "local");
        assert_eq!(local_file_dest("/"), "local");
    }

    #[test]
    fn blocks_get_their_canonicalize_defaults() {
        let mut job = json!({
            "Type": "system",
            "Spreads": [{ "Attribute": "${node.datacenter}" }],
            "Periodic": { "Spec": "@daily" },
            "TaskGroups": [{
                "Disconnect": { "LostAfter": 1 },
                "Consul": {},
                "Tasks": [{
                    "Vault": { "Policies": ["a"] },
                    "Resources": { "Cores": 2, "Devices": [{ "Name": "gpu" }], "NUMA": {} },
                    "VolumeMounts": [{ "Volume": "v" }],
                }]
            }]
        });
        let Json::Object(m) = &mut job else { panic!() };
        apply(m);
        assert_eq!(job["Spreads"][0]["Weight"], json!(50));
        assert_eq!(job["Periodic"]["Enabled"], json!(true));
        assert_eq!(job["Periodic"]["TimeZone"], json!("UTC"));
        // System jobs get the default update strategy, and their groups inherit it.
        assert_eq!(job["Update"]["MaxParallel"], json!(1));
        assert_eq!(
            job["TaskGroups"][0]["Update"]["Stagger"],
            json!(30 * SECOND)
        );
        let g = &job["TaskGroups"][0];
        assert_eq!(g["Disconnect"]["Replace"], json!(true));
        assert_eq!(g["Disconnect"]["Reconcile"], json!("best_score"));
        assert_eq!(g["Consul"]["Cluster"], json!("default"));
        let t = &g["Tasks"][0];
        assert_eq!(t["Vault"]["Cluster"], json!("default"));
        assert_eq!(t["Vault"]["ChangeSignal"], json!("SIGHUP"));
        assert_eq!(t["Resources"]["CPU"], json!(0));
        assert_eq!(t["Resources"]["Devices"][0]["Count"], json!(1));
        assert_eq!(t["Resources"]["NUMA"]["Affinity"], json!("none"));
        assert_eq!(t["VolumeMounts"][0]["PropagationMode"], json!("private"));
    }
}
