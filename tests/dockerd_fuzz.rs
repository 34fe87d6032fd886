//! Bad input on every endpoint: schemathesis drives pelagos-dockerd from the Docker Engine
//! API 1.41 spec (no crash, no 5xx for client errors, errors as Docker's JSON, nothing left
//! by a refused request), then focused regressions for what it found, and refusals that
//! reach a client still sending its body.

mod dockerd_support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use dockerd_support::{served_busybox, wait_for, Daemon, Options};
use serde_json::Value;

/// schemathesis, installed by `scripts/deps` in the tests' venv.
const SCHEMATHESIS: &str = "/opt/pelagos-tests/venv/bin/schemathesis";

/// The API spec the fuzzing is driven by.
fn spec() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/docker-engine-api-v1.41.yaml");
    assert!(
        path.is_file(),
        "the API spec is missing: {}",
        path.display()
    );
    path
}

fn hooks() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/clients/fuzz_hooks.py")
}

/// A TCP port on the loopback relaying each connection to the daemon's unix socket, byte
/// for byte both ways (so 101 upgrades pass too): schemathesis speaks HTTP over TCP only,
/// and the daemon serves plain HTTP on unix sockets only (TCP needs TLS).
struct Relay {
    addr: SocketAddr,
}

impl Relay {
    fn start(socket: &Path) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("the relay's address");
        let socket = socket.to_path_buf();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let socket = socket.clone();
                std::thread::spawn(move || relay_one(client, &socket));
            }
        });
        Relay { addr }
    }
}

/// Copies one connection both ways until each side has ended; an end is passed on as a
/// half-close, as the client or the daemon made it.
fn relay_one(client: TcpStream, socket: &Path) {
    let Ok(daemon) = UnixStream::connect(socket) else {
        return;
    };
    let _ = client.set_nodelay(true);
    let (Ok(mut client_in), Ok(mut daemon_out)) = (client.try_clone(), daemon.try_clone()) else {
        return;
    };
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut daemon_out);
        let _ = daemon_out.shutdown(std::net::Shutdown::Write);
    });
    let (mut daemon_in, mut client_out) = (daemon, client);
    let _ = std::io::copy(&mut daemon_in, &mut client_out);
    let _ = client_out.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}

/// What the daemon holds: container ids, image ids, tags, network ids, volume names.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Inventory {
    containers: BTreeSet<String>,
    images: BTreeSet<String>,
    tags: BTreeSet<String>,
    networks: BTreeSet<String>,
    volumes: BTreeSet<String>,
}

fn get_json(d: &Daemon, path: &str) -> Value {
    let (code, body) = d.http("GET", path, None);
    assert_eq!(code, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

fn strings(list: &Value, key: &str) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item[key].as_str().map(String::from))
        .collect()
}

impl Inventory {
    fn of(d: &Daemon) -> Inventory {
        let images = get_json(d, "/v1.41/images/json?all=1");
        let mut tags = BTreeSet::new();
        for image in images.as_array().into_iter().flatten() {
            for tag in image["RepoTags"].as_array().into_iter().flatten() {
                tags.extend(tag.as_str().map(String::from));
            }
        }
        Inventory {
            containers: strings(&get_json(d, "/v1.41/containers/json?all=1"), "Id"),
            images: strings(&images, "Id"),
            tags,
            networks: strings(&get_json(d, "/v1.41/networks"), "Id"),
            volumes: strings(&get_json(d, "/v1.41/volumes")["Volumes"], "Name"),
        }
    }

    /// What `self` holds that `before` did not.
    fn added_since(&self, before: &Inventory) -> Inventory {
        let new = |a: &BTreeSet<String>, b: &BTreeSet<String>| a.difference(b).cloned().collect();
        Inventory {
            containers: new(&self.containers, &before.containers),
            images: new(&self.images, &before.images),
            tags: new(&self.tags, &before.tags),
            networks: new(&self.networks, &before.networks),
            volumes: new(&self.volumes, &before.volumes),
        }
    }
}

