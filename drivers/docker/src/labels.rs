//! The plugin's `extra_labels`: which of Nomad's task metadata labels (`job_name`, `job_id`,
//! `task_group_name`, `task_name`, `namespace`) a container also carries, as
//! `com.hashicorp.nomad.<name>`, chosen by name or glob (`job_*`, `*`). `node_name` and
//! `node_id` are matched too but the driver does not know them, so they are not added.

use caravan_driver::TaskConfig;

/// The labels `patterns` select for `task`.
pub fn extra(task: &TaskConfig, patterns: &[String]) -> Vec<(String, String)> {
    if patterns.is_empty() {
        return Vec::new();
    }
    let env = |k: &str| task.env.get(k).cloned().unwrap_or_default();
    let known = [
        ("job_name", task.job_name.clone()),
        ("job_id", env("NOMAD_JOB_ID")),
        ("task_group_name", task.task_group.clone()),
        ("task_name", task.name.clone()),
        ("namespace", env("NOMAD_NAMESPACE")),
    ];
    known
        .into_iter()
        .filter(|(name, value)| !value.is_empty() && patterns.iter().any(|p| glob(p, name)))
        .map(|(name, value)| (format!("com.hashicorp.nomad.{name}"), value))
        .collect()
}

/// `*` matches any run of characters; everything else matches itself.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.trim().split('*').collect();
    if parts.len() == 1 {
        return parts[0] == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> TaskConfig {
        TaskConfig {
            name: "web".into(),
            job_name: "shop".into(),
            task_group: "front".into(),
            env: [
                ("NOMAD_JOB_ID".to_string(), "shop-1".to_string()),
                ("NOMAD_NAMESPACE".to_string(), "prod".to_string()),
            ]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_and_globs_select_labels() {
        let t = task();
        assert!(extra(&t, &[]).is_empty());
        assert_eq!(
            extra(&t, &["job_*".into()]),
            vec![
                (
                    "com.hashicorp.nomad.job_name".to_string(),
                    "shop".to_string()
                ),
                (
                    "com.hashicorp.nomad.job_id".to_string(),
                    "shop-1".to_string()
                ),
            ]
        );
        assert_eq!(
            extra(&t, &["namespace".into(), "node_id".into()]),
            vec![(
                "com.hashicorp.nomad.namespace".to_string(),
                "prod".to_string()
            )]
        );
        assert_eq!(extra(&t, &["*".into()]).len(), 5);
        assert_eq!(extra(&t, &["*_name".into()]).len(), 3);
        assert!(extra(&t, &["task".into()]).is_empty());
    }

    #[test]
    fn glob_matching() {
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxc"));
        assert!(glob("*", ""));
        assert!(!glob("ab*ba", "aba"));
    }
}
