//! [`Firewall`]: the operations on table `inet pelagos`, each one `nft` transaction (plus
//! a listing first where rules must be found to be removed).

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::layout::{self, Obj, PORTS};
use crate::listing::Listing;
use crate::nft::Nft;
use crate::sysctl;
use crate::types::{check_bridge, check_container_id, NetworkRules, PortRule};
use crate::{network, ports};

/// pelagos's nftables table in the calling thread's network namespace. Holds no state
/// but where `nft` is: every call reads or changes the kernel's table.
#[derive(Debug, Clone)]
pub struct Firewall {
    nft: Nft,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall::new()
    }
}

impl Firewall {
    /// Uses `nft` from `PATH` (or /usr/sbin, /sbin, /usr/local/sbin).
    pub fn new() -> Firewall {
        Firewall { nft: Nft::find() }
    }

    /// Uses the given `nft` program.
    pub fn with_nft(program: impl Into<PathBuf>) -> Firewall {
        Firewall {
            nft: Nft::at(program.into()),
        }
    }

    /// The `nft` program run.
    pub fn nft_program(&self) -> &Path {
        self.nft.program()
    }

    /// Creates the table if needed and (re)writes the network's rules, so that calling it
    /// again, or with changed subnets, leaves exactly one copy of the current rules. Turns
    /// `route_localnet` on for the bridge, which must exist. Two `nft` runs (a listing, a
    /// transaction): call it when the bridge is created, not for every container.
    pub fn ensure_network(&self, net: &NetworkRules) -> Result<()> {
        check_bridge(&net.bridge)?;
        sysctl::enable_route_localnet(&net.bridge)?;
        let listing = self.nft.list()?;
        let mut cmds = layout::skeleton(listing.as_ref());
        if let Some(listing) = &listing {
            cmds.extend(network_removal(listing, &net.bridge));
        }
        cmds.extend(network::rules(net));
        self.nft.apply(
            &format!("setting up the rules of bridge {}", net.bridge),
            cmds,
        )
    }

    /// Removes the network's rules (none there is no error).
    pub fn remove_network(&self, bridge: &str) -> Result<()> {
        check_bridge(bridge)?;
        let Some(listing) = self.nft.list()? else {
            return Ok(());
        };
        let cmds = network_removal(&listing, bridge);
        self.nft
            .apply(&format!("removing the rules of bridge {bridge}"), cmds)
    }

    /// Publishes a container's ports: its own chain of DNAT rules and a jump to it, in one
    /// `nft` run (none for no ports). The network must have been set up
    /// ([`Firewall::ensure_network`]).
    pub fn add_ports(&self, container_id: &str, rules: &[PortRule]) -> Result<()> {
        check_container_id(container_id)?;
        if rules.is_empty() {
            return Ok(());
        }
        rules.iter().try_for_each(PortRule::check)?;
        let cmds = ports::rules(container_id, rules);
        self.nft.apply(
            &format!("publishing the ports of container {container_id}"),
            cmds,
        )
    }

    /// Removes a container's published ports (none there is no error).
    pub fn remove_ports(&self, container_id: &str) -> Result<()> {
        check_container_id(container_id)?;
        let Some(listing) = self.nft.list()? else {
            return Ok(());
        };
        let tag = layout::container_tag(container_id);
        let jumps: Vec<u32> = listing
            .tagged(&tag)
            .filter(|r| r.chain == PORTS)
            .map(|r| r.handle)
            .collect();
        let chain_exists = listing.has_chain(&layout::ports_chain(container_id));
        let cmds = ports::removal(container_id, &jumps, chain_exists);
        self.nft.apply(
            &format!("removing the ports of container {container_id}"),
            cmds,
        )
    }

    /// Whether no network and no container uses the table (true if it does not exist):
    /// then [`Firewall::remove_all`] may remove it.
    pub fn is_unused(&self) -> Result<bool> {
        let Some(listing) = self.nft.list()? else {
            return Ok(true);
        };
        let port_chain_prefix = format!("{PORTS}-");
        let has_ports = listing.chains().any(|c| c.starts_with(&port_chain_prefix));
        let has_networks = listing
            .tagged_with_prefix(&layout::network_tag(""))
            .next()
            .is_some();
        Ok(!has_ports && !has_networks)
    }

    /// Removes the whole table, whether or not it exists. Touches no other table.
    pub fn remove_all(&self) -> Result<()> {
        self.nft
            .apply("removing table inet pelagos", layout::delete_table())
    }
}

/// Deletions of the network's tagged rules and its `bridges` element.
fn network_removal(listing: &Listing, bridge: &str) -> Vec<Obj> {
    let tag = layout::network_tag(bridge);
    let mut cmds: Vec<Obj> = listing
        .tagged(&tag)
        .map(|r| layout::delete_rule(&r.chain, r.handle))
        .collect();
    if listing.has_element(bridge) {
        cmds.push(layout::bridge_element(bridge, false));
    }
    cmds
}
