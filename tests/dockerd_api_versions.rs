//! The daily docker flows with the client pinned to the oldest API the daemon serves (1.24),
//! to 1.41, and negotiated: the same results through every version.

mod dockerd_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use dockerd_support::{served_busybox, wait_for, Daemon};

/// The docker CLI against `d`, pinned to `version` (negotiated when `None`).
struct Client<'a> {
    d: &'a Daemon,
    version: Option<&'static str>,
}

impl Client<'_> {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.d.docker(args);
        if let Some(v) = self.version {
            c.env("DOCKER_API_VERSION", v);
        }
        c
    }

    fn output(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        c.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn docker");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        child.wait_with_output().expect("wait for docker")
    }

    fn context(&self, args: &[&str], out: &Output) -> String {
        format!(
            "docker {args:?} at API {:?} ({}): {}{}\n--- daemon log ---\n{}",
            self.version,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.d.log()
        )
    }

    /// Runs the command, which must succeed; its stdout, trimmed.
    fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.output(args, stdin);
        assert!(out.status.success(), "{}", self.context(args, &out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    /// Runs the command, which must fail; its exit code and stderr.
    fn fail(&self, args: &[&str]) -> (i32, String) {
        let out = self.output(args, None);
        assert!(!out.status.success(), "{}", self.context(args, &out));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `docker ARGS` with a terminal on the client's side (util-linux `script`); the exit code
    /// and what the terminal showed.
    fn on_a_tty(&self, args: &[&str]) -> (i32, String) {
        let line = std::iter::once(dockerd_support::docker_cli())
            .chain(args.iter().copied())
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let docker = self.cmd(&[]);
        let envs: Vec<_> = docker
            .get_envs()
            .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
            .collect();
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        for (k, v) in envs {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        let out = script.stdin(Stdio::null()).output().expect("spawn script");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).replace('\r', ""),
        )
    }

    /// Whether this client speaks at least API `minor` (1.minor); negotiated clients do.
    fn at_least(&self, minor: u32) -> bool {
        self.version
            .and_then(|v| v.strip_prefix("1.")?.parse::<u32>().ok())
            .is_none_or(|m| m >= minor)
    }
}

/// The whole day of one user, at one API version, against a daemon of its own.
fn daily_flows(version: Option<&'static str>) {
    let served = served_busybox();
    let d = Daemon::start();
    let c = Client { d: &d, version };
    let tag = version.map_or("auto".to_string(), |v| v.replace('.', ""));
    let img = images(&c, &served, &tag);
    foreground_runs(&c, &img);
    detached_container(&c, &img, &tag);
    restart_policy_and_health(&c, &img, &tag);
    volumes(&c, &img, &tag);
    cleanup(&c, &img, &tag);
    d.assert_no_container_leftovers();
}

/// pull, images, tag, push, inspect, history; the image to run.
fn images(c: &Client, served: &dockerd_support::ServedBusybox, tag: &str) -> String {
    let img = served.image.clone();
    c.ok(&["pull", "-q", &img]);
    let listed = c.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(listed.lines().any(|l| l == img), "{listed}");
    let pushed = format!("{}/daily{tag}:1", served.registry.host());
    c.ok(&["tag", &img, &pushed]);
    let push = c.ok(&["push", &pushed]);
    assert!(push.contains("digest: sha256:"), "{push}");
    assert_eq!(
        c.ok(&["inspect", "-f", "{{.Config.Cmd}}", &pushed]),
        "[sh]",
        "the tag is the same image"
    );
    assert!(!c.ok(&["history", "-q", &pushed]).is_empty());
    c.ok(&["rmi", &pushed]);
    img
}

/// run --rm with output and exit codes, stdin, a terminal.
fn foreground_runs<'a>(c: &Client, img: &'a str) {
    let rm = |rest: &[&'a str]| -> Vec<&'a str> {
        ["run", "--rm", "--network", "none"]
            .into_iter()
            .chain(rest.iter().copied())
            .collect()
    };
    assert_eq!(c.ok(&rm(&[img, "echo", "hello"])), "hello");
    let (code, _) = c.fail(&rm(&[img, "sh", "-c", "exit 3"]));
    assert_eq!(code, 3, "the container's exit code is docker's");
    let upper = rm(&["-i", img, "tr", "a-z", "A-Z"]);
    assert_eq!(c.ok_with(&upper, Some("quiet day\n")), "QUIET DAY");
    let (code, shown) = c.on_a_tty(&rm(&["-t", img, "sh", "-c", "tty; exit 5"]));
    assert_eq!(code, 5, "{shown}");
    assert!(shown.contains("/dev/pts/"), "a terminal inside: {shown}");
    let none = c.ok(&["ps", "-aq"]);
    assert!(none.is_empty(), "--rm containers are gone: {none}");
}

/// run -d, exec, logs, ps, inspect, top, stats, cp, stop/start/restart, pause, rename, kill,
/// wait, events.
fn detached_container(c: &Client, img: &str, tag: &str) {
    let name = format!("day{tag}");
    let started = humantime_now();
    let id = c.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        "none",
        "-e",
        "GREETING=hi",
        img,
        "sh",
        "-c",
        "echo up; while :; do sleep 1; done",
    ]);
    wait_for("the first log line", || c.ok(&["logs", &name]) == "up");
    assert_eq!(c.ok(&["exec", &name, "sh", "-c", "echo $GREETING"]), "hi");
    assert_eq!(
        c.ok_with(&["exec", "-i", &name, "cat"], Some("piped\n")),
        "piped"
    );
    let (code, _) = c.fail(&["exec", &name, "sh", "-c", "exit 7"]);
    assert_eq!(code, 7);
    let row = c.ok(&[
        "ps",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    assert_eq!(row, format!("{name} running"));
    assert_eq!(
        c.ok(&["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );
    assert!(c.ok(&["top", &name]).contains("sleep") || c.ok(&["top", &name]).contains("sh"));
    let stats = c.ok(&["stats", "--no-stream", "--format", "{{.Name}}", &name]);
    assert_eq!(stats, name);
    copy_both_ways(c, &name);
    c.ok(&["pause", &name]);
    assert_eq!(
        c.ok(&["inspect", "-f", "{{.State.Status}}", &name]),
        "paused"
    );
    c.ok(&["unpause", &name]);
    c.ok(&["restart", "-t", "1", &name]);
    assert_eq!(
        c.ok(&["inspect", "-f", "{{.State.Running}}", &name]),
        "true"
    );
    let renamed = format!("{name}b");
    c.ok(&["rename", &name, &renamed]);
    c.ok(&["kill", "-s", "KILL", &renamed]);
    assert_eq!(c.ok(&["wait", &renamed]), "137");
    c.ok(&["start", &renamed]);
    c.ok(&["stop", "-t", "1", &renamed]);
    let until = humantime_now();
    let events = c.ok(&[
        "events",
        "--since",
        &started,
        "--until",
        &until,
        "--filter",
        &format!("container={id}"),
        "--format",
        "{{.Action}}",
    ]);
    for action in [
        "create",
        "start",
        "exec_start",
        "pause",
        "unpause",
        "rename",
        "kill",
        "die",
    ] {
        assert!(
            events.lines().any(|l| l.starts_with(action)),
            "{action} in:\n{events}"
        );
    }
    c.ok(&["rm", &renamed]);
}

/// `docker cp` into and out of a running container.
fn copy_both_ways(c: &Client, name: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("note.txt");
    std::fs::write(&file, "carried\n").expect("write note");
    let file = file.to_string_lossy().into_owned();
    c.ok(&["cp", &file, &format!("{name}:/tmp/note.txt")]);
    assert_eq!(c.ok(&["exec", name, "cat", "/tmp/note.txt"]), "carried");
    c.ok(&["exec", name, "sh", "-c", "echo made inside > /tmp/back.txt"]);
    let back = dir.path().join("back.txt");
    c.ok(&[
        "cp",
        &format!("{name}:/tmp/back.txt"),
        &back.to_string_lossy(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("read back"),
        "made inside\n"
    );
}

/// A restart policy that gives up, and a health check that passes.
fn restart_policy_and_health(c: &Client, img: &str, tag: &str) {
    let flaky = format!("flaky{tag}");
    c.ok(&[
        "run",
        "-d",
        "--name",
        &flaky,
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        img,
        "sh",
        "-c",
        "exit 1",
    ]);
    wait_for("two restarts, then exited", || {
        c.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            &flaky,
        ]) == "2 exited"
    });
    let healthy = format!("healthy{tag}");
    c.ok(&[
        "run",
        "-d",
        "--name",
        &healthy,
        "--network",
        "none",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        img,
        "sleep",
        "1000",
    ]);
    wait_for("healthy", || {
        c.ok(&["inspect", "-f", "{{.State.Health.Status}}", &healthy]) == "healthy"
    });
    c.ok(&["rm", "-f", &flaky, &healthy]);
}

/// A named volume outlives its container and is read by the next one.
fn volumes(c: &Client, img: &str, tag: &str) {
    let vol = format!("data{tag}");
    c.ok(&["volume", "create", "--label", "day=1", &vol]);
    assert_eq!(
        c.ok(&["volume", "inspect", "-f", "{{.Labels.day}}", &vol]),
        "1"
    );
    let mount = format!("{vol}:/data");
    c.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &mount,
        img,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        c.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &mount,
            img,
            "cat",
            "/data/f"
        ]),
        "kept"
    );
    let listed = c.ok(&["volume", "ls", "-q"]);
    assert!(listed.lines().any(|l| l == vol), "{listed}");
    c.ok(&["volume", "rm", &vol]);
}

/// prune (API 1.25 and later: the docker CLI refuses it below), then rmi.
fn cleanup(c: &Client, img: &str, tag: &str) {
    if c.at_least(25) {
        c.ok(&[
            "run",
            "--name",
            &format!("gone{tag}"),
            "--network",
            "none",
            img,
            "true",
        ]);
        let pruned = c.ok(&["container", "prune", "-f"]);
        assert!(pruned.contains("Total reclaimed space"), "{pruned}");
    }
    c.ok(&["rmi", img]);
    assert!(c.ok(&["images", "-q"]).is_empty());
}

/// Now, as the docker CLI's `--since`/`--until` take it (seconds since the epoch).
fn humantime_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn daily_flows_at_api_1_24() {
    daily_flows(Some("1.24"));
}

#[test]
fn daily_flows_at_api_1_41() {
    daily_flows(Some("1.41"));
}

#[test]
fn daily_flows_negotiated() {
    daily_flows(None);
}
