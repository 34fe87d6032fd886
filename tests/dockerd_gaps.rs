//! pelagos-dockerd's less travelled container endpoints: the websocket attach (a real
//! websocket client), terminal resizes of containers and execs (seen by `stty size` inside),
//! attach without `stream` (the logs so far, then the end) and `docker restart` of an
//! `--rm` container (kept, as moby keeps it).

mod dockerd_support;

use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use dockerd_support::{served_busybox, wait_for, Daemon, ServedBusybox};
use tungstenite::{Message, WebSocket};

/// A daemon with busybox pulled through it.
fn daemon_with_busybox() -> (Daemon, ServedBusybox) {
    let d = Daemon::start();
    let served = served_busybox();
    d.ok(&["pull", &served.image]);
    (d, served)
}

/// A websocket to `path` on the daemon's socket, or the HTTP status that refused it.
fn ws_connect(d: &Daemon, path: &str) -> Result<WebSocket<UnixStream>, u16> {
    let stream = UnixStream::connect(&d.socket).expect("connect to the daemon");
    // A daemon that never answers fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    match tungstenite::client::client(format!("ws://localhost{path}"), stream) {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            Ok(ws)
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("websocket handshake to {path}: {e}"),
    }
}

/// What the websocket's data messages carry until `want` has arrived (or the stream ends).
fn read_until(ws: &mut WebSocket<UnixStream>, want: &str) -> String {
    let mut got = String::new();
    while !got.contains(want) {
        match ws.read() {
            Ok(Message::Binary(b)) => got.push_str(&String::from_utf8_lossy(&b)),
            Ok(Message::Text(t)) => got.push_str(t.as_str()),
            Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => break,
            Ok(_) => {}
            Err(e) => panic!("reading the websocket (had {got:?}): {e}"),
        }
    }
    got
}

/// Everything the websocket carries until the daemon closes it; whether it sent a Close.
fn read_to_close(ws: &mut WebSocket<UnixStream>) -> (String, bool) {
    let mut got = String::new();
    loop {
        match ws.read() {
            Ok(Message::Binary(b)) => got.push_str(&String::from_utf8_lossy(&b)),
            Ok(Message::Text(t)) => got.push_str(t.as_str()),
            Ok(Message::Close(_)) => return (got, true),
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return (got, false),
            Err(e) => panic!("reading the websocket (had {got:?}): {e}"),
        }
    }
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    d.ok(&["inspect", "-f", format, name]).trim().to_string()
}

#[test]
fn attach_ws_carries_output_and_stdin_and_ends_with_either_side() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    d.ok(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "--name",
        "echoer",
        img,
        "cat",
    ]);
    let path = "/v1.41/containers/echoer/attach/ws?stream=1&stdin=1&stdout=1&stderr=1";
    let mut ws = ws_connect(&d, path).expect("attach/ws");
    ws.send(Message::text("hello\n")).expect("send text");
    assert!(read_until(&mut ws, "hello\n").contains("hello\n"));
    ws.send(Message::binary(b"binary\n".to_vec()))
        .expect("send binary");
    assert!(read_until(&mut ws, "binary\n").contains("binary\n"));
    // The client's close ends the session; the container (no StdinOnce) keeps its stdin.
    ws.close(None).expect("close");
    let (rest, _) = read_to_close(&mut ws);
    assert!(!rest.contains("hello"), "{rest:?}");
    assert_eq!(inspect(&d, "echoer", "{{.State.Running}}"), "true");
    let mut again = ws_connect(&d, path).expect("attach/ws again");
    again.send(Message::text("again\n")).expect("send");
    assert!(read_until(&mut again, "again\n").contains("again\n"));
    drop(again);

    // The container's end closes the websocket from the daemon's side.
    d.ok(&[
        "run",
        "-d",
        "-i",
        "--network",
        "none",
        "--name",
        "once",
        img,
        "sh",
        "-c",
        "read line; echo got:$line",
    ]);
    let mut ws = ws_connect(
        &d,
        "/v1.41/containers/once/attach/ws?stream=1&stdin=1&stdout=1",
    )
    .expect("attach/ws");
    ws.send(Message::text("bye\n")).expect("send");
    let (got, closed) = read_to_close(&mut ws);
    assert!(got.contains("got:bye"), "{got:?}");
    assert!(closed, "the daemon did not send a Close");
    wait_for("the container's exit", || {
        inspect(&d, "once", "{{.State.Status}}") == "exited"
    });

    // Without `stream`: the log so far, then the close (stopped containers too).
    let mut ws = ws_connect(
        &d,
        "/v1.41/containers/once/attach/ws?logs=1&stream=0&stdout=1",
    )
    .expect("attach/ws logs");
    let (got, closed) = read_to_close(&mut ws);
    assert_eq!(got, "got:bye\n");
    assert!(closed);

    assert_eq!(
        ws_connect(&d, "/v1.41/containers/nosuch/attach/ws?stream=1").err(),
        Some(404)
    );
    d.ok(&["rm", "-f", "echoer", "once"]);
    d.assert_no_container_leftovers();
}

