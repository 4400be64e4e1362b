//! HCL v1, the configuration language Nomad reads agent configs with (hashicorp/hcl v1), and its
//! JSON mode. [`parse`] and [`parse_json`] build a [`Node`] tree in which every value and every key
//! carries its [`Pos`] (file, line, column); [`de::from_node`] decodes such trees into serde types
//! with HCL v1's rules (repeated blocks merge into a struct or append to a list, labels become
//! nested keys), and every error names `file:line:col`.

pub mod de;
mod json;
mod lexer;
mod parser;
mod value;

pub use de::{from_node, from_nodes, Blocks, MaybeLabeled};
pub use value::{Item, Key, Node, Pos, Value};

use std::sync::Arc;

/// A parse or decode error, displayed as `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{msg}", pos.as_ref().map(|p| format!("{p}: ")).unwrap_or_default())]
pub struct Error {
    pub pos: Option<Pos>,
    pub msg: String,
}

impl Error {
    pub(crate) fn at(pos: Pos, msg: impl Into<String>) -> Self {
        Error {
            pos: Some(pos),
            msg: msg.into(),
        }
    }
}

/// Parses HCL v1 text; `file` is only used in positions.
pub fn parse(file: &str, src: &str) -> Result<Node, Error> {
    let file: Arc<str> = Arc::from(file);
    let tokens = lexer::lex(&file, src)?;
    parser::parse(&file, tokens)
}

/// Parses HCL v1's JSON mode (a JSON document whose top level is an object).
pub fn parse_json(file: &str, src: &str) -> Result<Node, Error> {
    json::parse(Arc::from(file), src)
}

/// Parses `src` as JSON when `file` ends in `.json`, as HCL otherwise (what Nomad's loader does).
pub fn parse_by_name(file: &str, src: &str) -> Result<Node, Error> {
    if file.ends_with(".json") {
        parse_json(file, src)
    } else {
        parse(file, src)
    }
}

#[cfg(test)]
mod tests;
