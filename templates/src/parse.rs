//! Go `text/template` parsing: splits the source at the (configurable) delimiters, applies the
//! `{{-`/`-}}` trim markers, drops `{{/* comments */}}`, lexes each action and builds the tree
//! (`if`/`else if`/`else`, `range`, `with`, `define`, `template`, `block`, `break`,
//! `continue`). Errors carry the line and column of the offending action.

use crate::error::TemplateError;
use serde_json::Value;
use std::collections::HashMap;

/// A byte offset into the template source.
pub(crate) type Pos = usize;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Dot,
    /// `.A.B` on dot.
    Field(Vec<String>),
    /// `$x.A.B` (`$` alone is the root data).
    Var(String, Vec<String>),
    /// A function name.
    Func(String),
    Lit(Value),
    Nil,
    /// `(pipeline)` with an optional `.A.B` chained after it.
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Cmd {
    pub pos: Pos,
    pub args: Vec<Operand>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Pipeline {
    pub pos: Pos,
    /// Variables declared (`:=`) or assigned (`=`).
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    Range(Pipeline, Vec<Node>, Vec<Node>),
    With(Pipeline, Vec<Node>, Vec<Node>),
    Template(Pos, String, Option<Pipeline>),
    Break(Pos),
    Continue(Pos),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
    Dot,
    Lit(Value),
    Ident(String),
    Field(Vec<String>),
    Var(String, Vec<String>),
    /// `.A.B` right after a `)`.
    Chain(Vec<String>),
}

/// One action's tokens, with the byte offset of each.
struct Action {
    pos: Pos,
    toks: Vec<(Pos, Tok)>,
}

enum Piece {
    Text(String),
    Action(Action),
}

/// A parsed template and the templates it defines (`define`/`block`).
#[derive(Debug, Clone)]
pub struct Template {
    pub(crate) name: String,
    pub(crate) src: String,
    pub(crate) tree: HashMap<String, Vec<Node>>,
}

/// Line and column (1-based) of a byte offset.
pub(crate) fn line_col(src: &str, pos: Pos) -> (usize, usize) {
    let before = &src[..pos.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map(|i| pos - i - 1).unwrap_or(pos);
    (line, col)
}

struct Parser<'a> {
    name: &'a str,
    src: &'a str,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, pos: Pos, msg: impl Into<String>) -> Result<T, TemplateError> {
        let (line, col) = line_col(self.src, pos);
        Err(TemplateError::Parse {
            name: self.name.to_string(),
            line,
            col,
            message: msg.into(),
        })
    }

    /// Splits the source into text and lexed actions.
    fn scan(&self, ld: &str, rd: &str) -> Result<Vec<Piece>, TemplateError> {
        let src = self.src;
        let mut out = vec![];
        let mut i = 0;
        let mut trim_next = false;
        while i <= src.len() {
            let (text_end, action) = match src[i..].find(ld) {
                Some(j) => (i + j, true),
                None => (src.len(), false),
            };
            let mut text = &src[i..text_end];
            if trim_next {
                text = text.trim_start_matches(is_space);
            }
            if !action {
                if !text.is_empty() {
                    out.push(Piece::Text(text.to_string()));
                }
                break;
            }
            let mut p = text_end + ld.len();
            let rest = &src[p..];
            if rest.starts_with('-') && rest[1..].starts_with(is_space) {
                text = text.trim_end_matches(is_space);
                p += 1;
            }
            if !text.is_empty() {
                out.push(Piece::Text(text.to_string()));
            }
            let start = text_end;
            // A comment: `/*` right after the delimiter (and trim marker plus spaces).
            let after_ws = p + src[p..].len() - src[p..].trim_start_matches(is_space).len();
            if src[after_ws..].starts_with("/*") && (after_ws == p || p > start + ld.len()) {
                let Some(close) = src[after_ws + 2..].find("*/") else {
                    return self.err(start, "unclosed comment");
                };
                let mut q = after_ws + 2 + close + 2;
                trim_next = false;
                let tail = &src[q..];
                let ws = tail.len() - tail.trim_start_matches(is_space).len();
                if ws > 0 && tail[ws..].starts_with('-') && tail[ws + 1..].starts_with(rd) {
                    trim_next = true;
                    q += ws + 1;
                } else if !tail.starts_with(rd) {
                    return self.err(start, "comment ends before closing delimiter");
                }
                i = q + rd.len();
                continue;
            }
            let (toks, end, trim) = self.lex(p, rd, start)?;
            trim_next = trim;
            out.push(Piece::Action(Action { pos: start, toks }));
            i = end;
        }
        Ok(out)
    }

    /// Lexes one action from `p` up to its closing delimiter; returns the tokens, the offset
    /// after the delimiter and whether it trims the following text.
    #[allow(clippy::type_complexity)]
    fn lex(
        &self,
        mut p: Pos,
        rd: &str,
        start: Pos,
    ) -> Result<(Vec<(Pos, Tok)>, Pos, bool), TemplateError> {
        let src = self.src;
        let b = src.as_bytes();
        let mut toks: Vec<(Pos, Tok)> = vec![];
        loop {
            if p >= src.len() {
                return self.err(start, "unclosed action");
            }
            let rest = &src[p..];
            if rest.starts_with(rd) {
                return Ok((toks, p + rd.len(), false));
            }
            let c = rest.chars().next().unwrap_or(' ');
            if is_space(c) {
                let ws = rest.len() - rest.trim_start_matches(is_space).len();
                let after = &rest[ws..];
                if after.starts_with('-') && after[1..].starts_with(rd) {
                    return Ok((toks, p + ws + 1 + rd.len(), true));
                }
                p += ws;
                continue;
            }
            let tp = p;
            match c {
                '|' => {
                    toks.push((tp, Tok::Pipe));
                    p += 1;
                }
                '(' => {
                    toks.push((tp, Tok::Open));
                    p += 1;
                }
                ')' => {
                    toks.push((tp, Tok::Close));
                    p += 1;
                    if b.get(p) == Some(&b'.') && b.get(p + 1).is_some_and(|c| is_ident(*c as char))
                    {
                        let (path, n) = read_fields(&src[p..]);
                        toks.push((p, Tok::Chain(path)));
                        p += n;
                    }
                }
                ',' => {
                    toks.push((tp, Tok::Comma));
                    p += 1;
                }
                ':' if rest.starts_with(":=") => {
                    toks.push((tp, Tok::Declare));
                    p += 2;
                }
                '=' => {
                    toks.push((tp, Tok::Assign));
                    p += 1;
                }
                '"' => {
                    let (s, n) = self.read_quoted(rest, tp)?;
                    toks.push((tp, Tok::Lit(Value::String(s))));
                    p += n;
                }
                '`' => {
                    let Some(end) = rest[1..].find('`') else {
                        return self.err(tp, "unterminated raw quoted string");
                    };
                    toks.push((tp, Tok::Lit(Value::String(rest[1..1 + end].to_string()))));
                    p += end + 2;
                }
                '\'' => {
                    let close = if rest[1..].starts_with('\\') {
                        rest.get(3..).and_then(|r| r.find('\'')).map(|e| e + 3)
                    } else {
                        rest[1..].chars().next().map(|c| 1 + c.len_utf8())
                    };
                    let Some(close) = close.filter(|&c| rest[c..].starts_with('\'')) else {
                        return self.err(tp, "unterminated character constant");
                    };
                    let inner = &rest[1..close];
                    let ch = if inner.starts_with('\\') {
                        self.read_quoted(&format!("\"{inner}\""), tp)?
                            .0
                            .chars()
                            .next()
                    } else {
                        inner.chars().next()
                    };
                    toks.push((tp, Tok::Lit(Value::from(ch.unwrap_or('\0') as u32))));
                    p += close + 1;
                }
                '$' => {
                    let n = rest[1..]
                        .find(|c: char| !is_ident(c))
                        .map(|n| n + 1)
                        .unwrap_or(rest.len());
                    let name = rest[..n].to_string();
                    p += n;
                    let (path, m) = read_fields(&src[p..]);
                    p += m;
                    toks.push((tp, Tok::Var(name, path)));
                }
                '.' => {
                    if b.get(p + 1).is_some_and(|c| c.is_ascii_digit()) {
                        let (v, n) = self.read_number(rest, tp)?;
                        toks.push((tp, Tok::Lit(v)));
                        p += n;
                    } else if b.get(p + 1).is_some_and(|c| is_ident(*c as char)) {
                        let (path, n) = read_fields(rest);
                        toks.push((tp, Tok::Field(path)));
                        p += n;
                    } else {
                        toks.push((tp, Tok::Dot));
                        p += 1;
                    }
                }
                '0'..='9' | '-' | '+' => {
                    let (v, n) = self.read_number(rest, tp)?;
                    toks.push((tp, Tok::Lit(v)));
                    p += n;
                }
                c if is_ident(c) => {
                    let n = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
                    let word = &rest[..n];
                    let tok = match word {
                        "true" => Tok::Lit(Value::Bool(true)),
                        "false" => Tok::Lit(Value::Bool(false)),
                        "nil" => Tok::Ident("nil".into()),
                        _ => Tok::Ident(word.to_string()),
                    };
                    toks.push((tp, tok));
                    p += n;
                    // `$x.Field` is handled above; a field right after a function name is Go's
                    // "unexpected ." error, left to the parser.
                }
                other => return self.err(tp, format!("unexpected {other:?} in command")),
            }
        }
    }

    fn read_quoted(&self, rest: &str, pos: Pos) -> Result<(String, usize), TemplateError> {
        let mut out = String::new();
        let mut it = rest.char_indices().skip(1);
        while let Some((i, c)) = it.next() {
            match c {
                '"' => return Ok((out, i + 1)),
                '\n' => break,
                '\\' => match it.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, '0')) => out.push('\0'),
                    Some((_, 'a')) => out.push('\u{7}'),
                    Some((_, 'b')) => out.push('\u{8}'),
                    Some((_, 'f')) => out.push('\u{c}'),
                    Some((_, 'v')) => out.push('\u{b}'),
                    Some((_, 'x')) => {
                        let h: String = (0..2).filter_map(|_| it.next().map(|x| x.1)).collect();
                        match u8::from_str_radix(&h, 16) {
                            Ok(v) => out.push(v as char),
                            Err(_) => return self.err(pos, "bad \\x escape in string"),
                        }
                    }
                    Some((_, 'u')) => {
                        let h: String = (0..4).filter_map(|_| it.next().map(|x| x.1)).collect();
                        match u32::from_str_radix(&h, 16).ok().and_then(char::from_u32) {
                            Some(v) => out.push(v),
                            None => return self.err(pos, "bad \\u escape in string"),
                        }
                    }
                    Some((_, c @ ('\\' | '"' | '\''))) => out.push(c),
                    _ => return self.err(pos, "unknown escape sequence in string"),
                },
                c => out.push(c),
            }
        }
        self.err(pos, "unterminated quoted string")
    }

    fn read_number(&self, rest: &str, pos: Pos) -> Result<(Value, usize), TemplateError> {
        let n = rest
            .char_indices()
            .find(|&(i, c)| {
                !(c.is_ascii_alphanumeric()
                    || c == '.'
                    || c == '_'
                    || ((c == '-' || c == '+')
                        && (i == 0 || matches!(rest.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P'))))
            })
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        let text = rest[..n].replace('_', "");
        let (neg, digits) = match text.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, text.trim_start_matches('+')),
        };
        let int = if let Some(h) = digits.strip_prefix("0x").or(digits.strip_prefix("0X")) {
            i64::from_str_radix(h, 16).ok()
        } else if let Some(o) = digits.strip_prefix("0o").or(digits.strip_prefix("0O")) {
            i64::from_str_radix(o, 8).ok()
        } else if let Some(bn) = digits.strip_prefix("0b").or(digits.strip_prefix("0B")) {
            i64::from_str_radix(bn, 2).ok()
        } else {
            digits.parse::<i64>().ok()
        };
        if let Some(i) = int {
            return Ok((Value::from(if neg { -i } else { i }), n));
        }
        match text.parse::<f64>() {
            Ok(f) => Ok((
                serde_json::Number::from_f64(f)
                    .map(Value::Number)
                    .unwrap_or(Value::Null),
                n,
            )),
            Err(_) => self.err(pos, format!("bad number syntax: {:?}", &rest[..n])),
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Reads `.A.B` at the start of `s`; returns the names and the bytes read.
fn read_fields(s: &str) -> (Vec<String>, usize) {
    let mut path = vec![];
    let mut i = 0;
    while s[i..].starts_with('.') && s[i + 1..].starts_with(is_ident) {
        let n = s[i + 1..]
            .find(|c: char| !is_ident(c))
            .unwrap_or(s.len() - i - 1);
        path.push(s[i + 1..i + 1 + n].to_string());
        i += 1 + n;
    }
    (path, i)
}

/// How a list of nodes ended.
enum Closer {
    Eof,
    End(Pos),
    Else(Pos, Vec<(Pos, Tok)>),
}

struct TreeBuilder<'a> {
    p: Parser<'a>,
    pieces: Vec<Piece>,
    at: usize,
    defs: HashMap<String, Vec<Node>>,
}

impl<'a> TreeBuilder<'a> {
    fn list(&mut self) -> Result<(Vec<Node>, Closer), TemplateError> {
        let mut nodes = vec![];
        while self.at < self.pieces.len() {
            let i = self.at;
            self.at += 1;
            let (pos, toks) = match &self.pieces[i] {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t.clone()));
                    continue;
                }
                Piece::Action(a) => (a.pos, a.toks.clone()),
            };
            let Some((_, first)) = toks.first() else {
                return self.p.err(pos, "missing value for command");
            };
            let kw = match first {
                Tok::Ident(w) => w.as_str(),
                _ => "",
            };
            match kw {
                "end" => {
                    if toks.len() > 1 {
                        return self.p.err(pos, "unexpected token in end");
                    }
                    return Ok((nodes, Closer::End(pos)));
                }
                "else" => return Ok((nodes, Closer::Else(pos, toks[1..].to_vec()))),
                "if" | "range" | "with" => {
                    let node = self.control(kw, pos, &toks[1..])?;
                    nodes.push(node);
                }
                "define" => {
                    let name = self.name_arg(pos, &toks[1..], "define")?;
                    if toks.len() != 2 {
                        return self.p.err(pos, "unexpected token in define clause");
                    }
                    let (body, closer) = self.list()?;
                    match closer {
                        Closer::End(_) => {}
                        _ => return self.p.err(pos, "unexpected EOF in define clause"),
                    }
                    self.defs.insert(name, body);
                }
                "block" => {
                    let name = self.name_arg(pos, &toks[1..], "block")?;
                    let pipe = self.pipeline(pos, &toks[2..], "block")?;
                    let (body, closer) = self.list()?;
                    match closer {
                        Closer::End(_) => {}
                        _ => return self.p.err(pos, "unexpected EOF in block clause"),
                    }
                    self.defs.entry(name.clone()).or_insert(body);
                    nodes.push(Node::Template(pos, name, Some(pipe)));
                }
                "template" => {
                    let name = self.name_arg(pos, &toks[1..], "template")?;
                    let pipe = if toks.len() > 2 {
                        Some(self.pipeline(pos, &toks[2..], "template")?)
                    } else {
                        None
                    };
                    nodes.push(Node::Template(pos, name, pipe));
                }
                "break" | "continue" => {
                    if toks.len() > 1 {
                        return self.p.err(pos, format!("unexpected token in {kw}"));
                    }
                    nodes.push(if kw == "break" {
                        Node::Break(pos)
                    } else {
                        Node::Continue(pos)
                    });
                }
                _ => nodes.push(Node::Action(self.pipeline(pos, &toks, "command")?)),
            }
        }
        Ok((nodes, Closer::Eof))
    }

    fn name_arg(&self, pos: Pos, toks: &[(Pos, Tok)], ctx: &str) -> Result<String, TemplateError> {
        match toks.first() {
            Some((_, Tok::Lit(Value::String(s)))) => Ok(s.clone()),
            _ => self
                .p
                .err(pos, format!("{ctx}: expected a quoted template name")),
        }
    }

    fn control(&mut self, kw: &str, pos: Pos, toks: &[(Pos, Tok)]) -> Result<Node, TemplateError> {
        let pipe = self.pipeline(pos, toks, kw)?;
        let (body, closer) = self.list()?;
        let els = match closer {
            Closer::Eof => return self.p.err(pos, format!("unexpected EOF in {kw}")),
            Closer::End(_) => vec![],
            Closer::Else(epos, rest) => {
                let chained = match rest.first() {
                    Some((_, Tok::Ident(w))) if w == "if" || w == "with" => Some(w.clone()),
                    Some(_) => return self.p.err(epos, "unexpected token in else"),
                    None => None,
                };
                match chained {
                    Some(w) => vec![self.control(&w, epos, &rest[1..])?],
                    None => {
                        let (els, closer) = self.list()?;
                        match closer {
                            Closer::End(_) => els,
                            Closer::Else(p2, _) => {
                                return self.p.err(p2, format!("expected end; found else in {kw}"))
                            }
                            Closer::Eof => {
                                return self.p.err(pos, format!("unexpected EOF in {kw}"))
                            }
                        }
                    }
                }
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, els),
            "range" => Node::Range(pipe, body, els),
            _ => Node::With(pipe, body, els),
        })
    }

    /// A whole pipeline, with its variable declaration.
    fn pipeline(
        &self,
        pos: Pos,
        toks: &[(Pos, Tok)],
        ctx: &str,
    ) -> Result<Pipeline, TemplateError> {
        let mut at = 0;
        let pipe = self.pipe(pos, toks, &mut at, false)?;
        if at != toks.len() {
            return self.p.err(toks[at].0, format!("unexpected token in {ctx}"));
        }
        if pipe.cmds.is_empty() {
            return self.p.err(pos, format!("missing value for {ctx}"));
        }
        Ok(pipe)
    }

    fn pipe(
        &self,
        pos: Pos,
        toks: &[(Pos, Tok)],
        at: &mut usize,
        nested: bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut pipe = Pipeline {
            pos,
            ..Default::default()
        };
        // Declarations: `$x :=`, `$i, $e :=`, `$x =`.
        let mut look = *at;
        let mut names = vec![];
        while let Some((_, Tok::Var(n, path))) = toks.get(look) {
            if !path.is_empty() {
                break;
            }
            names.push(n.clone());
            look += 1;
            match toks.get(look) {
                Some((_, Tok::Comma)) if names.len() == 1 => look += 1,
                _ => break,
            }
        }
        match toks.get(look) {
            Some((_, Tok::Declare)) if !names.is_empty() => {
                pipe.decl = names;
                *at = look + 1;
            }
            Some((_, Tok::Assign)) if !names.is_empty() => {
                pipe.decl = names;
                pipe.assign = true;
                *at = look + 1;
            }
            _ => {}
        }
        let mut cmd = Cmd {
            pos: toks.get(*at).map(|t| t.0).unwrap_or(pos),
            args: vec![],
        };
        while *at < toks.len() {
            let (tp, tok) = &toks[*at];
            *at += 1;
            let op = match tok {
                Tok::Pipe => {
                    if cmd.args.is_empty() {
                        return self.p.err(*tp, "missing command before |");
                    }
                    pipe.cmds.push(std::mem::replace(
                        &mut cmd,
                        Cmd {
                            pos: toks.get(*at).map(|t| t.0).unwrap_or(*tp),
                            args: vec![],
                        },
                    ));
                    continue;
                }
                Tok::Close if nested => {
                    *at -= 1;
                    break;
                }
                Tok::Close => return self.p.err(*tp, "unexpected right paren"),
                Tok::Open => {
                    let sub = self.pipe(*tp, toks, at, true)?;
                    match toks.get(*at) {
                        Some((_, Tok::Close)) => *at += 1,
                        _ => return self.p.err(*tp, "unclosed left paren"),
                    }
                    if sub.cmds.is_empty() {
                        return self.p.err(*tp, "missing value in parenthesized pipeline");
                    }
                    let chain = match toks.get(*at) {
                        Some((_, Tok::Chain(path))) => {
                            *at += 1;
                            path.clone()
                        }
                        _ => vec![],
                    };
                    Operand::Sub(Box::new(sub), chain)
                }
                Tok::Dot => Operand::Dot,
                Tok::Field(p) => Operand::Field(p.clone()),
                Tok::Var(n, p) => Operand::Var(n.clone(), p.clone()),
                Tok::Lit(v) => Operand::Lit(v.clone()),
                Tok::Ident(n) if n == "nil" => Operand::Nil,
                Tok::Ident(n) => {
                    if matches!(
                        n.as_str(),
                        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
                    ) {
                        return self
                            .p
                            .err(*tp, format!("unexpected keyword {n:?} in command"));
                    }
                    Operand::Func(n.clone())
                }
                Tok::Chain(_) => return self.p.err(*tp, "unexpected . after term"),
                Tok::Declare | Tok::Assign | Tok::Comma => {
                    return self
                        .p
                        .err(*tp, "unexpected declaration or comma in command")
                }
            };
            cmd.args.push(op);
        }
        if !cmd.args.is_empty() {
            pipe.cmds.push(cmd);
        } else if !pipe.cmds.is_empty() {
            return self.p.err(pos, "missing command after |");
        }
        Ok(pipe)
    }
}

impl Template {
    /// Parses `src` with Go's default delimiters.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        Template::parse_delims(name, src, "{{", "}}")
    }

    /// Parses `src` with custom delimiters (`left_delimiter`/`right_delimiter`); empty ones
    /// mean the defaults.
    pub fn parse_delims(
        name: &str,
        src: &str,
        ld: &str,
        rd: &str,
    ) -> Result<Template, TemplateError> {
        let ld = if ld.is_empty() { "{{" } else { ld };
        let rd = if rd.is_empty() { "}}" } else { rd };
        let p = Parser { name, src };
        let pieces = p.scan(ld, rd)?;
        let mut b = TreeBuilder {
            p: Parser { name, src },
            pieces,
            at: 0,
            defs: HashMap::new(),
        };
        let (nodes, closer) = b.list()?;
        match closer {
            Closer::Eof => {}
            Closer::End(pos) => return b.p.err(pos, "unexpected {{end}}"),
            Closer::Else(pos, _) => return b.p.err(pos, "unexpected {{else}}"),
        }
        let mut tree = b.defs;
        tree.insert(name.to_string(), nodes);
        Ok(Template {
            name: name.to_string(),
            src: src.to_string(),
            tree,
        })
    }
}
