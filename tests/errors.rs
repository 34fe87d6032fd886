//! Errors through the CLI: each one is a single clear line on stderr with exit code 1, lands in
//! the `--log` file, and leaves nothing behind (no state, no cgroup, no process).

#[path = "support/mod.rs"]
mod support;

use serde_json::{json, Value};
use support::*;

/// A create that must fail with `words`: one line, exit 1, nothing left behind.
fn create_fails_cleanly(c: &Container, words: &str) -> String {
    let out = c.create();
    let line = assert_one_line_error(&out, words);
    assert_nothing_left(c);
    line
}

fn assert_nothing_left(c: &Container) {
    c.assert_gone();
    assert!(
        pids_with_arg(&c.id).is_empty(),
        "processes left: {:?}",
        pids_with_arg(&c.id)
    );
    let out = c.rt(&["state", &c.id]);
    assert_one_line_error(&out, "does not exist");
    let listed = c.rt_ok(&["list", "-q"]);
    assert!(!listed.contains(&c.id), "{listed}");
}

#[test]
fn malformed_config() {
    let c = Container::new("err-json");
    std::fs::write(c.bundle.dir.join("config.json"), "{ \"ociVersion\": ").unwrap();
    create_fails_cleanly(&c, "config.json");
}

#[test]
fn missing_config() {
    let c = Container::new("err-noconfig");
    std::fs::remove_file(c.bundle.dir.join("config.json")).unwrap();
    create_fails_cleanly(&c, "config.json");
}

#[test]
fn missing_rootfs() {
    let c = Container::new("err-rootfs");
    std::fs::remove_dir_all(c.bundle.rootfs()).unwrap();
    create_fails_cleanly(&c, "root.path");
}

#[test]
fn unknown_capability() {
    let c = Container::new("err-cap");
    c.bundle.edit(|cfg| {
        for set in ["bounding", "effective", "permitted"] {
            cfg["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_FOOBAR"));
        }
    });
    create_fails_cleanly(&c, "CAP_FOOBAR");
}

#[test]
fn bad_oci_version() {
    let c = Container::new("err-version");
    c.bundle.edit(|cfg| cfg["ociVersion"] = json!("2.0.0"));
    create_fails_cleanly(&c, "ociVersion");
}

#[test]
fn relative_process_cwd() {
    let c = Container::new("err-cwd");
    c.bundle.edit(|cfg| cfg["process"]["cwd"] = json!("tmp"));
    create_fails_cleanly(&c, "process.cwd");
}

#[test]
fn executable_not_in_path_fails_at_create() {
    let c = Container::new("err-exe");
    c.bundle.set_args(&["no-such-program-pelagos"]);
    let line = create_fails_cleanly(&c, "executable file not found in $PATH");
    assert!(line.contains("no-such-program-pelagos"), "{line}");
}

#[test]
fn terminal_without_console_socket() {
    let c = Container::new("err-tty");
    c.bundle
        .edit(|cfg| cfg["process"]["terminal"] = json!(true));
    create_fails_cleanly(&c, "console");
}

#[test]
fn unknown_id() {
    let c = Container::new("err-unknown");
    let id = c.id.clone();
    let calls: Vec<Vec<&str>> = vec![
        vec!["state", &id],
        vec!["start", &id],
        vec!["kill", &id],
        vec!["kill", &id, "KILL"],
        vec!["delete", &id],
        vec!["pause", &id],
        vec!["resume", &id],
        vec!["ps", &id],
        vec!["exec", &id, "true"],
    ];
    for args in calls {
        let out = c.rt(&args);
        let line = assert_one_line_error(&out, "does not exist");
        assert!(line.contains(&id), "{args:?}: {line}");
    }
    assert!(!c.root.join(&id).exists());
}

