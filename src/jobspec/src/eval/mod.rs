//! Expression evaluation for job files: HCL2 expressions over `var.*`, `local.*` and the
//! function library, with Nomad's rule for everything else: a reference to a name the parser
//! does not know (`attr.kernel.name`, `node.unique.name`, `meta.rack`, `NOMAD_ALLOC_ID`,
//! `env["X"]`) is kept as the text `${...}` for the client or scheduler to interpolate later.

mod arith;
mod fs;
mod funcs;
mod more;
pub(crate) mod types;

pub(crate) use fs::FsScope;

use hcl::eval::{Context, Evaluate};
use hcl::expr::{
    BinaryOp, Conditional, Expression, ForExpr, FuncCall, Operation, TemplateExpr, Traversal,
    TraversalOperator, UnaryOp,
};
use hcl::template::{Directive, Element};
use hcl::{ObjectKey, Template, Value};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

/// Evaluates expressions with a fixed set of known names (`var`, `local`, iterators).
#[derive(Debug, Clone)]
pub(crate) struct Evaluator {
    ctx: Context<'static>,
    known: BTreeSet<String>,
    /// Set while [`Evaluator::eval_strict`] runs: unknown names stay errors.
    strict: Cell<bool>,
    /// The attribute names of `var` and `local`, to name an undefined one in errors.
    declared: BTreeMap<String, BTreeSet<String>>,
    /// `var.x` / `local.x` references to undeclared names seen by the last rewrite.
    missing: RefCell<Vec<String>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Self::new()
    }
}

impl Evaluator {
    /// An evaluator that knows the function library and no variables.
    pub(crate) fn new() -> Self {
        let mut ctx = Context::new();
        funcs::declare_all(&mut ctx);
        more::declare(&mut ctx);
        fs::declare(&mut ctx);
        arith::declare(&mut ctx);
        Evaluator {
            ctx,
            known: BTreeSet::new(),
            strict: Cell::new(false),
            declared: BTreeMap::new(),
            missing: RefCell::new(Vec::new()),
        }
    }

    /// Declares (or replaces) a top-level name such as `var`, `local` or an iterator.
    pub(crate) fn declare(&mut self, name: &str, value: Value) {
        if let Value::Object(o) = &value {
            self.declared
                .insert(name.to_string(), o.keys().cloned().collect());
        }
        self.ctx.declare_var(name, value);
        self.known.insert(name.to_string());
    }

    /// A copy of this evaluator with one more name declared.
    pub(crate) fn with(&self, name: &str, value: Value) -> Evaluator {
        let mut e = self.clone();
        e.declare(name, value);
        e
    }

    /// Evaluates an expression; unknown references become `${...}` text.
    pub(crate) fn eval(&self, expr: &Expression) -> Result<Value, String> {
        let mut bound = Vec::new();
        self.missing.borrow_mut().clear();
        let result = guard(|| {
            let rewritten = self.rewrite(expr, &mut bound);
            rewritten.evaluate(&self.ctx).map_err(|e| e.to_string())
        });
        result.map_err(|e| self.explain(e))
    }

    /// Replaces HCL's "no such key" for `var.x` / `local.x` by what is missing and how to fix it.
    fn explain(&self, e: String) -> String {
        let missing = self.missing.borrow();
        let Some(first) = missing.first() else {
            return e;
        };
        let (kind, name) = first.split_once('.').unwrap_or(("var", first));
        if kind == "var" {
            format!(
                "undefined variable var.{name}: the job file declares no variable \"{name}\" block (declare it, with a default or a -var value)"
            )
        } else {
            format!("undefined local value local.{name}: no locals block sets {name:?}")
        }
    }

    /// Evaluates an expression that must not depend on unknown names (variable defaults and
    /// values, `for_each`, validation conditions).
    pub(crate) fn eval_strict(&self, expr: &Expression) -> Result<Value, String> {
        self.strict.set(true);
        self.missing.borrow_mut().clear();
        let mut bound = Vec::new();
        let result = guard(|| {
            let rewritten = self.rewrite(expr, &mut bound);
            rewritten.evaluate(&self.ctx).map_err(|e| e.to_string())
        });
        self.strict.set(false);
        result.map_err(|e| self.explain(e))
    }

    fn is_known(&self, name: &str, bound: &[String]) -> bool {
        self.strict.get() || self.known.contains(name) || bound.iter().any(|b| b == name)
    }

