//! `caravan config validate FILE...`: checks agent configuration files (or directories) the
//! way `caravan agent -config` would load them. Unlike Nomad, a fragment with neither server
//! nor client enabled is valid on its own, since agents merge many files.

use super::config;

/// Runs the command; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    if args.is_empty()
        || args
            .iter()
            .any(|a| a == "-h" || a == "-help" || a == "--help")
    {
        eprintln!("Usage: caravan config validate <config_path> [<config_path>...]\n\n  Validates agent configuration files or directories, and reports every error\n  with its file:line:column. Settings the agent would refuse at start are warnings.");
        return if args.is_empty() { 1 } else { 0 };
    }
    let mut failed = false;
    for (path, result) in config::check_files(args) {
        match result {
            Ok(warnings) => {
                for w in warnings {
                    println!("==> WARNING: {path}: {w}");
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("==> Error loading configuration from {path}: {e}");
            }
        }
    }
    if failed {
        1
    } else {
        println!("Configuration is valid!");
        0
    }
}
