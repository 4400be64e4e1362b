//! The client against Caravan's in-process Consul API test server: registration and TTL
//! checks, health filters, KV, blocking queries, watches, ACL tokens, the Unix socket transport
//! and TLS configuration errors.

use std::time::Duration;

use caravan_consul::{
    AgentCheckRegistration, AgentServiceCheck, AgentServiceRegistration, CheckStatus, ConsulClient,
    ConsulConfig, ConsulError, QueryOptions, WatchOptions, WriteOptions,
};
use caravan_consul_test_server::{
    spawn_for_test, spawn_for_test_with, spawn_unix_for_test, ServerConfig,
};

/// Upper bound that only turns a hang into a failure; never a timing assertion.
const HANG: Duration = Duration::from_secs(60);

fn client(addr: std::net::SocketAddr) -> ConsulClient {
    ConsulClient::new(ConsulConfig {
        address: format!("http://{addr}"),
        ..Default::default()
    })
    .unwrap()
}

fn w() -> WriteOptions {
    WriteOptions::default()
}

fn q() -> QueryOptions {
    QueryOptions::default()
}

fn web(id: &str, tags: &[&str]) -> AgentServiceRegistration {
    AgentServiceRegistration {
        id: Some(id.into()),
        name: "web".into(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        address: Some("10.0.0.5".into()),
        port: Some(8080),
        meta: [("version".to_string(), "1".to_string())].into(),
        check: Some(AgentServiceCheck {
            check_id: Some(format!("{id}-ttl")),
            ttl: Some(Duration::from_secs(300)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn ttl_check_drives_passing_filter() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    c.agent_service_register(&web("web-1", &["v1", "http"]), false, &w())
        .await
        .unwrap();

    let services = c.agent_services().await.unwrap();
    let s = &services["web-1"];
    assert_eq!(
        (s.service.as_str(), s.port, s.address.as_str()),
        ("web", 8080, "10.0.0.5")
    );
    assert_eq!(s.meta["version"], "1");

    // A new TTL check starts critical: hidden from ?passing, shown without it.
    let (healthy, _) = c.health_service("web", true, &q()).await.unwrap();
    assert!(healthy.is_empty());
    let (all, _) = c.health_service("web", false, &q()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].aggregated_status(), CheckStatus::Critical);

    c.agent_check_pass("web-1-ttl", "all good", &w())
        .await
        .unwrap();
    let (healthy, _) = c.health_service("web", true, &q()).await.unwrap();
    assert_eq!(healthy.len(), 1);
    assert_eq!(healthy[0].service.id, "web-1");
    assert_eq!(healthy[0].effective_address(), "10.0.0.5");
    let ttl = healthy[0]
        .checks
        .iter()
        .find(|c| c.check_id == "web-1-ttl")
        .unwrap();
    assert_eq!(
        (ttl.status.as_str(), ttl.output.as_str()),
        ("passing", "all good")
    );

    // Tag filters: all given tags must match.
    let tagged = QueryOptions {
        tags: vec!["v1".into(), "http".into()],
        ..q()
    };
    assert_eq!(
        c.health_service("web", true, &tagged)
            .await
            .unwrap()
            .0
            .len(),
        1
    );
    let other = QueryOptions {
        tags: vec!["v2".into()],
        ..q()
    };
    assert!(c
        .health_service("web", true, &other)
        .await
        .unwrap()
        .0
        .is_empty());
    assert_eq!(
        c.catalog_service("web", &tagged).await.unwrap().0[0].service_port,
        8080
    );

    c.agent_check_fail("web-1-ttl", "broken", &w())
        .await
        .unwrap();
    assert!(c
        .health_service("web", true, &q())
        .await
        .unwrap()
        .0
        .is_empty());

    c.agent_check_update("web-1-ttl", CheckStatus::Warning, "slow", &w())
        .await
        .unwrap();
    let (checks, _) = c.health_checks("web", &q()).await.unwrap();
    assert_eq!(
        (checks[0].status.as_str(), checks[0].output.as_str()),
        ("warning", "slow")
    );
    // ?passing hides warning too.
    assert!(c
        .health_service("web", true, &q())
        .await
        .unwrap()
        .0
        .is_empty());
    let (warning, _) = c.health_state("warning", &q()).await.unwrap();
    assert_eq!(warning.len(), 1);

    let (names, _) = c.catalog_services(&q()).await.unwrap();
    assert!(names["web"].contains(&"v1".to_string()));
    assert!(names.contains_key("consul"));

    c.agent_service_deregister("web-1", &w()).await.unwrap();
    assert!(c
        .health_service("web", false, &q())
        .await
        .unwrap()
        .0
        .is_empty());
    assert!(c.agent_checks().await.unwrap().is_empty());
    let err = c.agent_service_deregister("web-1", &w()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.to_string().contains("Unknown service ID"), "{err}");
}

#[tokio::test]
async fn standalone_checks_and_agent_info() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    c.agent_service_register(&web("web-2", &[]), false, &w())
        .await
        .unwrap();
    let reg = AgentCheckRegistration {
        id: Some("extra".into()),
        service_id: Some("web-2".into()),
        definition: AgentServiceCheck {
            name: Some("extra check".into()),
            ttl: Some(Duration::from_secs(60)),
            status: Some("passing".into()),
            ..Default::default()
        },
    };
    c.agent_check_register(&reg, &w()).await.unwrap();
    let checks = c.agent_checks().await.unwrap();
    assert_eq!(checks["extra"].status, "passing");
    assert_eq!(checks["extra"].service_name, "web");
    c.agent_check_deregister("extra", &w()).await.unwrap();
    assert!(!c.agent_checks().await.unwrap().contains_key("extra"));

    let me = c.agent_self().await.unwrap();
    assert_eq!(me.config.datacenter, "dc1");
    assert_eq!(
        c.agent_members(false).await.unwrap()[0].name,
        me.config.node_name
    );
    assert!(!c.status_leader().await.unwrap().is_empty());
    assert_eq!(c.status_peers().await.unwrap().len(), 1);
    let (nodes, _) = c.catalog_nodes(&q()).await.unwrap();
    assert_eq!(nodes[0].node, me.config.node_name);
    let (node, _) = c.catalog_node(&me.config.node_name, &q()).await.unwrap();
    assert!(node.unwrap().services.contains_key("web-2"));
}

#[tokio::test]
async fn kv_put_get_list_cas_delete() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    assert!(c.kv_get("app/missing", &q()).await.unwrap().0.is_none());
    assert!(c.kv_put("app/a", b"one", 42, &w()).await.unwrap());
    assert!(c.kv_put("app/dir/b", b"two", 0, &w()).await.unwrap());
    assert!(c.kv_put("other", b"x", 0, &w()).await.unwrap());

    let (a, meta) = c.kv_get("app/a", &q()).await.unwrap();
    let a = a.unwrap();
    assert_eq!((a.value.as_slice(), a.flags), (&b"one"[..], 42));
    assert!(meta.last_index >= a.modify_index && meta.known_leader);

    let (list, _) = c.kv_list("app/", &q()).await.unwrap();
    let keys: Vec<_> = list.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["app/a", "app/dir/b"]);
    assert_eq!(
        c.kv_keys("app/", Some("/"), &q()).await.unwrap().0,
        ["app/a", "app/dir/"]
    );
    assert_eq!(
        c.kv_keys("app/", None, &q()).await.unwrap().0,
        ["app/a", "app/dir/b"]
    );

    // Check-and-set: a stale index loses, the current one wins, 0 means "only if absent".
    assert!(!c
        .kv_cas("app/a", b"stale", 0, a.modify_index - 1, &w())
        .await
        .unwrap());
    assert!(c
        .kv_cas("app/a", b"fresh", 0, a.modify_index, &w())
        .await
        .unwrap());
    assert!(!c.kv_cas("app/a", b"again", 0, 0, &w()).await.unwrap());
    assert!(c.kv_cas("app/new", b"n", 0, 0, &w()).await.unwrap());
    assert_eq!(
        c.kv_get("app/a", &q())
            .await
            .unwrap()
            .0
            .unwrap()
            .value_str(),
        "fresh"
    );

    let current = c
        .kv_get("app/new", &q())
        .await
        .unwrap()
        .0
        .unwrap()
        .modify_index;
    assert!(!c
        .kv_delete_cas("app/new", current + 100, &w())
        .await
        .unwrap());
    assert!(c.kv_delete_cas("app/new", current, &w()).await.unwrap());

    assert!(c.kv_delete_tree("app/", &w()).await.unwrap());
    assert!(c.kv_list("app/", &q()).await.unwrap().0.is_empty());
    assert!(c.kv_get("other", &q()).await.unwrap().0.is_some());
    assert!(c.kv_delete("other", &w()).await.unwrap());
    assert!(c.kv_get("other", &q()).await.unwrap().0.is_none());
}

#[tokio::test]
async fn blocking_query_wakes_on_change_and_honours_wait() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    c.kv_put("cfg/x", b"1", 0, &w()).await.unwrap();
    let (_, meta) = c.kv_list("cfg/", &q()).await.unwrap();

    // Nothing changes: the query comes back after its wait with the same index.
    let short = QueryOptions {
        wait_index: meta.last_index,
        wait_time: Some(Duration::from_millis(200)),
        ..q()
    };
    let (same, again) = tokio::time::timeout(HANG, c.kv_list("cfg/", &short))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.last_index, meta.last_index);
    assert_eq!(same[0].value, b"1");

    // A write under the prefix releases a long blocking query.
    let long = QueryOptions {
        wait_index: meta.last_index,
        wait_time: Some(Duration::from_secs(300)),
        ..q()
    };
    let blocked = tokio::spawn({
        let c = c.clone();
        async move { c.kv_list("cfg/", &long).await }
    });
    tokio::task::yield_now().await;
    c.kv_put("cfg/x", b"2", 0, &w()).await.unwrap();
    let (list, after) = tokio::time::timeout(HANG, blocked)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(after.last_index > meta.last_index);
    assert_eq!(list[0].value, b"2");

    // Health queries block on their service too.
    c.agent_service_register(&web("web-3", &[]), false, &w())
        .await
        .unwrap();
    let (_, hm) = c.health_service("web", false, &q()).await.unwrap();
    let wait = QueryOptions {
        wait_index: hm.last_index,
        wait_time: Some(Duration::from_secs(300)),
        ..q()
    };
    let blocked = tokio::spawn({
        let c = c.clone();
        async move { c.health_service("web", true, &wait).await }
    });
    tokio::task::yield_now().await;
    c.agent_check_pass("web-3-ttl", "", &w()).await.unwrap();
    let (healthy, _) = tokio::time::timeout(HANG, blocked)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(healthy.len(), 1);
}

