//! pelagos-dockerd's `/networks` endpoints through the real docker CLI, with a daemon in a
//! network namespace of the test's own: create/ls/inspect/rm/prune, names resolved between
//! containers of a user network, connect/disconnect, a published port, moby's refusals.

mod dockerd_support;

use std::time::{Duration, Instant};

use dockerd_support::{served_busybox, wait_for, Daemon, Options};

fn netns_daemon() -> Daemon {
    Daemon::start_with(Options {
        netns: true,
        ..Options::default()
    })
}

/// `docker network inspect NET --format {{range .Containers}}NAME=ADDR {{end}}`.
fn endpoints(d: &Daemon, net: &str) -> String {
    d.ok(&[
        "network",
        "inspect",
        net,
        "--format",
        "{{range .Containers}}{{.Name}}={{.IPv4Address}} {{end}}",
    ])
    .trim()
    .to_string()
}

/// `ping -c1 TARGET` from a new container on `net`: its output once it exited 0.
fn ping_from(d: &Daemon, image: &str, net: &str, target: &str) -> String {
    let id = d.ok(&["run", "-d", "--network", net, image, "ping", "-c1", target]);
    let id = id.trim();
    assert_eq!(d.ok(&["wait", id]).trim(), "0", "{}", d.ok(&["logs", id]));
    let out = d.ok(&["logs", id]);
    d.ok(&["rm", id]);
    out
}

#[test]
fn networks_are_created_listed_inspected_removed_and_pruned() {
    let d = netns_daemon();
    let id = d.ok(&[
        "network",
        "create",
        "--subnet",
        "10.89.0.0/24",
        "--gateway",
        "10.89.0.1",
        "--label",
        "team=a",
        "app",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "{id}");
    let names = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for expected in ["app bridge", "bridge bridge", "host host", "none null"] {
        assert!(names.lines().any(|l| l == expected), "{expected}: {names}");
    }
    let labelled = d.ok(&["network", "ls", "-q", "--filter", "label=team=a"]);
    assert_eq!(labelled.trim(), &id[..12]);
    let ipam = d.ok(&[
        "network",
        "inspect",
        "app",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Id}} {{.Labels.team}}",
    ]);
    assert_eq!(ipam.trim(), format!("10.89.0.0/24 10.89.0.1 {id} a"));

    let (code, err) = d.fail(&["network", "create", "app"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("network with name app already exists"),
        "{err}"
    );
    let (status, body) = d.http("POST", "/v1.41/networks/create", Some(r#"{"Name":"app"}"#));
    assert_eq!(status, 409, "{body}");
    let (status, body) = d.http("POST", "/networks/create", Some(r#"{"Name":"#));
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http("POST", "/networks/create", Some(r#"{"Name":"host"}"#));
    assert_eq!(status, 403, "{body}");
    let (status, body) = d.http("GET", "/networks/nosuchnet", None);
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("network nosuchnet not found"), "{body}");

    let (_, err) = d.fail(&["network", "rm", "bridge"]);
    assert!(
        err.contains("bridge is a pre-defined network and cannot be removed"),
        "{err}"
    );
    let (status, _) = d.http("DELETE", "/networks/none", None);
    assert_eq!(status, 403);

    d.ok(&["network", "create", "--label", "keep=yes", "kept"]);
    d.ok(&["network", "create", "spare"]);
    assert_eq!(d.ok(&["network", "rm", "spare"]).trim(), "spare");
    let pruned = d.ok(&["network", "prune", "-f", "--filter", "label!=keep"]);
    assert_eq!(pruned, "Deleted Networks:\napp\n\n");
    let left = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(left.contains("kept") && !left.contains("app"), "{left}");
    let (status, body) = d.http("POST", "/networks/prune", None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("kept"), "{body}");
    let left = d.ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!left.contains("kept"), "{left}");
}

#[test]
fn containers_of_a_user_network_find_each_other_and_hold_it() {
    let served = served_busybox();
    let d = netns_daemon();
    d.pull_on_host(&served.image);
    d.ok(&["network", "create", "--subnet", "10.90.0.0/24", "app"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        &served.image,
        "sleep",
        "300",
    ]);
    let ends = endpoints(&d, "app");
    assert!(ends.starts_with("db=10.90.0."), "{ends}");
    assert!(ends.ends_with("/24"), "{ends}");

    let ping = ping_from(&d, &served.image, "app", "db");
    assert!(ping.contains("1 packets received"), "{ping}");

    let (code, err) = d.fail(&["network", "rm", "app"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error while removing network: network app id")
            && err.contains("has active endpoints"),
        "{err}"
    );
    let (status, _) = d.http("DELETE", "/networks/app", None);
    assert_eq!(status, 403);

    // connect and disconnect a running container.
    d.ok(&["network", "create", "--subnet", "10.91.0.0/24", "other"]);
    d.ok(&["network", "connect", "--alias", "database", "other", "db"]);
    let ends = endpoints(&d, "other");
    assert!(ends.starts_with("db=10.91.0."), "{ends}");
    let (_, err) = d.fail(&["network", "connect", "other", "db"]);
    assert!(
        err.contains("endpoint with name db already exists in network other"),
        "{err}"
    );
    let ping = ping_from(&d, &served.image, "other", "database");
    assert!(ping.contains("1 packets received"), "{ping}");
    d.ok(&["network", "disconnect", "other", "db"]);
    assert_eq!(endpoints(&d, "other"), "");
    let (_, err) = d.fail(&["network", "disconnect", "other", "db"]);
    assert!(
        err.contains("is not connected to the network other"),
        "{err}"
    );
    let (status, body) = d.http("POST", "/networks/other/connect", Some("{}"));
    assert_eq!(status, 400, "{body}");
    let (status, body) = d.http(
        "POST",
        "/networks/other/connect",
        Some(r#"{"Container":"nosuchcontainer"}"#),
    );
    assert_eq!(status, 404, "{body}");

    d.ok(&["rm", "-f", "db"]);
    d.ok(&["network", "rm", "app", "other"]);
    d.assert_no_container_leftovers();
}

#[test]
fn a_published_port_answers_on_the_hosts_loopback() {
    let served = served_busybox();
    let d = netns_daemon();
    d.pull_on_host(&served.image);
    let script =
        "mkdir -p /www && echo hello-port > /www/index.html && exec httpd -f -p 80 -h /www";
    d.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "18080:80",
        &served.image,
        "sh",
        "-c",
        script,
    ]);
    let holder = d.netns.as_ref().expect("the daemon's netns");
    // A new network namespace starts with its loopback down.
    holder.ok("ip", &["link", "set", "lo", "up"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let out = holder
            .cmd("wget")
            .args(["-q", "-T", "2", "-t", "1", "-O", "-"])
            .arg("http://127.0.0.1:18080/index.html")
            .output()
            .expect("spawn wget");
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if !body.is_empty() {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no answer on 127.0.0.1:18080: {}; ports {:?}; ps {}; logs {:?}",
            String::from_utf8_lossy(&out.stderr),
            d.run(&["port", "web"]),
            d.ok(&["ps", "-a"]),
            d.run(&["logs", "web"])
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(body.trim(), "hello-port");
    let port = d.ok(&["port", "web", "80"]);
    assert!(port.contains("0.0.0.0:18080"), "{port}");
    d.ok(&["rm", "-f", "web"]);
    wait_for("web gone", || {
        d.ok(&["ps", "-aq", "--filter", "name=web"])
            .trim()
            .is_empty()
    });
    d.assert_no_container_leftovers();
}
