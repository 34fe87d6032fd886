//! Containers wired into a bridge for real, inside namespaces the tests create: addresses,
//! routes and pings through the bridge (v4 and v6), failures, clean-up, detach.

mod common;

use std::net::IpAddr;
use std::os::fd::AsFd;

use common::Netns;
use pelagos_model::ErrorKind;
use pelagos_netlink::{sysctl, Attachment, Error, Netlink};

const BRIDGE: &str = "pbr0";

fn attachment(host_veth: &str, last_octet: u8) -> Attachment {
    Attachment {
        bridge: BRIDGE.to_owned(),
        host_veth_name: host_veth.to_owned(),
        container_ifname: "eth0".to_owned(),
        mac: Some([0x02, 0x42, 10, 89, 0, last_octet]),
        addrs: vec![
            format!("10.89.0.{last_octet}/24").parse().unwrap(),
            format!("fd89::{last_octet}/64").parse().unwrap(),
        ],
        gateways: vec!["10.89.0.1".parse().unwrap(), "fd89::1".parse().unwrap()],
        mtu: Some(1400),
    }
}

/// The bridge with its gateway addresses, in the calling thread's namespace.
fn bridge_with_gateways(netlink: &mut Netlink) -> u32 {
    let bridge = netlink.ensure_bridge(BRIDGE, Some(1400)).unwrap();
    sysctl::set_ipv6_disabled(BRIDGE, false).unwrap();
    netlink
        .add_address(bridge, "10.89.0.1/24".parse().unwrap())
        .unwrap();
    netlink
        .add_address(bridge, "fd89::1/64".parse().unwrap())
        .unwrap();
    bridge
}

#[test]
fn attached_containers_reach_the_gateway_and_each_other_over_v4_and_v6() {
    let host = Netns::new();
    let (one, two) = (Netns::new(), Netns::new());
    let attached = host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        bridge_with_gateways(&mut netlink);
        let first = netlink.attach_container(one.fd.as_fd(), &attachment("pv1", 2));
        let second = netlink.attach_container(two.fd.as_fd(), &attachment("pv2", 3));
        (first.unwrap(), second.unwrap())
    });
    assert_ne!(attached.0.host_index, attached.1.host_index);

    let eth0 = one.ip(&["-o", "addr", "show", "dev", "eth0"]);
    assert!(eth0.contains("inet 10.89.0.2/24"), "{eth0}");
    assert!(eth0.contains("inet6 fd89::2/64"), "{eth0}");
    let link = one.ip(&["-o", "link", "show", "dev", "eth0"]);
    assert!(
        link.contains("02:42:0a:59:00:02") && link.contains("mtu 1400"),
        "{link}"
    );
    assert!(link.contains(",UP") || link.contains("<UP"), "{link}");
    assert!(one.ip(&["-o", "link", "show", "dev", "lo"]).contains("UP"));
    assert!(one
        .ip(&["route", "show", "default"])
        .contains("via 10.89.0.1 dev eth0"));
    assert!(one
        .ip(&["-6", "route", "show", "default"])
        .contains("via fd89::1 dev eth0"));
    let port = host.ip(&["-o", "link", "show", "dev", "pv1"]);
    assert!(
        port.contains("master pbr0") && port.contains("state UP"),
        "{port}"
    );
    let port_details = host.ip(&["-d", "-o", "link", "show", "dev", "pv1"]);
    assert!(port_details.contains("hairpin on"), "{port_details}");
    let hairpin = host.run(|| Netlink::open().unwrap().hairpin("pv1").unwrap());
    assert_eq!(hairpin, Some(true));

    assert!(one.ping("10.89.0.1"), "container to gateway, v4");
    assert!(one.ping("fd89::1"), "container to gateway, v6");
    assert!(
        one.ping("10.89.0.3"),
        "container to container through the bridge, v4"
    );
    assert!(
        one.ping("fd89::3"),
        "container to container through the bridge, v6"
    );
    assert!(host.ping("10.89.0.2"), "host to container, v4");
}

#[test]
fn detach_removes_both_ends() {
    let (host, container) = (Netns::new(), Netns::new());
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        bridge_with_gateways(&mut netlink);
        netlink
            .attach_container(container.fd.as_fd(), &attachment("pv1", 2))
            .unwrap();
        netlink.detach_container("pv1").unwrap();
        assert_eq!(netlink.link_index("pv1").unwrap(), None);
        netlink.detach_container("pv1").unwrap(); // already gone: fine
    });
    let links = container.ip(&["-o", "link", "show"]);
    assert!(!links.contains("eth0"), "{links}");
}

#[test]
fn attaching_to_a_missing_bridge_fails_and_creates_nothing() {
    let (host, container) = (Netns::new(), Netns::new());
    let error = host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        let error = netlink
            .attach_container(container.fd.as_fd(), &attachment("pv1", 2))
            .unwrap_err();
        assert_eq!(netlink.link_index("pv1").unwrap(), None);
        error
    });
    assert!(matches!(error, Error::NotFound { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.to_string().contains("pbr0"), "{error}");
    assert!(!container.ip(&["-o", "link", "show"]).contains("eth0"));
}

#[test]
fn attaching_twice_fails_and_keeps_the_first_attachment() {
    let (host, container) = (Netns::new(), Netns::new());
    host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        bridge_with_gateways(&mut netlink);
        let first = netlink
            .attach_container(container.fd.as_fd(), &attachment("pv1", 2))
            .unwrap();
        let error = netlink
            .attach_container(container.fd.as_fd(), &attachment("pv1", 2))
            .unwrap_err();
        assert!(matches!(error, Error::AlreadyExists { .. }), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::Conflict);
        assert_eq!(netlink.link_index("pv1").unwrap(), Some(first.host_index));
    });
    assert!(container.ping("10.89.0.1"));
}

#[test]
fn a_failure_inside_the_container_deletes_the_new_pair() {
    let (host, container) = (Netns::new(), Netns::new());
    let error = host.run(|| {
        let mut netlink = Netlink::open().unwrap();
        bridge_with_gateways(&mut netlink);
        let mut unreachable = attachment("pv1", 2);
        unreachable.gateways = vec!["192.168.77.1".parse::<IpAddr>().unwrap()];
        let error = netlink
            .attach_container(container.fd.as_fd(), &unreachable)
            .unwrap_err();
        assert_eq!(netlink.link_index("pv1").unwrap(), None);
        error
    });
    assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{error:?}");
    assert!(error.to_string().contains("192.168.77.1"), "{error}");
    assert!(!container.ip(&["-o", "link", "show"]).contains("eth0"));
}
