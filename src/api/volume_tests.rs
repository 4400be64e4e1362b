//! Host volumes and sticky ephemeral disks through a real in-process agent: an exec task
//! reads and writes its host volume (read-only mounts stay read-only), drivers that cannot
//! mount refuse, placement explains a missing volume, and a sticky disk's data survives a
//! destructive update.

use super::tests::{start_with, start_with_drivers, TestAgent};
use crate::client::{ClientConfig, HostVolumeConfig};
use crate::server::ServerConfig;
use crate::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn volume_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("caravan-vol-{tag}-{}", caravan_structs::new_id()));
    std::fs::create_dir_all(&d).expect("volume dir");
    d
}

fn with_volumes(vols: &[(&str, &PathBuf, bool)]) -> ClientConfig {
    let mut host_volumes = BTreeMap::new();
    for (name, path, read_only) in vols {
        host_volumes.insert(
            name.to_string(),
            HostVolumeConfig {
                path: (*path).clone(),
                read_only: *read_only,
            },
        );
    }
    ClientConfig {
        host_volumes,
        ..Default::default()
    }
}

fn volume_job(id: &str, driver: &str, script: &str, source: &str) -> Value {
    json!({"Job": {"ID": id, "Type": "batch", "TaskGroups": [{
        "Name": "g",
        "RestartPolicy": {"Attempts": 0, "Mode": "fail"},
        "ReschedulePolicy": {"Attempts": 0, "Unlimited": false},
        "Volumes": {
            "data": {"Name": "data", "Type": "host", "Source": source, "ReadOnly": false},
            "ro": {"Name": "ro", "Type": "host", "Source": source, "ReadOnly": true}
        },
        "Tasks": [{
            "Name": "t", "Driver": driver,
            "Config": {"command": "/bin/sh", "args": ["-c", script]},
            "VolumeMounts": [
                {"Volume": "data", "Destination": "/srv/data", "ReadOnly": false},
                {"Volume": "ro", "Destination": "/srv/ro", "ReadOnly": false}
            ],
            "Resources": {"CPU": 20, "MemoryMB": 32}
        }]
    }]}})
}

async fn task_events(a: &TestAgent, job: &str) -> String {
    a.allocs(job)
        .await
        .first()
        .map(|x| x["TaskStates"].to_string())
        .unwrap_or_default()
}

