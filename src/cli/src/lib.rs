//! Caravan's command line: Nomad's verbs, flags and output over Nomad's HTTP API.
//!
//! The `caravan` binary calls [`run`] for every command but `agent`. [`run_with`] is the same
//! with the environment and the output streams passed in, for tests and embedding.

pub mod api_types;
pub mod client;
pub mod columnize;
mod commands;
pub mod complete;
pub mod flags;
pub mod format;
pub mod gotemplate;
mod jobspec_api;
mod monitor;
pub mod prefix;
pub mod registry;
pub mod timefmt;

use std::collections::BTreeMap;
use std::io::Write;

use client::{Client, ClientConfig};
use flags::{FlagError, ParsedFlags};
use registry::{CommandSpec, Resolved};

/// Where a command writes: its standard output and standard error.
pub struct Ui<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl<'a> Ui<'a> {
    pub fn new(out: &'a mut dyn Write, err: &'a mut dyn Write) -> Self {
        Ui { out, err }
    }

    /// One line (or block) on stdout.
    pub fn output(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }

    /// Bytes on stdout as they are (log streams).
    pub fn raw(&mut self, b: &[u8]) {
        let _ = self.out.write_all(b);
        let _ = self.out.flush();
    }

    /// Bytes on stderr as they are (a remote command's stderr).
    pub fn raw_err(&mut self, b: &[u8]) {
        let _ = self.err.write_all(b);
        let _ = self.err.flush();
    }

    /// One line (or block) on stderr.
    pub fn error(&mut self, s: &str) {
        let _ = writeln!(self.err, "{s}");
        let _ = self.err.flush();
    }
}

/// What a command runs with.
pub(crate) struct Ctx<'a> {
    pub ui: Ui<'a>,
    pub env: &'a BTreeMap<String, String>,
    pub flags: ParsedFlags,
    pub spec: &'static CommandSpec,
}

impl Ctx<'_> {
    fn env_var(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .filter_map(|n| self.env.get(*n))
            .find(|v| !v.is_empty())
            .cloned()
    }

    /// The client for the flags and environment (`-address`, `CARAVAN_ADDR`, `NOMAD_ADDR`, ...).
    pub fn client(&self) -> Result<Client, client::ApiError> {
        let address = self
            .flags
            .value("address")
            .map(|s| s.to_string())
            .or_else(|| self.env_var(&["CARAVAN_ADDR", "NOMAD_ADDR"]))
            .unwrap_or_else(|| "http://127.0.0.1:4646".into());
        let region = self
            .flags
            .value("region")
            .map(|s| s.to_string())
            .or_else(|| self.env_var(&["CARAVAN_REGION", "NOMAD_REGION"]));
        let namespace = self
            .flags
            .value("namespace")
            .map(|s| s.to_string())
            .or_else(|| self.env_var(&["CARAVAN_NAMESPACE", "NOMAD_NAMESPACE"]));
        let token = self
            .flags
            .value("token")
            .map(|s| s.to_string())
            .or_else(|| self.env_var(&["CARAVAN_TOKEN", "NOMAD_TOKEN"]));
        Client::new(ClientConfig {
            address,
            region: region.filter(|s| !s.is_empty()),
            namespace: namespace.filter(|s| !s.is_empty()),
            token: token.filter(|s| !s.is_empty()),
        })
    }

    /// Prints the command's usage error and returns exit code 1.
    pub fn usage_error(&mut self, msg: &str) -> i32 {
        self.ui.error(msg);
        self.ui.error(&format!(
            "For additional help try 'caravan {} -help'",
            self.spec.name
        ));
        1
    }

    /// Whether the command was asked for `-verbose` (full-length IDs).
    pub fn id_len(&self) -> usize {
        if self.flags.bool("verbose") {
            usize::MAX
        } else {
            8
        }
    }
}

/// Runs one command line (without the program name) and returns the exit code, reading the
/// process environment and writing to the process's stdout and stderr.
pub fn run(args: Vec<String>) -> i32 {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    run_with(args, &env, &mut out, &mut err)
}

/// [`run`] with the environment and output streams given.
pub fn run_with(
    mut args: Vec<String>,
    env: &BTreeMap<String, String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    // Tolerate a program name in front.
    if let Some(first) = args.first() {
        let base = std::path::Path::new(first)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("");
        if base == "caravan" {
            args.remove(0);
        }
    }
    let mut ui = Ui::new(out, err);

    if let Some(line) = env.get("COMP_LINE") {
        let line = complete::line_to_point(line, env.get("COMP_POINT").map(|s| s.as_str()));
        for c in complete::complete(&line) {
            ui.output(&c);
        }
        return 0;
    }

    let Some(first) = args.first().cloned() else {
        ui.error(&registry::main_usage());
        return 127;
    };
    match first.as_str() {
        "-h" | "-help" | "--help" | "help" => {
            if let Some(rest) = args.get(1..).filter(|r| !r.is_empty()) {
                match registry::resolve(rest) {
                    Resolved::Command(spec, _) => ui.output(&registry::command_usage(spec)),
                    Resolved::Group(g) => ui.output(&registry::group_usage(g)),
                    Resolved::Unknown(_) => ui.output(&registry::main_usage()),
                }
            } else {
                ui.output(&registry::main_usage());
            }
            return 0;
        }
        "-v" | "-version" | "--version" => {
            ui.output(&commands::version_string());
            return 0;
        }
        "-autocomplete-install" | "-autocomplete-uninstall" => {
            ui.output("To enable completion in bash, run: complete -C caravan caravan");
            return 0;
        }
        _ => {}
    }

    let (spec, used) = match registry::resolve(&args) {
        Resolved::Command(spec, used) => (spec, used),
        Resolved::Group(g) => {
            let sub = args.get(1);
            match sub {
                Some(s) if !s.starts_with('-') => {
                    ui.error(&format!("Unknown command: {g} {s}\n"));
                    ui.error(&registry::group_usage(g));
                    return 127;
                }
                Some(s) if !matches!(s.as_str(), "-h" | "-help" | "--help") => {
                    ui.error(&registry::group_usage(g));
                    return 1;
                }
                _ => {
                    ui.output(&registry::group_usage(g));
                    return 0;
                }
            }
        }
        Resolved::Unknown(name) => {
            ui.error(&format!("Unknown command: {name}\n"));
            ui.error(&registry::main_usage());
            return 127;
        }
    };

    let mut specs = registry::GLOBAL_FLAGS.to_vec();
    specs.extend_from_slice(spec.flags);
    // `alloc exec <alloc> <command> [args]`: everything from the command on is its own.
    let parsed = match spec.name {
        "alloc exec" => flags::parse_until_args(&args[used..], &specs, 2),
        _ => flags::parse(&args[used..], &specs),
    };
    let flags = match parsed {
        Ok(f) => f,
        Err(FlagError::Help) => {
            ui.output(&registry::command_usage(spec));
            return 0;
        }
        Err(e) => {
            ui.error(&e.to_string());
            ui.error(&registry::command_usage(spec));
            return 1;
        }
    };

    let mut ctx = Ctx {
        ui,
        env,
        flags,
        spec,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            ctx.ui.error(&format!("Error starting the runtime: {e}"));
            return 1;
        }
    };
    rt.block_on(commands::dispatch(&mut ctx))
}
