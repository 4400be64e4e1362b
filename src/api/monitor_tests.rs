//! `/v1/agent/monitor` against a served router: lines arrive at the caller's level, framed or
//! plain, and bad parameters are refused.

use super::{router, AgentInfo, AppState};
use crate::logging::{LogSettings, Logs};
use crate::server::{Server, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt;

async fn serve(logs: Logs) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(AppState {
        server: Server::new(ServerConfig::default()),
        client: None,
        agent: Arc::new(AgentInfo {
            logs: Some(logs),
            ..Default::default()
        }),
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_streams_lines_at_the_callers_level() {
    let settings = LogSettings {
        level: tracing::Level::WARN,
        ..Default::default()
    };
    let (logs, layer) = Logs::new(&settings, false).expect("logs");
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    let base = serve(logs.clone()).await;
    let http = reqwest::Client::new();

    let mut plain = http
        .get(format!(
            "{base}/v1/agent/monitor?log_level=debug&plain=true"
        ))
        .send()
        .await
        .expect("monitor");
    assert_eq!(plain.status().as_u16(), 200);
    let mut framed = http
        .get(format!(
            "{base}/v1/agent/monitor?log_level=info&log_json=true"
        ))
        .send()
        .await
        .expect("monitor");
    assert_eq!(framed.status().as_u16(), 200);

    tracing::debug!(alloc = "a1", "debug for the first monitor only");
    tracing::info!("info for both");

    let mut text = String::new();
    while !text.contains("info for both") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), plain.chunk())
            .await
            .expect("plain chunk in time")
            .expect("chunk")
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains("[DEBUG] ") && text.contains("debug for the first monitor only: alloc=a1"),
        "{text}"
    );

    let chunk = tokio::time::timeout(Duration::from_secs(5), framed.chunk())
        .await
        .expect("framed chunk in time")
        .expect("chunk")
        .expect("stream open");
    let frame: serde_json::Value = serde_json::from_slice(&chunk).expect("a JSON frame");
    let data = frame["Data"].as_str().expect("Data");
    assert!(!data.is_empty());
    // The INFO subscriber never got the DEBUG line: its first frame is the INFO line, as JSON.
    let decoded = decode_base64(data);
    let line: serde_json::Value = serde_json::from_str(decoded.trim()).expect("JSON log line");
    assert_eq!(line["@message"], "info for both");
    assert_eq!(line["@level"], "info");
    // The agent's own level was never lowered.
    assert_eq!(logs.level(), "WARN");

    for bad in ["log_level=loud", "log_level=off", "plain=maybe"] {
        let r = http
            .get(format!("{base}/v1/agent/monitor?{bad}"))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
    }
    let r = http
        .get(format!("{base}/v1/agent/monitor?node_id=abcd"))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 404);
}

fn decode_base64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = T.iter().position(|t| *t == c).expect("base64 char") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
