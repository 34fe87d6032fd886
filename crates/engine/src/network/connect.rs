//! `network connect` and `disconnect` (Docker's rules and words): a container that runs is
//! changed by its monitor at once (a new `ethN`, or one gone); one that does not has only its
//! record changed, under its owner lock, and its next start attaches what it lists.

use pelagos_model::config::EndpointSettings;
use pelagos_model::events::Event;
use pelagos_model::protocol::Request;
use pelagos_model::record::ContainerRecord;
use pelagos_model::validate::{network_mode, NetworkMode, DEFAULT_BRIDGE_NETWORK};

use crate::container::{lookup, monitor_of};
use crate::error::{Error, Result};
use crate::Engine;
use pelagos_network::NetworkRecord;

/// Docker's `ErrConflictSharedNetwork`.
pub const SHARED_NETWORK: &str = "container sharing network namespace with another container \
                                  or host cannot be connected to any other network";
/// Docker's `ErrConflictHostNetwork`.
pub const HOST_NETWORK: &str =
    "container cannot be disconnected from host network or connected to host network";
/// Docker's `ErrConflictNoNetwork`.
pub const NO_NETWORK: &str = "container cannot be connected to multiple networks with one of \
                              the networks in private (none) mode";

/// Connects the container `container` to the network `network` with the endpoint `settings`
/// (`--ip`, `--ip6`, `--alias`).
pub fn connect(
    engine: &Engine,
    network: &str,
    container: &str,
    mut settings: EndpointSettings,
) -> Result<()> {
    let record = lookup(engine, container)?;
    let net = find(engine, network)?;
    check_connect(&record, &net)?;
    pelagos_model::validate::check_endpoint(&net.name, &settings)?;
    check_addresses(&net, &settings)?;
    if record.networking.endpoints_config.contains_key(&net.name) {
        return Err(Error::Conflict(format!(
            "endpoint with name {} already exists in network {}",
            record.name.trim_start_matches('/'),
            net.name
        )));
    }
    settings.network_id = net.id.clone();
    let request = Request::Connect {
        network: net.name.clone(),
        settings: settings.clone(),
    };
    change(engine, &record, request, |r| {
        r.networking
            .endpoints_config
            .insert(net.name.clone(), settings);
        r.network_order.retain(|n| *n != net.name);
        r.network_order.push(net.name.clone());
    })?;
    emit(engine, "connect", &net, &record);
    Ok(())
}

