//! `caravan alloc exec [options] <allocation> <command> [<args>...]`: runs a command inside a
//! running task through the agent's websocket endpoint (Nomad's `alloc exec`). With `-t`
//! (the default when stdin and stdout are terminals) the local terminal goes into raw mode,
//! its size is sent at the start and on every SIGWINCH; the command's exit code becomes this
//! command's.

use super::alloc::{alloc_by_prefix, pick_task};
use super::fail;
use crate::Ctx;
use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::Read;
use std::os::fd::AsRawFd;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The local terminal's size as `(height, width)`.
fn terminal_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    let r = unsafe { libc::ioctl(std::io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Puts stdin's terminal into raw mode until dropped.
struct RawMode {
    saved: nix::sys::termios::Termios,
}

impl RawMode {
    fn enter() -> Result<RawMode, String> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let saved = tcgetattr(&stdin).map_err(|e| format!("cannot read terminal settings: {e}"))?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(&stdin, SetArg::TCSANOW, &raw)
            .map_err(|e| format!("cannot put the terminal into raw mode: {e}"))?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        use nix::sys::termios::{tcsetattr, SetArg};
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The websocket address of the exec endpoint for `address` (`http://host:4646`).
pub(crate) fn exec_url(
    address: &str,
    alloc: &str,
    task: &str,
    cmd: &[String],
    tty: bool,
    namespace: Option<&str>,
    region: Option<&str>,
) -> Result<String, String> {
    let ws = if let Some(rest) = address.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if address.starts_with("https://") {
        return Err(
            "alloc exec over HTTPS is not supported by this CLI build; use an http:// address"
                .into(),
        );
    } else {
        return Err(format!("unsupported address {address:?}"));
    };
    let command = serde_json::to_string(cmd).map_err(|e| e.to_string())?;
    let mut url = format!(
        "{ws}/v1/client/allocation/{}/exec?task={}&tty={tty}&command={}",
        url_encode(alloc),
        url_encode(task),
        url_encode(&command)
    );
    if let Some(ns) = namespace {
        url.push_str(&format!("&namespace={}", url_encode(ns)));
    }
    if let Some(r) = region {
        url.push_str(&format!("&region={}", url_encode(r)));
    }
    Ok(url)
}

/// Reads stdin on a thread of its own (a blocking read must not hold up the runtime's exit):
/// chunks, then `None` at end of input.
fn stdin_reader() -> mpsc::Receiver<Option<Vec<u8>>> {
    let (tx, rx) = mpsc::channel(8);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = vec![0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

pub(crate) async fn exec(ctx: &mut Ctx<'_>) -> i32 {
    if ctx.flags.args.len() < 2 {
        return ctx
            .usage_error("This command takes at least two arguments: <allocation> <command>");
    }
    let client = match ctx.client() {
        Ok(c) => c,
        Err(e) => return fail(ctx, "Error initializing client", e),
    };
    let mut id = ctx.flags.args[0].clone();
    let cmd: Vec<String> = ctx.flags.args[1..].to_vec();
    if ctx.flags.bool("job") {
        // `-job`: the first argument is a job ID; any of its running allocations will do.
        let path = format!("/v1/job/{}/allocations", crate::client::seg(&id));
        let allocs: Vec<Value> = match client.get(&path, &[], None).await {
            Ok((a, _)) => a,
            Err(e) => return fail(ctx, "Error querying job allocations", e),
        };
        match allocs
            .iter()
            .filter(|a| a["ClientStatus"] == "running")
            .find_map(|a| a["ID"].as_str())
        {
            Some(a) => id = a.to_string(),
            None => {
                ctx.ui
                    .error(&format!("No running allocations found for job {id:?}"));
                return 1;
            }
        }
    }
    let (alloc, _) = match alloc_by_prefix(ctx, &client, &id).await {
        Ok(a) => a,
        Err(c) => return c,
    };
    if alloc.client_status == "complete" || alloc.client_status == "failed" {
        ctx.ui.error(&format!(
            "Allocation {:?} is {}: it runs no tasks to exec into",
            &alloc.id[..alloc.id.len().min(8)],
            alloc.client_status
        ));
        return 1;
    }
    let task = match pick_task(ctx, &alloc, ctx.flags.value("task").map(str::to_string)) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let stdin_open = !ctx.flags.is_set("i") || ctx.flags.bool("i");
    let tty = if ctx.flags.is_set("t") {
        ctx.flags.bool("t")
    } else {
        is_terminal(0) && is_terminal(1)
    };
    if tty && !is_terminal(0) {
        ctx.ui
            .error("-t needs stdin to be a terminal; use -t=false to run without one");
        return 1;
    }
    let url = match exec_url(
        &client.config.address,
        &alloc.id,
        &task,
        &cmd,
        tty,
        client.config.namespace.as_deref(),
        client.config.region.as_deref(),
    ) {
        Ok(u) => u,
        Err(e) => return fail(ctx, "failed to exec into task", e),
    };
    let mut req = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return fail(ctx, "failed to exec into task", e),
    };
    if let Some(t) = &client.config.token {
        match t.parse() {
            Ok(v) => {
                req.headers_mut().insert("X-Nomad-Token", v);
            }
            Err(e) => return fail(ctx, "invalid token", e),
        }
    }
    let ws = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .unwrap_or_default();
            return fail(
                ctx,
                "failed to exec into task",
                format!(
                    "Unexpected response code: {} ({body})",
                    resp.status().as_u16()
                ),
            );
        }
        Err(e) => return fail(ctx, "failed to exec into task", e),
    };
    let raw = if tty {
        match RawMode::enter() {
            Ok(r) => Some(r),
            Err(e) => return fail(ctx, "failed to exec into task", e),
        }
    } else {
        None
    };
    let result = session(ctx, ws, tty, stdin_open).await;
    // Back to the terminal's own settings before anything is printed about the session.
    drop(raw);
    match result {
        Ok(code) => code,
        Err(e) => fail(ctx, "failed to exec into task", e),
    }
}

const CLOSED_EARLY: &str = "the connection closed before the command exited";

fn stdin_frame(data: &[u8]) -> Message {
    Message::Text(
        json!({"stdin": {"data": base64::engine::general_purpose::STANDARD.encode(data)}})
            .to_string(),
    )
}

async fn session(
    ctx: &mut Ctx<'_>,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    tty: bool,
    stdin_open: bool,
) -> Result<i32, String> {
    let (mut sink, mut stream) = ws.split();
    let size = |(h, w): (u16, u16)| {
        Message::Text(json!({"tty_size": {"height": h, "width": w}}).to_string())
    };
    if tty {
        if let Some(s) = terminal_size() {
            let _ = sink.send(size(s)).await;
        }
    }
    let mut winch =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()).ok();
    let mut input = if stdin_open {
        Some(stdin_reader())
    } else {
        let _ = sink
            .send(Message::Text(json!({"stdin": {"close": true}}).to_string()))
            .await;
        None
    };
    loop {
        tokio::select! {
            chunk = async { input.as_mut()?.recv().await }, if input.is_some() => {
                let frame = match chunk.flatten() {
                    Some(data) => stdin_frame(&data),
                    None => {
                        input = None;
                        Message::Text(json!({"stdin": {"close": true}}).to_string())
                    }
                };
                let _ = sink.send(frame).await;
            }
            _ = async { winch.as_mut()?.recv().await }, if tty && winch.is_some() => {
                if let Some(s) = terminal_size() {
                    let _ = sink.send(size(s)).await;
                }
            }
            msg = stream.next() => {
                let msg = match msg {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(e.to_string()),
                    None => return Err(CLOSED_EARLY.into()),
                };
                match msg {
                    Message::Text(t) => {
                        let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
                        for (key, err) in [("stdout", false), ("stderr", true)] {
                            if let Some(d) = v[key]["data"].as_str() {
                                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(d) {
                                    if err { ctx.ui.raw_err(&bytes) } else { ctx.ui.raw(&bytes) }
                                }
                            }
                        }
                        if v["exited"] == true {
                            let code = v["result"]["exit_code"].as_i64().unwrap_or(0);
                            let _ = sink.close().await;
                            return Ok(i32::try_from(code).unwrap_or(1));
                        }
                    }
                    Message::Close(Some(f)) if !f.reason.is_empty() => {
                        return Err(f.reason.to_string());
                    }
                    Message::Close(_) => return Err(CLOSED_EARLY.into()),
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_carries_task_command_and_tty() {
        let u = exec_url(
            "http://127.0.0.1:4646",
            "abc",
            "web",
            &["sh".into(), "-c".into(), "echo a&b".into()],
            true,
            Some("prod"),
            None,
        )
        .unwrap();
        assert_eq!(
            u,
            "ws://127.0.0.1:4646/v1/client/allocation/abc/exec?task=web&tty=true\
             &command=%5B%22sh%22%2C%22-c%22%2C%22echo%20a%26b%22%5D&namespace=prod"
        );
        assert!(exec_url("https://x:4646", "a", "t", &[], false, None, None)
            .unwrap_err()
            .contains("HTTPS"));
    }
}
