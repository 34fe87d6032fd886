//! pelagos-dockerd's container output and data endpoints through the real docker CLI and raw
//! HTTP: `logs` (framed, tty, follow, tail, since, timestamps), `stats` (table, JSON, the
//! raw object) and `cp` both ways (the archive endpoints), with nothing left after.
//!
//! The containers are made with the `pelagos` CLI on the daemon's own root (the two share
//! everything): these tests are about what comes out of containers, not how they are made.

mod dockerd_support;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use dockerd_support::{served_busybox, wait_for, Daemon};

/// The `pelagos` CLI on the daemon's root, which must succeed; its stdout.
fn pelagos(d: &Daemon, args: &[&str]) -> String {
    let out = d.pelagos(args).output().expect("spawn pelagos");
    assert!(
        out.status.success(),
        "pelagos {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A daemon with busybox in its store.
fn daemon_with_busybox() -> (Daemon, String) {
    let served = served_busybox();
    let d = Daemon::start();
    pelagos(&d, &["pull", "-q", &served.image]);
    (d, served.image)
}

/// Runs `script` in a container named `name` to its end.
fn run_to_end(d: &Daemon, image: &str, name: &str, script: &str) {
    pelagos(
        d,
        &[
            "run",
            "--name",
            name,
            "--network",
            "none",
            image,
            "sh",
            "-c",
            script,
        ],
    );
}

/// Starts a detached container named `name` running `script`.
fn run_detached(d: &Daemon, image: &str, name: &str, extra: &[&str], script: &str) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sh", "-c", script]);
    pelagos(d, &args);
}

/// Removes every container, then checks nothing of them is left.
fn remove_all_and_check(d: &Daemon, names: &[&str]) {
    let mut args = vec!["rm", "-f"];
    args.extend_from_slice(names);
    pelagos(d, &args);
    d.assert_no_container_leftovers();
}

/// stdout and stderr of a docker command that must succeed.
fn docker_both(d: &Daemon, args: &[&str]) -> (String, String) {
    let out = d.run(args);
    assert!(
        out.status.success(),
        "docker {args:?}: {}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn logs_of_a_finished_container_keep_stdout_and_stderr_apart() {
    let (d, image) = daemon_with_busybox();
    run_to_end(&d, &image, "done", "echo out1; echo err1 >&2; echo out2");

    let (out, err) = docker_both(&d, &["logs", "done"]);
    assert_eq!(out, "out1\nout2\n");
    assert_eq!(err, "err1\n");

    // The tail of one stream (the order of lines of two pipes is the order they were read).
    run_to_end(&d, &image, "lines", "for i in 1 2 3; do echo l$i; done");
    let (out, err) = docker_both(&d, &["logs", "--tail", "2", "lines"]);
    assert_eq!((out.as_str(), err.as_str()), ("l2\nl3\n", ""));

    let (out, _) = docker_both(&d, &["logs", "--timestamps", "done"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (line, text) in lines.iter().zip(["out1", "out2"]) {
        let (time, rest) = line.split_once(' ').expect("a timestamp first");
        assert_eq!(rest, text);
        humantime::parse_rfc3339(time).unwrap_or_else(|e| panic!("{time}: {e}"));
        assert_eq!(time.len(), "2006-01-02T15:04:05.000000000Z".len(), "{time}");
    }

    // Everything is older than now + 1 h, nothing is newer.
    // An old client pinned to API 1.24 reads the same.
    let out = d
        .docker(&["logs", "done"])
        .env("DOCKER_API_VERSION", "1.24")
        .output()
        .expect("docker logs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out1\nout2\n");
    let (out, err) = docker_both(&d, &["logs", "--since", "1h", "done"]);
    assert_eq!((out.as_str(), err.as_str()), ("out1\nout2\n", "err1\n"));
    let future = humantime::format_rfc3339_seconds(
        std::time::SystemTime::now() + std::time::Duration::from_secs(3600),
    )
    .to_string();
    let (out, err) = docker_both(&d, &["logs", "--since", &future, "done"]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let (out, err) = docker_both(&d, &["logs", "--until", "1h", "done"]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let (out, _) = docker_both(&d, &["logs", "--until", &future, "done"]);
    assert_eq!(out, "out1\nout2\n");

    // Raw HTTP: 8-byte frames without a tty; no stream asked is a 400.
    let (code, body) = d.http("GET", "/v1.41/containers/done/logs?stderr=1", None);
    assert_eq!(code, 200);
    assert_eq!(body, "\u{2}\0\0\0\0\0\0\u{5}err1\n");
    let (code, body) = d.http("GET", "/v1.41/containers/done/logs", None);
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("Bad parameters: you must choose at least one stream"),
        "{body}"
    );
    let (code, body) = d.http("GET", "/containers/nosuch/logs?stdout=1", None);
    assert_eq!(code, 404, "{body}");
    let (code, stderr) = d.fail(&["logs", "nosuch"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("No such container: nosuch"), "{stderr}");

    // `--details`: the attributes the log options name; a driver that keeps no log.
    pelagos(
        &d,
        &[
            "run",
            "--name",
            "labelled",
            "--network",
            "none",
            "--label",
            "app=web shop",
            "--log-opt",
            "labels=app",
            &image,
            "echo",
            "hi",
        ],
    );
    let (out, _) = docker_both(&d, &["logs", "--details", "labelled"]);
    assert_eq!(out, "app=web+shop hi\n");
    pelagos(
        &d,
        &[
            "run",
            "--name",
            "unlogged",
            "--network",
            "none",
            "--log-driver",
            "none",
            &image,
            "echo",
            "hi",
        ],
    );
    let (code, stderr) = d.fail(&["logs", "unlogged"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("configured logging driver does not support reading"),
        "{stderr}"
    );

    remove_all_and_check(&d, &["done", "lines", "labelled", "unlogged"]);
}

#[test]
fn logs_follow_streams_until_the_container_stops() {
    let (d, image) = daemon_with_busybox();
    run_detached(
        &d,
        &image,
        "talker",
        &[],
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.2; done",
    );
    let mut follower = d
        .docker(&["logs", "-f", "talker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker logs -f");
    let mut lines = BufReader::new(follower.stdout.take().expect("stdout"));
    let mut first = String::new();
    lines.read_line(&mut first).expect("read the first line");
    assert_eq!(first, "line0\n");
    // A line written after the follow began comes through too (nothing is buffered).
    let mut second = String::new();
    lines.read_line(&mut second).expect("read the second line");
    assert_eq!(second, "line1\n");

    pelagos(&d, &["stop", "-t", "1", "talker"]);
    let mut status = None;
    wait_for("docker logs -f to end", || {
        status = follower.try_wait().expect("try_wait");
        status.is_some()
    });
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut lines, &mut rest).expect("read the rest");
    assert!(rest.lines().all(|l| l.starts_with("line")), "{rest}");

    remove_all_and_check(&d, &["talker"]);
}

#[test]
fn a_vanished_follower_does_not_hold_the_daemon() {
    let (d, image) = daemon_with_busybox();
    run_detached(&d, &image, "quiet", &[], "echo once; exec sleep 600");
    wait_for("the line in the log", || {
        d.http("GET", "/containers/quiet/logs?stdout=1", None)
            .1
            .contains("once")
    });
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", d.pid()))
            .map(|r| r.count())
            .unwrap_or(0)
    };
    let before = threads();
    // Followers (raw connections) that go away while the container says nothing.
    for _ in 0..5 {
        let mut f = std::os::unix::net::UnixStream::connect(&d.socket).expect("connect");
        f.write_all(b"GET /containers/quiet/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("send the request");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("once") {
            let n = std::io::Read::read(&mut f, &mut buf).expect("read");
            assert!(n > 0, "{}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    }
    // Their reader threads end (the daemon's pools may keep a few idle threads).
    wait_for("the followers' threads to end", || threads() <= before + 2);
    let (code, body) = d.http("GET", "/containers/quiet/logs?stdout=1", None);
    assert_eq!((code, body.as_str()), (200, "\u{1}\0\0\0\0\0\0\u{5}once\n"));
    remove_all_and_check(&d, &["quiet"]);
}

/// The daemon's resident memory in KiB.
fn rss_kib(d: &Daemon) -> u64 {
    std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_stalled_follower_holds_no_more_than_its_own_stream() {
    let (d, image) = daemon_with_busybox();
    run_detached(
        &d,
        &image,
        "spew",
        &["--log-opt", "max-size=20m", "--log-opt", "max-file=3"],
        "exec yes",
    );
    let before = rss_kib(&d);
    // A follower that never reads.
    let mut stalled =
        std::os::unix::net::UnixStream::connect(&d.socket).expect("connect to the daemon");
    stalled
        .write_all(b"GET /containers/spew/logs?follow=1&stdout=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send the request");
    // Two rotations: more than 40 MB written since it stopped reading.
    let id = pelagos(&d, &["inspect", "-f", "{{.Id}}", "spew"]);
    let dir = d.root.join("containers").join(id.trim());
    wait_for("two rotations of the log", || {
        std::fs::read_dir(&dir)
            .map(|r| {
                r.flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".2"))
            })
            .unwrap_or(false)
    });
    let after = rss_kib(&d);
    assert!(
        after < before + 16 * 1024,
        "the daemon grew from {before} KiB to {after} KiB"
    );
    // Others are served meanwhile.
    let (code, _) = d.http("GET", "/_ping", None);
    assert_eq!(code, 200);
    drop(stalled);
    remove_all_and_check(&d, &["spew"]);
}

#[test]
fn logs_of_a_tty_container_are_raw() {
    let (d, image) = daemon_with_busybox();
    run_detached(&d, &image, "tty", &["-t"], "echo hello-tty");
    wait_for("the tty container to exit", || {
        pelagos(&d, &["inspect", "-f", "{{.State.Status}}", "tty"]).trim() == "exited"
    });
    let (out, err) = docker_both(&d, &["logs", "tty"]);
    assert_eq!(out.replace('\r', ""), "hello-tty\n");
    assert_eq!(err, "");
    let (code, body) = d.http("GET", "/containers/tty/logs?stdout=1&stderr=1", None);
    assert_eq!(code, 200);
    assert!(body.starts_with("hello-tty"), "no frame headers: {body:?}");
    remove_all_and_check(&d, &["tty"]);
}

/// Whether the cgroup v2 hierarchy offers `controller` (on hybrid hosts it is v1's).
fn cgroup2_has(controller: &str) -> bool {
    ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .iter()
        .filter_map(|root| std::fs::read_to_string(Path::new(root).join("cgroup.controllers")).ok())
        .any(|list| list.split_whitespace().any(|c| c == controller))
}

#[test]
fn stats_as_the_docker_cli_shows_them() {
    let (d, image) = daemon_with_busybox();
    run_detached(&d, &image, "busy", &[], "exec sleep 600");

    let (code, body) = d.http("GET", "/v1.41/containers/busy/stats?stream=false", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a stats object");
    assert_eq!(v["name"], "/busy");
    assert!(v["id"].as_str().is_some_and(|id| id.len() == 64), "{v}");
    for key in [
        "cpu_stats",
        "precpu_stats",
        "memory_stats",
        "blkio_stats",
        "pids_stats",
    ] {
        assert!(v[key].is_object(), "{key} in {v}");
    }
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().is_some(), "{v}");
    assert!(
        v["precpu_stats"]["system_cpu_usage"].as_u64().is_some(),
        "{v}"
    );
    // Memory and pids come from cgroup v2 only (a hybrid host keeps them in v1): there the
    // objects are empty, as moby's are without the figures.
    if cgroup2_has("memory") {
        let usage = v["memory_stats"]["usage"].as_u64();
        assert!(usage.is_some_and(|u| u > 0), "{v}");
    }
    if cgroup2_has("pids") {
        let pids = v["pids_stats"]["current"].as_u64();
        assert!(pids.is_some_and(|p| p >= 1), "{v}");
    }

    let out = d.ok(&["stats", "--no-stream", "busy"]);
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(row.contains("busy"), "{out}");
    assert!(
        ["B", "KiB", "MiB"]
            .iter()
            .any(|u| row.contains(&format!("{u} / "))),
        "a memory figure: {out}"
    );

    let out = d.ok(&["stats", "--no-stream", "--format", "{{json .}}", "busy"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON row");
    assert_eq!(v["Name"], "busy");
    assert!(
        v["MemUsage"].as_str().is_some_and(|m| m.contains(" / ")),
        "{v}"
    );
    assert!(
        v["CPUPerc"].as_str().is_some_and(|c| c.ends_with('%')),
        "{v}"
    );
    if cgroup2_has("pids") {
        assert!(v["PIDs"].as_str().is_some_and(|p| p != "0"), "{v}");
    }
    if cgroup2_has("memory") {
        assert!(
            v["MemUsage"].as_str().is_some_and(|m| !m.starts_with("0B")),
            "{v}"
        );
    }

    // One shot: no previous sample.
    let (code, body) = d.http("GET", "/containers/busy/stats?stream=no&one-shot=1", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a stats object");
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    let (code, body) = d.http("GET", "/containers/busy/stats?stream=1&one-shot=1", None);
    assert_eq!(code, 400, "{body}");
    let (code, body) = d.http("GET", "/containers/nosuch/stats?stream=0", None);
    assert_eq!(code, 404, "{body}");

    // A stopped container: moby's zero object, once.
    pelagos(&d, &["stop", "-t", "0", "busy"]);
    let (code, body) = d.http("GET", "/containers/busy/stats?stream=false", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a stats object");
    assert_eq!(v["name"], "/busy");
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);

    remove_all_and_check(&d, &["busy"]);
}

#[test]
fn stats_stream_one_object_a_second_zeroed_while_stopped_until_removed() {
    let (d, image) = daemon_with_busybox();
    run_detached(&d, &image, "streamed", &[], "exec sleep 600");
    let mut curl = std::process::Command::new("curl")
        .args(["-sN", "--unix-socket"])
        .arg(&d.socket)
        .arg("http://localhost/v1.41/containers/streamed/stats")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn curl");
    let mut lines = BufReader::new(curl.stdout.take().expect("stdout"));
    let mut objects = Vec::new();
    for _ in 0..2 {
        let mut line = String::new();
        lines.read_line(&mut line).expect("read an object");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one object a line");
        objects.push(v);
    }
    // Each object's previous sample is the one before.
    assert_eq!(objects[1]["preread"], objects[0]["read"]);
    assert!(objects[0]["precpu_stats"]["system_cpu_usage"].is_u64());
    // Stopped: moby's zero objects go on; removed: the stream ends.
    pelagos(&d, &["stop", "-t", "0", "streamed"]);
    loop {
        let mut line = String::new();
        let n = lines.read_line(&mut line).expect("read an object");
        assert!(n > 0, "the stream ended while the container exists");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one object a line");
        if v["read"] == "0001-01-01T00:00:00Z" {
            assert_eq!(v["name"], "/streamed");
            break;
        }
    }
    pelagos(&d, &["rm", "streamed"]);
    let mut status = None;
    wait_for("the stats stream to end", || {
        status = curl.try_wait().expect("try_wait");
        status.is_some()
    });
    d.assert_no_container_leftovers();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn cp_both_ways_keeps_contents_and_modes() {
    let (d, image) = daemon_with_busybox();
    run_detached(&d, &image, "files", &[], "exec sleep 600");
    let host = tempfile::tempdir().expect("tempdir");

    // Host → container: a file and a directory.
    let file = host.path().join("note.txt");
    std::fs::write(&file, "hello from the host\n").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let dir = host.path().join("tree");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("sub/deep.sh"), "#!/bin/sh\necho deep\n").expect("write");
    std::fs::set_permissions(
        dir.join("sub/deep.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    d.ok(&["cp", &file.to_string_lossy(), "files:/tmp/"]);
    d.ok(&["cp", &dir.to_string_lossy(), "files:/tmp/tree"]);
    let seen = pelagos(
        &d,
        &[
            "exec", "files", "sh", "-c",
            "cat /tmp/note.txt; stat -c '%a %u' /tmp/note.txt /tmp/tree/sub/deep.sh; /tmp/tree/sub/deep.sh",
        ],
    );
    assert_eq!(seen, "hello from the host\n640 0\n755 0\ndeep\n");

    // Container → host: a file (renamed) and a directory.
    pelagos(
        &d,
        &[
            "exec", "files", "sh", "-c",
            "mkdir -p /data/in && echo made inside > /data/in/f && chmod 600 /data/in/f && chmod 750 /data/in",
        ],
    );
    let back = host.path().join("back.txt");
    d.ok(&["cp", "files:/data/in/f", &back.to_string_lossy()]);
    assert_eq!(
        std::fs::read_to_string(&back).expect("read"),
        "made inside\n"
    );
    assert_eq!(mode_of(&back), 0o600);
    let out_dir = host.path().join("out");
    d.ok(&["cp", "files:/data/in", &out_dir.to_string_lossy()]);
    assert_eq!(
        std::fs::read_to_string(out_dir.join("f")).expect("read"),
        "made inside\n"
    );
    assert_eq!(mode_of(&out_dir), 0o750);

    // -L follows a symlink through the stat's linkTarget; without it the link is copied.
    pelagos(&d, &["exec", "files", "ln", "-s", "in/f", "/data/link"]);
    let followed = host.path().join("followed");
    d.ok(&["cp", "-L", "files:/data/link", &followed.to_string_lossy()]);
    assert_eq!(
        std::fs::read_to_string(&followed).expect("read"),
        "made inside\n"
    );
    let link = host.path().join("link");
    d.ok(&["cp", "files:/data/link", &link.to_string_lossy()]);
    assert_eq!(
        std::fs::read_link(&link).expect("a symlink"),
        Path::new("in/f")
    );

    // -a keeps the owners of the stream.
    let owned = host.path().join("owned");
    std::fs::write(&owned, "mine\n").expect("write");
    std::os::unix::fs::chown(&owned, Some(1234), Some(4321)).expect("chown");
    d.ok(&["cp", "-a", &owned.to_string_lossy(), "files:/tmp/owned"]);
    let seen = pelagos(&d, &["exec", "files", "stat", "-c", "%u:%g", "/tmp/owned"]);
    assert_eq!(seen, "1234:4321\n");

    // A missing path: moby's message; nothing made on the host.
    let (code, stderr) = d.fail(&["cp", "files:/missing", &host.path().to_string_lossy()]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Could not find the file /missing in container files"),
        "{stderr}"
    );
    assert!(!host.path().join("missing").exists());

    // The stat header of HEAD.
    let (code, body) = d.http("HEAD", "/containers/files/archive?path=/data/in", None);
    assert_eq!(code, 200, "{body}");
    let header = body
        .lines()
        .find_map(|l| l.strip_prefix("X-Docker-Container-Path-Stat: "))
        .or_else(|| {
            body.lines()
                .find_map(|l| l.strip_prefix("x-docker-container-path-stat: "))
        })
        .expect("the stat header");
    let stat = base64_json(header.trim());
    assert_eq!(stat["name"], "in");
    assert_eq!(stat["mode"], (1u64 << 31) | 0o750);
    let (code, _) = d.http("HEAD", "/containers/files/archive?path=/nope", None);
    assert_eq!(code, 404);
    let (code, _) = d.http("HEAD", "/containers/files/archive", None);
    assert_eq!(code, 400);
    let (code, body) = d.http("GET", "/containers/nosuch/archive?path=/", None);
    assert_eq!(code, 404, "{body}");

    // GET: the tar of the directory, its entries named from its last component.
    let got = host.path().join("got.tar");
    let fetched = std::process::Command::new("curl")
        .args(["-sf", "-o"])
        .arg(&got)
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg("http://localhost/v1.24/containers/files/archive?path=/data/in")
        .status()
        .expect("curl");
    assert!(fetched.success());
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&got)
        .output()
        .expect("tar -t");
    let mut names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(String::from)
        .collect();
    names.sort();
    assert_eq!(names, ["in/", "in/f"]);

    // A tar replacing the directory /data/in by a file: refused when asked (as the docker CLI
    // always asks), done otherwise (docker-py's put_archive does not ask).
    let staging = host.path().join("staging");
    std::fs::create_dir_all(&staging).expect("mkdir");
    std::fs::write(staging.join("in"), "now a file\n").expect("write");
    let tar = host.path().join("in.tar");
    let made = std::process::Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .arg("-cf")
        .arg(&tar)
        .arg("in")
        .status()
        .expect("tar");
    assert!(made.success());
    let (code, body) = put_tar(
        &d,
        "/containers/files/archive?path=/data&noOverwriteDirNonDir=1",
        &tar,
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("cannot overwrite directory"), "{body}");
    let (code, body) = put_tar(&d, "/containers/files/archive?path=/data", &tar);
    assert_eq!(code, 200, "{body}");
    let seen = pelagos(&d, &["exec", "files", "cat", "/data/in"]);
    assert_eq!(seen, "now a file\n");
    // And back: a directory replacing the file.
    let staging = host.path().join("staging2");
    std::fs::create_dir_all(staging.join("in")).expect("mkdir");
    std::fs::write(staging.join("in/x"), "a dir again\n").expect("write");
    let tar2 = host.path().join("in2.tar");
    let made = std::process::Command::new("tar")
        .arg("-C")
        .arg(&staging)
        .arg("-cf")
        .arg(&tar2)
        .arg("in")
        .status()
        .expect("tar");
    assert!(made.success());
    let (code, body) = put_tar(&d, "/containers/files/archive?path=/data", &tar2);
    assert_eq!(code, 200, "{body}");
    let seen = pelagos(&d, &["exec", "files", "cat", "/data/in/x"]);
    assert_eq!(seen, "a dir again\n");
    let (code, body) = put_tar(&d, "/containers/files/archive?path=/nowhere", &tar);
    assert_eq!(code, 404, "{body}");
    assert!(
        body.contains("Could not find the file /nowhere in container files"),
        "{body}"
    );

    // A read-only root filesystem refuses copies (not reads), as moby's.
    run_detached(&d, &image, "ro", &["--read-only"], "exec sleep 600");
    let (code, stderr) = d.fail(&["cp", &file.to_string_lossy(), "ro:/tmp/"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("container rootfs is marked read-only"),
        "{stderr}"
    );
    d.ok(&[
        "cp",
        "ro:/bin/sh",
        &host.path().join("sh").to_string_lossy(),
    ]);

    remove_all_and_check(&d, &["files", "ro"]);
}

/// `PUT` of the tar file at `tar` to `path`: status and body.
fn put_tar(d: &Daemon, path: &str, tar: &Path) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-X",
            "PUT",
            "--unix-socket",
        ])
        .arg(&d.socket)
        .args(["-H", "Content-Type: application/x-tar", "--data-binary"])
        .arg(format!("@{}", tar.display()))
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("spawn curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The JSON of a base64 header.
fn base64_json(text: &str) -> serde_json::Value {
    let out = std::process::Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .expect("base64 -d");
    serde_json::from_slice(&out.stdout).expect("JSON in the header")
}

fn sha256(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn cp_into_a_stopped_container_and_a_large_file_both_ways() {
    let (d, image) = daemon_with_busybox();
    run_to_end(
        &d,
        &image,
        "parked",
        "test -f /big.bin && sha256sum /big.bin || true",
    );
    let host = tempfile::tempdir().expect("tempdir");

    // 50 MiB of a pattern that is no run of zeros.
    let big = host.path().join("big.bin");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).expect("create"));
    for i in 0u32..(50 * 1024 * 1024 / 4) {
        f.write_all(&i.wrapping_mul(2_654_435_761).to_le_bytes())
            .expect("write");
    }
    f.flush().expect("flush");
    drop(f);

    d.ok(&["cp", &big.to_string_lossy(), "parked:/big.bin"]);
    let back = host.path().join("back.bin");
    d.ok(&["cp", "parked:/big.bin", &back.to_string_lossy()]);
    assert_eq!(sha256(&back), sha256(&big));

    // The copy is in the container's filesystem when it runs again.
    let seen = pelagos(&d, &["start", "-a", "parked"]);
    assert!(seen.starts_with(&sha256(&big)), "{seen}");
    remove_all_and_check(&d, &["parked"]);
}
