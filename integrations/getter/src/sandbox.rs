//! Keeping writes inside their directory: the artifact destination inside the allocation
//! directory, archive entry paths and link targets inside the unpack directory, and moves that
//! never follow a symlink on the way in.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{GetterError, Result};

/// Removes `.` and resolves `..` without touching the filesystem. Returns `None` when `..`
/// climbs above the start of a relative path.
pub fn lexical_clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for comp in path.components() {
        match comp {
            Component::Prefix(_) | Component::RootDir => out.push(comp.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    if path.is_absolute() {
                        continue; // "/.." is "/"
                    }
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::Normal(c) => {
                out.push(c);
                depth += 1;
            }
        }
    }
    Some(out)
}

/// The destination of an artifact: `task_dir` joined with `relative_dest` (a leading `/` is
/// ignored, as Go's `filepath.Join` does). Fails when the result, lexically or through an
/// existing symlink, lies outside `alloc_dir`.
pub fn resolve_destination(
    alloc_dir: &Path,
    task_dir: &Path,
    relative_dest: &str,
) -> Result<PathBuf> {
    let escapes = || GetterError::DestinationEscapes {
        dest: relative_dest.to_string(),
    };
    let alloc = lexical_clean(&absolute(alloc_dir)?).ok_or_else(escapes)?;
    let joined = absolute(task_dir)?.join(relative_dest.trim_start_matches('/'));
    let dest = lexical_clean(&joined).ok_or_else(escapes)?;
    if !dest.starts_with(&alloc) {
        return Err(escapes());
    }
    // Symlinks: the deepest existing ancestor (or the destination itself) must resolve inside
    // the real allocation directory.
    let real_alloc = fs::canonicalize(&alloc).map_err(|e| GetterError::io("resolve", &alloc, e))?;
    let mut probe = dest.clone();
    loop {
        if fs::symlink_metadata(&probe).is_ok() {
            let real = fs::canonicalize(&probe).map_err(|_| escapes())?;
            if !real.starts_with(&real_alloc) {
                return Err(escapes());
            }
            break;
        }
        if !probe.pop() || !probe.starts_with(&alloc) {
            break;
        }
    }
    Ok(dest)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        let cwd =
            std::env::current_dir().map_err(|e| GetterError::io("read current directory", p, e))?;
        Ok(cwd.join(p))
    }
}

/// Checks an archive entry name: relative, no `..`, no root. Returns the cleaned relative path
/// (`None` for an empty name such as `./`).
pub fn safe_entry_path(name: &Path) -> std::result::Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for comp in name.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains '..'".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    Ok(if out.as_os_str().is_empty() {
        None
    } else {
        Some(out)
    })
}

/// Checks a symlink target written at `link_rel` (relative to the root): it must be relative and,
/// read lexically from the link's directory, stay inside the root.
pub fn safe_link_target(link_rel: &Path, target: &Path) -> std::result::Result<(), String> {
    if target.is_absolute() {
        return Err(format!(
            "is a link to the absolute path {}",
            target.display()
        ));
    }
    let parent = link_rel.parent().unwrap_or(Path::new(""));
    if lexical_clean(&parent.join(target)).is_none() {
        return Err(format!(
            "is a link to {} outside the destination",
            target.display()
        ));
    }
    Ok(())
}

/// Creates `root/rel` as a directory, creating its parents, refusing to pass through a symlink
/// or a file.
pub fn ensure_dir_inside(root: &Path, rel: &Path) -> std::result::Result<PathBuf, String> {
    let mut cur = root.to_path_buf();
    for comp in rel.components() {
        cur.push(comp.as_os_str());
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "passes through the symlink {}",
                    display_rel(root, &cur)
                ))
            }
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "passes through the file {}",
                    display_rel(root, &cur)
                ))
            }
            Err(_) => fs::create_dir(&cur).map_err(|e| format!("cannot create directory: {e}"))?,
        }
    }
    Ok(cur)
}