/// `sh -c LINE` under `script` (util-linux), so that what it runs has a terminal; what the
/// terminal showed and the exit code.
fn in_terminal(d: &Daemon, line: &str) -> (i32, String) {
    let docker = d.docker(&[]);
    let env: Vec<String> = docker
        .get_envs()
        .filter_map(|(k, v)| Some(format!("{}='{}'", k.to_str()?, v?.to_str()?)))
        .collect();
    let line = format!("export {}; {line}", env.join(" "));
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

/// The Id of an exec made and started detached in `container`.
fn detached_exec(d: &Daemon, container: &str, body: &str) -> String {
    let (code, text) = d.http(
        "POST",
        &format!("/v1.41/containers/{container}/exec"),
        Some(body),
    );
    assert_eq!(code, 201, "{text}");
    let created: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let id = created["Id"].as_str().expect("an Id").to_string();
    let (code, text) = d.http(
        "POST",
        &format!("/v1.41/exec/{id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(code, 200, "{text}");
    id
}

#[test]
fn resizes_reach_the_terminals_of_containers_and_execs() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let docker = d.docker(&[]).get_program().to_string_lossy().into_owned();

    // The docker CLI sizes the remote terminal as its own (create, then resize). busybox's
    // stty fails on a terminal of no size: wait for one (a minute at most).
    let wait_sized = "'i=0; until [ -n \"$(stty size 2>/dev/null)\" ] || [ $i -ge 600 ]; do \
                      i=$((i+1)); sleep 0.1; done; stty size'";
    let (code, screen) = in_terminal(
        &d,
        &format!(
            "stty rows 33 cols 99; {docker} run -it --rm --network none {img} sh -c {wait_sized}"
        ),
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("33 99"), "{screen:?}");

    d.ok(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "--name",
        "term",
        img,
        "sleep",
        "1000",
    ]);
    let (code, screen) = in_terminal(
        &d,
        &format!("stty rows 21 cols 77; {docker} exec -it term sh -c {wait_sized}"),
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("21 77"), "{screen:?}");

    // The container's own terminal, read through its init's stdin.
    let (code, body) = d.http("POST", "/v1.41/containers/term/resize?h=41&w=123", None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        d.ok(&["exec", "term", "stty", "-F", "/proc/1/fd/0", "size"]),
        "41 123\n"
    );

    // An exec's terminal: it writes its size where the test reads it.
    let id = detached_exec(
        &d,
        "term",
        r#"{"Tty":true,"Cmd":["sh","-c","while :; do stty size > /tmp/s.new; mv /tmp/s.new /tmp/size; sleep 0.1; done"]}"#,
    );
    let (code, body) = d.http("POST", &format!("/v1.41/exec/{id}/resize?h=17&w=91"), None);
    assert_eq!(code, 200, "{body}");
    wait_for("the exec's new size", || {
        d.run(&["exec", "term", "cat", "/tmp/size"]).stdout == b"17 91\n"
    });

    // Without a tty there is nothing to resize: moby answers 200 all the same.
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "plain",
        img,
        "sleep",
        "1000",
    ]);
    let (code, body) = d.http("POST", "/v1.41/containers/plain/resize?h=10&w=10", None);
    assert_eq!(code, 200, "{body}");
    let plain_exec = detached_exec(&d, "plain", r#"{"Cmd":["sleep","1000"]}"#);
    let (code, body) = d.http(
        "POST",
        &format!("/v1.41/exec/{plain_exec}/resize?h=10&w=10"),
        None,
    );
    assert_eq!(code, 200, "{body}");

    // Refusals: not running 409, unknown 404, not numbers 400.
    d.ok(&[
        "create",
        "-t",
        "--network",
        "none",
        "--name",
        "idle",
        img,
        "true",
    ]);
    let (code, body) = d.http("POST", "/v1.41/containers/idle/resize?h=10&w=10", None);
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("is not running"), "{body}");
    let (code, _) = d.http("POST", "/v1.41/containers/nosuch/resize?h=10&w=10", None);
    assert_eq!(code, 404);
    let (code, _) = d.http("POST", "/v1.41/exec/nosuch/resize?h=10&w=10", None);
    assert_eq!(code, 404);
    let (code, _) = d.http("POST", "/v1.41/containers/term/resize?h=x&w=10", None);
    assert_eq!(code, 400);
    let (code, _) = d.http("POST", &format!("/v1.41/exec/{id}/resize?h=10"), None);
    assert_eq!(code, 400);

    d.ok(&["rm", "-f", "term", "plain", "idle"]);
    d.assert_no_container_leftovers();
}

