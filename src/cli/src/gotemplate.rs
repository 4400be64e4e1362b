//! A small evaluator for Go's `text/template` language over JSON values, for the `-t` flag of
//! read commands. It covers what people put in `-t`: fields (`{{.ID}}`, `{{.Job.Name}}`),
//! `range` (with `$i, $v :=`), `if`/`else if`/`else`, `with`, pipelines (`{{.ID | printf "%s"}}`),
//! variables, parentheses, `{{-`/`-}}` trimming, comments, and the functions `printf`,
//! `print`, `println`, `len`, `index`, `eq`, `ne`, `lt`, `le`, `gt`, `ge`, `and`, `or`, `not`,
//! `join`, `upper`, `lower`, `toJson`.

use serde_json::Value;

/// A template that failed to parse or execute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, TemplateError> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Str(String),
    Num(Value),
    Bool(bool),
    Nil,
    Ident(String),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Pipeline {
    decl: Vec<String>,
    cmds: Vec<Vec<Arg>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
}

enum Item {
    Text(String),
    Action(String),
}

/// Splits the source into text and action items, applying trim markers and dropping comments.
fn split(src: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = vec![];
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i + 2..])),
            None => (rest, None),
        };
        let mut text = text.to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let Some(after) = after else {
            items.push(Item::Text(text));
            break;
        };
        let Some(close) = after.find("}}") else {
            return err("unclosed action");
        };
        let mut inner = &after[..close];
        if let Some(s) = inner.strip_prefix("- ") {
            text = text.trim_end().to_string();
            inner = s;
        } else if inner == "-" {
            text = text.trim_end().to_string();
            inner = "";
        }
        trim_next = false;
        if let Some(s) = inner.strip_suffix(" -") {
            trim_next = true;
            inner = s;
        }
        if !text.is_empty() {
            items.push(Item::Text(text));
        }
        let inner = inner.trim();
        if !(inner.starts_with("/*") && inner.ends_with("*/")) {
            items.push(Item::Action(inner.to_string()));
        }
        rest = &after[close + 2..];
    }
    Ok(items)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    Declare,
    Comma,
    Str(String),
    Num(Value),
    Ident(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    /// `.Field.Sub` right after a `)`.
    Chain(Vec<String>),
}

fn field_path(s: &str) -> Vec<String> {
    s.split('.')
        .filter(|p| !p.is_empty())
        .map(|p| p.to_string())
        .collect()
}

fn lex(src: &str) -> Result<Vec<Tok>, TemplateError> {
    let chars: Vec<char> = src.chars().collect();
    let mut toks = vec![];
    let mut i = 0;
    let ident_char = |c: char| c.is_alphanumeric() || c == '_' || c == '.';
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            '(' => {
                toks.push(Tok::Open);
                i += 1
            }
            ')' => {
                toks.push(Tok::Close);
                i += 1;
                if i < chars.len() && chars[i] == '.' {
                    let start = i;
                    while i < chars.len() && ident_char(chars[i]) {
                        i += 1;
                    }
                    let s: String = chars[start..i].iter().collect();
                    toks.push(Tok::Chain(field_path(&s)));
                }
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => {
                toks.push(Tok::Declare);
                i += 1
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&ch) = chars.get(i) else {
                        return err("unterminated quoted string");
                    };
                    i += 1;
                    match ch {
                        '"' => break,
                        '\\' => {
                            let Some(&e) = chars.get(i) else {
                                return err("unterminated quoted string");
                            };
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                other => other,
                            });
                        }
                        other => s.push(other),
                    }
                }
                toks.push(Tok::Str(s));
            }
            '`' => {
                let start = i + 1;
                let Some(len) = chars[start..].iter().position(|&c| c == '`') else {
                    return err("unterminated raw string");
                };
                toks.push(Tok::Str(chars[start..start + len].iter().collect()));
                i = start + len + 1;
            }
            '$' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                let fstart = i;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let path: String = chars[fstart..i].iter().collect();
                toks.push(Tok::Var(name, field_path(&path)));
            }
            '.' => {
                let start = i;
                i += 1;
                while i < chars.len() && ident_char(chars[i]) {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                toks.push(Tok::Field(field_path(&s)));
            }
            c if c.is_ascii_digit() || c == '-' || c == '+' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let v = if let Ok(n) = s.parse::<i64>() {
                    Value::from(n)
                } else if let Ok(f) = s.parse::<f64>() {
                    Value::from(f)
                } else {
                    return err(format!("bad number syntax: {s:?}"));
                };
                toks.push(Tok::Num(v));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                toks.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return err(format!("unexpected {other:?} in action")),
        }
    }
    Ok(toks)
}

