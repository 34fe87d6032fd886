//! pelagos-dockerd's container endpoints through the real docker CLI (create, start, ps,
//! inspect, stop, kill, restart, rm, wait, rename, pause, top, diff, export, prune, update)
//! and raw HTTP for the error statuses; the CLI and the daemon see the same containers.

mod dockerd_support;

use std::process::{Command, Stdio};

use dockerd_support::{served_busybox, wait_for, Daemon, ServedBusybox};

/// A daemon with the served busybox pulled into its store by `docker pull`.
fn daemon_with_busybox() -> (Daemon, ServedBusybox) {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", "-q", &served.image]);
    (d, served)
}

/// `docker inspect -f FORMAT NAME`, trimmed.
fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.ok(&["inspect", "-f", format, name]).trim().to_string()
}

/// A raw JSON answer.
fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// The `pelagos` CLI on the daemon's store, which must succeed; its stdout.
fn pelagos_ok(d: &Daemon, args: &[&str]) -> String {
    let out = d.pelagos(args).output().expect("spawn pelagos");
    assert!(
        out.status.success(),
        "pelagos {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many of `pid`'s threads sleep in a read of a unix socket (a wait on a monitor);
/// `None` where the kernel does not show threads' stacks.
fn threads_reading_sockets(pid: u32) -> Option<usize> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut n = 0;
    for task in tasks.flatten() {
        let stack = std::fs::read_to_string(task.path().join("stack")).ok()?;
        n += usize::from(stack.contains("unix_stream_read_generic"));
    }
    Some(n)
}

/// Seconds since the epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[test]
fn create_start_ps_and_inspect() {
    let (d, served) = daemon_with_busybox();
    let id = d.ok(&[
        "create",
        "--name",
        "web",
        "--label",
        "tier=front",
        "--network",
        "none",
        &served.image,
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let rows = d.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}} {{.Command}}"]);
    assert_eq!(rows.trim(), "web created \"sleep 1000\"");
    assert!(d.ok(&["ps", "-q"]).trim().is_empty());

    assert_eq!(d.ok(&["start", "web"]).trim(), "web");
    // Started again: 304, which the CLI takes quietly.
    assert_eq!(d.ok(&["start", "web"]).trim(), "web");
    let rows = d.ok(&[
        "ps",
        "--format",
        "{{.ID}} {{.Names}} {{.Status}} {{.Networks}}",
    ]);
    let row: Vec<&str> = rows.split_whitespace().collect();
    assert_eq!(row[0], &id[..12], "{rows}");
    assert_eq!(row[1], "web", "{rows}");
    assert_eq!(row[2], "Up", "{rows}");
    assert_eq!(row.last(), Some(&"none"), "{rows}");
    assert_eq!(
        inspect(
            &d,
            "web",
            "{{.Id}} {{.Name}} {{.State.Status}} {{.State.Running}} {{.Config.Labels.tier}} {{.HostConfig.NetworkMode}}"
        ),
        format!("{id} /web running true front none")
    );
    assert_ne!(inspect(&d, "web", "{{.State.Pid}}"), "0");

    // Filters select as `ps --filter` does.
    assert_eq!(
        d.ok(&["ps", "-q", "--no-trunc", "--filter", "label=tier=front"])
            .trim(),
        id
    );
    assert!(d
        .ok(&["ps", "-aq", "--filter", "status=exited"])
        .trim()
        .is_empty());
    assert!(d
        .ok(&["ps", "-aq", "--filter", "name=nope"])
        .trim()
        .is_empty());
    d.ok(&[
        "create",
        "--name",
        "later",
        "--platform",
        "linux/amd64",
        &served.image,
    ]);
    assert_eq!(
        d.ok(&["ps", "-n", "1", "--format", "{{.Names}}"]).trim(),
        "later"
    );
    let sizes = d.ok(&["ps", "-s", "--format", "{{.Names}} {{.Size}}"]);
    assert!(
        sizes.starts_with("web ") && sizes.contains("virtual"),
        "{sizes}"
    );
    d.ok(&["rm", "later"]);

    // The API's summary and inspect shapes.
    let (code, body) = d.http("GET", "/v1.41/containers/json?size=1", None);
    assert_eq!(code, 200, "{body}");
    let list = json(&body);
    let s = &list[0];
    assert_eq!(s["Id"], id);
    assert_eq!(s["Names"], serde_json::json!(["/web"]));
    assert_eq!(s["Image"], served.image.as_str());
    assert!(s["ImageID"].as_str().unwrap().starts_with("sha256:"), "{s}");
    assert_eq!(s["Command"], "sleep 1000");
    assert_eq!(s["State"], "running");
    assert_eq!(s["Labels"]["tier"], "front");
    assert_eq!(s["HostConfig"]["NetworkMode"], "none");
    assert!(s["NetworkSettings"]["Networks"]["none"].is_object(), "{s}");
    assert!(s["Ports"].is_array() && s["Mounts"].is_array(), "{s}");
    assert!(s["SizeRw"].is_u64() && s["Created"].is_i64(), "{s}");
    let (code, body) = d.http("GET", "/containers/web/json?size=true", None);
    assert_eq!(code, 200, "{body}");
    let v = json(&body);
    assert_eq!(v["Name"], "/web");
    assert!(v["SizeRootFs"].as_u64().unwrap() > 0, "{v}");

    d.ok(&["rm", "-f", "web"]);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    d.assert_no_container_leftovers();
}

#[test]
fn run_detached_then_stop_kill_restart_and_rm() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let since = unix_now().to_string();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "sl",
        "--network",
        "none",
        img,
        "sleep",
        "1000",
    ]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(inspect(&d, "sl", "{{.State.Status}}"), "running");

    assert_eq!(d.ok(&["stop", "-t", "1", "sl"]).trim(), "sl");
    assert_eq!(inspect(&d, "sl", "{{.State.Status}}"), "exited");
    // Stopped already: 304, quiet for the CLI.
    assert_eq!(d.ok(&["stop", "sl"]).trim(), "sl");
    let (code, _) = d.http("POST", "/containers/sl/stop", None);
    assert_eq!(code, 304);

    d.ok(&["start", "sl"]);
    assert_eq!(d.ok(&["kill", "sl"]).trim(), "sl");
    assert_eq!(
        inspect(&d, "sl", "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 137"
    );
    let (code, err) = d.fail(&["kill", "sl"]);
    assert_eq!(code, 1);
    assert!(err.contains("is not running"), "{err}");

    let started = inspect(&d, "sl", "{{.State.StartedAt}}");
    assert_eq!(d.ok(&["restart", "-t", "1", "sl"]).trim(), "sl");
    assert_eq!(inspect(&d, "sl", "{{.State.Status}}"), "running");
    assert_ne!(inspect(&d, "sl", "{{.State.StartedAt}}"), started);
    // Restarting a running one stops it first.
    let pid = inspect(&d, "sl", "{{.State.Pid}}");
    d.ok(&["restart", "-t", "1", "sl"]);
    assert_ne!(inspect(&d, "sl", "{{.State.Pid}}"), pid);
    // A signal of the user's choice: a container's init without a handler ignores TERM.
    d.ok(&["kill", "-s", "TERM", "sl"]);
    assert_eq!(inspect(&d, "sl", "{{.State.Running}}"), "true");
    let (code, err) = d.fail(&["rm", "sl"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("You cannot remove a running container"),
        "{err}"
    );
    assert_eq!(d.ok(&["rm", "-f", "sl"]).trim(), "sl");
    let (_, err) = d.fail(&["inspect", "sl"]);
    assert!(err.contains("No such object: sl"), "{err}");
    // The events the CLI's verbs record, through the daemon too.
    let until = (unix_now() + 1).to_string();
    let actions = pelagos_ok(
        &d,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "container=sl",
            "--format",
            "{{.Action}}",
        ],
    );
    for action in [
        "create", "start", "kill", "die", "stop", "restart", "destroy",
    ] {
        assert!(actions.lines().any(|l| l == action), "{action}: {actions}");
    }

    // `--rm`: stopped is removed.
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--name",
        "gone",
        "--network",
        "none",
        img,
        "sleep",
        "1000",
    ]);
    assert_eq!(inspect(&d, "gone", "{{.HostConfig.AutoRemove}}"), "true");
    d.ok(&["stop", "-t", "1", "gone"]);
    wait_for("the --rm container to go", || {
        d.ok(&["ps", "-aq"]).trim().is_empty()
    });
    d.assert_no_container_leftovers();
}