/// `POST path` with curl (which gives up after a minute rather than hang): status and body.
fn post_bytes(d: &Daemon, path: &str) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "60",
            "-X",
            "POST",
            "-o",
            "-",
            "-w",
            "%{http_code}",
        ])
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg(format!("http://localhost{path}"))
        .output()
        .expect("spawn curl");
    let text = out.stdout;
    let split = text.len().saturating_sub(3);
    let code = String::from_utf8_lossy(&text[split..]).parse().unwrap_or(0);
    (code, text[..split].to_vec())
}

/// Docker's multiplexed frame of `payload` on `stream`.
fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![stream, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn attach_without_stream_returns_the_logs_so_far_and_ends() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "done",
        img,
        "sh",
        "-c",
        "echo one; echo two >&2",
    ]);
    let (code, body) = post_bytes(
        &d,
        "/v1.41/containers/done/attach?logs=1&stream=0&stdout=1&stderr=1",
    );
    assert_eq!(code, 200);
    // Two pipes read by the monitor: the log may hold them in either order.
    let both = [frame(1, b"one\n"), frame(2, b"two\n")].concat();
    let swapped = [frame(2, b"two\n"), frame(1, b"one\n")].concat();
    assert!(
        body == both || body == swapped,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (_, body) = post_bytes(&d, "/v1.41/containers/done/attach?logs=1&stream=0&stdout=1");
    assert_eq!(body, frame(1, b"one\n"));
    // Neither logs nor stream: nothing, at once.
    let (code, body) = post_bytes(&d, "/v1.41/containers/done/attach?stdout=1");
    assert_eq!((code, body.len()), (200, 0));

    // A running container: what it wrote so far, and the request ends while it runs on.
    d.ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "talker",
        img,
        "sh",
        "-c",
        "echo early; sleep 1000",
    ]);
    wait_for("the first line in the log", || {
        d.ok(&["logs", "talker"]) == "early\n"
    });
    let (code, body) = post_bytes(
        &d,
        "/v1.41/containers/talker/attach?logs=1&stream=0&stdout=1&stderr=1",
    );
    assert_eq!((code, body), (200, frame(1, b"early\n")));
    // With a tty the log comes raw.
    d.ok(&[
        "run",
        "-d",
        "-t",
        "--network",
        "none",
        "--name",
        "tty",
        img,
        "echo",
        "raw",
    ]);
    wait_for("the tty container's exit", || {
        inspect(&d, "tty", "{{.State.Status}}") == "exited"
    });
    let (_, body) = post_bytes(&d, "/v1.41/containers/tty/attach?logs=1&stream=0&stdout=1");
    assert_eq!(String::from_utf8_lossy(&body).replace('\r', ""), "raw\n");
    assert_eq!(inspect(&d, "talker", "{{.State.Running}}"), "true");
    let (code, _) = post_bytes(&d, "/v1.41/containers/nosuch/attach?logs=1&stream=0");
    assert_eq!(code, 404);
    d.ok(&["rm", "-f", "done", "talker", "tty"]);
    d.assert_no_container_leftovers();
}

