//! `GET /v1/event/stream`: the server's events as NDJSON, one `{"Index":N,"Events":[...]}` line
//! per log index, with `{}` heartbeats (one at once, then every 10 s). Query parameters as
//! Nomad's: `topic=Topic:key` (repeatable; `*` for any topic or key; default every event),
//! `index` (start at that index, inclusive; older than the buffer starts at the oldest held)
//! and `namespace` (`*` for all). The stream ends when the client goes away.

use super::{ApiError, ApiResult, AppState};
use crate::server::events::{SubscribeRequest, Subscription, TopicFilter};
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::time::Duration;

/// How often an idle stream sends `{}` (Nomad's clients expect a line at least this often).
const HEARTBEAT: Duration = Duration::from_secs(10);
const HEARTBEAT_LINE: &[u8] = b"{}\n";

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/event/stream", get(stream))
}

async fn stream(
    State(s): State<AppState>,
    Query(params): Query<Vec<(String, String)>>,
    resolved: Option<axum::Extension<crate::server::acl::Resolved>>,
    rejected: Option<axum::Extension<super::acl_rules::TokenRejected>>,
) -> ApiResult {
    if !s.server.events.enabled() {
        return Err(ApiError::BadRequest(
            "the event stream is disabled on this server (server { enable_event_broker = false })"
                .into(),
        ));
    }
    let mut index = 0u64;
    let mut topics = Vec::new();
    let mut namespace = None;
    for (k, v) in params {
        match k.as_str() {
            "index" if !v.is_empty() => {
                index = v.parse().map_err(|e| {
                    ApiError::BadRequest(format!("Unable to parse index {v:?}: {e}"))
                })?;
            }
            "topic" => topics.push(v),
            "namespace" if !v.is_empty() => namespace = Some(v),
            _ => {}
        }
    }
    let topics = TopicFilter::parse(&topics).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let namespace = match namespace.as_deref() {
        Some("*") => None,
        Some(ns) => Some(ns.to_string()),
        None => Some(caravan_structs::DEFAULT_NAMESPACE.to_string()),
    };
    // With ACLs on, a subscription needs to be able to read some of what it asked for, and
    // then sees only the events its token may read.
    let acl = super::acl_rules::caller_acl(&s, resolved, rejected)?;
    if let Some(acl) = &acl {
        let namespaces: Vec<String> = match &namespace {
            Some(ns) => vec![ns.clone()],
            None => s
                .server
                .store
                .snapshot()
                .partitions
                .namespaces
                .keys()
                .cloned()
                .collect(),
        };
        let wanted: Vec<&str> = topics
            .topic_names()
            .into_iter()
            .flat_map(|t| {
                if t == crate::server::events::TOPIC_ALL {
                    crate::server::events::TOPICS.to_vec()
                } else {
                    vec![t]
                }
            })
            .collect();
        let any = wanted.iter().any(|t| {
            namespaces
                .iter()
                .any(|ns| crate::server::events::acl_allows(acl, t, ns))
        });
        if !any {
            return Err(ApiError::Forbidden("Permission denied".into()));
        }
    }
    let sub = s.server.events.subscribe(SubscribeRequest {
        topics,
        index,
        namespace,
        acl,
    });
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Nomad opens every stream with a heartbeat. Dropping the body (the client went away)
    // drops the subscription.
    let first = futures_util::stream::once(async { Ok(Bytes::from_static(HEARTBEAT_LINE)) });
    let frames = futures_util::stream::unfold((sub, beat), |(mut sub, mut beat)| async move {
        let line = next_line(&mut sub, &mut beat).await?;
        Some((Ok::<_, std::io::Error>(line), (sub, beat)))
    });
    let body = futures_util::StreamExt::chain(first, frames);
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// The next line to send: a frame of events or a heartbeat; `None` ends the stream.
async fn next_line(sub: &mut Subscription, beat: &mut tokio::time::Interval) -> Option<Bytes> {
    tokio::select! {
        _ = beat.tick() => Some(Bytes::from_static(HEARTBEAT_LINE)),
        frame = sub.next() => match frame {
            Ok(frame) => {
                let mut line = frame.to_json();
                line.push('\n');
                Some(Bytes::from(line))
            }
            Err(e) => {
                tracing::warn!("event stream subscriber dropped: {e}");
                None
            }
        },
    }
}
