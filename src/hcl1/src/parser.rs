//! HCL v1 grammar over the lexer's tokens: an object list of items (`keys... = value` or
//! `keys... { body }`), values (literals, lists, objects, heredocs).

use crate::lexer::Tok;
use crate::value::{Item, Key, Node, Pos, Value};
use crate::Error;
use std::sync::Arc;

/// Deeper nesting than this is refused rather than risking the stack.
const MAX_DEPTH: usize = 200;

struct Parser {
    toks: Vec<(Tok, Pos)>,
    i: usize,
    depth: usize,
}

pub(crate) fn parse(file: &Arc<str>, toks: Vec<(Tok, Pos)>) -> Result<Node, Error> {
    let mut p = Parser {
        toks,
        i: 0,
        depth: 0,
    };
    let pos = Pos {
        file: file.clone(),
        line: 1,
        col: 1,
    };
    let items = p.object_list(true)?;
    Ok(Node {
        pos,
        value: Value::Object(items),
    })
}

impl Parser {
    fn peek(&self) -> &(Tok, Pos) {
        // The lexer always ends with Eof and the parser never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn next(&mut self) -> (Tok, Pos) {
        let t = self.peek().clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn enter(&mut self, pos: &Pos) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::at(pos.clone(), "nesting too deep"));
        }
        Ok(())
    }

    fn object_list(&mut self, top: bool) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        loop {
            let (tok, pos) = self.peek().clone();
            match tok {
                Tok::Eof if top => return Ok(items),
                Tok::Eof => {
                    return Err(Error::at(
                        pos,
                        "expected '}' to close the block, found end of file",
                    ))
                }
                Tok::RBrace if !top => return Ok(items),
                Tok::Comma if !items.is_empty() => {
                    self.next();
                }
                _ => items.push(self.item()?),
            }
        }
    }

    fn item(&mut self) -> Result<Item, Error> {
        let mut keys = Vec::new();
        loop {
            let (tok, pos) = self.peek().clone();
            match tok {
                Tok::Ident(name) | Tok::Str(name) => {
                    self.next();
                    keys.push(Key { name, pos });
                }
                Tok::Assign if !keys.is_empty() => {
                    self.next();
                    if keys.len() > 1 {
                        return Err(Error::at(
                            pos,
                            format!(
                                "nested object expected: '{{' after {:?}, found '='",
                                keys.last().map(|k| k.name.as_str()).unwrap_or_default()
                            ),
                        ));
                    }
                    let value = self.value()?;
                    return Ok(Item { keys, value });
                }
                Tok::LBrace if !keys.is_empty() => {
                    let value = self.object()?;
                    return Ok(Item { keys, value });
                }
                other if keys.is_empty() => {
                    return Err(Error::at(
                        pos,
                        format!("expected a key, found {}", other.describe()),
                    ))
                }
                other => {
                    return Err(Error::at(
                        pos,
                        format!(
                            "key {:?} expected '=' or '{{', found {}",
                            keys.last().map(|k| k.name.as_str()).unwrap_or_default(),
                            other.describe()
                        ),
                    ))
                }
            }
        }
    }

    fn object(&mut self) -> Result<Node, Error> {
        let (_, pos) = self.next(); // '{'
        self.enter(&pos)?;
        let items = self.object_list(false)?;
        self.next(); // '}'
        self.depth -= 1;
        Ok(Node {
            pos,
            value: Value::Object(items),
        })
    }

    fn value(&mut self) -> Result<Node, Error> {
        let (tok, pos) = self.peek().clone();
        let value = match tok {
            Tok::LBrace => return self.object(),
            Tok::LBrack => return self.list(),
            Tok::Str(s) | Tok::Heredoc(s) => Value::String(s),
            Tok::Int(i) => Value::Int(i),
            Tok::Float(f) => Value::Float(f),
            Tok::Ident(id) if id == "true" => Value::Bool(true),
            Tok::Ident(id) if id == "false" => Value::Bool(false),
            other => {
                return Err(Error::at(
                    pos,
                    format!("expected a value, found {}", other.describe()),
                ))
            }
        };
        self.next();
        Ok(Node { pos, value })
    }

    fn list(&mut self) -> Result<Node, Error> {
        let (_, pos) = self.next(); // '['
        self.enter(&pos)?;
        let mut elems = Vec::new();
        loop {
            let (tok, _) = self.peek().clone();
            match tok {
                Tok::RBrack => {
                    self.next();
                    break;
                }
                Tok::Eof => return Err(Error::at(pos, "list not closed: expected ']'")),
                _ => {
                    elems.push(self.value()?);
                    let (tok, npos) = self.peek().clone();
                    match tok {
                        Tok::Comma => {
                            self.next();
                        }
                        Tok::RBrack => {}
                        other => {
                            return Err(Error::at(
                                npos,
                                format!(
                                    "expected ',' or ']' after a list element, found {}",
                                    other.describe()
                                ),
                            ))
                        }
                    }
                }
            }
        }
        self.depth -= 1;
        Ok(Node {
            pos,
            value: Value::List(elems),
        })
    }
}
