//! pelagos's firewall for bridge networks: its own nftables table `inet pelagos`, written
//! through nft's JSON interface (`nft -j -f -`), and nothing outside that table.
//!
//! What it does: forwarding accepts for pelagos bridges, `--internal` isolation (and
//! Docker's isolation between networks), masquerade of each network's subnets, published
//! ports as DNAT matched by `fib daddr type local` (from outside, from the host itself and
//! from 127.0.0.1, and hairpin from containers), the `route_localnet` sysctl of a bridge
//! and the IP forwarding sysctls. Every rule is tagged with its network (`net:BRIDGE`) or
//! container (`ctr:ID`, chain `ports-ID`) so that it is removed exactly.
//!
//! What it does not do: create links or addresses (pelagos-netlink), allocate addresses or
//! ports (pelagos-network), touch other tables (iptables-nft's, the host's: a host whose own
//! forward chain drops by policy still drops containers' traffic), or run a userland proxy.
//!
//! **Cost** (measured on the 2-core test machine, nftables 1.0.6, kernel 6.x): one `nft`
//! run is ≈ 3-4 ms, nearly all of it nft's start (its shared libraries, its cache
//! fetch); a container with published ports costs one run ([`Firewall::add_ports`]), one
//! without none. Adding an object that already exists (a chain) costs ≈ 13 ms more: the
//! kernel waits for an RCU grace period when nft's socket closes, so the table's fixed
//! chains are only added when a listing shows them missing.
//!
//! **Loopback** (`curl 127.0.0.1:PORT` on the host): DNAT in the `output` chain plus
//! `route_localnet=1` on the bridge plus masquerade of 127.0.0.0/8 into it, as Docker does
//! with `userland-proxy=false`. Docker's default, a proxy process per published port, costs
//! a process (docker-proxy: ≈ 10 MB RSS) and a user-space copy of every byte; this costs
//! one more rule. IPv6's `::1` cannot be DNAT'd off the host: published ports are not
//! reachable on `[::1]`.

mod error;
mod expr;
mod firewall;
mod layout;
mod listing;
mod network;
mod nft;
mod ports;
mod sysctl;
mod types;

pub use error::{Error, Result};
pub use firewall::Firewall;
pub use layout::TABLE;
pub use sysctl::{enable_ip_forward, enable_route_localnet, ip_forward, set_ip_forward, IpForward};
pub use types::{NetworkRules, PortRule, Proto};
