//! OCI hooks through the CLI: when each kind runs, what it receives on stdin, its own args and
//! env, the namespaces it runs in, and what its failure or timeout does to the container.

#[path = "support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::*;

/// Where the hooks of a container write: a host directory, bind-mounted at /hooklog inside.
fn hook_dir(c: &Container) -> PathBuf {
    let d = c.bundle.dir.join("hooklog");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::create_dir_all(c.bundle.rootfs().join("hooklog")).unwrap();
    d
}

/// Bind-mount the hook directory at /hooklog so that hooks and the container's process share one
/// log file whether they run on the host or in the container.
fn mount_hook_dir(c: &Container, dir: &Path) {
    c.bundle.edit(|cfg| {
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hooklog",
            "type": "bind",
            "source": dir,
            "options": ["rbind", "rw"]
        }));
    });
}

/// A hook that records its stdin, its uts namespace, its exe and env, and appends its name to
/// `dir/log`. `dir` is as the hook sees it.
fn recording_hook(name: &str, dir: &str) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!(
            "cat > {dir}/{name}.json; readlink /proc/self/ns/uts > {dir}/{name}.uts; \
             if test -e /in-rootfs; then echo container; else echo host; fi > {dir}/{name}.root; \
             env > {dir}/{name}.env; \
             echo {name} >> {dir}/log"
        )],
        "env": [format!("HOOK_NAME={name}"), "PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
    })
}

/// A hook that appends `word` to `dir/log`.
fn marker_hook(word: &str, dir: &Path) -> Value {
    json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("echo {word} >> {}/log", dir.display())],
    })
}

fn false_hook() -> Value {
    json!({"path": "/bin/false", "args": ["false"]})
}

fn log_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text:?}", path.display()))
}

