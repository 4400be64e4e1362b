//! A serde deserializer over the positioned tree with HCL v1's decoding rules:
//! - a key repeated in one body (or across merged bodies) is one value made of several pieces:
//!   a struct merges them (later scalars win), a list appends them, a scalar takes the last;
//! - labels are nested keys: `plugin "raw_exec" { ... }` reads like `plugin { raw_exec { ... } }`;
//! - JSON arrays of objects read like repeated blocks;
//! - numbers and booleans read as strings where a string is expected, and numeric strings as
//!   numbers (what hcl v1's decoder does).
//!
//! Every error carries the position of the key or value it is about and the dotted path to it.

use crate::value::{Key, Node, Pos, Value};
use crate::Error;
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::collections::HashMap;
use std::fmt;

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            pos: None,
            msg: msg.to_string(),
        }
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        Error {
            pos: None,
            msg: format!("unknown key {field:?}"),
        }
    }
}

/// Decodes one tree (usually a whole file) into `T`.
pub fn from_node<T: de::DeserializeOwned>(node: &Node) -> Result<T, Error> {
    from_nodes(&[node])
}

/// Decodes several trees as if their bodies were written one after the other.
pub fn from_nodes<T: de::DeserializeOwned>(nodes: &[&Node]) -> Result<T, Error> {
    let pieces: Vec<Piece> = nodes.iter().map(|n| Piece::Node(n)).collect();
    let pos = nodes.last().map(|n| n.pos.clone());
    T::deserialize(De {
        pieces,
        path: String::new(),
    })
    .map_err(|mut e| {
        if e.pos.is_none() {
            e.pos = pos;
        }
        e
    })
}

/// Labeled blocks (`host_volume "a" { ... }`, or in JSON `"host_volume": [{"a": {...}}]`) as
/// `(label, body)` pairs in source order. Also reads any map the same way.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocks<T>(pub Vec<(String, T)>);

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks(Vec::new())
    }
}

impl<T> Blocks<T> {
    pub fn get(&self, label: &str) -> Option<&T> {
        self.0
            .iter()
            .rev()
            .find(|(l, _)| l == label)
            .map(|(_, v)| v)
    }
}

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for Blocks<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Blocks<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("labeled blocks")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, T>()? {
                    out.push((k, v));
                }
                Ok(Blocks(out))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Blocks(Vec::new()))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Blocks that may or may not carry one label (`consul { ... }` and `consul "other" { ... }`):
/// `(label, body)` pairs, the label empty where there was none.
#[derive(Debug, Clone, PartialEq)]
pub struct MaybeLabeled<T>(pub Vec<(String, T)>);

impl<T> Default for MaybeLabeled<T> {
    fn default() -> Self {
        MaybeLabeled(Vec::new())
    }
}

const MAYBE_LABELED: &str = "$__caravan_hcl1_maybe_labeled";

impl<'de, T: de::Deserialize<'de>> de::Deserialize<'de> for MaybeLabeled<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: de::Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = MaybeLabeled<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("blocks with an optional label")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(pair) = s.next_element::<(String, T)>()? {
                    out.push(pair);
                }
                Ok(MaybeLabeled(out))
            }
            fn visit_newtype_struct<D: de::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                // Another data format: a plain list of bodies.
                let v = <Vec<T> as de::Deserialize>::deserialize(d)?;
                Ok(MaybeLabeled(
                    v.into_iter().map(|t| (String::new(), t)).collect(),
                ))
            }
        }
        d.deserialize_newtype_struct(MAYBE_LABELED, V(std::marker::PhantomData))
    }
}

/// One occurrence of a value: a node, or the rest of a multi-key item (`a "b" "c" {}` seen from
/// `a` is `Nest([b, c], body)`).
#[derive(Clone, Copy)]
enum Piece<'a> {
    Node(&'a Node),
    Nest(&'a [Key], &'a Node),
}

