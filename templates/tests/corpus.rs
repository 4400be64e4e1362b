//! Every `template` block's `data` in the shared corpus of real job files
//! (`/work/shared/corpus/jobspecs`, or `$CARAVAN_CORPUS`) parses with its delimiters. Skips
//! with a message when the corpus is not on this machine.

use caravan_templates::Template;
use std::path::PathBuf;

#[test]
fn corpus_templates_parse() {
    let dir = std::env::var("CARAVAN_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/work/shared/corpus/jobspecs"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("SKIP: no job-file corpus at {}", dir.display());
        return;
    };
    let mut checked = 0;
    let mut failures = vec![];
    for e in entries.flatten() {
        let path = e.path();
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let name = path.display().to_string();
        let Ok(job) = caravan_jobspec::parse(&src, &name, &Default::default()) else {
            continue;
        };
        for tg in &job.task_groups {
            for t in &tg.tasks {
                for (i, tmpl) in t.templates.iter().enumerate() {
                    let s = |k: &str| tmpl.get(k).and_then(|v| v.as_str()).unwrap_or_default();
                    if s("EmbeddedTmpl").is_empty() {
                        continue;
                    }
                    checked += 1;
                    if let Err(e) = Template::parse_delims(
                        "t",
                        s("EmbeddedTmpl"),
                        s("LeftDelim"),
                        s("RightDelim"),
                    ) {
                        failures.push(format!("{name} task {} template {i}: {e}", t.name));
                    }
                }
            }
        }
    }
    eprintln!("{checked} corpus templates checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
