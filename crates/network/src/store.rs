//! The networks under `<root>/networks/`: one directory per network id with its
//! `network.json`, names and subnets made unique under a store-wide lock, Docker's lookup
//! order, removal refused while leases exist, prune, and the predefined networks.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use ipnet::{IpNet, Ipv4Net};
use pelagos_model::filters::PruneFilter;
use sha2::{Digest, Sha256};

use crate::create::{NetworkCreate, PoolRequest};
use crate::error::{Error, Result};
use crate::files::{read_json, write_json, FileLock};
use crate::pools::{first_host, overlaps, pick_ula, pick_v4, DEFAULT_BRIDGE_SUBNET};
use crate::record::{
    user_bridge_name, Ipam, IpamPool, NetworkRecord, BRIDGE_NAME_OPTION, DEFAULT_BRIDGE,
    DEFAULT_NETWORK,
};

/// A network's record file inside its directory.
pub const NETWORK_FILE: &str = "network.json";
/// The store-wide lock (names, subnets, bridges, removals).
const STORE_LOCK: &str = ".lock";
/// Prefix of a directory being removed (renamed first, so name and id are free at once).
const REMOVING_PREFIX: &str = ".removing-";

/// Settings of the default network `bridge` (from the engine's configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultBridge {
    /// Its subnet (`None`: 172.17.0.0/16 unless taken, then the next default pool).
    pub subnet: Option<Ipv4Net>,
    /// Its gateway (`None`: the subnet's first address).
    pub gateway: Option<Ipv4Addr>,
    /// Its bridge interface.
    pub bridge: String,
    /// `com.docker.network.driver.mtu`.
    pub mtu: u32,
}

impl Default for DefaultBridge {
    fn default() -> Self {
        DefaultBridge {
            subnet: None,
            gateway: None,
            bridge: DEFAULT_BRIDGE.to_string(),
            mtu: 1500,
        }
    }
}

/// The network records under one root.
#[derive(Debug, Clone)]
pub struct Networks {
    dir: PathBuf,
}