impl<'a> Piece<'a> {
    fn pos(&self) -> &'a Pos {
        match self {
            Piece::Node(n) => &n.pos,
            Piece::Nest(keys, n) => keys.first().map(|k| &k.pos).unwrap_or(&n.pos),
        }
    }

    fn after_key(keys: &'a [Key], value: &'a Node) -> Piece<'a> {
        if keys.len() > 1 {
            Piece::Nest(&keys[1..], value)
        } else {
            Piece::Node(value)
        }
    }

    fn is_object_like(&self) -> bool {
        match self {
            Piece::Nest(..) => true,
            Piece::Node(n) => match &n.value {
                Value::Object(_) => true,
                Value::List(xs) => {
                    !xs.is_empty() && xs.iter().all(|x| matches!(x.value, Value::Object(_)))
                }
                _ => false,
            },
        }
    }

    /// The key/value entries of an object-like piece, in order.
    fn entries(&self, out: &mut Vec<(&'a Key, Piece<'a>)>) -> Result<(), Error> {
        match *self {
            Piece::Nest(keys, value) => {
                if let Some(k) = keys.first() {
                    out.push((k, Piece::after_key(keys, value)));
                }
                Ok(())
            }
            Piece::Node(n) => match &n.value {
                Value::Object(items) => {
                    for item in items {
                        if let Some(k) = item.keys.first() {
                            out.push((k, Piece::after_key(&item.keys, &item.value)));
                        }
                    }
                    Ok(())
                }
                Value::List(xs) => {
                    for x in xs {
                        Piece::Node(x).entries(out)?;
                    }
                    Ok(())
                }
                Value::Null => Ok(()),
                other => Err(Error::at(
                    n.pos.clone(),
                    format!("expected a block, found {}", other.kind()),
                )),
            },
        }
    }
}

struct De<'a> {
    pieces: Vec<Piece<'a>>,
    path: String,
}

fn locate(mut e: Error, pos: &Pos, path: &str) -> Error {
    if e.pos.is_none() {
        e.pos = Some(pos.clone());
        if !path.is_empty() {
            e.msg = format!("{path}: {}", e.msg);
        }
    }
    e
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl<'a> De<'a> {
    fn pos(&self) -> Option<&'a Pos> {
        self.pieces.last().map(|p| p.pos())
    }

    fn err(&self, msg: String) -> Error {
        let e = Error { pos: None, msg };
        match self.pos() {
            Some(p) => locate(e, p, &self.path),
            None => e,
        }
    }

    /// The scalar this value stands for: the last piece, which must not be a block or list.
    fn scalar(&self, want: &str) -> Result<&'a Node, Error> {
        match self.pieces.last() {
            None => Err(self.err(format!("expected {want}, found nothing"))),
            Some(Piece::Nest(..)) => Err(self.err(format!("expected {want}, found a block"))),
            Some(Piece::Node(n)) => match &n.value {
                Value::Object(_) | Value::List(_) => {
                    Err(self.err(format!("expected {want}, found {}", n.value.kind())))
                }
                _ => Ok(n),
            },
        }
    }

    fn entries(&self) -> Result<Vec<(&'a Key, Piece<'a>)>, Error> {
        let mut out = Vec::new();
        for p in &self.pieces {
            p.entries(&mut out)?;
        }
        Ok(out)
    }

    fn wrap<T>(&self, r: Result<T, Error>) -> Result<T, Error> {
        match self.pos() {
            Some(p) => r.map_err(|e| locate(e, p, &self.path)),
            None => r,
        }
    }
}

macro_rules! int_method {
    ($name:ident) => {
        fn $name<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
            let n = self.scalar("an integer")?;
            let r = match &n.value {
                Value::Int(i) => v.visit_i64(*i),
                Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => v.visit_i64(*f as i64),
                Value::String(s) => match parse_int(s) {
                    Some(i) => v.visit_i64(i),
                    None => {
                        return Err(self.err(format!("expected an integer, found string {s:?}")))
                    }
                },
                other => {
                    return Err(self.err(format!("expected an integer, found {}", other.kind())))
                }
            };
            self.wrap(r)
        }
    };
}

fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    t.parse().ok()
}

