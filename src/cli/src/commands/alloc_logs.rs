//! Reading from an allocation's directory: `alloc logs` (task stdout/stderr, with `-f`
//! follow and `-tail`/`-n`/`-c`) and `alloc fs` (list, stat and cat).

use super::alloc::{alloc_and_task, alloc_arg, ibytes, TaskArg};
use super::fail;
use crate::client::seg;
use crate::columnize::format_list;
use crate::Ctx;
use serde_json::Value;
use std::time::Duration;

/// Nomad's default line count for `-tail` without `-n` or `-c`.
const DEFAULT_TAIL_LINES: usize = 10;
/// How many bytes to fetch per wanted line when cutting lines client-side.
const BYTES_PER_LINE: u64 = 1024;
const MIN_TAIL_BYTES: u64 = 16 * 1024;

/// The last `n` lines of `buf` (a final line without a newline counts as a line).
pub fn last_lines(buf: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &buf[buf.len()..];
    }
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &buf[i + 1..];
            }
        }
    }
    buf
}

pub(crate) async fn logs(ctx: &mut Ctx<'_>) -> i32 {
    let (client, alloc, task) = match alloc_and_task(ctx, TaskArg::Required).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let follow = ctx.flags.bool("f");
    let tail = ctx.flags.bool("tail");
    let parse_num = |name: &str, ctx: &Ctx<'_>| -> Result<Option<u64>, String> {
        match ctx.flags.value(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(|n| if n < 0 { None } else { Some(n as u64) })
                .map_err(|_| format!("Invalid value for -{name}: {v:?} is not a number")),
        }
    };
    let (lines, bytes) = match (parse_num("n", ctx), parse_num("c", ctx)) {
        (Ok(n), Ok(c)) => (n, c),
        (Err(e), _) | (_, Err(e)) => return ctx.usage_error(&e),
    };
    let kind = if ctx.flags.bool("stderr") {
        "stderr"
    } else {
        "stdout"
    };

    let mut cut_lines: Option<usize> = None;
    let (origin, offset) = if tail {
        match (bytes, lines) {
            (Some(c), _) => ("end", c),
            (None, n) => {
                let n = n.map(|n| n as usize).unwrap_or(DEFAULT_TAIL_LINES);
                cut_lines = Some(n);
                ("end", (n as u64 * BYTES_PER_LINE).max(MIN_TAIL_BYTES))
            }
        }
    } else {
        ("start", 0)
    };
    let params = vec![
        ("task", task.clone()),
        ("type", kind.to_string()),
        ("plain", "true".to_string()),
        ("follow", follow.to_string()),
        ("origin", origin.to_string()),
        ("offset", offset.to_string()),
    ];
    let mut resp = match client
        .get_raw(&format!("/v1/client/fs/logs/{}", seg(&alloc.id)), &params)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return fail(
                ctx,
                &format!("Error reading {kind} logs of task {task:?}"),
                e,
            )
        }
    };

    let mut buf: Vec<u8> = vec![];
    let mut streaming = cut_lines.is_none();
    loop {
        let chunk = if follow && !streaming {
            // Gather the backlog until the server pauses, then cut it.
            match tokio::time::timeout(Duration::from_millis(500), resp.chunk()).await {
                Ok(c) => c,
                Err(_) => {
                    if let Some(n) = cut_lines {
                        ctx.ui.raw(last_lines(&buf, n));
                    }
                    buf.clear();
                    streaming = true;
                    continue;
                }
            }
        } else {
            resp.chunk().await
        };
        match chunk {
            Ok(Some(b)) => {
                if streaming {
                    ctx.ui.raw(&b);
                } else {
                    buf.extend_from_slice(&b);
                }
            }
            Ok(None) => break,
            Err(e) => return fail(ctx, "Error reading logs", e),
        }
    }
    if !streaming {
        if let Some(n) = cut_lines {
            ctx.ui.raw(last_lines(&buf, n));
        }
    }
    0
}

pub(crate) async fn fs(ctx: &mut Ctx<'_>) -> i32 {
    let (client, alloc, _) = match alloc_arg(ctx, 1, 2).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    let path = ctx.flags.args.get(1).cloned().unwrap_or_else(|| "/".into());
    let aid = seg(&alloc.id);
    let stat = match client
        .get_value(
            &format!("/v1/client/fs/stat/{aid}"),
            &[("path", path.clone())],
        )
        .await
    {
        Ok(v) => v,
        Err(e) => return fail(ctx, "Error stating file", e),
    };
    let human = ctx.flags.bool("H");
    let size = |v: &Value| -> String {
        let n = v.get("Size").and_then(|s| s.as_u64()).unwrap_or(0);
        if human {
            ibytes(n)
        } else {
            n.to_string()
        }
    };
    let field = |v: &Value, k: &str| -> String {
        v.get(k).and_then(|s| s.as_str()).unwrap_or("").to_string()
    };
    let is_dir = stat.get("IsDir").and_then(|b| b.as_bool()).unwrap_or(false);
    if ctx.flags.bool("stat") {
        let mut name = field(&stat, "Name");
        if is_dir {
            name.push('/');
        }
        ctx.ui.output(&format_list(&[
            "Mode|Size|Modified Time|Name".to_string(),
            format!(
                "{}|{}|{}|{name}",
                field(&stat, "FileMode"),
                size(&stat),
                field(&stat, "ModTime")
            ),
        ]));
        return 0;
    }
    if is_dir {
        let entries: Vec<Value> = match client
            .get(
                &format!("/v1/client/fs/ls/{aid}"),
                &[("path", path.clone())],
                None,
            )
            .await
        {
            Ok((v, _)) => v,
            Err(e) => return fail(ctx, "Error listing alloc dir", e),
        };
        let mut rows = vec!["Mode|Size|Modified Time|Name".to_string()];
        for e in &entries {
            let mut name = field(e, "Name");
            if e.get("IsDir").and_then(|b| b.as_bool()).unwrap_or(false) {
                name.push('/');
            }
            rows.push(format!(
                "{}|{}|{}|{name}",
                field(e, "FileMode"),
                size(e),
                field(e, "ModTime")
            ));
        }
        ctx.ui.output(&format_list(&rows));
        return 0;
    }
    let mut resp = match client
        .get_raw(
            &format!("/v1/client/fs/cat/{aid}"),
            &[("path", path.clone())],
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return fail(ctx, "Error reading file", e),
    };
    loop {
        match resp.chunk().await {
            Ok(Some(b)) => ctx.ui.raw(&b),
            Ok(None) => break,
            Err(e) => return fail(ctx, "Error reading file", e),
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_the_last_lines() {
        assert_eq!(last_lines(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(last_lines(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(last_lines(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(last_lines(b"", 3), b"");
        assert_eq!(last_lines(b"x\n", 0), b"");
    }
}