fn read_trim(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn host_uts() -> String {
    std::fs::read_link("/proc/self/ns/uts")
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn set_hooks(c: &Container, hooks: Value) {
    c.bundle.edit(|cfg| cfg["hooks"] = hooks);
}

fn pos(lines: &[String], word: &str) -> usize {
    lines
        .iter()
        .position(|l| l == word)
        .unwrap_or_else(|| panic!("{word} missing from hook log {lines:?}"))
}

#[test]
fn every_hook_runs_at_its_moment_with_state_on_stdin() {
    let c = Container::new("hooks-all");
    let dir = hook_dir(&c);
    let d = dir.to_str().unwrap();
    mount_hook_dir(&c, &dir);
    std::fs::write(c.bundle.rootfs().join("in-rootfs"), "").unwrap();
    c.bundle
        .set_args(&["sh", "-c", "echo process >> /hooklog/log; sleep 1000"]);
    set_hooks(
        &c,
        json!({
            "prestart": [recording_hook("prestart", d)],
            "createRuntime": [recording_hook("createRuntime", d)],
            "createContainer": [recording_hook("createContainer", d)],
            "startContainer": [recording_hook("startContainer", "/hooklog")],
            "poststart": [recording_hook("poststart", d)],
            "poststop": [recording_hook("poststop", d)],
        }),
    );

    c.create_ok();
    let pid = c.pid();
    assert_eq!(
        log_lines(&dir),
        ["prestart", "createRuntime", "createContainer"],
        "hooks run by create"
    );

    c.rt_ok(&["start", &c.id]);
    // poststart has run by the time start returns.
    let lines = log_lines(&dir);
    assert!(lines.contains(&"poststart".to_string()), "{lines:?}");
    wait_until("the container process", || {
        log_lines(&dir).contains(&"process".to_string())
    });
    let lines = log_lines(&dir);
    assert!(
        pos(&lines, "startContainer") < pos(&lines, "process"),
        "{lines:?}"
    );
    assert!(!lines.contains(&"poststop".to_string()));

    c.rt_ok(&["kill", &c.id, "KILL"]);
    c.wait_status("stopped");
    assert!(
        !log_lines(&dir).contains(&"poststop".to_string()),
        "poststop before delete"
    );
    c.rt_ok(&["delete", &c.id]);
    let lines = log_lines(&dir);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("poststop"),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 7, "each hook ran once: {lines:?}");
    c.assert_gone();

    // The state on stdin.
    let want_status = [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("startContainer", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ];
    for (name, status) in want_status {
        let st = read_json(&dir.join(format!("{name}.json")));
        assert_eq!(st["id"], c.id.as_str(), "{name}: {st}");
        assert_eq!(st["status"], status, "{name}: {st}");
        assert_eq!(
            Path::new(st["bundle"].as_str().unwrap_or("")),
            c.bundle.dir.as_path(),
            "{name}: {st}"
        );
        assert_eq!(st["ociVersion"], "1.2.0", "{name}: {st}");
        if name != "poststop" {
            assert_eq!(st["pid"], pid, "{name}: {st}");
        }
        // Each hook got its own environment, not the runtime's.
        let env = std::fs::read_to_string(dir.join(format!("{name}.env"))).unwrap();
        assert!(
            env.lines().any(|l| l == format!("HOOK_NAME={name}")),
            "{name}: {env}"
        );
        assert!(
            !env.lines().any(|l| l.starts_with("HOME=")),
            "{name}: {env}"
        );
    }

    // Namespaces: createContainer and startContainer in the container's, others in ours.
    let container_uts = std::fs::read_to_string(dir.join("createContainer.uts")).unwrap();
    assert_ne!(container_uts.trim(), host_uts());
    assert_eq!(
        read_trim(&dir.join("startContainer.uts")),
        container_uts.trim()
    );
    for name in ["prestart", "createRuntime", "poststart", "poststop"] {
        assert_eq!(
            read_trim(&dir.join(format!("{name}.uts"))),
            host_uts(),
            "{name}"
        );
    }
    // createContainer runs before pivot_root (the host's / is its root), startContainer after
    // it: its /bin/sh is the container's busybox, and / is the container's rootfs.
    for name in [
        "prestart",
        "createRuntime",
        "createContainer",
        "poststart",
        "poststop",
    ] {
        assert_eq!(
            read_trim(&dir.join(format!("{name}.root"))),
            "host",
            "{name}"
        );
    }
    assert_eq!(read_trim(&dir.join("startContainer.root")), "container");
}

#[test]
fn poststart_runs_after_the_process_is_executed() {
    // runtime-spec: startContainer hooks run before the user's process is executed, poststart
    // hooks after it is executed and before `start` returns. A slow startContainer hook makes
    // a poststart that does not wait for the exec visible.
    let c = Container::new("hooks-poststart-order");
    let dir = hook_dir(&c);
    mount_hook_dir(&c, &dir);
    c.bundle
        .set_args(&["sh", "-c", "echo process >> /hooklog/log; sleep 1000"]);
    set_hooks(
        &c,
        json!({
            "startContainer": [{
                "path": "/bin/sh",
                "args": ["sh", "-c", "sleep 0.15; echo startContainer >> /hooklog/log"],
                "env": ["PATH=/bin"],
            }],
            "poststart": [marker_hook("poststart", &dir)],
        }),
    );
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    let lines = log_lines(&dir);
    assert!(lines.contains(&"poststart".to_string()), "{lines:?}");
    assert!(
        lines.contains(&"startContainer".to_string())
            && pos(&lines, "startContainer") < pos(&lines, "poststart"),
        "poststart ran before the startContainer hooks finished, i.e. before the process was \
         executed: {lines:?}"
    );
    assert_eq!(c.status(), "running");
}

#[test]
fn hook_gets_its_args_and_env() {
    let c = Container::new("hooks-args");
    let dir = hook_dir(&c);
    let d = dir.display();
    set_hooks(
        &c,
        json!({"createRuntime": [{
            "path": "/bin/sh",
            "args": ["my-hook-argv0", "-c",
                format!("echo \"$0|$1|$HOOKVAR|$OTHER\" > {d}/args; cat /proc/$$/cmdline > {d}/cmdline; env > {d}/env"),
                "zero", "one"],
            "env": ["HOOKVAR=hv", "OTHER=a=b"],
        }]}),
    );
    c.create_ok();
    assert_eq!(read_trim(&dir.join("args")), "zero|one|hv|a=b");
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap();
    assert!(
        cmdline.starts_with(b"my-hook-argv0\0-c\0"),
        "{:?}",
        String::from_utf8_lossy(&cmdline)
    );
    let env = std::fs::read_to_string(dir.join("env")).unwrap();
    assert!(!env.contains("CARGO"), "runtime env leaked: {env}");
}

#[test]
fn hooks_of_one_kind_run_in_order() {
    let c = Container::new("hooks-order");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({
            "createRuntime": [marker_hook("cr1", &dir), marker_hook("cr2", &dir), marker_hook("cr3", &dir)],
            "poststop": [marker_hook("ps1", &dir), marker_hook("ps2", &dir)],
        }),
    );
    c.create_ok();
    assert_eq!(log_lines(&dir), ["cr1", "cr2", "cr3"]);
    c.rt_ok(&["delete", "--force", &c.id]);
    assert_eq!(log_lines(&dir), ["cr1", "cr2", "cr3", "ps1", "ps2"]);
    c.assert_gone();
}

/// A create that must fail because of a hook: exit 1, a message naming the hook, nothing left.
fn assert_create_fails_cleanly(c: &Container, dir: &Path, words: &str) {
    let out = c.create();
    assert_eq!(
        out.status.code(),
        Some(1),
        "create succeeded: {}",
        out.stderr_text()
    );
    let err = out.stderr_text();
    assert!(err.contains(words), "{err}");
    assert!(err.contains("hook"), "{err}");
    c.assert_gone();
    assert!(
        pids_with_arg(&c.id).is_empty(),
        "processes left: {:?}",
        pids_with_arg(&c.id)
    );
    assert_fails_state(c);
    let lines = log_lines(dir);
    assert!(!lines.contains(&"after".to_string()), "{lines:?}");
}

fn assert_fails_state(c: &Container) {
    let out = c.rt(&["state", &c.id]);
    assert!(!out.status.success());
    assert!(out.stderr_text().contains("does not exist"));
}

#[test]
fn prestart_failure_fails_create_and_leaves_nothing() {
    let c = Container::new("hooks-prestart-fail");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({
            "prestart": [false_hook(), marker_hook("after", &dir)],
            "createContainer": [marker_hook("after", &dir)],
            "poststop": [marker_hook("poststop", &dir)],
        }),
    );
    assert_create_fails_cleanly(&c, &dir, "/bin/false");
}

