//! `run --network bridge|NAME` through the CLI, every test inside a network namespace it
//! made (`Env::in_new_netns`): addresses from IPAM, pings between containers and to the
//! gateway, the namespace's "host" reaching a container, inspect's fields, and nothing left
//! (lease, veth) after stop, rm, or a monitor killed with SIGKILL.

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::net::{full_id, inspect, kill_monitor, leases, nft_table, run_sleeper, setup};
use cli_support::{wait_for, Env};
use pelagos_network::{NetworkCreate, Networks};

/// The kernel deletes a container's veth pair with its network namespace, a little after the
/// container ends.
fn wait_for_no_veth(env: &Env, id: &str) {
    wait_for("the veth to go with the namespace", || {
        !env.holder().links().contains(&veth_of(id))
    });
}

fn veth_of(id: &str) -> String {
    format!("pl{}", &id[..10])
}

#[test]
fn default_bridge_containers_reach_each_other_the_gateway_and_the_host() {
    let (_served, env, image) = setup();
    let a = run_sleeper(&env, &image, "ca", &["--network", "bridge"]);
    let _b = run_sleeper(&env, &image, "cb", &["--network", "bridge"]);
    let ip_a = inspect(&env, "ca", "{{.NetworkSettings.Networks.bridge.IPAddress}}");
    let ip_b = inspect(&env, "cb", "{{.NetworkSettings.IPAddress}}");
    let gateway = inspect(&env, "ca", "{{.NetworkSettings.Networks.bridge.Gateway}}");
    assert_eq!(gateway, "172.17.0.1");
    assert!(ip_a.starts_with("172.17.0.") && ip_b.starts_with("172.17.0."));
    assert_ne!(ip_a, ip_b);
    env.ok(&["exec", "cb", "ping", "-c1", "-W2", &ip_a]);
    env.ok(&["exec", "ca", "ping", "-c1", "-W2", &ip_b]);
    env.ok(&["exec", "ca", "ping", "-c1", "-W2", &gateway]);
    let route = env.ok(&["exec", "ca", "ip", "route"]);
    assert!(route.contains("default via 172.17.0.1 dev eth0"), "{route}");
    let hosts = env.ok(&["exec", "ca", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip_a}\t{}", &a[..12])), "{hosts}");
    // The host (the holder's namespace) reaches a container's server.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "bridge",
        &image,
        "sh",
        "-c",
        "echo hello-from-web > /tmp/index.html && exec httpd -f -p 8080 -h /tmp",
    ]);
    let ip_web = inspect(&env, "web", "{{.NetworkSettings.IPAddress}}");
    let url = format!("http://{ip_web}:8080/index.html");
    let mut body = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while body.is_empty() {
        let out = env
            .holder()
            .cmd("wget")
            .args(["-q", "-T", "2", "-t", "1", "-O", "-", &url])
            .output()
            .unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            Instant::now() < deadline,
            "wget {url} (GNU wget: the host's busybox wget crashes): {}; logs: {}",
            String::from_utf8_lossy(&out.stderr),
            env.ok(&["logs", "web"])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(body.trim(), "hello-from-web");
    // Masquerade and forwarding are pelagos's own table in this namespace.
    let table = env
        .holder()
        .ok("nft", &["list", "table", "inet", "pelagos"]);
    assert!(table.contains("masquerade"), "{table}");
    env.ok(&["rm", "-f", "ca", "cb", "web"]);
    assert!(leases(&env, "bridge").is_empty());
    // The veths go with the containers' namespaces, a little after them; the bridge stays.
    wait_for("the veths to go with the namespaces", || {
        env.holder()
            .links()
            .iter()
            .all(|l| !l.starts_with("pl") || l.starts_with("pl-"))
    });
    let links = env.holder().links();
    assert!(links.contains(&"pelagos0".to_string()), "{links:?}");
    env.assert_no_container_leftovers();
}

