//! Builds `stub/init.rs`, the static init that `docker run --init` runs as a container's pid 1,
//! with the same rustc: no_std, no libc, no PIE, so it is a few KiB and needs no loader or
//! library inside the container's image. The library embeds it (`INIT_BYTES`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // The stub's entry point and syscall numbers are x86_64's (`stub/init.rs`).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    assert!(
        arch == "x86_64",
        "pelagos-init's init is written for x86_64, not {arch}"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join("stub/init.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    // The libc functions both stubs share (`crates/container/stub/nolibc.rs`).
    println!(
        "cargo:rerun-if-changed={}",
        src.with_file_name("../../container/stub/nolibc.rs")
            .display()
    );
    let status = Command::new(rustc)
        .args(["--edition", "2021", "--crate-type", "bin"])
        .args(["--crate-name", "pelagos_init"])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "relocation-model=static"])
        .args(["-C", "target-feature=+crt-static"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-Wl,--build-id=none", "-C", "strip=symbols"])
        .arg("-o")
        .arg(out.join("pelagos-init"))
        .arg(&src)
        // The caller's flags (e.g. crt-static, pack-relative-relocs) are for the library.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run rustc for the init");
    assert!(status.success(), "building stub/init.rs failed");
}
