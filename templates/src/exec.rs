//! Executes a parsed template over a JSON value: variables and their scopes, pipelines,
//! control structures (with `break`/`continue`), `template` calls, Go's builtin functions;
//! any other function name is handed to a [`FuncHost`] (consul-template's helpers and data
//! functions, or the CLI's extras).

use crate::error::TemplateError;
use crate::fmt::{go_print, num, sprintf, truthy};
use crate::parse::{line_col, Cmd, Node, Operand, Pipeline, Pos, Template};
use serde_json::Value;
use std::cmp::Ordering;

/// Functions beyond Go's builtins. `None`: no such function.
pub trait FuncHost {
    fn call(&mut self, name: &str, args: Vec<Value>) -> Option<Result<Value, String>>;
}

/// A host with no functions beyond the builtins.
pub struct NoFuncs;

impl FuncHost for NoFuncs {
    fn call(&mut self, _name: &str, _args: Vec<Value>) -> Option<Result<Value, String>> {
        None
    }
}

/// Execution options.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Go's `missingkey=error`: a missing map key fails the render (`error_on_missing_key`).
    pub error_on_missing_key: bool,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'a> {
    tmpl: &'a Template,
    vars: Vec<(String, Value)>,
    out: String,
    host: &'a mut dyn FuncHost,
    opts: &'a ExecOptions,
    depth: usize,
}

type R<T> = Result<T, (Pos, String)>;

impl Template {
    /// Runs the template over `data`.
    pub fn execute(
        &self,
        data: &Value,
        host: &mut dyn FuncHost,
        opts: &ExecOptions,
    ) -> Result<String, TemplateError> {
        let mut ex = Exec {
            tmpl: self,
            vars: vec![("$".into(), data.clone())],
            out: String::new(),
            host,
            opts,
            depth: 0,
        };
        let nodes = self.tree.get(&self.name).cloned().unwrap_or_default();
        match ex.walk(&nodes, data) {
            Ok(_) => Ok(ex.out),
            Err((pos, message)) => {
                let (line, col) = line_col(&self.src, pos);
                Err(TemplateError::Exec {
                    name: self.name.clone(),
                    line,
                    col,
                    message,
                })
            }
        }
    }
}

fn compare(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).ok_or_else(|| "NaN in comparison".into()),
            _ => Err(format!(
                "incompatible types for comparison: {} and {}",
                kind(a),
                kind(b)
            )),
        },
    }
}

pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn index_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            .ok_or_else(|| "cannot index with a non-integer".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            kind(other)
        )),
    }
}

fn escape_html(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '\'' => o.push_str("&#39;"),
            '"' => o.push_str("&#34;"),
            '\0' => o.push('\u{fffd}'),
            c => o.push(c),
        }
    }
    o
}

fn escape_js(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '\'' => o.push_str("\\'"),
            '"' => o.push_str("\\\""),
            '<' => o.push_str("\\u003C"),
            '>' => o.push_str("\\u003E"),
            '&' => o.push_str("\\u0026"),
            '=' => o.push_str("\\u003D"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04X}", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// Go's `url.QueryEscape`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                o.push(b as char)
            }
            b' ' => o.push('+'),
            b => o.push_str(&format!("%{b:02X}")),
        }
    }
    o
}

fn eval_args_str(args: &[Value]) -> String {
    // Go's evalArgs: fmt.Sprint semantics (spaces between non-string operands).
    let mut s = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            s.push(' ');
        }
        s.push_str(&print_arg(a));
    }
    s
}