#[test]
fn restart_keeps_an_auto_remove_container_until_it_stops() {
    let (d, served) = daemon_with_busybox();
    d.ok(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "--name",
        "kept",
        &served.image,
        "sleep",
        "1000",
    ]);
    d.ok(&["exec", "kept", "sh", "-c", "echo written > /file"]);
    let pid = inspect(&d, "kept", "{{.State.Pid}}");
    d.ok(&["restart", "-t", "1", "kept"]);
    assert_eq!(inspect(&d, "kept", "{{.State.Running}}"), "true");
    assert_ne!(inspect(&d, "kept", "{{.State.Pid}}"), pid);
    assert_eq!(inspect(&d, "kept", "{{.HostConfig.AutoRemove}}"), "true");
    // The same container: its root filesystem's changes survived the restart.
    assert_eq!(d.ok(&["exec", "kept", "cat", "/file"]), "written\n");
    d.ok(&["restart", "-t", "1", "kept"]);
    assert_eq!(inspect(&d, "kept", "{{.State.Running}}"), "true");

    // A stop ends it as `--rm` says.
    d.ok(&["stop", "-t", "1", "kept"]);
    wait_for("the --rm container's removal", || {
        !d.run(&["inspect", "kept"]).status.success()
    });
    assert_eq!(d.ok(&["ps", "-aq"]), "");
    d.assert_no_container_leftovers();
}

#[test]
fn cp_reaches_the_volumes_and_binds_of_a_stopped_container() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let host = tempfile::tempdir().expect("tempdir");
    let bound = host.path().join("bound");
    let outside = host.path().join("outside");
    std::fs::create_dir_all(&bound).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("secret"), "host only\n").expect("write");
    let file = host.path().join("in.txt");
    std::fs::write(&file, "copied in\n").expect("write");
    let file = file.to_string_lossy().into_owned();

    let read_only = host.path().join("read-only");
    std::fs::create_dir_all(&read_only).expect("mkdir");
    std::fs::write(read_only.join("r.txt"), "read only\n").expect("write");

    d.ok(&["volume", "create", "vol"]);
    let bind = format!("{}:/bound", bound.display());
    let ro_bind = format!("{}:/ro:ro", read_only.display());
    d.ok(&[
        "run",
        "--network",
        "none",
        "--name",
        "holder",
        "-v",
        "vol:/data",
        "-v",
        &bind,
        "-v",
        &ro_bind,
        img,
        "true",
    ]);
    // Into the volume and the bind: where the next container (and the host) sees it.
    d.ok(&["cp", &file, "holder:/data/in.txt"]);
    d.ok(&["cp", &file, "holder:/bound/in.txt"]);
    let read = |path: &str| {
        d.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "vol:/data",
            img,
            "cat",
            path,
        ])
    };
    assert_eq!(read("/data/in.txt"), "copied in\n");
    assert_eq!(
        std::fs::read_to_string(bound.join("in.txt")).expect("the bind's file"),
        "copied in\n"
    );
    // Nothing of it in the container's own filesystem.
    let diff = d.ok(&["diff", "holder"]);
    assert!(!diff.contains("in.txt"), "{diff}");

    // Out of them.
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "vol:/data",
        img,
        "sh",
        "-c",
        "echo from the volume > /data/out.txt",
    ]);
    std::fs::write(bound.join("out.txt"), "from the bind\n").expect("write");
    let back = host.path().join("back");
    std::fs::create_dir_all(&back).expect("mkdir");
    let to = |name: &str| back.join(name).to_string_lossy().into_owned();
    d.ok(&["cp", "holder:/data/out.txt", &to("vol.txt")]);
    d.ok(&["cp", "holder:/bound/out.txt", &to("bind.txt")]);
    assert_eq!(
        std::fs::read_to_string(back.join("vol.txt")).expect("read"),
        "from the volume\n"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("bind.txt")).expect("read"),
        "from the bind\n"
    );
    // A read-only bind: read, never written.
    d.ok(&["cp", "holder:/ro/r.txt", &to("ro.txt")]);
    assert_eq!(
        std::fs::read_to_string(back.join("ro.txt")).expect("read"),
        "read only\n"
    );
    let (_, err) = d.fail(&["cp", &file, "holder:/ro/"]);
    assert!(err.contains("read-only"), "{err}");
    assert!(!read_only.join("in.txt").exists());

    // Symlinks in a volume resolve inside the container: never to the host's files.
    let secret = outside.join("secret").to_string_lossy().into_owned();
    let script = format!(
        "ln -s {secret} /data/leak; ln -s {} /data/into",
        outside.display()
    );
    d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "vol:/data",
        img,
        "sh",
        "-c",
        &script,
    ]);
    let (_, err) = d.fail(&["cp", "-L", "holder:/data/leak", &to("leak")]);
    assert!(err.contains("Could not find the file"), "{err}");
    assert!(!back.join("leak").exists());
    let _ = d.run(&["cp", &file, "holder:/data/into/planted"]);
    assert!(
        !outside.join("planted").exists(),
        "a copy left the container"
    );
    assert_eq!(
        std::fs::read_to_string(outside.join("secret")).expect("read"),
        "host only\n"
    );

    d.ok(&["rm", "holder"]);
    d.ok(&["volume", "rm", "vol"]);
    d.assert_no_container_leftovers();
}

