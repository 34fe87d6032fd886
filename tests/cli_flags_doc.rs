//! docs/cli-flags.md stays what `scripts/cli-flags` writes from the docker CLI's help and
//! pelagos's, and lists every flag docker's CLI has for the main container verbs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The docker CLI 28 these hosts carry; the table is written from its help.
const DOCKER: &str = "/usr/local/bin/docker";

/// The verbs whose every docker flag must have a row (the ones scripts use most).
const VERBS: [&str; 11] = [
    "run", "create", "exec", "ps", "logs", "cp", "events", "update", "attach", "start", "stop",
];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn committed_table() -> String {
    let path = repo_root().join("docs/cli-flags.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// `docker VERB --help`: the CLI alone, no daemon, an empty config directory.
fn docker_help(verb: &str, config: &Path) -> String {
    assert!(
        Path::new(DOCKER).exists(),
        "the docker CLI is installed on these hosts ({DOCKER})"
    );
    let out = Command::new(DOCKER)
        .args([verb, "--help"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_CONTEXT")
        .output()
        .expect("run the docker CLI");
    assert!(out.status.success(), "docker {verb} --help: {out:?}");
    String::from_utf8(out.stdout).expect("docker's help is UTF-8")
}

/// A flag line of cobra's help as the table labels it: `-m, --memory`, `--rm`.
fn flag_label(line: &str) -> Option<String> {
    let rest = line.strip_prefix("  ")?;
    if let Some(long) = rest.strip_prefix("    --") {
        return Some(format!("--{}", long.split_whitespace().next()?));
    }
    let mut words = rest.strip_prefix('-')?.split_whitespace();
    let short = words.next()?;
    match short.strip_suffix(',') {
        Some(short) => Some(format!("-{short}, {}", words.next()?)),
        None => Some(format!("-{short}")),
    }
}

/// The labels of the flags under "Options:" in docker's help.
fn docker_flags(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Options:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(flag_label)
        .collect()
}

/// The part of the table under `## docker VERB`, up to the next section.
fn verb_section<'a>(table: &'a str, verb: &str) -> &'a str {
    let heading = format!("\n## docker {verb}\n");
    let start = table
        .find(&heading)
        .unwrap_or_else(|| panic!("docs/cli-flags.md has no `## docker {verb}` section"));
    let body = &table[start + heading.len()..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

#[test]
fn table_is_what_the_generator_writes() {
    let out = tempfile::NamedTempFile::new().expect("temp file");
    let run = Command::new(repo_root().join("scripts/cli-flags"))
        .arg("--docker")
        .arg(DOCKER)
        .arg("--pelagos")
        .arg(env!("CARGO_BIN_EXE_pelagos"))
        .arg("-o")
        .arg(out.path())
        .output()
        .expect("run scripts/cli-flags (python3)");
    assert!(
        run.status.success(),
        "scripts/cli-flags failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let fresh = std::fs::read_to_string(out.path()).expect("read the generated table");
    let committed = committed_table();
    if fresh != committed {
        let first = fresh
            .lines()
            .zip(committed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| fresh.lines().count().min(committed.lines().count()));
        panic!(
            "docs/cli-flags.md is out of date: run scripts/cli-flags (after cargo build -p \
             pelagos-cli) and commit it. First difference at line {}:\n  committed: {:?}\n  \
             generated: {:?}",
            first + 1,
            committed.lines().nth(first),
            fresh.lines().nth(first)
        );
    }
}

#[test]
fn every_docker_flag_of_the_main_verbs_has_a_row() {
    let config = tempfile::tempdir().expect("temp dir");
    let table = committed_table();
    for verb in VERBS {
        let flags = docker_flags(&docker_help(verb, config.path()));
        assert!(
            !flags.is_empty(),
            "no flags read from `docker {verb} --help`"
        );
        let section = verb_section(&table, verb);
        let missing: Vec<&String> = flags
            .iter()
            .filter(|f| !section.contains(&format!("\n| `{f}` | ")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/cli-flags.md's `docker {verb}` lacks rows for {missing:?}"
        );
    }
}

#[test]
fn cobra_flag_lines_are_labelled_as_the_table_labels_them() {
    assert_eq!(
        flag_label("  -m, --memory bytes    Memory limit").as_deref(),
        Some("-m, --memory")
    );
    assert_eq!(
        flag_label("      --rm              Remove").as_deref(),
        Some("--rm")
    );
    assert_eq!(flag_label("                        continued text"), None);
    assert_eq!(flag_label("Options:"), None);
}
