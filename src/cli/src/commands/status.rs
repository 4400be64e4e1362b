//! The top-level `status [prefix]`: lists jobs, or resolves an ID prefix across jobs,
//! allocations, nodes, evaluations and deployments (`PUT /v1/search`) and shows the match.

use super::{client_or_err, fail, job, want_args};
use crate::api_types::SearchResponse;
use crate::prefix::{pick_search_match, SearchMatch};
use crate::Ctx;
use serde_json::json;

pub(crate) async fn status(ctx: &mut Ctx<'_>) -> i32 {
    if let Err(c) = want_args(ctx, 0, 1) {
        return c;
    }
    let Some(id) = ctx.flags.args.first().cloned() else {
        return job::status(ctx).await;
    };
    let client = match client_or_err(ctx) {
        Ok(c) => c,
        Err(c) => return c,
    };
    // An exact job ID needs no search.
    if client
        .get_value(&format!("/v1/job/{}", crate::client::seg(&id)), &[])
        .await
        .is_ok()
    {
        return job::show_job(ctx, &client, &id).await;
    }
    let body = json!({ "Prefix": id, "Context": "all" });
    let resp: SearchResponse = match client.put("/v1/search", &body, &[]).await {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error querying search with id", e),
    };
    match pick_search_match(&id, &resp.matches) {
        SearchMatch::None => {
            ctx.ui
                .error(&format!("No matches returned for query: {id:?}"));
            1
        }
        SearchMatch::One(kind, found) => match kind.as_str() {
            "jobs" => job::show_job(ctx, &client, &found).await,
            "allocs" => match super::alloc::alloc_by_prefix(ctx, &client, &found).await {
                Ok((a, raw)) => {
                    if let Some(c) = super::formatted(ctx, &raw) {
                        return c;
                    }
                    super::alloc::show_alloc(ctx, &a)
                }
                Err(c) => c,
            },
            "nodes" => super::node::show_node(ctx, &client, &found).await,
            "evals" => super::eval::show_eval(ctx, &client, &found).await,
            "deployments" => super::deployment::show_deployment(ctx, &client, &found).await,
            other => {
                ctx.ui.error(&format!("Unable to show {other} {found:?}"));
                1
            }
        },
        SearchMatch::Many(all) => {
            let mut msg = format!("Prefix {id:?} matched multiple identifiers:\n");
            for (kind, found) in all {
                msg.push_str(&format!("\n  {kind}: {found}"));
            }
            ctx.ui.error(&msg);
            1
        }
    }
}
