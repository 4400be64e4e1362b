//! One render of a consul-template template: parses with the job's delimiters, runs the
//! helpers and the data functions (through a [`DataSource`]), and reports the dependencies the
//! render used and those still missing. A render with missing data is incomplete: its text
//! must not be written (consul-template waits for the data).

use crate::data::{parse_service, split_dc, DataSource, Dependency};
use crate::error::TemplateError;
use crate::exec::{ExecOptions, FuncHost};
use crate::parse::Template;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

/// Functions Nomad's client denies by default (`template { function_denylist }`).
pub const DEFAULT_DENYLIST: &[&str] = &["plugin", "writeToFile", "executeTemplate"];

/// Functions that need something Caravan does not have yet (a data source, an encoding), with
/// what they need.
const UNAVAILABLE: &[(&str, &str)] = &[
    ("connect", "Consul Connect"),
    ("caRoots", "Consul Connect"),
    ("caLeaf", "Consul Connect"),
    ("node", "Consul catalog node queries"),
    ("nodes", "Consul catalog node queries"),
    ("datacenters", "Consul catalog datacenter queries"),
    ("safeDatacenters", "Consul catalog datacenter queries"),
    ("partitions", "Consul Enterprise partitions"),
    ("peerings", "Consul peerings"),
    ("exportedServices", "Consul exported services"),
    ("sockaddr", "go-sockaddr address templates"),
    ("byMeta", "service meta grouping (byMeta)"),
];

/// The names of the data functions that need a feature Caravan lacks (for job validation).
pub fn unavailable_functions() -> impl Iterator<Item = (&'static str, &'static str)> {
    UNAVAILABLE.iter().copied()
}

/// How to render one template.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Template name in error messages.
    pub name: String,
    pub left_delimiter: String,
    pub right_delimiter: String,
    pub error_on_missing_key: bool,
    /// What `env` and `envOrDefault` read (the task's environment).
    pub env: BTreeMap<String, String>,
    /// `file` paths resolve inside this directory and may not leave it; `None` reads any path
    /// (`disable_file_sandbox`).
    pub file_root: Option<PathBuf>,
    /// Functions that fail the render (`function_denylist`).
    pub denylist: Vec<String>,
}

/// The outcome of a render.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// Every dependency the render read, in first-use order.
    pub deps: Vec<Dependency>,
    /// Dependencies the source had no data for yet (blocking ones only): the text is
    /// incomplete until they arrive.
    pub missing: Vec<Dependency>,
}

impl Rendered {
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// Parses and renders `src` once.
pub fn render(
    src: &str,
    opts: &RenderOptions,
    source: &dyn DataSource,
) -> Result<Rendered, TemplateError> {
    let name = if opts.name.is_empty() {
        "out"
    } else {
        &opts.name
    };
    let tmpl = Template::parse_delims(name, src, &opts.left_delimiter, &opts.right_delimiter)?;
    render_parsed(&tmpl, opts, source)
}

/// Renders an already parsed template.
pub fn render_parsed(
    tmpl: &Template,
    opts: &RenderOptions,
    source: &dyn DataSource,
) -> Result<Rendered, TemplateError> {
    let mut host = Host {
        source,
        opts,
        deps: vec![],
        seen: BTreeSet::new(),
        missing: vec![],
    };
    let text = tmpl.execute(
        &Value::Null,
        &mut host,
        &ExecOptions {
            error_on_missing_key: opts.error_on_missing_key,
        },
    )?;
    Ok(Rendered {
        text,
        deps: host.deps,
        missing: host.missing,
    })
}

struct Host<'a> {
    source: &'a dyn DataSource,
    opts: &'a RenderOptions,
    deps: Vec<Dependency>,
    seen: BTreeSet<Dependency>,
    missing: Vec<Dependency>,
}

fn str_arg(name: &str, args: &[Value], i: usize) -> Result<String, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "{name}: argument {} must be a string, got {other}",
            i + 1
        )),
        None => Err(format!("{name}: missing argument {}", i + 1)),
    }
}