async fn stdout_of(a: &TestAgent, alloc: &str) -> String {
    let url = format!(
        "{}/v1/client/fs/logs/{alloc}?task=t&type=stdout&plain=true",
        a.base
    );
    match a.http.get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_task_reads_and_writes_its_host_volume() {
    if !nix::unistd::Uid::effective().is_root() {
        println!(
            "SKIPPED an_exec_task_reads_and_writes_its_host_volume: the exec driver needs root"
        );
        return;
    }
    let dir = volume_dir("exec");
    std::fs::write(dir.join("in.txt"), "hello-volume\n").expect("seed");
    // Exec tasks run as nobody.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let a = start_with_drivers(
        1,
        ServerConfig::default(),
        with_volumes(&[("shared", &dir, false)]),
        || {
            vec![Arc::new(caravan_driver_exec::ExecDriver::new(
                caravan_driver_exec::ExecDriverConfig::default(),
            ))]
        },
    )
    .await;
    let script = "cat /srv/data/in.txt; echo written > /srv/data/out.txt; \
                  (echo x > /srv/ro/nope) 2>/dev/null || echo denied-ro";
    let (code, body) = a
        .put("/v1/jobs", &volume_job("vol", "exec", script, "shared"))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .allocs("vol")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "complete" || x["ClientStatus"] == "failed")
        .unwrap_or(false));
    let alloc = a.allocs("vol").await[0].clone();
    assert_eq!(
        alloc["ClientStatus"],
        "complete",
        "{}",
        task_events(&a, "vol").await
    );
    let id = alloc["ID"].as_str().unwrap_or_default().to_string();
    let out = stdout_of(&a, &id).await;
    assert!(out.contains("hello-volume"), "{out}");
    assert!(
        out.contains("denied-ro"),
        "the read-only mount was writable: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("out.txt")).ok().as_deref(),
        Some("written\n")
    );
    assert!(!dir.join("nope").exists());
    drop(a);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_are_refused_where_they_cannot_work() {
    let dir = volume_dir("refuse");
    let a = start_with(
        1,
        ServerConfig::default(),
        with_volumes(&[("shared", &dir, false)]),
    )
    .await;
    // raw_exec cannot mount: the task fails and says why.
    let (code, body) = a
        .put("/v1/jobs", &volume_job("raw", "raw_exec", "true", "shared"))
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .allocs("raw")
        .await
        .first()
        .map(|x| x["ClientStatus"] == "failed")
        .unwrap_or(false));
    let events = task_events(&a, "raw").await;
    assert!(events.contains("does not support host volumes"), "{events}");

    // No node has the volume: placement explains it.
    let (code, body) = a
        .put(
            "/v1/jobs",
            &volume_job("missing", "raw_exec", "true", "nope"),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // The evaluation that failed placement (a blocked one follows it and may list first).
    let failed_of = |evals: Value| {
        evals
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|e| !e["FailedTGAllocs"]["g"].is_null())
                    .cloned()
            })
            .map(|e| e["FailedTGAllocs"]["g"].to_string())
    };
    wait_for!(failed_of(a.get("/v1/job/missing/evaluations").await).is_some());
    let failed = failed_of(a.get("/v1/job/missing/evaluations").await).unwrap_or_default();
    assert!(
        failed.contains("missing compatible host volumes"),
        "{failed}"
    );

    // A mount of an undefined volume, or a CSI volume, is refused at submit.
    let mut bad = volume_job("bad", "raw_exec", "true", "shared");
    bad["Job"]["TaskGroups"][0]["Tasks"][0]["VolumeMounts"][0]["Volume"] = json!("ghost");
    let (code, body) = a.put("/v1/jobs", &bad).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("undefined volume \"ghost\""), "{body}");
    let mut csi = volume_job("csi", "raw_exec", "true", "shared");
    csi["Job"]["TaskGroups"][0]["Volumes"]["data"]["Type"] = json!("csi");
    let (code, body) = a.put("/v1/jobs", &csi).await;
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("only host volumes"), "{body}");
    assert!(a.get("/v1/job/bad").await.is_null() && a.get("/v1/job/csi").await.is_null());
    drop(a);
    let _ = std::fs::remove_dir_all(dir);
}

