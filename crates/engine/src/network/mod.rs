//! The network verbs of the control plane (issue 11): `network create`, `ls` with moby's
//! filters, `inspect` with the endpoints from IPAM, `rm`, `prune`, `connect` and
//! `disconnect` ([`connect`]), and their events, over
//! `pelagos_network`'s store under `<root>/networks/`.
//!
//! Records only: creating a network makes no bridge, rule or resolver; the monitor makes
//! those when the first container attaches. The default `bridge` record is made on first use
//! from the `[network]` settings ([`settings`]).

pub mod connect;
pub mod list;
mod routes;
pub mod settings;

use pelagos_model::events::Event;
use pelagos_model::filters::PruneFilter;
pub use pelagos_network::{DefaultBridge, NetworkCreate, NetworkRecord, NetworkResource, Networks};

use crate::error::Result;
use crate::Engine;
pub use list::NetworkListFilter;

/// The keys `network prune --filter` accepts (moby's network prune filters).
pub const PRUNE_KEYS: &[&str] = &["until", "label", "label!"];

/// The prefixes a new network's chosen subnet must avoid besides the other networks': the
/// routes of this network namespace (read from /proc, no netlink: no side effect).
fn taken_prefixes() -> Vec<ipnet::IpNet> {
    routes::host_routes()
}

/// The network store with the default `bridge` record made when missing.
fn networks_ready(engine: &Engine) -> Result<&Networks> {
    default_network(engine)?;
    Ok(engine.networks())
}

/// The default network `bridge`, made from the `[network]` settings on first use.
pub fn default_network(engine: &Engine) -> Result<NetworkRecord> {
    let networks = engine.networks();
    Ok(networks.ensure_default(&engine.network_settings().default_bridge, &taken_prefixes())?)
}

/// `network create`: the record written, a `create` event emitted.
pub fn create(engine: &Engine, request: &NetworkCreate) -> Result<NetworkRecord> {
    let record = engine.networks().create(request, &taken_prefixes())?;
    engine.emit(&event("create", &record));
    Ok(record)
}

/// `network ls`: every network `filter` lets through, the predefined ones included, in the
/// store's order (oldest first, then `host` and `none`).
pub fn list(engine: &Engine, filter: &NetworkListFilter) -> Result<Vec<NetworkRecord>> {
    let networks = networks_ready(engine)?;
    let mut out = Vec::new();
    for record in networks.list()? {
        let in_use = filter.needs_endpoints() && !networks.leases(&record)?.is_empty();
        if filter.matches(&record, in_use) {
            out.push(record);
        }
    }
    Ok(out)
}

/// `network inspect`: Docker's `NetworkResource` with the endpoints of its leases.
pub fn inspect(engine: &Engine, term: &str) -> Result<NetworkResource> {
    let networks = networks_ready(engine)?;
    let record = networks.get(term)?;
    let containers = networks.endpoints(&record)?;
    Ok(record.resource(containers))
}

/// `network rm` of one network (refused while containers use it): its bridge and rules
/// undone first, the record removed once they are; a `destroy` event.
pub fn remove(engine: &Engine, term: &str) -> Result<NetworkRecord> {
    let record = networks_ready(engine)?.remove_with(term, teardown_for_store)?;
    engine.emit(&event("destroy", &record));
    Ok(record)
}

/// [`teardown`] with its error as the store's, which then keeps the record.
fn teardown_for_store(record: &NetworkRecord) -> pelagos_network::Result<()> {
    teardown(record).map_err(|e| pelagos_network::Error::Teardown(e.to_string()))
}

/// What a removed network left in the host's network namespace once a container used it:
/// its rules in pelagos's nftables table (the table itself when no network is left in it)
/// and its bridge. A network never used has neither: nothing is run then.
fn teardown(record: &NetworkRecord) -> Result<()> {
    let Some(bridge) = record.bridge.as_deref() else {
        return Ok(());
    };
    let mut netlink = pelagos_netlink::Netlink::open()?;
    if netlink.link_index(bridge)?.is_none() {
        return Ok(());
    }
    let firewall = pelagos_firewall::Firewall::new();
    firewall.remove_network(bridge)?;
    if firewall.is_unused()? {
        firewall.remove_all()?;
    }
    netlink.delete_link(bridge)?;
    Ok(())
}

/// `network rm` of several: each one's outcome, in the order given.
pub fn remove_many<S: AsRef<str>>(engine: &Engine, terms: &[S]) -> Vec<Result<NetworkRecord>> {
    terms.iter().map(|t| remove(engine, t.as_ref())).collect()
}

/// `network prune`: the user networks without endpoints that `filter` selects, removed.
pub fn prune(engine: &Engine, filter: &PruneFilter) -> Result<Vec<NetworkRecord>> {
    let networks = engine.networks();
    networks.sweep_removed();
    let removed = networks.prune_with(filter, teardown_for_store)?;
    for record in &removed {
        engine.emit(&event("destroy", record));
    }
    Ok(removed)
}

/// The prune filter of `network prune` (`until`, `label`, `label!`).
pub fn prune_filter<S: AsRef<str>>(args: &[S]) -> Result<PruneFilter> {
    Ok(PruneFilter::parse(args, PRUNE_KEYS)?)
}

fn event(action: &str, record: &NetworkRecord) -> Event {
    Event::network(action, &record.id, &record.name, &record.driver)
}

#[cfg(test)]
mod tests;
