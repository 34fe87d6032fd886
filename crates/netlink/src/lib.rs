//! Synchronous rtnetlink for pelagos's process plane: the bridges, veth pairs, addresses,
//! routes and per-interface sysctls that wire a container into a bridge network.
//!
//! A [`Netlink`] handle owns one `NETLINK_ROUTE` socket in the network namespace it was opened
//! in ([`Netlink::open`], [`Netlink::open_in`]); every operation is a blocking request/ack
//! exchange, batched where the kernel allows, with errno mapped to a typed [`Error`].
//! [`Netlink::attach_container`] is the one call the monitor makes on the `run` path.
//!
//! Deliberately not here: async (the monitor has no runtime), dumps and listing, firewall
//! rules (`pelagos-firewall`), address allocation and network records (`pelagos-network`).

mod addr;
mod attach;
mod error;
mod link;
mod message;
mod name;
mod netns;
pub mod sysctl;
mod transport;

pub use attach::{Attached, Attachment};
pub use error::Error;
pub use ipnet::IpNet;
pub use name::{check_ifname, MAX_IFNAME_LEN};
pub use transport::Netlink;