/// `GET path` with curl and an optional `X-Registry-Auth`: status and body.
fn get_with_auth(d: &Daemon, path: &str, auth: Option<&str>) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args(["-s", "-m", "120", "-o", "-", "-w", "\n%{http_code}"])
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg(format!("http://localhost{path}"));
    if let Some(a) = auth {
        c.args(["-H", &format!("X-Registry-Auth: {a}")]);
    }
    let out = c.output().expect("spawn curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The venv scripts/deps makes with the Python clients (docker-py).
fn venv_python() -> &'static str {
    let python = "/opt/pelagos-tests/venv/bin/python";
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run scripts/deps (it installs docker-py for these tests)"
    );
    python
}

#[test]
fn distribution_inspect_describes_what_the_registry_serves() {
    use base64::Engine as _;
    let d = Daemon::start();
    let served = served_busybox();
    let host = served.registry.host();
    let path = |image: &str| format!("/v1.41/distribution/{image}/json");
    let (code, body) = get_with_auth(&d, &path(&served.image), None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let descriptor = &v["Descriptor"];
    let digest = descriptor["digest"].as_str().expect("a digest").to_string();
    assert!(digest.starts_with("sha256:"), "{body}");
    assert!(
        descriptor["mediaType"]
            .as_str()
            .is_some_and(|m| m.contains("manifest")),
        "{body}"
    );
    assert!(descriptor["size"].as_u64().is_some_and(|s| s > 0), "{body}");
    assert_eq!(v["Platforms"][0]["os"], "linux", "{body}");
    assert!(v["Platforms"][0]["architecture"].is_string(), "{body}");

    // The digest a pull records, and the same answer by digest.
    d.ok(&["pull", &served.image]);
    let repo_digest = d.ok(&["inspect", "-f", "{{index .RepoDigests 0}}", &served.image]);
    assert!(
        repo_digest.trim().ends_with(&format!("@{digest}")),
        "{repo_digest} vs {digest}"
    );
    let (code, body) = get_with_auth(&d, &path(&format!("{host}/box@{digest}")), None);
    assert_eq!(code, 200, "{body}");
    let by_digest: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(by_digest["Descriptor"], *descriptor);

    // The SDK reads it: docker-py's get_registry_data.
    let platform = format!(
        "linux/{}",
        v["Platforms"][0]["architecture"].as_str().unwrap_or("")
    );
    let out = Command::new(venv_python())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/clients/registry_data.py"
        ))
        .arg(&d.socket)
        .args([served.image.as_str(), digest.as_str(), platform.as_str()])
        .output()
        .expect("spawn python");
    assert!(
        out.status.success(),
        "docker-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, body) = get_with_auth(&d, &path(&format!("{host}/box:nosuch")), None);
    assert_eq!(code, 404, "{body}");
    let (code, body) = get_with_auth(&d, &path(&format!("{host}/nosuch:1")), None);
    assert_eq!(code, 404, "{body}");
    let (code, body) = get_with_auth(&d, &path("Bad/Name"), None);
    assert_eq!(code, 400, "{body}");

    // A registry that wants credentials: 401 without them, the answer with them.
    let image = pelagos_testkit::images::busybox()
        .expect("build busybox")
        .cmd(["sh"]);
    let registry = pelagos_testkit::registry::Registry::start(
        pelagos_testkit::registry::Auth::htpasswd("alice", "s3cret"),
    )
    .expect("start registry");
    let layouts = tempfile::tempdir().expect("tempdir");
    let dir = layouts.path().join("box");
    image.write(&dir, "1").expect("write layout");
    registry
        .push_oci_layout(&dir, "private:1", false)
        .expect("push");
    let private = path(&format!("{}/private:1", registry.host()));
    let (code, body) = get_with_auth(&d, &private, None);
    assert_eq!(code, 401, "{body}");
    let auth = base64::engine::general_purpose::URL_SAFE.encode(format!(
        r#"{{"username":"alice","password":"s3cret","serveraddress":"{}"}}"#,
        registry.host()
    ));
    let (code, body) = get_with_auth(&d, &private, Some(&auth));
    assert_eq!(code, 200, "{body}");
    let wrong = base64::engine::general_purpose::URL_SAFE.encode(format!(
        r#"{{"username":"alice","password":"wrong","serveraddress":"{}"}}"#,
        registry.host()
    ));
    let (code, body) = get_with_auth(&d, &private, Some(&wrong));
    assert_eq!(code, 401, "{body}");
}