/// Disconnects the container `container` from the network `network`; with `force` a
/// network that no longer exists is forgotten by its name.
pub fn disconnect(engine: &Engine, network: &str, container: &str, force: bool) -> Result<()> {
    let record = lookup(engine, container)?;
    let net = match find(engine, network) {
        Ok(n) => Some(n),
        Err(e) if force && e.kind() == pelagos_model::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let name = net
        .as_ref()
        .map_or(network, |n| n.name.as_str())
        .to_string();
    let mode = network_mode(&record.config, &record.host_config)?;
    if mode == NetworkMode::Host && name == "host" {
        return Err(Error::Invalid(HOST_NETWORK.into()));
    }
    if !record.networking.endpoints_config.contains_key(&name) {
        return Err(Error::Invalid(format!(
            "container {} is not connected to the network {name}",
            record.id
        )));
    }
    let request = Request::Disconnect {
        network: name.clone(),
    };
    change(engine, &record, request, |r| {
        r.networking.endpoints_config.remove(&name);
        r.network_order.retain(|n| *n != name);
    })?;
    if let Some(net) = &net {
        emit(engine, "disconnect", net, &record);
    }
    Ok(())
}

/// Docker's refusals: a container on the host's, another container's or no network, and
/// the `host` and `none` networks, take no other network.
fn check_connect(record: &ContainerRecord, net: &NetworkRecord) -> Result<()> {
    let mode = network_mode(&record.config, &record.host_config)?;
    let refused = match (&mode, net.name.as_str()) {
        (NetworkMode::Host, "host") | (NetworkMode::Bridge(_), "host") => Some(HOST_NETWORK),
        (NetworkMode::Host, _) | (NetworkMode::Container(_), _) => Some(SHARED_NETWORK),
        // `Default` only in a record made before the engine put its default in: `none`.
        (NetworkMode::None | NetworkMode::Default, _) | (_, "none") => Some(NO_NETWORK),
        (NetworkMode::Bridge(_), _) => None,
    };
    if let Some(message) = refused {
        return Err(Error::Invalid(message.into()));
    }
    if net.bridge.is_none() {
        return Err(Error::Invalid(format!(
            "network {} is not a bridge network",
            net.name
        )));
    }
    Ok(())
}

/// Asked addresses must be in one of the network's subnets (Docker's check at connect, so a
/// stopped container does not find out at its next start).
fn check_addresses(net: &NetworkRecord, settings: &EndpointSettings) -> Result<()> {
    let Some(ipam) = &settings.ipam_config else {
        return Ok(());
    };
    for text in [&ipam.ipv4_address, &ipam.ipv6_address] {
        let Ok(ip) = text.parse::<std::net::IpAddr>() else {
            continue;
        };
        if !net.ipam.config.iter().any(|p| p.subnet.contains(&ip)) {
            return Err(Error::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    Ok(())
}

/// The network `term` (name, id or prefix); `bridge` is made on first use.
fn find(engine: &Engine, term: &str) -> Result<NetworkRecord> {
    match term {
        DEFAULT_BRIDGE_NETWORK => super::default_network(engine),
        _ => Ok(engine.networks().get(term)?),
    }
}

/// The change made by the container's monitor (`request`) when one runs it, else `edit` of
/// its record under its owner lock.
fn change(
    engine: &Engine,
    record: &ContainerRecord,
    request: Request,
    edit: impl FnOnce(&mut ContainerRecord),
) -> Result<()> {
    if let Some(mut client) = monitor_of(engine, record)? {
        client.call(&request)?;
        return Ok(());
    }
    let containers = engine.containers();
    let Some(_lock) = containers.try_own(&record.id)? else {
        return Err(Error::Conflict(format!(
            "container {} is busy: another command is starting or removing it",
            record.name.trim_start_matches('/')
        )));
    };
    containers.modify(&record.id, edit)?;
    Ok(())
}

/// The network's event for the container (Docker's `connect` and `disconnect`).
fn emit(engine: &Engine, action: &str, net: &NetworkRecord, record: &ContainerRecord) {
    let event = Event::network(action, &net.id, &net.name, &net.driver)
        .with("container", record.id.as_str());
    engine.emit(&event);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::HostConfig;

    fn record(mode: &str) -> ContainerRecord {
        ContainerRecord {
            name: "/web".into(),
            host_config: HostConfig {
                network_mode: mode.into(),
                ..Default::default()
            },
            ..ContainerRecord::new(pelagos_model::names::new_container_id().unwrap(), "busybox")
        }
    }

    fn network(name: &str, bridge: Option<&str>) -> NetworkRecord {
        serde_json::from_value(serde_json::json!({
            "Name": name, "Id": "0123456789abcdef", "Created": "2024-01-02T15:04:05Z",
            "Scope": "local", "Driver": "bridge", "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Config": [], "Options": {}},
            "Internal": false, "Attachable": false, "Ingress": false, "Options": {},
            "Labels": {}, "PelagosBridge": bridge
        }))
        .unwrap()
    }

    #[test]
    fn only_bridge_containers_join_bridge_networks() {
        let app = network("app", Some("pl-0123456789ab"));
        let host = network("host", None);
        let none = network("none", None);
        let refusal = |mode: &str, net: &NetworkRecord| {
            check_connect(&record(mode), net)
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(refusal("app", &app), None);
        assert_eq!(refusal("bridge", &app), None);
        assert_eq!(refusal("host", &app).as_deref(), Some(SHARED_NETWORK));
        assert_eq!(
            refusal("container:db", &app).as_deref(),
            Some(SHARED_NETWORK)
        );
        assert_eq!(refusal("host", &host).as_deref(), Some(HOST_NETWORK));
        assert_eq!(refusal("app", &host).as_deref(), Some(HOST_NETWORK));
        assert_eq!(refusal("", &app).as_deref(), Some(NO_NETWORK));
        assert_eq!(refusal("app", &none).as_deref(), Some(NO_NETWORK));
    }
}
