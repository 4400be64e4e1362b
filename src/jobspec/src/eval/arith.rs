//! Checked arithmetic for job file expressions. The HCL library panics on arithmetic it cannot
//! represent (`1 / 0`, `5 % 0`, a float overflowing to infinity, and in debug builds an
//! integer overflow; unary `-` cannot fail); a server must answer such a job file with an error, not a panic. So the
//! evaluator rewrites each `+ - * / %` into a call of a function declared here,
//! which checks the operation first and then lets the HCL library compute it, so results are
//! the library's own.
//!
//! The HCL parser builds operator chains without precedence (nested to the right) and the
//! library reorders them only partly at evaluation time; [`normalize`] rebuilds each chain by
//! precedence, left to right, as HCL defines it, before the rewrite.

use hcl::eval::{Context, Evaluate, FuncDef, ParamType};
use hcl::expr::{BinaryOp, BinaryOperator, Expression, FuncCall, Operation};
use hcl::{Identifier, Number, Value};

/// What every error of a checked operation starts with.
pub(super) const ERROR_PREFIX: &str = "arithmetic error";

/// The declared function for an operator, `None` for comparisons and logic (which cannot
/// panic).
fn func_name(op: BinaryOperator) -> Option<&'static str> {
    match op {
        BinaryOperator::Plus => Some("operator +"),
        BinaryOperator::Minus => Some("operator -"),
        BinaryOperator::Mul => Some("operator *"),
        BinaryOperator::Div => Some("operator /"),
        BinaryOperator::Mod => Some("operator %"),
        _ => None,
    }
}

/// `lhs op rhs` as a call of the checked function, or `None` when `op` needs no check.
pub(super) fn checked_binary(
    lhs: Expression,
    op: BinaryOperator,
    rhs: Expression,
) -> Option<Expression> {
    let name = func_name(op)?;
    let call = FuncCall::builder(Identifier::unchecked(name))
        .arg(lhs)
        .arg(rhs)
        .build();
    Some(Expression::FuncCall(Box::new(call)))
}

/// Declares the checked operators in `ctx`.
pub(super) fn declare(ctx: &mut Context<'static>) {
    let two = || FuncDef::builder().params([ParamType::Any, ParamType::Any]);
    ctx.declare_func(
        Identifier::unchecked("operator +"),
        two().build(|a| binary(&a[0], BinaryOperator::Plus, &a[1])),
    );
    ctx.declare_func(
        Identifier::unchecked("operator -"),
        two().build(|a| binary(&a[0], BinaryOperator::Minus, &a[1])),
    );
    ctx.declare_func(
        Identifier::unchecked("operator *"),
        two().build(|a| binary(&a[0], BinaryOperator::Mul, &a[1])),
    );
    ctx.declare_func(
        Identifier::unchecked("operator /"),
        two().build(|a| binary(&a[0], BinaryOperator::Div, &a[1])),
    );
    ctx.declare_func(
        Identifier::unchecked("operator %"),
        two().build(|a| binary(&a[0], BinaryOperator::Mod, &a[1])),
    );
    ctx.declare_func(
        Identifier::unchecked(CONCAT),
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|a| {
                Ok(Value::String(
                    a.iter()
                        .map(|v| match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect(),
                ))
            }),
    );
    ctx.declare_func(
        Identifier::unchecked(FAIL),
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a| Err(a[0].as_str().unwrap_or_default().to_string())),
    );
}