impl<'de, 'a> de::Deserializer<'de> for De<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let object_like = !self.pieces.is_empty() && self.pieces.iter().all(|p| p.is_object_like());
        if object_like && self.pieces.len() > 1 {
            // Repeated blocks under a free-form map: a list of their bodies.
            return self.deserialize_seq(v);
        }
        match self.pieces.last() {
            None => v.visit_unit(),
            Some(Piece::Nest(..)) => self.deserialize_grouped_map(v),
            Some(Piece::Node(n)) => {
                let r = match &n.value {
                    Value::String(s) => v.visit_str(s),
                    Value::Int(i) => v.visit_i64(*i),
                    Value::Float(f) => v.visit_f64(*f),
                    Value::Bool(b) => v.visit_bool(*b),
                    Value::Null => v.visit_unit(),
                    Value::List(_) if object_like => return self.deserialize_grouped_map(v),
                    Value::List(_) => return self.deserialize_seq(v),
                    Value::Object(_) => return self.deserialize_grouped_map(v),
                };
                self.wrap(r)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.scalar("a boolean")?;
        let r = match &n.value {
            Value::Bool(b) => v.visit_bool(*b),
            Value::String(s) if s == "true" || s == "false" => v.visit_bool(s == "true"),
            other => return Err(self.err(format!("expected a boolean, found {}", describe(other)))),
        };
        self.wrap(r)
    }

    int_method!(deserialize_i8);
    int_method!(deserialize_i16);
    int_method!(deserialize_i32);
    int_method!(deserialize_i64);
    int_method!(deserialize_u8);
    int_method!(deserialize_u16);
    int_method!(deserialize_u32);
    int_method!(deserialize_u64);

    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_f64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.scalar("a number")?;
        let r = match &n.value {
            Value::Int(i) => v.visit_f64(*i as f64),
            Value::Float(f) => v.visit_f64(*f),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) => v.visit_f64(f),
                Err(_) => return Err(self.err(format!("expected a number, found string {s:?}"))),
            },
            other => return Err(self.err(format!("expected a number, found {}", other.kind()))),
        };
        self.wrap(r)
    }

    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let n = self.scalar("a string")?;
        let r = match &n.value {
            Value::String(s) => v.visit_str(s),
            Value::Int(i) => v.visit_string(i.to_string()),
            Value::Float(f) => v.visit_string(f.to_string()),
            Value::Bool(b) => v.visit_string(b.to_string()),
            other => return Err(self.err(format!("expected a string, found {}", other.kind()))),
        };
        self.wrap(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        match self.pieces.last() {
            None => v.visit_none(),
            Some(Piece::Node(n)) if n.value == Value::Null => v.visit_none(),
            Some(_) => v.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        v.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Error> {
        if name == MAYBE_LABELED {
            let mut pairs = Vec::new();
            for p in &self.pieces {
                match *p {
                    Piece::Nest(keys, value) => {
                        if let Some(k) = keys.first() {
                            pairs.push((k.name.clone(), Piece::after_key(keys, value)));
                        }
                    }
                    Piece::Node(n) => match &n.value {
                        Value::List(xs) => {
                            pairs.extend(xs.iter().map(|x| (String::new(), Piece::Node(x))))
                        }
                        Value::Null => {}
                        _ => pairs.push((String::new(), *p)),
                    },
                }
            }
            let path = self.path.clone();
            return v.visit_seq(LabeledSeq {
                pairs: pairs.into_iter(),
                path,
            });
        }
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let mut elems = Vec::new();
        for p in &self.pieces {
            match *p {
                Piece::Node(n) => match &n.value {
                    Value::List(xs) => elems.extend(xs.iter().map(Piece::Node)),
                    Value::Null => {}
                    _ => elems.push(*p),
                },
                Piece::Nest(..) => elems.push(*p),
            }
        }
        let path = self.path.clone();
        let r = v.visit_seq(Seq {
            elems: elems.into_iter().enumerate(),
            path: path.clone(),
        });
        self.wrap(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(v)
    }

    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let entries = self.entries()?;
        let r = v.visit_map(Map {
            entries: entries
                .into_iter()
                .map(|(k, p)| (k, vec![p]))
                .collect::<Vec<_>>()
                .into_iter(),
            pending: None,
            path: self.path.clone(),
        });
        self.wrap(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_grouped_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, Error> {
        let n = self.scalar("a string")?;
        let r = match &n.value {
            Value::String(s) => v.visit_enum(s.as_str().into_deserializer()),
            other => return Err(self.err(format!("expected a string, found {}", other.kind()))),
        };
        self.wrap(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        self.deserialize_str(v)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_unit()
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("string {s:?}"),
        Value::Int(i) => format!("number {i}"),
        Value::Float(f) => format!("number {f}"),
        other => other.kind().to_string(),
    }
}

impl<'a> De<'a> {
    /// A struct or free-form map: entries of every piece, grouped by key in first-seen order.
    fn deserialize_grouped_map<'de, V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        let entries = self.entries()?;
        let mut groups: Vec<(&'a Key, Vec<Piece<'a>>)> = Vec::new();
        let mut index: HashMap<&'a str, usize> = HashMap::new();
        for (k, p) in entries {
            match index.get(k.name.as_str()) {
                Some(&i) => groups[i].1.push(p),
                None => {
                    index.insert(k.name.as_str(), groups.len());
                    groups.push((k, vec![p]));
                }
            }
        }
        let r = v.visit_map(Map {
            entries: groups.into_iter(),
            pending: None,
            path: self.path.clone(),
        });
        self.wrap(r)
    }
}

struct Map<'a> {
    entries: std::vec::IntoIter<(&'a Key, Vec<Piece<'a>>)>,
    pending: Option<(&'a Key, Vec<Piece<'a>>)>,
    path: String,
}

impl<'de, 'a> de::MapAccess<'de> for Map<'a> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, pieces)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((key, pieces));
        let name: &str = &key.name;
        seed.deserialize(name.into_deserializer())
            .map(Some)
            .map_err(|e: Error| locate(e, &key.pos, &self.path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        let Some((key, pieces)) = self.pending.take() else {
            return Err(de::Error::custom("value requested before its key"));
        };
        let path = join(&self.path, &key.name);
        let pos = pieces
            .last()
            .map(|p| p.pos().clone())
            .unwrap_or_else(|| key.pos.clone());
        seed.deserialize(De {
            pieces,
            path: path.clone(),
        })
        .map_err(|e| locate(e, &pos, &path))
    }
}

struct Seq<'a> {
    elems: std::iter::Enumerate<std::vec::IntoIter<Piece<'a>>>,
    path: String,
}

