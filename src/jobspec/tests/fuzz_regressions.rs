//! Inputs the parser's fuzz target (`fuzz/`, see fuzz/README.md) found crashing, reduced by
//! hand, and the neighbours of each: every one must give an error (or a value), never panic.

use caravan_jobspec::{parse_hcl, JobspecError, VarInputs};

fn parse(src: &str) -> Result<caravan_structs::Job, JobspecError> {
    parse_hcl(src, "fuzz.nomad.hcl", &VarInputs::default())
}

/// A job whose group network has a port `to = <expr>`.
fn with_port_to(expr: &str) -> String {
    format!(
        r#"job "j" {{
  group "g" {{
    network {{
      port "api" {{
        to = {expr}
      }}
    }}
    task "t" {{
      driver = "docker"
    }}
  }}
}}
"#
    )
}

fn port_to(job: &caravan_structs::Job) -> i64 {
    i64::from(job.task_groups[0].networks[0].dynamic_ports[0].to)
}

#[test]
fn division_by_zero_is_an_error_not_a_panic() {
    // The fuzzer's find (crash-80e9dcb7…): `to = 3/00` in a port block; the HCL library
    // asserts that a quotient is finite.
    let err = parse(&with_port_to("3/00")).expect_err("3/00 must not parse");
    let msg = err.to_string();
    assert!(msg.contains("division by zero"), "{msg}");
    assert!(msg.contains("port"), "the error names where: {msg}");
}

#[test]
fn arithmetic_that_cannot_be_represented_is_an_error() {
    for expr in [
        "5 % 0",
        "1.5 % 0",
        "1e308 * 10",
        "-1e308 - 1e308",
        "18446744073709551615 + 1",
        "18446744073709551615 * 2",
        "-9223372036854775807 - 2 * 9223372036854775807",
        "-9223372036854775808 % -1",
        "0 - 18446744073709551615",
        "(1 / 0) + 1",
        "-(1 / 0)",
        r#""${1 / 0}""#,
        r#"[for x in [0, 1] : 10 / x][0]"#,
        r#"[for x in [0, 1] : "${10 / x}"][0]"#,
        r#"length([for x in [0, 1] : "n${10 % x}"])"#,
    ] {
        let result = std::panic::catch_unwind(|| parse(&with_port_to(expr)));
        let parsed = result.unwrap_or_else(|_| panic!("{expr}: the parser panicked"));
        assert!(parsed.is_err(), "{expr}: parsed, should be an error");
    }
}

#[test]
fn arithmetic_keeps_its_results_and_precedence() {
    for (expr, want) in [
        ("1 + 2 * 3", 7),
        ("2 * 3 + 4", 10),
        ("(1 + 2) * 3", 9),
        ("10 / 4 * 2", 5),
        ("7 % 4 + 1", 4),
        ("-3 + 10", 7),
        ("3 - 10 + 8", 1),
        ("9223372036854775807 - 9223372036854775800", 7),
        ("-2 * -3", 6),
        ("1 + 2 > 2 ? 5 : 6", 5),
        (r#"[for x in [4, 2] : "${x * 2}"][1]"#, 4),
        (r#"length([for x in [4, 2] : "n${x * 2}"][0])"#, 2),
    ] {
        let job = parse(&with_port_to(expr)).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(port_to(&job), want, "{expr}");
    }
}

#[test]
fn arithmetic_in_variables_locals_and_templates_is_checked() {
    let src = r#"
variable "n" {
  default = 0
}
locals {
  ratio = 10 / var.n
}
job "j" {
  group "g" {
    task "t" {
      driver = "docker"
      env {
        RATIO = "${local.ratio}"
      }
    }
  }
}
"#;
    let err = parse(src).expect_err("10 / 0 in a local");
    assert!(err.to_string().contains("division by zero"), "{err}");

    let ok = src.replace("default = 0", "default = 4");
    let job = parse(&ok).expect("10 / 4 parses");
    assert_eq!(job.task_groups[0].tasks[0].env["RATIO"], "2.5");
}
