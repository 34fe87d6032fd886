//! Published ports beyond the basics of network_run.rs, every test inside a network namespace
//! it made (`Env::in_new_netns`): a container reaching its own published port through the
//! host (hairpin), an image's EXPOSE, `ps --filter publish/expose`, dual-stack publishing on
//! an `--ipv6` network.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::net::inspect;
use cli_support::{Env, Served};
use pelagos_testkit::images::busybox;
use pelagos_testkit::registry::Auth;

/// busybox as `box:1`, and the same with `EXPOSE 80/tcp 53/udp` as `web:1`, pulled in the
/// test's own namespace, then an env whose pelagos runs in a new one.
fn setup() -> (Served, Env, String, String) {
    let plain = busybox().expect("build busybox").cmd(["sh"]);
    let exposing = busybox()
        .expect("build busybox")
        .cmd(["sh"])
        .expose("80/tcp")
        .expose("53/udp");
    let served = Served::start(Auth::None, &[(&plain, "box:1"), (&exposing, "web:1")]);
    let env = Env::new();
    let (image, web) = (served.image("box:1"), served.image("web:1"));
    env.ok(&["pull", "-q", &image]);
    env.ok(&["pull", "-q", &web]);
    (served, env.in_new_netns(), image, web)
}

/// `run -d --name NAME EXTRA… IMAGE` serving `body` with httpd on port 80.
fn run_web(env: &Env, image: &str, name: &str, extra: &[&str], body: &str) {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sh", "-c", &script]);
    env.ok(&args);
}

