//! pelagos-dockerd's hijacked endpoints through the real docker CLI: `docker run` attached
//! (output, stdin, tty, exit codes), `docker exec`, `docker attach`, and clients that vanish
//! mid-stream; raw HTTP for the exec API's edge cases.

mod dockerd_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use dockerd_support::{served_busybox, wait_for, Daemon, ServedBusybox};

/// A daemon with busybox pulled through it.
fn daemon_with_busybox() -> (Daemon, ServedBusybox) {
    let d = Daemon::start();
    let served = served_busybox();
    d.ok(&["pull", &served.image]);
    (d, served)
}

/// `docker ARGS` with `input` on its stdin: exit code, stdout, stderr.
fn with_stdin(d: &Daemon, args: &[&str], input: &str) -> (i32, String, String) {
    let mut child = d
        .docker(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("wait docker");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `docker ARGS` under `script` (util-linux), so that it has a terminal: exit code and what
/// the terminal showed.
fn in_terminal(d: &Daemon, args: &[&str]) -> (i32, String) {
    let docker = d.docker(&[]);
    let env: Vec<String> = docker
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}='{}'", k.to_str()?, v?.to_str()?)))
        .collect();
    let line = format!(
        "env {} {} {}",
        env.join(" "),
        docker.get_program().to_string_lossy(),
        args.join(" ")
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("spawn script");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Starts a detached container running `sleep`; its name.
fn sleeper(d: &Daemon, image: &str, name: &str) -> String {
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        name,
        image,
        "sleep",
        "1000",
    ]);
    name.to_string()
}

#[test]
fn run_attached_prints_separates_streams_and_passes_exit_codes() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let out = d.ok(&["run", "--rm", "--network", "none", img, "echo", "hi"]);
    assert_eq!(out, "hi\n");

    let out = d.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "echo out; echo err >&2",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");

    let (code, _) = d.fail(&[
        "run",
        "--network",
        "none",
        "--name",
        "three",
        img,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(code, 3);

    let (code, err) = d.fail(&["run", "--rm", "--network", "none", img, "/nonexistent"]);
    assert_eq!(code, 127, "{err}");
    assert!(err.contains("/nonexistent"), "{err}");
    let (code, err) = d.fail(&["run", "--rm", "--network", "none", img, "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    assert!(err.contains("permission denied"), "{err}");

    // The `exit 3` container stays (no --rm); remove it and check nothing is left.
    d.ok(&["rm", "three"]);
    d.assert_no_container_leftovers();
}

#[test]
fn run_interactive_forwards_stdin_and_its_end() {
    let (d, served) = daemon_with_busybox();
    let (code, out, err) = with_stdin(
        &d,
        &[
            "run",
            "-i",
            "--rm",
            "--network",
            "none",
            &served.image,
            "cat",
        ],
        "data\n",
    );
    assert_eq!((code, out.as_str()), (0, "data\n"), "{err}");
    d.assert_no_container_leftovers();
}

#[test]
fn run_with_a_tty_gets_a_terminal() {
    let (d, served) = daemon_with_busybox();
    let (code, screen) = in_terminal(
        &d,
        &[
            "run",
            "-it",
            "--rm",
            "--network",
            "none",
            &served.image,
            "sh",
            "-c",
            "'tty; echo ok'",
        ],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("ok"), "{screen}");
    d.assert_no_container_leftovers();
}

#[test]
fn exec_runs_commands_with_stdin_options_and_exit_codes() {
    let (d, served) = daemon_with_busybox();
    let c = sleeper(&d, &served.image, "ex");
    assert_eq!(d.ok(&["exec", &c, "echo", "hi"]), "hi\n");
    let (code, out, err) = with_stdin(&d, &["exec", "-i", &c, "cat"], "piped\n");
    assert_eq!((code, out.as_str()), (0, "piped\n"), "{err}");
    let (code, _) = d.fail(&["exec", &c, "sh", "-c", "exit 5"]);
    assert_eq!(code, 5);
    let out = d.run(&["exec", &c, "sh", "-c", "echo o; echo e >&2"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "o\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "e\n");

    assert_eq!(d.ok(&["exec", "-u", "65534", &c, "id", "-u"]), "65534\n");
    assert_eq!(d.ok(&["exec", "-w", "/etc", &c, "pwd"]), "/etc\n");
    assert_eq!(
        d.ok(&[
            "exec",
            "-e",
            "GREETING=hello",
            &c,
            "sh",
            "-c",
            "echo $GREETING"
        ]),
        "hello\n"
    );

    d.ok(&["exec", "-d", &c, "sh", "-c", "echo done > /tmp/detached"]);
    wait_for("the detached exec's file", || {
        d.run(&["exec", &c, "cat", "/tmp/detached"]).stdout == b"done\n"
    });

    let (code, screen) = in_terminal(&d, &["exec", "-it", &c, "sh", "-c", "'tty; echo ok'"]);
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("/dev/pts/"), "{screen}");
    assert!(screen.contains("ok"), "{screen}");

    let (code, err) = d.fail(&["exec", &c, "/nonexistent"]);
    assert_eq!(code, 127, "{err}");
    d.ok(&["rm", "-f", &c]);
}

#[test]
fn exec_refuses_stopped_and_unknown_containers() {
    let (d, served) = daemon_with_busybox();
    d.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "idle",
        &served.image,
        "true",
    ]);
    let (_, err) = d.fail(&["exec", "idle", "echo", "hi"]);
    assert!(err.contains("is not running"), "{err}");
    let (_, err) = d.fail(&["exec", "nosuch", "echo", "hi"]);
    assert!(err.contains("No such container: nosuch"), "{err}");

    let (code, body) = d.http(
        "POST",
        "/v1.41/containers/idle/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(code, 409, "{body}");
    let (code, body) = d.http(
        "POST",
        "/v1.41/containers/nosuch/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(code, 404, "{body}");
    d.ok(&["rm", "idle"]);
}

#[test]
fn exec_api_refuses_bad_bodies_and_reports_the_exit() {
    let (d, served) = daemon_with_busybox();
    let c = sleeper(&d, &served.image, "api");
    let path = format!("/v1.41/containers/{c}/exec");
    let (code, body) = d.http("POST", &path, Some(""));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("POST", &path, Some(r#"{"Cmd":[]}"#));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("POST", &path, Some(r#"{"Cmd":"not a list"}"#));
    assert_eq!(code, 400, "{body}");

    let (code, body) = d.http(
        "POST",
        &path,
        Some(r#"{"Cmd":["sh","-c","exit 7"],"AttachStdout":true}"#),
    );
    assert_eq!(code, 201, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let id = created["Id"].as_str().expect("an Id").to_string();
    let (code, body) = d.http("GET", &format!("/v1.41/exec/{id}/json"), None);
    assert_eq!(code, 200, "{body}");
    let inspected: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(inspected["Running"], false);
    assert_eq!(inspected["ProcessConfig"]["entrypoint"], "sh");
    // Started without an upgrade: the output (none) is the body, and the exit is recorded.
    let (code, body) = d.http("POST", &format!("/v1.41/exec/{id}/start"), Some("{}"));
    assert_eq!(code, 200, "{body}");
    let (_, body) = d.http("GET", &format!("/v1.41/exec/{id}/json"), None);
    let inspected: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(inspected["ExitCode"], 7, "{body}");
    assert_eq!(inspected["ContainerID"].as_str().map(str::len), Some(64));
    let (code, _) = d.http("POST", &format!("/v1.41/exec/{id}/start"), Some("{}"));
    assert_eq!(code, 409);
    let (code, _) = d.http("GET", "/v1.41/exec/nosuch/json", None);
    assert_eq!(code, 404);
    d.ok(&["rm", "-f", &c]);
}

/// Spawns `docker ARGS`, waits for its first line of output, then kills it.
fn kill_after_first_line(d: &Daemon, args: &[&str]) {
    let mut child = d
        .docker(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docker");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert_eq!(line, "tick\n");
    child.kill().expect("kill docker");
    child.wait().expect("reap docker");
}

#[test]
fn attach_streams_output_and_a_vanished_client_costs_nothing() {
    let (d, served) = daemon_with_busybox();
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "ticker",
        &served.image,
        "sh",
        "-c",
        "while true; do echo tick; sleep 0.1; done",
    ]);
    kill_after_first_line(&d, &["attach", "ticker"]);
    kill_after_first_line(
        &d,
        &[
            "exec",
            "ticker",
            "sh",
            "-c",
            "while true; do echo tick; done",
        ],
    );
    // The container runs on, and the daemon answers as before.
    let state = d.ok(&["inspect", "-f", "{{.State.Running}}", "ticker"]);
    assert_eq!(state.trim(), "true");
    assert_eq!(d.ok(&["exec", "ticker", "echo", "still"]), "still\n");
    kill_after_first_line(&d, &["attach", "ticker"]);
    d.ok(&["rm", "-f", "ticker"]);
    d.assert_no_container_leftovers();
}
