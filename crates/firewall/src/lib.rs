//! pelagos's firewall for bridge networks: its own nftables table `inet pelagos`, written
//! through nft's JSON interface (`nft -j -f -`), and a container's published ports over
//! nf_tables netlink in-process; nothing outside that table.
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
//! **Cost** (`examples/bench.rs`, release build, 2-core test machine, nftables 1.0.6, kernel
//! 6.x, medians of 30): one `nft` run is ≈ 3.5 ms, nearly all of it nft's own start
//! (shared libraries, cache fetch). So the per-container calls do not run it:
//! [`Firewall::add_ports`] is one nf_tables netlink batch (NEWCHAIN, a flush, NEWRULE per
//! port, the jump echoed to learn its handle), ≈ 20 µs against 3.5 ms for the same rules
//! by `nft`; [`Firewall::remove_ports_known`] deletes by that handle in one batch, ≈ 5 µs,
//! against 20 ms for [`Firewall::remove_ports`] (listing, then `nft`). The batch is acked
//! once committed; what remains of a deletion is paid when the socket that made it closes:
//! the kernel then waits for an RCU grace period (≈ 12 ms measured; ≈ 4 µs after an
//! addition), the wait that made every `nft` deletion slow. A [`Firewall`] keeps its socket
//! until dropped, so a caller can close it when nothing waits on it. The network calls
//! (rare) stay with `nft`: `ensure_network` ≈ 5 ms for a new table and 16 ms again. Re-adding an existing chain costs the same wait (≈ 13 ms),
//! so the table's fixed chains are only added when a listing shows them missing.
//!
//! **Loopback** (`wget 127.0.0.1:PORT` on the host): DNAT in the `output` chain plus
//! `route_localnet=1` on the bridge plus masquerade of 127.0.0.0/8 into it, as Docker does
//! with `userland-proxy=false`. Docker's default, a proxy process per published port, was
//! not measured here; it costs a process per port and a copy through user space of every
//! byte, where this costs one rule and nothing per connection. IPv6's `::1` cannot be
//! DNAT'd off the host: published ports are not reachable on `[::1]`.
//!
//! **Hairpin** (a container reaching its own published port through a host address) also
//! needs hairpin mode on the container's bridge port (pelagos-netlink's job, as Docker
//! sets it without its proxy): where br_netfilter is loaded, the DNAT'd packet is bridged
//! back out of the port it came in by.

mod bytecode;
mod error;
mod expr;
mod firewall;
mod layout;
mod listing;
mod network;
mod nfmsg;
mod nfsock;
mod nft;
mod ports;
mod sysctl;
mod types;

pub use error::{Error, Result};
pub use firewall::{Firewall, PublishedRules};
pub use layout::TABLE;
pub use sysctl::{enable_ip_forward, enable_route_localnet, ip_forward, set_ip_forward, IpForward};
pub use types::{NetworkRules, PortRule, Proto};
