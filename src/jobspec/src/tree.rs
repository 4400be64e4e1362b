//! The parsed file as a tree of items that remember where they came from: byte offsets for
//! error locations, and the evaluation scope (a `dynamic` block's iterator) of each attribute.
//! `dynamic` blocks are expanded here, so the decoder never sees them.

use crate::error::{JobspecError, Pos, Reporter};
use crate::eval::Evaluator;
use hcl::edit::structure::{Body, Structure};
use hcl::edit::Span;
use hcl::Value;
use std::collections::BTreeSet;
use std::rc::Rc;

/// One attribute or block.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) key: String,
    pub(crate) pos: Pos,
    pub(crate) kind: ItemKind,
    pub(crate) scope: Rc<Evaluator>,
}

#[derive(Debug, Clone)]
pub(crate) enum ItemKind {
    Attr(hcl::Expression),
    Block {
        labels: Vec<String>,
        body: Vec<Item>,
    },
}

impl Item {
    pub(crate) fn is_block(&self) -> bool {
        matches!(self.kind, ItemKind::Block { .. })
    }

    /// `ident "label"`: how error paths name a block.
    pub(crate) fn describe(&self) -> String {
        match &self.kind {
            ItemKind::Block { labels, .. } if !labels.is_empty() => {
                let labels: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
                format!("{} {}", self.key, labels.join(" "))
            }
            _ => self.key.clone(),
        }
    }
}

/// Builds the item tree of a body, expanding `dynamic` blocks with `scope`.
pub(crate) fn build(
    body: &Body,
    scope: &Rc<Evaluator>,
    rep: &Reporter,
    path: &str,
) -> Result<Vec<Item>, JobspecError> {
    let mut items = Vec::new();
    let mut attrs = BTreeSet::new();
    for structure in body.iter() {
        let pos = structure.span().map(|s| s.start);
        match structure {
            Structure::Attribute(attr) => {
                let key = attr.key.as_str().to_string();
                if !attrs.insert(key.clone()) {
                    return Err(rep.invalid(
                        pos,
                        path,
                        format!("duplicate argument {key:?}: each argument may be set only once"),
                    ));
                }
                items.push(Item {
                    key,
                    pos,
                    kind: ItemKind::Attr(attr.value.clone().into()),
                    scope: scope.clone(),
                });
            }
            Structure::Block(block) => {
                let key = block.ident.as_str().to_string();
                let labels: Vec<String> = block
                    .labels
                    .iter()
                    .map(|l| l.as_str().to_string())
                    .collect();
                if key == "dynamic" {
                    expand_dynamic(&labels, &block.body, pos, scope, rep, path, &mut items)?;
                    continue;
                }
                let sub = join_path(path, &describe(&key, &labels));
                let body = build(&block.body, scope, rep, &sub)?;
                items.push(Item {
                    key,
                    pos,
                    kind: ItemKind::Block { labels, body },
                    scope: scope.clone(),
                });
            }
        }
    }
    Ok(items)
}

fn describe(key: &str, labels: &[String]) -> String {
    let mut s = key.to_string();
    for l in labels {
        s.push_str(&format!(" {l:?}"));
    }
    s
}

/// Appends a block to an error path (`a -> b`).
pub(crate) fn join_path(path: &str, seg: &str) -> String {
    if path.is_empty() {
        seg.to_string()
    } else {
        format!("{path} -> {seg}")
    }
}

/// `dynamic "name" { for_each, iterator, labels, content {} }` → one `name` block per element.
fn expand_dynamic(
    labels: &[String],
    body: &Body,
    pos: Pos,
    scope: &Rc<Evaluator>,
    rep: &Reporter,
    path: &str,
    out: &mut Vec<Item>,
) -> Result<(), JobspecError> {
    let here = join_path(path, &describe("dynamic", labels));
    let [name] = labels else {
        return Err(rep.invalid(
            pos,
            path,
            "a dynamic block needs exactly one label: the type of block to generate",
        ));
    };
    let mut for_each = None;
    let mut iterator = name.clone();
    let mut label_exprs: Option<hcl::Expression> = None;
    let mut content = None;
    for s in body.iter() {
        let spos = s.span().map(|s| s.start);
        match s {
            Structure::Attribute(a) => {
                let expr: hcl::Expression = a.value.clone().into();
                match a.key.as_str() {
                    "for_each" => {
                        for_each = Some(scope.eval(&expr).map_err(|e| rep.invalid(spos, &here, e))?)
                    }
                    "iterator" => match expr {
                        hcl::Expression::Variable(v) => iterator = v.as_str().to_string(),
                        _ => return Err(rep.invalid(spos, &here, "iterator must be a bare name")),
                    },
                    "labels" => label_exprs = Some(expr),
                    other => {
                        return Err(rep.invalid(
                            spos,
                            &here,
                            format!("unsupported argument {other:?}"),
                        ))
                    }
                }
            }
            Structure::Block(b) if b.ident.as_str() == "content" => content = Some(&b.body),
            Structure::Block(b) => {
                return Err(rep.invalid(
                    spos,
                    &here,
                    format!("unsupported block type {:?}", b.ident.as_str()),
                ))
            }
        }
    }
    let for_each = for_each
        .ok_or_else(|| rep.invalid(pos, &here, "missing required argument \"for_each\""))?;
    let content =
        content.ok_or_else(|| rep.invalid(pos, &here, "missing required block \"content\""))?;
    let elements: Vec<(Value, Value)> = match for_each {
        Value::Array(a) => a
            .into_iter()
            .enumerate()
            .map(|(i, v)| (Value::from(i as u64), v))
            .collect(),
        Value::Object(o) => o.into_iter().map(|(k, v)| (Value::from(k), v)).collect(),
        Value::Null => vec![],
        other => {
            return Err(rep.invalid(
                pos,
                &here,
                format!("for_each must be a list or a map, got {other}"),
            ))
        }
    };
    for (key, value) in elements {
        let mut obj = hcl::Map::new();
        obj.insert("key".to_string(), key);
        obj.insert("value".to_string(), value);
        let inner = Rc::new(scope.with(&iterator, Value::Object(obj)));
        let labels = match &label_exprs {
            None => vec![],
            Some(e) => match inner.eval(e).map_err(|e| rep.invalid(pos, &here, e))? {
                Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        other => Ok(other.to_string()),
                    })
                    .collect::<Result<Vec<_>, JobspecError>>()?,
                other => {
                    return Err(rep.invalid(
                        pos,
                        &here,
                        format!("labels must be a list of strings, got {other}"),
                    ))
                }
            },
        };
        let body = build(content, &inner, rep, &here)?;
        out.push(Item {
            key: name.clone(),
            pos,
            kind: ItemKind::Block { labels, body },
            scope: inner,
        });
    }
    Ok(())
}
