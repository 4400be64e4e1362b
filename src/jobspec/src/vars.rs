//! Input variables (`variable` blocks, `-var`, `-var-file`, `NOMAD_VAR_*`) and `locals`:
//! resolves them into the `var` and `local` objects that expressions in the job can read.

use crate::error::{JobspecError, Pos, Reporter};
use crate::eval::types::{convert, parse_type, TypeExpr};
use crate::eval::{from_json, Evaluator};
use crate::VarInputs;
use hcl::edit::structure::{Block, Structure};
use hcl::edit::Span;
use hcl::{Map, Value};
use std::collections::BTreeMap;

struct Declared {
    pos: Pos,
    ty: TypeExpr,
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
            ty: TypeExpr::Any,
            default: None,
            validations: vec![],
        };
        let mut default_pos = pos;
        for s in block.body.iter() {
            let spos = s.span().map(|s| s.start);
            match s {
                Structure::Attribute(a) => {
                    let expr: hcl::Expression = a.value.clone().into();
                    match a.key.as_str() {
                        "type" => {
                            d.ty = parse_type(&expr, &|e| base.eval_strict(e)).map_err(|e| {
                                rep.invalid(spos, &path, format!("argument \"type\": {e}"))
                            })?
                        }
                        "default" => {
                            let v = base
                                .eval_strict(&expr)
                                .map_err(|e| rep.invalid(spos, &path, e))?;
                            d.default = Some(v);
                            default_pos = spos;
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
                        (Some(_), Some(m))
                            if matches!(
                                hcl::Expression::from(m.value.clone()),
                                hcl::Expression::String(ref s) if s.trim().is_empty()
                            ) =>
                        {
                            return Err(rep.invalid(
                                spos,
                                &path,
                                "Invalid validation error message: error_message must not be empty; say what a valid value looks like",
                            ))
                        }
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
        if let Some(v) = d.default.take() {
            let v = convert(&v, &d.ty).map_err(|e| {
                rep.invalid(default_pos, &path, format!("invalid default value: {e}"))
            })?;
            d.default = Some(v);
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
                    ty: TypeExpr::Any,
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
                let v = from_string(&d.ty, v, &base).map_err(|e| {
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
            let v = convert(&value, &d.ty)
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
        let v = from_string(&d.ty, raw, &base).map_err(|e| {
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

/// A value given as text (`-var`, environment) converted to the variable's type: taken
/// literally for string, number and untyped variables (as Nomad does), parsed as an HCL
/// expression otherwise (`-var 'dcs=["dc1"]'`).
fn from_string(ty: &TypeExpr, raw: &str, base: &Evaluator) -> Result<Value, String> {
    match ty {
        TypeExpr::String | TypeExpr::Any | TypeExpr::Number => convert(&Value::from(raw), ty),
        _ => {
            let expr: hcl::edit::expr::Expression =
                raw.parse().map_err(|e: hcl::edit::parser::Error| {
                    format!("not a valid HCL value: {}", e.message())
                })?;
            convert(&base.eval_strict(&expr.into())?, ty)
        }
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
