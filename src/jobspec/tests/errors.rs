//! Errors people can act on: each names file, line and column, the block path from the job
//! down, and what was expected (a "did you mean" for misspelt names, the type for wrong values).

use caravan_jobspec::{parse_hcl, JobspecError, VarInputs};
use std::collections::BTreeMap;

fn err_with(src: &str, inputs: &VarInputs) -> JobspecError {
    match parse_hcl(src, "web.nomad.hcl", inputs) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => e,
    }
}

fn err(src: &str) -> JobspecError {
    err_with(src, &VarInputs::default())
}

fn job(task_body: &str) -> String {
    format!(
        "job \"web\" {{\n  group \"api\" {{\n    task \"server\" {{\n      driver = \"exec\"\n{task_body}\n    }}\n  }}\n}}\n"
    )
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = err("job \"web\" {\n  group \"api\" {\n    count = = 1\n  }\n}\n");
    assert!(matches!(e, JobspecError::Syntax { .. }), "{e:?}");
    assert_eq!((e.line(), e.column()), (3, 13), "{e}");
    assert!(e.to_string().starts_with("web.nomad.hcl:3:13: "), "{e}");
}

#[test]
fn misspelt_argument_names_path_and_suggestion() {
    let e = err(&job("      user = \"x\"\n      kill_timout = \"5s\""));
    assert_eq!(
        e.to_string(),
        "web.nomad.hcl:6:7: job \"web\" -> group \"api\" -> task \"server\": unsupported argument \"kill_timout\"; did you mean \"kill_timeout\"?"
    );
}

#[test]
fn misspelt_block_gets_a_suggestion() {
    let e = err(&job("      resource {\n        cpu = 100\n      }"));
    let s = e.to_string();
    assert!(s.contains("unsupported block type \"resource\""), "{s}");
    assert!(s.contains("did you mean \"resources\"?"), "{s}");
    assert!(
        s.contains("job \"web\" -> group \"api\" -> task \"server\""),
        "{s}"
    );
    assert_eq!(e.line(), 5);
}

#[test]
fn unknown_names_far_from_any_get_no_guess() {
    let e = err(&job("      frobnicate = true"));
    assert!(!e.to_string().contains("did you mean"), "{e}");
}

#[test]
fn wrong_types_name_the_expected_type() {
    let e = err("job \"web\" {\n  group \"api\" {\n    count = \"many\"\n  }\n}\n");
    assert!(e.to_string().contains("expected a whole number"), "{e}");
    assert_eq!(e.line(), 3);
    let e = err("job \"web\" {\n  datacenters = \"dc1\"\n}\n");
    assert!(
        e.to_string()
            .contains("expected a list of strings, got string"),
        "{e}"
    );
    let e = err(&job("      kill_timeout = \"soon\""));
    assert!(e.to_string().contains("invalid duration"), "{e}");
    let e = err(&job("      leader = \"perhaps\""));
    assert!(e.to_string().contains("expected a bool"), "{e}");
    let e = err(&job("      resources {\n        memory = [1]\n      }"));
    let s = e.to_string();
    assert!(s.contains("expected a number, got list"), "{s}");
    assert!(s.contains("-> resources"), "{s}");
}

#[test]
fn argument_written_as_block_and_block_as_argument() {
    let e = err(&job("      user {\n      }"));
    assert!(e.to_string().contains("is an argument"), "{e}");
    let e = err(&job("      restart = {}"));
    assert!(
        e.to_string()
            .contains("did you mean to define a block of type \"restart\""),
        "{e}"
    );
}

#[test]
fn duplicate_blocks_are_named() {
    let e = err(&job("      logs {}\n      logs {}"));
    assert!(e.to_string().contains("duplicate logs block"), "{e}");
    assert_eq!(e.line(), 6);
}

#[test]
fn variable_type_errors_name_the_expected_type() {
    let src =
        "variable \"dcs\" {\n  type = list(string)\n}\njob \"web\" {\n  datacenters = var.dcs\n}\n";
    let mut vars = BTreeMap::new();
    vars.insert("dcs".to_string(), "{ a = 1 }".to_string());
    let e = err_with(
        src,
        &VarInputs {
            vars,
            ..Default::default()
        },
    );
    assert!(e.to_string().contains("list(string) required"), "{e}");

    let e = err("variable \"n\" {\n  type    = number\n  default = \"ten\"\n}\njob \"web\" {}\n");
    let s = e.to_string();
    assert!(s.contains("invalid default value"), "{s}");
    assert!(s.contains("number required"), "{s}");
    assert_eq!(e.line(), 3);

    let e = err("variable \"n\" {\n  type = strng\n}\njob \"web\" {}\n");
    assert!(e.to_string().contains("unknown type \"strng\""), "{e}");
}

#[test]
fn undefined_variables_and_failed_validations_say_how_to_fix() {
    let e = err("job \"web\" {\n  region = var.regon\n}\n");
    assert!(
        e.to_string().contains(
            "undefined variable var.regon: the job file declares no variable \"regon\" block"
        ),
        "{e}"
    );
    let src = "variable \"count\" {\n  type = number\n  validation {\n    condition     = var.count > 0\n    error_message = \"count must be positive\"\n  }\n}\njob \"web\" {}\n";
    let mut vars = BTreeMap::new();
    vars.insert("count".to_string(), "0".to_string());
    let e = err_with(
        src,
        &VarInputs {
            vars,
            ..Default::default()
        },
    );
    assert!(e.to_string().contains("count must be positive"), "{e}");
    let e = err("variable \"x\" {\n  default = 1\n  validation {\n    condition     = true\n    error_message = \"\"\n  }\n}\njob \"web\" {}\n");
    assert!(
        e.to_string().contains("Invalid validation error message"),
        "{e}"
    );
}

#[test]
fn file_functions_are_off_unless_allowed() {
    let src = "job \"web\" {\n  region = file(\"region.txt\")\n}\n";
    let e = err(src);
    assert!(
        e.to_string().contains("filesystem function disabled"),
        "{e}"
    );
    let dir = std::env::temp_dir().join(format!("jobspec-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("region.txt"), "moon").unwrap();
    let job = parse_hcl(
        src,
        "web.nomad.hcl",
        &VarInputs {
            fs_base_dir: Some(dir.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(job.region, "moon");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn several_problems_are_reported_at_once() {
    let e = err(
        "job \"web\" {\n  prioritty = 5\n  group \"api\" {\n    count = \"x\"\n    task \"a\" {\n      drivr = \"exec\"\n    }\n  }\n}\n",
    );
    let all = e.problems();
    assert_eq!(all.len(), 3, "{e}");
    let lines: Vec<usize> = all.iter().map(|p| p.line()).collect();
    assert_eq!(lines, vec![2, 4, 6]);
    let s = e.to_string();
    assert!(s.contains("did you mean \"priority\"?"), "{s}");
    assert!(s.contains("did you mean \"driver\"?"), "{s}");
    assert_eq!(s.lines().count(), 3, "{s}");
}
