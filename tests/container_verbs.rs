//! `create`, `start -a -i` and `rename` as Docker's: a created container waits for `start`,
//! `start -a` relays its output and returns its exit code, `-i` feeds it stdin, and a rename
//! takes a free name (an event records the old one).

mod cli_support;

use std::io::Write;
use std::process::Stdio;

use cli_support::{wait_for, Env, Served};

fn setup() -> (Served, Env, String) {
    cli_support::served_busybox()
}

fn status(env: &Env, name: &str) -> String {
    env.ok(&["inspect", "--format", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

#[test]
fn create_waits_for_start_and_start_attach_returns_the_exit_code() {
    let (_served, env, image) = setup();
    let id = env.ok(&[
        "create",
        "--name",
        "later",
        &image,
        "sh",
        "-c",
        "echo made; exit 3",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "a full id: {id}");
    assert_eq!(status(&env, "later"), "created");
    assert!(env
        .ok(&["ps", "-a", "--filter", "status=created", "-q"])
        .contains(&id[..12]));
    let out = env.run(&["start", "-a", "later"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "made");
    assert_eq!(status(&env, "later"), "exited");
    // A plain start returns at once with the name.
    assert_eq!(env.ok(&["start", "later"]).trim(), "later");
    env.ok(&["wait", "later"]);
    env.ok(&["rm", "later"]);
    env.assert_no_container_leftovers();
}

#[test]
fn start_attach_interactive_feeds_stdin() {
    let (_served, env, image) = setup();
    env.ok(&["create", "-i", "--name", "cat", &image, "cat"]);
    let mut child = env
        .cmd()
        .args(["start", "-a", "-i", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"through stdin\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "through stdin\n");
    let (code, err) = env.fail(&["start", "-a", "cat", "other"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot start and attach multiple containers"),
        "{err}"
    );
    env.ok(&["rm", "cat"]);
    env.assert_no_container_leftovers();
}

#[test]
fn start_attach_of_a_running_container_attaches() {
    let (_served, env, image) = setup();
    // It cannot end before the attached client's line reaches it: no race.
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "reader",
        &image,
        "sh",
        "-c",
        "read line; echo got $line; exit 4",
    ]);
    let mut child = env
        .cmd()
        .args(["start", "-a", "-i", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    env.ok(&["rm", "reader"]);
    env.assert_no_container_leftovers();
}

#[test]
fn rename_takes_a_free_name_running_or_not() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "before", &image, "sleep", "100"]);
    env.ok(&["create", "--name", "taken", &image, "true"]);
    env.ok(&["rename", "before", "after"]);
    assert_eq!(status(&env, "after"), "running");
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.Name}}", "after"])
            .trim(),
        "/after"
    );
    let (code, err) = env.fail(&["inspect", "before"]);
    assert_eq!(code, 1, "{err}");
    // Docker's refusals: a taken name, the same name, a bad name.
    let (code, err) = env.fail(&["rename", "after", "taken"]);
    assert_eq!(code, 1);
    assert!(err.contains("already in use"), "{err}");
    let (code, err) = env.fail(&["rename", "after", "after"]);
    assert_eq!(code, 1);
    assert!(err.contains("same name"), "{err}");
    let (code, _) = env.fail(&["rename", "after", "bad/name"]);
    assert_eq!(code, 1);
    // The event names both (read up to a moment after now: a past `--until` ends the read).
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    let until = until.to_string();
    let events = env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=rename",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.oldName}}",
    ]);
    assert_eq!(events.trim(), "after /before");
    // Its monitor still answers under the new name.
    assert_eq!(env.ok(&["exec", "after", "echo", "ok"]).trim(), "ok");
    env.ok(&["rm", "-f", "after", "taken"]);
    env.assert_no_container_leftovers();
}

/// Attach events so far (the monitor records one per attached client).
fn attach_events(env: &Env) -> usize {
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs())
    .to_string();
    env.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "event=attach",
    ])
    .lines()
    .count()
}