#[test]
fn inspect_shows_docker_s_endpoint_fields() {
    let (_served, env, image) = setup();
    let id = run_sleeper(&env, &image, "ep", &["--network", "bridge"]);
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["inspect", "ep"])).expect("inspect json");
    let settings = &v[0]["NetworkSettings"];
    let endpoint = &settings["Networks"]["bridge"];
    for key in [
        "IPAMConfig",
        "Links",
        "Aliases",
        "NetworkID",
        "EndpointID",
        "Gateway",
        "IPAddress",
        "IPPrefixLen",
        "IPv6Gateway",
        "GlobalIPv6Address",
        "GlobalIPv6PrefixLen",
        "MacAddress",
        "DriverOpts",
    ] {
        assert!(endpoint.get(key).is_some(), "{key} in {endpoint}");
    }
    let networks = Networks::open(&env.root).unwrap();
    let bridge = networks.get("bridge").unwrap();
    assert_eq!(endpoint["NetworkID"], bridge.id.as_str());
    assert_eq!(endpoint["EndpointID"].as_str().unwrap().len(), 64);
    assert_eq!(endpoint["IPPrefixLen"], 16);
    let ip = endpoint["IPAddress"].as_str().unwrap();
    let [a, b, c, d]: [u8; 4] = ip.parse::<std::net::Ipv4Addr>().unwrap().octets();
    let mac = format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}");
    assert_eq!(endpoint["MacAddress"], mac.as_str());
    // The legacy top-level fields mirror the default bridge's endpoint.
    for key in [
        "IPAddress",
        "Gateway",
        "MacAddress",
        "EndpointID",
        "IPPrefixLen",
    ] {
        assert_eq!(settings[key], endpoint[key], "{key}");
    }
    assert_eq!(leases(&env, "bridge"), vec![id.clone()]);
    assert_eq!(inspect(&env, "ep", "{{.HostConfig.NetworkMode}}"), "bridge");
    let eth0 = env.ok(&["exec", "ep", "cat", "/sys/class/net/eth0/address"]);
    assert_eq!(eth0.trim(), mac);
    // Stopped: no lease, no veth, the endpoint keeps its network only.
    env.ok(&["stop", "-t", "1", "ep"]);
    assert!(leases(&env, "bridge").is_empty());
    wait_for_no_veth(&env, &id);
    assert_eq!(inspect(&env, "ep", "{{.NetworkSettings.IPAddress}}"), "");
    assert_eq!(
        inspect(&env, "ep", "{{.NetworkSettings.Networks.bridge.NetworkID}}"),
        bridge.id
    );
    // Started again: the same address when it is free.
    env.ok(&["start", "ep"]);
    assert_eq!(inspect(&env, "ep", "{{.NetworkSettings.IPAddress}}"), ip);
    env.ok(&["rm", "-f", "ep"]);
    assert!(leases(&env, "bridge").is_empty());
    wait_for_no_veth(&env, &id);
    env.assert_no_container_leftovers();
}

#[test]
fn foreground_run_with_rm_leaves_no_lease_or_veth() {
    let (_served, env, image) = setup();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "bridge",
        &image,
        "sh",
        "-c",
        "ip -4 -o addr show eth0",
    ]);
    assert!(out.contains("172.17.0."), "{out}");
    assert!(leases(&env, "bridge").is_empty());
    wait_for("the veth to go with the namespace", || {
        env.holder()
            .links()
            .iter()
            .all(|l| !l.starts_with("pl") || l.starts_with("pl-"))
    });
    env.assert_no_container_leftovers();
}

#[test]
fn a_monitor_killed_with_sigkill_leaves_no_lease_or_veth_after_rm() {
    let (_served, env, image) = setup();
    let id = run_sleeper(&env, &image, "orphan", &["--network", "bridge"]);
    assert_eq!(leases(&env, "bridge"), vec![id.clone()]);
    kill_monitor(&env, &id);
    env.ok(&["rm", "-f", "orphan"]);
    assert!(leases(&env, "bridge").is_empty());
    wait_for_no_veth(&env, &id);
    env.assert_no_container_leftovers();
}