/// The objects that successful creates made, from the hooks' log (`added_tags`: the new
/// tags the run left, which successful tag requests account for).
fn created_by_successes(log: &Path, added_tags: &BTreeSet<String>) -> Inventory {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut made = Inventory::default();
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).expect("a line of the created log");
        let answer: Value =
            serde_json::from_str(entry["response"].as_str().unwrap_or("")).unwrap_or(Value::Null);
        let field = |key: &str| answer[key].as_str().map(String::from);
        match entry["operation"].as_str().unwrap_or("") {
            "POST /containers/create" => made.containers.extend(field("Id")),
            "POST /volumes/create" => made.volumes.extend(field("Name")),
            "POST /networks/create" => made.networks.extend(field("Id")),
            // Tags of a known image: any new tag is one of these (removed after).
            "POST /images/{name}/tag" => made.tags.extend(added_tags.iter().cloned()),
            // An import (or load, commit) of what schemathesis sent: the ids in the answer,
            // and the tags its query asked for.
            "POST /images/create" | "POST /images/load" | "POST /commit" => {
                made.images
                    .extend(image_ids(entry["response"].as_str().unwrap_or("")));
                made.tags.extend(added_tags.iter().cloned());
            }
            // Exec instances live in the daemon's memory and end with it, as moby's.
            "POST /containers/{id}/exec" => {}
            other => {
                panic!("{other} succeeded with random input ({entry}): teach the test what it made")
            }
        }
    }
    made
}

/// The image ids (`sha256:` and 64 hex digits) in `text`.
fn image_ids(text: &str) -> Vec<String> {
    let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    text.match_indices("sha256:")
        .filter_map(|(at, _)| text.get(at..at + 71))
        .filter(|id| hex(&id[7..]))
        .map(String::from)
        .collect()
}

/// Prints each kind of server error the hooks let through as an answer by design, once.
fn print_accepted(log: &Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let kinds: BTreeSet<&str> = text.lines().collect();
    eprintln!("server errors accepted by design ({} kinds):", kinds.len());
    for kind in kinds {
        eprintln!("  {kind}");
    }
}

/// Removes what successful creates made (they are fine; the test leaves nothing).
fn remove(d: &Daemon, made: &Inventory) {
    for id in &made.containers {
        let (code, body) = d.http("DELETE", &format!("/v1.41/containers/{id}?force=1"), None);
        assert_eq!(code, 204, "remove container {id}: {body}");
    }
    for id in &made.networks {
        let (code, body) = d.http("DELETE", &format!("/v1.41/networks/{id}"), None);
        assert_eq!(code, 204, "remove network {id}: {body}");
    }
    // An image goes with its last tag: then its id is not found any more.
    for name in made.tags.iter().chain(&made.images) {
        let (code, body) = d.http("DELETE", &format!("/v1.41/images/{name}?force=1"), None);
        assert!(
            code == 200 || code == 404,
            "remove image {name}: {code} {body}"
        );
    }
    for name in &made.volumes {
        let (code, body) = d.http("DELETE", &format!("/v1.41/volumes/{name}"), None);
        assert_eq!(code, 204, "remove volume {name}: {body}");
    }
}

/// The daemon's open file descriptors.
fn open_fds(d: &Daemon) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

/// The operations left out, each for its reason (see docs/api.md, "Bad input").
const EXCLUDED_TAGS: &[&str] = &[
    // Swarm mode: pelagos-dockerd is a single node outside any swarm; every one of these
    // answers 503 "not a swarm manager" (init/join 501) whatever the input, as moby's
    // daemon outside a swarm: nothing behind them to fuzz.
    "Swarm", "Node", "Service", "Task", "Secret", "Config",
];

/// Objects the fuzzing reaches besides random names: half the cases of the operations on
/// one object name one of these, so that they get past the lookup into the handler's logic.
struct Known {
    container: String,
    image: String,
    volume: String,
    network: String,
}

/// The operations given a known object, by the dictionary of their path parameter. Left
/// out: removals (the object would be gone for the rest of the run), a hijacking attach
/// (it waits for a start that nobody makes), `wait` (`next-exit` on a container nobody
/// starts is rightly endless) and `stats` (it streams until the container is removed).
const ON_KNOWN: &[(&str, &str, &str)] = &[
    ("container", "id", "GET /containers/{id}/json"),
    ("container", "id", "GET /containers/{id}/top"),
    ("container", "id", "GET /containers/{id}/logs"),
    ("container", "id", "GET /containers/{id}/changes"),
    ("container", "id", "GET /containers/{id}/export"),
    ("container", "id", "GET /containers/{id}/attach/ws"),
    ("container", "id", "POST /containers/{id}/resize"),
    ("container", "id", "POST /containers/{id}/start"),
    ("container", "id", "POST /containers/{id}/stop"),
    ("container", "id", "POST /containers/{id}/restart"),
    ("container", "id", "POST /containers/{id}/kill"),
    ("container", "id", "POST /containers/{id}/update"),
    ("container", "id", "POST /containers/{id}/rename"),
    ("container", "id", "POST /containers/{id}/pause"),
    ("container", "id", "POST /containers/{id}/unpause"),
    ("container", "id", "POST /containers/{id}/exec"),
    ("container", "id", "HEAD /containers/{id}/archive"),
    ("container", "id", "GET /containers/{id}/archive"),
    ("container", "id", "PUT /containers/{id}/archive"),
    ("image", "name", "GET /images/{name}/json"),
    ("image", "name", "GET /images/{name}/history"),
    ("image", "name", "GET /images/{name}/get"),
    ("image", "name", "POST /images/{name}/tag"),
    ("image", "name", "POST /images/{name}/push"),
    ("volume", "name", "GET /volumes/{name}"),
    ("network", "id", "GET /networks/{id}"),
    ("network", "id", "POST /networks/{id}/connect"),
    ("network", "id", "POST /networks/{id}/disconnect"),
];

