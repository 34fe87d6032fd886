//! Ports written over nf_tables netlink list exactly as the same ports written by `nft`,
//! and go again by the handle `add_ports` returned; in namespaces the tests create.

mod common;

use common::{chains, rules, Netns};
use pelagos_firewall::{Firewall, NetworkRules, PortRule, Proto, PublishedRules};

fn network() -> NetworkRules {
    NetworkRules {
        bridge: "pbr0".into(),
        subnets: vec![
            "10.88.0.0/24".parse().unwrap(),
            "fd00:88::/64".parse().unwrap(),
        ],
        internal: false,
    }
}

fn port(host_ip: Option<&str>, host_port: u16, container_ip: &str, proto: Proto) -> PortRule {
    PortRule {
        host_ip: host_ip.map(|ip| ip.parse().unwrap()),
        host_port,
        host_port_end: host_port,
        container_ip: container_ip.parse().unwrap(),
        container_port: 80,
        proto,
    }
}

/// Every shape a port takes: each family, with and without a host address, each
/// protocol, single and ranges.
fn every_shape() -> Vec<PortRule> {
    let range = |rule: PortRule, end: u16| PortRule {
        host_port_end: end,
        ..rule
    };
    vec![
        range(port(None, 9000, "10.88.0.2", Proto::Tcp), 9002),
        range(
            port(Some("fd00:1::1"), 9100, "fd00:88::2", Proto::Udp),
            9101,
        ),
        port(None, 8080, "10.88.0.2", Proto::Tcp),
        port(Some("0.0.0.0"), 8081, "10.88.0.2", Proto::Udp),
        port(Some("127.0.0.1"), 8082, "10.88.0.2", Proto::Sctp),
        port(Some("::"), 8080, "fd00:88::2", Proto::Tcp),
        port(None, 8083, "fd00:88::2", Proto::Udp),
        port(Some("fd00:1::1"), 8084, "fd00:88::2", Proto::Sctp),
    ]
}

fn setup() -> (Netns, Firewall) {
    let ns = Netns::new();
    ns.sh("ip link add pbr0 type bridge");
    let fw = Firewall::new();
    ns.run(|| fw.ensure_network(&network())).unwrap();
    (ns, fw)
}

#[test]
fn netlink_rules_list_as_nfts() {
    let (by_nft, fw_nft) = setup();
    let (by_netlink, fw_netlink) = setup();
    by_nft
        .run(|| fw_nft.add_ports_via_nft("c1", &every_shape()))
        .unwrap();
    let published = by_netlink
        .run(|| fw_netlink.add_ports("c1", &every_shape()))
        .unwrap();
    assert!(
        matches!(published, PublishedRules::Jump { .. }),
        "{published:?}"
    );
    let expected = by_nft.pelagos_table().unwrap();
    let got = by_netlink.pelagos_table().unwrap();
    assert_eq!(rules(&got), rules(&expected));
    assert_eq!(chains(&got), chains(&expected));
    let text = by_netlink.sh("nft list chain inet pelagos ports-c1");
    assert!(text.contains("ip6 daddr != ::1 udp dport 8083"), "{text}");
    assert!(text.contains("tcp dport 9000-9002 dnat ip to 10.88.0.2:tcp dport map { 9000 : 80, 9001 : 81, 9002 : 82 }"), "{text}");
    assert_eq!(text, by_nft.sh("nft list chain inet pelagos ports-c1"));
}

#[test]
fn known_handles_remove_exactly() {
    let (ns, fw) = setup();
    let bare = ns.pelagos_table().unwrap();
    let c1 = ns
        .run(|| fw.add_ports("c1", &[port(None, 8080, "10.88.0.2", Proto::Tcp)]))
        .unwrap();
    let range = PortRule {
        host_port_end: 9002,
        ..port(None, 9000, "10.88.0.3", Proto::Tcp)
    };
    let c2 = ns.run(|| fw.add_ports("c2", &[range])).unwrap();
    assert!(matches!(c2, PublishedRules::Jump { .. }), "{c2:?}");
    assert!(ns
        .sh("nft list chain inet pelagos ports-c2")
        .contains("9001 : 81"));

    ns.run(|| fw.remove_ports_known("c1", &c1)).unwrap();
    let listed = chains(&ns.pelagos_table().unwrap());
    assert!(!listed.contains(&"ports-c1".to_owned()), "{listed:?}");
    assert!(listed.contains(&"ports-c2".to_owned()), "{listed:?}");
    // Gone already (a reconcile got there first): not an error.
    ns.run(|| fw.remove_ports_known("c1", &c1)).unwrap();
    ns.run(|| fw.remove_ports_known("c2", &c2)).unwrap();
    assert_eq!(rules(&ns.pelagos_table().unwrap()), rules(&bare));
    assert_eq!(chains(&ns.pelagos_table().unwrap()), chains(&bare));
    ns.run(|| fw.remove_ports_known("c3", &PublishedRules::Nothing))
        .unwrap();
}

#[test]
fn a_refused_batch_leaves_nothing_and_says_why() {
    let ns = Netns::new();
    let fw = Firewall::new();
    // No table: the kernel refuses the chain, and nothing of the batch stays.
    let err = ns
        .run(|| fw.add_ports("c1", &[port(None, 8080, "10.88.0.2", Proto::Tcp)]))
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    assert!(ns.pelagos_table().is_none());
}

#[test]
fn a_thousand_ports_go_in_one_batch() {
    let (ns, fw) = setup();
    let many: Vec<PortRule> = (20000..21000)
        .map(|p| port(None, p, "10.88.0.2", Proto::Tcp))
        .collect();
    let published = ns.run(|| fw.add_ports("c1", &many)).unwrap();
    assert!(
        matches!(published, PublishedRules::Jump { .. }),
        "{published:?}"
    );
    let table = ns.pelagos_table().unwrap();
    let dnats = rules(&table).iter().filter(|r| r.0 == "ports-c1").count();
    assert_eq!(dnats, 1000);
    ns.run(|| fw.remove_ports_known("c1", &published)).unwrap();
    assert!(!chains(&ns.pelagos_table().unwrap()).contains(&"ports-c1".to_owned()));
}