#[test]
fn a_user_network_works_the_same_and_takes_ip() {
    let (_served, env, image) = setup();
    let request = NetworkCreate::from_json(
        br#"{"Name": "appnet", "Driver": "bridge",
             "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}}"#,
    )
    .unwrap();
    let network = Networks::open(&env.root)
        .unwrap()
        .create(&request, &[])
        .unwrap();
    let fixed = run_sleeper(
        &env,
        &image,
        "fixed",
        &[
            "--network",
            "appnet",
            "--ip",
            "10.77.0.50",
            "--network-alias",
            "db",
        ],
    );
    let other = run_sleeper(&env, &image, "other", &["--network", "appnet"]);
    assert_eq!(
        inspect(
            &env,
            "fixed",
            "{{.NetworkSettings.Networks.appnet.IPAddress}}"
        ),
        "10.77.0.50"
    );
    assert_eq!(
        inspect(
            &env,
            "fixed",
            "{{json .NetworkSettings.Networks.appnet.Aliases}}"
        ),
        r#"["db"]"#
    );
    // No legacy top-level fields off the default bridge (Docker's behaviour).
    assert_eq!(inspect(&env, "fixed", "{{.NetworkSettings.IPAddress}}"), "");
    let ip_other = inspect(
        &env,
        "other",
        "{{.NetworkSettings.Networks.appnet.IPAddress}}",
    );
    assert!(ip_other.starts_with("10.77.0."), "{ip_other}");
    env.ok(&["exec", "other", "ping", "-c1", "-W2", "10.77.0.50"]);
    env.ok(&["exec", "fixed", "ping", "-c1", "-W2", "10.77.0.1"]);
    let bridge = network.bridge.clone().unwrap();
    assert!(env.holder().links().contains(&bridge));
    let mut held = leases(&env, "appnet");
    held.sort();
    let mut want = vec![fixed.clone(), other.clone()];
    want.sort();
    assert_eq!(held, want);
    // The address of a running container is not given twice.
    let (code, err) = env.fail(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "--ip",
        "10.77.0.50",
        &image,
        "true",
    ]);
    assert_eq!(code, 125, "{err}");
    env.ok(&["rm", "-f", "fixed", "other"]);
    assert!(leases(&env, "appnet").is_empty());
    wait_for_no_veth(&env, &fixed);
    wait_for_no_veth(&env, &other);
    env.assert_no_container_leftovers();
}

#[test]
fn unknown_networks_and_misplaced_flags_fail_with_125_leaving_nothing() {
    let (_served, env, image) = setup();
    let (code, err) = env.fail(&["run", "--rm", "--network", "nope", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("network nope not found"), "{err}");
    let (code, err) = env.fail(&["run", "--network", "bridge", "--ip", "172.17.0.9", &image]);
    assert_eq!(code, 125);
    assert!(err.contains("user defined networks only"), "{err}");
    let (code, err) = env.fail(&["run", "--network", "none", "--ip", "10.0.0.9", &image]);
    assert_eq!(code, 125);
    assert!(err.contains("bridge network"), "{err}");
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
    env.assert_no_container_leftovers();
}

#[test]
fn none_and_host_are_unchanged() {
    let (_served, env, image) = setup();
    let links = |network: &str| -> Vec<String> {
        let out = env.ok(&[
            "run",
            "--rm",
            "--network",
            network,
            &image,
            "ls",
            "/sys/class/net",
        ]);
        let mut names: Vec<String> = out.split_whitespace().map(str::to_string).collect();
        names.sort();
        names
    };
    assert_eq!(links("none"), ["lo"]);
    let mut holder = env.holder().links();
    holder.sort();
    assert_eq!(links("host"), holder);
    assert!(!Networks::open(&env.root)
        .unwrap()
        .list()
        .unwrap()
        .iter()
        .any(|n| n.name == "bridge"));
    env.assert_no_container_leftovers();
}

#[test]
fn network_rm_takes_its_bridge_and_rules_with_it() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.79.0.0/24", "gone"]);
    let bridge = Networks::open(&env.root)
        .unwrap()
        .get("gone")
        .unwrap()
        .bridge
        .expect("a user network names its bridge");
    // Never used: no bridge yet, and rm has nothing to undo.
    assert!(!env.holder().links().contains(&bridge));
    run_sleeper(&env, &image, "user", &["--network", "gone"]);
    assert!(env.holder().links().contains(&bridge));
    let table = env
        .holder()
        .ok("nft", &["list", "table", "inet", "pelagos"]);
    assert!(table.contains(&bridge), "{table}");
    // In use: refused, nothing undone.
    let (code, err) = env.fail(&["network", "rm", "gone"]);
    assert_eq!(code, 1, "{err}");
    assert!(env.holder().links().contains(&bridge));
    env.ok(&["rm", "-f", "user"]);
    assert_eq!(env.ok(&["network", "rm", "gone"]).trim(), "gone");
    assert!(
        !env.holder().links().contains(&bridge),
        "bridge {bridge} left"
    );
    // It was the table's only network: the table goes too.
    let listing = env
        .holder()
        .cmd("nft")
        .args(["list", "tables"])
        .output()
        .unwrap();
    let tables = String::from_utf8_lossy(&listing.stdout);
    assert!(!tables.contains("pelagos"), "{tables}");
    env.assert_no_container_leftovers();
}

