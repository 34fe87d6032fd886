//! Pure builders of the rtnetlink messages the crate sends, and readers of the replies: every
//! request's shape is decided here, unit-tested without a kernel.

use std::net::IpAddr;
use std::os::fd::RawFd;

use ipnet::IpNet;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoPortKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::AddressFamily;

/// A link named `name`, for requests that look it up by name (index 0).
pub(crate) fn link_by_name(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message
        .attributes
        .push(LinkAttribute::IfName(name.to_owned()));
    message
}

/// The link with index `index`.
pub(crate) fn link_by_index(index: u32) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
}

/// Asks for the link to be up (`IFF_UP`, changing only that flag).
pub(crate) fn with_up(mut message: LinkMessage) -> LinkMessage {
    message.header.flags |= LinkFlags::Up;
    message.header.change_mask |= LinkFlags::Up;
    message
}

/// Asks for the link to be down (`IFF_UP` cleared, changing only that flag).
pub(crate) fn with_down(mut message: LinkMessage) -> LinkMessage {
    message.header.flags.remove(LinkFlags::Up);
    message.header.change_mask |= LinkFlags::Up;
    message
}

/// A new bridge, up, with a fixed MAC: without one the bridge takes the lowest MAC of its
/// ports and changes it as containers come and go, leaving stale gateway entries in the
/// containers' neighbour caches.
pub(crate) fn new_bridge(name: &str, mtu: Option<u32>, mac: [u8; 6]) -> LinkMessage {
    let mut message = with_up(link_by_name(name));
    message
        .attributes
        .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
            InfoKind::Bridge,
        )]));
    message
        .attributes
        .push(LinkAttribute::Address(mac.to_vec()));
    if let Some(mtu) = mtu {
        message.attributes.push(LinkAttribute::Mtu(mtu));
    }
    message
}

/// A veth pair to create in one request.
#[derive(Debug, Default)]
pub(crate) struct VethSpec<'a> {
    /// The end that stays in the requesting socket's namespace.
    pub host_name: &'a str,
    /// The other end's name, in its own namespace.
    pub peer_name: &'a str,
    /// The namespace the peer is created in (`IFLA_NET_NS_FD`); `None`: the requester's.
    pub peer_netns: Option<RawFd>,
    /// The bridge the host end joins at creation (`IFLA_MASTER`).
    pub master: Option<u32>,
    /// Both ends' MTU.
    pub mtu: Option<u32>,
    /// The peer's MAC; `None`: a random one from the kernel.
    pub peer_mac: Option<[u8; 6]>,
    /// The host end comes up at creation. The peer cannot: the kernel opens it before the
    /// pair is joined, and a veth without its peer refuses to open (`ENOTCONN`).
    pub host_up: bool,
    /// The host end, a port of `master`, reflects frames back to where they came from
    /// (hairpin mode), so that a container reaches its own published ports.
    pub hairpin: bool,
}

/// The request creating the pair: the peer's own link message (name, namespace, MAC, MTU,
/// flags) nests inside the host end's link info, so the kernel makes it where it belongs
/// and no move or rename follows.
pub(crate) fn new_veth(spec: &VethSpec<'_>) -> LinkMessage {
    let mut peer = link_by_name(spec.peer_name);
    let mut host = link_by_name(spec.host_name);
    if spec.host_up {
        host = with_up(host);
    }
    if let Some(fd) = spec.peer_netns {
        peer.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    if let Some(mac) = spec.peer_mac {
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(mtu) = spec.mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
        host.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(master) = spec.master {
        host.attributes.push(LinkAttribute::Controller(master));
    }
    host.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    host
}

/// Hairpin mode on for the bridge port named `name` (`IFLA_BRPORT_MODE`, what `bridge link
/// set dev NAME hairpin on` sets). Sent as an `RTM_NEWLINK` on the existing link with the
/// bridge's port data (`ip link set NAME type bridge_slave hairpin on`), which the kernel
/// looks up by name: `AF_BRIDGE` `RTM_SETLINK` with `IFLA_PROTINFO` takes only an index, not
/// known until the pair exists, and would cost a round trip of its own.
pub(crate) fn hairpin_on(name: &str) -> LinkMessage {
    let mut message = link_by_name(name);
    message.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![InfoBridgePort::HairpinMode(
            true,
        )])),
    ]));
    message
}

/// Whether the link is a bridge port in hairpin mode (from a link dump's port data).
pub(crate) fn link_hairpin(message: &LinkMessage) -> bool {
    message.attributes.iter().any(|attribute| match attribute {
        LinkAttribute::LinkInfo(infos) => infos.iter().any(|info| match info {
            LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                port.contains(&InfoBridgePort::HairpinMode(true))
            }
            _ => false,
        }),
        _ => false,
    })
}

