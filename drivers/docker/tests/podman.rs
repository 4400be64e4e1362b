//! The podman flavour and the dangling-container reaper against a real engine: Podman's
//! Docker-compatible service started by e2e/containers/podman-setup.sh (or the socket in
//! CARAVAN_TEST_DOCKER_SOCK), with the busybox image that script builds from busybox-static
//! (localhost/busybox:test). The reaper removes every unclaimed Caravan container, so the test
//! holds the engine's lock exclusively (see tests/common). Prints SKIPPED with why and returns
//! when no engine can be started (not root, no podman).

mod common;

use caravan_driver::Driver;
use caravan_driver_docker::DockerDriver;
use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_flavor_and_dangling_containers() {
    // Reaps every unclaimed Caravan container: no other test may have one meanwhile.
    let (sock, _lock) = engine_or_skip!(Kind::Podman, true);
    let d = DockerDriver::podman(
        json!({"socket_path": format!("unix://{sock}")})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d.name(), "podman");
    assert!(d
        .fingerprint()
        .await
        .attributes
        .contains_key("driver.podman.version"));
    let (cfg, _dirs) = task(
        "pod",
        json!({"image": IMAGE, "command": "/bin/sh", "working_dir": "/local",
               "args": ["-c", "pwd; sleep 300"], "tmpfs": ["/scratch"]}),
    );
    let h = d.start(cfg.clone()).await.unwrap();
    assert_eq!(h.driver, "podman");
    assert!(wait_for_file(&cfg.stdout_path, "/local")
        .await
        .starts_with("/local"));
    let id = state(&h).container_id;

    // A new podman driver that recovered nothing sees the container as dangling.
    let other = DockerDriver::podman(
        json!({"socket_path": format!("unix://{sock}")})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    // The docker driver on the same engine leaves the podman driver's containers alone.
    assert!(!driver(&sock)
        .remove_dangling(Duration::ZERO, true)
        .await
        .unwrap()
        .contains(&id));
    let dry = other.remove_dangling(Duration::ZERO, true).await.unwrap();
    assert!(dry.contains(&id), "{dry:?}");
    assert!(
        container_exists(&sock, &id).await,
        "dry run removes nothing"
    );
    // The driver that tracks it does not count it as dangling.
    assert!(!d
        .remove_dangling(Duration::ZERO, true)
        .await
        .unwrap()
        .contains(&id));
    assert!(other
        .remove_dangling(Duration::ZERO, false)
        .await
        .unwrap()
        .contains(&id));
    assert!(!container_exists(&sock, &id).await);
    let res = tokio::time::timeout(Duration::from_secs(30), d.wait(&cfg.id))
        .await
        .unwrap()
        .unwrap();
    assert!(res.err.is_some() || res.exit_code != 0, "{res:?}");
    d.destroy(&cfg.id, true).await.unwrap();
}