impl Networks {
    /// The networks of `root` (`<root>/networks`, created when missing).
    pub fn open(root: &Path) -> Result<Networks> {
        let dir = root.join("networks");
        fs::create_dir_all(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        Ok(Networks { dir })
    }

    /// `<root>/networks`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory of a network (its record, leases, names).
    pub fn dir_of(&self, network: &NetworkRecord) -> PathBuf {
        self.dir.join(&network.id)
    }

    fn lock(&self) -> Result<FileLock> {
        let path = self.dir.join(STORE_LOCK);
        FileLock::exclusive(&path, true)?
            .ok_or_else(|| Error::io(format!("lock {}", path.display()), not_found()))
    }

    /// The stored networks (not `host` and `none`), oldest first.
    fn stored(&self) -> Result<Vec<NetworkRecord>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| Error::io(format!("read {}", self.dir.display()), e))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let hidden = entry.file_name().as_encoded_bytes().starts_with(b".");
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if hidden || !is_dir {
                continue;
            }
            if let Some(r) = read_json::<NetworkRecord>(&entry.path().join(NETWORK_FILE))? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        Ok(out)
    }

    /// Every network, `host` and `none` included, as `network ls` lists them.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        let mut all = self.stored()?;
        all.push(predefined("host", "host"));
        all.push(predefined("none", "null"));
        Ok(all)
    }

    /// A network by full id, else by name, else by unique id prefix (Docker's order).
    pub fn get(&self, term: &str) -> Result<NetworkRecord> {
        let all = self.list()?;
        if let Some(r) = all.iter().find(|r| r.id == term) {
            return Ok(r.clone());
        }
        if let Some(r) = all.iter().find(|r| r.name == term) {
            return Ok(r.clone());
        }
        let matches: Vec<&NetworkRecord> = all
            .iter()
            .filter(|r| !term.is_empty() && r.id.starts_with(term))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NotFound(term.to_string())),
            many => Err(Error::Ambiguous {
                term: term.to_string(),
                count: many.len(),
            }),
        }
    }

    /// The default network `bridge`, created from `settings` on first use. `taken`: the
    /// prefixes of the host's routes (no default route), which a chosen subnet avoids.
    pub fn ensure_default(
        &self,
        settings: &DefaultBridge,
        taken: &[IpNet],
    ) -> Result<NetworkRecord> {
        if let Some(r) = self.find_stored(DEFAULT_NETWORK)? {
            return Ok(r);
        }
        let _lock = self.lock()?;
        let existing = self.stored()?;
        if let Some(r) = existing.iter().find(|r| r.name == DEFAULT_NETWORK) {
            return Ok(r.clone());
        }
        let subnet = match settings.subnet {
            Some(s) => s,
            None => pick_default_subnet(&existing, taken)?,
        };
        let gateway = settings
            .gateway
            .map(IpAddr::V4)
            .unwrap_or_else(|| first_host(&IpNet::V4(subnet)));
        let record = default_record(settings, subnet, gateway)?;
        self.write_new(&record)?;
        Ok(record)
    }

    fn find_stored(&self, name: &str) -> Result<Option<NetworkRecord>> {
        Ok(self.stored()?.into_iter().find(|r| r.name == name))
    }

    /// Creates a user network: the name free, the subnets overlapping no other network's, a
    /// chosen IPv4 subnet also avoiding `taken` (the host's route prefixes).
    pub fn create(&self, request: &NetworkCreate, taken: &[IpNet]) -> Result<NetworkRecord> {
        let _lock = self.lock()?;
        let existing = self.stored()?;
        if existing.iter().any(|r| r.name == request.name) {
            return Err(Error::NameInUse(request.name.clone()));
        }
        let used: Vec<IpNet> = existing.iter().flat_map(subnets).collect();
        for asked in request.ipv4.iter().chain(&request.ipv6) {
            if used.iter().any(|u| overlaps(u, &asked.subnet)) {
                return Err(Error::PoolOverlap);
            }
        }
        let id = pelagos_model::names::new_id().map_err(|e| Error::io("new id", io_other(e)))?;
        let bridge = user_bridge_name(&id, &request.options)?;
        check_bridge_free(&existing, &bridge)?;
        let pools = resolve_pools(request, &existing, &used, taken)?;
        let record = user_record(request, id, bridge, pools);
        self.write_new(&record)?;
        Ok(record)
    }

    /// Writes a new network's directory and record (the directory removed on failure).
    fn write_new(&self, record: &NetworkRecord) -> Result<()> {
        let dir = self.dir_of(record);
        fs::create_dir(&dir).map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        if let Err(e) = write_json(&dir.join(NETWORK_FILE), record) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(())
    }

    /// Removes a network nobody uses (Docker's "has active endpoints" while leases exist).
    pub fn remove(&self, term: &str) -> Result<NetworkRecord> {
        self.remove_with(term, |_| Ok(()))
    }

    /// [`Networks::remove`], running `teardown` (the bridge, the rules) first, under the
    /// store's and the network's leases lock (no container can join meanwhile): the record
    /// goes only once it succeeded, so a failure leaves the record to retry with.
    pub fn remove_with(
        &self,
        term: &str,
        teardown: impl FnOnce(&NetworkRecord) -> Result<()>,
    ) -> Result<NetworkRecord> {
        let network = self.get(term)?;
        if network.is_predefined() {
            return Err(Error::Predefined(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        let dir = self.dir_of(&network);
        let trash = self.dir.join(format!("{REMOVING_PREFIX}{}", network.id));
        {
            let _store = self.lock()?;
            let Some(_leases) = crate::ipam::lock_leases(&dir)? else {
                return Err(Error::NotFound(term.to_string()));
            };
            if !crate::ipam::read_leases(&dir)?.is_empty() {
                return Err(Error::ActiveEndpoints {
                    name: network.name.clone(),
                    id: network.id.clone(),
                });
            }
            teardown(&network)?;
            fs::rename(&dir, &trash)
                .map_err(|e| Error::io(format!("remove {}", dir.display()), e))?;
        }
        fs::remove_dir_all(&trash)
            .map_err(|e| Error::io(format!("remove {}", trash.display()), e))?;
        Ok(network)
    }

    /// Removes the user networks nobody uses that `filter` selects (`label`, `label!`,
    /// `until`); returns them.
    pub fn prune(&self, filter: &PruneFilter) -> Result<Vec<NetworkRecord>> {
        self.prune_with(filter, |_| Ok(()))
    }

    /// [`Networks::prune`], each network's `teardown` run as [`Networks::remove_with`] does.
    pub fn prune_with(
        &self,
        filter: &PruneFilter,
        mut teardown: impl FnMut(&NetworkRecord) -> Result<()>,
    ) -> Result<Vec<NetworkRecord>> {
        let mut removed = Vec::new();
        for network in self.stored()? {
            let created = humantime::parse_rfc3339_weak(&network.created).ok();
            if network.is_predefined() || !filter.selects(&network.labels, created) {
                continue;
            }
            match self.remove_with(&network.id, &mut teardown) {
                Ok(r) => removed.push(r),
                Err(Error::ActiveEndpoints { .. }) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Deletes what removals interrupted by a crash left behind.
    pub fn sweep_removed(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .as_encoded_bytes()
                .starts_with(REMOVING_PREFIX.as_bytes())
            {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

fn not_found() -> std::io::Error {
    std::io::Error::from(std::io::ErrorKind::NotFound)
}

fn io_other(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// A network's subnets.
fn subnets(r: &NetworkRecord) -> Vec<IpNet> {
    r.ipam.config.iter().map(|p| p.subnet).collect()
}

/// Docker's `conflicts with network …: networks have same bridge name`.
fn check_bridge_free(existing: &[NetworkRecord], bridge: &str) -> Result<()> {
    match existing
        .iter()
        .find(|r| r.bridge.as_deref() == Some(bridge))
    {
        Some(other) => Err(Error::Invalid(format!(
            "conflicts with network {} ({}): networks have same bridge name",
            other.id, bridge
        ))),
        None => Ok(()),
    }
}

/// 172.17.0.0/16 unless another network or a route has it, then the next default pool.
fn pick_default_subnet(existing: &[NetworkRecord], taken: &[IpNet]) -> Result<Ipv4Net> {
    let mut used: Vec<IpNet> = existing.iter().flat_map(subnets).collect();
    used.extend_from_slice(taken);
    if !used
        .iter()
        .any(|u| overlaps(u, &IpNet::V4(DEFAULT_BRIDGE_SUBNET)))
    {
        return Ok(DEFAULT_BRIDGE_SUBNET);
    }
    pick_v4(&used, false)
}

/// The pools of a new user network: asked ones resolved, missing IPv4 chosen from the
/// default pools (172.17.0.0/16 kept for `bridge` while it does not exist), missing IPv6 of
/// an IPv6 network a unique-local /64.
fn resolve_pools(
    request: &NetworkCreate,
    existing: &[NetworkRecord],
    used: &[IpNet],
    taken: &[IpNet],
) -> Result<Vec<IpamPool>> {
    let v4 = match &request.ipv4 {
        Some(asked) => resolve(asked),
        None => {
            let mut avoid = used.to_vec();
            avoid.extend_from_slice(taken);
            let reserve = !existing.iter().any(|r| r.name == DEFAULT_NETWORK);
            let subnet = IpNet::V4(pick_v4(&avoid, reserve)?);
            chosen(subnet)
        }
    };
    let v6 = match (&request.ipv6, request.enable_ipv6) {
        (Some(asked), _) => Some(resolve(asked)),
        (None, true) => Some(chosen(IpNet::V6(pick_ula(used)?))),
        (None, false) => None,
    };
    Ok(std::iter::once(v4).chain(v6).collect())
}

fn resolve(asked: &PoolRequest) -> IpamPool {
    IpamPool {
        subnet: asked.subnet,
        ip_range: asked.ip_range,
        gateway: asked.gateway.unwrap_or_else(|| first_host(&asked.subnet)),
        aux_addresses: asked.aux_addresses.clone(),
    }
}

fn chosen(subnet: IpNet) -> IpamPool {
    IpamPool {
        subnet,
        ip_range: None,
        gateway: first_host(&subnet),
        aux_addresses: BTreeMap::new(),
    }
}

fn now() -> String {
    pelagos_model::names::now_rfc3339()
}

fn user_record(
    request: &NetworkCreate,
    id: String,
    bridge: String,
    pools: Vec<IpamPool>,
) -> NetworkRecord {
    NetworkRecord {
        name: request.name.clone(),
        id,
        created: now(),
        scope: "local".into(),
        driver: "bridge".into(),
        enable_ipv6: request.enable_ipv6,
        ipam: Ipam {
            driver: "default".into(),
            config: pools,
            options: request.ipam_options.clone(),
        },
        internal: request.internal,
        attachable: request.attachable,
        ingress: false,
        options: request.options.clone(),
        labels: request.labels.clone(),
        bridge: Some(bridge),
    }
}

/// The default network's record, with the options Docker shows on its `bridge`.
fn default_record(
    settings: &DefaultBridge,
    subnet: Ipv4Net,
    gateway: IpAddr,
) -> Result<NetworkRecord> {
    crate::record::check_bridge_name(&settings.bridge)?;
    let id = pelagos_model::names::new_id().map_err(|e| Error::io("new id", io_other(e)))?;
    let options = [
        (
            "com.docker.network.bridge.default_bridge",
            "true".to_string(),
        ),
        ("com.docker.network.bridge.enable_icc", "true".to_string()),
        (
            "com.docker.network.bridge.enable_ip_masquerade",
            "true".to_string(),
        ),
        (
            "com.docker.network.bridge.host_binding_ipv4",
            "0.0.0.0".to_string(),
        ),
        (BRIDGE_NAME_OPTION, settings.bridge.clone()),
        ("com.docker.network.driver.mtu", settings.mtu.to_string()),
    ];
    Ok(NetworkRecord {
        name: DEFAULT_NETWORK.into(),
        id,
        created: now(),
        scope: "local".into(),
        driver: "bridge".into(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            config: vec![chosen_with_gateway(IpNet::V4(subnet), gateway)],
            options: BTreeMap::new(),
        },
        internal: false,
        attachable: false,
        ingress: false,
        options: options
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        labels: BTreeMap::new(),
        bridge: Some(settings.bridge.clone()),
    })
}

fn chosen_with_gateway(subnet: IpNet, gateway: IpAddr) -> IpamPool {
    IpamPool {
        gateway,
        ..chosen(subnet)
    }
}

/// `host` or `none`: not stored; a stable id derived from the name, created at the epoch.
fn predefined(name: &str, driver: &str) -> NetworkRecord {
    let digest = Sha256::digest(format!("pelagos predefined network {name}").as_bytes());
    NetworkRecord {
        name: name.into(),
        id: digest.iter().map(|b| format!("{b:02x}")).collect(),
        created: humantime::format_rfc3339_nanos(SystemTime::UNIX_EPOCH).to_string(),
        scope: "local".into(),
        driver: driver.into(),
        enable_ipv6: false,
        ipam: Ipam {
            driver: "default".into(),
            config: Vec::new(),
            options: BTreeMap::new(),
        },
        internal: false,
        attachable: false,
        ingress: false,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
        bridge: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::create::{IpamConfigRequest, NetworkCreateRequest};

    fn request(name: &str, subnet: &str) -> NetworkCreate {
        let mut r = NetworkCreateRequest {
            name: name.into(),
            ..Default::default()
        };
        if !subnet.is_empty() {
            r.ipam.config.push(IpamConfigRequest {
                subnet: subnet.into(),
                ..Default::default()
            });
        }
        NetworkCreate::parse(r).unwrap()
    }

    #[test]
    fn default_bridge_avoids_taken_routes() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        let taken = ["172.17.0.0/24".parse().unwrap()];
        let b = n.ensure_default(&DefaultBridge::default(), &taken).unwrap();
        assert_eq!(b.ipv4_pool().unwrap().subnet.to_string(), "172.18.0.0/16");
        assert_eq!(b.ipv4_pool().unwrap().gateway.to_string(), "172.18.0.1");
        assert_eq!(b.bridge.as_deref(), Some("pelagos0"));
        assert_eq!(b.options[BRIDGE_NAME_OPTION], "pelagos0");
        let again = n.ensure_default(&DefaultBridge::default(), &[]).unwrap();
        assert_eq!(again.id, b.id);
        let user = n.create(&request("app", ""), &[]).unwrap();
        assert_eq!(
            user.ipv4_pool().unwrap().subnet.to_string(),
            "172.17.0.0/16"
        );
    }

    #[test]
    fn user_networks_skip_the_default_bridges_pool() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        let a = n.create(&request("a", ""), &[]).unwrap();
        assert_eq!(a.ipv4_pool().unwrap().subnet.to_string(), "172.18.0.0/16");
        assert_eq!(a.bridge.as_deref().unwrap(), format!("pl-{}", a.short_id()));
        let b = n
            .create(&request("b", ""), &["172.19.0.0/16".parse().unwrap()])
            .unwrap();
        assert_eq!(b.ipv4_pool().unwrap().subnet.to_string(), "172.20.0.0/16");
        let def = n.ensure_default(&DefaultBridge::default(), &[]).unwrap();
        assert_eq!(def.ipv4_pool().unwrap().subnet.to_string(), "172.17.0.0/16");
    }

    #[test]
    fn names_and_subnets_are_unique() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        n.create(&request("app", "10.5.0.0/16"), &[]).unwrap();
        let e = n.create(&request("app", ""), &[]).unwrap_err();
        assert_eq!(e.to_string(), "network with name app already exists");
        let e = n.create(&request("other", "10.5.3.0/24"), &[]).unwrap_err();
        assert!(matches!(e, Error::PoolOverlap), "{e}");
        let mut opt = request("br", "");
        opt.options.insert(BRIDGE_NAME_OPTION.into(), "br-x".into());
        n.create(&opt, &[]).unwrap();
        opt.name = "br2".into();
        let e = n.create(&opt, &[]).unwrap_err();
        assert!(e.to_string().contains("same bridge name"), "{e}");
    }

    #[test]
    fn lookup_order_and_predefined() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        // Files beside the network directories (ports.json, locks) are not networks.
        fs::write(n.dir().join("ports.json"), b"{}").unwrap();
        let app = n.create(&request("app", ""), &[]).unwrap();
        assert_eq!(n.get("app").unwrap().id, app.id);
        assert_eq!(n.get(&app.id).unwrap().name, "app");
        assert_eq!(n.get(&app.id[..5]).unwrap().name, "app");
        assert!(matches!(n.get("nope"), Err(Error::NotFound(_))));
        let names: Vec<String> = n.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["app", "host", "none"]);
        assert_eq!(n.get("none").unwrap().driver, "null");
        let e = n.remove("host").unwrap_err();
        assert_eq!(
            e.to_string(),
            "host is a pre-defined network and cannot be removed"
        );
        n.remove(&app.id[..8]).unwrap();
        assert!(n.get("app").is_err());
    }

    #[test]
    fn a_failed_teardown_keeps_the_record_to_retry_with() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        let app = n.create(&request("app", ""), &[]).unwrap();
        let e = n
            .remove_with("app", |_| Err(Error::Teardown("bridge busy".into())))
            .unwrap_err();
        assert_eq!(e.to_string(), "bridge busy");
        assert_eq!(n.get("app").unwrap().id, app.id);
        let mut seen = Vec::new();
        n.remove_with("app", |r| {
            seen.push(r.name.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, ["app"]);
        assert!(n.get("app").is_err());
    }

    #[test]
    fn ipv6_networks_get_a_ula_when_none_given() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        let mut r = request("v6", "");
        r.enable_ipv6 = true;
        let net = n.create(&r, &[]).unwrap();
        let v6 = net.ipv6_pool().unwrap();
        assert_eq!(v6.subnet.prefix_len(), 64);
        assert!(v6.subnet.to_string().starts_with("fd"));
        assert!(net.enable_ipv6);
    }

    #[test]
    fn prune_selects_by_label_and_keeps_predefined() {
        let d = tempfile::tempdir().unwrap();
        let n = Networks::open(d.path()).unwrap();
        n.ensure_default(&DefaultBridge::default(), &[]).unwrap();
        let mut keep = request("keep", "");
        keep.labels.insert("keep".into(), "1".into());
        n.create(&keep, &[]).unwrap();
        n.create(&request("gone", ""), &[]).unwrap();
        let f = PruneFilter::parse(&["label!=keep"], &["label", "label!", "until"]).unwrap();
        let removed: Vec<String> = n.prune(&f).unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(removed, ["gone"]);
        let names: Vec<String> = n.list().unwrap().into_iter().map(|r| r.name).collect();
        assert_eq!(names, ["bridge", "keep", "host", "none"]);
    }
}
