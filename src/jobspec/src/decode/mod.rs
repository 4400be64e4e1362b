//! A table-driven decoder from the item tree to Nomad's API JSON. Each block kind is a
//! [`Spec`]: the arguments and blocks it accepts, the API field each one fills and how its
//! value converts. Anything not in the table is rejected with its location and block path, as
//! Nomad rejects it. Growing to more of Nomad's jobspec means adding rows to [`specs`].

pub(crate) mod custom;
pub(crate) mod specs;

use crate::error::{JobspecError, Reporter};
use crate::eval::to_json;
use crate::tree::{join_path, Item, ItemKind};
use caravan_structs::time::parse_duration;
use serde_json::{Map, Value as Json};

pub(crate) type JsonMap = Map<String, Json>;

/// A custom decoder for one key: it gets every item with that key, in file order.
pub(crate) type CustomFn =
    fn(&Decoder, &str, &Field, &[&Item], &mut JsonMap) -> Result<(), JobspecError>;

/// Post-processing of a decoded block; the error becomes a located message.
pub(crate) type FinishFn = fn(&mut JsonMap) -> Result<(), String>;

/// How one argument or block converts.
#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Str,
    Int,
    Bool,
    /// A Go duration string (or a number of nanoseconds) → nanoseconds.
    Duration,
    StrList,
    /// String map, written as a block or as a map argument (`meta`, `env`).
    StrMap,
    /// Map of string lists, as a block or a map argument (check `header`).
    StrListMap,
    /// Any value written as an argument, or a block converted free-form (keys kept).
    Any,
    /// One block → object (a second one is an error).
    Object(&'static Spec),
    /// Repeated blocks → array of objects.
    List(&'static Spec),
    Custom(CustomFn),
}

/// One accepted key.
pub(crate) struct Field {
    pub(crate) hcl: &'static str,
    pub(crate) json: &'static str,
    pub(crate) kind: Kind,
}

/// What a block's labels mean.
#[derive(Clone, Copy)]
pub(crate) enum Label {
    None,
    /// Exactly one label, stored under this key.
    One(&'static str),
}

/// One block kind.
pub(crate) struct Spec {
    pub(crate) label: Label,
    pub(crate) fields: &'static [Field],
    /// Post-processing of the decoded object (shorthands, derived fields).
    pub(crate) finish: Option<FinishFn>,
}

pub(crate) struct Decoder<'a> {
    pub(crate) rep: &'a Reporter<'a>,
}

impl Decoder<'_> {
    /// Decodes a block against its spec.
    pub(crate) fn block(
        &self,
        path: &str,
        item: &Item,
        spec: &Spec,
    ) -> Result<JsonMap, JobspecError> {
        let ItemKind::Block { labels, body } = &item.kind else {
            return Err(self.rep.invalid(
                item.pos,
                path,
                format!("{:?} must be a block, not an argument", item.key),
            ));
        };
        let here = join_path(path, &item.describe());
        let mut out = JsonMap::new();
        match (spec.label, labels.as_slice()) {
            (Label::None, []) => {}
            (Label::One(k), [l]) => {
                out.insert(k.to_string(), Json::String(l.clone()));
            }
            (Label::None, _) => {
                return Err(self.rep.invalid(
                    item.pos,
                    path,
                    format!("a {} block takes no labels", item.key),
                ))
            }
            (Label::One(_), _) => {
                return Err(self.rep.invalid(
                    item.pos,
                    path,
                    format!("a {} block takes exactly one label", item.key),
                ))
            }
        }
        self.body(&here, body, spec, &mut out)?;
        if let Some(finish) = spec.finish {
            finish(&mut out).map_err(|e| self.rep.invalid(item.pos, &here, e))?;
        }
        Ok(out)
    }

    /// Decodes the items of a body into `out`.
    pub(crate) fn body(
        &self,
        path: &str,
        items: &[Item],
        spec: &Spec,
        out: &mut JsonMap,
    ) -> Result<(), JobspecError> {
        // Group by key, keeping the order of first appearance.
        let mut keys: Vec<&str> = Vec::new();
        for it in items {
            if !keys.contains(&it.key.as_str()) {
                keys.push(&it.key);
            }
        }
        // Every key is checked, so one run reports all the problems of a body.
        let mut errors = Vec::new();
        for key in keys {
            let group: Vec<&Item> = items.iter().filter(|i| i.key == key).collect();
            let first = group[0];
            let Some(field) = spec.fields.iter().find(|f| f.hcl == key) else {
                let what = if first.is_block() {
                    "block type"
                } else {
                    "argument"
                };
                let names = spec.fields.iter().map(|f| f.hcl);
                let hint = match crate::suggest::closest(key, names) {
                    Some(s) => format!("; did you mean {s:?}?"),
                    None => String::new(),
                };
                errors.push(self.rep.invalid(
                    first.pos,
                    path,
                    format!("unsupported {what} {key:?}{hint}"),
                ));
                continue;
            };
            if let Err(e) = self.field(path, field, &group, out) {
                errors.push(e);
            }
        }
        JobspecError::combine(errors)
    }

    fn field(
        &self,
        path: &str,
        field: &Field,
        group: &[&Item],
        out: &mut JsonMap,
    ) -> Result<(), JobspecError> {
        let first = group[0];
        match field.kind {
            Kind::Custom(f) => return f(self, path, field, group, out),
            Kind::List(spec) => {
                let mut arr = match out.remove(field.json) {
                    Some(Json::Array(a)) => a,
                    _ => Vec::new(),
                };
                let mut errors = Vec::new();
                for it in group {
                    match self
                        .expect_block(path, it)
                        .and_then(|_| self.block(path, it, spec))
                    {
                        Ok(m) => arr.push(Json::Object(m)),
                        Err(e) => errors.push(e),
                    }
                }
                out.insert(field.json.to_string(), Json::Array(arr));
                return JobspecError::combine(errors);
            }
            _ => {}
        }
        if let Some(dup) = group.get(1) {
            let what = if dup.is_block() { "block" } else { "argument" };
            return Err(self.rep.invalid(
                dup.pos,
                path,
                format!("duplicate {} {what}: only one is allowed", field.hcl),
            ));
        }
        let value = match field.kind {
            Kind::Object(spec) => {
                self.expect_block(path, first)?;
                Json::Object(self.block(path, first, spec)?)
            }
            Kind::StrMap => self.str_map(path, first, Kind::Str)?,
            Kind::StrListMap => self.str_map(path, first, Kind::StrList)?,
            Kind::Any => self.free_form(path, first)?,
            _ => {
                let v = self.attr(path, first)?;
                if v.is_null() {
                    return Ok(());
                }
                convert(field.kind, &v).map_err(|e| {
                    self.rep
                        .invalid(first.pos, path, format!("argument {:?}: {e}", field.hcl))
                })?
            }
        };
        out.insert(field.json.to_string(), value);
        Ok(())
    }

    fn expect_block(&self, path: &str, it: &Item) -> Result<(), JobspecError> {
        if it.is_block() {
            Ok(())
        } else {
            Err(self.rep.invalid(
                it.pos,
                path,
                format!(
                    "unsupported argument {:?}: did you mean to define a block of type {:?}?",
                    it.key, it.key
                ),
            ))
        }
    }

    /// Evaluates an argument; a block where an argument is expected is an error.
    pub(crate) fn attr(&self, path: &str, it: &Item) -> Result<Json, JobspecError> {
        match &it.kind {
            ItemKind::Attr(expr) => it.scope.eval(expr).map(|v| to_json(&v)).map_err(|e| {
                self.rep
                    .invalid(it.pos, path, format!("argument {:?}: {e}", it.key))
            }),
            ItemKind::Block { .. } => Err(self.rep.invalid(
                it.pos,
                path,
                format!(
                    "unsupported block type {:?}: {:?} is an argument (write {} = ...)",
                    it.key, it.key, it.key
                ),
            )),
        }
    }

    /// `meta { k = "v" }` or `meta = { "k.x" = "v" }` → string map.
    fn str_map(&self, path: &str, it: &Item, elem: Kind) -> Result<Json, JobspecError> {
        let here = join_path(path, &it.describe());
        let mut out = JsonMap::new();
        match &it.kind {
            ItemKind::Attr(_) => {
                let v = self.attr(path, it)?;
                match v {
                    Json::Object(m) => {
                        for (k, v) in m {
                            let s = convert(elem, &v).map_err(|e| {
                                self.rep.invalid(it.pos, &here, format!("key {k:?}: {e}"))
                            })?;
                            out.insert(k, s);
                        }
                    }
                    Json::Null => {}
                    other => {
                        return Err(self.rep.invalid(
                            it.pos,
                            path,
                            format!("{:?} must be a map, got {other}", it.key),
                        ))
                    }
                }
            }
            ItemKind::Block { labels, body } => {
                if !labels.is_empty() {
                    return Err(self.rep.invalid(
                        it.pos,
                        path,
                        format!("a {} block takes no labels", it.key),
                    ));
                }
                for sub in body {
                    if sub.is_block() {
                        return Err(self.rep.invalid(
                            sub.pos,
                            &here,
                            format!(
                                "unexpected block {:?}: {} holds only name = value pairs",
                                sub.key, it.key
                            ),
                        ));
                    }
                    let v = self.attr(&here, sub)?;
                    if v.is_null() {
                        continue;
                    }
                    let s = convert(elem, &v).map_err(|e| {
                        self.rep
                            .invalid(sub.pos, &here, format!("key {:?}: {e}", sub.key))
                    })?;
                    out.insert(sub.key.clone(), s);
                }
            }
        }
        Ok(Json::Object(out))
    }

    /// Converts an argument or block without a schema (driver `config`, scaling `policy`,
    /// proxy `config`): keys are kept as written and nested blocks become arrays of objects,
    /// as Nomad hands them to drivers and plugins.
    pub(crate) fn free_form(&self, path: &str, it: &Item) -> Result<Json, JobspecError> {
        match &it.kind {
            ItemKind::Attr(_) => self.attr(path, it),
            ItemKind::Block { labels, body } => {
                let here = join_path(path, &it.describe());
                let inner = self.free_form_body(&here, body)?;
                Ok(wrap_labels(labels, inner))
            }
        }
    }

    pub(crate) fn free_form_body(&self, path: &str, items: &[Item]) -> Result<Json, JobspecError> {
        let mut out = JsonMap::new();
        let mut keys: Vec<&str> = Vec::new();
        for it in items {
            if !keys.contains(&it.key.as_str()) {
                keys.push(&it.key);
            }
        }
        for key in keys {
            let group: Vec<&Item> = items.iter().filter(|i| i.key == key).collect();
            if group[0].is_block() {
                let mut arr = Vec::new();
                for it in &group {
                    arr.push(self.free_form(path, it)?);
                }
                out.insert(key.to_string(), Json::Array(arr));
            } else {
                out.insert(key.to_string(), self.free_form(path, group[0])?);
            }
        }
        Ok(Json::Object(out))
    }
}

