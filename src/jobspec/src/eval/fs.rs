//! Nomad's filesystem functions (`file`, `filebase64`, `fileexists`, `fileset`, `abspath`,
//! `basename`, `dirname`, `pathexpand`). Relative paths are taken from the job file's
//! directory. They work only where the caller allows reading files (the CLI does, as Nomad's
//! does; an API server must not): otherwise they fail with "filesystem function disabled", as
//! in Nomad. HCL function pointers cannot capture state, so the setting lives in a
//! thread-local set for the duration of one parse by [`FsScope`].

use super::funcs::{base64_encode, s, R};
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};
use hcl::Value;
use std::cell::RefCell;
use std::path::{Path, PathBuf};

thread_local! {
    static FS: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// While alive, filesystem functions on this thread read files relative to `base`.
pub(crate) struct FsScope {
    previous: Option<PathBuf>,
}

impl FsScope {
    /// `base = None` disables the filesystem functions.
    pub(crate) fn enter(base: Option<PathBuf>) -> FsScope {
        let previous = FS.with(|f| f.replace(base));
        FsScope { previous }
    }
}

impl Drop for FsScope {
    fn drop(&mut self) {
        let prev = self.previous.take();
        FS.with(|f| *f.borrow_mut() = prev);
    }
}

fn base() -> Result<PathBuf, String> {
    FS.with(|f| f.borrow().clone()).ok_or_else(|| {
        "filesystem function disabled: file functions work only when the job file is read by \
         the CLI (caravan job run/plan/validate FILE), not by the server"
            .to_string()
    })
}

fn resolve(path: &str) -> Result<PathBuf, String> {
    let base = base()?;
    let p = Path::new(path);
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    })
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    let full = resolve(path)?;
    std::fs::read(&full).map_err(|e| format!("cannot read file {}: {e}", full.display()))
}

fn home() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| !h.is_empty())
}

/// Declares the filesystem functions in `ctx`.
pub(super) fn declare(ctx: &mut Context<'static>) {
    let one = |f: hcl::eval::Func| FuncDef::builder().param(ParamType::String).build(f);
    let defs: Vec<(&str, FuncDef)> = vec![
        ("file", one(file)),
        (
            "filebase64",
            one(|a| Ok(base64_encode(&read(s(&a[0])?)?).into())),
        ),
        (
            "fileexists",
            one(|a| {
                let p = resolve(s(&a[0])?)?;
                match std::fs::metadata(&p) {
                    Ok(m) if m.is_file() => Ok(true.into()),
                    Ok(_) => Err(format!("{} is not a regular file", p.display())),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false.into()),
                    Err(e) => Err(format!("cannot stat {}: {e}", p.display())),
                }
            }),
        ),
        (
            "fileset",
            FuncDef::builder()
                .params([ParamType::String, ParamType::String])
                .build(fileset),
        ),
        (
            "abspath",
            one(|a| {
                let p = resolve(s(&a[0])?)?;
                Ok(p.to_string_lossy().into_owned().into())
            }),
        ),
        (
            "basename",
            one(|a| {
                base()?;
                let p = s(&a[0])?;
                Ok(Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.to_string())
                    .into())
            }),
        ),
        (
            "dirname",
            one(|a| {
                base()?;
                let p = s(&a[0])?;
                Ok(match Path::new(p).parent() {
                    Some(d) if !d.as_os_str().is_empty() => d.to_string_lossy().into_owned(),
                    _ => ".".to_string(),
                }
                .into())
            }),
        ),
        (
            "pathexpand",
            one(|a| {
                base()?;
                let p = s(&a[0])?;
                Ok(match (p.strip_prefix('~'), home()) {
                    (Some(rest), Some(h)) if rest.is_empty() || rest.starts_with('/') => {
                        format!("{h}{rest}")
                    }
                    _ => p.to_string(),
                }
                .into())
            }),
        ),
    ];
    for (name, def) in defs {
        ctx.declare_func(name, def);
    }
}

fn file(a: FuncArgs) -> R {
    let bytes = read(s(&a[0])?)?;
    String::from_utf8(bytes)
        .map(Value::from)
        .map_err(|_| "file: the contents are not valid UTF-8; use filebase64".to_string())
}

/// `fileset(dir, pattern)`: files under `dir` whose path relative to it matches `pattern`
/// (`*` within a name, `**` across directories, `?` one character).
fn fileset(a: FuncArgs) -> R {
    let dir = resolve(s(&a[0])?)?;
    let pattern = s(&a[1])?;
    let mut found = Vec::new();
    walk(&dir, &dir, &mut found, 0);
    let mut out: Vec<String> = found.into_iter().filter(|p| glob(pattern, p)).collect();
    out.sort();
    Ok(Value::Array(out.into_iter().map(Value::from).collect()))
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>, depth: usize) {
    if depth > 32 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out, depth + 1);
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().into_owned());
        }
    }
}

fn glob(pattern: &str, path: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((b'*', rest)) if rest.first() == Some(&b'*') => {
                let rest = &rest[1..];
                let rest = rest.strip_prefix(b"/").unwrap_or(rest);
                (0..=s.len()).any(|i| m(rest, &s[i..]))
            }
            Some((b'*', rest)) => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| m(rest, &s[i..])),
            Some((b'?', rest)) => matches!(s.first(), Some(c) if *c != b'/') && m(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && m(rest, &s[1..]),
        }
    }
    m(pattern.as_bytes(), path.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Evaluator;

    fn ev(s: &str) -> Result<Value, String> {
        let e: hcl::edit::expr::Expression = s.parse().unwrap();
        Evaluator::new().eval_strict(&e.into())
    }

    #[test]
    fn disabled_without_a_scope_and_relative_to_base_within_one() {
        let err = ev(r#"file("x")"#).unwrap_err();
        assert!(err.contains("filesystem function disabled"), "{err}");
        let dir = std::env::temp_dir().join(format!("jobspec-fs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/a.txt"), "hello").unwrap();
        {
            let _scope = FsScope::enter(Some(dir.clone()));
            assert_eq!(ev(r#"file("sub/a.txt")"#).unwrap(), Value::from("hello"));
            assert_eq!(
                ev(r#"fileset(".", "**/*.txt")"#).unwrap(),
                hcl::value!(["sub/a.txt"])
            );
            assert_eq!(ev(r#"fileexists("nope")"#).unwrap(), Value::Bool(false));
            assert_eq!(ev(r#"basename("a/b.txt")"#).unwrap(), Value::from("b.txt"));
        }
        assert!(ev(r#"file("sub/a.txt")"#).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn globs() {
        assert!(glob("*.hcl", "a.hcl"));
        assert!(!glob("*.hcl", "d/a.hcl"));
        assert!(glob("**/*.hcl", "d/e/a.hcl"));
        assert!(glob("**/*.hcl", "a.hcl"));
        assert!(glob("a?c", "abc"));
    }
}
