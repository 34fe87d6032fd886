//! [`Firewall`]: the operations on table `inet pelagos`, each one kernel transaction: a
//! container's ports over nf_tables netlink, the rest through `nft` (plus a listing first
//! where rules must be found to be removed).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::bytecode;
use crate::error::{Error, Result};
use crate::layout::{self, Obj, PORTS, TABLE};
use crate::listing::Listing;
use crate::nfmsg::{self, Message};
use crate::nfsock::NfSocket;
use crate::nft::Nft;
use crate::sysctl;
use crate::types::{check_bridge, check_container_id, NetworkRules, PortRule};
use crate::{network, ports};

/// pelagos's nftables table in the calling thread's network namespace. Holds no state of
/// the table (every call reads or changes the kernel's), only where `nft` is and the
/// nf_tables netlink socket of the port calls: opened by the first one, in the calling
/// thread's namespace, which it stays bound to, and closed when the `Firewall` is
/// dropped (a clone opens its own).
#[derive(Debug)]
pub struct Firewall {
    nft: Nft,
    socket: Mutex<Option<NfSocket>>,
}

impl Clone for Firewall {
    fn clone(&self) -> Self {
        Firewall {
            nft: self.nft.clone(),
            socket: Mutex::new(None),
        }
    }
}

/// What [`Firewall::add_ports`] made, all [`Firewall::remove_ports_known`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedRules {
    /// Nothing (no ports).
    Nothing,
    /// The container's chain and the jump to it, by its handle in chain `ports`.
    Jump {
        /// The jump rule's handle.
        handle: u64,
    },
    /// Rules whose jump's handle is not known (the kernel echoed none): removal finds it
    /// in a listing.
    Unknown,
}

impl Default for Firewall {
    fn default() -> Self {
        Firewall::new()
    }
}

impl Firewall {
    /// Uses `nft` from `PATH` (or /usr/sbin, /sbin, /usr/local/sbin).
    pub fn new() -> Firewall {
        Firewall::with(Nft::find())
    }

    fn with(nft: Nft) -> Firewall {
        Firewall {
            nft,
            socket: Mutex::new(None),
        }
    }

    /// Uses the given `nft` program.
    pub fn with_nft(program: impl Into<PathBuf>) -> Firewall {
        Firewall::with(Nft::at(program.into()))
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
    /// netlink transaction (none for no ports), no `nft` run. The network
    /// must have been set up ([`Firewall::ensure_network`]).
    pub fn add_ports(&self, container_id: &str, rules: &[PortRule]) -> Result<PublishedRules> {
        check_container_id(container_id)?;
        if rules.is_empty() {
            return Ok(PublishedRules::Nothing);
        }
        rules.iter().try_for_each(PortRule::check)?;
        let action = format!("publishing the ports of container {container_id}");
        let messages = port_messages(container_id, rules);
        let jump = messages.len() - 1;
        let echoes = self.netlink(&action, &messages)?;
        let handle = echoes
            .iter()
            .filter(|e| e.index == jump)
            .find_map(|e| rule_handle(&e.attrs));
        Ok(
            handle.map_or(PublishedRules::Unknown, |handle| PublishedRules::Jump {
                handle,
            }),
        )
    }

    /// [`Firewall::add_ports`] as it was before netlink: one `nft -j -f -` run of the same
    /// rules. For the tests that compare both and for benchmarks.
    #[doc(hidden)]
    pub fn add_ports_via_nft(&self, container_id: &str, rules: &[PortRule]) -> Result<()> {
        check_container_id(container_id)?;
        rules.iter().try_for_each(PortRule::check)?;
        let action = format!("publishing the ports of container {container_id}");
        match rules.is_empty() {
            true => Ok(()),
            false => self.nft.apply(&action, ports::rules(container_id, rules)),
        }
    }

    /// Removes what [`Firewall::add_ports`] made, in one netlink transaction without a
    /// listing when the jump's handle is known (else, or if the jump is gone,
    /// [`Firewall::remove_ports`]). Done when it returns: the kernel has committed it.
    pub fn remove_ports_known(&self, container_id: &str, rules: &PublishedRules) -> Result<()> {
        check_container_id(container_id)?;
        let handle = match rules {
            PublishedRules::Nothing => return Ok(()),
            PublishedRules::Unknown => return self.remove_ports(container_id),
            PublishedRules::Jump { handle } => *handle,
        };
        let chain = layout::ports_chain(container_id);
        let messages = [
            nfmsg::del_rule(TABLE, PORTS, Some(handle)),
            nfmsg::del_rule(TABLE, &chain, None),
            nfmsg::del_chain(TABLE, &chain),
        ];
        let action = format!("removing the ports of container {container_id}");
        match self.netlink(&action, &messages) {
            Err(Error::Netlink { source, .. }) if source.raw_os_error() == Some(libc::ENOENT) => {
                self.remove_ports(container_id)
            }
            done => done.map(drop),
        }
    }

    /// Runs one netlink transaction on the port calls' socket, opened on first use.
    fn netlink(&self, action: &str, messages: &[Message]) -> Result<Vec<crate::nfsock::Echo>> {
        let mut socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        let socket = match &mut *socket {
            Some(socket) => socket,
            empty => empty.insert(NfSocket::open()?),
        };
        socket.transact(action, messages)
    }

    /// Removes a container's published ports, found in a listing (none there is no
    /// error): for a restart after a crash, when [`PublishedRules`] were lost.
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

/// The messages of [`ports::rules`]: the container's chain (added, or emptied if a crash
/// left it), a DNAT rule per port (a range's port map first, numbered in the batch from
/// 1), then the tagged jump, echoed to learn its handle.
fn port_messages(container_id: &str, rules: &[PortRule]) -> Vec<Message> {
    let chain = layout::ports_chain(container_id);
    let mut messages = vec![
        nfmsg::new_chain(TABLE, &chain),
        nfmsg::del_rule(TABLE, &chain, None),
    ];
    for (map_id, rule) in (1..).zip(rules) {
        if rule.host_port != rule.host_port_end {
            let pairs: Vec<(u16, u16)> = (rule.host_port..=rule.host_port_end)
                .zip(rule.container_port..)
                .collect();
            messages.extend(nfmsg::new_port_map(TABLE, map_id, &pairs));
        }
        let exprs = bytecode::dnat_rule(rule, map_id).into_attrs();
        messages.push(nfmsg::new_rule(TABLE, &chain, &exprs, None, false));
    }
    let tag = bytecode::comment(&layout::container_tag(container_id));
    let jump = bytecode::jump(&chain).into_attrs();
    messages.push(nfmsg::new_rule(TABLE, PORTS, &jump, Some(&tag), true));
    messages
}

/// The handle of an echoed rule.
fn rule_handle(attrs: &[u8]) -> Option<u64> {
    let (_, value) = nfmsg::parse_attrs(attrs)
        .into_iter()
        .find(|(kind, _)| *kind == nfmsg::attr::RULE_HANDLE)?;
    Some(u64::from_be_bytes(value.try_into().ok()?))
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
