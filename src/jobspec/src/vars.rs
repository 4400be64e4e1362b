//! Input variables (`variable` blocks, `-var`, `-var-file`, `NOMAD_VAR_*`) and `locals`:
//! resolves them into the `var` and `local` objects that expressions in the job can read.

use crate::error::{JobspecError, Pos, Reporter};
use crate::eval::{from_json, Evaluator};
use crate::VarInputs;
use hcl::edit::structure::{Block, Structure};
use hcl::edit::Span;
use hcl::{Map, Value};
use std::collections::BTreeMap;

/// The declared type of a variable, as far as converting string inputs needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum VarType {
    String,
    Number,
    Bool,
    /// `any` or no type: string inputs stay strings.
    Any,
    /// list, map, object, ...: string inputs are parsed as HCL expressions.
    Complex,
}

struct Declared {
    pos: Pos,
    ty: VarType,
    default: Option<Value>,
    validations: Vec<(hcl::Expression, hcl::Expression, Pos)>,
}

/// Builds the evaluator holding `var` and `local` for the top-level blocks of a job file.
pub(crate) fn resolve(
    variable_blocks: &[&Block],
    variables_blocks: &[&Block],
    locals_blocks: &[&Block],
    inputs: &VarInputs,
    rep: &Reporter,
) -> Result<Evaluator, JobspecError> {
    let base = Evaluator::new();
    let mut declared: BTreeMap<String, Declared> = BTreeMap::new();

    for block in variable_blocks {
        let pos = block.span().map(|s| s.start);
        let [label] = block.labels.as_slice() else {
            return Err(rep.invalid(
                pos,
                "",
                "a variable block takes exactly one label: its name",
            ));
        };
        let name = label.as_str().to_string();
        let path = format!("variable {name:?}");
        if declared.contains_key(&name) {
            return Err(rep.invalid(pos, "", format!("duplicate variable {name:?}")));
        }
        let mut d = Declared {
            pos,
            ty: VarType::Any,
            default: None,
            validations: vec![],
        };
        for s in block.body.iter() {
            let spos = s.span().map(|s| s.start);
            match s {
                Structure::Attribute(a) => {
                    let expr: hcl::Expression = a.value.clone().into();
                    match a.key.as_str() {
                        "type" => d.ty = var_type(&expr),
                        "default" => {
                            let v = base
                                .eval_strict(&expr)
                                .map_err(|e| rep.invalid(spos, &path, e))?;
                            d.default = Some(v);
                        }
                        "description" | "sensitive" | "nullable" => {}
                        other => {
                            return Err(rep.invalid(
                                spos,
                                &path,
                                format!("unsupported argument {other:?}"),
                            ))
                        }
                    }
                }
                Structure::Block(b) if b.ident.as_str() == "validation" => {
                    let cond = b.body.get_attribute("condition");
                    let msg = b.body.get_attribute("error_message");
                    match (cond, msg) {
                        (Some(c), Some(m)) => d.validations.push((
                            c.value.clone().into(),
                            m.value.clone().into(),
                            spos,
                        )),
                        _ => {
                            return Err(rep.invalid(
                                spos,
                                &path,
                                "a validation block needs condition and error_message",
                            ))
                        }
                    }
                }
                Structure::Block(b) => {
                    return Err(rep.invalid(
                        spos,
                        &path,
                        format!("unsupported block type {:?}", b.ident.as_str()),
                    ))
                }
            }
        }
        declared.insert(name, d);
    }
    // The short form: `variables { name = default }`.
    for block in variables_blocks {
        for s in block.body.iter() {
            let spos = s.span().map(|s| s.start);
            let Structure::Attribute(a) = s else {
                return Err(rep.invalid(
                    spos,
                    "variables",
                    "a variables block holds only name = default pairs",
                ));
            };
            let name = a.key.as_str().to_string();
            if declared.contains_key(&name) {
                return Err(rep.invalid(spos, "", format!("duplicate variable {name:?}")));
            }
            let v = base
                .eval_strict(&a.value.clone().into())
                .map_err(|e| rep.invalid(spos, "variables", e))?;
            declared.insert(
                name,
                Declared {
                    pos: spos,
                    ty: VarType::Any,
                    default: Some(v),
                    validations: vec![],
                },
            );
        }
    }

    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    for (name, d) in &declared {
        if let Some(v) = &d.default {
            values.insert(name.clone(), v.clone());
        }
    }
    // Lowest to highest precedence: environment, files, -var flags.
    for (k, v) in &inputs.env {
        if let Some(name) = k.strip_prefix("NOMAD_VAR_") {
            if let Some(d) = declared.get(name) {
                let v = from_string(d.ty, v, &base).map_err(|e| {
                    rep.invalid(d.pos, "", format!("variable {name:?} from {k}: {e}"))
                })?;
                values.insert(name.to_string(), v);
            }
        }
    }
    for (file, content) in &inputs.var_files {
        for (name, value, pos) in read_var_file(file, content, &base)? {
            let frep = Reporter::new(file, content);
            let Some(d) = declared.get(&name) else {
                return Err(frep.invalid(pos, "", format!(
                    "undefined variable {name:?}: it is set in this var-file but the job declares no variable \"{name}\" block"
                )));
            };
            let v = coerce(d.ty, value)
                .map_err(|e| frep.invalid(pos, "", format!("variable {name:?}: {e}")))?;
            values.insert(name, v);
        }
    }
    for (name, raw) in &inputs.vars {
        let Some(d) = declared.get(name) else {
            return Err(rep.invalid(None, "", format!(
                "undefined variable {name:?} given with -var: declare it with a variable \"{name}\" block"
            )));
        };
        let v = from_string(d.ty, raw, &base).map_err(|e| {
            rep.invalid(d.pos, "", format!("variable {name:?} given with -var: {e}"))
        })?;
        values.insert(name.clone(), v);
    }
    for (name, d) in &declared {
        if !values.contains_key(name) {
            return Err(rep.invalid(d.pos, "", format!(
                "no value for required variable {name:?}: set it with -var {name}=..., a -var-file, or NOMAD_VAR_{name}"
            )));
        }
    }

    let var_obj: Map<String, Value> = values.into_iter().collect();
    let mut ev = base;
    ev.declare("var", Value::Object(var_obj));
    for (name, d) in &declared {
        for (cond, msg, pos) in &d.validations {
            let path = format!("variable {name:?}");
            let ok = ev
                .eval_strict(cond)
                .map_err(|e| rep.invalid(*pos, &path, format!("validation condition: {e}")))?;
            if ok != Value::Bool(true) {
                let msg = match ev.eval_strict(msg) {
                    Ok(Value::String(s)) => s,
                    _ => "validation failed".to_string(),
                };
                return Err(rep.invalid(*pos, &path, format!("invalid value for variable: {msg}")));
            }
        }
    }

    resolve_locals(ev, locals_blocks, rep)
}

