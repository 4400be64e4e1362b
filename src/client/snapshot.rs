//! An allocation's ephemeral disk as a tar stream, for `ephemeral_disk { migrate = true }`
//! across nodes (Nomad's alloc dir snapshot): the old node writes `alloc/data` and each task's
//! `local/` directory, the new node unpacks them into its own allocation directory. Unpacking
//! takes only those directories' regular files and directories: links, devices and any path
//! that climbs out are skipped, so a snapshot can never write outside the allocation.

use super::allocdir::AllocDir;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

/// The directories a snapshot carries, relative to the allocation directory.
fn carried(tasks: &[String]) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("alloc/data")];
    dirs.extend(tasks.iter().map(|t| Path::new(t).join("local")));
    dirs
}

/// Writes the snapshot of `dir` (for a group with `tasks`) to `w`. Symlinks are stored as
/// links, never followed.
pub fn write(dir: &AllocDir, tasks: &[String], w: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(w);
    tar.follow_symlinks(false);
    for rel in carried(tasks) {
        let src = dir.root.join(&rel);
        if src.is_dir() {
            tar.append_dir_all(&rel, &src)?;
        }
    }
    tar.into_inner()?.flush()
}

/// Unpacks a snapshot into `to`; returns the number of files written. Entries outside the
/// carried directories, and anything but plain files and directories, are skipped.
pub fn restore(r: impl Read, to: &AllocDir, tasks: &[String]) -> io::Result<usize> {
    let allowed = carried(tasks);
    let mut archive = tar::Archive::new(r);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    let mut files = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let kind = entry.header().entry_type();
        let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
        if !plain || !allowed.iter().any(|a| path.starts_with(a)) {
            tracing::warn!(path = %path.display(), "skipping a snapshot entry outside the ephemeral disk");
            continue;
        }
        if !(kind.is_file() || kind.is_dir()) {
            tracing::warn!(path = %path.display(), ?kind, "skipping a snapshot entry that is not a file or directory");
            continue;
        }
        if entry.unpack_in(&to.root)? && kind.is_file() {
            files += 1;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> (PathBuf, AllocDir) {
        let data =
            std::env::temp_dir().join(format!("caravan-snap-{name}-{}", caravan_structs::new_id()));
        let d = AllocDir::new(&data, "a");
        d.build().expect("build");
        d.build_task("web").expect("task");
        (data, d)
    }

    #[test]
    fn data_and_local_travel_and_nothing_else() {
        let (data1, from) = dir("from");
        std::fs::create_dir_all(from.shared_dir().join("data/db")).expect("mkdir");
        std::fs::write(from.shared_dir().join("data/db/state"), "42").expect("write");
        std::fs::write(from.local_dir("web").join("cache"), "c").expect("write");
        std::fs::write(from.secrets_dir("web").join("token"), "s").expect("write");
        std::os::unix::fs::symlink("/etc/passwd", from.local_dir("web").join("link"))
            .expect("symlink");
        let tasks = vec!["web".to_string()];
        let mut buf = Vec::new();
        write(&from, &tasks, &mut buf).expect("snapshot");

        let (data2, to) = dir("to");
        let n = restore(&buf[..], &to, &tasks).expect("restore");
        assert_eq!(n, 2);
        assert_eq!(
            std::fs::read_to_string(to.shared_dir().join("data/db/state")).expect("state"),
            "42"
        );
        assert_eq!(
            std::fs::read_to_string(to.local_dir("web").join("cache")).expect("cache"),
            "c"
        );
        assert!(
            !to.secrets_dir("web").join("token").exists(),
            "secrets stay"
        );
        assert!(
            std::fs::symlink_metadata(to.local_dir("web").join("link")).is_err(),
            "links are not restored"
        );
        let _ = std::fs::remove_dir_all(data1);
        let _ = std::fs::remove_dir_all(data2);
    }

    #[test]
    fn hostile_entries_are_skipped() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, body: &[u8]| {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_entry_type(tar::EntryType::Regular);
            // set_path refuses `..`; write the name bytes directly as a hostile peer would.
            let name = &mut h.as_old_mut().name;
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            tar.append(&h, body).expect("append");
        };
        add("alloc/data/../../../escaped", b"x");
        add("web/secrets/token", b"x");
        add("alloc/data/ok", b"fine");
        let buf = tar.into_inner().expect("tar");
        let (data, to) = dir("hostile");
        let n = restore(&buf[..], &to, &["web".to_string()]).expect("restore");
        assert_eq!(n, 1);
        assert!(to.shared_dir().join("data/ok").exists());
        assert!(!data.join("escaped").exists() && !to.root.join("escaped").exists());
        assert!(!to.secrets_dir("web").join("token").exists());
        let _ = std::fs::remove_dir_all(data);
    }
}