/// The address `net` (address and prefix length) on link `index`. IPv6 addresses skip
/// duplicate address detection: they come from pelagos's IPAM, unique by construction, and
/// DAD would leave them unusable ("tentative") for a second or more after start.
pub(crate) fn new_address(index: u32, net: IpNet) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.index = index;
    message.header.prefix_len = net.prefix_len();
    message.header.scope = AddressScope::Universe;
    match net {
        IpNet::V4(v4) => {
            message.header.family = AddressFamily::Inet;
            message
                .attributes
                .push(AddressAttribute::Local(v4.addr().into()));
            message
                .attributes
                .push(AddressAttribute::Address(v4.addr().into()));
            if v4.prefix_len() < 31 {
                message
                    .attributes
                    .push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        }
        IpNet::V6(v6) => {
            message.header.family = AddressFamily::Inet6;
            message.header.flags = AddressHeaderFlags::Nodad;
            message
                .attributes
                .push(AddressAttribute::Address(v6.addr().into()));
            message
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    message
}

/// A route to `destination` out of link `index`, through `gateway` or, without one, directly
/// on the link. Prefix bits beyond the length are cleared, as the kernel demands.
pub(crate) fn new_route(destination: IpNet, gateway: Option<IpAddr>, index: u32) -> RouteMessage {
    let destination = destination.trunc();
    let mut message = RouteMessage::default();
    message.header.address_family = family_of(destination.addr());
    message.header.destination_prefix_length = destination.prefix_len();
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Static;
    message.header.kind = RouteType::Unicast;
    message.header.scope = match gateway {
        Some(_) => RouteScope::Universe,
        None => RouteScope::Link,
    };
    if destination.prefix_len() > 0 {
        let address = route_address(destination.addr());
        message
            .attributes
            .push(RouteAttribute::Destination(address));
    }
    if let Some(gateway) = gateway {
        message
            .attributes
            .push(RouteAttribute::Gateway(route_address(gateway)));
    }
    message.attributes.push(RouteAttribute::Oif(index));
    message
}

/// The whole address space of `gateway`'s family: the destination of a default route.
pub(crate) fn default_destination(gateway: IpAddr) -> IpNet {
    match gateway {
        IpAddr::V4(_) => IpNet::V4(ipnet::Ipv4Net::default()),
        IpAddr::V6(_) => IpNet::V6(ipnet::Ipv6Net::default()),
    }
}

fn family_of(address: IpAddr) -> AddressFamily {
    match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

fn route_address(address: IpAddr) -> RouteAddress {
    match address {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

/// The link's kind (`bridge`, `veth`, ...), from its link info.
pub(crate) fn link_kind(message: &LinkMessage) -> Option<&InfoKind> {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|info| match info {
                LinkInfo::Kind(kind) => Some(kind),
                _ => None,
            }),
            _ => None,
        })
}

/// The link's MTU.
pub(crate) fn link_mtu(message: &LinkMessage) -> Option<u32> {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::Mtu(mtu) => Some(*mtu),
            _ => None,
        })
}

/// The index of the link's other end (`IFLA_LINK`): for a veth, the peer's index in the
/// peer's namespace.
pub(crate) fn link_peer_index(message: &LinkMessage) -> Option<u32> {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            LinkAttribute::Link(index) => Some(*index),
            _ => None,
        })
}

/// Whether the link is administratively up.
pub(crate) fn link_is_up(message: &LinkMessage) -> bool {
    message.header.flags.contains(LinkFlags::Up)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn veth_peer_carries_its_namespace_name_and_mac_inside_the_link_info() {
        let spec = VethSpec {
            host_name: "veth1",
            peer_name: "eth0",
            peer_netns: Some(7),
            master: Some(3),
            mtu: Some(1400),
            peer_mac: Some([2, 0, 0, 0, 0, 1]),
            host_up: true,
            hairpin: true,
        };
        let host = new_veth(&spec);
        assert!(link_is_up(&host));
        assert!(host.attributes.contains(&LinkAttribute::Controller(3)));
        assert!(!host.attributes.contains(&LinkAttribute::NetNsFd(7)));
        let peer = host
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) => Some(peer),
                    _ => None,
                }),
                _ => None,
            })
            .expect("peer message");
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(7)));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1])));
        assert_eq!(link_mtu(peer), Some(1400));
        assert!(!link_is_up(peer));
        assert_eq!(link_kind(&host), Some(&InfoKind::Veth));
    }

    #[test]
    fn hairpin_is_the_bridge_port_data_of_the_named_link() {
        let set = hairpin_on("veth1");
        assert!(set
            .attributes
            .contains(&LinkAttribute::IfName("veth1".into())));
        assert_eq!(set.header.index, 0);
        assert!(link_hairpin(&set));
        assert!(!link_hairpin(&link_by_name("veth1")));
    }

    #[test]
    fn v4_addresses_get_a_broadcast_and_v6_ones_skip_dad() {
        let v4 = new_address(4, "10.88.0.5/16".parse().unwrap());
        assert_eq!(v4.header.prefix_len, 16);
        assert!(v4
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(
                10, 88, 255, 255
            ))));
        let v6 = new_address(4, "fd00::5/64".parse().unwrap());
        assert_eq!(v6.header.family, AddressFamily::Inet6);
        assert!(v6
            .attributes
            .contains(&AddressAttribute::Flags(AddressFlags::Nodad)));
        let point_to_point = new_address(4, "10.0.0.1/32".parse().unwrap());
        assert!(!point_to_point
            .attributes
            .iter()
            .any(|a| matches!(a, AddressAttribute::Broadcast(_))));
    }

    #[test]
    fn default_routes_have_no_destination_and_direct_routes_link_scope() {
        let gateway: IpAddr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into();
        let default = new_route(default_destination(gateway), Some(gateway), 2);
        assert_eq!(default.header.destination_prefix_length, 0);
        assert_eq!(default.header.scope, RouteScope::Universe);
        assert!(!default
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        let direct = new_route("10.1.2.3/24".parse().unwrap(), None, 2);
        assert_eq!(direct.header.scope, RouteScope::Link);
        assert!(direct
            .attributes
            .contains(&RouteAttribute::Destination(RouteAddress::Inet(
                Ipv4Addr::new(10, 1, 2, 0)
            ))));
    }
}
