//! The monitor's hot path: wiring a container's network namespace into a bridge with as few
//! round trips as netlink allows (three, plus opening one socket inside the namespace), and
//! undoing it.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_route::link::InfoKind;
use netlink_packet_route::RouteNetlinkMessage;

use crate::addr::{add_address_request, add_route_request};
use crate::error::Error;
use crate::message::{self, VethSpec};
use crate::name::check_ifname;
use crate::transport::{Netlink, Request};
use crate::{netns, sysctl};

/// What connects one container to one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// The bridge's name; it must exist (see [`Netlink::ensure_bridge`]).
    pub bridge: String,
    /// The name of the veth end that stays beside the bridge.
    pub host_veth_name: String,
    /// The interface's name inside the container (`eth0`).
    pub container_ifname: String,
    /// The container interface's MAC; `None`: a random one.
    pub mac: Option<[u8; 6]>,
    /// The container's addresses with their prefix lengths (`10.88.0.5/16`, `fd00::5/64`).
    pub addrs: Vec<IpNet>,
    /// One default route through each (at most one per IP family).
    pub gateways: Vec<IpAddr>,
    /// Both veth ends' MTU; `None`: the kernel's default.
    pub mtu: Option<u32>,
}

/// The links an attachment made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attached {
    /// The host end's index, in the handle's namespace.
    pub host_index: u32,
    /// The container end's index, in the container's namespace.
    pub container_index: u32,
}

impl Netlink {
    /// Connects the network namespace `netns` to the bridge: a veth pair created with its
    /// container end already named, addressed (MAC), sized and in `netns`, its host end up
    /// and a port of the bridge in hairpin mode (a container reaches its own published ports
    /// through the host's address: the DNAT'd packet goes back out of the port it came in
    /// by), all in the pair's batch; then inside `netns` `lo` and the interface up, the addresses
    /// and a default route per gateway. With IPv6 addresses the namespace's interface
    /// template gets `disable_ipv6=0` and `accept_ra=0` first. On failure after the pair
    /// exists, the pair is deleted. The same thread rules as [`Netlink::open_in`] apply.
    pub fn attach_container(
        &mut self,
        netns: BorrowedFd<'_>,
        attachment: &Attachment,
    ) -> Result<Attached, Error> {
        check_ifname(&attachment.host_veth_name)?;
        check_ifname(&attachment.container_ifname)?;
        let bridge_index = self.bridge_index(&attachment.bridge)?;
        let wants_v6 = attachment.addrs.iter().any(|a| matches!(a, IpNet::V6(_)));
        let mut container = netns::run_in(netns, || open_container_side(wants_v6))??;
        let spec = VethSpec {
            host_name: &attachment.host_veth_name,
            peer_name: &attachment.container_ifname,
            peer_netns: Some(netns.as_raw_fd()),
            master: Some(bridge_index),
            mtu: attachment.mtu,
            peer_mac: attachment.mac,
            host_up: true,
            hairpin: true,
        };
        let host = self.create_veth_with(&spec)?;
        let peer_index = message::link_peer_index(&host);
        match configure_container(&mut container, attachment, peer_index) {
            Ok(container_index) => Ok(Attached {
                host_index: host.header.index,
                container_index,
            }),
            Err(e) => {
                // Best effort: the error that matters is the one that stopped the attachment.
                let _ = self.delete_link(&attachment.host_veth_name);
                Err(e)
            }
        }
    }

    /// Disconnects a container: deletes the host end of its veth pair, which deletes the
    /// container's end too. A pair already gone (the namespace died) is not an error.
    pub fn detach_container(&mut self, host_veth_name: &str) -> Result<(), Error> {
        self.delete_link(host_veth_name)
    }

    /// The bridge's index, if `name` exists and is a bridge.
    fn bridge_index(&mut self, name: &str) -> Result<u32, Error> {
        check_ifname(name)?;
        let what = format!("attach to bridge {name}");
        let Some(link) = self.link(name)? else {
            return Err(Error::NotFound {
                what,
                detail: Some("create the network's bridge first".to_owned()),
            });
        };
        if message::link_kind(&link) != Some(&InfoKind::Bridge) {
            let name = name.to_owned();
            return Err(Error::WrongKind {
                what,
                name,
                expected: "bridge",
            });
        }
        Ok(link.header.index)
    }
}

/// Runs inside the container's namespace: its socket, and for IPv6 the interface template
/// the container end inherits when it is created there.
fn open_container_side(wants_v6: bool) -> Result<Netlink, Error> {
    let netlink = Netlink::open()?;
    if wants_v6 {
        sysctl::set_ipv6_disabled("default", false)?;
        sysctl::set_accept_ra("default", 0)?;
    }
    Ok(netlink)
}

/// One batch in the container's namespace: `lo` and the interface up, addresses, default
/// routes (after the addresses that make their gateways reachable). Returns the container end's index.
fn configure_container(
    container: &mut Netlink,
    attachment: &Attachment,
    peer_index: Option<u32>,
) -> Result<u32, Error> {
    let index = match peer_index {
        Some(index) => index,
        None => container_index(container, &attachment.container_ifname)?,
    };
    let lo_up = message::with_up(message::link_by_name("lo"));
    let ifname = &attachment.container_ifname;
    let mut requests = vec![
        Request::new(RouteNetlinkMessage::SetLink(lo_up), 0, "bring lo up"),
        Request::new(
            RouteNetlinkMessage::SetLink(message::with_up(message::link_by_index(index))),
            0,
            format!("bring {ifname} up in the container"),
        ),
    ];
    for address in &attachment.addrs {
        requests.push(add_address_request(index, *address));
    }
    for gateway in &attachment.gateways {
        let destination = message::default_destination(*gateway);
        requests.push(add_route_request(destination, Some(*gateway), index));
    }
    for outcome in container.transact(requests)? {
        outcome?;
    }
    Ok(index)
}

/// The container end's index looked up by name, for a kernel that did not report it.
fn container_index(container: &mut Netlink, ifname: &str) -> Result<u32, Error> {
    container
        .link_index(ifname)?
        .ok_or_else(|| Error::NotFound {
            what: format!("find {ifname} in the container"),
            detail: None,
        })
}