#[test]
fn wait_streams_the_exit_code() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    d.ok(&[
        "run",
        "-d",
        "--name",
        "three",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(d.ok(&["wait", "three"]).trim(), "3");
    assert_eq!(inspect(&d, "three", "{{.State.ExitCode}}"), "3");

    // What `docker run` does: wait for the next exit before the start.
    d.ok(&[
        "create",
        "--name",
        "five",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        "exit 5",
    ]);
    let headers = d.dir.path().join("wait-headers");
    let waiter = Command::new("curl")
        .args(["-s", "-N", "-X", "POST", "-D"])
        .arg(&headers)
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg("http://localhost/v1.41/containers/five/wait?condition=next-exit")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    // The headers come at once: the wait is in place, as the docker CLI's `run` expects.
    wait_for("the wait's headers", || {
        std::fs::read_to_string(&headers).is_ok_and(|h| h.starts_with("HTTP/1.1 200"))
    });
    d.ok(&["start", "five"]);
    let out = waiter.wait_with_output().expect("curl");
    let body = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(body["StatusCode"], 5, "{body}");
    assert!(body["Error"].is_null(), "{body}");

    // A client that leaves a wait (as `docker run -d` does) frees the daemon's thread
    // blocked on the monitor for it.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "left",
        "--network",
        "none",
        img,
        "sleep",
        "1000",
    ]);
    let Some(_) = threads_reading_sockets(d.pid()) else {
        panic!("this test needs /proc/PID/task/TID/stack");
    };
    let mut waiter = Command::new("curl")
        .args(["-s", "-N", "-X", "POST", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://localhost/v1.41/containers/left/wait")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn curl");
    wait_for("the wait on the monitor", || {
        threads_reading_sockets(d.pid()).unwrap_or(0) >= 1
    });
    waiter.kill().expect("kill curl");
    let _ = waiter.wait();
    wait_for("the abandoned waits to end", || {
        threads_reading_sockets(d.pid()) == Some(0)
    });

    let (code, err) = d.fail(&["wait", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");
    let (code, body) = d.http("POST", "/containers/five/wait?condition=later", None);
    assert_eq!(code, 400, "{body}");

    d.ok(&["rm", "-f", "three", "five", "left"]);
    d.assert_no_container_leftovers();
}

#[test]
fn rename_pause_top_diff_and_export() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let script = "echo hi > /added && rm /bin/true; exec sleep 1000";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "aa",
        "--network",
        "none",
        img,
        "sh",
        "-c",
        script,
    ]);
    d.ok(&[
        "create",
        "--name",
        "other",
        "--network",
        "none",
        img,
        "true",
    ]);

    d.ok(&["rename", "aa", "bb"]);
    assert_eq!(inspect(&d, "bb", "{{.Name}}"), "/bb");
    let (_, err) = d.fail(&["inspect", "aa"]);
    assert!(err.contains("No such object: aa"), "{err}");
    let (_, err) = d.fail(&["rename", "bb", "other"]);
    assert!(err.contains("is already in use"), "{err}");

    d.ok(&["pause", "bb"]);
    assert_eq!(
        inspect(&d, "bb", "{{.State.Status}} {{.State.Paused}}"),
        "paused true"
    );
    let status = d.ok(&["ps", "--filter", "name=bb", "--format", "{{.Status}}"]);
    assert!(status.contains("(Paused)"), "{status}");
    let (code, body) = d.http("POST", "/containers/bb/start", None);
    assert_eq!(code, 409, "{body}");
    d.ok(&["unpause", "bb"]);
    assert_eq!(inspect(&d, "bb", "{{.State.Status}}"), "running");
    let (_, err) = d.fail(&["unpause", "bb"]);
    assert!(err.contains("is not paused"), "{err}");

    wait_for("the script's changes", || {
        d.ok(&["diff", "bb"]).lines().any(|l| l == "A /added")
    });
    let top = d.ok(&["top", "bb"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 1000"), "{top}");
    let top = d.ok(&["top", "bb", "-o", "pid,comm"]);
    assert!(top.lines().any(|l| l.trim().ends_with("sleep")), "{top}");
    let diff = d.ok(&["diff", "bb"]);
    assert!(diff.lines().any(|l| l == "D /bin/true"), "{diff}");
    assert!(diff.lines().any(|l| l == "C /bin"), "{diff}");
    let (code, body) = d.http("GET", "/containers/bb/changes", None);
    assert_eq!(code, 200, "{body}");
    let changes = json(&body);
    let kind_of = |path: &str| {
        changes
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Path"] == path)
            .map(|c| c["Kind"].clone())
    };
    assert_eq!(kind_of("/added"), Some(serde_json::json!(1)));
    assert_eq!(kind_of("/bin/true"), Some(serde_json::json!(2)));
    assert_eq!(kind_of("/bin"), Some(serde_json::json!(0)));

    // `docker export | tar t`.
    let mut export = d.docker(&["export", "bb"]);
    let mut export = export
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker export");
    let listing = Command::new("tar")
        .arg("t")
        .stdin(export.stdout.take().expect("stdout"))
        .output()
        .expect("tar t");
    assert!(export.wait().expect("docker export").success());
    assert!(listing.status.success(), "{listing:?}");
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(names.lines().any(|l| l == "added"), "{names}");
    assert!(names.lines().any(|l| l == "bin/sh"), "{names}");
    assert!(!names.lines().any(|l| l == "bin/true"), "{names}");
    let (code, _) = d.http("GET", "/containers/nosuch/export", None);
    assert_eq!(code, 404);

    d.ok(&["rm", "-f", "bb", "other"]);
    d.assert_no_container_leftovers();
}

#[test]
fn prune_update_restart_policy_and_healthcheck() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let gone = d.ok(&["create", "--network", "none", img, "true"]);
    let labelled = d.ok(&[
        "create",
        "--label",
        "keep=1",
        "--network",
        "none",
        img,
        "true",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "rp",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        img,
        "sleep",
        "1000",
    ]);
    assert_eq!(
        inspect(
            &d,
            "rp",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"
        ),
        "on-failure 2"
    );
    assert_eq!(
        inspect(&d, "rp", "{{json .Config.Healthcheck.Test}}"),
        r#"["CMD-SHELL","true"]"#
    );
    wait_for("a healthy container", || {
        inspect(&d, "rp", "{{.State.Health.Status}}") == "healthy"
    });
    let status = d.ok(&["ps", "--format", "{{.Status}}"]);
    assert!(status.contains("(healthy)"), "{status}");

    let out = d.ok(&["container", "prune", "-f", "--filter", "label!=keep=1"]);
    assert!(out.contains(gone.trim()), "{out}");
    assert!(out.contains("Total reclaimed space"), "{out}");
    let left = d.ok(&["ps", "-aq", "--no-trunc"]);
    assert!(!left.contains(gone.trim()), "{left}");
    assert!(left.contains(labelled.trim()), "{left}");
    let (code, body) = d.http("POST", "/containers/prune", None);
    assert_eq!(code, 200, "{body}");
    let report = json(&body);
    assert_eq!(
        report["ContainersDeleted"],
        serde_json::json!([labelled.trim()])
    );
    assert!(report["SpaceReclaimed"].is_u64(), "{report}");

    d.ok(&["update", "--restart", "on-failure:5", "rp"]);
    assert_eq!(
        inspect(&d, "rp", "{{.HostConfig.RestartPolicy.MaximumRetryCount}}"),
        "5"
    );
    // A memory limit: the daemon answers as the CLI does on this host (this cgroup v2 tree
    // may lack the memory controller, which both then refuse in the same words).
    let cli = d
        .pelagos(&["update", "--memory", "64m", "rp"])
        .output()
        .expect("pelagos update");
    let docker = d.run(&["update", "--memory", "64m", "rp"]);
    assert_eq!(docker.status.success(), cli.status.success());
    if docker.status.success() {
        assert_eq!(inspect(&d, "rp", "{{.HostConfig.Memory}}"), "67108864");
    } else {
        let (ours, theirs) = (
            String::from_utf8_lossy(&docker.stderr),
            String::from_utf8_lossy(&cli.stderr),
        );
        assert!(ours.contains("cannot be enforced"), "{ours}");
        assert!(theirs.contains("cannot be enforced"), "{theirs}");
        assert_eq!(inspect(&d, "rp", "{{.HostConfig.Memory}}"), "0");
    }
    let (code, body) = d.http("POST", "/containers/rp/update", Some("{\"Memory\":"));
    assert_eq!(code, 400, "{body}");

    d.ok(&["rm", "-f", "rp"]);
    d.assert_no_container_leftovers();
}

#[test]
fn the_cli_and_the_daemon_see_the_same_containers() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    d.ok(&[
        "create",
        "--name",
        "fromd",
        "--network",
        "none",
        img,
        "true",
    ]);
    pelagos_ok(
        &d,
        &[
            "create",
            "--name",
            "fromcli",
            "--network",
            "none",
            img,
            "sleep",
            "1000",
        ],
    );
    let cli = pelagos_ok(&d, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(cli.lines().any(|l| l == "fromd"), "{cli}");
    let docker = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(docker.lines().any(|l| l == "fromcli"), "{docker}");

    // Started by the daemon, stopped and removed by the CLI, and the other way round.
    d.ok(&["start", "fromcli"]);
    assert!(pelagos_ok(&d, &["ps", "--format", "{{.Names}}"]).contains("fromcli"));
    pelagos_ok(&d, &["rm", "-f", "fromcli"]);
    pelagos_ok(&d, &["start", "fromd"]);
    assert_eq!(d.ok(&["wait", "fromd"]).trim(), "0");
    d.ok(&["rm", "fromd"]);
    assert!(pelagos_ok(&d, &["ps", "-aq"]).trim().is_empty());
    d.assert_no_container_leftovers();
}

#[test]
fn errors_have_dockers_statuses() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let message = |body: &str| {
        json(body)["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for (method, path) in [
        ("GET", "/containers/nosuch/json"),
        ("POST", "/containers/nosuch/start"),
        ("POST", "/containers/nosuch/stop"),
        ("POST", "/containers/nosuch/kill"),
        ("POST", "/containers/nosuch/pause"),
        ("GET", "/containers/nosuch/top"),
        ("GET", "/containers/nosuch/changes"),
        ("POST", "/containers/nosuch/wait"),
        ("DELETE", "/v1.41/containers/nosuch"),
    ] {
        let (code, body) = d.http(method, path, None);
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert!(
            message(&body).contains("No such container: nosuch"),
            "{body}"
        );
    }
    let create = |body: &str| d.http("POST", "/v1.41/containers/create?name=c1", Some(body));
    let (code, body) = create("{\"Image\": ");
    assert_eq!(code, 400, "{body}");
    let (code, body) = create("");
    assert_eq!(code, 400, "{body}");
    let (code, body) = create(r#"{"Image":"nosuch:1"}"#);
    assert_eq!(code, 404, "{body}");
    assert_eq!(message(&body), "No such image: nosuch:1");
    let (code, body) = create(r#"{"Image":"nosuch"}"#);
    assert_eq!(code, 404, "{body}");
    assert_eq!(message(&body), "No such image: nosuch:latest");
    let with_links = format!(r#"{{"Image":"{img}","HostConfig":{{"Links":["x:y"]}}}}"#);
    let (code, body) = create(&with_links);
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("links"), "{body}");
    let (code, body) = create(&format!(r#"{{"Image":"{img}","Cmd":["true"]}}"#));
    assert_eq!(code, 201, "{body}");
    let created = json(&body);
    assert_eq!(created["Warnings"], serde_json::json!([]));
    let (code, body) = create(&format!(r#"{{"Image":"{img}"}}"#));
    assert_eq!(code, 409, "{body}");
    assert!(message(&body).contains("is already in use"), "{body}");
    let (code, body) = d.http(
        "POST",
        "/containers/create?name=c2&platform=linux/s390x",
        Some(&format!(r#"{{"Image":"{img}"}}"#)),
    );
    assert_eq!(code, 404, "{body}");
    assert!(
        message(&body).contains("does not match the specified platform"),
        "{body}"
    );
    let (code, body) = d.http(
        "POST",
        "/containers/create?name=bad%20name",
        Some(&format!(r#"{{"Image":"{img}"}}"#)),
    );
    assert_eq!(code, 400, "{body}");

    let (code, body) = d.http("POST", "/containers/c1/kill", None);
    assert_eq!(code, 409, "{body}");
    assert!(message(&body).contains("is not running"), "{body}");
    let (code, body) = d.http("POST", "/containers/c1/kill?signal=NOPE", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("POST", "/containers/c1/stop?t=soon", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("DELETE", "/containers/c1?link=1", None);
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("link"), "{body}");
    let (code, body) = d.http("POST", "/containers/c1/rename", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("POST", "/containers/c1/update", Some("{}"));
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("GET", "/containers/json?filters=%7Bbad", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http(
        "GET",
        "/containers/json?filters=%7B%22status%22%3A%5B%22bogus%22%5D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("GET", "/containers/json?limit=many", None);
    assert_eq!(code, 400, "{body}");

    // An image the daemon lacks is a 404 the docker CLI answers with a pull (which fails
    // here: the registry has no such repository).
    let host = img.split('/').next().expect("registry host");
    let missing = format!("{host}/missing:1");
    let (_, err) = d.fail(&["create", "--network", "none", &missing]);
    assert!(err.contains("Unable to find image"), "{err}");

    // `rm -f` of what is not there is quiet, as with Docker's daemon.
    d.ok(&["rm", "-f", "nosuch"]);
    let (code, err) = d.fail(&["rm", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container: nosuch"), "{err}");

    // Refused requests made nothing.
    let names = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(names.trim(), "c1");
    let (code, _) = d.http("DELETE", "/containers/c1", None);
    assert_eq!(code, 204);
    d.assert_no_container_leftovers();
}

/// The flags of a full `create`, given to the docker CLI and to the `pelagos` CLI.
const FULL_CREATE: &[&str] = &[
    "--network",
    "none",
    "-e",
    "A=1",
    "-w",
    "/tmp",
    "-u",
    "1000:1000",
    "--cap-add",
    "NET_ADMIN",
    "--cap-drop",
    "CHOWN",
    "--read-only",
    "--tmpfs",
    "/run:size=1m",
    "--init",
    "--log-opt",
    "max-size=1m",
    "--stop-signal",
    "SIGUSR1",
    "--stop-timeout",
    "5",
    "--hostname",
    "hh",
    "--add-host",
    "db:10.0.0.9",
    "--ulimit",
    "nofile=100:200",
    "--label",
    "a=b",
    "--restart",
    "unless-stopped",
    "--health-cmd",
    "true",
    "--health-retries",
    "2",
    "--entrypoint",
    "/bin/sh",
    "--security-opt",
    "no-new-privileges",
];

#[test]
fn a_full_create_is_the_cli_s() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let data = d.dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let bind = format!("{}:/data:ro", data.display());
    let mut docker_args = vec!["create", "--name", "viad", "-v", &bind];
    docker_args.extend(FULL_CREATE);
    docker_args.extend([img, "-c", "exit 7"]);
    d.ok(&docker_args);
    let mut cli_args = vec!["create", "--name", "viacli", "-v", &bind];
    cli_args.extend(FULL_CREATE);
    cli_args.extend([img, "-c", "exit 7"]);
    pelagos_ok(&d, &cli_args);

    let view = |name: &str| {
        let (code, body) = d.http("GET", &format!("/containers/{name}/json"), None);
        assert_eq!(code, 200, "{body}");
        json(&body)
    };
    let (ours, mut theirs) = (view("viad"), view("viacli"));
    // Where the two clients send different things, as Docker's would: the docker CLI 28
    // names capabilities in full; the `pelagos` CLI names its cgroup parent, the daemon
    // has its own.
    let host = &mut theirs["HostConfig"];
    host["CapAdd"] = serde_json::json!(["CAP_NET_ADMIN"]);
    host["CapDrop"] = serde_json::json!(["CAP_CHOWN"]);
    host["CgroupParent"] = "".into();
    for part in ["Config", "HostConfig"] {
        assert_eq!(ours[part], theirs[part], "{part}");
    }
    assert_eq!(ours["Path"], "/bin/sh");
    d.ok(&["start", "viad"]);
    assert_eq!(d.ok(&["wait", "viad"]).trim(), "7");
    d.ok(&["rm", "-f", "viad", "viacli"]);
    d.assert_no_container_leftovers();
}

#[test]
fn old_clients_and_a_restarted_daemon() {
    let (mut d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    for version in ["1.24", "1.41"] {
        let docker = |args: &[&str]| {
            let out = d
                .docker(args)
                .env("DOCKER_API_VERSION", version)
                .output()
                .expect("spawn docker");
            assert!(
                out.status.success(),
                "docker {args:?} at API {version}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let name = format!("old{}", version.replace('.', ""));
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            "none",
            img,
            "sh",
            "-c",
            "exit 4",
        ]);
        assert_eq!(docker(&["wait", &name]), "4");
        let listed = docker(&[
            "ps",
            "-a",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Names}} {{.State}}",
        ]);
        assert_eq!(listed, format!("{name} exited"));
        assert_eq!(
            docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]),
            "4"
        );
        docker(&["rm", &name]);
    }

    // The containers outlive the daemon, which finds them again.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "survivor",
        "--network",
        "none",
        img,
        "sleep",
        "1000",
    ]);
    d.restart_daemon();
    assert_eq!(
        d.ok(&["ps", "--format", "{{.Names}} {{.State}}"]).trim(),
        "survivor running"
    );
    d.ok(&["stop", "-t", "1", "survivor"]);
    assert_eq!(inspect(&d, "survivor", "{{.State.Status}}"), "exited");
    d.ok(&["rm", "survivor"]);
    d.assert_no_container_leftovers();
}

#[test]
fn create_of_a_missing_image_pulls_it_first() {
    let served = served_busybox();
    let d = Daemon::start();
    let out = d.run(&[
        "run",
        "-d",
        "--name",
        "pulled",
        "--network",
        "none",
        &served.image,
        "sleep",
        "1000",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}\n{}", d.log());
    assert!(err.contains("Unable to find image"), "{err}");
    assert_eq!(inspect(&d, "pulled", "{{.State.Status}}"), "running");
    d.ok(&["rm", "-f", "pulled"]);
    d.assert_no_container_leftovers();
}
