//! `server members`: the servers the agent knows through gossip, with the region's leader.

use super::{args_and_client, fail, formatted};
use crate::api_types::ServerMembers;
use crate::columnize::format_list;
use crate::Ctx;

pub(crate) async fn members(ctx: &mut Ctx<'_>) -> i32 {
    let client = match args_and_client(ctx, 0, 0) {
        Ok(c) => c,
        Err(c) => return c,
    };
    let m: ServerMembers = match client.get("/v1/agent/members", &[], None).await {
        Ok((m, _)) => m,
        Err(e) => return fail(ctx, "Error querying servers", e),
    };
    if let Some(c) = formatted(ctx, &m.members) {
        return c;
    }
    let leader: String = client
        .get::<String>("/v1/status/leader", &[], None)
        .await
        .map(|(l, _)| l)
        .unwrap_or_default();
    let detailed = ctx.flags.bool("verbose") || ctx.flags.bool("detailed");
    let mut rows = vec![if detailed {
        "Name|Address|Port|Status|Leader|Protocol|Raft Version|Build|Datacenter|Region|Tags"
            .to_string()
    } else {
        "Name|Address|Port|Status|Leader|Raft Version|Build|Datacenter|Region".to_string()
    }];
    let mut members = m.members.clone();
    members.sort_by(|a, b| a.name.cmp(&b.name));
    for mem in &members {
        let tag = |k: &str| mem.tags.get(k).cloned().unwrap_or_default();
        let rpc = format!("{}:{}", mem.addr, tag("port"));
        let is_leader = !leader.is_empty()
            && (leader == rpc
                || (tag("port").is_empty() && leader.starts_with(&format!("{}:", mem.addr))));
        let raft = if tag("raft_vsn").is_empty() {
            "unknown".to_string()
        } else {
            tag("raft_vsn")
        };
        if detailed {
            let tags: Vec<String> = mem.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
            rows.push(format!(
                "{}|{}|{}|{}|{}|{}|{raft}|{}|{}|{}|{}",
                mem.name,
                mem.addr,
                mem.port,
                mem.status,
                is_leader,
                tag("vsn"),
                tag("build"),
                tag("dc"),
                tag("region"),
                tags.join(",")
            ));
        } else {
            rows.push(format!(
                "{}|{}|{}|{}|{}|{raft}|{}|{}|{}",
                mem.name,
                mem.addr,
                mem.port,
                mem.status,
                is_leader,
                tag("build"),
                tag("dc"),
                tag("region")
            ));
        }
    }
    ctx.ui.output(&format_list(&rows));
    0
}