fn sticky_job(round: u32) -> Value {
    json!({"Job": {"ID": "sticky", "TaskGroups": [{
        "Name": "g",
        "EphemeralDisk": {"Sticky": true, "SizeMB": 100},
        "Update": {"MaxParallel": 1, "MinHealthyTime": 0, "HealthyDeadline": 10_000_000_000i64},
        "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Env": {"ROUND": round.to_string()},
            "Config": {"command": "/bin/sh", "args": ["-c",
                "n=$(cat $NOMAD_ALLOC_DIR/data/n 2>/dev/null || echo 0); echo $((n+1)) > $NOMAD_ALLOC_DIR/data/n; echo kept-$ROUND >> $NOMAD_TASK_DIR/history; exec sleep 600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16},
            "KillTimeout": 500_000_000
        }]
    }]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sticky_ephemeral_disk_survives_an_update() {
    let a = start_with(1, ServerConfig::default(), ClientConfig::default()).await;
    let (code, body) = a.put("/v1/jobs", &sticky_job(1)).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running("sticky").await.len() == 1);
    let first = a.running("sticky").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let data_dir = a.data_dir.join("n1").join("alloc");
    wait_for!(std::fs::read_to_string(data_dir.join(&first).join("alloc/data/n")).is_ok());

    // A destructive update (new env) replaces the allocation; its disk comes along.
    let (code, body) = a.put("/v1/jobs", &sticky_job(2)).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .running("sticky")
        .await
        .first()
        .map(|x| x["ID"] != first.as_str())
        .unwrap_or(false));
    let second = a.running("sticky").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let full = a.get(&format!("/v1/allocation/{second}")).await;
    assert_eq!(full["PreviousAllocation"], first.as_str());
    let n = data_dir.join(&second).join("alloc/data/n");
    wait_for!(std::fs::read_to_string(&n)
        .map(|s| s.trim() == "2")
        .unwrap_or(false));
    let history =
        std::fs::read_to_string(data_dir.join(&second).join("t/local/history")).unwrap_or_default();
    assert_eq!(history, "kept-1\nkept-2\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrating_ephemeral_disk_follows_its_allocation_to_another_node() {
    let a = start_with(2, ServerConfig::default(), ClientConfig::default()).await;
    let nodes = a.get("/v1/nodes").await;
    let id_of = |name: &str| {
        nodes
            .as_array()
            .and_then(|l| l.iter().find(|n| n["Name"] == name))
            .and_then(|n| n["ID"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let (n1, n2) = (id_of("n1"), id_of("n2"));
    let elig = |e: &str| json!({"Eligibility": e});
    let (code, _) = a
        .put(&format!("/v1/node/{n2}/eligibility"), &elig("ineligible"))
        .await;
    assert_eq!(code, 200);
    let job = json!({"Job": {"ID": "roamer", "TaskGroups": [{
        "Name": "g",
        "EphemeralDisk": {"Migrate": true, "SizeMB": 100},
        "Migrate": {"MaxParallel": 1, "HealthCheck": "task_states",
                    "MinHealthyTime": 0, "HealthyDeadline": 30_000_000_000i64},
        "Tasks": [{
            "Name": "t", "Driver": "raw_exec",
            "Config": {"command": "/bin/sh", "args": ["-c",
                "[ -f $NOMAD_ALLOC_DIR/data/seed ] || echo $NOMAD_ALLOC_ID > $NOMAD_ALLOC_DIR/data/seed; echo visit >> $NOMAD_TASK_DIR/visits; exec sleep 600"]},
            "Resources": {"CPU": 20, "MemoryMB": 16},
            "KillTimeout": 500_000_000
        }]
    }]}});
    let (code, body) = a.put("/v1/jobs", &job).await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a.running("roamer").await.len() == 1);
    let first = a.running("roamer").await[0].clone();
    assert_eq!(first["NodeID"], n1.as_str());
    let first_id = first["ID"].as_str().unwrap_or_default().to_string();
    let seed1 = a
        .data_dir
        .join("n1/alloc")
        .join(&first_id)
        .join("alloc/data/seed");
    wait_for!(std::fs::read_to_string(&seed1).is_ok());

    // Draining n1 moves the allocation to n2; its disk is fetched from n1 over HTTP.
    let (code, _) = a
        .put(&format!("/v1/node/{n2}/eligibility"), &elig("eligible"))
        .await;
    assert_eq!(code, 200);
    let (code, body) = a
        .put(
            &format!("/v1/node/{n1}/drain"),
            &json!({"DrainSpec": {"Deadline": 60_000_000_000i64}}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    wait_for!(a
        .running("roamer")
        .await
        .first()
        .map(|x| x["NodeID"] == n2.as_str())
        .unwrap_or(false));
    let second = a.running("roamer").await[0]["ID"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let full = a.get(&format!("/v1/allocation/{second}")).await;
    assert_eq!(full["PreviousAllocation"], first_id.as_str());
    let dir2 = a.data_dir.join("n2/alloc").join(&second);
    wait_for!(std::fs::read_to_string(dir2.join("t/local/visits"))
        .map(|s| s == "visit\nvisit\n")
        .unwrap_or(false));
    assert_eq!(
        std::fs::read_to_string(dir2.join("alloc/data/seed"))
            .unwrap_or_default()
            .trim(),
        first_id,
        "the seed written by the first allocation came along"
    );

    // The snapshot endpoint refuses what it does not run.
    let r = a
        .http
        .get(format!("{}/v1/client/allocation/nope/snapshot", a.base))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 404);
}