fn parse_pipeline(toks: &[Tok], pos: &mut usize, nested: bool) -> Result<Pipeline, TemplateError> {
    let mut p = Pipeline::default();
    // Variable declarations: `$x :=` or `$i, $v :=`.
    let save = *pos;
    let mut names = vec![];
    while let Some(Tok::Var(name, path)) = toks.get(*pos) {
        if !path.is_empty() {
            break;
        }
        names.push(name.clone());
        *pos += 1;
        match toks.get(*pos) {
            Some(Tok::Comma) => *pos += 1,
            Some(Tok::Declare) => {
                *pos += 1;
                p.decl = std::mem::take(&mut names);
                break;
            }
            _ => break,
        }
    }
    if p.decl.is_empty() {
        *pos = save;
    }
    let mut cmd: Vec<Arg> = vec![];
    while let Some(tok) = toks.get(*pos) {
        *pos += 1;
        match tok {
            Tok::Pipe => {
                if cmd.is_empty() {
                    return err("missing command before '|'");
                }
                p.cmds.push(std::mem::take(&mut cmd));
            }
            Tok::Close => {
                if nested {
                    break;
                }
                return err("unexpected ')'");
            }
            Tok::Open => {
                let sub = parse_pipeline(toks, pos, true)?;
                let chain = match toks.get(*pos) {
                    Some(Tok::Chain(c)) => {
                        *pos += 1;
                        c.clone()
                    }
                    _ => vec![],
                };
                cmd.push(Arg::Sub(Box::new(sub), chain));
            }
            Tok::Str(s) => cmd.push(Arg::Str(s.clone())),
            Tok::Num(n) => cmd.push(Arg::Num(n.clone())),
            Tok::Field(f) => cmd.push(Arg::Dot(f.clone())),
            Tok::Var(n, f) => cmd.push(Arg::Var(n.clone(), f.clone())),
            Tok::Ident(id) => cmd.push(match id.as_str() {
                "true" => Arg::Bool(true),
                "false" => Arg::Bool(false),
                "nil" => Arg::Nil,
                _ => Arg::Ident(id.clone()),
            }),
            Tok::Comma | Tok::Declare | Tok::Chain(_) => {
                return err("unexpected token in pipeline")
            }
        }
    }
    if !cmd.is_empty() {
        p.cmds.push(cmd);
    }
    if p.cmds.is_empty() {
        return err("missing value for command");
    }
    Ok(p)
}

fn parse_action_pipeline(src: &str) -> Result<Pipeline, TemplateError> {
    let toks = lex(src)?;
    let mut pos = 0;
    let p = parse_pipeline(&toks, &mut pos, false)?;
    if pos != toks.len() {
        return err(format!("unexpected input in {src:?}"));
    }
    Ok(p)
}

/// What ended a list of nodes.
enum Closer {
    Eof,
    End,
    Else,
    ElseIf(String),
}

fn parse_list(items: &[Item], pos: &mut usize) -> Result<(Vec<Node>, Closer), TemplateError> {
    let mut nodes = vec![];
    while let Some(item) = items.get(*pos) {
        *pos += 1;
        match item {
            Item::Text(t) => nodes.push(Node::Text(t.clone())),
            Item::Action(a) => {
                let (kw, rest) = match a.split_once(char::is_whitespace) {
                    Some((k, r)) => (k, r.trim()),
                    None => (a.as_str(), ""),
                };
                match kw {
                    "end" => return Ok((nodes, Closer::End)),
                    "else" if rest.is_empty() => return Ok((nodes, Closer::Else)),
                    "else" => match rest.strip_prefix("if") {
                        Some(cond) => return Ok((nodes, Closer::ElseIf(cond.trim().to_string()))),
                        None => return err(format!("unexpected \"else {rest}\"")),
                    },
                    "if" | "range" | "with" => nodes.push(parse_block(kw, rest, items, pos)?),
                    "define" | "template" | "block" => {
                        return err(format!("{kw:?} is not supported"))
                    }
                    _ => nodes.push(Node::Action(parse_action_pipeline(a)?)),
                }
            }
        }
    }
    Ok((nodes, Closer::Eof))
}

