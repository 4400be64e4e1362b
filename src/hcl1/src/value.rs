//! The positioned value tree both parsers produce.

use std::fmt;
use std::sync::Arc;

/// Where something starts: file name, 1-based line and column (columns count characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    pub file: Arc<str>,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A value with the position it starts at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// JSON `null`.
    Null,
    List(Vec<Node>),
    /// A block body or `{ ... }` value: items in source order, repeated keys kept.
    Object(Vec<Item>),
}

/// `a "b" "c" { ... }` has keys `[a, b, c]`; `a = v` has keys `[a]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub keys: Vec<Key>,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

impl Value {
    /// A short description for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::String(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::List(_) => "a list",
            Value::Object(_) => "a block",
        }
    }
}

impl Node {
    /// The items of an object node (empty for anything else).
    pub fn items(&self) -> &[Item] {
        match &self.value {
            Value::Object(items) => items,
            _ => &[],
        }
    }
}
