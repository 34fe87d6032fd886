//! Builds `stub/launch.rs`, the static program that makes every container process's final
//! execve (CVE-2019-5736; see `src/init/launch.rs`), with the same rustc: no_std, no libc, no
//! PIE, so it is a few KiB, needs no loader and starts in microseconds. The library embeds it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // The stub's entry point and syscall numbers are x86_64's (`stub/launch.rs`).
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    assert!(
        arch == "x86_64",
        "pelagos-container's launch stub is written for x86_64, not {arch}"
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let src = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir"))
        .join("stub/launch.rs");
    println!("cargo:rerun-if-changed={}", src.display());
    // The libc functions both stubs share (`crates/container/stub/nolibc.rs`).
    println!(
        "cargo:rerun-if-changed={}",
        src.with_file_name("nolibc.rs").display()
    );
    let bin = out.join("pelagos-launch");
    let status = Command::new(rustc)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--crate-name",
            "pelagos_launch",
        ])
        .args(["--target", "x86_64-unknown-linux-gnu"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
        ])
        .args([
            "-C",
            "relocation-model=static",
            "-C",
            "target-feature=+crt-static",
        ])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-Wl,--build-id=none", "-C", "strip=symbols"])
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        // The caller's flags (e.g. crt-static, pack-relative-relocs) are for the runtime.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .expect("run rustc for the launch stub");
    assert!(status.success(), "building stub/launch.rs failed");
}