fn parse_block(
    kw: &str,
    cond: &str,
    items: &[Item],
    pos: &mut usize,
) -> Result<Node, TemplateError> {
    let pipe = parse_action_pipeline(cond)?;
    let (body, end) = parse_list(items, pos)?;
    let els = match end {
        Closer::End => vec![],
        Closer::Else => {
            let (els, end) = parse_list(items, pos)?;
            if !matches!(end, Closer::End) {
                return err(format!("missing {{{{end}}}} for {kw}"));
            }
            els
        }
        Closer::ElseIf(c) if kw == "if" => vec![parse_block("if", &c, items, pos)?],
        Closer::ElseIf(_) => return err(format!("\"else if\" inside {kw}")),
        Closer::Eof => return err(format!("unexpected EOF: missing {{{{end}}}} for {kw}")),
    };
    Ok(match kw {
        "if" => Node::If(pipe, body, els),
        "range" => Node::Range(pipe, body, els),
        _ => Node::With(pipe, body, els),
    })
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        let items = split(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_list(&items, &mut pos)?;
        match end {
            Closer::Eof => Ok(Template { nodes }),
            _ => err("unexpected {{end}} or {{else}}"),
        }
    }

    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        let mut st = State {
            vars: vec![("$".into(), data.clone())],
            out: String::new(),
        };
        st.walk(&self.nodes, data)?;
        Ok(st.out)
    }
}

/// Parses and runs `src` over `data`.
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse(src)?.execute(data)
}