/// schemathesis.toml: the dictionaries of known objects and the operations using them.
fn fuzz_config(known: &Known) -> String {
    let mut text = String::new();
    for (dictionary, value) in [
        ("container", &known.container),
        ("image", &known.image),
        ("volume", &known.volume),
        ("network", &known.network),
    ] {
        text.push_str(&format!(
            "[dictionaries.{dictionary}]\nvalues = [{value:?}]\n\n"
        ));
    }
    for (dictionary, parameter, operation) in ON_KNOWN {
        text.push_str(&format!(
            "[[operations]]\ninclude-name = {operation:?}\nparameters = {{ \"path.{parameter}\" = \
             {{ dictionary = {dictionary:?}, probability = 0.5 }} }}\n\n"
        ));
    }
    text
}

/// Makes the known objects: the busybox image under a short name, a container of it (never
/// running for long: its command is `true`), a volume and a network.
fn make_known(d: &Daemon, image: &str) -> Known {
    let post = |path: &str, body: Option<&str>, want: u16| -> Value {
        let (code, answer) = d.http("POST", path, body);
        assert_eq!(code, want, "POST {path}: {answer}");
        serde_json::from_str(&answer).unwrap_or(Value::Null)
    };
    post(
        &format!("/v1.41/images/{image}/tag?repo=fuzzbox&tag=1"),
        None,
        201,
    );
    let container = post(
        "/v1.41/containers/create?name=known",
        Some(r#"{"Image":"fuzzbox:1","Cmd":["true"]}"#),
        201,
    );
    post("/v1.41/volumes/create", Some(r#"{"Name":"known"}"#), 201);
    let network = post("/v1.41/networks/create", Some(r#"{"Name":"known"}"#), 201);
    let id = |v: &Value| v["Id"].as_str().expect("an Id").to_string();
    Known {
        container: id(&container),
        image: "fuzzbox:1".into(),
        volume: "known".into(),
        network: id(&network),
    }
}

/// A number from the environment, else `default`.
fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| v.parse::<u64>().is_ok())
        .unwrap_or_else(|| default.to_string())
}

fn schemathesis(relay: &Relay, logs: &Path, config: &Path) -> std::process::Output {
    assert!(
        Path::new(SCHEMATHESIS).exists(),
        "{SCHEMATHESIS} is missing: run scripts/deps (it installs tests/clients/requirements.txt)"
    );
    let url = format!("http://{}/v1.41", relay.addr);
    let mut c = Command::new(SCHEMATHESIS);
    c.arg("--config-file")
        .arg(config)
        .arg("run")
        .arg(spec())
        .args(["--url", &url])
        // Reproducible: the same cases every run (a longer local hunt: PELAGOS_FUZZ_SEED,
        // PELAGOS_FUZZ_EXAMPLES).
        .args(["--seed", &setting("PELAGOS_FUZZ_SEED", "41")])
        .args(["--generation-database", "none"])
        // Examples from the spec, the coverage phase's boundary and wrong-typed values, then
        // random cases (positive and negative); the stateful phase is left out: it needs
        // links the spec does not have, and its inferred chains start random containers.
        .args(["--phases", "examples,coverage,fuzzing", "--mode", "all"])
        .args(["--max-examples", &setting("PELAGOS_FUZZ_EXAMPLES", "25")])
        // A request that hangs is a finding; a loaded CI machine is slow, not hung.
        .args(["--request-timeout", "60"])
        // The checks where moby and the spec agree: never a 5xx for bad input, and every
        // error as moby's JSON. Status-code and schema conformance are left out: moby answers
        // codes the spec does not list (e.g. 400 on most operations) and shapes it does
        // not describe (nulls for empty lists), and so does this daemon, on purpose.
        .args(["--checks", "not_a_server_error,errors_are_docker_json"])
        .args(["--no-color", "--output-truncate", "false"])
        .env("SCHEMATHESIS_HOOKS", hooks())
        .env("PELAGOS_FUZZ_CREATED", logs.join("created.jsonl"))
        .env("PELAGOS_FUZZ_ACCEPTED", logs.join("accepted.txt"));
    for tag in EXCLUDED_TAGS {
        c.args(["--exclude-tag", tag]);
    }
    // Its cache (`.schemathesis/`) goes to the test's directory, not the source tree.
    c.current_dir(logs);
    c.output().expect("run schemathesis")
}

#[test]
fn schemathesis_finds_no_server_error_and_refusals_leave_nothing() {
    let served = served_busybox();
    // In a network namespace of the test's own: a pull of a random name fails at once
    // (no route out), and bridges made by random network creates stay in it.
    let d = Daemon::start_with(Options {
        netns: true,
        ..Options::default()
    });
    d.pull_on_host(&served.image);
    let known = make_known(&d, &served.image);
    let config = d.dir.path().join("schemathesis.toml");
    std::fs::write(&config, fuzz_config(&known)).expect("write schemathesis.toml");
    let before = Inventory::of(&d);
    let fds_before = open_fds(&d);
    let relay = Relay::start(&d.socket);
    let out = schemathesis(&relay, d.dir.path(), &config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    print_accepted(&d.dir.path().join("accepted.txt"));
    assert!(
        out.status.success(),
        "schemathesis found failures ({}):\n{stdout}\n{}\n--- daemon log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
    // Still alive and answering.
    let (code, body) = d.http("GET", "/_ping", None);
    assert_eq!((code, body.as_str()), (200, "OK"), "{}", d.log());
    // Nothing but what successful creates made (and the run did not remove again).
    let added = Inventory::of(&d).added_since(&before);
    let made = created_by_successes(&d.dir.path().join("created.jsonl"), &added.tags);
    assert_eq!(
        added.added_since(&made),
        Inventory::default(),
        "objects left by refused requests"
    );
    remove(&d, &added);
    // The known container, unless a prune of the run took it already.
    let path = format!("/v1.41/containers/{}?force=1", known.container);
    let (code, body) = d.http("DELETE", &path, None);
    assert!(
        code == 204 || code == 404,
        "remove the known container: {code} {body}"
    );
    assert_eq!(Inventory::of(&d).added_since(&before), Inventory::default());
    d.assert_no_container_leftovers();
    // No spool of a refused load or import is left in the image store.
    let spools: Vec<_> = std::fs::read_dir(d.root.join("image/tmp"))
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        spools.is_empty(),
        "temporary files left in the image store: {spools:?}"
    );
    // Every connection the run opened was let go.
    wait_for("the daemon's descriptors to settle", || {
        open_fds(&d) <= fds_before + 2
    });
}

/// Writes a request with a `size`-byte body (no `Expect: 100-continue`: the client sends
/// at once) over the daemon's socket, then reads the answer: status and body. A daemon that
/// answers and closes without reading makes the write fail (broken pipe, reset).
fn send_big_body(d: &Daemon, method: &str, path: &str, size: usize) -> (u16, String) {
    let mut s = UnixStream::connect(&d.socket).expect("connect to the daemon");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\n\
         Content-Length: {size}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).expect("write the head");
    let chunk = vec![b'x'; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        if let Err(e) = s.write_all(&chunk[..n]) {
            panic!("{method} {path}: the daemon stopped reading after {sent} bytes: {e}");
        }
        sent += n;
    }
    let mut answer = String::new();
    s.read_to_string(&mut answer).expect("read the answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn refusals_reach_a_client_still_sending_its_body() {
    let d = Daemon::start();
    const BIG: usize = 32 << 20;
    // Refused by the route before the body is touched.
    let (code, body) = send_big_body(&d, "PUT", "/v1.41/containers/nosuch/archive?path=/", BIG);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("No such container: nosuch"), "{body}");
    // Refused by the version check, before any route.
    let (code, body) = send_big_body(&d, "POST", "/v1.99/images/load", BIG);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too new"), "{body}");
    // Refused in the middle of the body (not a tarball).
    let (code, body) = send_big_body(&d, "POST", "/v1.41/images/load", BIG);
    assert_eq!(code, 400, "{body}");
    // Refused by design.
    let (code, body) = send_big_body(&d, "POST", "/v1.41/build", BIG);
    assert_eq!(code, 501, "{body}");
    assert!(body.contains("does not support image builds"), "{body}");
    // The docker CLI reads the answers, not a broken pipe.
    let (_, err) = d.fail(&["swarm", "init"]);
    assert!(err.contains("does not support swarm mode"), "{err}");
    let junk = d.dir.path().join("junk.tar");
    std::fs::write(&junk, vec![b'x'; BIG]).expect("write junk.tar");
    let junk = junk.to_string_lossy().into_owned();
    let (_, err) = d.fail(&["load", "-i", &junk]);
    assert!(err.contains("Error response from daemon"), "{err}");
    assert!(!err.contains("broken pipe"), "{err}");
    // A copy refused once the destination is known (a read-only root filesystem), while
    // the CLI still streams 32 MiB of tar.
    let image = pull_busybox(&d);
    d.ok(&[
        "create",
        "--name",
        "ro",
        "--read-only",
        "--network",
        "none",
        &image,
    ]);
    let (_, err) = d.fail(&["cp", &junk, "ro:/tmp/"]);
    assert!(
        err.contains("container rootfs is marked read-only"),
        "{err}"
    );
    d.ok(&["rm", "ro"]);
    d.ok(&["rmi", &image]);
    // Nothing was made by the refusals, and the daemon still answers.
    assert_eq!(d.ok(&["images", "-q"]).trim(), "");
    assert_eq!(d.http("GET", "/_ping", None), (200, "OK".to_string()));
}

/// The JSON `message` of an error answer.
fn message(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: not JSON: {body}"));
    v["message"].as_str().expect("a message").to_string()
}

#[test]
fn what_the_fuzzing_found_is_answered_as_moby() {
    let d = Daemon::start();
    // A method a path does not take: moby's unknown page, as JSON (axum said 405, empty).
    for (method, path) in [("TRACE", "/v1.41/_ping"), ("DELETE", "/version")] {
        let (code, body) = d.http(method, path, None);
        assert_eq!(code, 404, "{method} {path}: {body}");
        assert_eq!(message(&body), "page not found");
    }
    // A websocket attach: the unknown container first (it was the missing upgrade, in plain
    // text), then the missing handshake as a JSON error.
    let (code, body) = d.http("GET", "/v1.41/containers/nosuch/attach/ws?stream=1", None);
    assert_eq!(code, 404, "{body}");
    assert!(message(&body).contains("No such container"), "{body}");
    d.ok(&[
        "create",
        "--name",
        "wsc",
        "--network",
        "none",
        &pull_busybox(&d),
    ]);
    let (code, body) = d.http("GET", "/v1.41/containers/wsc/attach/ws?stream=1", None);
    assert_eq!(code, 400, "{body}");
    assert!(message(&body).contains("upgrade"), "{body}");
    // A path parameter that is not UTF-8: axum's refusal, as JSON.
    let (code, body) = d.http("GET", "/v1.41/containers/%FF/json", None);
    assert_eq!(code, 400, "{body}");
    assert!(!message(&body).is_empty(), "{body}");
    // A login to an address that is no URL: the request's fault (it was a 500).
    let (code, body) = d.http(
        "POST",
        "/v1.41/auth",
        Some(r#"{"username":"u","password":"p","serveraddress":"a\tb("}"#),
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        message(&body).starts_with("unable to parse server address"),
        "{body}"
    );
    // A NUL in it reached the certs.d lookup (a 500); Go's url.Parse refuses it, so moby 400s.
    let (code, body) = d.http(
        "POST",
        "/v1.41/auth",
        Some(r#"{"username":"u","password":"p","serveraddress":"h\u0000"}"#),
    );
    assert_eq!(code, 400, "{body}");
    // A URL to the url crate but no HTTP URI (a `}` in the host): the client could not
    // even build its request (a 500).
    let (code, body) = d.http(
        "POST",
        "/v1.41/auth",
        Some(r#"{"username":"u","password":"p","serveraddress":"x}y"}"#),
    );
    assert_eq!(code, 400, "{body}");
    d.ok(&["rm", "wsc"]);
    d.assert_no_container_leftovers();
}

/// busybox from a local registry, pulled by the docker CLI; its reference.
fn pull_busybox(d: &Daemon) -> String {
    let served = served_busybox();
    d.ok(&["pull", "-q", &served.image]);
    served.image.clone()
}
