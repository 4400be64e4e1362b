//! Parses every job file of the shared Nomad corpus (`../shared/corpus` beside the workspace)
//! and reports how many parse; skips, saying so, when the corpus is absent.

use caravan_jobspec::{parse_hcl, parse_json, VarInputs};
use std::path::PathBuf;

/// How many HCL job files must parse (raise it when the parser learns more).
const HCL_FLOOR: usize = 478;

fn corpus_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    root.is_dir().then_some(root)
}

fn files(dir: &PathBuf, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    out.retain(|p| p.extension().and_then(|e| e.to_str()) == Some(ext));
    out.sort();
    out
}

#[test]
fn corpus_hcl_jobspecs_parse() {
    let Some(root) = corpus_dir() else {
        println!("SKIPPED: corpus not found at ../shared/corpus beside the workspace");
        return;
    };
    let (mut ok, mut failed) = (0usize, Vec::new());
    for path in files(&root.join("jobspecs"), "hcl") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let result = std::panic::catch_unwind(|| parse_hcl(&src, &name, &VarInputs::default()));
        match result {
            Ok(Ok(_)) => ok += 1,
            Ok(Err(e)) => failed.push(format!("{name}: {e}")),
            Err(_) => failed.push(format!("{name}: PANIC")),
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    println!("corpus jobspecs: {ok} ok, {} failed", failed.len());
    assert!(
        !failed.iter().any(|f| f.ends_with("PANIC")),
        "the parser panicked"
    );
    assert!(
        ok >= HCL_FLOOR,
        "only {ok} corpus job files parse, expected at least {HCL_FLOOR}"
    );
}

#[test]
fn corpus_json_jobs_parse() {
    let Some(root) = corpus_dir() else {
        println!("SKIPPED: corpus not found at ../shared/corpus beside the workspace");
        return;
    };
    let (mut ok, mut failed) = (0usize, Vec::new());
    for path in files(&root.join("jobspecs-json"), "json") {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        match parse_json(&src) {
            Ok(job) => {
                // Round trip: what we serialise reads back to the same job.
                let text = serde_json::to_string(&job).expect("a job serialises");
                let back = parse_json(&text).expect("our own JSON parses");
                assert_eq!(back, job, "{name} does not round-trip");
                ok += 1;
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    for f in &failed {
        println!("FAILED {f}");
    }
    println!("corpus JSON jobs: {ok} ok, {} failed", failed.len());
    assert!(ok >= 6, "only {ok} corpus JSON jobs parse, expected 6");
}