#[tokio::test]
async fn watches_deliver_changes() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    let opts = WatchOptions {
        wait: Duration::from_secs(300),
        ..Default::default()
    };
    let mut watch = c.watch_kv_prefix("tpl/", opts.clone());
    let first = tokio::time::timeout(HANG, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.value.is_empty());
    c.kv_put("tpl/a", b"hello", 0, &w()).await.unwrap();
    let second = tokio::time::timeout(HANG, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.value[0].value, b"hello");
    assert!(second.index > first.index);
    // A write elsewhere does not produce an update; the next one is our own change.
    c.kv_put("elsewhere", b"x", 0, &w()).await.unwrap();
    c.kv_put("tpl/a", b"bye", 0, &w()).await.unwrap();
    let third = tokio::time::timeout(HANG, watch.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(third.value[0].value, b"bye");

    let mut svc = c.watch_service("api", true, opts);
    assert!(tokio::time::timeout(HANG, svc.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .value
        .is_empty());
    let mut reg = web("api-1", &[]);
    reg.name = "api".into();
    reg.check.as_mut().unwrap().status = Some("passing".into());
    c.agent_service_register(&reg, false, &w()).await.unwrap();
    let up = tokio::time::timeout(HANG, svc.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(up.value[0].service.id, "api-1");
}

#[tokio::test]
async fn watch_reports_errors_and_keeps_going() {
    // Nothing listens on this port once the listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = ConsulClient::new(ConsulConfig {
        address: format!("127.0.0.1:{port}"),
        ..Default::default()
    })
    .unwrap();
    let opts = WatchOptions {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(20),
        ..Default::default()
    };
    let mut watch = c.watch_kv_key("k", opts);
    for _ in 0..2 {
        let err = tokio::time::timeout(HANG, watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert!(err.is_retryable());
        assert!(err.to_string().contains("cannot reach Consul"), "{err}");
    }
}

#[tokio::test]
async fn acl_token_is_sent_and_required() {
    let config = ServerConfig {
        acl_management_token: Some("s3cret".into()),
        ..Default::default()
    };
    let (addr, _server) = spawn_for_test_with(config).await.unwrap();
    let anonymous = client(addr);
    let err = anonymous.kv_put("k", b"v", 0, &w()).await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("ACL token"), "{err}");
    let with_token = ConsulClient::new(ConsulConfig {
        address: format!("http://{addr}"),
        token: Some("s3cret".into()),
        ..Default::default()
    })
    .unwrap();
    assert!(with_token.kv_put("k", b"v", 0, &w()).await.unwrap());
    // A per-request token overrides none.
    let per_request = QueryOptions {
        token: Some("s3cret".into()),
        ..q()
    };
    assert!(anonymous
        .kv_get("k", &per_request)
        .await
        .unwrap()
        .0
        .is_some());
}