/// The body of `url` fetched by `fetcher` (a command given the URL last), retried until the
/// server answers.
fn fetch_with(env: &Env, fetcher: &dyn Fn(&str) -> std::process::Output, url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = fetcher(url);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if !body.is_empty() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "fetch {url}: {}; ps: {}",
            String::from_utf8_lossy(&out.stderr),
            env.ok(&["ps", "-a"])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /index.html` from inside container `name` with busybox nc (its wget crashes on this
/// machine's busybox), printing the response, headers and all.
fn fetch_in(env: &Env, name: &str, host: &str, port: u16) -> String {
    let script = format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} {port}");
    let nc = |_: &str| {
        env.cmd()
            .args(["exec", name, "sh", "-c", &script])
            .output()
            .unwrap()
    };
    fetch_with(env, &nc, &format!("{host}:{port} from {name}"))
}

/// GNU wget in the holder's namespace (the pelagos "host"; its busybox wget crashes).
fn fetch_from_host(env: &Env, url: &str) -> String {
    let wget = |url: &str| {
        (env.holder().cmd("wget"))
            .args(["-q", "-T", "2", "-t", "1", "-O", "-", url])
            .output()
            .unwrap()
    };
    fetch_with(env, &wget, url)
}

#[test]
fn a_container_reaches_its_own_published_port_through_the_host() {
    let (_served, env, image, _) = setup();
    run_web(
        &env,
        &image,
        "self",
        &["--network", "bridge", "-p", "8080:80"],
        "hello-hairpin",
    );
    let id = inspect(&env, "self", "{{.Id}}");
    let port = env.holder().ok(
        "ip",
        &[
            "-d",
            "-o",
            "link",
            "show",
            "dev",
            &format!("pl{}", &id[..10]),
        ],
    );
    assert!(port.contains("hairpin on"), "{port}");
    // The gateway is the host's address on the bridge: the DNAT'd request goes back out of
    // the bridge port it came in by (bridge netfilter on: bridged, not routed).
    let gateway = inspect(&env, "self", "{{.NetworkSettings.Gateway}}");
    let response = fetch_in(&env, "self", &gateway, 8080);
    assert!(response.contains("hello-hairpin"), "{response}");
    env.ok(&["rm", "-f", "self"]);
    env.assert_no_container_leftovers();
}

#[test]
fn an_image_s_expose_is_in_the_config_and_shown_unpublished() {
    let (_served, env, _, web) = setup();
    env.ok(&["create", "--name", "made", "--expose", "8080", &web, "true"]);
    assert_eq!(
        inspect(&env, "made", "{{json .Config.ExposedPorts}}"),
        r#"{"53/udp":{},"80/tcp":{},"8080/tcp":{}}"#
    );
    assert_eq!(
        inspect(&env, "made", "{{json .NetworkSettings.Ports}}"),
        "{}"
    );
    env.ok(&[
        "run",
        "-d",
        "--name",
        "exp",
        "--network",
        "bridge",
        &web,
        "sleep",
        "1000",
    ]);
    assert_eq!(
        inspect(&env, "exp", "{{json .NetworkSettings.Ports}}"),
        r#"{"53/udp":null,"80/tcp":null}"#
    );
    let row = env.ok(&["ps", "--filter", "name=exp", "--format", "{{.Ports}}"]);
    assert_eq!(row.trim(), "53/udp, 80/tcp");
    assert_eq!(env.ok(&["port", "exp"]).trim(), "");
    let (code, err) = env.fail(&["port", "exp", "80"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("No public port '80' published for exp"),
        "{err}"
    );
    // -P publishes the image's ports; one given with -p keeps its binding.
    run_web(
        &env,
        &web,
        "all",
        &["--network", "bridge", "-P", "-p", "5353:53/udp"],
        "hello-expose",
    );
    let lines = env.ok(&["port", "all"]);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0], "53/udp -> 0.0.0.0:5353");
    let host_port = (lines[1].strip_prefix("80/tcp -> 0.0.0.0:"))
        .unwrap_or_else(|| panic!("port all: {lines:?}"));
    let row = env.ok(&["ps", "--filter", "name=all", "--format", "{{.Ports}}"]);
    assert_eq!(
        row.trim(),
        format!("0.0.0.0:5353->53/udp, 0.0.0.0:{host_port}->80/tcp")
    );
    env.holder().ok("ip", &["link", "set", "lo", "up"]);
    let url = format!("http://127.0.0.1:{host_port}/index.html");
    assert_eq!(fetch_from_host(&env, &url).trim(), "hello-expose");
    // Stopped: nothing shown, as Docker.
    env.ok(&["stop", "-t", "0", "exp"]);
    assert_eq!(
        inspect(&env, "exp", "{{json .NetworkSettings.Ports}}"),
        "{}"
    );
    env.ok(&["rm", "-f", "made", "exp", "all"]);
    env.assert_no_container_leftovers();
}

#[test]
fn ps_filters_on_published_and_exposed_ports() {
    let (_served, env, image, web) = setup();
    let create = |name: &str, extra: &[&str], image: &str| {
        let mut args = vec!["create", "--name", name, "--network", "bridge"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, "true"]);
        env.ok(&args);
    };
    create("pub", &["-p", "8080:80"], &image);
    create("udp", &["--expose", "9000-9001/udp"], &image);
    create("img", &[], &web);
    create("bare", &[], &image);
    let names = |filters: &[&str]| -> Vec<String> {
        let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
        for f in filters {
            args.extend_from_slice(&["--filter", f]);
        }
        let mut names: Vec<String> = env.ok(&args).lines().map(str::to_string).collect();
        names.sort();
        names
    };
    // publish: a binding of the container port (moby's rule), whatever its host port.
    assert_eq!(names(&["publish=80"]), ["pub"]);
    assert_eq!(names(&["publish=80/tcp"]), ["pub"]);
    assert!(names(&["publish=8080"]).is_empty());
    assert!(names(&["publish=80/udp"]).is_empty());
    assert_eq!(names(&["publish=1-100"]), ["pub"]);
    // expose: `Config.ExposedPorts`, which -p, --expose and the image's EXPOSE fill.
    assert_eq!(names(&["expose=80"]), ["img", "pub"]);
    assert_eq!(names(&["expose=9001/udp"]), ["udp"]);
    assert_eq!(names(&["expose=53-9000/udp"]), ["img", "udp"]);
    assert_eq!(names(&["expose=80", "publish=80"]), ["pub"]);
    assert_eq!(names(&["expose=53/udp", "expose=9000/udp"]), ["img", "udp"]);
    let (code, err) = env.fail(&["ps", "--filter", "publish=8080:80"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("filter for 'publish' should not contain ':': 8080:80"),
        "{err}"
    );
    let (_, err) = env.fail(&["ps", "--filter", "expose=http"]);
    assert!(
        err.contains("error while looking up for expose http"),
        "{err}"
    );
    env.ok(&["rm", "pub", "udp", "img", "bare"]);
    env.assert_no_container_leftovers();
}

#[test]
fn on_an_ipv6_network_ports_are_published_on_both_families() {
    let (_served, env, image, _) = setup();
    env.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:1::/64",
        "v6net",
    ]);
    run_web(
        &env,
        &image,
        "dual",
        &["--network", "v6net", "-p", "8080:80"],
        "hello-dual",
    );
    assert_eq!(
        env.ok(&["port", "dual"]).trim(),
        "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080"
    );
    let row = env.ok(&["ps", "--filter", "name=dual", "--format", "{{.Ports}}"]);
    assert_eq!(row.trim(), "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp");
    let ip6 = inspect(
        &env,
        "dual",
        "{{.NetworkSettings.Networks.v6net.GlobalIPv6Address}}",
    );
    assert!(ip6.starts_with("fd00:1::"), "{ip6}");
    // The host's own v6 address on the network (not ::1: see docs/network.md) and its v4 one.
    let gateway6 = inspect(
        &env,
        "dual",
        "{{.NetworkSettings.Networks.v6net.IPv6Gateway}}",
    );
    let url = format!("http://[{gateway6}]:8080/index.html");
    assert_eq!(fetch_from_host(&env, &url).trim(), "hello-dual");
    let gateway4 = inspect(&env, "dual", "{{.NetworkSettings.Networks.v6net.Gateway}}");
    let url = format!("http://{gateway4}:8080/index.html");
    assert_eq!(fetch_from_host(&env, &url).trim(), "hello-dual");
    // Another container reaches it through the host's v6 address (v6 hairpin NAT).
    env.ok(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "v6net",
        &image,
        "sleep",
        "1000",
    ]);
    let response = fetch_in(&env, "client", &gateway6, 8080);
    assert!(response.contains("hello-dual"), "{response}");
    // One host address of the family: only that one.
    run_web(
        &env,
        &image,
        "onlyv6",
        &["--network", "v6net", "-p", &format!("[{gateway6}]:8081:80")],
        "hello-v6",
    );
    assert_eq!(
        env.ok(&["port", "onlyv6"]).trim(),
        format!("80/tcp -> [{gateway6}]:8081")
    );
    let url = format!("http://[{gateway6}]:8081/index.html");
    assert_eq!(fetch_from_host(&env, &url).trim(), "hello-v6");
    let rules = env
        .holder()
        .ok("nft", &["list", "table", "inet", "pelagos"]);
    assert!(rules.contains("dnat ip6 to"), "{rules}");
    assert!(rules.contains("ip6 daddr != ::1"), "{rules}");
    env.ok(&["rm", "-f", "dual", "client", "onlyv6"]);
    env.ok(&["network", "rm", "v6net"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_v4_only_network_publishes_on_v4_only_and_refuses_v6_addresses() {
    let (_served, env, image, _) = setup();
    let (code, err) = env.fail(&[
        "run",
        "-d",
        "--name",
        "v6lo",
        "--network",
        "bridge",
        "-p",
        "[::1]:8080:80",
        &image,
        "true",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("cannot publish on ::1"), "{err}");
    let (code, err) = env.fail(&[
        "run",
        "-d",
        "--name",
        "v6doc",
        "--network",
        "bridge",
        "-p",
        "[2001:db8::1]:8080:80",
        &image,
        "sleep",
        "1000",
    ]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("no IPv6 address"), "{err}");
    let ports = pelagos_network::HostPorts::open(&env.root).unwrap();
    assert!(ports.list().unwrap().is_empty());
    env.ok(&["rm", "-f", "v6doc"]);
    env.assert_no_container_leftovers();
}