fn display_rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Follows `link_rel` (a symlink under `root`) through the links it meets, as the kernel would,
/// and fails if the walk ever leaves `root` or loops.
pub fn check_link_inside(root: &Path, link_rel: &Path) -> std::result::Result<(), String> {
    let mut stack: Vec<OsString> = Vec::new();
    if let Some(parent) = link_rel.parent() {
        for c in parent.components() {
            if let Component::Normal(c) = c {
                stack.push(c.to_os_string());
            }
        }
    }
    let first = fs::read_link(root.join(link_rel)).map_err(|e| format!("cannot read link: {e}"))?;
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front_components(&mut pending, &first)?;
    let mut hops = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            if stack.pop().is_none() {
                return Err("is a link that resolves outside the destination".into());
            }
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(stack.iter());
        candidate.push(&c);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > 40 {
                    return Err("is a link in a symlink loop".into());
                }
                let t = fs::read_link(&candidate).map_err(|e| format!("cannot read link: {e}"))?;
                push_front_components(&mut pending, &t)?;
            }
            _ => stack.push(c),
        }
    }
    Ok(())
}

fn push_front_components(
    pending: &mut VecDeque<OsString>,
    target: &Path,
) -> std::result::Result<(), String> {
    if target.is_absolute() {
        return Err(format!(
            "is a link to the absolute path {}",
            target.display()
        ));
    }
    let comps: Vec<OsString> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(c) => Some(c.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    for c in comps.into_iter().rev() {
        pending.push_front(c);
    }
    Ok(())
}

/// Moves everything in `src` into `dest` (created if missing), merging directories and replacing
/// files and links. Never follows a symlink found in `dest`.
pub fn merge_move(src: &Path, dest: &Path) -> Result<()> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_dir() => {}
        Ok(m) if m.file_type().is_symlink() && dest.is_dir() => {}
        Ok(_) => {
            return Err(GetterError::Mode(format!(
                "destination {} exists and is not a directory",
                dest.display()
            )))
        }
        Err(_) => {
            fs::create_dir_all(dest).map_err(|e| GetterError::io("create directory", dest, e))?
        }
    }
    let entries = fs::read_dir(src).map_err(|e| GetterError::io("read directory", src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| GetterError::io("read directory", src, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let from_is_dir = entry
            .file_type()
            .map_err(|e| GetterError::io("stat", &from, e))?
            .is_dir();
        match fs::symlink_metadata(&to) {
            Ok(m) if m.is_dir() && from_is_dir => {
                merge_move(&from, &to)?;
                continue;
            }
            Ok(m) if m.is_dir() => {
                fs::remove_dir_all(&to).map_err(|e| GetterError::io("replace", &to, e))?
            }
            Ok(_) => fs::remove_file(&to).map_err(|e| GetterError::io("replace", &to, e))?,
            Err(_) => {}
        }
        fs::rename(&from, &to).map_err(|e| GetterError::io("move into place", &to, e))?;
    }
    Ok(())
}

/// Copies a directory tree (files, directories with their modes, symlinks as links).
pub fn copy_tree(src: &Path, dest: &Path) -> Result<u64> {
    let mut bytes = 0;
    fs::create_dir_all(dest).map_err(|e| GetterError::io("create directory", dest, e))?;
    let entries = fs::read_dir(src).map_err(|e| GetterError::io("read directory", src, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| GetterError::io("read directory", src, e))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let ft = entry
            .file_type()
            .map_err(|e| GetterError::io("stat", &from, e))?;
        if ft.is_symlink() {
            let t = fs::read_link(&from).map_err(|e| GetterError::io("read link", &from, e))?;
            std::os::unix::fs::symlink(&t, &to)
                .map_err(|e| GetterError::io("create link", &to, e))?;
        } else if ft.is_dir() {
            bytes += copy_tree(&from, &to)?;
            let perm = fs::metadata(&from)
                .map_err(|e| GetterError::io("stat", &from, e))?
                .permissions();
            fs::set_permissions(&to, perm).map_err(|e| GetterError::io("chmod", &to, e))?;
        } else if ft.is_file() {
            bytes += fs::copy(&from, &to).map_err(|e| GetterError::io("copy", &to, e))?;
        }
    }
    Ok(bytes)
}

/// Hands `path` and, for a directory, everything below it to `uid:gid` (links themselves, not
/// their targets).
pub fn chown_recursive(path: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| GetterError::io("chown", path, e))?;
    let meta = fs::symlink_metadata(path).map_err(|e| GetterError::io("stat", path, e))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path).map_err(|e| GetterError::io("read directory", path, e))? {
            let entry = entry.map_err(|e| GetterError::io("read directory", path, e))?;
            chown_recursive(&entry.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Bytes used by a file or tree (links count zero).
pub fn tree_size(path: &Path) -> u64 {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::read_dir(path)
            .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn lexical() {
        assert_eq!(
            lexical_clean(Path::new("a/./b/../c")),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(lexical_clean(Path::new("a/../..")), None);
        assert_eq!(lexical_clean(Path::new("/../x")), Some(PathBuf::from("/x")));
    }

    #[test]
    fn destination_stays_in_alloc_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let alloc = tmp.path().join("alloc1");
        let task = alloc.join("web");
        fs::create_dir_all(&task).unwrap();
        assert_eq!(
            resolve_destination(&alloc, &task, "local/").unwrap(),
            task.join("local")
        );
        assert_eq!(
            resolve_destination(&alloc, &task, "/local/x").unwrap(),
            task.join("local/x")
        );
        assert_eq!(
            resolve_destination(&alloc, &task, "../alloc/data").unwrap(),
            alloc.join("alloc/data")
        );
        assert!(matches!(
            resolve_destination(&alloc, &task, "../../etc"),
            Err(GetterError::DestinationEscapes { .. })
        ));
        // A symlink inside the task dir that points out of the allocation.
        symlink("/tmp", task.join("out")).unwrap();
        assert!(resolve_destination(&alloc, &task, "out/x").is_err());
        assert!(resolve_destination(&alloc, &task, "out").is_err());
    }

    #[test]
    fn entry_paths_and_links() {
        assert_eq!(
            safe_entry_path(Path::new("./a/b")).unwrap(),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(safe_entry_path(Path::new("./")).unwrap(), None);
        assert!(safe_entry_path(Path::new("../evil")).is_err());
        assert!(safe_entry_path(Path::new("a/../../evil")).is_err());
        assert!(safe_entry_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_link_target(Path::new("a/l"), Path::new("../b")).is_ok());
        assert!(safe_link_target(Path::new("a/l"), Path::new("../../b")).is_err());
        assert!(safe_link_target(Path::new("l"), Path::new("/etc")).is_err());
    }

    #[test]
    fn link_chains_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        fs::create_dir(&root).unwrap();
        // l2 -> l1/.. looks inside lexically, but l1 -> . makes it the parent of root.
        symlink("l1/..", root.join("l2")).unwrap();
        symlink(".", root.join("l1")).unwrap();
        assert!(check_link_inside(&root, Path::new("l2")).is_err());
        assert!(check_link_inside(&root, Path::new("l1")).is_ok());
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert!(check_link_inside(&root, Path::new("loop1")).is_err());
        fs::create_dir(root.join("d")).unwrap();
        symlink("../d", root.join("d/self")).unwrap();
        assert!(check_link_inside(&root, Path::new("d/self")).is_ok());
    }

    #[test]
    fn ensure_dir_refuses_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        symlink("/tmp", root.join("l")).unwrap();
        assert!(ensure_dir_inside(root, Path::new("l/x")).is_err());
        assert!(ensure_dir_inside(root, Path::new("a/b")).is_ok());
        assert!(root.join("a/b").is_dir());
    }

    #[test]
    fn merge_moves_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let dest = tmp.path().join("dest");
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/new"), b"n").unwrap();
        fs::write(src.join("f"), b"new").unwrap();
        fs::create_dir_all(dest.join("d")).unwrap();
        fs::write(dest.join("d/old"), b"o").unwrap();
        fs::write(dest.join("f"), b"old").unwrap();
        merge_move(&src, &dest).unwrap();
        assert_eq!(fs::read(dest.join("f")).unwrap(), b"new");
        assert!(dest.join("d/old").exists() && dest.join("d/new").exists());
    }
}
