//! Builds `shim/caravan-shim.rs` (see there) with the `rustc` that builds this crate, as a
//! static program without libc, into OUT_DIR; the crate embeds it. On targets the shim does
//! not support (or when cross-compiling), an empty file stands in and tasks run without it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=shim/caravan-shim.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo"));
    let dest = out.join("caravan-shim");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if arch != "x86_64" || os != "linux" || !native {
        std::fs::write(&dest, b"").expect("write the empty shim placeholder");
        println!("cargo:warning=caravan-shim is not built for {arch}-{os}: task exit codes are lost across agent restarts");
        return;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "relocation-model=static",
            "-C",
            "strip=symbols",
            "-C",
            "link-arg=-nostartfiles",
            "-C",
            "link-arg=-nostdlib",
            "-C",
            "link-arg=-static",
            "-o",
        ])
        .arg(&dest)
        .arg("shim/caravan-shim.rs")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run rustc for caravan-shim");
    assert!(status.success(), "building caravan-shim failed");
}