fn wrap_labels(labels: &[String], inner: Json) -> Json {
    labels.iter().rev().fold(inner, |acc, l| {
        let mut m = JsonMap::new();
        m.insert(l.clone(), acc);
        Json::Object(m)
    })
}

/// Converts an evaluated value to the JSON a field of this kind holds.
pub(crate) fn convert(kind: Kind, v: &Json) -> Result<Json, String> {
    match kind {
        Kind::Str => match v {
            Json::String(_) => Ok(v.clone()),
            Json::Number(n) => Ok(Json::String(n.to_string())),
            Json::Bool(b) => Ok(Json::String(b.to_string())),
            other => Err(format!("expected a string, got {}", type_name(other))),
        },
        Kind::Int => match v {
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            Json::Number(n) => match n.as_f64() {
                Some(f) if f.fract() == 0.0 => Ok(Json::from(f as i64)),
                _ => Err(format!("expected a whole number, got {n}")),
            },
            Json::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Json::from)
                .map_err(|_| format!("expected a whole number, got {s:?}")),
            other => Err(format!("expected a number, got {}", type_name(other))),
        },
        Kind::Bool => match v {
            Json::Bool(_) => Ok(v.clone()),
            Json::String(s) if s == "true" => Ok(Json::Bool(true)),
            Json::String(s) if s == "false" => Ok(Json::Bool(false)),
            other => Err(format!("expected a bool, got {}", type_name(other))),
        },
        Kind::Duration => match v {
            Json::String(s) => parse_duration(s)
                .map(Json::from)
                .map_err(|e| format!("invalid duration: {e}")),
            Json::Number(n) if n.is_i64() || n.is_u64() => Ok(v.clone()),
            other => Err(format!(
                "expected a duration such as \"30s\", got {}",
                type_name(other)
            )),
        },
        Kind::StrList => match v {
            Json::Array(items) => items
                .iter()
                .map(|i| convert(Kind::Str, i))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            other => Err(format!(
                "expected a list of strings, got {}",
                type_name(other)
            )),
        },
        _ => Ok(v.clone()),
    }
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "bool",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "list",
        Json::Object(_) => "map",
    }
}
