//! The task's filesystem view: the mounts that turn the task dir into its root (read-only
//! bind mounts of `chroot_env`, the alloc/local/secrets dirs, `/dev`, `/proc`, `/sys`),
//! made in the task's own mount namespace so nothing is copied per task and nothing is left
//! on the host when the namespace ends; the mount points created in the task dir; and the
//! environment rewritten to paths inside the chroot.

use crate::child::Mount;
use caravan_driver::DriverError;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Device nodes bound from the host into the task's `/dev` (Docker's default set, minus
/// `/dev/console`).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// `/proc` paths made read-only inside the task, as Nomad does.
const PROC_READONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus"];

/// `/proc` paths hidden behind `/dev/null`.
const PROC_MASKED: &[&str] = &["kcore"];

/// The mounts and symlinks of one task's root, and the mount points made for them.
#[derive(Debug, Default)]
pub struct ChrootPlan {
    pub mounts: Vec<Mount>,
    pub symlinks: Vec<(CString, CString)>,
    /// Mount points (and their parents) in the task dir, deepest last: removed again when
    /// empty on destroy.
    pub mountpoints: Vec<PathBuf>,
}

/// The host directories visible inside the chroot.
#[derive(Debug, Clone)]
pub struct TaskDirs<'a> {
    pub task_dir: &'a Path,
    pub alloc_dir: &'a Path,
    pub local_dir: &'a Path,
    pub secrets_dir: &'a Path,
    /// Host volumes bound in at their `volume_mount` destinations.
    pub volumes: &'a [caravan_driver::MountConfig],
}

fn cstr(p: &Path) -> Result<CString, DriverError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| DriverError::InvalidConfig(format!("path {p:?} contains a NUL byte")))
}

fn cs(s: &str) -> CString {
    // Only used with constant strings without NUL.
    CString::new(s).unwrap_or_default()
}

/// Joins an absolute in-chroot path onto the task dir, refusing `..`.
fn inside(task_dir: &Path, dest: &str) -> Result<PathBuf, DriverError> {
    let rel = Path::new(dest);
    if !rel.is_absolute() {
        return Err(DriverError::InvalidConfig(format!(
            "chroot_env destination {dest:?} must be an absolute path"
        )));
    }
    let mut out = task_dir.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => {
                return Err(DriverError::InvalidConfig(format!(
                    "chroot_env destination {dest:?} may not contain \"..\""
                )))
            }
        }
    }
    Ok(out)
}

/// Creates `target` (a directory, or an empty file when `!dir`) and its parents inside
/// `task_dir`, refusing to follow symlinks on the way (a task could have planted one in its
/// own dir to make the agent create paths elsewhere). Records what it made.
fn ensure_mountpoint(
    task_dir: &Path,
    target: &Path,
    dir: bool,
    made: &mut Vec<PathBuf>,
) -> Result<(), DriverError> {
    let rel = target.strip_prefix(task_dir).map_err(|_| {
        DriverError::InvalidConfig(format!("{target:?} is outside the task dir {task_dir:?}"))
    })?;
    let mut cur = task_dir.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for (i, c) in comps.iter().enumerate() {
        cur.push(c);
        let last = i + 1 == comps.len();
        match std::fs::symlink_metadata(&cur) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(DriverError::Start(format!(
                    "cannot mount at {cur:?}: it is a symlink inside the task dir; remove it"
                )))
            }
            Ok(_) => {}
            Err(_) => {
                let res = if last && !dir {
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&cur)
                        .map(|_| ())
                } else {
                    std::fs::create_dir(&cur)
                };
                res.map_err(|e| {
                    DriverError::Start(format!("cannot create mount point {cur:?}: {e}"))
                })?;
            }
        }
        if !made.contains(&cur) {
            made.push(cur.clone());
        }
    }
    Ok(())
}

fn bind(
    source: &Path,
    target: PathBuf,
    readonly: bool,
    describe: String,
) -> Result<Mount, DriverError> {
    let extra = libc::MS_NOSUID | libc::MS_NODEV;
    Ok(Mount {
        source: Some(cstr(source)?),
        target: cstr(&target)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
        remount: Some(if readonly {
            extra | libc::MS_RDONLY
        } else {
            extra
        }),
        create: None,
        describe,
    })
}