#[tokio::test]
async fn datacenter_namespace_and_consistency_params_reach_consul() {
    let (addr, _server) = spawn_for_test().await.unwrap();
    let c = client(addr);
    let dc1 = QueryOptions {
        datacenter: Some("dc1".into()),
        consistency: caravan_consul::Consistency::Stale,
        ..q()
    };
    assert!(c.catalog_services(&dc1).await.is_ok());
    let dc9 = QueryOptions {
        datacenter: Some("dc9".into()),
        ..q()
    };
    let err = c.catalog_services(&dc9).await.unwrap_err();
    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("No path to datacenter"), "{err}");
    // This server acts like Consul CE: non-default namespaces are refused, which proves `ns`
    // is sent.
    let scoped = ConsulClient::new(ConsulConfig {
        address: format!("http://{addr}"),
        namespace: Some("team-a".into()),
        ..Default::default()
    })
    .unwrap();
    let err = scoped.kv_get("k", &q()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Namespaces are a Consul Enterprise feature"),
        "{err}"
    );
    let near = QueryOptions {
        near: Some("_agent".into()),
        consistency: caravan_consul::Consistency::Consistent,
        ..q()
    };
    assert!(
        c.health_service("consul", false, &near)
            .await
            .unwrap()
            .0
            .len()
            == 1
    );
}