/// Resolves `file`'s path inside `root`, refusing `..` escapes and absolute paths outside it.
fn sandboxed(root: &Path, path: &str) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let rel = match p.strip_prefix(root) {
        Ok(r) => r.to_path_buf(),
        Err(_) if p.is_absolute() => {
            return Err(format!(
                "file: {path:?} is outside the task directory {} (the client's template sandbox)",
                root.display()
            ))
        }
        Err(_) => p.to_path_buf(),
    };
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => {
                return Err(format!(
                    "file: {path:?} escapes the task directory (the client's template sandbox)"
                ))
            }
        }
    }
    // Symlinks that point out of the sandbox are refused too.
    if let (Ok(real), Ok(real_root)) = (out.canonicalize(), root.canonicalize()) {
        if !real.starts_with(&real_root) {
            return Err(format!(
                "file: {path:?} resolves outside the task directory (the client's template sandbox)"
            ));
        }
    }
    Ok(out)
}

/// A Vault path argument, without surrounding slashes.
fn vault_path(name: &str, args: &[Value]) -> Result<String, String> {
    let path = str_arg(name, args, 0)?.trim().trim_matches('/').to_string();
    if path.is_empty() {
        return Err(format!("{name}: the Vault path is empty"));
    }
    Ok(path)
}

/// `"key=value"` arguments of a Vault write, in order.
fn kv_args(name: &str, args: &[Value]) -> Result<Vec<(String, String)>, String> {
    args.iter()
        .map(|a| match a {
            Value::String(s) => match s.split_once('=') {
                Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                _ => Err(format!("{name}: {s:?} is not a key=value pair")),
            },
            other => Err(format!("{name}: {other} is not a key=value string")),
        })
        .collect()
}

/// `path@namespace.region`: the namespace (the region is this client's own).
fn nomad_namespace(at: Option<String>) -> Option<String> {
    at.and_then(|n| n.split('.').next().map(str::to_string))
        .filter(|n| !n.is_empty())
}

