//! Real traffic through the rules: a "host" namespace with a bridge, a "container"
//! namespace serving a file with busybox httpd, a "remote" client routed through the
//! host, and an "internet" namespace only reachable by masquerade. Nothing leaves the
//! namespaces the test creates.
//!
//! ```text
//!  container 10.88.0.2 ──veth── [pbr0 10.88.0.1] host [10.1.0.1] ──veth── remote 10.1.0.2
//!                                                   [10.2.0.1] ──veth── internet 10.2.0.2
//! ```

mod common;

use common::{Killed, Netns};
use pelagos_firewall::{enable_ip_forward, ip_forward, Firewall, NetworkRules, PortRule, Proto};

struct Topology {
    host: Netns,
    container: Netns,
    remote: Netns,
    internet: Netns,
    _servers: Vec<Killed>,
    _dir: TempDir,
}

/// A directory removed on drop.
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Links `host` and `peer` with a veth pair: host side `host_if` (put in `host_bridge` if
/// given, else addressed `host_addr`), peer side `eth0` with `peer_addr` and a default
/// route via `gateway`.
fn link(
    host: &Netns,
    peer: &Netns,
    host_if: &str,
    host_side: &str,
    peer_addr: &str,
    gateway: &str,
) {
    let peer_pid = peer.path().split('/').nth(2).unwrap_or_default().to_owned();
    host.sh(&format!(
        "ip link add {host_if} type veth peer name eth0 netns {peer_pid}"
    ));
    host.sh(&format!("{host_side} && ip link set {host_if} up"));
    peer.sh(&format!(
        "ip addr add {peer_addr} dev eth0 && ip link set eth0 up && ip route add default via {gateway}"
    ));
}

fn serve(ns: &Netns, dir: &std::path::Path, name: &str, addr: &str) -> Killed {
    let root = dir.join(name);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), format!("hello from {name}\n")).unwrap();
    let server = ns.spawn(&[
        "busybox",
        "httpd",
        "-f",
        "-p",
        &format!("{addr}:80"),
        "-h",
        root.to_str().unwrap(),
    ]);
    for _ in 0..400 {
        if ns
            .try_sh(&format!("wget -q -O - http://{addr}/"))
            .status
            .success()
        {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("httpd in {name} did not start");
}

fn topology() -> Topology {
    let (host, container, remote, internet) =
        (Netns::new(), Netns::new(), Netns::new(), Netns::new());
    host.sh(
        "ip link add pbr0 type bridge && ip addr add 10.88.0.1/24 dev pbr0 && ip link set pbr0 up",
    );
    // Hairpin mode on the container's port, as Docker sets it without its userland proxy:
    // with br_netfilter loaded, a connection DNAT'd back to the container it came from is
    // bridged back out of the port it came in by.
    let port_setup = "ip link set vc0 master pbr0 && ip link set vc0 type bridge_slave hairpin on";
    link(
        &host,
        &container,
        "vc0",
        port_setup,
        "10.88.0.2/24",
        "10.88.0.1",
    );
    link(
        &host,
        &remote,
        "vr0",
        "ip addr add 10.1.0.1/24 dev vr0",
        "10.1.0.2/24",
        "10.1.0.1",
    );
    link(
        &host,
        &internet,
        "vi0",
        "ip addr add 10.2.0.1/24 dev vi0",
        "10.2.0.2/24",
        "10.2.0.1",
    );
    // The internet knows no route back to 10.88.0.0/24: only masquerade gets answers.
    internet.sh("ip route del default");
    let dir = std::env::temp_dir().join(format!("pelagos-fw-e2e-{}", std::process::id()));
    let servers = vec![
        serve(&container, &dir, "container", "10.88.0.2"),
        serve(&internet, &dir, "internet", "10.2.0.2"),
    ];
    Topology {
        host,
        container,
        remote,
        internet,
        _servers: servers,
        _dir: TempDir(dir),
    }
}

fn network(internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: "pbr0".into(),
        subnets: vec!["10.88.0.0/24".parse().unwrap()],
        internal,
    }
}

fn get(ns: &Netns, url: &str) -> Option<String> {
    // busybox wget's -T does not bound connect(): `timeout` does, for the blocked cases.
    let out = ns.try_sh(&format!("timeout 3 wget -q -T 3 -O - {url}"));
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn published_ports_masquerade_and_internal_isolation_carry_real_traffic() {
    let t = topology();
    let fw = Firewall::new();
    let before = t.host.run(enable_ip_forward).unwrap();
    assert!(!before.v4, "a new namespace starts without forwarding");
    assert!(t.host.run(ip_forward).unwrap().v4);
    assert_eq!(
        get(&t.container, "http://10.2.0.2/"),
        None,
        "no masquerade yet: no answer"
    );

    t.host.run(|| fw.ensure_network(&network(false))).unwrap();
    let port = PortRule {
        host_ip: None,
        host_port: 8080,
        host_port_end: 8080,
        container_ip: "10.88.0.2".parse().unwrap(),
        container_port: 80,
        proto: Proto::Tcp,
    };
    t.host.run(|| fw.add_ports("c1", &[port])).unwrap();
    let served = Some("hello from container\n".to_owned());
    assert_eq!(
        get(&t.host, "http://127.0.0.1:8080/"),
        served,
        "host loopback"
    );
    assert_eq!(
        get(&t.host, "http://10.1.0.1:8080/"),
        served,
        "host's own address"
    );
    assert_eq!(
        get(&t.remote, "http://10.1.0.1:8080/"),
        served,
        "remote client"
    );
    assert_eq!(
        get(&t.container, "http://10.1.0.1:8080/"),
        served,
        "hairpin"
    );
    assert_eq!(
        get(&t.container, "http://10.2.0.2/"),
        Some("hello from internet\n".to_owned())
    );
    assert_eq!(
        get(&t.remote, "http://10.2.0.2/"),
        None,
        "only the network's subnet is masqueraded"
    );

    t.host.run(|| fw.remove_ports("c1")).unwrap();
    assert_eq!(
        get(&t.remote, "http://10.1.0.1:8080/"),
        None,
        "ports removed"
    );

    t.host.run(|| fw.ensure_network(&network(true))).unwrap();
    assert_eq!(
        get(&t.container, "http://10.2.0.2/"),
        None,
        "--internal blocks the way out"
    );
    assert_eq!(
        get(&t.remote, "http://10.88.0.2/"),
        None,
        "--internal blocks the way in"
    );
    assert_eq!(
        get(&t.host, "http://10.88.0.2/"),
        Some("hello from container\n".to_owned())
    );

    t.host.run(|| fw.remove_network("pbr0")).unwrap();
    t.host.run(|| fw.remove_all()).unwrap();
    assert!(t.host.pelagos_table().is_none());
    drop(t.internet);
}
