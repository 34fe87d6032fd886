//! Several networks per container, `network connect`/`disconnect` (running and stopped),
//! `--network container:NAME` and `--add-host NAME:host-gateway` through the CLI, every test
//! inside a network namespace it made (`Env::in_new_netns`).

mod cli_support;

use std::time::{Duration, Instant};

use cli_support::net::{full_id, inspect, kill_monitor, leases, nft_table, run_sleeper, setup};
use cli_support::{wait_for, Env};

fn ip_on(env: &Env, name: &str, network: &str) -> String {
    let format = format!("{{{{.NetworkSettings.Networks.{network}.IPAddress}}}}");
    inspect(env, name, &format)
}

/// The interfaces inside a running container, sorted.
fn interfaces(env: &Env, name: &str) -> Vec<String> {
    let out = env.ok(&["exec", name, "ls", "/sys/class/net"]);
    let mut names: Vec<String> = out.split_whitespace().map(str::to_string).collect();
    names.sort();
    names
}

fn no_container_veths(env: &Env) -> bool {
    env.holder()
        .links()
        .iter()
        .all(|l| !l.starts_with("pl") || l.starts_with("pl-"))
}

#[test]
fn a_running_container_joins_and_leaves_a_second_network() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.81.0.0/24", "one"]);
    env.ok(&["network", "create", "--subnet", "10.82.0.0/24", "two"]);
    let a = run_sleeper(&env, &image, "aa", &["--network", "one"]);
    run_sleeper(&env, &image, "bb", &["--network", "two"]);
    let ip_b = ip_on(&env, "bb", "two");
    env.ok(&["network", "connect", "two", "aa"]);
    assert_eq!(interfaces(&env, "aa"), ["eth0", "eth1", "lo"]);
    let ip_a2 = ip_on(&env, "aa", "two");
    assert!(ip_a2.starts_with("10.82.0."), "{ip_a2}");
    let eth1 = env.ok(&["exec", "aa", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains(&format!("{ip_a2}/24")), "{eth1}");
    env.ok(&["exec", "aa", "ping", "-c1", "-W2", &ip_b]);
    let route = env.ok(&["exec", "aa", "ip", "route"]);
    assert!(route.contains("default via 10.81.0.1 dev eth0"), "{route}");
    assert!(!route.contains("default via 10.82.0.1"), "{route}");
    let hosts = env.ok(&["exec", "aa", "cat", "/etc/hosts"]);
    assert!(hosts.contains(&format!("{ip_a2}\t{}", &a[..12])), "{hosts}");
    assert_eq!(
        inspect(&env, "aa", "{{len .NetworkSettings.Networks}}"),
        "2"
    );
    let members = env.ok(&[
        "network",
        "inspect",
        "--format",
        "{{json .Containers}}",
        "two",
    ]);
    assert!(members.contains(&a), "{members}");
    // Connected twice: Docker's words, exit 1.
    let (code, err) = env.fail(&["network", "connect", "two", "aa"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("endpoint with name aa already exists in network two"),
        "{err}"
    );
    // A network a connected container uses cannot be removed.
    env.ok(&["rm", "-f", "bb"]);
    let (code, err) = env.fail(&["network", "rm", "two"]);
    assert_eq!(code, 1, "{err}");
    // Disconnected: eth1, its lease, its hosts line and its endpoint go.
    env.ok(&["network", "disconnect", "two", "aa"]);
    assert_eq!(interfaces(&env, "aa"), ["eth0", "lo"]);
    assert!(leases(&env, "two").is_empty());
    assert_eq!(
        inspect(&env, "aa", "{{len .NetworkSettings.Networks}}"),
        "1"
    );
    let hosts = env.ok(&["exec", "aa", "cat", "/etc/hosts"]);
    assert!(!hosts.contains(&ip_a2), "{hosts}");
    assert!(!env.holder().links().contains(&format!("pl{}-1", &a[..10])));
    let (code, err) = env.fail(&["network", "disconnect", "two", "aa"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("is not connected to the network two"), "{err}");
    // The address is free again.
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "two",
        "--ip",
        &ip_a2,
        &image,
        "true",
    ]);
    // Again, with an address and an alias of its own.
    env.ok(&[
        "network",
        "connect",
        "--ip",
        "10.82.0.77",
        "--alias",
        "web",
        "two",
        "aa",
    ]);
    let eth1 = env.ok(&["exec", "aa", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains("10.82.0.77/24"), "{eth1}");
    assert_eq!(
        inspect(&env, "aa", "{{json .NetworkSettings.Networks.two.Aliases}}"),
        r#"["web"]"#
    );
    let (code, err) = env.fail(&["network", "rm", "one"]);
    assert_eq!(code, 1, "{err}");
    env.ok(&["rm", "-f", "aa"]);
    assert!(leases(&env, "one").is_empty() && leases(&env, "two").is_empty());
    wait_for("the veths to go with the namespace", || {
        no_container_veths(&env)
    });
    env.assert_no_container_leftovers();
}

#[test]
fn a_stopped_container_is_connected_at_its_next_start() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.83.0.0/24", "one"]);
    env.ok(&["network", "create", "--subnet", "10.84.0.0/24", "two"]);
    env.ok(&[
        "create",
        "--name",
        "cc",
        "--network",
        "one",
        &image,
        "sleep",
        "1000",
    ]);
    let (code, err) = env.fail(&["network", "connect", "--ip", "10.99.0.9", "two", "cc"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no configured subnet or ip-range contain the IP address 10.99.0.9"),
        "{err}"
    );
    env.ok(&["network", "connect", "two", "cc"]);
    assert_eq!(
        inspect(&env, "cc", "{{len .NetworkSettings.Networks}}"),
        "2"
    );
    assert_eq!(ip_on(&env, "cc", "two"), "");
    env.ok(&["start", "cc"]);
    assert_eq!(interfaces(&env, "cc"), ["eth0", "eth1", "lo"]);
    let eth0 = env.ok(&["exec", "cc", "ip", "-4", "-o", "addr", "show", "eth0"]);
    assert!(eth0.contains("10.83.0."), "{eth0}");
    let eth1 = env.ok(&["exec", "cc", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(eth1.contains("10.84.0."), "{eth1}");
    // Stopped, its first network left: the other is eth0 and the default route next time.
    env.ok(&["stop", "-t", "1", "cc"]);
    env.ok(&["network", "disconnect", "one", "cc"]);
    assert!(leases(&env, "one").is_empty() && leases(&env, "two").is_empty());
    env.ok(&["start", "cc"]);
    assert_eq!(interfaces(&env, "cc"), ["eth0", "lo"]);
    let route = env.ok(&["exec", "cc", "ip", "route"]);
    assert!(route.contains("default via 10.84.0.1 dev eth0"), "{route}");
    env.ok(&["rm", "-f", "cc"]);
    assert!(leases(&env, "two").is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn connect_and_disconnect_refuse_as_docker_does() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.85.0.0/24", "one"]);
    run_sleeper(&env, &image, "onhost", &["--network", "host"]);
    run_sleeper(&env, &image, "alone", &["--network", "none"]);
    run_sleeper(&env, &image, "member", &["--network", "one"]);
    run_sleeper(&env, &image, "joiner", &["--network", "container:member"]);
    let refused = [
        (
            vec!["connect", "one", "onhost"],
            "container sharing network namespace with another container or host cannot be \
             connected to any other network",
        ),
        (
            vec!["connect", "one", "joiner"],
            "container sharing network namespace with another container or host cannot be \
             connected to any other network",
        ),
        (
            vec!["disconnect", "host", "onhost"],
            "container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["connect", "host", "member"],
            "container cannot be disconnected from host network or connected to host network",
        ),
        (
            vec!["connect", "one", "alone"],
            "container cannot be connected to multiple networks with one of the networks in \
             private (none) mode",
        ),
        (vec!["connect", "nope", "member"], "network nope not found"),
        (
            vec!["connect", "one", "nobody"],
            "No such container: nobody",
        ),
        (
            vec!["disconnect", "one", "nobody"],
            "No such container: nobody",
        ),
        (
            vec!["connect", "--ip", "172.17.0.9", "bridge", "member"],
            "user defined networks only",
        ),
    ];
    for (args, words) in refused {
        let mut full = vec!["network"];
        full.extend_from_slice(&args);
        let (code, err) = env.fail(&full);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
    // `disconnect -f` forgets a network that is gone, but only one the container lists.
    let (code, err) = env.fail(&["network", "disconnect", "-f", "gone", "member"]);
    assert_eq!(code, 1, "{err}");
    env.ok(&["rm", "-f", "onhost", "alone", "joiner", "member"]);
    env.assert_no_container_leftovers();
}

#[test]
fn container_mode_shares_the_donor_s_network_and_files() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.86.0.0/24", "one"]);
    let script =
        "mkdir -p /www && echo hello-db > /www/index.html && exec httpd -f -p 8080 -h /www";
    env.ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "one",
        &image,
        "sh",
        "-c",
        script,
    ]);
    let db = full_id(&env, "db");
    let mac = env.ok(&["exec", "db", "cat", "/sys/class/net/eth0/address"]);
    let seen = env.ok(&[
        "run",
        "--rm",
        "--net",
        "container:db",
        &image,
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(seen, mac);
    let addrs = |args: &[&str]| -> String {
        let mut full = args.to_vec();
        full.extend_from_slice(&["ip", "-4", "-o", "addr", "show", "eth0"]);
        let out = env.ok(&full);
        out.split_whitespace()
            .nth(3)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        addrs(&["run", "--rm", "--network", "container:db", &image]),
        addrs(&["exec", "db"])
    );
    // db's server on the shared loopback, retried until it listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = env.run(&[
            "run",
            "--rm",
            "--network",
            &format!("container:{}", &db[..12]),
            &image,
            "wget",
            "-q",
            "-O",
            "-",
            "http://127.0.0.1:8080/index.html",
        ]);
        if String::from_utf8_lossy(&out.stdout).trim() == "hello-db" {
            break;
        }
        assert!(Instant::now() < deadline, "{out:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The donor's /etc files and hostname; inspect names the donor by id.
    env.ok(&[
        "create",
        "--name",
        "side",
        "--network",
        "container:db",
        &image,
        "sleep",
        "1000",
    ]);
    assert_eq!(
        inspect(&env, "side", "{{.HostConfig.NetworkMode}}"),
        format!("container:{db}")
    );
    env.ok(&["start", "side"]);
    for file in ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname"] {
        assert_eq!(
            env.ok(&["exec", "side", "cat", file]),
            env.ok(&["exec", "db", "cat", file]),
            "{file}"
        );
    }
    assert_eq!(
        inspect(&env, "side", "{{len .NetworkSettings.Networks}}"),
        "0"
    );
    // A join of a joiner: the same namespace, the first donor's files.
    let chained = env.ok(&[
        "run",
        "--rm",
        "--network",
        "container:side",
        &image,
        "cat",
        "/etc/hosts",
        "/sys/class/net/eth0/address",
    ]);
    let theirs = env.ok(&[
        "exec",
        "db",
        "cat",
        "/etc/hosts",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(chained, theirs);
    // What cannot go with another container's network (Docker's words), exit 125.
    let conflicts: [(&[&str], &str); 6] = [
        (
            &["-p", "80:80"],
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            &["--hostname", "x"],
            "conflicting options: hostname and the network mode",
        ),
        (
            &["--dns", "1.1.1.1"],
            "conflicting options: dns and the network mode",
        ),
        (
            &["--add-host", "a:1.2.3.4"],
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            &["--mac-address", "02:42:ac:11:00:09"],
            "conflicting options: mac-address and the network mode",
        ),
        (&["--network-alias", "x"], "conflicting options"),
    ];
    for (flags, words) in conflicts {
        let mut args = vec!["run", "--rm", "--network", "container:db"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&image, "true"]);
        let (code, err) = env.fail(&args);
        assert_eq!(code, 125, "{flags:?}: {err}");
        assert!(err.contains(words), "{flags:?}: {err}");
    }
    let (code, err) = env.fail(&[
        "run",
        "--rm",
        "--network",
        "container:nobody",
        &image,
        "true",
    ]);
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No such container: nobody"), "{err}");
    env.ok(&["rm", "-f", "side"]);
    env.ok(&["stop", "-t", "1", "db"]);
    let (code, err) = env.fail(&["run", "--rm", "--net", "container:db", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("cannot join network of a non running container: "),
        "{err}"
    );
    env.ok(&["rm", "-f", "db"]);
    env.assert_no_container_leftovers();
}

#[test]
fn add_host_host_gateway_is_the_default_bridge_s_gateway() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.87.0.0/24", "one"]);
    for network in ["bridge", "one", "none"] {
        let hosts = env.ok(&[
            "run",
            "--rm",
            "--network",
            network,
            "--add-host",
            "gw:host-gateway",
            &image,
            "cat",
            "/etc/hosts",
        ]);
        assert!(hosts.contains("172.17.0.1\tgw\n"), "{network}: {hosts}");
    }
    env.assert_no_container_leftovers();
}

#[test]
fn a_monitor_killed_with_two_networks_leaves_nothing_after_rm() {
    let (_served, env, image) = setup();
    env.ok(&["network", "create", "--subnet", "10.88.0.0/24", "one"]);
    env.ok(&["network", "create", "--subnet", "10.89.0.0/24", "two"]);
    let id = run_sleeper(
        &env,
        &image,
        "orphan",
        &["--network", "one", "-p", "8089:80"],
    );
    env.ok(&["network", "connect", "two", "orphan"]);
    assert_eq!(leases(&env, "one"), vec![id.clone()]);
    assert_eq!(leases(&env, "two"), vec![id.clone()]);
    let chain = format!("ports-{id}");
    assert!(nft_table(&env).contains(&chain));
    kill_monitor(&env, &id);
    env.ok(&["rm", "-f", "orphan"]);
    assert!(leases(&env, "one").is_empty() && leases(&env, "two").is_empty());
    assert!(!nft_table(&env).contains(&chain));
    wait_for("the veths to go with the namespace", || {
        no_container_veths(&env)
    });
    env.assert_no_container_leftovers();
}