impl<'de, 'a> de::SeqAccess<'de> for Seq<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((i, p)) = self.elems.next() else {
            return Ok(None);
        };
        let path = format!("{}[{i}]", self.path);
        let pos = p.pos().clone();
        seed.deserialize(De {
            pieces: vec![p],
            path: path.clone(),
        })
        .map(Some)
        .map_err(|e| locate(e, &pos, &path))
    }
}

struct LabeledSeq<'a> {
    pairs: std::vec::IntoIter<(String, Piece<'a>)>,
    path: String,
}

impl<'de, 'a> de::SeqAccess<'de> for LabeledSeq<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        let Some((label, body)) = self.pairs.next() else {
            return Ok(None);
        };
        let path = if label.is_empty() {
            self.path.clone()
        } else {
            format!("{}[{label:?}]", self.path)
        };
        let pos = body.pos().clone();
        seed.deserialize(PairDe {
            label,
            body: De {
                pieces: vec![body],
                path: path.clone(),
            },
        })
        .map(Some)
        .map_err(|e| locate(e, &pos, &path))
    }
}

/// A `(label, body)` tuple.
struct PairDe<'a> {
    label: String,
    body: De<'a>,
}

impl<'de, 'a> de::Deserializer<'de> for PairDe<'a> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
        v.visit_seq(PairAccess {
            label: Some(self.label),
            body: Some(self.body),
        })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

struct PairAccess<'a> {
    label: Option<String>,
    body: Option<De<'a>>,
}

impl<'de, 'a> de::SeqAccess<'de> for PairAccess<'a> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if let Some(l) = self.label.take() {
            return seed.deserialize(l.into_deserializer()).map(Some);
        }
        match self.body.take() {
            Some(b) => seed.deserialize(b).map(Some),
            None => Ok(None),
        }
    }
}
