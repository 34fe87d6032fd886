//! pelagos-network: networks as records, the control plane's half of pelagos's networking.
//!
//! * [`record`]: a network in the Docker Engine API's `Network` shape, its bridge's name, the
//!   inspect view; [`create`]: `network create` requests checked once at the edge;
//! * [`store`]: the networks under `<root>/networks/` (names and subnets unique under a lock,
//!   Docker's lookup order, removal refused while leases exist, prune), the default `bridge`
//!   made from settings on first use, the predefined `host` and `none`;
//! * [`pools`]: Docker's default address pools and unique-local IPv6 subnets;
//! * [`ipam`]: per-network leases under an OFD lock;
//!   [`mac`]: Ethernet addresses;
//! * [`ports`]: host ports published by containers, ephemeral ones for `-P`.
//!
//! It deliberately does not touch links, addresses, routes or firewall rules (netlink and
//! nftables are other crates'), nor read the host's routes: callers pass the prefixes that are
//! taken. Thread-safe, no process-global effects: locks are per open file description, so
//! threads and processes exclude each other alike.

pub mod create;
pub mod error;
mod files;
pub mod ipam;
pub mod mac;
pub mod pools;
pub mod ports;
pub mod record;
pub mod store;

pub use create::{NetworkCreate, NetworkCreateRequest, PoolRequest};
pub use error::{Error, Result};
pub use ipam::{EndpointRequest, Lease};
pub use mac::MacAddress;
pub use ports::{HostPorts, PortRequest, Protocol, PublishedPort};
pub use record::{IpamPool, NetworkContainer, NetworkRecord, NetworkResource};
pub use store::{DefaultBridge, Networks};

/// Written in a network's directory when its first attachment turned IP forwarding on (the
/// values before), so `info` can say so.
pub const IP_FORWARD_FILE: &str = "ip_forward.enabled";
