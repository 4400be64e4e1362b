//! HCL v1 tokens: identifiers, strings (with `${...}` nesting), numbers (decimal, hex, octal,
//! floats), heredocs, punctuation; `#`, `//` and `/* */` comments are skipped.

use crate::{Error, Pos};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    Heredoc(String),
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    Assign,
    Comma,
    Eof,
}

impl Tok {
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier {s:?}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Int(i) => format!("number {i}"),
            Tok::Float(f) => format!("number {f}"),
            Tok::Heredoc(_) => "heredoc".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBrack => "'['".into(),
            Tok::RBrack => "']'".into(),
            Tok::Assign => "'='".into(),
            Tok::Comma => "','".into(),
            Tok::Eof => "end of file".into(),
        }
    }
}

pub(crate) struct Lexer<'a> {
    file: &'a Arc<str>,
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

pub(crate) fn lex(file: &Arc<str>, src: &str) -> Result<Vec<(Tok, Pos)>, Error> {
    let mut lx = Lexer {
        file,
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    // A byte-order mark is not content.
    if lx.peek() == Some('\u{feff}') {
        lx.i += 1;
    }
    let mut out = Vec::new();
    loop {
        let (tok, pos) = lx.next_token()?;
        let eof = tok == Tok::Eof;
        out.push((tok, pos));
        if eof {
            return Ok(out);
        }
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-' || c == '.' || c == ':'
}

impl<'a> Lexer<'a> {
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

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
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

    fn skip_space_and_comments(&mut self) -> Result<(), Error> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => self.skip_line(),
                Some('/') if self.peek_at(1) == Some('/') => self.skip_line(),
                Some('/') if self.peek_at(1) == Some('*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    loop {
                        match self.bump() {
                            None => return Err(Error::at(start, "comment not terminated")),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            _ => {}
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' {
                break;
            }
            self.bump();
        }
    }

    fn next_token(&mut self) -> Result<(Tok, Pos), Error> {
        self.skip_space_and_comments()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok((Tok::Eof, pos));
        };
        let tok = match c {
            '{' => self.single(Tok::LBrace),
            '}' => self.single(Tok::RBrace),
            '[' => self.single(Tok::LBrack),
            ']' => self.single(Tok::RBrack),
            '=' => self.single(Tok::Assign),
            ',' => self.single(Tok::Comma),
            '"' => Tok::Str(self.string(&pos)?),
            '<' if self.peek_at(1) == Some('<') => Tok::Heredoc(self.heredoc(&pos)?),
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+' || c == '.')
                    && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.number(&pos)?
            }
            c if is_ident_start(c) => {
                let mut s = String::new();
                while let Some(c) = self.peek().filter(|c| is_ident_char(*c)) {
                    s.push(c);
                    self.bump();
                }
                Tok::Ident(s)
            }
            other => return Err(Error::at(pos, format!("illegal character {other:?}"))),
        };
        Ok((tok, pos))
    }

    fn single(&mut self, t: Tok) -> Tok {
        self.bump();
        t
    }

    fn number(&mut self, pos: &Pos) -> Result<Tok, Error> {
        let mut s = String::new();
        if let Some(c @ ('-' | '+')) = self.peek() {
            s.push(c);
            self.bump();
        }
        while let Some(c) = self
            .peek()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
        {
            s.push(c);
            self.bump();
            // An exponent may carry a sign.
            if (c == 'e' || c == 'E') && !s.contains("0x") && !s.contains("0X") {
                if let Some(sign @ ('-' | '+')) = self.peek() {
                    s.push(sign);
                    self.bump();
                }
            }
        }
        parse_number(&s).ok_or_else(|| Error::at(pos.clone(), format!("invalid number {s:?}")))
    }

    fn string(&mut self, pos: &Pos) -> Result<String, Error> {
        self.bump(); // opening quote
        let mut out = String::new();
        let mut depth = 0usize; // inside ${ ... } quotes do not end the string
        loop {
            let Some(c) = self.bump() else {
                return Err(Error::at(pos.clone(), "literal not terminated"));
            };
            match c {
                '"' if depth == 0 => return Ok(out),
                '\n' if depth == 0 => {
                    return Err(Error::at(
                        pos.clone(),
                        "literal not terminated (newline in string)",
                    ))
                }
                '$' if self.peek() == Some('{') => {
                    out.push('$');
                    out.push('{');
                    self.bump();
                    depth += 1;
                }
                '}' if depth > 0 => {
                    depth -= 1;
                    out.push('}');
                }
                '\\' => {
                    let esc_pos = self.pos();
                    let Some(e) = self.bump() else {
                        return Err(Error::at(pos.clone(), "literal not terminated"));
                    };
                    match e {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        'a' => out.push('\u{7}'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'v' => out.push('\u{b}'),
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        'u' => out.push(self.hex_escape(4, &esc_pos)?),
                        'U' => out.push(self.hex_escape(8, &esc_pos)?),
                        'x' => out.push(self.hex_escape(2, &esc_pos)?),
                        '\n' => {}
                        other => {
                            // hcl v1 keeps escapes it does not know inside interpolations.
                            if depth > 0 {
                                out.push('\\');
                                out.push(other);
                            } else {
                                return Err(Error::at(
                                    esc_pos,
                                    format!("unknown escape sequence \\{other}"),
                                ));
                            }
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex_escape(&mut self, n: usize, pos: &Pos) -> Result<char, Error> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self
                .peek()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| Error::at(pos.clone(), "invalid escape: expected hex digits"))?;
            self.bump();
            v = v * 16 + d;
        }
        char::from_u32(v).ok_or_else(|| Error::at(pos.clone(), "escape is not a valid character"))
    }

    fn heredoc(&mut self, pos: &Pos) -> Result<String, Error> {
        self.bump();
        self.bump();
        let indented = if self.peek() == Some('-') {
            self.bump();
            true
        } else {
            false
        };
        let mut anchor = String::new();
        while let Some(c) = self.peek().filter(|c| is_ident_char(*c)) {
            anchor.push(c);
            self.bump();
        }
        if anchor.is_empty() {
            return Err(Error::at(pos.clone(), "heredoc needs an anchor (<<EOF)"));
        }
        while self
            .peek()
            .is_some_and(|c| c == ' ' || c == '\t' || c == '\r')
        {
            self.bump();
        }
        if self.bump() != Some('\n') {
            return Err(Error::at(pos.clone(), "heredoc anchor must end its line"));
        }
        let mut lines: Vec<String> = Vec::new();
        loop {
            if self.peek().is_none() {
                return Err(Error::at(
                    pos.clone(),
                    format!("heredoc not terminated: no line with {anchor}"),
                ));
            }
            let mut line = String::new();
            while let Some(c) = self.peek() {
                self.bump();
                if c == '\n' {
                    break;
                }
                line.push(c);
            }
            let trimmed = line.trim_end_matches('\r');
            if trimmed.trim() == anchor {
                break;
            }
            lines.push(trimmed.to_string());
        }
        if indented {
            // Indentation is counted in characters: whitespace may be wider than a byte.
            let lead = |l: &str| l.chars().take_while(|c| c.is_whitespace()).count();
            let indent = lines
                .iter()
                .filter(|l| !l.trim().is_empty())
                .map(|l| lead(l))
                .min()
                .unwrap_or(0);
            for l in &mut lines {
                let cut = indent.min(lead(l));
                *l = l.chars().skip(cut).collect();
            }
        }
        let mut out = String::new();
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
        Ok(out)
    }
}

/// HCL v1 numbers: `0x` hex, leading-zero octal, decimal, floats with exponents, `_` never.
fn parse_number(s: &str) -> Option<Tok> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if body.is_empty() || body.contains('_') {
        return None;
    }
    let sign = |v: i64| if neg { v.checked_neg() } else { Some(v) };
    if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16)
            .ok()
            .and_then(sign)
            .map(Tok::Int);
    }
    if body.contains(['.', 'e', 'E']) {
        let f: f64 = body.parse().ok()?;
        if !f.is_finite() {
            return None;
        }
        return Some(Tok::Float(if neg { -f } else { f }));
    }
    if body.len() > 1 && body.starts_with('0') {
        return i64::from_str_radix(&body[1..], 8)
            .ok()
            .and_then(sign)
            .map(Tok::Int);
    }
    body.parse::<i64>().ok().and_then(sign).map(Tok::Int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x1CF1"), Some(Tok::Int(0x1CF1)));
        assert_eq!(parse_number("0755"), Some(Tok::Int(0o755)));
        assert_eq!(parse_number("-12"), Some(Tok::Int(-12)));
        assert_eq!(parse_number("1.5e3"), Some(Tok::Float(1500.0)));
        assert_eq!(parse_number("0.25"), Some(Tok::Float(0.25)));
        assert_eq!(parse_number("12abc"), None);
        assert_eq!(parse_number("99999999999999999999"), None);
    }
}
