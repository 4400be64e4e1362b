//! HCL v1's JSON mode: a JSON document read into the same positioned tree (objects become items
//! with one key each, so the decoder treats `{"client": {...}}` like `client { ... }`).

use crate::value::{Item, Key, Node, Pos, Value};
use crate::Error;
use std::sync::Arc;

const MAX_DEPTH: usize = 200;

struct P {
    file: Arc<str>,
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
    depth: usize,
}

pub(crate) fn parse(file: Arc<str>, src: &str) -> Result<Node, Error> {
    let mut p = P {
        file,
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        depth: 0,
    };
    if p.peek() == Some('\u{feff}') {
        p.i += 1;
    }
    p.ws();
    let node = p.value()?;
    p.ws();
    if p.peek().is_some() {
        return Err(Error::at(
            p.pos(),
            "unexpected content after the JSON document",
        ));
    }
    if !matches!(node.value, Value::Object(_)) {
        return Err(Error::at(
            node.pos,
            "a JSON configuration must be an object",
        ));
    }
    Ok(node)
}

impl P {
    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_whitespace()) {
            self.bump();
        }
    }

    fn expect(&mut self, c: char) -> Result<(), Error> {
        let pos = self.pos();
        match self.bump() {
            Some(got) if got == c => Ok(()),
            Some(got) => Err(Error::at(pos, format!("expected {c:?}, found {got:?}"))),
            None => Err(Error::at(pos, format!("expected {c:?}, found end of file"))),
        }
    }

    fn value(&mut self) -> Result<Node, Error> {
        let pos = self.pos();
        let value = match self.peek() {
            Some('{') => {
                self.enter(&pos)?;
                self.bump();
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some('}') {
                    self.bump();
                } else {
                    loop {
                        self.ws();
                        let kpos = self.pos();
                        if self.peek() != Some('"') {
                            return Err(Error::at(kpos, "expected a quoted object key"));
                        }
                        let name = self.string()?;
                        self.ws();
                        self.expect(':')?;
                        self.ws();
                        let value = self.value()?;
                        items.push(Item {
                            keys: vec![Key { name, pos: kpos }],
                            value,
                        });
                        self.ws();
                        let p = self.pos();
                        match self.bump() {
                            Some(',') => continue,
                            Some('}') => break,
                            _ => return Err(Error::at(p, "expected ',' or '}' in object")),
                        }
                    }
                }
                self.depth -= 1;
                Value::Object(items)
            }
            Some('[') => {
                self.enter(&pos)?;
                self.bump();
                let mut elems = Vec::new();
                self.ws();
                if self.peek() == Some(']') {
                    self.bump();
                } else {
                    loop {
                        self.ws();
                        elems.push(self.value()?);
                        self.ws();
                        let p = self.pos();
                        match self.bump() {
                            Some(',') => continue,
                            Some(']') => break,
                            _ => return Err(Error::at(p, "expected ',' or ']' in array")),
                        }
                    }
                }
                self.depth -= 1;
                Value::List(elems)
            }
            Some('"') => Value::String(self.string()?),
            Some(c) if c == '-' || c.is_ascii_digit() => self.number()?,
            Some(c) if c.is_ascii_alphabetic() => {
                let mut w = String::new();
                while let Some(c) = self.peek().filter(|c| c.is_ascii_alphabetic()) {
                    w.push(c);
                    self.bump();
                }
                match w.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    _ => return Err(Error::at(pos, format!("unexpected word {w:?}"))),
                }
            }
            Some(c) => return Err(Error::at(pos, format!("unexpected character {c:?}"))),
            None => return Err(Error::at(pos, "unexpected end of file")),
        };
        Ok(Node { pos, value })
    }

    fn enter(&mut self, pos: &Pos) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::at(pos.clone(), "nesting too deep"));
        }
        Ok(())
    }

    fn number(&mut self) -> Result<Value, Error> {
        let pos = self.pos();
        let mut s = String::new();
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            s.push(c);
            self.bump();
        }
        if !s.contains(['.', 'e', 'E']) {
            if let Ok(i) = s.parse::<i64>() {
                return Ok(Value::Int(i));
            }
        }
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(Error::at(pos, format!("invalid number {s:?}"))),
        }
    }

    fn string(&mut self) -> Result<String, Error> {
        let pos = self.pos();
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(Error::at(pos, "string not terminated")),
                Some('"') => return Ok(out),
                Some('\\') => {
                    let epos = self.pos();
                    match self.bump() {
                        Some('"') => out.push('"'),
                        Some('\\') => out.push('\\'),
                        Some('/') => out.push('/'),
                        Some('b') => out.push('\u{8}'),
                        Some('f') => out.push('\u{c}'),
                        Some('n') => out.push('\n'),
                        Some('r') => out.push('\r'),
                        Some('t') => out.push('\t'),
                        Some('u') => {
                            let hi = self.hex4(&epos)?;
                            let c = if (0xD800..0xDC00).contains(&hi) {
                                // A surrogate pair: \uD83D\uDE00.
                                if self.bump() != Some('\\') || self.bump() != Some('u') {
                                    return Err(Error::at(
                                        epos,
                                        "unpaired surrogate in \\u escape",
                                    ));
                                }
                                let lo = self.hex4(&epos)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(Error::at(epos, "invalid surrogate pair"));
                                }
                                char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                            } else {
                                char::from_u32(hi)
                            };
                            out.push(c.ok_or_else(|| Error::at(epos, "invalid \\u escape"))?);
                        }
                        _ => return Err(Error::at(epos, "invalid escape in string")),
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn hex4(&mut self, pos: &Pos) -> Result<u32, Error> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .bump()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| Error::at(pos.clone(), "invalid \\u escape"))?;
            v = v * 16 + d;
        }
        Ok(v)
    }
}