    /// Functions whose arguments are not plain values: `try` and `can` catch errors of their
    /// arguments, `convert` takes a type. Returns `None` for an ordinary call.
    fn special_form(&self, f: &FuncCall, bound: &mut Vec<String>) -> Option<Expression> {
        let name = f.name.to_string();
        match (name.as_str(), f.args.as_slice()) {
            ("convert", [value, ty]) => {
                let mut f2 = f.clone();
                f2.args = vec![self.rewrite(value, bound), Expression::String(render(ty))];
                Some(Expression::FuncCall(Box::new(f2)))
            }
            ("try", args) if bound.is_empty() && !args.is_empty() => {
                for a in args {
                    let e = self.rewrite(a, bound);
                    if let Ok(v) = guard(|| e.evaluate(&self.ctx).map_err(|e| e.to_string())) {
                        return Some(Expression::from(v));
                    }
                }
                None
            }
            ("can", [a]) if bound.is_empty() => {
                let e = self.rewrite(a, bound);
                let ok = guard(|| e.evaluate(&self.ctx).map_err(|e| e.to_string())).is_ok();
                Some(Expression::Bool(ok))
            }
            _ => None,
        }
    }

    /// Replaces every reference to an unknown name by the string `${<reference>}`.
    fn rewrite(&self, expr: &Expression, bound: &mut Vec<String>) -> Expression {
        match expr {
            Expression::Variable(v) => {
                if self.is_known(v.as_str(), bound) {
                    expr.clone()
                } else {
                    Expression::String(format!("${{{}}}", v.as_str()))
                }
            }
            Expression::Traversal(t) => {
                if let Expression::Variable(v) = &t.expr {
                    if !self.is_known(v.as_str(), bound) {
                        return Expression::String(format!("${{{}}}", render(expr)));
                    }
                    if let (Some(names), Some(TraversalOperator::GetAttr(attr))) =
                        (self.declared.get(v.as_str()), t.operators.first())
                    {
                        if !bound.iter().any(|b| b == v.as_str()) && !names.contains(attr.as_str())
                        {
                            self.missing.borrow_mut().push(format!(
                                "{}.{}",
                                v.as_str(),
                                attr.as_str()
                            ));
                        }
                    }
                }
                let operators: Vec<TraversalOperator> = t
                    .operators
                    .iter()
                    .map(|op| match op {
                        TraversalOperator::Index(e) => {
                            TraversalOperator::Index(self.rewrite(e, bound))
                        }
                        other => other.clone(),
                    })
                    .collect();
                Expression::Traversal(Box::new(Traversal::new(
                    self.rewrite(&t.expr, bound),
                    operators,
                )))
            }
            Expression::Array(items) => {
                Expression::Array(items.iter().map(|e| self.rewrite(e, bound)).collect())
            }
            Expression::Object(obj) => Expression::Object(
                obj.iter()
                    .map(|(k, v)| {
                        let k = match k {
                            ObjectKey::Expression(e) => {
                                ObjectKey::Expression(self.rewrite(e, bound))
                            }
                            other => other.clone(),
                        };
                        (k, self.rewrite(v, bound))
                    })
                    .collect(),
            ),
            Expression::TemplateExpr(t) => self.rewrite_template_expr(expr, t, bound),
            Expression::FuncCall(f) => {
                if let Some(e) = self.special_form(f, bound) {
                    return e;
                }
                let mut f2: FuncCall = (**f).clone();
                f2.args = f.args.iter().map(|e| self.rewrite(e, bound)).collect();
                Expression::FuncCall(Box::new(f2))
            }
            Expression::Parenthesis(e) => Expression::Parenthesis(Box::new(self.rewrite(e, bound))),
            Expression::Conditional(c) => Expression::Conditional(Box::new(Conditional::new(
                self.rewrite(&c.cond_expr, bound),
                self.rewrite(&c.true_expr, bound),
                self.rewrite(&c.false_expr, bound),
            ))),
            Expression::Operation(op) => match &**op {
                Operation::Unary(u) => Expression::Operation(Box::new(Operation::Unary(
                    UnaryOp::new(u.operator, self.rewrite(&u.expr, bound)),
                ))),
                // Arithmetic becomes a call of a checked operator (the HCL library panics on
                // `1 / 0`), after the library's precedence reordering.
                Operation::Binary(b) => {
                    let b = arith::normalize(b.clone());
                    let lhs = self.rewrite(&b.lhs_expr, bound);
                    let rhs = self.rewrite(&b.rhs_expr, bound);
                    match arith::checked_binary(lhs.clone(), b.operator, rhs.clone()) {
                        Some(call) => call,
                        None => Expression::Operation(Box::new(Operation::Binary(BinaryOp::new(
                            lhs, b.operator, rhs,
                        )))),
                    }
                }
            },
            Expression::ForExpr(f) => {
                let mut f2: ForExpr = (**f).clone();
                f2.collection_expr = self.rewrite(&f.collection_expr, bound);
                let depth = bound.len();
                if let Some(k) = &f.key_var {
                    bound.push(k.to_string());
                }
                bound.push(f.value_var.to_string());
                f2.key_expr = f.key_expr.as_ref().map(|e| self.rewrite(e, bound));
                f2.value_expr = self.rewrite(&f.value_expr, bound);
                f2.cond_expr = f.cond_expr.as_ref().map(|e| self.rewrite(e, bound));
                bound.truncate(depth);
                Expression::ForExpr(Box::new(f2))
            }
            other => other.clone(),
        }
    }