/// Plans the task's root: `chroot_env` entries (`(host source, in-chroot dest)`; a missing
/// source is skipped when `skip_missing`, i.e. for Nomad's default map, otherwise refused),
/// `/alloc`, `/local`, `/secrets`, `/dev`, `/proc` and `/sys`. Creates the mount points in
/// the task dir; on error removes the mount points it made again.
pub fn plan(
    dirs: &TaskDirs<'_>,
    chroot_env: &[(String, String)],
    skip_missing: bool,
) -> Result<ChrootPlan, DriverError> {
    let mut made = Vec::new();
    match plan_into(dirs, chroot_env, skip_missing, &mut made) {
        Ok(mut p) => {
            p.mountpoints = made;
            Ok(p)
        }
        Err(e) => {
            remove_mountpoints(&made);
            Err(e)
        }
    }
}

fn plan_into(
    dirs: &TaskDirs<'_>,
    chroot_env: &[(String, String)],
    skip_missing: bool,
    made: &mut Vec<PathBuf>,
) -> Result<ChrootPlan, DriverError> {
    let root = dirs.task_dir;
    let mut p = ChrootPlan::default();
    // The root must be a mount point of its own for pivot_root.
    p.mounts.push(Mount {
        source: Some(cstr(root)?),
        target: cstr(root)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
        remount: None,
        create: None,
        describe: format!("the task dir {root:?}"),
    });
    let mut entries: Vec<&(String, String)> = chroot_env.iter().collect();
    // Parents before children: /run before /run/resolvconf.
    entries.sort_by_key(|(_, dest)| Path::new(dest).components().count());
    for (src, dest) in entries {
        let source = Path::new(src);
        if !source.is_absolute() {
            return Err(DriverError::InvalidConfig(format!(
                "chroot_env source {src:?} must be an absolute path"
            )));
        }
        let meta = match std::fs::metadata(source) {
            Ok(m) => m,
            Err(_) if skip_missing => continue,
            Err(e) => {
                return Err(DriverError::InvalidConfig(format!(
                    "chroot_env source {src:?} does not exist on this client ({e}); fix the \
                     client's chroot_env"
                )))
            }
        };
        let target = inside(root, dest)?;
        ensure_mountpoint(root, &target, meta.is_dir(), made)?;
        p.mounts
            .push(bind(source, target, true, format!("{src} at {dest}"))?);
    }
    // The shared alloc dir, and local/secrets when the client keeps them elsewhere.
    for (host, dest) in [
        (dirs.alloc_dir, "alloc"),
        (dirs.local_dir, "local"),
        (dirs.secrets_dir, "secrets"),
    ] {
        let target = root.join(dest);
        if host.as_os_str().is_empty() || host == target {
            continue;
        }
        ensure_mountpoint(root, &target, true, made)?;
        p.mounts
            .push(bind(host, target, false, format!("{host:?} at /{dest}"))?);
    }
    // Host volumes (`volume_mount`), after the dirs they may sit under.
    for m in dirs.volumes {
        let meta = std::fs::metadata(&m.host_path).map_err(|e| {
            DriverError::InvalidConfig(format!(
                "host volume path {:?} is not usable: {e}",
                m.host_path
            ))
        })?;
        let target = inside(root, &m.task_path)?;
        ensure_mountpoint(root, &target, meta.is_dir(), made)?;
        p.mounts.push(bind(
            &m.host_path,
            target,
            m.readonly,
            format!("host volume {:?} at {}", m.host_path, m.task_path),
        )?);
    }
    // /dev: a small tmpfs with the usual device nodes bound from the host.
    let dev = root.join("dev");
    ensure_mountpoint(root, &dev, true, made)?;
    p.mounts.push(Mount {
        source: Some(cs("tmpfs")),
        target: cstr(&dev)?,
        fstype: Some(cs("tmpfs")),
        flags: libc::MS_NOSUID | libc::MS_STRICTATIME,
        data: Some(cs("mode=755,size=65536k")),
        remount: None,
        create: None,
        describe: "tmpfs at /dev".into(),
    });
    for d in DEVICES {
        let host = Path::new("/dev").join(d);
        if !host.exists() {
            continue;
        }
        p.mounts.push(Mount {
            create: Some(false),
            remount: None,
            flags: libc::MS_BIND,
            ..bind(&host, dev.join(d), false, format!("/dev/{d}"))?
        });
    }
    for (name, fstype, flags, data) in [
        (
            "pts",
            "devpts",
            libc::MS_NOSUID | libc::MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620",
        ),
        (
            "shm",
            "tmpfs",
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            "mode=1777,size=65536k",
        ),
    ] {
        p.mounts.push(Mount {
            source: Some(cs(fstype)),
            target: cstr(&dev.join(name))?,
            fstype: Some(cs(fstype)),
            flags,
            data: Some(cs(data)),
            remount: None,
            create: Some(true),
            describe: format!("{fstype} at /dev/{name}"),
        });
    }
    for (target, link) in [
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
        ("pts/ptmx", "ptmx"),
    ] {
        p.symlinks.push((cs(target), cstr(&dev.join(link))?));
    }
    // /proc of the task's PID namespace, with Nomad's masked and read-only paths.
    let proc_dir = root.join("proc");
    ensure_mountpoint(root, &proc_dir, true, made)?;
    p.mounts.push(Mount {
        source: Some(cs("proc")),
        target: cstr(&proc_dir)?,
        fstype: Some(cs("proc")),
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: None,
        remount: None,
        create: None,
        describe: "proc at /proc".into(),
    });
    for m in PROC_MASKED {
        if Path::new("/proc").join(m).exists() {
            p.mounts.push(Mount {
                remount: None,
                flags: libc::MS_BIND,
                ..bind(
                    Path::new("/dev/null"),
                    proc_dir.join(m),
                    false,
                    format!("mask /proc/{m}"),
                )?
            });
        }
    }
    for m in PROC_READONLY {
        if Path::new("/proc").join(m).exists() {
            let t = proc_dir.join(m);
            p.mounts
                .push(bind(&t, t.clone(), true, format!("read-only /proc/{m}"))?);
        }
    }
    let sys = root.join("sys");
    ensure_mountpoint(root, &sys, true, made)?;
    p.mounts.push(Mount {
        source: Some(cs("sysfs")),
        target: cstr(&sys)?,
        fstype: Some(cs("sysfs")),
        flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: None,
        remount: None,
        create: None,
        describe: "sysfs at /sys".into(),
    });
    Ok(p)
}

