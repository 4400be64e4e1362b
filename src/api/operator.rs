//! `/v1/operator/scheduler/configuration`: read the scheduler configuration, or replace it
//! (optionally compare-and-set with `?cas=<modify index>`).

use super::{decode_body, json_with_index, ApiError, ApiResult, AppState};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use caravan_structs::SchedulerConfiguration;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/v1/operator/scheduler/configuration",
        get(read).put(write).post(write),
    )
}

async fn read(State(s): State<AppState>) -> ApiResult {
    let config = s.server.scheduler_config();
    let index = config.modify_index;
    Ok(json_with_index(
        &json!({"SchedulerConfig": config, "Index": index, "KnownLeader": true, "LastContact": 0}),
        index,
    ))
}

async fn write(
    State(s): State<AppState>,
    Query(p): Query<HashMap<String, String>>,
    body: Bytes,
) -> ApiResult {
    let config: SchedulerConfiguration = decode_body(&body)?;
    let cas = match p.get("cas") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::BadRequest(format!("invalid cas index {v:?}")))?,
        ),
    };
    let (updated, index) = s.server.set_scheduler_config(config, cas)?;
    Ok(json_with_index(
        &json!({"Updated": updated, "Index": index}),
        index,
    ))
}
