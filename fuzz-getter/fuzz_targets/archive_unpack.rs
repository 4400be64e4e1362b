//! Feeds malformed archives to the artifact unpacker: the first byte picks the archive type
//! (tar, tar.gz, tar.bz2, tar.xz, tar.zst, zip, gz, bz2, xz, zst), the rest is the file. Whatever
//! the bytes, unpacking must not panic, must write nothing outside its destination, and must
//! leave no link in the destination that resolves outside it.
//!
//! One exception: lzma-rs panics on some malformed xz streams; the unpacker runs it on its own
//! thread ([`caravan_getter::unpack::XZ_THREAD`]) and turns such a panic into an error (see
//! `integrations/getter/tests/unpack_regressions.rs`), so panics on that thread are not crashes
//! here. Every other panic still aborts, as libFuzzer wants.

#![no_main]

use std::path::Path;
use std::sync::Once;

use caravan_getter::unpack::{unpack, ArchiveKind, Limits, XZ_THREAD};
use libfuzzer_sys::fuzz_target;

const KINDS: &[&str] = &[
    "tar", "tar.gz", "tar.bz2", "tar.xz", "tar.zst", "zip", "gz", "bz2", "xz", "zst",
];

fn check_inside(root: &Path, dir: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let meta = std::fs::symlink_metadata(&p).expect("stat an unpacked entry");
        if meta.file_type().is_symlink() {
            if let Ok(real) = std::fs::canonicalize(&p) {
                assert!(
                    real.starts_with(root),
                    "link {} resolves outside the destination to {}",
                    p.display(),
                    real.display()
                );
            }
        } else if meta.is_dir() {
            check_inside(root, &p);
        }
    }
}

static HOOK: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    HOOK.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some(XZ_THREAD) {
                return;
            }
            fuzzer_hook(info);
        }));
    });
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let name = KINDS[sel as usize % KINDS.len()];
    let kind = ArchiveKind::from_option(name).expect("known archive type");
    let root = tempfile::tempdir().expect("temp dir");
    let outer = root.path().join("outer");
    let dest = outer.join("dest");
    std::fs::create_dir_all(&dest).expect("create dest");
    let archive = root.path().join(format!("input.{name}"));
    std::fs::write(&archive, body).expect("write input");
    let _ = unpack(
        kind,
        &archive,
        &dest,
        &format!("input.{name}"),
        Limits {
            max_bytes: 1 << 20,
            max_files: 64,
        },
    );
    // Nothing but `dest` may exist beside it, and nothing else in the temp root.
    let beside: Vec<_> = std::fs::read_dir(&outer)
        .expect("read outer")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("dest")],
        "wrote beside the destination"
    );
    let top: Vec<_> = std::fs::read_dir(root.path())
        .expect("read root")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top.len(), 2, "wrote outside the destination: {top:?}");
    let real_dest = std::fs::canonicalize(&dest).expect("resolve dest");
    check_inside(&real_dest, &real_dest);
});
