//! Inputs the archive fuzzer (`fuzz-getter/`) found, kept as regression tests.

use caravan_getter::unpack::{unpack, ArchiveKind, Limits};
use caravan_getter::GetterError;

/// An xz stream on which lzma-rs 0.3 overflows an addition (a panic in debug builds, on the
/// decoder's thread). That used to look like the end of the stream, so a truncated file was
/// accepted; it must be a corrupt-archive error.
const XZ_DECODER_OVERFLOW: &[u8] = &[
    0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, 0x04, 0xe6, 0xd6, 0xb4, 0x46, 0x02, 0x00, 0x21, 0x01,
    0x16, 0x00, 0x00, 0x00, 0x74, 0x2f, 0xe5, 0xa3, 0xe0, 0x00, 0x6d, 0x00, 0x11, 0x5d, 0x00, 0x34,
    0x19, 0x49, 0xee, 0x8d, 0xe9, 0x17, 0x89, 0x3a, 0x33, 0x60, 0x09, 0x71, 0x21, 0x2e, 0x38, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x94, 0xd7, 0xa3, 0x28, 0xef, 0x16, 0x2d, 0xd0, 0x00, 0x01, 0x2d, 0x6e,
    0x9b, 0xa3, 0xa6, 0xaa, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0x04, 0x59, 0x5a,
];

#[test]
fn xz_decoder_panic_is_a_corrupt_archive_not_a_short_file() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("input.xz");
    std::fs::write(&archive, XZ_DECODER_OVERFLOW).unwrap();
    let dest = dir.path().join("dest");
    std::fs::create_dir(&dest).unwrap();
    let err = unpack(
        ArchiveKind::from_option("xz").unwrap(),
        &archive,
        &dest,
        "input.xz",
        Limits {
            max_bytes: 1 << 20,
            max_files: 64,
        },
    )
    .unwrap_err();
    assert!(matches!(err, GetterError::Archive { .. }), "{err}");

    // The same bytes as a tar.xz are refused too.
    let archive = dir.path().join("input.tar.xz");
    std::fs::write(&archive, XZ_DECODER_OVERFLOW).unwrap();
    let dest = dir.path().join("dest2");
    std::fs::create_dir(&dest).unwrap();
    assert!(unpack(
        ArchiveKind::from_option("tar.xz").unwrap(),
        &archive,
        &dest,
        "input.tar.xz",
        Limits {
            max_bytes: 1 << 20,
            max_files: 64,
        },
    )
    .is_err());
}