struct State {
    vars: Vec<(String, Value)>,
    out: String,
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().map(|f| f != 0.0).unwrap_or(false),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn lookup(mut v: Value, path: &[String]) -> Value {
    for p in path {
        v = match v {
            Value::Object(mut m) => m.remove(p).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    v
}

/// Go's `%v` rendering of a value.
pub fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    f.to_string()
                }
            }
        }
        Value::String(s) => s.clone(),
        Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(go_print_inner).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(o) => {
            let parts: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("{k}:{}", go_print_inner(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

fn go_print_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_print(other),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn compare(a: &Value, b: &Value) -> Result<std::cmp::Ordering, TemplateError> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => match (num(a), num(b)) {
            (Some(x), Some(y)) => x.partial_cmp(&y).ok_or_else(|| TemplateError("NaN".into())),
            _ => err("incompatible types for comparison"),
        },
    }
}

/// A subset of Go's `fmt.Sprintf`.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut ai = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        let verb = loop {
            match it.next() {
                Some(ch) if "-+# 0123456789.".contains(ch) => spec.push(ch),
                Some(ch) => break ch,
                None => {
                    out.push('%');
                    out.push_str(&spec);
                    return out;
                }
            }
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(ai) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        ai += 1;
        let left = spec.starts_with('-');
        let zero = spec.trim_start_matches('-').starts_with('0');
        let spec_body = spec.trim_start_matches(['-', '+', '#', ' ', '0']);
        let (width, prec) = match spec_body.split_once('.') {
            Some((w, p)) => (
                w.parse::<usize>().ok(),
                Some(p.parse::<usize>().unwrap_or(0)),
            ),
            None => (spec_body.parse::<usize>().ok(), None),
        };
        let body = match verb {
            'd' => match num(arg) {
                Some(f) => format!("{}", f.trunc() as i64),
                None => format!("%!d({})", go_print(arg)),
            },
            'f' | 'F' => match num(arg) {
                Some(f) => format!("{:.*}", prec.unwrap_or(6), f),
                None => format!("%!f({})", go_print(arg)),
            },
            'q' => serde_json::to_string(&Value::String(go_print(arg))).unwrap_or_default(),
            'x' => match arg {
                Value::Number(_) => format!("{:x}", num(arg).unwrap_or(0.0) as i64),
                _ => go_print(arg).bytes().map(|b| format!("{b:02x}")).collect(),
            },
            't' => go_print(arg),
            _ => {
                let s = go_print(arg);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
        };
        let len = body.chars().count();
        match width {
            Some(w) if w > len => {
                let pad = w - len;
                if left {
                    out.push_str(&body);
                    out.extend(std::iter::repeat_n(' ', pad));
                } else if zero && matches!(verb, 'd' | 'f') {
                    out.extend(std::iter::repeat_n('0', pad));
                    out.push_str(&body);
                } else {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    out
}

fn call(name: &str, args: Vec<Value>) -> Result<Value, TemplateError> {
    let want = |n: usize| -> Result<(), TemplateError> {
        if args.len() == n {
            Ok(())
        } else {
            err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    Ok(match name {
        "printf" => {
            let Some(Value::String(f)) = args.first() else {
                return err("printf needs a format string");
            };
            Value::String(sprintf(f, &args[1..]))
        }
        "print" => Value::String(args.iter().map(go_print).collect::<Vec<_>>().join("")),
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(go_print).collect::<Vec<_>>().join(" ")
        )),
        "len" => {
            want(1)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::Null => 0,
                _ => return err("len of non-collection"),
            })
        }
        "index" => {
            let mut it = args.into_iter();
            let mut v = it.next().unwrap_or(Value::Null);
            for k in it {
                v = match (v, &k) {
                    (Value::Array(a), Value::Number(n)) => n
                        .as_u64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| TemplateError("index out of range".into()))?,
                    (Value::Object(mut o), Value::String(s)) => o.remove(s).unwrap_or(Value::Null),
                    (Value::Null, _) => Value::Null,
                    _ => return err("can't index item"),
                };
            }
            v
        }
        "eq" => {
            if args.len() < 2 {
                return err("eq needs at least two arguments");
            }
            let first = &args[0];
            Value::Bool(args[1..].iter().any(|a| match (num(first), num(a)) {
                (Some(x), Some(y)) => x == y,
                _ => a == first,
            }))
        }
        "ne" => {
            want(2)?;
            Value::Bool(match (num(&args[0]), num(&args[1])) {
                (Some(x), Some(y)) => x != y,
                _ => args[0] != args[1],
            })
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let o = compare(&args[0], &args[1])?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            })
        }
        "and" => args
            .iter()
            .find(|a| !truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "or" => args
            .iter()
            .find(|a| truthy(a))
            .or(args.last())
            .cloned()
            .unwrap_or(Value::Null),
        "not" => {
            want(1)?;
            Value::Bool(!truthy(&args[0]))
        }
        "join" => {
            want(2)?;
            let (list, sep) = match (&args[0], &args[1]) {
                (Value::String(s), Value::Array(a)) => (a, s),
                (Value::Array(a), Value::String(s)) => (a, s),
                _ => return err("join needs a list and a separator"),
            };
            Value::String(list.iter().map(go_print).collect::<Vec<_>>().join(sep))
        }
        "upper" => {
            want(1)?;
            Value::String(go_print(&args[0]).to_uppercase())
        }
        "lower" => {
            want(1)?;
            Value::String(go_print(&args[0]).to_lowercase())
        }
        "toJson" | "json" => {
            want(1)?;
            Value::String(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        other => return err(format!("function {other:?} not defined")),
    })
}

impl State {
    fn var(&self, name: &str) -> Result<Value, TemplateError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| TemplateError(format!("undefined variable: {name}")))
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match a {
            Arg::Dot(path) => lookup(dot.clone(), path),
            Arg::Var(n, path) => lookup(self.var(n)?, path),
            Arg::Str(s) => Value::String(s.clone()),
            Arg::Num(n) => n.clone(),
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Nil => Value::Null,
            Arg::Ident(f) => call(f, vec![])?,
            Arg::Sub(p, chain) => lookup(self.pipeline(p, dot)?, chain),
        })
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut prev: Option<Value> = None;
        for cmd in &p.cmds {
            let v = match &cmd[0] {
                Arg::Ident(f) => {
                    let mut args = vec![];
                    for a in &cmd[1..] {
                        args.push(self.arg(a, dot)?);
                    }
                    if let Some(p) = prev.take() {
                        args.push(p);
                    }
                    call(f, args)?
                }
                single => {
                    if cmd.len() > 1 || prev.is_some() {
                        return err("can't give argument to non-function");
                    }
                    self.arg(single, dot)?
                }
            };
            prev = Some(v);
        }
        let v = prev.unwrap_or(Value::Null);
        if let [name] = p.decl.as_slice() {
            self.vars.push((name.clone(), v.clone()));
        }
        Ok(v)
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.decl.is_empty() {
                        self.out.push_str(&go_print(&v));
                    }
                }
                Node::If(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.walk(body, dot)?;
                    } else {
                        self.walk(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::With(p, body, els) => {
                    let mark = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    if truthy(&v) {
                        self.walk(body, &v)?;
                    } else {
                        self.walk(els, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(p, body, els) => {
                    let mark = self.vars.len();
                    let decl = p.decl.clone();
                    let plain = Pipeline {
                        decl: vec![],
                        cmds: p.cmds.clone(),
                    };
                    let v = self.pipeline(&plain, dot)?;
                    let entries: Vec<(Value, Value)> = match v {
                        Value::Array(a) => a
                            .into_iter()
                            .enumerate()
                            .map(|(i, e)| (Value::from(i), e))
                            .collect(),
                        Value::Object(o) => {
                            o.into_iter().map(|(k, e)| (Value::String(k), e)).collect()
                        }
                        Value::Null => vec![],
                        _ => return err("range can't iterate over a scalar"),
                    };
                    if entries.is_empty() {
                        self.walk(els, dot)?;
                    }
                    for (k, e) in entries {
                        let inner = self.vars.len();
                        match decl.as_slice() {
                            [v] => self.vars.push((v.clone(), e.clone())),
                            [kn, vn] => {
                                self.vars.push((kn.clone(), k));
                                self.vars.push((vn.clone(), e.clone()));
                            }
                            _ => {}
                        }
                        self.walk(body, &e)?;
                        self.vars.truncate(inner);
                    }
                    self.vars.truncate(mark);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_nested_fields() {
        let d = json!({"ID": "abc", "Job": {"Name": "web"}});
        assert_eq!(render("{{.ID}}", &d).unwrap(), "abc");
        assert_eq!(
            render("id={{ .ID }} job={{.Job.Name}}", &d).unwrap(),
            "id=abc job=web"
        );
        assert_eq!(render("{{.Missing}}", &d).unwrap(), "<no value>");
    }

    #[test]
    fn range_over_lists_with_variables() {
        let d = json!([{"ID": "a"}, {"ID": "b"}]);
        assert_eq!(render("{{range .}}{{.ID}}{{end}}", &d).unwrap(), "ab");
        assert_eq!(
            render("{{range $i, $e := .}}{{$i}}={{$e.ID}} {{end}}", &d).unwrap(),
            "0=a 1=b "
        );
        assert_eq!(
            render("{{range .}}x{{else}}empty{{end}}", &json!([])).unwrap(),
            "empty"
        );
        assert_eq!(
            render("{{range .}}\n  {{- .ID}}\n{{- end}}", &d).unwrap(),
            "ab"
        );
    }

    #[test]
    fn printf_and_pipelines() {
        let d = json!({"Name": "cache", "Count": 3, "F": 0.5});
        assert_eq!(render(r#"{{printf "%s" .Name}}"#, &d).unwrap(), "cache");
        assert_eq!(
            render(r#"{{printf "%-6s|%03d" .Name .Count}}"#, &d).unwrap(),
            "cache |003"
        );
        assert_eq!(
            render(r#"{{.Name | printf "%q"}}"#, &d).unwrap(),
            "\"cache\""
        );
        assert_eq!(render(r#"{{printf "%.2f" .F}}"#, &d).unwrap(), "0.50");
        assert_eq!(render("{{len .Name}}", &d).unwrap(), "5");
    }

    #[test]
    fn conditionals_and_comparisons() {
        let d = json!({"Status": "running", "N": 2, "Tags": ["a", "b"]});
        let t = r#"{{if eq .Status "dead"}}D{{else if gt .N 1}}many{{else}}one{{end}}"#;
        assert_eq!(render(t, &d).unwrap(), "many");
        assert_eq!(render("{{if .Tags}}{{len .Tags}}{{end}}", &d).unwrap(), "2");
        assert_eq!(
            render("{{with .Status}}{{.}}{{end}}", &d).unwrap(),
            "running"
        );
        assert_eq!(render(r#"{{join .Tags ","}}"#, &d).unwrap(), "a,b");
        assert_eq!(render("{{index .Tags 1}}", &d).unwrap(), "b");
        assert_eq!(render("{{(index .Tags 0) | upper}}", &d).unwrap(), "A");
        assert_eq!(render("{{/* note */}}ok", &d).unwrap(), "ok");
    }

    #[test]
    fn maps_print_like_go() {
        let d = json!({"M": {"b": 1, "a": "x"}, "L": [1, 2]});
        assert_eq!(render("{{.M}} {{.L}}", &d).unwrap(), "map[a:x b:1] [1 2]");
    }

    #[test]
    fn errors_are_reported() {
        assert!(render("{{if .X}}", &json!({})).is_err());
        assert!(render("{{.X", &json!({})).is_err());
        assert!(render("{{nosuch .X}}", &json!({})).is_err());
        assert!(render("{{end}}", &json!({})).is_err());
    }
}