#[tokio::test]
async fn unix_socket_transport() {
    let dir = std::env::temp_dir().join(format!("caravan-consul-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("consul.sock");
    let _ = std::fs::remove_file(&socket);
    let _server = spawn_unix_for_test(&socket, ServerConfig::default())
        .await
        .unwrap();
    let c = ConsulClient::new(ConsulConfig {
        address: format!("unix://{}", socket.display()),
        ..Default::default()
    })
    .unwrap();
    assert!(c.address().starts_with("unix:///"));
    assert!(c.kv_put("via/unix", b"yes", 0, &w()).await.unwrap());
    assert_eq!(
        c.kv_get("via/unix", &q()).await.unwrap().0.unwrap().value,
        b"yes"
    );
    c.agent_service_register(&web("web-u", &[]), false, &w())
        .await
        .unwrap();
    assert!(c.agent_services().await.unwrap().contains_key("web-u"));
    let err = c.agent_check_pass("nope", "", &w()).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    drop(_server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_configuration_errors_are_clear() {
    let missing = std::path::PathBuf::from("/nonexistent/caravan/ca.pem");
    let err = ConsulClient::new(ConsulConfig {
        address: "https://127.0.0.1:8501".into(),
        ca_file: Some(missing.clone()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, ConsulError::TlsFile { what: "CA", .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("/nonexistent/caravan/ca.pem"),
        "{err}"
    );

    let err = ConsulClient::new(ConsulConfig {
        address: "https://127.0.0.1:8501".into(),
        cert_file: Some("/nonexistent/cert.pem".into()),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("key_file is not"), "{err}");

    let dir = std::env::temp_dir().join(format!("caravan-consul-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("ca.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let err = ConsulClient::new(ConsulConfig {
        address: "https://127.0.0.1:8501".into(),
        ca_file: Some(garbage),
        ..Default::default()
    })
    .unwrap_err();
    assert!(matches!(err, ConsulError::TlsConfig(_)), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);

    let err = ConsulClient::new(ConsulConfig {
        address: "ftp://x:1".into(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("unsupported scheme"), "{err}");
}