fn print_arg(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

impl<'a> Exec<'a> {
    fn walk(&mut self, nodes: &[Node], dot: &Value) -> R<Flow> {
        for n in nodes {
            match self.node(n, dot)? {
                Flow::Normal => {}
                f => return Ok(f),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, n: &Node, dot: &Value) -> R<Flow> {
        match n {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(p) => {
                let v = self.pipeline(p, dot)?;
                if p.decl.is_empty() {
                    self.out.push_str(&go_print(&v));
                }
            }
            Node::If(p, then, els) => {
                let mark = self.vars.len();
                let v = self.pipeline(p, dot)?;
                let r = if truthy(&v) {
                    self.walk(then, dot)
                } else {
                    self.walk(els, dot)
                };
                self.vars.truncate(mark);
                return r;
            }
            Node::With(p, then, els) => {
                let mark = self.vars.len();
                let v = self.pipeline(p, dot)?;
                let r = if truthy(&v) {
                    self.walk(then, &v)
                } else {
                    self.walk(els, dot)
                };
                self.vars.truncate(mark);
                return r;
            }
            Node::Range(p, body, els) => return self.range(p, body, els, dot),
            Node::Template(pos, name, pipe) => {
                let Some(nodes) = self.tmpl.tree.get(name).cloned() else {
                    return Err((*pos, format!("no such template {name:?}")));
                };
                let v = match pipe {
                    Some(p) => self.pipeline(p, dot)?,
                    None => Value::Null,
                };
                self.depth += 1;
                if self.depth > 1000 {
                    return Err((*pos, "exceeded maximum template depth (1000)".into()));
                }
                let saved = std::mem::replace(&mut self.vars, vec![("$".into(), v.clone())]);
                let r = self.walk(&nodes, &v);
                self.vars = saved;
                self.depth -= 1;
                r?;
            }
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn range(&mut self, p: &Pipeline, body: &[Node], els: &[Node], dot: &Value) -> R<Flow> {
        let mark = self.vars.len();
        // The range pipeline's declarations are set per element, not to the collection.
        let decl = p.decl.clone();
        let mut plain = p.clone();
        plain.decl.clear();
        let v = self.pipeline(&plain, dot)?;
        let items: Vec<(Value, Value)> = match &v {
            Value::Array(a) => a
                .iter()
                .enumerate()
                .map(|(i, e)| (Value::from(i), e.clone()))
                .collect(),
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort();
                keys.into_iter()
                    .map(|k| (Value::String(k.clone()), o[k].clone()))
                    .collect()
            }
            Value::Null => vec![],
            Value::Number(n) if n.as_i64().is_some() => (0..n.as_i64().unwrap_or(0))
                .map(|i| (Value::from(i), Value::from(i)))
                .collect(),
            other => {
                return Err((
                    p.pos,
                    format!("range can't iterate over {}", go_print(other)),
                ))
            }
        };
        if items.is_empty() {
            let r = self.walk(els, dot);
            self.vars.truncate(mark);
            return r;
        }
        for (k, e) in items {
            let inner = self.vars.len();
            match decl.len() {
                0 => {}
                1 => self.set_var(&decl[0], e.clone(), p.assign),
                _ => {
                    self.set_var(&decl[0], k, p.assign);
                    self.set_var(&decl[1], e.clone(), p.assign);
                }
            }
            let r = self.walk(body, &e);
            self.vars.truncate(inner.max(mark));
            match r? {
                Flow::Break => break,
                Flow::Continue | Flow::Normal => {}
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    fn set_var(&mut self, name: &str, v: Value, assign: bool) {
        if assign {
            if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = v;
                return;
            }
        }
        self.vars.push((name.to_string(), v));
    }

    fn var(&self, pos: Pos, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| (pos, format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> R<Value> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Null);
        if !p.decl.is_empty() {
            if p.assign && !self.vars.iter().any(|(n, _)| n == &p.decl[0]) {
                return Err((p.pos, format!("undefined variable: {}", p.decl[0])));
            }
            self.set_var(&p.decl[0], v.clone(), p.assign);
        }
        Ok(v)
    }

    fn field(&self, pos: Pos, mut v: Value, path: &[String]) -> R<Value> {
        for name in path {
            v = match v {
                Value::Object(mut m) => match m.remove(name) {
                    Some(x) => x,
                    None if self.opts.error_on_missing_key => {
                        return Err((pos, format!("map has no entry for key {name:?}")))
                    }
                    None => Value::Null,
                },
                Value::Null if self.opts.error_on_missing_key => {
                    return Err((pos, format!("nil pointer evaluating interface {{}}.{name}")))
                }
                Value::Null => Value::Null,
                other => {
                    return Err((
                        pos,
                        format!("can't evaluate field {name} in type {}", kind(&other)),
                    ))
                }
            };
        }
        Ok(v)
    }

    fn operand(&mut self, pos: Pos, op: &Operand, dot: &Value) -> R<Value> {
        Ok(match op {
            Operand::Dot => dot.clone(),
            Operand::Field(path) => self.field(pos, dot.clone(), path)?,
            Operand::Var(name, path) => {
                let v = self.var(pos, name)?;
                self.field(pos, v, path)?
            }
            Operand::Lit(v) => v.clone(),
            Operand::Nil => Value::Null,
            Operand::Sub(p, chain) => {
                let v = self.pipeline(p, dot)?;
                self.field(pos, v, chain)?
            }
            Operand::Func(name) => self.call(pos, name, &[], dot, None)?,
        })
    }

    fn command(&mut self, cmd: &Cmd, dot: &Value, piped: Option<Value>) -> R<Value> {
        let pos = cmd.pos;
        match cmd.args.first() {
            Some(Operand::Func(name)) => self.call(pos, name, &cmd.args[1..], dot, piped),
            Some(Operand::Nil) => Err((pos, "nil is not a command".into())),
            Some(op) => {
                if cmd.args.len() > 1 || piped.is_some() {
                    return Err((
                        pos,
                        format!("can't give argument to non-function {op:?}")
                            .replace("Field(", "field("),
                    ));
                }
                self.operand(pos, op, dot)
            }
            None => Err((pos, "empty command".into())),
        }
    }

    fn call(
        &mut self,
        pos: Pos,
        name: &str,
        ops: &[Operand],
        dot: &Value,
        piped: Option<Value>,
    ) -> R<Value> {
        // `and`/`or` evaluate their arguments lazily.
        if name == "and" || name == "or" {
            let n = ops.len() + piped.is_some() as usize;
            if n < 1 {
                return Err((
                    pos,
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                ));
            }
            let mut last = Value::Null;
            for op in ops {
                last = self.operand(pos, op, dot)?;
                if truthy(&last) != (name == "and") {
                    return Ok(last);
                }
            }
            if let Some(p) = piped {
                last = p;
            }
            return Ok(last);
        }
        let mut args = Vec::with_capacity(ops.len() + 1);
        for op in ops {
            args.push(self.operand(pos, op, dot)?);
        }
        if let Some(p) = piped {
            args.push(p);
        }
        match builtin(name, &args) {
            Some(r) => r.map_err(|e| (pos, format!("error calling {name}: {e}"))),
            None => match self.host.call(name, args) {
                Some(r) => {
                    let v = r.map_err(|e| (pos, format!("error calling {name}: {e}")))?;
                    // Go maps are references: `sprig_set $d "k" 1` changes `$d` itself.
                    if let (true, Some(Operand::Var(var, path))) =
                        (crate::sprig::mutates_first_arg(name), ops.first())
                    {
                        self.write_back(var, path, v.clone());
                    }
                    Ok(v)
                }
                None => Err((pos, format!("function {name:?} not defined"))),
            },
        }
    }

    /// Stores `v` at `$var.path...` (for the Sprig functions that change a map in place).
    fn write_back(&mut self, var: &str, path: &[String], v: Value) {
        let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == var) else {
            return;
        };
        let mut target = &mut slot.1;
        for key in path {
            match target {
                Value::Object(m) if m.contains_key(key) => {
                    target = m.get_mut(key).expect("key checked above")
                }
                _ => return,
            }
        }
        *target = v;
    }
}

/// Checks a function got exactly `n` arguments, with Go's message.
pub(crate) fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

/// Go's builtin functions (other than `and`/`or`, which are lazy).
fn builtin(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let r = (|| -> Result<Value, String> {
        Ok(match name {
            "printf" => {
                let Some(Value::String(f)) = args.first() else {
                    return Err("printf needs a format string".into());
                };
                Value::String(sprintf(f, &args[1..]))
            }
            "print" => Value::String(eval_args_str(args)),
            "println" => Value::String(format!(
                "{}\n",
                args.iter().map(print_arg).collect::<Vec<_>>().join(" ")
            )),
            "len" => {
                want(name, args, 1)?;
                Value::from(match &args[0] {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    Value::Object(o) => o.len(),
                    other => return Err(format!("len of type {}", kind(other))),
                })
            }
            "index" => {
                let mut it = args.iter();
                let mut v = it.next().cloned().ok_or("index of untyped nil")?;
                for k in it {
                    v = match (v, k) {
                        (Value::Array(a), k) => {
                            let i = index_int(k)?;
                            a.get(i as usize)
                                .filter(|_| i >= 0)
                                .cloned()
                                .ok_or_else(|| format!("index out of range: {i}"))?
                        }
                        (Value::String(s), k) => {
                            let i = index_int(k)?;
                            s.as_bytes()
                                .get(i as usize)
                                .filter(|_| i >= 0)
                                .map(|b| Value::from(*b))
                                .ok_or_else(|| format!("index out of range: {i}"))?
                        }
                        (Value::Object(mut o), Value::String(s)) => {
                            o.remove(s).unwrap_or(Value::Null)
                        }
                        (Value::Null, _) => return Err("index of untyped nil".into()),
                        (other, _) => {
                            return Err(format!("can't index item of type {}", kind(&other)))
                        }
                    };
                }
                v
            }
            "slice" => {
                let Some(first) = args.first() else {
                    return Err("slice of untyped nil".into());
                };
                let idx: Vec<i64> = args[1..].iter().map(index_int).collect::<Result<_, _>>()?;
                let len = match first {
                    Value::String(s) => s.len(),
                    Value::Array(a) => a.len(),
                    other => return Err(format!("can't slice item of type {}", kind(other))),
                } as i64;
                let lo = idx.first().copied().unwrap_or(0);
                let hi = idx.get(1).copied().unwrap_or(len);
                if lo < 0 || hi < lo || hi > len {
                    return Err(format!(
                        "slice index out of range [{lo}:{hi}] with length {len}"
                    ));
                }
                match first {
                    Value::String(s) => Value::String(
                        s.get(lo as usize..hi as usize)
                            .ok_or("slice splits a UTF-8 character")?
                            .to_string(),
                    ),
                    Value::Array(a) => Value::Array(a[lo as usize..hi as usize].to_vec()),
                    _ => Value::Null,
                }
            }
            "not" => {
                want(name, args, 1)?;
                Value::Bool(!truthy(&args[0]))
            }
            "eq" => {
                if args.len() < 2 {
                    return Err("missing argument for comparison".into());
                }
                Value::Bool(args[1..].iter().any(|a| equal(&args[0], a)))
            }
            "ne" => {
                want(name, args, 2)?;
                Value::Bool(!equal(&args[0], &args[1]))
            }
            "lt" | "le" | "gt" | "ge" => {
                want(name, args, 2)?;
                let o = compare(&args[0], &args[1])?;
                Value::Bool(match name {
                    "lt" => o == Ordering::Less,
                    "le" => o != Ordering::Greater,
                    "gt" => o == Ordering::Greater,
                    _ => o != Ordering::Less,
                })
            }
            "html" => Value::String(escape_html(&eval_args_str(args))),
            "js" => Value::String(escape_js(&eval_args_str(args))),
            "urlquery" => Value::String(query_escape(&eval_args_str(args))),
            "call" => {
                return Err(
                    "call: template data holds no function values in Caravan (JSON data)".into(),
                )
            }
            _ => return Err(String::new()),
        })
    })();
    match r {
        Err(e) if e.is_empty() => None,
        other => Some(other),
    }
}