#[test]
fn a_request_without_credentials_pulls_anonymously_whatever_the_daemon_has_stored() {
    use base64::Engine as _;
    let image = pelagos_testkit::images::busybox()
        .expect("build busybox")
        .cmd(["sh"]);
    let registry = pelagos_testkit::registry::Registry::start(
        pelagos_testkit::registry::Auth::htpasswd("alice", "s3cret"),
    )
    .expect("start registry");
    let layouts = tempfile::tempdir().expect("tempdir");
    let dir = layouts.path().join("box");
    image.write(&dir, "1").expect("write layout");
    registry
        .push_oci_layout(&dir, "private:1", false)
        .expect("push");
    let host = registry.host();

    // The daemon's own environment names a credential file holding alice's password.
    let stored = tempfile::tempdir().expect("tempdir");
    let token = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        stored.path().join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{token}"}}}}}}"#),
    )
    .expect("write config.json");
    // Only for the daemon's start: every command the tests run sets DOCKER_CONFIG itself.
    std::env::set_var("DOCKER_CONFIG", stored.path());
    let d = Daemon::start();
    std::env::remove_var("DOCKER_CONFIG");

    // moby reads no credential file: the docker CLI without a login is refused.
    let private = format!("{host}/private:1");
    let (_, err) = d.fail(&["pull", &private]);
    assert!(err.contains("pull access denied"), "{err}");
    let (code, body) = d.http(
        "POST",
        &format!("/v1.41/images/create?fromImage={host}/private&tag=1"),
        None,
    );
    assert_eq!(code, 404, "{body}");
    // The request's own credentials do it.
    let auth = base64::engine::general_purpose::URL_SAFE.encode(format!(
        r#"{{"username":"alice","password":"s3cret","serveraddress":"{host}"}}"#
    ));
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "120",
            "-X",
            "POST",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(["-H", &format!("X-Registry-Auth: {auth}")])
        .arg("--unix-socket")
        .arg(&d.socket)
        .arg(format!(
            "http://localhost/v1.41/images/create?fromImage={host}/private&tag=1"
        ))
        .output()
        .expect("spawn curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert_eq!(
        inspect(&d, &private, "{{index .RepoTags 0}}"),
        private.as_str()
    );
    // Identity tokens: no refresh-token flow here, said plainly.
    let (code, body) = d.http(
        "POST",
        "/v1.41/auth",
        Some(&format!(
            r#"{{"identitytoken":"refresh","serveraddress":"{host}"}}"#
        )),
    );
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("identity tokens"), "{body}");
}

