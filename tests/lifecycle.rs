//! Lifecycle through the CLI: create, start, state, kill, delete, run, and their errors.

#[path = "support/mod.rs"]
mod support;

use support::*;

#[test]
fn run_prints_and_passes_exit_code() {
    let c = Container::new("run-exit");
    c.bundle.set_args(&["sh", "-c", "echo hello; exit 3"]);
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(3), "{}", out.stderr_text());
    assert_eq!(out.stdout_text(), "hello\n");
    c.assert_gone();
}
