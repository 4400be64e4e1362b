//! The docker driver's garbage collection against real engines (see tests/common): image GC
//! (`gc { image, image_delay }`) removes an image once no task uses it after the delay and
//! leaves it while one does; the dangling-container reaper (`gc { dangling_containers }`),
//! started by the driver's first fingerprint, removes a Caravan container no driver tracks and
//! leaves the driver's own. The reaper test holds the engine's lock exclusively.
//! Each test prints SKIPPED with why and returns when its engine cannot be started.

mod common;

use caravan_driver::Driver;
use caravan_driver_docker::{DockerDriver, DockerPluginConfig};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn configured(sock: &str, config: Value) -> DockerDriver {
    let mut m = config.as_object().unwrap().clone();
    m.insert("endpoint".into(), json!(format!("unix://{sock}")));
    DockerDriver::new(DockerPluginConfig::parse(&m).unwrap())
}

/// A tag of the busybox image that only this test uses.
async fn own_tag(sock: &str, name: &str) -> String {
    let repo = format!("localhost/caravan-gc-{name}");
    let tag = format!("{}", std::process::id());
    client(sock)
        .tag_image(
            IMAGE,
            Some(bollard::image::TagImageOptions {
                repo: repo.clone(),
                tag: tag.clone(),
            }),
        )
        .await
        .unwrap();
    format!("{repo}:{tag}")
}

async fn image_exists(sock: &str, image: &str) -> bool {
    client(sock).inspect_image(image).await.is_ok()
}

/// Waits (up to 30 s) until `cond` holds; false if it never did.
async fn eventually<F, Fut>(mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

fn sleeper(name: &str, image: &str) -> (caravan_driver::TaskConfig, Dirs) {
    task(
        name,
        json!({"image": image, "command": "/bin/sh", "args": ["-c", "sleep 300"]}),
    )
}

on_both_engines!(unused_images_are_removed_after_the_delay);
on_both_engines_reaping!(the_reaper_removes_dangling_containers_every_period);

async fn unused_images_are_removed_after_the_delay(sock: String) {
    let image = own_tag(&sock, "used").await;
    let d = configured(&sock, json!({"gc": {"image_delay": "1s"}}));
    let (a, _da) = sleeper("a", &image);
    let (b, _db) = sleeper("b", &image);
    d.start(a.clone()).await.unwrap();
    d.start(b.clone()).await.unwrap();
    d.destroy(&a.id, true).await.unwrap();
    // Twice the delay: a task still uses the image, so it stays.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        image_exists(&sock, &image).await,
        "removed while task b uses it"
    );
    d.destroy(&b.id, true).await.unwrap();
    assert!(
        eventually(|| async { !image_exists(&sock, &image).await }).await,
        "{image} still there after its last task went"
    );
    assert!(
        image_exists(&sock, IMAGE).await,
        "the image's other tags are left alone"
    );

    // gc { image = false }: kept.
    let image = own_tag(&sock, "kept").await;
    let d = configured(&sock, json!({"gc": {"image": false, "image_delay": "0s"}}));
    let (c, _dc) = sleeper("c", &image);
    d.start(c.clone()).await.unwrap();
    d.destroy(&c.id, true).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(image_exists(&sock, &image).await);
    let _ = client(&sock).remove_image(&image, None, None).await;
}

async fn the_reaper_removes_dangling_containers_every_period(sock: String) {
    // A container left behind: its driver goes away without destroying it.
    let gone = driver(&sock);
    let (orphan, _do) = sleeper("orphan", IMAGE);
    let orphan_id = state(&gone.start(orphan).await.unwrap()).container_id;
    drop(gone);

    // One the podman driver made on the same engine: not the docker driver's to reap.
    let podman = DockerDriver::podman(
        json!({"socket_path": format!("unix://{sock}")})
            .as_object()
            .unwrap(),
    )
    .unwrap();
    let (theirs, _dt) = sleeper("theirs", IMAGE);
    let theirs_id = state(&podman.start(theirs.clone()).await.unwrap()).container_id;

    let d = configured(
        &sock,
        json!({"gc": {"image": false, "dangling_containers": {"period": "1s", "creation_grace": "0s"}}}),
    );
    let (own, _down) = sleeper("own", IMAGE);
    let own_id = state(&d.start(own.clone()).await.unwrap()).container_id;
    assert!(d.fingerprint().await.healthy);
    assert!(
        eventually(|| async { !container_exists(&sock, &orphan_id).await }).await,
        "the dangling container {orphan_id} was not reaped"
    );
    assert!(
        container_exists(&sock, &own_id).await,
        "the driver's own container is not dangling"
    );
    assert!(
        container_exists(&sock, &theirs_id).await,
        "the podman driver's container is not the docker driver's to reap"
    );
    podman.destroy(&theirs.id, true).await.unwrap();
    d.destroy(&own.id, true).await.unwrap();
    drop(d); // its reaper stops with it

    // Switched off: nothing is reaped.
    let gone = driver(&sock);
    let (orphan, _do2) = sleeper("orphan2", IMAGE);
    let orphan_id = state(&gone.start(orphan).await.unwrap()).container_id;
    drop(gone);
    let off = configured(
        &sock,
        json!({"gc": {"image": false, "dangling_containers": {"enabled": false, "period": "1s", "creation_grace": "0s"}}}),
    );
    assert!(off.fingerprint().await.healthy);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(container_exists(&sock, &orphan_id).await);
    // (Containers an earlier failed run left behind are reaped too.)
    assert!(off
        .remove_dangling(Duration::ZERO, false)
        .await
        .unwrap()
        .contains(&orphan_id));
}