#[test]
fn network_mode_is_shown_as_asked_and_the_network_as_resolved() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    // The docker CLI sends `default` when no --network is given.
    d.ok(&["create", "--name", "unnamed", img, "true"]);
    assert_eq!(
        inspect(&d, "unnamed", "{{.HostConfig.NetworkMode}}"),
        "default"
    );
    // This daemon's default network is `none` (see dockerd_support).
    let networks = inspect(&d, "unnamed", "{{json .NetworkSettings.Networks}}");
    assert!(networks.contains("\"none\""), "{networks}");
    d.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "named",
        img,
        "true",
    ]);
    assert_eq!(inspect(&d, "named", "{{.HostConfig.NetworkMode}}"), "none");

    // Nothing sent at all is `default` too; the list shows the same.
    let body = format!(r#"{{"Image":"{img}","Cmd":["true"]}}"#);
    let (code, text) = d.http("POST", "/v1.41/containers/create?name=bare", Some(&body));
    assert_eq!(code, 201, "{text}");
    assert_eq!(
        inspect(&d, "bare", "{{.HostConfig.NetworkMode}}"),
        "default"
    );
    let (_, list) = d.http(
        "GET",
        "/v1.41/containers/json?all=1&filters=%7B%22name%22%3A%5B%22bare%22%5D%7D",
        None,
    );
    let rows: serde_json::Value = serde_json::from_str(&list).expect("JSON");
    assert_eq!(rows[0]["HostConfig"]["NetworkMode"], "default", "{list}");
    // It runs on the resolved network.
    d.ok(&["start", "bare"]);
    wait_for("the container's exit", || {
        inspect(&d, "bare", "{{.State.Status}}") == "exited"
    });
    assert_eq!(inspect(&d, "bare", "{{.State.ExitCode}}"), "0");
    // Its monitor's writes keep what the client asked.
    assert_eq!(
        inspect(&d, "bare", "{{.HostConfig.NetworkMode}}"),
        "default"
    );
    d.ok(&["rm", "unnamed", "named", "bare"]);
    d.assert_no_container_leftovers();
}

#[test]
fn cp_into_the_volumes_of_a_container_that_never_started() {
    let (d, served) = daemon_with_busybox();
    let img = served.image.as_str();
    let host = tempfile::tempdir().expect("tempdir");
    let file = host.path().join("seed.txt");
    std::fs::write(&file, "seeded\n").expect("write");
    let file = file.to_string_lossy().into_owned();
    // A named and an anonymous volume, made by the copy as the first start would make them.
    d.ok(&[
        "create",
        "--network",
        "none",
        "--name",
        "fresh",
        "-v",
        "named:/data",
        "-v",
        "/anon",
        img,
        "cat",
        "/data/seed.txt",
        "/anon/seed.txt",
    ]);
    d.ok(&["cp", &file, "fresh:/data/seed.txt"]);
    d.ok(&["cp", &file, "fresh:/anon/seed.txt"]);
    let out = d.ok(&["start", "-a", "fresh"]);
    assert_eq!(out, "seeded\nseeded\n");
    // The named volume is the one other containers mount.
    let read = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "named:/data",
        img,
        "cat",
        "/data/seed.txt",
    ]);
    assert_eq!(read, "seeded\n");
    let volumes = inspect(&d, "fresh", "{{range .Mounts}}{{.Name}} {{end}}");
    assert_eq!(volumes.split_whitespace().count(), 2, "{volumes}");
    d.ok(&["rm", "-v", "fresh"]);
    d.ok(&["volume", "rm", "named"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]), "");
    d.assert_no_container_leftovers();
}