#[test]
fn create_runtime_failure_fails_create_and_leaves_nothing() {
    let c = Container::new("hooks-cr-fail");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}, marker_hook("after", &dir)],
            "createContainer": [marker_hook("after", &dir)],
        }),
    );
    assert_create_fails_cleanly(&c, &dir, "/bin/sh");
}

#[test]
fn create_container_failure_fails_create_and_leaves_nothing() {
    let c = Container::new("hooks-cc-fail");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({
            "createContainer": [false_hook(), marker_hook("after", &dir)],
        }),
    );
    assert_create_fails_cleanly(&c, &dir, "/bin/false");
}

#[test]
fn missing_hook_binary_fails_create() {
    let c = Container::new("hooks-missing");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({"createRuntime": [{"path": "/nonexistent/hook", "args": ["hook"]}]}),
    );
    assert_create_fails_cleanly(&c, &dir, "/nonexistent/hook");
}

#[test]
fn start_container_failure_stops_the_container_before_its_process() {
    let c = Container::new("hooks-sc-fail");
    let dir = hook_dir(&c);
    mount_hook_dir(&c, &dir);
    c.bundle
        .set_args(&["sh", "-c", "echo process >> /hooklog/log; sleep 1000"]);
    set_hooks(
        &c,
        json!({
            "startContainer": [{"path": "/bin/false", "args": ["false"]}],
            "poststop": [marker_hook("poststop", &dir)],
        }),
    );
    c.create_ok();
    let out = c.rt(&["start", &c.id]);
    c.wait_status("stopped");
    assert!(!log_lines(&dir).contains(&"process".to_string()));
    c.rt_ok(&["delete", &c.id]);
    assert_eq!(log_lines(&dir), ["poststop"]);
    c.assert_gone();
    // runtime-spec: a failing startContainer hook MUST generate an error.
    assert_eq!(
        out.status.code(),
        Some(1),
        "start must report the failed startContainer hook; stderr: {:?}",
        out.stderr_text()
    );
    assert!(
        out.stderr_text().contains("/bin/false"),
        "{}",
        out.stderr_text()
    );
}

#[test]
fn poststart_failure_fails_start_and_stops_the_container() {
    // runtime-spec 1.2, the version pelagos reports (and runc): a failing poststart hook is an
    // error; the runtime stops the container and skips the remaining poststart hooks. The
    // container stays, stopped, for `delete` (which runs the poststop hooks).
    let c = Container::new("hooks-poststart-fail");
    let dir = hook_dir(&c);
    c.bundle.set_args(&["sleep", "1000"]);
    set_hooks(
        &c,
        json!({
            "poststart": [false_hook(), marker_hook("poststart2", &dir)],
            "poststop": [marker_hook("poststop", &dir)],
        }),
    );
    c.create_ok();
    let pid = c.pid();
    assert!(pid > 0 && pid_alive(pid));
    let out = c.rt(&["start", &c.id]);
    let line = assert_one_line_error(&out, "poststart");
    assert!(
        line.contains("/bin/false") && line.contains(&c.id),
        "{line}"
    );
    assert!(
        !pid_alive(pid),
        "the container process survived the failed start"
    );
    assert_eq!(c.status(), "stopped");
    assert!(log_lines(&dir).is_empty(), "{:?}", log_lines(&dir));
    c.rt_ok(&["delete", &c.id]);
    assert_eq!(log_lines(&dir), ["poststop"]);
    c.assert_gone();
}

