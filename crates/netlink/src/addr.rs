//! Addresses and routes on a link. Both are added with create-or-replace semantics, so
//! adding what is already there succeeds and leaves one copy.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Error;
use crate::message;
use crate::transport::{Netlink, Request};

impl Netlink {
    /// Adds `address` (address and prefix length, e.g. `10.88.0.1/16`) to link `index`;
    /// adding it again is not an error. IPv6 addresses are usable at once (no DAD).
    pub fn add_address(&mut self, index: u32, address: IpNet) -> Result<(), Error> {
        self.request(add_address_request(index, address)).map(drop)
    }

    /// Adds (or replaces) the route to `destination` out of link `index`, through `gateway`
    /// or, without one, directly on the link.
    pub fn add_route(
        &mut self,
        destination: IpNet,
        gateway: Option<IpAddr>,
        index: u32,
    ) -> Result<(), Error> {
        self.request(add_route_request(destination, gateway, index))
            .map(drop)
    }

    /// Adds (or replaces) the default route of `gateway`'s family through `gateway` out of
    /// link `index`.
    pub fn add_default_route(&mut self, gateway: IpAddr, index: u32) -> Result<(), Error> {
        let destination = message::default_destination(gateway);
        self.add_route(destination, Some(gateway), index)
    }
}

/// The request adding `address` to link `index`.
pub(crate) fn add_address_request(index: u32, address: IpNet) -> Request {
    let add = RouteNetlinkMessage::NewAddress(message::new_address(index, address));
    let what = format!("add address {address} to link {index}");
    Request::new(add, NLM_F_CREATE | NLM_F_REPLACE, what)
}

/// The request adding the route to `destination` through `gateway` out of link `index`.
pub(crate) fn add_route_request(
    destination: IpNet,
    gateway: Option<IpAddr>,
    index: u32,
) -> Request {
    let add = RouteNetlinkMessage::NewRoute(message::new_route(destination, gateway, index));
    let what = match gateway {
        Some(gateway) => format!("add route to {destination} via {gateway} on link {index}"),
        None => format!("add route to {destination} on link {index}"),
    };
    Request::new(add, NLM_F_CREATE | NLM_F_REPLACE, what)
}
