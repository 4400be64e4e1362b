//! Go `text/template` for the `-t` flag of read commands, over JSON values: the engine is
//! `caravan-templates` (the same one that renders job `template` blocks); this module adds the
//! CLI's extra functions `join`, `upper`, `lower` and `toJson`.

use caravan_templates::{ExecOptions, FuncHost, Template};
use serde_json::Value;

pub use caravan_templates::fmt::{go_print, sprintf};
pub use caravan_templates::TemplateError;

/// The CLI's functions beyond Go's builtins.
struct CliFuncs;

impl FuncHost for CliFuncs {
    fn call(&mut self, name: &str, args: Vec<Value>) -> Option<Result<Value, String>> {
        let one = || match args.as_slice() {
            [v] => Ok(v.clone()),
            _ => Err(format!(
                "wrong number of args for {name}: want 1 got {}",
                args.len()
            )),
        };
        Some(match name {
            "join" => match args.as_slice() {
                [Value::String(sep), Value::Array(a)] | [Value::Array(a), Value::String(sep)] => {
                    Ok(Value::String(
                        a.iter().map(go_print).collect::<Vec<_>>().join(sep),
                    ))
                }
                _ => Err("join needs a list and a separator".into()),
            },
            "upper" => one().map(|v| Value::String(go_print(&v).to_uppercase())),
            "lower" => one().map(|v| Value::String(go_print(&v).to_lowercase())),
            "toJson" | "json" => {
                one().map(|v| Value::String(serde_json::to_string(&v).unwrap_or_default()))
            }
            _ => return None,
        })
    }
}

/// Parses and runs `src` over `data`.
pub fn render(src: &str, data: &Value) -> Result<String, TemplateError> {
    Template::parse("-t", src)?.execute(data, &mut CliFuncs, &ExecOptions::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_and_nested_fields() {
        let d = json!({"ID": "abc", "Job": {"Name": "web"}});
        assert_eq!(render("{{.ID}}", &d).unwrap(), "abc");
        assert_eq!(
            render("id={{ .ID }} job={{.Job.Name}}", &d).unwrap(),
            "id=abc job=web"
        );
        assert_eq!(render("{{.Missing}}", &d).unwrap(), "<no value>");
    }

    #[test]
    fn range_over_lists_with_variables() {
        let d = json!([{"ID": "a"}, {"ID": "b"}]);
        assert_eq!(render("{{range .}}{{.ID}}{{end}}", &d).unwrap(), "ab");
        assert_eq!(
            render("{{range $i, $e := .}}{{$i}}={{$e.ID}} {{end}}", &d).unwrap(),
            "0=a 1=b "
        );
        assert_eq!(
            render("{{range .}}x{{else}}empty{{end}}", &json!([])).unwrap(),
            "empty"
        );
        assert_eq!(
            render("{{range .}}\n  {{- .ID}}\n{{- end}}", &d).unwrap(),
            "ab"
        );
    }

    #[test]
    fn printf_and_pipelines() {
        let d = json!({"Name": "cache", "Count": 3, "F": 0.5});
        assert_eq!(render(r#"{{printf "%s" .Name}}"#, &d).unwrap(), "cache");
        assert_eq!(
            render(r#"{{printf "%-6s|%03d" .Name .Count}}"#, &d).unwrap(),
            "cache |003"
        );
        assert_eq!(
            render(r#"{{.Name | printf "%q"}}"#, &d).unwrap(),
            "\"cache\""
        );
        assert_eq!(render(r#"{{printf "%.2f" .F}}"#, &d).unwrap(), "0.50");
        assert_eq!(render("{{len .Name}}", &d).unwrap(), "5");
    }

    #[test]
    fn conditionals_and_comparisons() {
        let d = json!({"Status": "running", "N": 2, "Tags": ["a", "b"]});
        let t = r#"{{if eq .Status "dead"}}D{{else if gt .N 1}}many{{else}}one{{end}}"#;
        assert_eq!(render(t, &d).unwrap(), "many");
        assert_eq!(render("{{if .Tags}}{{len .Tags}}{{end}}", &d).unwrap(), "2");
        assert_eq!(
            render("{{with .Status}}{{.}}{{end}}", &d).unwrap(),
            "running"
        );
        assert_eq!(render(r#"{{join .Tags ","}}"#, &d).unwrap(), "a,b");
        assert_eq!(render("{{index .Tags 1}}", &d).unwrap(), "b");
        assert_eq!(render("{{(index .Tags 0) | upper}}", &d).unwrap(), "A");
        assert_eq!(render("{{/* note */}}ok", &d).unwrap(), "ok");
    }

    #[test]
    fn maps_print_like_go() {
        let d = json!({"M": {"b": 1, "a": "x"}, "L": [1, 2]});
        assert_eq!(render("{{.M}} {{.L}}", &d).unwrap(), "map[a:x b:1] [1 2]");
    }

    #[test]
    fn errors_are_reported() {
        assert!(render("{{if .X}}", &json!({})).is_err());
        assert!(render("{{.X", &json!({})).is_err());
        assert!(render("{{nosuch .X}}", &json!({})).is_err());
        assert!(render("{{end}}", &json!({})).is_err());
    }
}
