//! Interactive exec in a container (`alloc exec` on a docker or podman task): the engine's
//! exec API with stdin attached over the hijacked connection, a TTY on request, `tty_size`
//! as exec resizes, and the exit code from inspecting the exec once its output ends.

use crate::engine::Engine;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, ResizeExecOptions, StartExecOptions, StartExecResults};
use caravan_driver::{DriverError, ExecInput, ExecOutput, ExecStreamIo};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

/// The end-of-file character a terminal in canonical mode turns into end of input (^D).
const EOT: u8 = 4;

/// Kills an exec's process: the engine's API has no call for it, so SIGKILL goes to the
/// host pid the engine reports (a local engine; a remote one keeps it until it exits).
async fn kill_exec(engine: &Engine, exec_id: &str) {
    match engine.api.inspect_exec(exec_id).await {
        Ok(i) if i.running == Some(true) => {
            if let Some(pid) = i.pid.filter(|p| *p > 0) {
                // SAFETY: kill(2) on a pid the engine reported for this exec.
                unsafe {
                    libc::kill(pid as i32, libc::SIGKILL);
                }
            }
        }
        Ok(_) => {}
        Err(e) => tracing::debug!("cannot inspect exec {exec_id}: {}", describe(&e)),
    }
}

fn describe(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Runs `cmd` in container `container_id` and streams it through `io`; returns its exit
/// code. When `io.input` closes (the caller went away) the command is killed.
pub(crate) async fn run(
    engine: &Engine,
    container_id: &str,
    cmd: Vec<String>,
    tty: bool,
    io: ExecStreamIo,
) -> Result<i32, DriverError> {
    let program = cmd.first().cloned().unwrap_or_default();
    let created = engine
        .api
        .create_exec(
            container_id,
            CreateExecOptions {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                cmd: Some(cmd),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| DriverError::Exec(format!("cannot create exec: {}", describe(&e))))?;
    let started = engine
        .stream
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(|e| DriverError::Exec(format!("cannot start {program:?}: {}", describe(&e))))?;
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err(DriverError::Exec(format!(
            "the engine started {program:?} detached; nothing to attach to"
        )));
    };
    let ExecStreamIo {
        input: mut from_caller,
        output: to_caller,
    } = io;
    let exec_id = created.id.clone();
    let feed = async {
        while let Some(msg) = from_caller.recv().await {
            match msg {
                ExecInput::Stdin(data) => {
                    if input.write_all(&data).await.is_err() || input.flush().await.is_err() {
                        tracing::debug!("exec stdin closed by the engine");
                    }
                }
                ExecInput::CloseStdin if tty => {
                    let _ = input.write_all(&[EOT]).await;
                    let _ = input.flush().await;
                }
                ExecInput::CloseStdin => {
                    let _ = input.shutdown().await;
                }
                ExecInput::Resize { height, width } if tty => {
                    if let Err(e) = engine
                        .api
                        .resize_exec(&exec_id, ResizeExecOptions { height, width })
                        .await
                    {
                        tracing::debug!("cannot resize the exec terminal: {}", describe(&e));
                    }
                }
                ExecInput::Resize { .. } => {}
            }
        }
    };
    let drain = async {
        while let Some(item) = output.next().await {
            let out = match item {
                Ok(LogOutput::StdErr { message }) => ExecOutput::Stderr(message.to_vec()),
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    ExecOutput::Stdout(message.to_vec())
                }
                Ok(LogOutput::StdIn { .. }) => continue,
                Err(e) => {
                    return Err(DriverError::Exec(format!(
                        "reading the output of {program:?}: {}",
                        describe(&e)
                    )))
                }
            };
            let _ = to_caller.send(out).await;
        }
        Ok(())
    };
    tokio::pin!(feed);
    tokio::select! {
        r = drain => r?,
        _ = &mut feed => {
            kill_exec(engine, &created.id).await;
            return Err(DriverError::Exec(format!(
                "the caller went away; {program:?} was killed"
            )));
        }
    }
    let inspected = engine
        .api
        .inspect_exec(&created.id)
        .await
        .map_err(|e| DriverError::Exec(format!("cannot inspect exec: {}", describe(&e))))?;
    Ok(inspected.exit_code.unwrap_or(-1) as i32)
}
