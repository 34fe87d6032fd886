//! Records the git commit for `--version` (runc prints `commit: HASH`).
fn main() {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PELAGOS_COMMIT={commit}");
    // HEAD names a branch; the branch file (or packed-refs) changes with each commit.
    for f in ["HEAD", "refs/heads", "packed-refs"] {
        println!("cargo:rerun-if-changed=../../.git/{f}");
    }
}
