//! The test server over raw HTTP: strict decoding with Consul's error texts, fixtures from
//! Consul's API docs, blocking-query headers, TTL expiry and TCP checks actually run.

use std::time::Duration;

use caravan_consul_test_server::spawn_for_test;
use serde_json::{json, Value};

const HANG: Duration = Duration::from_secs(60);

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn new() -> (Api, caravan_consul_test_server::TestServer) {
        let (addr, server) = spawn_for_test().await.unwrap();
        (
            Api {
                base: format!("http://{addr}"),
                http: reqwest::Client::new(),
            },
            server,
        )
    }

    async fn put(&self, path: &str, body: Value) -> (u16, String) {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, u64, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let index = r
            .headers()
            .get("x-consul-index")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (r.status().as_u16(), index, r.text().await.unwrap())
    }
}

#[tokio::test]
async fn rejects_what_consul_rejects() {
    let (api, _s) = Api::new().await;
    let (status, body) = api
        .put(
            "/v1/agent/service/register",
            json!({"Name": "web", "Prot": 80}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Request decode failed:") && body.contains("Prot"),
        "{body}"
    );
    let (status, body) = api
        .put("/v1/agent/service/register", json!({"Port": 80}))
        .await;
    assert_eq!((status, body.as_str()), (400, "Missing service name"));
    let (status, body) = api
        .put(
            "/v1/agent/service/register",
            json!({"Name": "web", "Check": {"Args": ["/bin/true"], "Interval": "10s"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("Scripts are disabled"), "{body}");
    let (status, body) = api
        .put(
            "/v1/agent/service/register",
            json!({"Name": "web", "Check": {"HTTP": "http://x/"}}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(body.contains("Interval must be > 0"), "{body}");
    let (status, body) = api
        .put("/v1/agent/check/register", json!({"TTL": "10s"}))
        .await;
    assert_eq!((status, body.as_str()), (400, "Missing check name"));
    let (status, _, body) = api.get("/v1/kv/x?wait=soon&index=1").await;
    assert_eq!((status, body.as_str()), (400, "Invalid wait time"));
    let (status, _, body) = api.get("/v1/kv/x?stale&consistent").await;
    assert_eq!(status, 400);
    assert!(body.contains("conflicting semantics"), "{body}");
    let (status, _, _) = api.get("/v1/health/state/sick").await;
    assert_eq!(status, 400);
    let (status, body) = api.put("/v1/agent/check/pass/none", json!(null)).await;
    assert_eq!(status, 404);
    assert!(body.contains("Unknown check ID"), "{body}");
    let r = api
        .http
        .get(format!("{}/v1/agent/service/register", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn registration_example_from_consul_docs() {
    // Adapted from "Register Service" in Consul's agent service API documentation (its Connect
    // and Kind fields are left out: this server does not implement Connect).
    let (api, _s) = Api::new().await;
    let payload = json!({
        "ID": "redis1",
        "Name": "redis",
        "Tags": ["primary", "v1"],
        "Address": "127.0.0.1",
        "Port": 8000,
        "Meta": {"redis_version": "4.0"},
        "EnableTagOverride": false,
        "Check": {
            "DeregisterCriticalServiceAfter": "90m",
            "Args": null,
            "HTTP": "http://localhost:5000/health",
            "Interval": "10s",
            "Timeout": "5s"
        },
        "Weights": {"Passing": 10, "Warning": 1}
    });
    let (status, body) = api
        .put(
            "/v1/agent/service/register?replace-existing-checks=true",
            payload,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = api.get("/v1/agent/service/redis1").await;
    let svc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(svc["Service"], "redis");
    assert_eq!(svc["Weights"]["Passing"], 10);
    let (_, _, body) = api.get("/v1/agent/checks").await;
    let checks: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(checks["service:redis1"]["ServiceName"], "redis");
    assert_eq!(checks["service:redis1"]["Type"], "http");
    let (_, _, body) = api.get("/v1/catalog/service/redis?tag=primary").await;
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["ServicePort"], 8000);
    assert_eq!(list[0]["ServiceMeta"]["redis_version"], "4.0");
}

#[tokio::test]
async fn kv_404_carries_index_and_raw_returns_bytes() {
    let (api, _s) = Api::new().await;
    let (status, index, _) = api.get("/v1/kv/nothing").await;
    assert_eq!(status, 404);
    assert!(index >= 1, "Consul never answers index 0");
    let r = api
        .http
        .put(format!("{}/v1/kv/bin?flags=7", api.base))
        .body(vec![0u8, 159, 146])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "true");
    let r = api
        .http
        .get(format!("{}/v1/kv/bin?raw", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), &[0u8, 159, 146]);
    let (_, _, body) = api.get("/v1/kv/bin").await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (v[0]["Flags"].as_u64(), v[0]["Value"].as_str()),
        (Some(7), Some("AJ+S"))
    );
}

/// Waits (with blocking queries, not sleeps) until `/v1/agent/checks` shows `id` in `status`.
async fn wait_for_status(api: &Api, id: &str, status: &str) -> Value {
    let mut index = 0;
    loop {
        let (_, new_index, body) = api
            .get(&format!("/v1/health/state/any?index={index}&wait=30s"))
            .await;
        index = new_index;
        let checks: Vec<Value> = serde_json::from_str(&body).unwrap();
        if let Some(c) = checks
            .into_iter()
            .find(|c| c["CheckID"] == id && c["Status"] == status)
        {
            return c;
        }
    }
}

#[tokio::test]
async fn ttl_expires_to_critical() {
    let (api, _s) = Api::new().await;
    let (status, _) = api
        .put(
            "/v1/agent/check/register",
            json!({"Name": "beat", "TTL": "1s"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api.put("/v1/agent/check/pass/beat", json!(null)).await;
    assert_eq!(status, 200);
    wait_for_status(&api, "beat", "passing").await;
    let c = tokio::time::timeout(HANG, wait_for_status(&api, "beat", "critical"))
        .await
        .unwrap();
    assert!(c["Output"].as_str().unwrap().contains("TTL expired"), "{c}");
}

#[tokio::test]
async fn tcp_checks_run_on_their_interval() {
    let (api, _s) = Api::new().await;
    let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open_addr = open.local_addr().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let svc = json!({"Name": "db", "Port": open_addr.port(), "Checks": [
        {"TCP": open_addr.to_string(), "Interval": "1s"},
        {"TCP": closed.to_string(), "Interval": "1s", "Status": "passing"}
    ]});
    let (status, body) = api.put("/v1/agent/service/register", svc).await;
    assert_eq!(status, 200, "{body}");
    let ok = tokio::time::timeout(HANG, wait_for_status(&api, "service:db:1", "passing"))
        .await
        .unwrap();
    assert!(ok["Output"].as_str().unwrap().contains("Success"), "{ok}");
    tokio::time::timeout(HANG, wait_for_status(&api, "service:db:2", "critical"))
        .await
        .unwrap();
    let (_, _, body) = api.get("/v1/health/service/db?passing").await;
    assert_eq!(serde_json::from_str::<Vec<Value>>(&body).unwrap().len(), 0);
    drop(open);
}

#[tokio::test]
async fn http_checks_run_and_critical_services_are_reaped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = caravan_consul_test_server::ServerConfig {
        reap_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let (addr, _s) = caravan_consul_test_server::spawn_for_test_with(config)
        .await
        .unwrap();
    let api = Api {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
    };
    // A tiny HTTP endpoint answering 200 "ok" to every request.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_addr = target.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = target.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let svc = json!({"Name": "site", "Check": {"HTTP": format!("http://{target_addr}/health"), "Interval": "1s"}});
    assert_eq!(api.put("/v1/agent/service/register", svc).await.0, 200);
    let c = tokio::time::timeout(HANG, wait_for_status(&api, "service:site", "passing"))
        .await
        .unwrap();
    assert!(
        c["Output"].as_str().unwrap().contains("200 OK Output: ok"),
        "{c}"
    );

    // A critical TTL check with DeregisterCriticalServiceAfter takes its service away.
    let doomed =
        json!({"Name": "doomed", "Check": {"TTL": "30s", "DeregisterCriticalServiceAfter": "1ms"}});
    assert_eq!(api.put("/v1/agent/service/register", doomed).await.0, 200);
    let mut index = 0;
    loop {
        let (_, i, body) = tokio::time::timeout(
            HANG,
            api.get(&format!("/v1/agent/services?index={index}&wait=30s")),
        )
        .await
        .unwrap();
        index = i;
        let services: Value = serde_json::from_str(&body).unwrap();
        if services.get("doomed").is_none() {
            assert!(services.get("site").is_some());
            break;
        }
    }
}