/// Evaluates `locals` in dependency order (a local may use other locals).
fn resolve_locals(
    mut ev: Evaluator,
    blocks: &[&Block],
    rep: &Reporter,
) -> Result<Evaluator, JobspecError> {
    let mut pending: Vec<(String, hcl::Expression, Pos)> = Vec::new();
    for block in blocks {
        for s in block.body.iter() {
            let spos = s.span().map(|s| s.start);
            let Structure::Attribute(a) = s else {
                return Err(rep.invalid(
                    spos,
                    "locals",
                    "a locals block holds only name = value pairs",
                ));
            };
            let name = a.key.as_str().to_string();
            if pending.iter().any(|(n, _, _)| n == &name) {
                return Err(rep.invalid(spos, "locals", format!("duplicate local value {name:?}")));
            }
            pending.push((name, a.value.clone().into(), spos));
        }
    }
    let mut locals: Map<String, Value> = Map::new();
    ev.declare("local", Value::Object(locals.clone()));
    while !pending.is_empty() {
        let mut progress = false;
        let mut last_err = None;
        let mut rest = Vec::new();
        for (name, expr, pos) in pending {
            match ev.eval(&expr) {
                Ok(v) => {
                    locals.insert(name, v);
                    ev.declare("local", Value::Object(locals.clone()));
                    progress = true;
                }
                Err(e) => {
                    last_err = Some(rep.invalid(pos, "locals", format!("local {name:?}: {e}")));
                    rest.push((name, expr, pos));
                }
            }
        }
        if !progress {
            if let Some(e) = last_err {
                return Err(e);
            }
        }
        pending = rest;
    }
    Ok(ev)
}

