//! The table's rules as `nft` lists them, inside namespaces the tests create: they appear
//! and disappear exactly, calls are idempotent, and no other table is touched.

mod common;

use common::{chains, rules, Netns};
use pelagos_firewall::{Firewall, NetworkRules, PortRule, Proto};

fn network(bridge: &str, internal: bool) -> NetworkRules {
    NetworkRules {
        bridge: bridge.into(),
        subnets: vec![
            "10.88.0.0/24".parse().unwrap(),
            "fd00:88::/64".parse().unwrap(),
        ],
        internal,
    }
}

fn port(host_port: u16, container_ip: &str) -> PortRule {
    PortRule {
        host_ip: None,
        host_port,
        host_port_end: host_port,
        container_ip: container_ip.parse().unwrap(),
        container_port: 80,
        proto: Proto::Tcp,
    }
}

fn tagged(ns: &Netns, tag: &str) -> usize {
    let table = ns.pelagos_table().expect("table inet pelagos");
    rules(&table)
        .iter()
        .filter(|r| r.1.as_deref() == Some(tag))
        .count()
}

/// A namespace with bridges `pbr0` and `pbr1` and a foreign table with one rule.
fn setup() -> Netns {
    let ns = Netns::new();
    ns.sh("ip link add pbr0 type bridge && ip link add pbr1 type bridge");
    ns.sh("nft add table inet other && nft add chain inet other c && nft add rule inet other c accept");
    ns
}

fn assert_foreign_table_intact(ns: &Netns) {
    assert!(ns.sh("nft list table inet other").contains("accept"));
}

#[test]
fn network_rules_are_idempotent_and_removed_exactly() {
    let ns = setup();
    let fw = Firewall::new();
    ns.run(|| fw.ensure_network(&network("pbr0", false)))
        .unwrap();
    let first = rules(&ns.pelagos_table().unwrap());
    assert!(tagged(&ns, "net:pbr0") >= 5, "{first:#?}");
    ns.run(|| fw.ensure_network(&network("pbr0", false)))
        .unwrap();
    assert_eq!(
        rules(&ns.pelagos_table().unwrap()),
        first,
        "ensure_network twice"
    );
    assert_eq!(
        ns.sh("sysctl -n net.ipv4.conf.pbr0.route_localnet").trim(),
        "1"
    );
    assert!(ns.sh("nft list set inet pelagos bridges").contains("pbr0"));

    ns.run(|| fw.ensure_network(&network("pbr1", true)))
        .unwrap();
    let internal = ns.sh("nft list chain inet pelagos isolation");
    assert!(
        internal.contains("iifname \"pbr1\" oifname != \"pbr1\" drop"),
        "{internal}"
    );
    ns.run(|| fw.remove_network("pbr1")).unwrap();
    assert_eq!(
        rules(&ns.pelagos_table().unwrap()),
        first,
        "pbr1's rules removed, pbr0's kept"
    );
    assert!(!ns.run(|| fw.is_unused()).unwrap());

    ns.run(|| fw.remove_network("pbr0")).unwrap();
    assert_eq!(tagged(&ns, "net:pbr0"), 0);
    assert!(!ns.sh("nft list set inet pelagos bridges").contains("pbr0"));
    ns.run(|| fw.remove_network("pbr0")).unwrap();
    assert!(ns.run(|| fw.is_unused()).unwrap());
    ns.run(|| fw.remove_all()).unwrap();
    assert!(ns.pelagos_table().is_none());
    ns.run(|| fw.remove_all()).unwrap();
    assert_foreign_table_intact(&ns);
}

#[test]
fn two_containers_ports_coexist_and_go_one_by_one() {
    let ns = setup();
    let fw = Firewall::new();
    ns.run(|| fw.ensure_network(&network("pbr0", false)))
        .unwrap();
    let bare = chains(&ns.pelagos_table().unwrap());
    ns.run(|| fw.add_ports("c1", &[port(8080, "10.88.0.2")]))
        .unwrap();
    let ranged = PortRule {
        host_port_end: 9002,
        ..port(9000, "10.88.0.3")
    };
    ns.run(|| fw.add_ports("c2", &[ranged, port(8081, "10.88.0.3")]))
        .unwrap();
    let listed = chains(&ns.pelagos_table().unwrap());
    assert!(listed.contains(&"ports-c1".to_owned()) && listed.contains(&"ports-c2".to_owned()));
    let c2 = ns.sh("nft list chain inet pelagos ports-c2");
    assert!(c2.contains("tcp dport 9000-9002"), "{c2}");
    assert!(c2.contains("9001 : 81"), "{c2}");
    assert_eq!(tagged(&ns, "ctr:c1"), 1);

    ns.run(|| fw.remove_ports("c1")).unwrap();
    let listed = chains(&ns.pelagos_table().unwrap());
    assert!(!listed.contains(&"ports-c1".to_owned()), "{listed:?}");
    assert!(listed.contains(&"ports-c2".to_owned()), "{listed:?}");
    assert_eq!(tagged(&ns, "ctr:c1"), 0);
    assert_eq!(tagged(&ns, "ctr:c2"), 1);
    assert!(ns
        .sh("nft list chain inet pelagos ports-c2")
        .contains("dnat ip to 10.88.0.3"));
    ns.run(|| fw.remove_ports("c1")).unwrap();

    ns.run(|| fw.remove_ports("c2")).unwrap();
    assert_eq!(chains(&ns.pelagos_table().unwrap()), bare);
    ns.run(|| fw.remove_network("pbr0")).unwrap();
    assert!(ns.run(|| fw.is_unused()).unwrap());
    assert_foreign_table_intact(&ns);
}

#[test]
fn ports_left_by_a_crash_are_replaced_not_doubled() {
    let ns = setup();
    let fw = Firewall::new();
    ns.run(|| fw.ensure_network(&network("pbr0", false)))
        .unwrap();
    ns.run(|| fw.add_ports("c1", &[port(8080, "10.88.0.2")]))
        .unwrap();
    ns.run(|| fw.add_ports("c1", &[port(8082, "10.88.0.2")]))
        .unwrap();
    let chain = ns.sh("nft list chain inet pelagos ports-c1");
    assert!(chain.contains("8082") && !chain.contains("8080"), "{chain}");
    ns.run(|| fw.remove_ports("c1")).unwrap();
    assert_eq!(tagged(&ns, "ctr:c1"), 0);
    assert!(!chains(&ns.pelagos_table().unwrap()).contains(&"ports-c1".to_owned()));
}

#[test]
fn bad_requests_fail_before_nft_runs() {
    let ns = Netns::new();
    let fw = Firewall::new();
    let err = ns
        .run(|| fw.ensure_network(&network("nosuchbr", false)))
        .unwrap_err();
    assert_eq!(err.kind(), pelagos_model::ErrorKind::NotFound, "{err}");
    let err = ns
        .run(|| fw.add_ports("bad/id", &[port(80, "10.88.0.2")]))
        .unwrap_err();
    assert_eq!(
        err.kind(),
        pelagos_model::ErrorKind::InvalidArgument,
        "{err}"
    );
    ns.run(|| fw.add_ports("c1", &[])).unwrap();
    assert!(
        ns.pelagos_table().is_none(),
        "no ports: no nft run, no table"
    );
    // Ports without the network's table: the kernel's refusal comes back.
    let err = ns
        .run(|| fw.add_ports("c1", &[port(80, "10.88.0.2")]))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("while publishing the ports of container c1"),
        "{err}"
    );
    assert!(ns.run(|| fw.is_unused()).unwrap());
}