/// GNU wget's body of `url` from the holder's namespace (the host's busybox wget crashes),
/// retried until the server answers.
fn fetch(env: &Env, url: &str, logs_of: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env
            .holder()
            .cmd("wget")
            .args(["-q", "-T", "2", "-t", "1", "-O", "-", url])
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        if !body.is_empty() {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "wget {url}: {}; logs: {}",
            String::from_utf8_lossy(&out.stderr),
            env.ok(&["logs", logs_of])
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `run -d --network bridge EXTRA… IMAGE` serving `body` with httpd on port 80.
fn run_web(env: &Env, image: &str, name: &str, extra: &[&str], body: &str) -> String {
    let script =
        format!("mkdir -p /www && echo {body} > /www/index.html && exec httpd -f -p 80 -h /www");
    let mut args = vec!["run", "-d", "--name", name, "--network", "bridge"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sh", "-c", &script]);
    env.ok(&args);
    full_id(env, name)
}

fn host_ports_of(env: &Env, id: &str) -> usize {
    let ports = pelagos_network::HostPorts::open(&env.root).unwrap();
    ports
        .list()
        .unwrap()
        .iter()
        .filter(|p| p.container_id == id)
        .count()
}

#[test]
fn published_ports_answer_on_loopback_and_the_gateway_and_go_with_the_container() {
    let (_served, env, image) = setup();
    env.holder().ok("ip", &["link", "set", "lo", "up"]);
    let id = run_web(&env, &image, "web", &["-p", "8080:80"], "hello-published");
    assert_eq!(env.ok(&["port", "web"]).trim(), "80/tcp -> 0.0.0.0:8080");
    assert_eq!(env.ok(&["port", "web", "80"]).trim(), "0.0.0.0:8080");
    let ports = inspect(&env, "web", "{{json .NetworkSettings.Ports}}");
    assert_eq!(
        ports,
        r#"{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}"#
    );
    let body = fetch(&env, "http://127.0.0.1:8080/index.html", "web");
    assert_eq!(body.trim(), "hello-published");
    let gateway = inspect(&env, "web", "{{.NetworkSettings.Gateway}}");
    let body = fetch(&env, &format!("http://{gateway}:8080/index.html"), "web");
    assert_eq!(body.trim(), "hello-published");
    let row = env.ok(&["ps", "--format", "{{.Names}} {{.Ports}}"]);
    assert_eq!(row.trim(), "web 0.0.0.0:8080->80/tcp");
    assert!(nft_table(&env).contains(&format!("ports-{id}")));
    // The same host port again: Docker's message, and nothing left of the second one.
    let (code, err) = env.fail(&[
        "run",
        "-d",
        "--name",
        "web2",
        "--network",
        "bridge",
        "-p",
        "8080:80",
        &image,
        "sleep",
        "1000",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Error response from daemon: driver failed programming external connectivity on endpoint web2 (")
            && err.contains("): Bind for 0.0.0.0:8080 failed: port is already allocated"),
        "{err}"
    );
    let web2 = env.run(&["inspect", "--format", "{{.Id}}", "web2"]);
    if web2.status.success() {
        let id2 = String::from_utf8_lossy(&web2.stdout).trim().to_string();
        assert_eq!(host_ports_of(&env, &id2), 0);
        assert!(!nft_table(&env).contains(&format!("ports-{id2}")));
        assert!(!leases(&env, "bridge").contains(&id2));
        assert!(inspect(&env, "web2", "{{json .NetworkSettings.Ports}}") == "{}");
        env.ok(&["rm", "-f", "web2"]);
    }
    assert_eq!(leases(&env, "bridge"), vec![id.clone()]);
    env.ok(&["rm", "-f", "web"]);
    assert_eq!(host_ports_of(&env, &id), 0);
    assert!(!nft_table(&env).contains("ports-"), "{}", nft_table(&env));
    env.assert_no_container_leftovers();
}

#[test]
fn publish_all_takes_an_ephemeral_port_for_each_exposed_one() {
    let (_served, env, image) = setup();
    env.holder().ok("ip", &["link", "set", "lo", "up"]);
    let id = run_web(&env, &image, "all", &["--expose", "80", "-P"], "hello-all");
    let line = env.ok(&["port", "all"]);
    let host_port = line
        .trim()
        .strip_prefix("80/tcp -> 0.0.0.0:")
        .unwrap_or_else(|| panic!("port all: {line}"));
    let number: u16 = host_port.parse().unwrap();
    assert!(pelagos_network::ports::ephemeral_range().contains(&number));
    let body = fetch(
        &env,
        &format!("http://127.0.0.1:{number}/index.html"),
        "all",
    );
    assert_eq!(body.trim(), "hello-all");
    // Stopped: nothing published, nothing shown.
    env.ok(&["stop", "-t", "1", "all"]);
    assert_eq!(env.ok(&["port", "all"]).trim(), "");
    assert_eq!(host_ports_of(&env, &id), 0);
    assert!(!nft_table(&env).contains("ports-"));
    env.ok(&["rm", "all"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_monitor_killed_with_sigkill_leaves_no_published_port_after_rm() {
    let (_served, env, image) = setup();
    let id = run_web(&env, &image, "orphanweb", &["-p", "8081:80"], "x");
    assert_eq!(host_ports_of(&env, &id), 1);
    kill_monitor(&env, &id);
    env.ok(&["rm", "-f", "orphanweb"]);
    assert_eq!(host_ports_of(&env, &id), 0);
    assert!(!nft_table(&env).contains("ports-"), "{}", nft_table(&env));
    env.assert_no_container_leftovers();
}

#[test]
fn publishing_needs_a_network() {
    let (_served, env, image) = setup();
    let (code, err) = env.fail(&["run", "--network", "none", "-p", "80", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("--network none"), "{err}");
    let (code, err) = env.fail(&["run", "--expose", "80:80", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("invalid port format for --expose"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn without_network_flags_a_container_is_on_docker_s_default_bridge() {
    // The issue's "done means", as a new user types it: no --network anywhere.
    let (_served, env, image) = setup();
    env.holder().ok("ip", &["link", "set", "lo", "up"]);
    let script =
        "mkdir -p /www && echo by-default > /www/index.html && exec httpd -f -p 80 -h /www";
    env.ok(&[
        "run", "-d", "--name", "web", "-p", "8080:80", &image, "sh", "-c", script,
    ]);
    assert_eq!(
        inspect(&env, "web", "{{.HostConfig.NetworkMode}}"),
        "bridge"
    );
    assert!(inspect(&env, "web", "{{.NetworkSettings.IPAddress}}").starts_with("172.17."));
    let body = fetch(&env, "http://127.0.0.1:8080/index.html", "web");
    assert_eq!(body.trim(), "by-default");
    // The test's namespace starts with forwarding off: `info` says pelagos switched it on.
    let info = env.ok(&["info"]);
    assert!(
        info.contains(
            "WARNING: net.ipv4.ip_forward was off; pelagos switched it on for network bridge"
        ),
        "{info}"
    );
    let out = env.ok(&[
        "run", "--rm", &image, "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(out.contains("172.17."), "{out}");
    env.ok(&["rm", "-f", "web"]);
    assert!(leases(&env, "bridge").is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn ps_filters_by_network_name_or_id() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.79.0.0/24", "app"]);
    run_sleeper(&env, &image, "on-app", &["--network", "app"]);
    run_sleeper(&env, &image, "on-bridge", &["--network", "bridge"]);
    let names = |filter: &str| {
        env.ok(&["ps", "--filter", filter, "--format", "{{.Names}}"])
            .trim()
            .to_string()
    };
    let app_id = env.ok(&["network", "inspect", "--format", "{{.Id}}", "app"]);
    assert_eq!(names("network=app"), "on-app");
    assert_eq!(names(&format!("network={}", app_id.trim())), "on-app");
    assert_eq!(names("network=bridge"), "on-bridge");
    assert_eq!(names("network=ap"), "", "names match exactly, as moby's");
    env.ok(&["rm", "-f", "on-app", "on-bridge"]);
    env.ok(&["network", "rm", "app"]);
    env.assert_no_container_leftovers();
}
