//! Shell completion in the protocol of bash's `complete -C caravan caravan` (as Nomad's
//! posener/complete does): the shell runs the binary with `COMP_LINE` and `COMP_POINT` set,
//! and it prints the candidates for the word under the cursor, one a line.

use crate::registry::{ALIASES, COMMANDS, GLOBAL_FLAGS, GROUPS};

/// The candidates for `line` (the command line up to the cursor, program name first).
pub fn complete(line: &str) -> Vec<String> {
    let mut words: Vec<&str> = line.split_whitespace().collect();
    if words.is_empty() {
        return vec![];
    }
    words.remove(0); // the program
    let current = if line.ends_with(char::is_whitespace) {
        ""
    } else {
        words.pop().unwrap_or("")
    };
    let before: Vec<&str> = words;

    // Find the command path the words before the cursor name.
    let mut path: Vec<&str> = vec![];
    for w in &before {
        if w.starts_with('-') {
            continue;
        }
        let candidate = if path.is_empty() {
            w.to_string()
        } else {
            format!("{} {}", path.join(" "), w)
        };
        let known_prefix = COMMANDS
            .iter()
            .any(|c| c.name == candidate || c.name.starts_with(&format!("{candidate} ")));
        let alias = path.is_empty() && ALIASES.iter().any(|(a, _)| *a == candidate);
        if known_prefix || alias {
            path.push(w);
        } else {
            break;
        }
    }
    let mut name = path.join(" ");
    if let Some((_, target)) = ALIASES.iter().find(|(a, _)| *a == name) {
        name = target.to_string();
    }

    let mut out: Vec<String> = vec![];
    if current.starts_with('-') {
        let bare = current.trim_start_matches('-');
        let dashes = if current.starts_with("--") { "--" } else { "-" };
        let mut flags: Vec<&str> = GLOBAL_FLAGS.iter().map(|f| f.name).collect();
        if let Some(spec) = COMMANDS.iter().find(|c| c.name == name) {
            flags.extend(spec.flags.iter().map(|f| f.name));
        }
        for f in flags {
            if f.starts_with(bare) {
                out.push(format!("{dashes}{f}"));
            }
        }
    } else if COMMANDS.iter().any(|c| c.name == name) {
        // A complete command: its arguments are IDs or files, which we leave to the shell.
    } else {
        let prefix = if name.is_empty() {
            String::new()
        } else {
            format!("{name} ")
        };
        let mut subs: Vec<String> = COMMANDS
            .iter()
            .filter_map(|c| c.name.strip_prefix(prefix.as_str()))
            .map(|rest| rest.split(' ').next().unwrap_or("").to_string())
            .collect();
        if name.is_empty() {
            subs.extend(GROUPS.iter().map(|(g, _)| g.to_string()));
            subs.extend(ALIASES.iter().map(|(a, _)| a.to_string()));
            subs.push("agent".into());
        }
        subs.sort();
        subs.dedup();
        out.extend(subs.into_iter().filter(|s| s.starts_with(current)));
    }
    out.sort();
    out.dedup();
    out
}

/// The part of `COMP_LINE` before `COMP_POINT` (a byte offset; the whole line when unset or
/// out of range).
pub fn line_to_point(line: &str, point: Option<&str>) -> String {
    match point.and_then(|p| p.parse::<usize>().ok()) {
        Some(p) if p <= line.len() && line.is_char_boundary(p) => line[..p].to_string(),
        _ => line.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_top_level_commands() {
        let c = complete("caravan jo");
        assert_eq!(c, vec!["job"]);
        let c = complete("caravan ");
        assert!(c.contains(&"job".to_string()));
        assert!(c.contains(&"alloc".to_string()));
        assert!(c.contains(&"run".to_string()));
    }

    #[test]
    fn completes_subcommands() {
        assert_eq!(complete("caravan job st"), vec!["status", "stop"]);
        let c = complete("caravan alloc ");
        assert!(c.contains(&"logs".to_string()));
        assert!(c.contains(&"status".to_string()));
        assert!(!c.contains(&"run".to_string()));
    }

    #[test]
    fn completes_flags_of_the_command() {
        let c = complete("caravan job run -de");
        assert_eq!(c, vec!["-detach"]);
        let c = complete("caravan alloc logs --st");
        assert_eq!(c, vec!["--stderr", "--stdout"]);
        let c = complete("caravan run -add");
        assert_eq!(c, vec!["-address"]);
    }

    #[test]
    fn nothing_for_arguments() {
        assert!(complete("caravan job status ex").is_empty());
    }

    #[test]
    fn cuts_at_the_cursor() {
        assert_eq!(line_to_point("caravan job run", Some("11")), "caravan job");
        assert_eq!(line_to_point("caravan", Some("99")), "caravan");
    }
}
