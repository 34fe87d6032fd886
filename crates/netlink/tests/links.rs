//! The building blocks one by one, inside namespaces the tests create: bridges and their
//! idempotency, veth pairs across namespaces, link settings, addresses, routes, `open_in`.

mod common;

use std::fs;
use std::os::fd::AsFd;

use common::Netns;
use pelagos_model::ErrorKind;
use pelagos_netlink::{sysctl, Error, Netlink};

#[test]
fn ensure_bridge_addresses_and_routes_are_idempotent() {
    let host = Netns::new();
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        let bridge = netlink.ensure_bridge("pbr0", None).unwrap();
        assert_eq!(netlink.ensure_bridge("pbr0", None).unwrap(), bridge);
        assert_eq!(netlink.link_index("pbr0").unwrap(), Some(bridge));
        let subnet = "10.90.0.1/24".parse().unwrap();
        netlink.add_address(bridge, subnet).unwrap();
        netlink.add_address(bridge, subnet).unwrap();
        let route = "10.91.0.0/16".parse().unwrap();
        let gateway = Some("10.90.0.254".parse().unwrap());
        netlink.add_route(route, gateway, bridge).unwrap();
        netlink.add_route(route, gateway, bridge).unwrap();
        netlink.delete_link("nothere0").unwrap();
    });
    let addresses = host.ip(&["-o", "-4", "addr", "show", "dev", "pbr0"]);
    assert_eq!(addresses.matches("10.90.0.1/24").count(), 1, "{addresses}");
    let routes = host.ip(&["route", "show", "10.91.0.0/16"]);
    assert_eq!(routes.lines().count(), 1, "{routes}");
    assert!(routes.contains("via 10.90.0.254 dev pbr0"), "{routes}");
    assert!(host.ip(&["-o", "link", "show", "pbr0"]).contains("UP"));
}

#[test]
fn ensure_bridge_brings_an_existing_one_up_and_refuses_other_kinds() {
    let host = Netns::new();
    host.ip(&["link", "add", "pbr1", "mtu", "1300", "type", "bridge"]);
    host.ip(&[
        "link", "add", "pveth", "type", "veth", "peer", "name", "pveth1",
    ]);
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        netlink.ensure_bridge("pbr1", Some(1280)).unwrap();
        let error = netlink.ensure_bridge("pveth", None).unwrap_err();
        assert!(matches!(error, Error::WrongKind { .. }), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Conflict);
        let invalid = netlink.ensure_bridge("a/b", None).unwrap_err();
        assert_eq!(invalid.kind(), ErrorKind::InvalidArgument);
    });
    let link = host.ip(&["-o", "link", "show", "pbr1"]);
    assert!(link.contains("mtu 1280") && link.contains("UP"), "{link}");
}

#[test]
fn veth_pairs_span_namespaces_and_take_settings() {
    let (host, container) = (Netns::new(), Netns::new());
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        let bridge = netlink.ensure_bridge("pbr0", None).unwrap();
        let veth = netlink
            .create_veth("pv0", "cv0", Some(container.fd.as_fd()))
            .unwrap();
        netlink.set_mtu(veth, 1450).unwrap();
        netlink.enslave(veth, bridge).unwrap();
        netlink.set_up(veth).unwrap();
        let again = netlink.create_veth("pv0", "cv0", Some(container.fd.as_fd()));
        assert!(
            matches!(again, Err(Error::AlreadyExists { .. })),
            "{again:?}"
        );

        let mut inside = Netlink::open_in(container.fd.as_fd()).unwrap();
        let peer = inside
            .link_index("cv0")
            .unwrap()
            .expect("cv0 in the container");
        assert_eq!(netlink.link_index("cv0").unwrap(), None);
        inside.set_mac(peer, [0x02, 0, 0, 0, 0, 0x10]).unwrap();
        inside.rename(peer, "eth1").unwrap();
        inside.set_up(peer).unwrap();
        inside
            .add_address(peer, "10.92.0.2/24".parse().unwrap())
            .unwrap();
        inside.set_down(peer).unwrap();
    });
    let port = host.ip(&["-o", "link", "show", "pv0"]);
    assert!(
        port.contains("master pbr0") && port.contains("mtu 1450"),
        "{port}"
    );
    let peer = container.ip(&["-o", "link", "show", "eth1"]);
    assert!(peer.contains("02:00:00:00:00:10"), "{peer}");
    assert!(!peer.contains(",UP"), "{peer}");
    assert!(container
        .ip(&["-o", "addr", "show", "eth1"])
        .contains("10.92.0.2/24"));
}

#[test]
fn open_in_returns_the_thread_to_its_own_namespace() {
    let (host, container) = (Netns::new(), Netns::new());
    host.run(|| {
        let before = fs::read_link("/proc/thread-self/ns/net").unwrap();
        let mut inside = Netlink::open_in(container.fd.as_fd()).unwrap();
        assert_eq!(fs::read_link("/proc/thread-self/ns/net").unwrap(), before);
        inside.ensure_bridge("inner0", None).unwrap();
        let mut here = Netlink::open().unwrap();
        assert_eq!(here.link_index("inner0").unwrap(), None);
    });
    assert!(container.ip(&["-o", "link", "show"]).contains("inner0"));
}

#[test]
fn interface_sysctls_are_the_namespace_s_own() {
    let host = Netns::new();
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        netlink.ensure_bridge("pbr0", None).unwrap();
        sysctl::set_route_localnet("pbr0", true).unwrap();
        sysctl::set_accept_ra("pbr0", 0).unwrap();
        sysctl::set_forwarding(sysctl::IpFamily::V4, true).unwrap();
        let localnet = sysctl::get_interface(sysctl::IpFamily::V4, "pbr0", "route_localnet");
        assert_eq!(localnet.unwrap(), "1");
        let missing = sysctl::set_route_localnet("nothere0", true).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }), "{missing:?}");
    });
    let forward = host.exec("cat", &["/proc/sys/net/ipv4/ip_forward"]);
    assert_eq!(String::from_utf8_lossy(&forward.stdout).trim(), "1");
}