#[test]
fn several_clients_attach_at_once() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "att",
        &image,
        "sh",
        "-c",
        "read x; echo got $x; exit 7",
    ]);
    // A watcher without stdin first; once the monitor recorded its attachment, a second
    // client feeds the line: both see the answer and the exit code.
    let watcher = env
        .cmd()
        .args(["attach", "--no-stdin", "att"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while attach_events(&env) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the watcher never attached"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut feeder = env
        .cmd()
        .args(["attach", "att"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    feeder.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let fed = feeder.wait_with_output().unwrap();
    let watched = watcher.wait_with_output().unwrap();
    for out in [&fed, &watched] {
        assert_eq!(out.status.code(), Some(7));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "got hello\n");
    }
    let (code, err) = env.fail(&["attach", "att"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot attach to a stopped container"),
        "{err}"
    );
    env.ok(&["rm", "att"]);
    env.assert_no_container_leftovers();
}

fn inspect(env: &Env, name: &str, format: &str) -> String {
    env.ok(&["inspect", "--format", format, name])
        .trim()
        .to_string()
}

#[test]
fn update_changes_the_restart_policy_running_or_not() {
    let (_served, env, image) = setup();
    // Running: the monitor takes the new policy at once.
    let script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 3";
    env.ok(&["run", "-d", "--name", "up", &image, "sh", "-c", script]);
    assert_eq!(
        env.ok(&["update", "--restart", "on-failure:3", "up"])
            .trim(),
        "up"
    );
    assert_eq!(
        inspect(
            &env,
            "up",
            "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure:3"
    );
    // A failure (not a kill: Docker counts that as a manual stop) brings the restart.
    env.ok(&["exec", "up", "touch", "/tmp/go"]);
    wait_for("a restart after the failure", || {
        inspect(&env, "up", "{{.RestartCount}}") != "0"
    });
    // Stopped: kept for the next start.
    let out = env.run(&["run", "--name", "down", &image, "sh", "-c", "exit 1"]);
    assert_eq!(out.status.code(), Some(1));
    env.ok(&["update", "--restart", "always", "down"]);
    env.ok(&["start", "down"]);
    wait_for("restarts of an always container", || {
        inspect(&env, "down", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    });
    // Docker's refusals: no flag, AutoRemove, a bad value (nothing changed by any).
    let (code, err) = env.fail(&["update", "up"]);
    assert_eq!(code, 1);
    assert!(err.contains("you must provide one or more flags"), "{err}");
    env.ok(&[
        "run", "-d", "--rm", "--name", "gone", &image, "sleep", "100",
    ]);
    let (code, err) = env.fail(&["update", "--restart", "always", "gone"]);
    assert_eq!(code, 1);
    assert!(err.contains("AutoRemove"), "{err}");
    let (code, err) = env.fail(&["update", "--blkio-weight", "5", "up"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("Range of blkio weight is from 10 to 1000"),
        "{err}"
    );
    assert!(err.contains("Usage:  pelagos update"), "{err}");
    env.ok(&["rm", "-f", "up", "down", "gone"]);
    env.assert_no_container_leftovers();
}

#[test]
fn update_refuses_limits_the_host_cannot_enforce() {
    // These hosts' cgroup v2 tree has no memory controller (a pure v2 host has, and the VM
    // suite proves limits there): the refusal names the flag and leaves the record as it was.
    let offered = std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .or_else(|_| std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers"))
        .unwrap_or_default();
    if offered.split_whitespace().any(|c| c == "memory") {
        eprintln!("the memory controller is available here: the refusal cannot be shown");
        return;
    }
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "lim", &image, "sleep", "100"]);
    let (code, err) = env.fail(&["update", "-m", "64m", "lim"]);
    assert_eq!(code, 1);
    assert!(err.contains("--memory"), "{err}");
    assert_eq!(inspect(&env, "lim", "{{.HostConfig.Memory}}"), "0");
    env.ok(&["rm", "-f", "lim"]);
    env.assert_no_container_leftovers();
}
