//! The daemon itself through the real docker CLI: `docker events` followed and ended by its
//! client, `system df`, `info` figures, TLS with client certificates on `tcp://`,
//! `--insecure-registry`, the socket's group and mode, and containers that outlive a killed
//! daemon and are adopted by the next one.

mod dockerd_support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use dockerd_support::{docker_cli, served_busybox, sibling, wait_for, Daemon, Options};

/// The names of the daemon's threads (`/proc/PID/task/*/comm`).
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn unix_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

#[test]
fn events_stream_a_containers_life_until_the_client_goes() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", &served.image]);
    let mut follower = d
        .docker(&[
            "events",
            "--filter",
            "type=container",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn docker events");
    let stdout = follower.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The follower is subscribed once the daemon has its thread.
    wait_for("the events follower", || {
        thread_names(d.pid()).iter().any(|n| n == "events-follower")
    });
    d.ok(&[
        "run",
        "-d",
        "--name",
        "ev",
        "--network",
        "none",
        &served.image,
        "true",
    ]);
    let mut seen = Vec::new();
    for wanted in [
        "container create ev",
        "container start ev",
        "container die ev",
    ] {
        loop {
            let line = rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no {wanted:?} event; saw {seen:?}"));
            seen.push(line.clone());
            if line == wanted {
                break;
            }
        }
    }
    // SAFETY: kill(2) of the docker client this test spawned, by its pid.
    unsafe { libc::kill(follower.id() as i32, libc::SIGKILL) };
    let _ = follower.wait();
    wait_for("the follower of the vanished client to end", || {
        !thread_names(d.pid()).iter().any(|n| n == "events-follower")
    });

    // since/until: the stored events, then the end of the stream.
    let past = d.ok(&[
        "events",
        "--since",
        "5m",
        "--until",
        &unix_now(),
        "--filter",
        "container=ev",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = past.lines().collect();
    for a in ["create", "start", "die"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    let (status, body) = d.http("GET", "/events?since=yesterday", None);
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http(
        "GET",
        "/events?until=1&filters=%7B%22bogus%22%3A%7B%22x%22%3Atrue%7D%7D",
        None,
    );
    assert_eq!(status, 400, "{body}");
    d.ok(&["rm", "ev"]);
    d.assert_no_container_leftovers();
}

#[test]
fn system_df_and_info_count_what_is_there() {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", &served.image]);
    d.ok(&["volume", "create", "dfvol"]);
    d.ok(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        &served.image,
        "true",
    ]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--network",
        "none",
        &served.image,
        "sleep",
        "300",
    ]);
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}={{.TotalCount}}/{{.Active}}",
    ]);
    assert_eq!(
        df.lines().collect::<Vec<_>>(),
        [
            "Images=1/1",
            "Containers=2/1",
            "Local Volumes=1/0",
            "Build Cache=0/0"
        ],
        "{df}"
    );
    let (status, body) = d.http("GET", "/system/df", None);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("df JSON");
    assert!(v["LayersSize"].as_u64().unwrap_or(0) > 0, "{body}");
    assert_eq!(v["Images"][0]["Containers"], 2, "{body}");
    assert_eq!(v["Volumes"][0]["UsageData"]["RefCount"], 0, "{body}");
    assert_eq!(v["BuildCache"], serde_json::json!([]), "{body}");

    let info = d.ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.ContainersRunning}} {{.ContainersStopped}} {{.Images}} {{.Swarm.LocalNodeState}} {{.DockerRootDir}}",
    ]);
    assert_eq!(
        info.trim(),
        format!("2 1 1 1 inactive {}", d.root.display())
    );
    let human = d.ok(&["info"]);
    for line in [
        " Containers: 2",
        "  Running: 1",
        " Images: 1",
        "  Volume: local",
        "  Network: bridge host null",
        " Swarm: inactive",
        " Insecure Registries:",
        "  127.0.0.0/8",
    ] {
        assert!(human.lines().any(|l| l == line), "{line:?} in {human}");
    }
    d.ok(&["rm", "-f", "idle", "busy"]);
    d.assert_no_container_leftovers();
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn make() -> Certs {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| dir.path().join(n).display().to_string();
        std::fs::write(
            p("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .expect("server.ext");
        std::fs::write(p("client.ext"), "extendedKeyUsage=clientAuth\n").expect("client.ext");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("spawn openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=pelagos-test-ca",
        ]);
        for (name, cn) in [("server", "127.0.0.1"), ("client", "docker-client")] {
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={cn}"),
            ]);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{name}-cert.pem"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ]);
        }
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn tcp_is_served_with_tls_to_clients_with_a_certificate_only() {
    let served = served_busybox();
    let certs = Certs::make();
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let d = Daemon::start_with(Options {
        flags: vec![
            "-H".into(),
            host.clone(),
            "--tlsverify".into(),
            "--tlscacert".into(),
            certs.arg("ca.pem"),
            "--tlscert".into(),
            certs.arg("server-cert.pem"),
            "--tlskey".into(),
            certs.arg("server-key.pem"),
        ],
        ..Options::default()
    });
    d.ok(&["pull", &served.image]);
    let tls_docker = |with_client_cert: bool, args: &[&str]| {
        let mut c = Command::new(docker_cli());
        c.env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env("DOCKER_CONFIG", &d.docker_config)
            .args([
                "-H",
                &host,
                "--tlsverify",
                "--tlscacert",
                &certs.arg("ca.pem"),
            ]);
        if with_client_cert {
            c.args(["--tlscert", &certs.arg("client-cert.pem")])
                .args(["--tlskey", &certs.arg("client-key.pem")]);
        }
        c.args(args)
            .stdin(Stdio::null())
            .output()
            .expect("spawn docker")
    };
    let out = tls_docker(true, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.41");
    // A container's life over TLS: create, start, the streamed wait and logs (hijacked
    // connections over TLS: the unit test of `tls`).
    let ok = |args: &[&str]| {
        let out = tls_docker(true, args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let id = ok(&[
        "run",
        "-d",
        "--network",
        "none",
        &served.image,
        "echo",
        "over-tls",
    ]);
    assert_eq!(ok(&["wait", &id]), "0");
    assert_eq!(ok(&["logs", &id]), "over-tls");
    ok(&["rm", &id]);
    let out = tls_docker(false, &["version", "--format", "{{.Server.APIVersion}}"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
    // The unix socket still serves, and the daemon lives on after refused handshakes.
    d.ok(&["version"]);
    d.assert_no_container_leftovers();
}

#[test]
fn plain_tcp_and_unreadable_certificates_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let start = |extra: &[&str]| {
        Command::new(sibling("pelagos-dockerd"))
            .args([
                "--data-root",
                &dir.path().join("root").display().to_string(),
            ])
            .args(["--exec-root", &dir.path().join("run").display().to_string()])
            .args([
                "--config-file",
                &dir.path().join("none.toml").display().to_string(),
            ])
            .args(["--pidfile", &dir.path().join("pid").display().to_string()])
            .args(extra)
            .output()
            .expect("spawn pelagos-dockerd")
    };
    let host = format!("tcp://127.0.0.1:{}", free_port());
    let out = start(&["-H", &host]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without --tlsverify") && err.contains("refused"),
        "{err}"
    );
    let missing = dir.path().join("missing.pem").display().to_string();
    let out = start(&[
        "-H",
        &host,
        "--tlsverify",
        "--tlscacert",
        &missing,
        "--tlscert",
        &missing,
        "--tlskey",
        &missing,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TLS") && err.contains("missing.pem"), "{err}");
    let out = start(&["-H", "unix:///x.sock", "--insecure-registry", "ftp://reg"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("should not contain '://'"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn insecure_registry_flag_makes_a_registry_plain_http() {
    let served = served_busybox();
    let host = served.registry.host();
    // certs.d for the registry makes pelagos speak HTTPS to it, even on loopback (as Docker
    // does): only --insecure-registry brings plain HTTP back.
    let certs = Certs::make();
    let certs_d = tempfile::tempdir().expect("tempdir");
    let hostdir = certs_d.path().join(&host);
    std::fs::create_dir_all(&hostdir).expect("certs.d dir");
    std::fs::copy(certs.path("ca.pem"), hostdir.join("ca.crt")).expect("ca.crt");
    let d = Daemon::start_with(Options {
        config: format!(
            "[registries]\ncerts_dir = {:?}\n",
            certs_d.path().display().to_string()
        ),
        flags: vec![
            "--insecure-registry".into(),
            host.clone(),
            "--registry-mirror".into(),
            "https://mirror.invalid".into(),
        ],
        ..Options::default()
    });
    let out = d
        .pelagos(&["pull", "-q", &served.image])
        .output()
        .expect("pelagos pull");
    assert!(
        !out.status.success(),
        "the configuration alone speaks HTTPS to {host}"
    );
    d.ok(&["pull", &served.image]);
    let tags = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(tags.contains(&served.image), "{tags}");
    let info = d.ok(&["info"]);
    assert!(info.contains(&format!("  {host}\n")), "{info}");
    assert!(
        info.contains(" Registry Mirrors:\n  https://mirror.invalid/\n"),
        "{info}"
    );
}

#[test]
fn the_socket_belongs_to_its_group_with_mode_0660() {
    let d = Daemon::start_with(Options {
        flags: vec!["-G".into(), "adm".into()],
        ..Options::default()
    });
    let meta = std::fs::metadata(&d.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    let adm = nix_group_gid("adm");
    assert_eq!(meta.gid(), adm);
    let d2 = Daemon::start_with(Options {
        flags: vec!["-G".into(), "no-such-group-here".into()],
        ..Options::default()
    });
    let meta = std::fs::metadata(&d2.socket).expect("socket");
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    assert_eq!(meta.gid(), 0, "without the group the socket stays root's");
}

/// The gid of a group from /etc/group.
fn nix_group_gid(name: &str) -> u32 {
    let groups = std::fs::read_to_string(Path::new("/etc/group")).expect("/etc/group");
    groups
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some(name)).then(|| f.nth(1).and_then(|g| g.parse().ok()))?
        })
        .expect("the group exists")
}

#[test]
fn a_killed_daemons_containers_run_on_and_are_adopted() {
    let served = served_busybox();
    let mut d = Daemon::start();
    d.ok(&["pull", &served.image]);
    let since = unix_now();
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        "sleeper",
        "--network",
        "none",
        &served.image,
        "sh",
        "-c",
        "echo started; exec sleep 300",
    ]);
    let id = id.trim().to_string();
    wait_for("the container's first line", || {
        d.ok(&["logs", "sleeper"]).contains("started")
    });
    d.stop_daemon(libc::SIGKILL);
    let out = d
        .pelagos(&["inspect", "--format", "{{.State.Pid}}", "sleeper"])
        .output()
        .expect("pelagos inspect");
    let pid: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a pid");
    assert!(pid > 0);
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(alive, "the container died with the daemon");

    d.restart_daemon();
    let state = d.ok(&["ps", "--format", "{{.ID}} {{.State}}"]);
    assert_eq!(state.trim(), format!("{} running", &id[..12]));
    assert_eq!(d.ok(&["logs", "sleeper"]).trim(), "started");
    let waiter = d
        .docker(&["wait", "sleeper"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn docker wait");
    d.ok(&["stop", "-t", "1", "sleeper"]);
    let waited = waiter.wait_with_output().expect("docker wait");
    assert!(waited.status.success());
    assert_eq!(String::from_utf8_lossy(&waited.stdout).trim(), "137");
    let actions = d.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &unix_now(),
        "--filter",
        "container=sleeper",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = actions.lines().collect();
    for a in ["create", "start", "kill", "die", "stop"] {
        assert!(actions.contains(&a), "{a}: {actions:?}");
    }
    d.ok(&["rm", "sleeper"]);
    d.assert_no_container_leftovers();
}

/// `systemd-socket-activate` passing a unix and a TCP socket to `pelagos-dockerd -H fd://`.
fn socket_activated(dir: &Path, sockets: &[String], flags: &[String]) -> std::process::Child {
    let mut c = Command::new("systemd-socket-activate");
    for s in sockets {
        c.args(["-l", s]);
    }
    c.arg(sibling("pelagos-dockerd"))
        .args(["-H", "fd://"])
        .args(["--data-root", &dir.join("root").display().to_string()])
        .args(["--exec-root", &dir.join("run").display().to_string()])
        .args([
            "--config-file",
            &dir.join("none.toml").display().to_string(),
        ])
        .args(["--pidfile", &dir.join("pid").display().to_string()])
        .args(["--cgroup-parent", "/pelagos-it-dockerd-activated"])
        .args(flags)
        .env("PELAGOS_MONITOR", sibling("pelagos-monitor"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn systemd-socket-activate")
}

#[test]
fn socket_activation_serves_unix_and_tls_tcp_and_refuses_plain_tcp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs::make();
    let sock = dir.path().join("activated.sock");
    let port = free_port();
    let tls_flags: Vec<String> = vec![
        "--tlsverify".into(),
        "--tlscacert".into(),
        certs.arg("ca.pem"),
        "--tlscert".into(),
        certs.arg("server-cert.pem"),
        "--tlskey".into(),
        certs.arg("server-key.pem"),
    ];
    let sockets = [sock.display().to_string(), format!("127.0.0.1:{port}")];
    let mut daemon = socket_activated(dir.path(), &sockets, &tls_flags);
    let docker = |host: &str, extra: &[&str]| {
        Command::new(docker_cli())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION")
            .env("DOCKER_CONFIG", dir.path())
            .args(["-H", host])
            .args(extra)
            .args(["version", "--format", "{{.Server.APIVersion}}"])
            .stdin(Stdio::null())
            .output()
            .expect("spawn docker")
    };
    let unix = format!("unix://{}", sock.display());
    wait_for("the activated daemon on its unix socket", || {
        docker(&unix, &[]).status.success()
    });
    let tcp = format!("tcp://127.0.0.1:{port}");
    let out = docker(
        &tcp,
        &[
            "--tlsverify",
            "--tlscacert",
            &certs.arg("ca.pem"),
            "--tlscert",
            &certs.arg("client-cert.pem"),
            "--tlskey",
            &certs.arg("client-key.pem"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1.41");
    // SAFETY: kill(2) of the launcher this test spawned (it exec'd the daemon), by its pid.
    unsafe { libc::kill(daemon.id() as i32, libc::SIGTERM) };
    let _ = daemon.wait();

    // Without the TLS flags a passed TCP socket is refused: the daemon does not start.
    let port = free_port();
    let refused = socket_activated(dir.path(), &[format!("127.0.0.1:{port}")], &[]);
    // The launcher starts the daemon at the first connection, once it listens.
    wait_for("the launcher's socket", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let out = refused.wait_with_output().expect("activated daemon");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a passed TCP socket without --tlsverify"),
        "{err}"
    );
}

#[test]
fn the_systemd_units_verify() {
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib");
    let dir = tempfile::tempdir().expect("tempdir");
    let daemon = sibling("pelagos-dockerd").display().to_string();
    for unit in ["pelagos-dockerd.service", "pelagos-dockerd.socket"] {
        let text = std::fs::read_to_string(contrib.join(unit)).expect("unit file");
        // The installed path, replaced by the built binary so that verify finds it.
        let text = text.replace("/usr/bin/pelagos-dockerd", &daemon);
        std::fs::write(dir.path().join(unit), text).expect("write unit");
    }
    let service = std::fs::read_to_string(contrib.join("pelagos-dockerd.service")).unwrap();
    assert!(service.contains("-H fd://") && service.contains("KillMode=process"));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("pelagos-dockerd.socket"))
        .arg(dir.path().join("pelagos-dockerd.service"))
        .output()
        .expect("systemd-analyze is installed on these hosts");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.trim().is_empty(), "{err}");
}