#[test]
fn run_with_a_failing_poststart_hook_fails_and_cleans_up() {
    let c = Container::new("hooks-run-poststart-fail");
    let dir = hook_dir(&c);
    c.bundle.set_args(&["sleep", "1000"]);
    set_hooks(
        &c,
        json!({"poststart": [false_hook()], "poststop": [marker_hook("poststop", &dir)]}),
    );
    let out = c.rt(&["run", &c.id]);
    assert_one_line_error(&out, "poststart");
    assert_eq!(log_lines(&dir), ["poststop"]);
    c.assert_gone();
    assert!(
        pids_with_arg(&c.id).is_empty(),
        "a process of the container is left"
    );
}

#[test]
fn hook_without_env_inherits_the_runtime_env() {
    // runc and crun: a hook without `env` gets the runtime's environment; with `env`, exactly
    // that.
    let c = Container::new("hooks-env-inherit");
    let dir = hook_dir(&c);
    let d = dir.display();
    set_hooks(
        &c,
        json!({"createRuntime": [
            {"path": "/bin/sh", "args": ["sh", "-c", format!("env > {d}/inherited")]},
            {"path": "/bin/sh", "args": ["sh", "-c", format!("env > {d}/given")], "env": ["ONLY=this"]},
        ]}),
    );
    let status = c
        .command(&["create", "--bundle"])
        .arg(&c.bundle.dir)
        .arg(&c.id)
        .env("PELAGOS_HOOK_PROBE", "from-the-caller")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let inherited = std::fs::read_to_string(dir.join("inherited")).unwrap();
    assert!(
        inherited
            .lines()
            .any(|l| l == "PELAGOS_HOOK_PROBE=from-the-caller"),
        "{inherited}"
    );
    let given = std::fs::read_to_string(dir.join("given")).unwrap();
    assert!(!given.contains("PELAGOS_HOOK_PROBE"), "{given}");
    assert!(given.lines().any(|l| l == "ONLY=this"), "{given}");
}

#[test]
fn poststop_failure_only_warns_and_the_rest_run() {
    let c = Container::new("hooks-poststop-fail");
    let dir = hook_dir(&c);
    c.bundle.set_args(&["true"]);
    set_hooks(
        &c,
        json!({"poststop": [marker_hook("ps1", &dir), false_hook(), marker_hook("ps3", &dir)]}),
    );
    c.create_ok();
    c.rt_ok(&["start", &c.id]);
    c.wait_status("stopped");
    let out = c.rt(&["delete", &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    assert!(
        out.stderr_text().to_lowercase().contains("warn"),
        "no warning: {:?}",
        out.stderr_text()
    );
    assert_eq!(log_lines(&dir), ["ps1", "ps3"]);
    c.assert_gone();
}

#[test]
fn run_runs_poststart_and_poststop() {
    let c = Container::new("hooks-run");
    let dir = hook_dir(&c);
    mount_hook_dir(&c, &dir);
    c.bundle
        .set_args(&["sh", "-c", "echo process >> /hooklog/log"]);
    set_hooks(
        &c,
        json!({
            "createRuntime": [marker_hook("createRuntime", &dir)],
            "poststart": [marker_hook("poststart", &dir)],
            "poststop": [marker_hook("poststop", &dir)],
        }),
    );
    let out = c.rt(&["run", &c.id]);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr_text());
    let lines = log_lines(&dir);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], "createRuntime");
    assert_eq!(lines[3], "poststop");
    assert!(lines.contains(&"poststart".to_string()));
    assert!(lines.contains(&"process".to_string()));
    c.assert_gone();
}

#[test]
fn hook_timeout_fails_create() {
    let c = Container::new("hooks-timeout");
    let dir = hook_dir(&c);
    set_hooks(
        &c,
        json!({
            "createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "3.1415"], "timeout": 1}],
            "createContainer": [marker_hook("after", &dir)],
        }),
    );
    let started = Instant::now();
    let out = c.create();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr_text());
    assert!(
        out.stderr_text().contains("timed out"),
        "{}",
        out.stderr_text()
    );
    assert!(
        took >= Duration::from_millis(900),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(3),
        "timeout not enforced: {took:?}"
    );
    c.assert_gone();
    assert!(
        pids_with_arg("3.1415").is_empty(),
        "the hook was not killed"
    );
    assert!(pids_with_arg(&c.id).is_empty());
    assert!(log_lines(&dir).is_empty());
}