/// Removes the mount points a plan created, deepest first, where they are empty (an empty
/// directory, or an empty file made for a file bind). Run after the task's mount namespace
/// is gone.
pub fn remove_mountpoints(paths: &[PathBuf]) {
    for p in paths.iter().rev() {
        let Ok(m) = std::fs::symlink_metadata(p) else {
            continue;
        };
        if m.is_dir() {
            let _ = std::fs::remove_dir(p);
        } else if m.is_file() && m.len() == 0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Rewrites the task's environment for the chroot: every value that is, or starts with, a
/// host path of the alloc dir, local dir, secrets dir or task dir is rewritten to `/alloc`,
/// `/local`, `/secrets` or `/` (so `NOMAD_ALLOC_DIR`, `NOMAD_TASK_DIR`, `NOMAD_SECRETS_DIR`
/// and values built from them point inside the chroot).
pub fn rewrite_env(
    env: &BTreeMap<String, String>,
    dirs: &TaskDirs<'_>,
) -> BTreeMap<String, String> {
    let mut map: Vec<(String, &str)> = [
        (dirs.alloc_dir, "/alloc"),
        (dirs.local_dir, "/local"),
        (dirs.secrets_dir, "/secrets"),
        (dirs.task_dir, "/"),
    ]
    .into_iter()
    .filter(|(h, _)| !h.as_os_str().is_empty())
    .map(|(h, c)| (h.to_string_lossy().trim_end_matches('/').to_string(), c))
    .filter(|(h, _)| !h.is_empty())
    .collect();
    // Longest host path first, so the task dir does not shadow its local/ dir.
    map.sort_by_key(|(h, _)| std::cmp::Reverse(h.len()));
    env.iter()
        .map(|(k, v)| {
            for (host, chroot) in &map {
                if v == host {
                    return (k.clone(), chroot.to_string());
                }
                if let Some(rest) = v.strip_prefix(host.as_str()) {
                    if rest.starts_with('/') {
                        let base = chroot.trim_end_matches('/');
                        return (k.clone(), format!("{base}{rest}"));
                    }
                }
            }
            (k.clone(), v.clone())
        })
        .collect()
}

/// Where `execve` looks for the command inside the chroot: a path with `/` as is (relative
/// to the task dir root), a bare name in `/local`, `/`, then each `PATH` dir.
pub fn program_candidates(command: &str, path_env: Option<&str>) -> Vec<String> {
    if command.contains('/') {
        return vec![if command.starts_with('/') {
            command.to_string()
        } else {
            format!("/{command}")
        }];
    }
    let path = path_env.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    let mut out = vec![format!("/local/{command}"), format!("/{command}")];
    out.extend(
        path.split(':')
            .filter(|d| d.starts_with('/'))
            .map(|d| format!("{}/{command}", d.trim_end_matches('/'))),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "caravan-chroot-{tag}-{}-{}",
            std::process::id(),
            caravan_driver::procfs::now_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    #[test]
    fn env_paths_point_inside_the_chroot() {
        let dirs = TaskDirs {
            task_dir: Path::new("/d/alloc/a1/web"),
            alloc_dir: Path::new("/d/alloc/a1/alloc"),
            local_dir: Path::new("/d/alloc/a1/web/local"),
            secrets_dir: Path::new("/d/alloc/a1/web/secrets"),
            volumes: &[],
        };
        let env = BTreeMap::from([
            (
                "NOMAD_ALLOC_DIR".to_string(),
                "/d/alloc/a1/alloc".to_string(),
            ),
            (
                "NOMAD_TASK_DIR".to_string(),
                "/d/alloc/a1/web/local".to_string(),
            ),
            (
                "NOMAD_SECRETS_DIR".to_string(),
                "/d/alloc/a1/web/secrets".to_string(),
            ),
            (
                "CONF".to_string(),
                "/d/alloc/a1/web/local/app.conf".to_string(),
            ),
            ("OTHER".to_string(), "/d/alloc/a1/webx".to_string()),
            ("TMPDIR".to_string(), "/d/alloc/a1/web/tmp".to_string()),
        ]);
        let out = rewrite_env(&env, &dirs);
        assert_eq!(out["NOMAD_ALLOC_DIR"], "/alloc");
        assert_eq!(out["NOMAD_TASK_DIR"], "/local");
        assert_eq!(out["NOMAD_SECRETS_DIR"], "/secrets");
        assert_eq!(out["CONF"], "/local/app.conf");
        assert_eq!(out["OTHER"], "/d/alloc/a1/webx");
        assert_eq!(out["TMPDIR"], "/tmp");
    }

    #[test]
    fn program_lookup_order() {
        assert_eq!(program_candidates("/bin/sh", None), vec!["/bin/sh"]);
        assert_eq!(
            program_candidates("local/run.sh", None),
            vec!["/local/run.sh"]
        );
        let c = program_candidates("sleep", Some("/usr/bin:/bin:relative"));
        assert_eq!(
            c,
            vec!["/local/sleep", "/sleep", "/usr/bin/sleep", "/bin/sleep"]
        );
    }

    #[test]
    fn plan_creates_mountpoints_and_refuses_bad_sources() {
        let root = tmp("plan");
        let alloc = tmp("plan-alloc");
        let dirs = TaskDirs {
            task_dir: &root,
            alloc_dir: &alloc,
            local_dir: &root.join("local"),
            secrets_dir: &root.join("secrets"),
            volumes: &[],
        };
        let env = vec![
            ("/usr".to_string(), "/usr".to_string()),
            ("/etc/hostname".to_string(), "/etc/hostname".to_string()),
            ("/no/such/dir".to_string(), "/nothere".to_string()),
        ];
        let p = plan(&dirs, &env, true).unwrap();
        assert!(root.join("usr").is_dir());
        assert!(root.join("etc").is_dir());
        assert!(
            !root.join("nothere").exists(),
            "missing default sources are skipped"
        );
        if Path::new("/etc/hostname").is_file() {
            assert!(root.join("etc/hostname").is_file());
        }
        assert!(root.join("alloc").is_dir() && root.join("proc").is_dir());
        // local and secrets live in the task dir already: no bind mount for them.
        assert!(!p.mounts.iter().any(|m| m.describe.ends_with("at /local")));
        assert!(p.mounts.iter().any(|m| m.describe == "/usr at /usr"));
        // An operator's own map must name existing sources.
        let e = plan(&dirs, &env, false).unwrap_err();
        assert!(e.to_string().contains("/no/such/dir"), "{e}");
        // A refused map leaves none of the mount points it made before failing.
        let root2 = tmp("plan-fail");
        let dirs2 = TaskDirs {
            task_dir: &root2,
            ..dirs.clone()
        };
        let bad = vec![
            ("/usr".to_string(), "/usr".to_string()),
            ("/no/such/dir".to_string(), "/zz".to_string()),
        ];
        assert!(plan(&dirs2, &bad, false).is_err());
        assert!(
            !root2.join("usr").exists(),
            "mount point left after a refused plan"
        );
        let _ = std::fs::remove_dir_all(&root2);
        let e = plan(&dirs, &[("/usr".into(), "/../x".into())], false).unwrap_err();
        assert!(e.to_string().contains(".."), "{e}");
        // A symlink planted in the task dir is refused, not followed.
        std::os::unix::fs::symlink("/", root.join("bin")).unwrap();
        let e = plan(&dirs, &[("/usr/bin".into(), "/bin/x".into())], false).unwrap_err();
        assert!(e.to_string().contains("symlink"), "{e}");
        std::fs::remove_file(root.join("bin")).unwrap();
        remove_mountpoints(&p.mountpoints);
        assert!(!root.join("usr").exists() && !root.join("proc").exists());
        let _ = std::fs::remove_dir_all(&root);
        let _ = std::fs::remove_dir_all(&alloc);
    }
}
