//! A small Go-style flag parser: `-name=value`, `-name value`, `--name value`, boolean
//! flags that never take the next argument (`-detach`, `-detach=false`), repeatable flags
//! (`-var a=1 -var b=2`) and `--` to end flag parsing. Flags and positional arguments may be
//! interleaved, which is friendlier than Go's stop-at-first-argument rule.

use std::collections::BTreeMap;

/// How a flag takes its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `-flag` or `-flag=true|false`; never consumes the next argument.
    Bool,
    /// `-flag value` or `-flag=value`; the last occurrence wins.
    Value,
    /// Like `Value`, but every occurrence is kept (`-var`, `-var-file`).
    Multi,
}

/// One flag a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSpec {
    pub name: &'static str,
    pub kind: FlagKind,
}

impl FlagSpec {
    pub const fn bool(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::Bool,
        }
    }
    pub const fn value(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::Value,
        }
    }
    pub const fn multi(name: &'static str) -> Self {
        FlagSpec {
            name,
            kind: FlagKind::Multi,
        }
    }
}

/// Why a command line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("flag provided but not defined: -{0}")]
    Unknown(String),
    #[error("flag needs an argument: -{0}")]
    MissingValue(String),
    #[error("invalid boolean value {value:?} for -{flag}: use true or false")]
    BadBool { flag: String, value: String },
    /// `-h`, `-help` or `--help` was given.
    #[error("help requested")]
    Help,
}

/// The flags and positional arguments of one command line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFlags {
    values: BTreeMap<String, Vec<String>>,
    /// Positional arguments, in order.
    pub args: Vec<String>,
}

impl ParsedFlags {
    /// Whether a boolean flag is set (the last occurrence wins).
    pub fn bool(&self, name: &str) -> bool {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|v| v == "true")
            .unwrap_or(false)
    }

    /// The last value given for a flag.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(|s| s.as_str())
    }

    /// Every value given for a repeatable flag, in order.
    pub fn values(&self, name: &str) -> &[String] {
        self.values.get(name).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Whether the flag appeared at all.
    pub fn is_set(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

fn parse_bool(flag: &str, v: &str) -> Result<String, FlagError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok("true".into()),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok("false".into()),
        _ => Err(FlagError::BadBool {
            flag: flag.into(),
            value: v.into(),
        }),
    }
}

/// Parses `args` against `specs`.
pub fn parse(args: &[String], specs: &[FlagSpec]) -> Result<ParsedFlags, FlagError> {
    parse_limited(args, specs, usize::MAX)
}

/// As [`parse`], but once `n` positional arguments are seen the rest are positional as they
/// are (`alloc exec <alloc> <command> -c ...`: the command's own flags).
pub fn parse_until_args(
    args: &[String],
    specs: &[FlagSpec],
    n: usize,
) -> Result<ParsedFlags, FlagError> {
    parse_limited(args, specs, n)
}

fn parse_limited(args: &[String], specs: &[FlagSpec], n: usize) -> Result<ParsedFlags, FlagError> {
    let mut out = ParsedFlags::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            out.args.extend(args[i..].iter().cloned());
            break;
        }
        let body = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(b) if !b.is_empty() => b,
            // "-" alone (stdin) and anything without a dash is positional.
            _ => {
                out.args.push(arg.clone());
                if out.args.len() >= n {
                    out.args.extend(args[i..].iter().cloned());
                    break;
                }
                continue;
            }
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(spec) = specs.iter().find(|s| s.name == name) else {
            if matches!(name, "h" | "help") {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Unknown(name.into()));
        };
        let value = match (spec.kind, inline) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v)) => parse_bool(name, v)?,
            (_, Some(v)) => v.to_string(),
            (_, None) => {
                let Some(next) = args.get(i) else {
                    return Err(FlagError::MissingValue(name.into()));
                };
                i += 1;
                next.clone()
            }
        };
        let entry = out.values.entry(name.to_string()).or_default();
        if spec.kind == FlagKind::Multi {
            entry.push(value);
        } else {
            *entry = vec![value];
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        FlagSpec::value("address"),
        FlagSpec::bool("detach"),
        FlagSpec::bool("json"),
        FlagSpec::multi("var"),
        FlagSpec::value("n"),
    ];

    fn p(args: &[&str]) -> Result<ParsedFlags, FlagError> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v, SPECS)
    }

    #[test]
    fn after_n_positionals_the_rest_is_positional() {
        let args: Vec<String> = ["-n", "3", "abc", "-json", "sh", "-c", "echo -n hi"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let f = parse_until_args(&args, SPECS, 2).unwrap();
        assert_eq!(f.value("n"), Some("3"));
        assert!(f.bool("json"), "flags between the positionals still count");
        assert_eq!(f.args, ["abc", "sh", "-c", "echo -n hi"]);
    }

    #[test]
    fn equals_and_separate_forms() {
        let f = p(&["-address=http://a:1", "job.hcl"]).unwrap();
        assert_eq!(f.value("address"), Some("http://a:1"));
        assert_eq!(f.args, vec!["job.hcl"]);
        let f = p(&["-address", "http://b:2"]).unwrap();
        assert_eq!(f.value("address"), Some("http://b:2"));
        let f = p(&["--address", "http://c:3", "x"]).unwrap();
        assert_eq!(f.value("address"), Some("http://c:3"));
        assert_eq!(f.args, vec!["x"]);
        let f = p(&["--address=http://d:4"]).unwrap();
        assert_eq!(f.value("address"), Some("http://d:4"));
    }

    #[test]
    fn bool_flags_do_not_take_the_next_argument() {
        let f = p(&["-detach", "job.hcl"]).unwrap();
        assert!(f.bool("detach"));
        assert!(!f.bool("json"));
        assert_eq!(f.args, vec!["job.hcl"]);
        let f = p(&["-detach=false"]).unwrap();
        assert!(!f.bool("detach"));
        assert!(f.is_set("detach"));
        assert!(matches!(
            p(&["-detach=maybe"]),
            Err(FlagError::BadBool { .. })
        ));
    }

    #[test]
    fn repeatable_and_interleaved() {
        let f = p(&["-var", "a=1", "file", "-var=b=2", "-n", "10"]).unwrap();
        assert_eq!(f.values("var"), &["a=1".to_string(), "b=2".to_string()]);
        assert_eq!(f.value("n"), Some("10"));
        assert_eq!(f.args, vec!["file"]);
    }

    #[test]
    fn double_dash_ends_flags_and_dash_is_positional() {
        let f = p(&["-json", "--", "-detach", "x"]).unwrap();
        assert!(f.bool("json"));
        assert!(!f.bool("detach"));
        assert_eq!(f.args, vec!["-detach", "x"]);
        let f = p(&["-"]).unwrap();
        assert_eq!(f.args, vec!["-"]);
    }

    #[test]
    fn errors() {
        assert_eq!(p(&["-bogus"]), Err(FlagError::Unknown("bogus".into())));
        assert_eq!(
            p(&["-address"]),
            Err(FlagError::MissingValue("address".into()))
        );
        assert_eq!(p(&["-help"]), Err(FlagError::Help));
        assert_eq!(p(&["--h"]), Err(FlagError::Help));
    }
}
