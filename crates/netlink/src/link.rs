//! Link operations: look-up by name, bridges, veth pairs, up, MTU, MAC, rename, bridge ports
//! and deletion, each one round trip or one batch.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use crate::error::Error;
use crate::message::{self, VethSpec};
use crate::name::check_ifname;
use crate::transport::{take_last, Netlink, Request};

impl Netlink {
    /// The index of the link named `name`, or `None` if there is none.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, Error> {
        check_ifname(name)?;
        Ok(self.link(name)?.map(|link| link.header.index))
    }

    /// The kernel's description of the link named `name`, if there is one.
    pub(crate) fn link(&mut self, name: &str) -> Result<Option<LinkMessage>, Error> {
        let get = get_link(name, format!("find link {name}"));
        match self.request(get) {
            Ok(replies) => first_link(replies, name).map(Some),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes sure a bridge named `name` exists and is up, with `mtu` if given, and returns
    /// its index. A new bridge gets a fixed random MAC; an existing one is left as it is
    /// apart from being brought up and given `mtu`. Fails with [`Error::WrongKind`] if a
    /// link of another kind has the name.
    pub fn ensure_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32, Error> {
        check_ifname(name)?;
        let create = message::new_bridge(name, mtu, random_mac()?);
        let mut outcomes = self.transact(vec![
            Request::new(
                RouteNetlinkMessage::NewLink(create),
                NLM_F_CREATE | NLM_F_EXCL,
                format!("create bridge {name}"),
            ),
            get_link(name, format!("find bridge {name}")),
        ])?;
        let found = take_last(&mut outcomes);
        match take_last(&mut outcomes) {
            Ok(_) => Ok(first_link(found?, name)?.header.index),
            Err(Error::AlreadyExists { .. }) => {
                let found = first_link(found?, name)?;
                self.adopt_bridge(name, &found, mtu)
            }
            Err(e) => Err(e),
        }
    }

    /// Brings an existing bridge to the state `ensure_bridge` promises.
    fn adopt_bridge(
        &mut self,
        name: &str,
        found: &LinkMessage,
        mtu: Option<u32>,
    ) -> Result<u32, Error> {
        if message::link_kind(found) != Some(&InfoKind::Bridge) {
            return Err(Error::WrongKind {
                what: format!("ensure bridge {name}"),
                name: name.to_owned(),
                expected: "bridge",
            });
        }
        let index = found.header.index;
        let mtu_differs = mtu.is_some() && mtu != message::link_mtu(found);
        if !message::link_is_up(found) || mtu_differs {
            let mut set = message::with_up(message::link_by_index(index));
            set.attributes.extend(mtu.map(LinkAttribute::Mtu));
            self.set_link(set, format!("bring bridge {name} up"))?;
        }
        Ok(index)
    }

    /// Brings the link up.
    pub fn set_up(&mut self, index: u32) -> Result<(), Error> {
        let set = message::with_up(message::link_by_index(index));
        self.set_link(set, format!("bring link {index} up"))
    }

    /// Takes the link down.
    pub fn set_down(&mut self, index: u32) -> Result<(), Error> {
        let set = message::with_down(message::link_by_index(index));
        self.set_link(set, format!("take link {index} down"))
    }

    /// Sets the link's MTU.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<(), Error> {
        let mut set = message::link_by_index(index);
        set.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(set, format!("set the MTU of link {index} to {mtu}"))
    }

    /// Sets the link's MAC address.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<(), Error> {
        let mut set = message::link_by_index(index);
        set.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.set_link(set, format!("set the MAC of link {index}"))
    }

    /// Renames the link. Kernels before 6.x refuse (`Rejected`, `EBUSY`) while it is up.
    pub fn rename(&mut self, index: u32, new_name: &str) -> Result<(), Error> {
        check_ifname(new_name)?;
        let mut set = message::link_by_index(index);
        set.attributes
            .push(LinkAttribute::IfName(new_name.to_owned()));
        self.set_link(set, format!("rename link {index} to {new_name}"))
    }

    /// Makes the link a port of the bridge `bridge_index`.
    pub fn enslave(&mut self, index: u32, bridge_index: u32) -> Result<(), Error> {
        let mut set = message::link_by_index(index);
        set.attributes.push(LinkAttribute::Controller(bridge_index));
        self.set_link(set, format!("add link {index} to bridge {bridge_index}"))
    }

    /// Deletes the link named `name`; a missing link is not an error. Deleting either end of
    /// a veth pair deletes both.
    pub fn delete_link(&mut self, name: &str) -> Result<(), Error> {
        check_ifname(name)?;
        let delete = RouteNetlinkMessage::DelLink(message::link_by_name(name));
        match self.request(Request::new(delete, 0, format!("delete link {name}"))) {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Creates a veth pair, `host_name` here and `peer_name` in `peer_netns` (here if
    /// `None`), both down, and returns the index of `host_name`.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> Result<u32, Error> {
        let spec = VethSpec {
            host_name,
            peer_name,
            peer_netns: peer_netns.map(|fd| fd.as_raw_fd()),
            ..VethSpec::default()
        };
        Ok(self.create_veth_with(&spec)?.header.index)
    }

    /// Creates the pair `spec` describes and returns the kernel's description of the host
    /// end, read in the same batch (its `IFLA_LINK` is the peer's index). Hairpin mode, if
    /// asked, is set in that batch too; if it fails, the pair is deleted.
    pub(crate) fn create_veth_with(&mut self, spec: &VethSpec<'_>) -> Result<LinkMessage, Error> {
        check_ifname(spec.host_name)?;
        check_ifname(spec.peer_name)?;
        let (host, peer) = (spec.host_name, spec.peer_name);
        let mut requests = vec![Request::new(
            RouteNetlinkMessage::NewLink(message::new_veth(spec)),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("create veth pair {host} / {peer}"),
        )];
        if spec.hairpin {
            requests.push(Request::new(
                RouteNetlinkMessage::NewLink(message::hairpin_on(host)),
                0,
                format!("set hairpin mode on bridge port {host}"),
            ));
        }
        requests.push(get_link(host, format!("find veth {host}")));
        let mut outcomes = self.transact(requests)?;
        let found = take_last(&mut outcomes);
        let hairpin = match spec.hairpin {
            true => take_last(&mut outcomes),
            false => Ok(Vec::new()),
        };
        take_last(&mut outcomes)?;
        if let Err(e) = hairpin {
            // Best effort: the error that matters is the hairpin's.
            let _ = self.delete_link(host);
            return Err(e);
        }
        first_link(found?, host)
    }

    /// Whether the link named `name` is a bridge port in hairpin mode (`None`: no such
    /// link).
    pub fn hairpin(&mut self, name: &str) -> Result<Option<bool>, Error> {
        check_ifname(name)?;
        Ok(self.link(name)?.map(|link| message::link_hairpin(&link)))
    }

    fn set_link(&mut self, set: LinkMessage, what: String) -> Result<(), Error> {
        self.request(Request::new(RouteNetlinkMessage::SetLink(set), 0, what))
            .map(drop)
    }
}

/// A request for the link named `name`.
pub(crate) fn get_link(name: &str, what: String) -> Request {
    let get = RouteNetlinkMessage::GetLink(message::link_by_name(name));
    Request::new(get, 0, what)
}

/// The first link description among `replies`.
pub(crate) fn first_link(
    replies: Vec<RouteNetlinkMessage>,
    name: &str,
) -> Result<LinkMessage, Error> {
    replies
        .into_iter()
        .find_map(|reply| match reply {
            RouteNetlinkMessage::NewLink(link) => Some(link),
            _ => None,
        })
        .ok_or_else(|| Error::Protocol {
            what: format!("find link {name}"),
            detail: "no link in the reply".to_owned(),
        })
}

/// A random, locally administered, unicast MAC address.
fn random_mac() -> Result<[u8; 6], Error> {
    let mut mac = [0u8; 6];
    File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut mac))
        .map_err(|e| Error::io("read /dev/urandom for a bridge MAC", e))?;
    mac[0] = (mac[0] & 0xfe) | 0x02;
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_macs_are_local_unicast() {
        let mac = random_mac().unwrap();
        assert_eq!(mac[0] & 0x03, 0x02);
    }
}
