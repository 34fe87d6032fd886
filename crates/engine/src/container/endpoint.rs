//! A container's bridge network on the control plane: resolved to its record at create
//! (its id kept in the endpoint), and the lease, resolver names and host ports of a
//! container whose monitor died freed.

use pelagos_model::config::{ContainerConfig, HostConfig, NetworkingConfig};
use pelagos_model::record::ContainerRecord;
use pelagos_model::validate::{check_endpoints, network_mode, DEFAULT_BRIDGE_NETWORK};
use pelagos_model::ErrorKind;
use pelagos_network::{HostPorts, NetworkRecord, Networks};

use crate::error::{Error, Result};
use crate::Engine;

/// The network store under the engine's root.
fn networks(engine: &Engine) -> Result<Networks> {
    Networks::open(&engine.options.root).map_err(from_network)
}

/// The request's endpoints with the network resolved: the one bridge network the container
/// joins (the default `bridge` made on first use), keyed by its name, with its `NetworkID`.
/// A network that does not exist is refused (`network NAME not found`) before anything is
/// made; `none` and `host` keep no endpoint.
pub fn resolve(
    engine: &Engine,
    config: &ContainerConfig,
    host: &HostConfig,
    networking: NetworkingConfig,
) -> Result<NetworkingConfig> {
    let mode = network_mode(config, host)?;
    check_endpoints(&mode, &networking)?;
    if host
        .extra_hosts
        .iter()
        .any(|e| e.ends_with(":host-gateway"))
    {
        // The monitor writes the default network's gateway for it: its record must exist.
        find(engine, DEFAULT_BRIDGE_NETWORK)?;
    }
    let Some(name) = mode.bridge_network() else {
        return Ok(NetworkingConfig::default());
    };
    let network = find(engine, name)?;
    let mut endpoint = networking
        .endpoints_config
        .into_values()
        .next()
        .unwrap_or_default();
    endpoint.network_id = network.id.clone();
    let mut resolved = NetworkingConfig::default();
    resolved.endpoints_config.insert(network.name, endpoint);
    Ok(resolved)
}

/// `--network container:NAME|ID` as Docker's inspect shows it, `container:<full id>`: the
/// other container must exist (it must run only when this one starts).
pub fn resolve_container_mode(engine: &Engine, host: &mut HostConfig) -> Result<()> {
    let Some(name) = pelagos_model::validate::joined_container(&host.network_mode) else {
        return Ok(());
    };
    let donor = engine.containers().get(name)?;
    host.network_mode = format!("container:{}", donor.id);
    Ok(())
}

/// The bridge network `name` (or id): `bridge` is made from the `[network]` settings on first
/// use.
fn find(engine: &Engine, name: &str) -> Result<NetworkRecord> {
    let network = match name {
        DEFAULT_BRIDGE_NETWORK => crate::network::default_network(engine)?,
        _ => networks(engine)?.get(name).map_err(from_network)?,
    };
    if network.bridge.is_none() {
        return Err(Error::Invalid(format!(
            "network {name} is not a bridge network: use --network {name} by its name"
        )));
    }
    Ok(network)
}

/// Frees the leases of a container whose monitor died (its veth died with its namespace).
/// A network removed meanwhile has nothing to free.
pub fn release_leases(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    if record.networking.endpoints_config.is_empty() {
        return Ok(());
    }
    let networks = networks(engine)?;
    for endpoint in record.networking.endpoints_config.values() {
        match networks.get(&endpoint.network_id) {
            Ok(network) => {
                networks
                    .release(&network, record.id.as_str())
                    .map_err(from_network)?;
            }
            Err(pelagos_network::Error::NotFound(_)) => {}
            Err(e) => return Err(from_network(e)),
        }
    }
    Ok(())
}

/// Removes the names of a container whose monitor died from its networks' resolvers, under
/// the names lock (a resolver left without names exits). A network removed meanwhile, or one
/// without names (the default bridge), has nothing to remove.
pub fn release_names(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    if record.networking.endpoints_config.is_empty() {
        return Ok(());
    }
    let networks = networks(engine)?;
    for endpoint in record.networking.endpoints_config.values() {
        let network = match networks.get(&endpoint.network_id) {
            Ok(network) => network,
            Err(pelagos_network::Error::NotFound(_)) => continue,
            Err(e) => return Err(from_network(e)),
        };
        let dir = networks.dir_of(&network).join(pelagos_dns::DIR_NAME);
        pelagos_dns::names::forget(&dir, record.id.as_str()).map_err(from_dns)?;
    }
    Ok(())
}

/// A resolver-file error as the engine's.
fn from_dns(e: pelagos_dns::Error) -> Error {
    match e.is_invalid_input() {
        true => Error::Invalid(e.to_string()),
        false => Error::io(e.to_string(), std::io::Error::other("resolver names")),
    }
}

/// Frees the host ports of a container whose monitor died and removes their rules (one
/// `nft` run, only when it held ports).
pub fn release_ports(engine: &Engine, record: &ContainerRecord) -> Result<()> {
    if record.networking.endpoints_config.is_empty() {
        return Ok(());
    }
    let ports = HostPorts::open(&engine.options.root).map_err(from_network)?;
    let freed = ports.release(record.id.as_str()).map_err(from_network)?;
    if !freed.is_empty() || !record.ports.is_empty() {
        pelagos_firewall::Firewall::new().remove_ports(record.id.as_str())?;
    }
    Ok(())
}

/// A network error as the engine's, its kind kept.
fn from_network(e: pelagos_network::Error) -> Error {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => Error::NotFound(text),
        ErrorKind::Conflict => Error::Conflict(text),
        ErrorKind::InvalidArgument => Error::Invalid(text),
        _ => Error::io(text, std::io::Error::other("network store")),
    }
}