fn var_type(expr: &hcl::Expression) -> VarType {
    match expr {
        hcl::Expression::Variable(v) => match v.as_str() {
            "string" => VarType::String,
            "number" => VarType::Number,
            "bool" => VarType::Bool,
            "any" => VarType::Any,
            _ => VarType::Complex,
        },
        _ => VarType::Complex,
    }
}

/// A value given as text (`-var`, environment) converted to the variable's type.
fn from_string(ty: VarType, raw: &str, base: &Evaluator) -> Result<Value, String> {
    match ty {
        VarType::String | VarType::Any => Ok(Value::from(raw)),
        VarType::Number | VarType::Bool => coerce(ty, Value::from(raw)),
        VarType::Complex => {
            let expr: hcl::edit::expr::Expression =
                raw.parse().map_err(|e: hcl::edit::parser::Error| {
                    format!("not a valid HCL value: {}", e.message())
                })?;
            base.eval_strict(&expr.into())
        }
    }
}

/// Converts a value to a primitive type the way HCL's type conversion does.
fn coerce(ty: VarType, v: Value) -> Result<Value, String> {
    match (ty, v) {
        (VarType::String, Value::Number(n)) => Ok(Value::from(n.to_string())),
        (VarType::String, Value::Bool(b)) => Ok(Value::from(b.to_string())),
        (VarType::Number, Value::String(s)) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                Ok(Value::from(i))
            } else {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(hcl::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{s:?} is not a number"))
            }
        }
        (VarType::Bool, Value::String(s)) => match s.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(format!("{s:?} is not a bool")),
        },
        (_, v) => Ok(v),
    }
}

/// Reads a var-file (HCL `name = value` pairs, or a JSON object).
fn read_var_file(
    file: &str,
    content: &str,
    base: &Evaluator,
) -> Result<Vec<(String, Value, Pos)>, JobspecError> {
    let rep = Reporter::new(file, content);
    if content.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(content).map_err(|e| JobspecError::Syntax {
                file: file.to_string(),
                line: e.line(),
                col: e.column(),
                message: e.to_string(),
            })?;
        let serde_json::Value::Object(m) = v else {
            return Err(rep.invalid(None, "", "a JSON var-file must hold an object"));
        };
        return Ok(m
            .iter()
            .map(|(k, v)| (k.clone(), from_json(v), None))
            .collect());
    }
    let body = crate::hcl_file::parse_body(content, file)?;
    let mut out = Vec::new();
    for s in body.iter() {
        let pos = s.span().map(|s| s.start);
        match s {
            Structure::Attribute(a) => {
                let v = base
                    .eval_strict(&a.value.clone().into())
                    .map_err(|e| rep.invalid(pos, "", e))?;
                out.push((a.key.as_str().to_string(), v, pos));
            }
            Structure::Block(b) => {
                return Err(rep.invalid(
                    pos,
                    "",
                    format!(
                        "unexpected block {:?}: a var-file holds only name = value pairs",
                        b.ident.as_str()
                    ),
                ))
            }
        }
    }
    Ok(out)
}