#[test]
fn duplicate_id() {
    let c = Container::new("err-dup");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    let pid = c.pid();
    let created = c.state()["created"].clone();

    let other = Bundle::busybox(&format!("{}-second", c.id));
    let out = c.rt_files(&["create", "--bundle", other.dir.to_str().unwrap(), &c.id]);
    assert_one_line_error(&out, "already exists");

    // The first container is unaffected.
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(st["pid"], pid);
    assert_eq!(st["created"], created);
    assert_eq!(
        std::path::Path::new(st["bundle"].as_str().unwrap()),
        c.bundle.dir.as_path()
    );
    assert!(pid_alive(pid));
    c.rt_ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");

    // The same with run.
    let out = c.rt_files(&["run", "-d", "--bundle", other.dir.to_str().unwrap(), &c.id]);
    assert_one_line_error(&out, "already exists");
    assert_eq!(c.status(), "running");
    assert_eq!(c.pid(), pid);
}

#[test]
fn bad_signal() {
    let c = Container::new("err-signal");
    c.bundle.set_args(&["sleep", "1000"]);
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    for sig in ["FOO", "SIGFOO", "0", "99", "RTMIN+99"] {
        let out = c.rt(&["kill", &c.id, sig]);
        let line = assert_one_line_error(&out, "invalid signal");
        assert!(line.contains(sig), "{line}");
    }
    assert_eq!(c.status(), "running");
    assert!(pid_alive(c.pid()));
}

#[test]
fn invalid_ids() {
    let c = Container::new("err-id");
    let bundle = c.bundle.dir.to_str().unwrap().to_string();
    for id in ["a/b", "..", "../escape", "with space"] {
        let out = c.rt_files(&["create", "--bundle", &bundle, id]);
        assert_one_line_error(&out, "invalid container id");
        assert!(pids_with_arg(id).is_empty(), "{id}: process left");
    }
    assert!(!c.root.join("a").exists());
    assert!(!c.root.join("escape").exists());
    assert!(!c.root.parent().unwrap().join("escape").exists());
    // Nothing was created under the state root.
    let entries = std::fs::read_dir(&c.root).map(|d| d.count()).unwrap_or(0);
    assert_eq!(entries, 0);
    // Other commands treat such an id as unknown.
    let out = c.rt(&["state", "a/b"]);
    assert_eq!(out.status.code(), Some(1));
}

