//! Command-line parsing: `caravan-bench <name> [--key value | --key=value]...`.

use crate::error::BenchError;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Options any benchmark accepts; each benchmark reads the ones that apply to it.
const KNOWN: &[&str] = &[
    "jobs",
    "concurrency",
    "caravan",
    "allocs",
    "driver",
    "nodes",
    "count",
    "seed",
    "iterations",
    "fill-jobs",
    "log-level",
    "writes",
    "templates",
    "gap-ms",
    "consul-server",
    "tasks",
    "window-s",
    "entries",
    "tail",
    "starts",
];

#[derive(Debug, Clone, Default)]
pub struct Args {
    pub name: String,
    opts: BTreeMap<String, String>,
}

impl Args {
    pub fn parse(argv: &[String]) -> Result<Args, BenchError> {
        let mut args = Args::default();
        let mut it = argv.iter();
        while let Some(a) = it.next() {
            if a == "-h" || a == "--help" || a == "-help" || a == "help" {
                return Err(BenchError::Help);
            }
            let Some(flag) = a.strip_prefix("--") else {
                if args.name.is_empty() {
                    args.name = a.clone();
                    continue;
                }
                return Err(BenchError::Usage(format!("unexpected argument {a:?}")));
            };
            let (key, value) = match flag.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => {
                    let v = it
                        .next()
                        .ok_or_else(|| BenchError::Usage(format!("--{flag} needs a value")))?;
                    (flag.to_string(), v.clone())
                }
            };
            if !KNOWN.contains(&key.as_str()) {
                return Err(BenchError::Usage(format!("unknown option --{key}")));
            }
            args.opts.insert(key, value);
        }
        if args.name.is_empty() {
            return Err(BenchError::Usage(
                "name a benchmark: submit-latency, footprint, scheduler, template or all".into(),
            ));
        }
        Ok(args)
    }

    /// A positive integer option, or `default` when it is not given.
    pub fn count(&self, key: &str, default: usize) -> Result<usize, BenchError> {
        match self.opts.get(key) {
            None => Ok(default),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(BenchError::Usage(format!(
                    "--{key} must be a positive integer, got {v:?}"
                ))),
            },
        }
    }

    pub fn u64(&self, key: &str, default: u64) -> Result<u64, BenchError> {
        match self.opts.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                BenchError::Usage(format!("--{key} must be an unsigned integer, got {v:?}"))
            }),
        }
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.opts.get(key).cloned()
    }

    /// The caravan binary: `--caravan`, else `caravan` next to this executable.
    pub fn caravan_path(&self) -> Result<PathBuf, BenchError> {
        if let Some(p) = self.opts.get("caravan") {
            return Ok(PathBuf::from(p));
        }
        let exe = std::env::current_exe().map_err(|e| BenchError::Io {
            what: "finding caravan-bench's own path (pass --caravan PATH)".into(),
            source: e,
        })?;
        let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        Ok(dir.join("caravan"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Args, BenchError> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        Args::parse(&v)
    }

    #[test]
    fn both_option_forms() {
        let a = parse("scheduler --nodes 100 --count=50").unwrap();
        assert_eq!(a.name, "scheduler");
        assert_eq!(a.count("nodes", 5000).unwrap(), 100);
        assert_eq!(a.count("count", 1000).unwrap(), 50);
        assert_eq!(a.count("seed", 7).unwrap(), 7);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(parse(""), Err(BenchError::Usage(_))));
        assert!(matches!(parse("all --bogus 1"), Err(BenchError::Usage(_))));
        assert!(matches!(parse("all --jobs"), Err(BenchError::Usage(_))));
        assert!(matches!(parse("all extra"), Err(BenchError::Usage(_))));
        assert!(matches!(parse("all --help"), Err(BenchError::Help)));
        let a = parse("all --jobs 0").unwrap();
        assert!(a.count("jobs", 200).is_err());
        let a = parse("all --jobs ten").unwrap();
        assert!(a.count("jobs", 200).is_err());
    }

    #[test]
    fn caravan_path_defaults_next_to_the_bench() {
        let a = parse("footprint").unwrap();
        let p = a.caravan_path().unwrap();
        assert_eq!(p.file_name().and_then(|s| s.to_str()), Some("caravan"));
        let a = parse("footprint --caravan /x/y").unwrap();
        assert_eq!(a.caravan_path().unwrap(), PathBuf::from("/x/y"));
    }
}
