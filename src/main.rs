//! The `caravan` binary: `caravan agent ...` runs an agent; every other command is the CLI.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = match args.first().map(|s| s.as_str()) {
        Some("agent") => caravan::agent::run(&args[1..]),
        Some("config") if args.get(1).map(|s| s.as_str()) == Some("validate") => {
            caravan::agent::validate::run(&args[2..])
        }
        _ => caravan_cli::run(args),
    };
    std::process::exit(code);
}