    /// A template that mentions unknown names is evaluated right away (with those names kept
    /// as text); one that does not is left for normal evaluation.
    fn rewrite_template_expr(
        &self,
        original: &Expression,
        t: &TemplateExpr,
        bound: &mut Vec<String>,
    ) -> Expression {
        let Ok(mut tpl) = Template::from_expr(t) else {
            return original.clone();
        };
        let mut changed = false;
        self.rewrite_template(&mut tpl, bound, &mut changed);
        if !changed {
            return original.clone();
        }
        if !bound.is_empty() {
            // Inside a `for`: the iterator is not known yet; keep the rewritten (checked)
            // form where it can be written as an expression.
            return arith::template_expression(&tpl).unwrap_or_else(|| original.clone());
        }
        let value = match tpl.elements() {
            [Element::Interpolation(i)] => i.expr.evaluate(&self.ctx),
            _ => tpl.evaluate(&self.ctx).map(Value::String),
        };
        match value {
            Ok(v) => Expression::from(v),
            // The original would run the unchecked arithmetic again: keep the error.
            Err(e) if e.to_string().contains(arith::ERROR_PREFIX) => arith::failing(e.to_string()),
            Err(_) => original.clone(),
        }
    }

    fn rewrite_template(&self, tpl: &mut Template, bound: &mut Vec<String>, changed: &mut bool) {
        for el in tpl.elements_mut() {
            match el {
                Element::Literal(_) => {}
                Element::Interpolation(i) => {
                    let new = self.rewrite(&i.expr, bound);
                    if new != i.expr {
                        *changed = true;
                        i.expr = new;
                    }
                }
                Element::Directive(Directive::If(d)) => {
                    let new = self.rewrite(&d.cond_expr, bound);
                    if new != d.cond_expr {
                        *changed = true;
                        d.cond_expr = new;
                    }
                    self.rewrite_template(&mut d.true_template, bound, changed);
                    if let Some(f) = &mut d.false_template {
                        self.rewrite_template(f, bound, changed);
                    }
                }
                Element::Directive(Directive::For(d)) => {
                    let new = self.rewrite(&d.collection_expr, bound);
                    if new != d.collection_expr {
                        *changed = true;
                        d.collection_expr = new;
                    }
                    let depth = bound.len();
                    if let Some(k) = &d.key_var {
                        bound.push(k.to_string());
                    }
                    bound.push(d.value_var.to_string());
                    self.rewrite_template(&mut d.template, bound, changed);
                    bound.truncate(depth);
                }
            }
        }
    }
}

/// Runs an evaluation, turning a panic inside the HCL library (it asserts, for example, that
/// arithmetic results are finite: `1 / 0`) into an error.
fn guard(f: impl FnOnce() -> Result<Value, String>) -> Result<Value, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(
            "the expression cannot be evaluated (division by zero or a number out of range?)"
                .into(),
        )
    })
}

/// The source form of an expression, as Nomad keeps it for runtime interpolation.
fn render(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap_or_default()
}

/// Converts an evaluated HCL value to JSON.
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Converts JSON to an HCL value.
pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    hcl::to_value(v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_expr(s: &str) -> Expression {
        let e: hcl::edit::expr::Expression = s.parse().unwrap();
        e.into()
    }

    fn eval(s: &str) -> Value {
        let mut e = Evaluator::new();
        e.declare(
            "var",
            hcl::value!({ name = "web", n = 3, list = ["a", "b"] }),
        );
        e.eval(&parse_expr(s)).unwrap()
    }

    #[test]
    fn unknown_references_are_kept_verbatim() {
        assert_eq!(
            eval(r#""${attr.kernel.name}""#),
            Value::from("${attr.kernel.name}")
        );
        assert_eq!(
            eval(r#""${NOMAD_ALLOC_DIR}/x""#),
            Value::from("${NOMAD_ALLOC_DIR}/x")
        );
        assert_eq!(eval(r#""${env["HOME"]}""#), Value::from("${env[\"HOME\"]}"));
        assert_eq!(
            eval(r#""${var.name}-${node.unique.name}""#),
            Value::from("web-${node.unique.name}")
        );
        assert_eq!(eval("meta.rack"), Value::from("${meta.rack}"));
    }

    #[test]
    fn known_references_and_functions_evaluate() {
        assert_eq!(eval("var.n + 1"), Value::from(4));
        assert_eq!(eval(r#"upper(var.name)"#), Value::from("WEB"));
        assert_eq!(eval(r#"join(",", var.list)"#), Value::from("a,b"));
        assert_eq!(
            eval(r#"[for x in var.list : upper(x)]"#),
            hcl::value!(["A", "B"])
        );
        assert_eq!(eval(r#""$${literal}""#), Value::from("${literal}"));
    }

    #[test]
    fn undefined_var_attribute_is_an_error() {
        let e = Evaluator::new().with("var", hcl::value!({}));
        assert!(e.eval(&parse_expr("var.missing")).is_err());
    }
}