/// An integer operand, exactly.
fn int(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn float(n: &Number) -> f64 {
    n.as_f64().unwrap_or(f64::NAN)
}

/// Whether the library can compute `a op b` without panicking (or, in a release build,
/// wrapping around): the checks mirror its arithmetic, integers staying integers when both
/// are, floats otherwise.
fn check(a: &Number, op: BinaryOperator, b: &Number) -> Result<(), String> {
    let out_of_range = || {
        Err(format!(
            "{ERROR_PREFIX}: the result of {a} {op} {b} is out of range"
        ))
    };
    match op {
        BinaryOperator::Div => {
            if float(b) == 0.0 {
                return Err(format!("{ERROR_PREFIX}: division by zero in {a} / {b}"));
            }
            if !(float(a) / float(b)).is_finite() {
                return out_of_range();
            }
        }
        BinaryOperator::Mod => {
            if float(b) == 0.0 {
                return Err(format!("{ERROR_PREFIX}: modulo by zero in {a} % {b}"));
            }
            if let (Some(x), Some(y)) = (int(a), int(b)) {
                // i64::MIN % -1 overflows in the library's signed arithmetic.
                if x == i128::from(i64::MIN) && y == -1 {
                    return out_of_range();
                }
            } else if !(float(a) % float(b)).is_finite() {
                return out_of_range();
            }
        }
        BinaryOperator::Plus | BinaryOperator::Minus | BinaryOperator::Mul => {
            let fits = match (int(a), int(b)) {
                // Both non-negative: the library computes in u64 (a difference that goes
                // negative in i64, casting both operands).
                (Some(x), Some(y)) if x >= 0 && y >= 0 => match op {
                    BinaryOperator::Plus => x + y <= i128::from(u64::MAX),
                    BinaryOperator::Minus => {
                        y <= x || (x <= i128::from(i64::MAX) && y <= i128::from(i64::MAX))
                    }
                    _ => x.checked_mul(y).is_some_and(|r| r <= i128::from(u64::MAX)),
                },
                // Both negative: in i64.
                (Some(x), Some(y)) if x < 0 && y < 0 => {
                    let r = match op {
                        BinaryOperator::Plus => x + y,
                        BinaryOperator::Minus => x - y,
                        _ => x * y,
                    };
                    (i128::from(i64::MIN)..=i128::from(i64::MAX)).contains(&r)
                }
                // Mixed signs or a fraction: in f64.
                _ => {
                    let r = match op {
                        BinaryOperator::Plus => float(a) + float(b),
                        BinaryOperator::Minus => float(a) - float(b),
                        _ => float(a) * float(b),
                    };
                    r.is_finite()
                }
            };
            if !fits {
                return out_of_range();
            }
        }
        _ => {}
    }
    Ok(())
}

/// `a op b`: checked when both are numbers, then computed by the HCL library (which also gives
/// its own error for operands of other types).
fn binary(a: &Value, op: BinaryOperator, b: &Value) -> Result<Value, String> {
    if let (Value::Number(x), Value::Number(y)) = (a, b) {
        check(x, op, y)?;
    }
    let expr = BinaryOp::new(Expression::from(a.clone()), op, Expression::from(b.clone()));
    expr.evaluate(&Context::new()).map_err(|e| e.to_string())
}

/// Flattens an operator chain into its operands and operators in source order (parenthesised
/// parts stay whole: they are `Expression::Parenthesis`).
fn flatten(e: Expression, operands: &mut Vec<Expression>, ops: &mut Vec<BinaryOperator>) {
    match e {
        Expression::Operation(op) => match *op {
            Operation::Binary(b) => {
                flatten(b.lhs_expr, operands, ops);
                ops.push(b.operator);
                flatten(b.rhs_expr, operands, ops);
            }
            unary => operands.push(Expression::from(unary)),
        },
        other => operands.push(other),
    }
}

fn combine(operands: &mut Vec<Expression>, ops: &mut Vec<BinaryOperator>) {
    if let (Some(op), Some(rhs), Some(lhs)) = (ops.pop(), operands.pop(), operands.pop()) {
        operands.push(Expression::Operation(Box::new(Operation::Binary(
            BinaryOp::new(lhs, op, rhs),
        ))));
    }
}

/// Rebuilds an operator chain by precedence, operators of equal precedence from the left, as
/// HCL (Nomad's `hclsyntax`) reads `10 / 4 * 2` (5). The HCL parser nests every chain to the
/// right (`10 / (4 * 2)`) and the HCL library's own reordering lifts only lower precedence
/// operators, so without this `10 / 4 * 2` gave 1.25 and `3 - 10 + 8` gave -15.
pub(super) fn normalize(op: BinaryOp) -> BinaryOp {
    let mut operands = Vec::new();
    let mut ops = Vec::new();
    flatten(
        Expression::Operation(Box::new(Operation::Binary(op.clone()))),
        &mut operands,
        &mut ops,
    );
    let mut out: Vec<Expression> = Vec::new();
    let mut pending: Vec<BinaryOperator> = Vec::new();
    let mut rest = operands.into_iter();
    if let Some(first) = rest.next() {
        out.push(first);
    }
    for (op, operand) in ops.into_iter().zip(rest) {
        while pending
            .last()
            .is_some_and(|top| top.precedence() >= op.precedence())
        {
            combine(&mut out, &mut pending);
        }
        pending.push(op);
        out.push(operand);
    }
    while !pending.is_empty() {
        combine(&mut out, &mut pending);
    }
    match out.pop() {
        Some(Expression::Operation(o)) => match *o {
            Operation::Binary(b) => b,
            _ => op,
        },
        _ => op,
    }
}

/// Names no job file can call (they hold a space).
const FAIL: &str = "arithmetic failed";
const CONCAT: &str = "template concat";

/// An expression whose evaluation fails with `message` (for a template whose checked
/// arithmetic failed while it was evaluated early).
pub(super) fn failing(message: String) -> Expression {
    let call = FuncCall::builder(Identifier::unchecked(FAIL))
        .arg(Expression::String(message))
        .build();
    Expression::FuncCall(Box::new(call))
}

/// A template (already rewritten) as an expression that evaluates like it: its one
/// interpolation's value, or the concatenation of its literals and interpolated values, as the
/// HCL library evaluates a template. `None` for templates with directives or strip markers,
/// which stay templates. Used for templates inside `for` expressions, which cannot be evaluated
/// ahead and would otherwise keep unchecked arithmetic.
pub(super) fn template_expression(tpl: &hcl::Template) -> Option<Expression> {
    use hcl::template::{Element, Strip};
    let elements = tpl.elements();
    if let [Element::Interpolation(i)] = elements {
        return (i.strip == Strip::None).then(|| Expression::Parenthesis(Box::new(i.expr.clone())));
    }
    let mut call = FuncCall::builder(Identifier::unchecked(CONCAT));
    for el in elements {
        call = match el {
            Element::Literal(l) => call.arg(Expression::String(l.clone())),
            Element::Interpolation(i) if i.strip == Strip::None => call.arg(i.expr.clone()),
            _ => return None,
        };
    }
    Some(Expression::FuncCall(Box::new(call.build())))
}
