//! `create`: a typed, validated request becomes a record (status Created). Everything that
//! can be checked is checked before the record exists, so bad input leaves nothing behind.

use pelagos_image::ImageRecord;
use pelagos_model::config::{ContainerConfig, HealthConfig, HostConfig, NetworkingConfig};
use pelagos_model::events::Event;
use pelagos_model::names::{new_container_id, now_rfc3339};
use pelagos_model::record::ContainerRecord;

use crate::error::{Error, Result};
use crate::Engine;

/// What Docker's `POST /containers/create` carries (and `pelagos create`/`run` build).
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    /// `--name` (Docker's rule; a free generated one when `None`).
    pub name: Option<String>,
    /// The image as the user named it.
    pub image_name: String,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    pub networking: NetworkingConfig,
}

/// The request with the engine's defaults: `HostConfig.NetworkMode` `""` (or Docker's
/// `default`) becomes the configured default network (`bridge`, as Docker's).
pub fn with_defaults(engine: &Engine, mut req: CreateRequest) -> CreateRequest {
    let asked = &req.host_config.network_mode;
    req.host_config.network_mode =
        crate::network::settings::network_mode_or_default(asked, engine.network_settings());
    req
}

/// Checks a request, its defaults filled in ([`with_defaults`]), without creating anything
/// (what `create` does first).
pub fn validate(req: &CreateRequest) -> Result<()> {
    if let Some(n) = &req.name {
        pelagos_model::names::validate_name(n.strip_prefix('/').unwrap_or(n))?;
    }
    pelagos_spec::validate(&req.config, &req.host_config)?;
    let network = pelagos_model::validate::network_mode(&req.config, &req.host_config)?;
    pelagos_model::validate::check_endpoints(&network, &req.networking)?;
    // A missing host device is refused before anything is made (Docker finds out at start).
    pelagos_spec::devices::host_devices(&req.host_config)?;
    check_enforceable(&req.host_config)
}

/// The cgroup v2 controller each limit needs, with the flag and API field that asked for it.
fn limits_asked(host: &HostConfig) -> Vec<(&'static str, &'static str)> {
    let mut asked = Vec::new();
    if host.memory > 0 || host.memory_swap > 0 || host.memory_reservation > 0 {
        asked.push(("memory", "-m, --memory (HostConfig.Memory)"));
    }
    if host.nano_cpus > 0 || host.cpu_quota > 0 {
        asked.push(("cpu", "--cpus (HostConfig.NanoCpus)"));
    }
    if host.cpu_shares > 0 {
        asked.push(("cpu", "-c, --cpu-shares (HostConfig.CpuShares)"));
    }
    if !host.cpuset_cpus.is_empty() || !host.cpuset_mems.is_empty() {
        asked.push(("cpuset", "--cpuset-cpus (HostConfig.CpusetCpus)"));
    }
    if host.pids_limit.is_some_and(|p| p > 0) {
        asked.push(("pids", "--pids-limit (HostConfig.PidsLimit)"));
    }
    asked
}

/// A limit this host's cgroup v2 tree cannot enforce is refused here, before anything is
/// made, naming the flag (the runtime would refuse it at create, naming the OCI field).
pub(crate) fn check_enforceable(host: &HostConfig) -> Result<()> {
    let asked = limits_asked(host);
    if asked.is_empty() {
        return Ok(());
    }
    let offered = pelagos_cgroups::available_controllers().unwrap_or_default();
    for (controller, flag) in asked {
        if !offered.iter().any(|c| c == controller) {
            let mount = pelagos_cgroups::v2_mountpoint()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "none".into());
            return Err(Error::Unenforceable(format!(
                "{flag} cannot be enforced on this host: its cgroup v2 tree ({mount}) has no \
                 \"{controller}\" controller (it offers: {}); run without it",
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// Docker's `Healthcheck` of the image config (not part of the OCI image spec).
fn image_healthcheck(engine: &Engine, image: &ImageRecord) -> Option<HealthConfig> {
    let raw = engine.images().config_bytes(image).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&raw).ok()?;
    serde_json::from_value(value.get("config")?.get("Healthcheck")?.clone()).ok()
}

/// Docker's merge of the image's `EXPOSE` into the container's `Config.ExposedPorts` (with
/// those of `--expose` and `-p`): each port once, `80` read as `80/tcp`.
fn merge_exposed_ports(config: &mut ContainerConfig, image_exposed: &[String]) {
    if image_exposed.is_empty() {
        return;
    }
    let exposed = config.exposed_ports.get_or_insert_with(Default::default);
    for port in image_exposed {
        let key = match port.contains('/') {
            true => port.clone(),
            false => format!("{port}/tcp"),
        };
        exposed.entry(key).or_insert_with(|| serde_json::json!({}));
    }
}

/// Creates the record of a new container from `image` (present in the store).
pub fn create(engine: &Engine, image: &ImageRecord, req: CreateRequest) -> Result<ContainerRecord> {
    let req = with_defaults(engine, req);
    validate(&req)?;
    let mut req = req;
    super::endpoint::resolve_container_mode(engine, &mut req.host_config)?;
    let networking =
        super::endpoint::resolve(engine, &req.config, &req.host_config, req.networking)?;
    // Until the record names the image, a prune could take its layers.
    let _lease = engine.images().lease()?;
    let image_config = engine.images().config(image)?;
    let command = pelagos_spec::command_line(image_config.config().as_ref(), &req.config)?;
    let mut config = req.config;
    config.image = req.image_name.clone();
    if config.healthcheck.is_none() {
        config.healthcheck = image_healthcheck(engine, image);
    }
    if config.mac_address.is_none() {
        // The MAC asked for, told apart from the one an attachment records in the endpoint.
        config.mac_address = networking
            .endpoints_config
            .values()
            .map(|e| e.mac_address.clone())
            .find(|m| !m.is_empty());
    }
    let image_exposed = image_config
        .config()
        .as_ref()
        .and_then(|c| c.exposed_ports().clone())
        .unwrap_or_default();
    merge_exposed_ports(&mut config, &image_exposed);
    if config.stop_signal.is_none() {
        config.stop_signal = image_config
            .config()
            .as_ref()
            .and_then(|c| c.stop_signal().clone());
    }
    let network_order = networking.endpoints_config.keys().cloned().collect();
    let record = ContainerRecord {
        created: now_rfc3339(),
        image_id: image.id.to_string(),
        command,
        config,
        host_config: req.host_config,
        networking,
        network_order,
        ..ContainerRecord::new(new_container_id()?, req.image_name)
    };
    let record = engine.containers().create(record, req.name.as_deref())?;
    engine.emit(&Event::container(&record, "create"));
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_s_exposed_ports_join_the_container_s() {
        let mut config = ContainerConfig::default();
        merge_exposed_ports(&mut config, &[]);
        assert_eq!(config.exposed_ports, None);
        config.exposed_ports = Some([("80/tcp".to_string(), serde_json::json!({}))].into());
        merge_exposed_ports(
            &mut config,
            &["80/tcp".into(), "53/udp".into(), "8080".into()],
        );
        let keys: Vec<&String> = config.exposed_ports.iter().flat_map(|e| e.keys()).collect();
        assert_eq!(keys, ["53/udp", "80/tcp", "8080/tcp"]);
    }
}