/// A memory limit: this host's cgroup2 tree has no memory controller.
fn with_memory_limit(c: &Container, skip: bool) {
    c.bundle.edit(|cfg| {
        cfg["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
        cfg["process"]["args"] = json!(["sleep", "1000"]);
        if skip {
            cfg["annotations"] = json!({"run.pelagos.cgroup.skip-unavailable": "true"});
        }
    });
}

fn host_has_v2_memory() -> bool {
    std::fs::read_to_string(cgroup2_root().join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "memory")
}

#[test]
fn unenforceable_memory_limit() {
    let c = Container::new("err-memory");
    with_memory_limit(&c, false);
    if host_has_v2_memory() {
        // A host that can enforce it must.
        c.create_ok();
        let max = std::fs::read_to_string(c.cgroup_dir().join("memory.max")).unwrap();
        assert_eq!(max.trim(), "67108864");
        return;
    }
    create_fails_cleanly(&c, "memory");
}

/// `create` with the node's settings in `config` (a `--config-file` of the test's own).
fn create_with_node_config(c: &Container, config: &str) -> std::process::Output {
    let path = c.bundle.dir.join("node-config.toml");
    std::fs::write(&path, config).unwrap();
    let bundle = c.bundle.dir.to_str().unwrap().to_string();
    let path = path.to_str().unwrap().to_string();
    c.rt_files(&["--config-file", &path, "create", "--bundle", &bundle, &c.id])
}

#[test]
fn unenforceable_memory_limit_skipped_by_the_node_setting() {
    if host_has_v2_memory() {
        return; // Nothing to skip on a host that can enforce it (the VM suite covers that).
    }
    let node = "[network]\nbip = \"10.9.0.1/24\"\n[runtime]\ncgroup_skip_unavailable = true\n";
    // The node's setting alone: no annotation on the container (a RuntimeClass adds none).
    let c = Container::new("err-memory-node");
    with_memory_limit(&c, false);
    let out = create_with_node_config(&c, node);
    assert!(out.status.success(), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("memory"),
        "{}",
        out.stderr_text()
    );
    c.rt_ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
    // One container opts out with the annotation: refused as without the setting.
    let c = Container::new("err-memory-optout");
    with_memory_limit(&c, false);
    c.bundle.edit(|cfg| {
        cfg["annotations"] = json!({"run.pelagos.cgroup.skip-unavailable": "false"});
    });
    let out = create_with_node_config(&c, node);
    assert_one_line_error(&out, "memory");
    assert_nothing_left(&c);
    // A mistaken setting is named, and nothing is made.
    let c = Container::new("err-node-config");
    with_memory_limit(&c, false);
    let out = create_with_node_config(&c, "[runtime]\ncgroup_skip_unavailable = \"yes\"\n");
    let line = assert_one_line_error(&out, "node-config.toml");
    assert!(line.contains("invalid configuration"), "{line}");
    assert_nothing_left(&c);
}

#[test]
fn unenforceable_memory_limit_skipped_by_annotation() {
    let c = Container::new("err-memory-skip");
    with_memory_limit(&c, true);
    let out = c.create();
    assert!(out.status.success(), "{}", out.stderr_text());
    let st = c.state();
    assert_eq!(st["status"], "created");
    assert_eq!(
        st["annotations"]["run.pelagos.cgroup.skip-unavailable"],
        "true"
    );
    if !host_has_v2_memory() {
        assert!(
            out.stderr_text().contains("memory"),
            "no warning about the skipped limit: {:?}",
            out.stderr_text()
        );
    }
    c.rt_ok(&["start", &c.id]);
    assert_eq!(c.status(), "running");
    c.rt_ok(&["delete", "--force", &c.id]);
    c.assert_gone();
}

fn log_records(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

fn assert_rfc3339(t: &str) {
    let b = t.as_bytes();
    assert!(
        b.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':'
            && (t.ends_with('Z') || t[19..].contains('+') || t[19..].contains('-')),
        "not RFC 3339: {t}"
    );
}

#[test]
fn log_file_json_gets_the_error() {
    let c = Container::new("err-log");
    let log = c.bundle.dir.join("log.json");
    let log_s = log.to_str().unwrap();

    // A failing state.
    let out = c.rt(&["--log", log_s, "--log-format", "json", "state", &c.id]);
    let line = assert_one_line_error(&out, "does not exist");
    let recs = log_records(&log);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["level"], "error");
    let msg = recs[0]["msg"].as_str().unwrap();
    assert!(
        msg.contains("does not exist") && msg.contains(&c.id),
        "{msg}"
    );
    assert!(line.contains(msg), "stderr {line:?} vs log {msg:?}");
    assert_rfc3339(recs[0]["time"].as_str().unwrap());

    // A failing create, flags after the subcommand as containerd writes them.
    c.bundle.edit(|cfg| cfg["ociVersion"] = json!("9.9.9"));
    let bundle = c.bundle.dir.to_str().unwrap().to_string();
    let out = c.rt_files(&[
        "create",
        "--log",
        log_s,
        "--log-format",
        "json",
        "--bundle",
        &bundle,
        &c.id,
    ]);
    assert_one_line_error(&out, "ociVersion");
    let recs = log_records(&log);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[1]["level"], "error");
    assert!(recs[1]["msg"].as_str().unwrap().contains("ociVersion"));
    assert_rfc3339(recs[1]["time"].as_str().unwrap());
    assert_nothing_left(&c);
}

#[test]
fn log_file_text_gets_the_error() {
    let c = Container::new("err-log-text");
    let log = c.bundle.dir.join("log.txt");
    let out = c.rt(&["--log", log.to_str().unwrap(), "kill", &c.id, "KILL"]);
    assert_one_line_error(&out, "does not exist");
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("level=error"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
}
