//! `network connect` and `disconnect` as the monitor answers them: the record's endpoints
//! change; a running container also gets (or loses) the interface, its lease and its
//! /etc/hosts line at once, inline in the one loop.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use pelagos_model::config::EndpointSettings;

use crate::error::{Error, Result};
use crate::launch::own_hosts_line;
use crate::monitor::Monitor;
use crate::network::{self, Endpoint, Wanted};

impl Monitor {
    /// `Connect`: the endpoint joins the record; a running container gets the next free
    /// `ethN` on the network now (the default route when it is its only network).
    pub fn connect(&mut self, name: &str, settings: EndpointSettings) -> Result<()> {
        if self.record.networking.endpoints_config.contains_key(name) {
            return Err(Error::Conflict(format!(
                "endpoint with name {} already exists in network {name}",
                self.record.name.trim_start_matches('/')
            )));
        }
        let Some(live) = &self.live else {
            return self.update(|r| add_endpoint(r, name, settings));
        };
        let pid = live.pid;
        let wanted = Wanted {
            name,
            settings: &settings,
            ifname: network::ifname_of(next_free_interface(&live.networks)),
            default_route: live.networks.is_empty(),
        };
        let mut endpoint = network::reserve(&self.root, &self.record, &wanted, None)?;
        let mut filled = settings.clone();
        endpoint.fill(&mut filled);
        let attached = endpoint
            .attach(pid)
            .and_then(|()| self.update(|r| add_endpoint(r, name, filled)));
        if let Err(e) = attached {
            // Best effort: the error that matters is the one that stopped the connection.
            let _ = endpoint.disconnect();
            return Err(e);
        }
        let line = own_hosts_line(IpAddr::V4(endpoint.ipv4()), &self.hostname());
        // Best effort: the interface is there; a missing line is no reason to undo it.
        let _ = edit_hosts(&self.dir.join("hosts"), |text| text.push_str(&line));
        if let Some(live) = &mut self.live {
            live.networks.push(endpoint);
        }
        Ok(())
    }

    /// `Disconnect`: the endpoint leaves the record; a running container loses its
    /// interface, lease, /etc/hosts line (and ports, when published on that network) now.
    pub fn disconnect(&mut self, name: &str) -> Result<()> {
        if !self.record.networking.endpoints_config.contains_key(name) {
            return Err(Error::Invalid(format!(
                "container {} is not connected to the network {name}",
                self.record.id
            )));
        }
        let endpoint = self.live.as_mut().and_then(|live| {
            let at = live.networks.iter().position(|e| e.name() == name)?;
            Some(live.networks.remove(at))
        });
        let had_ports = endpoint
            .as_ref()
            .is_some_and(|e| e.ifname() == network::ifname_of(0));
        let mut detached = Ok(());
        if let Some(endpoint) = endpoint {
            let line = own_hosts_line(IpAddr::V4(endpoint.ipv4()), &self.hostname());
            let _ = edit_hosts(&self.dir.join("hosts"), |text| {
                *text = text.replacen(&line, "", 1);
            });
            detached = endpoint.disconnect();
        }
        self.update(|r| {
            r.networking.endpoints_config.remove(name);
            r.network_order.retain(|n| n != name);
            if had_ports {
                r.ports.clear();
            }
        })?;
        detached
    }

    /// The container's hostname, as its last start wrote it.
    fn hostname(&self) -> String {
        fs::read_to_string(self.dir.join("hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    }
}

/// Adds the endpoint `settings` of network `name` to the record, last in join order.
fn add_endpoint(
    r: &mut pelagos_model::record::ContainerRecord,
    name: &str,
    settings: EndpointSettings,
) {
    r.networking
        .endpoints_config
        .insert(name.to_string(), settings);
    r.network_order.retain(|n| n != name);
    r.network_order.push(name.to_string());
}

/// The lowest `N` no interface `ethN` of `endpoints` has.
fn next_free_interface(endpoints: &[Endpoint]) -> usize {
    (0..)
        .find(|n| {
            endpoints
                .iter()
                .all(|e| e.ifname() != network::ifname_of(*n))
        })
        .unwrap_or(endpoints.len())
}

/// Changes the container's /etc/hosts in place (the file is bind-mounted: the same inode
/// must keep it).
fn edit_hosts(path: &Path, change: impl FnOnce(&mut String)) -> Result<()> {
    let mut text =
        fs::read_to_string(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    change(&mut text);
    fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
}