impl Host<'_> {
    /// Records `dep` and returns its data; `None` while it is not fetched.
    fn fetch(&mut self, dep: Dependency, blocking: bool) -> Option<Value> {
        if self.seen.insert(dep.clone()) {
            self.deps.push(dep.clone());
        }
        let v = self.source.get(&dep);
        if v.is_none() && blocking && !self.missing.contains(&dep) {
            self.missing.push(dep);
        }
        v
    }

    fn data(&mut self, name: &str, args: &[Value]) -> Result<Option<Value>, String> {
        Ok(Some(match name {
            "key" | "keyOrDefault" | "keyExists" => {
                let (key, dc) = split_dc(&str_arg(name, args, 0)?);
                let block = name == "key";
                let dep = Dependency::Kv { key, dc, block };
                let v = self.fetch(dep.clone(), block);
                match (name, v) {
                    ("key", Some(Value::Null)) => {
                        // The key does not exist yet: the render waits for it.
                        if !self.missing.contains(&dep) {
                            self.missing.push(dep);
                        }
                        Value::String(String::new())
                    }
                    ("key", v) => v.unwrap_or(Value::String(String::new())),
                    ("keyExists", v) => Value::Bool(matches!(v, Some(Value::String(_)))),
                    (_, Some(Value::String(s))) => Value::String(s),
                    _ => Value::String(str_arg(name, args, 1)?),
                }
            }
            "ls" | "safeLs" | "tree" | "safeTree" => {
                let (prefix, dc) = split_dc(&str_arg(name, args, 0)?);
                let dep = Dependency::KvList {
                    prefix: prefix.trim_matches('/').to_string(),
                    dc,
                };
                let safe = name.starts_with("safe");
                let pairs = match self.fetch(dep.clone(), true) {
                    Some(Value::Array(a)) => a,
                    _ => vec![],
                };
                if safe && pairs.is_empty() && !self.missing.contains(&dep) {
                    self.missing.push(dep);
                }
                let base = prefix.trim_start_matches('/');
                let base = if base.is_empty() || base.ends_with('/') {
                    base.to_string()
                } else {
                    format!("{base}/")
                };
                let recursive = name.ends_with("ree") || name.ends_with("Tree");
                let mut out = vec![];
                for p in pairs {
                    let full = p["Key"].as_str().unwrap_or_default();
                    let Some(rel) = full.strip_prefix(&base).or_else(|| {
                        // `ls "a/b"` where `a/b` is itself a key: Consul lists it too.
                        (full == base.trim_end_matches('/')).then_some("")
                    }) else {
                        continue;
                    };
                    if rel.is_empty() || rel.ends_with('/') || (!recursive && rel.contains('/')) {
                        continue;
                    }
                    let mut pair = Map::new();
                    pair.insert("Key".into(), Value::String(rel.to_string()));
                    pair.insert("Path".into(), Value::String(full.to_string()));
                    for f in [
                        "Value",
                        "CreateIndex",
                        "ModifyIndex",
                        "LockIndex",
                        "Flags",
                        "Session",
                    ] {
                        if let Some(v) = p.get(f) {
                            pair.insert(f.into(), v.clone());
                        }
                    }
                    out.push(Value::Object(pair));
                }
                Value::Array(out)
            }
            "service" => {
                let (name_s, tag, dc) = parse_service(&str_arg(name, args, 0)?);
                let passing = match args.get(1).and_then(|v| v.as_str()) {
                    None | Some("passing") => true,
                    Some("any") => false,
                    Some(other) => {
                        return Err(format!(
                            "service: health filter {other:?} is not supported (use \"passing\" or \"any\")"
                        ))
                    }
                };
                let dep = Dependency::Service {
                    name: name_s,
                    tag,
                    dc,
                    passing,
                };
                self.fetch(dep, true).unwrap_or(Value::Array(vec![]))
            }
            "services" => {
                let dc = match args.first() {
                    Some(Value::String(s)) => Some(s.trim_start_matches('@').to_string()),
                    _ => None,
                };
                let catalog = self
                    .fetch(Dependency::Services { dc }, true)
                    .unwrap_or(Value::Object(Map::new()));
                let mut names: Vec<(String, Value)> = match catalog {
                    Value::Object(o) => o.into_iter().collect(),
                    _ => vec![],
                };
                names.sort_by(|a, b| a.0.cmp(&b.0));
                Value::Array(
                    names
                        .into_iter()
                        .map(|(n, tags)| {
                            let mut m = Map::new();
                            m.insert("Name".into(), Value::String(n));
                            m.insert("Tags".into(), tags);
                            Value::Object(m)
                        })
                        .collect(),
                )
            }
            "nomadService" => {
                let (spec, choose) = match args {
                    [Value::String(s)] => (s.clone(), None),
                    [count, Value::String(key), Value::String(s)] => {
                        let n = count.as_u64().ok_or_else(|| {
                            format!("{name}: expected integer for <count> argument, got {count}")
                        })?;
                        (s.clone(), Some(format!("{n}|{key}")))
                    }
                    _ => {
                        return Err(format!(
                            "{name}: expected arguments <service> or <count> <key> <service>"
                        ))
                    }
                };
                // `@region`: Caravan has one region; the name and tag are what count.
                let (name_s, tag, _region) = parse_service(&spec);
                let dep = Dependency::NomadService {
                    name: name_s,
                    tag,
                    choose,
                };
                self.fetch(dep, true).unwrap_or(Value::Array(vec![]))
            }
            "nomadServices" => self
                .fetch(Dependency::NomadServices, true)
                .unwrap_or(Value::Array(vec![])),
            "nomadVar" | "nomadVarExists" => {
                let (path, namespace) = split_dc(&str_arg(name, args, 0)?);
                let namespace = nomad_namespace(namespace);
                let block = name == "nomadVar";
                let dep = Dependency::NomadVar {
                    path: path.trim_matches('/').to_string(),
                    namespace,
                    block,
                };
                let v = self.fetch(dep.clone(), block);
                match (block, v) {
                    // Absent: `nomadVar` waits for it, as consul-template's does.
                    (true, Some(Value::Null)) => {
                        if !self.missing.contains(&dep) {
                            self.missing.push(dep);
                        }
                        Value::Object(Map::new())
                    }
                    (true, v) => v.unwrap_or(Value::Object(Map::new())),
                    (false, v) => Value::Bool(matches!(v, Some(Value::Object(_)))),
                }
            }
            "nomadVarList" | "nomadVarListSafe" => {
                let prefix = match args.first() {
                    Some(Value::String(s)) => s.clone(),
                    None => String::new(),
                    Some(other) => {
                        return Err(format!("{name}: argument 1 must be a string, got {other}"))
                    }
                };
                let (prefix, namespace) = split_dc(&prefix);
                let namespace = nomad_namespace(namespace);
                let dep = Dependency::NomadVarList {
                    prefix: prefix.trim_start_matches('/').to_string(),
                    namespace,
                };
                let list = match self.fetch(dep.clone(), true) {
                    Some(Value::Array(a)) => a,
                    _ => vec![],
                };
                if name == "nomadVarListSafe" && list.is_empty() && !self.missing.contains(&dep) {
                    self.missing.push(dep);
                }
                Value::Array(list)
            }
            "secret" => {
                let path = vault_path(name, args)?;
                let data = kv_args(name, &args[1..])?;
                let dep = if data.is_empty() {
                    Dependency::VaultRead { path }
                } else {
                    Dependency::VaultWrite { path, data }
                };
                self.fetch(dep, true).unwrap_or(Value::Object(Map::new()))
            }
            "secrets" => {
                let path = vault_path(name, args)?;
                self.fetch(Dependency::VaultList { path }, true)
                    .unwrap_or(Value::Array(vec![]))
            }
            "pkiCert" => {
                let path = vault_path(name, args)?;
                let data = kv_args(name, &args[1..])?;
                self.fetch(Dependency::VaultPki { path, data }, true)
                    .unwrap_or(Value::Object(Map::new()))
            }
            "env" => Value::String(
                self.opts
                    .env
                    .get(&str_arg(name, args, 0)?)
                    .cloned()
                    .unwrap_or_default(),
            ),
            "envOrDefault" => {
                let key = str_arg(name, args, 0)?;
                match self.opts.env.get(&key) {
                    Some(v) if !v.is_empty() => Value::String(v.clone()),
                    _ => Value::String(str_arg(name, args, 1)?),
                }
            }
            "file" => {
                let path = str_arg(name, args, 0)?;
                let full = match &self.opts.file_root {
                    Some(root) => sandboxed(root, &path)?,
                    None => PathBuf::from(&path),
                };
                let dep = Dependency::File {
                    path: full.to_string_lossy().into_owned(),
                };
                if self.seen.insert(dep.clone()) {
                    self.deps.push(dep);
                }
                let text = std::fs::read_to_string(&full)
                    .map_err(|e| format!("file: reading {path:?}: {e}"))?;
                Value::String(text)
            }
            _ => return Ok(None),
        }))
    }
}

impl FuncHost for Host<'_> {
    fn call(&mut self, name: &str, args: Vec<Value>) -> Option<Result<Value, String>> {
        if self.opts.denylist.iter().any(|d| d == name) {
            return Some(Err(format!(
                "function {name:?} is disabled by the client's template function_denylist"
            )));
        }
        if let Some((_, feature)) = UNAVAILABLE.iter().find(|(f, _)| *f == name) {
            return Some(Err(format!(
                "{name} needs {feature}, which Caravan does not have yet"
            )));
        }
        match self.data(name, &args) {
            Ok(Some(v)) => return Some(Ok(v)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        crate::helpers::call(name, &args)
    }
}
