//! pelagos-dockerd's system endpoints through the real docker CLI and raw HTTP: version
//! negotiation, `_ping` headers, errors as `{"message"}` with Docker's statuses.

mod dockerd_support;

use dockerd_support::Daemon;

#[test]
fn docker_cli_negotiates_the_version() {
    let d = Daemon::start();
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.41 1.24 linux");
    let (code, body) = d.http("HEAD", "/_ping", None);
    assert_eq!(code, 200, "{body}");
    let (code, body) = d.http("GET", "/v1.41/_ping", None);
    assert_eq!((code, body.as_str()), (200, "OK"));
}

#[test]
fn versions_out_of_range_and_unknown_routes_are_refused() {
    let d = Daemon::start();
    let (code, body) = d.http("GET", "/v1.99/version", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too new"), "{body}");
    let (code, body) = d.http("GET", "/v1.12/version", None);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("too old"), "{body}");
    let (code, body) = d.http("GET", "/v1.41/no/such/route", None);
    assert_eq!(code, 404, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(v["message"], "page not found");
    // A pinned old client still works.
    let out = d
        .docker(&["version", "--format", "{{.Server.APIVersion}}"])
        .env("DOCKER_API_VERSION", "1.24")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_second_daemon_on_the_same_pidfile_is_refused() {
    let d = Daemon::start();
    let out = std::process::Command::new(dockerd_support::sibling("pelagos-dockerd"))
        .arg("-H")
        .arg(format!(
            "unix://{}",
            d.dir.path().join("other.sock").display()
        ))
        .arg("--data-root")
        .arg(&d.root)
        .arg("--exec-root")
        .arg(&d.runroot)
        .arg("--config-file")
        .arg(&d.config_file)
        .arg("--pidfile")
        .arg(d.dir.path().join("dockerd.pid"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("pid file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !d.dir.path().join("other.sock").exists(),
        "nothing bound by a refused start"
    );
}

#[test]
fn plain_tcp_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(dockerd_support::sibling("pelagos-dockerd"))
        .args(["-H", "tcp://127.0.0.1:23750", "--data-root"])
        .arg(dir.path().join("root"))
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .arg("--config-file")
        .arg(dir.path().join("none.toml"))
        .arg("--pidfile")
        .arg(dir.path().join("pid"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tlsverify"), "{err}");
}

#[test]
fn swarm_plugins_and_build_cache_answer_as_a_single_node_without_them() {
    let d = Daemon::start();
    let (code, err) = d.fail(&["node", "ls"]);
    assert_eq!(code, 1);
    assert!(err.contains("This node is not a swarm manager"), "{err}");
    let (_, err) = d.fail(&["service", "ls"]);
    assert!(err.contains("not a swarm manager"), "{err}");
    let (_, err) = d.fail(&["swarm", "init"]);
    assert!(err.contains("does not support swarm mode"), "{err}");
    let (code, body) = d.http("GET", "/v1.41/secrets", None);
    assert_eq!(code, 503, "{body}");
    // No plugins: an empty list, a named one is not found.
    assert_eq!(d.ok(&["plugin", "ls", "-q"]).trim(), "");
    let (_, err) = d.fail(&["plugin", "inspect", "vieux/sshfs"]);
    assert!(err.contains("not found"), "{err}");
    let (code, body) = d.http(
        "GET",
        "/v1.41/plugins?filters=%7B%22nope%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(code, 400, "{body}");
    // `system prune` asks for the build cache too: nothing to reclaim, and no error.
    let out = d.ok(&["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space"), "{out}");
    let (code, body) = d.http("POST", "/v1.41/build/prune", None);
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["SpaceReclaimed"], 0);
}
