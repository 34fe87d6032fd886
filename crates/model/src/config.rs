//! The Docker Engine API's container configuration as typed Rust: `Config`, `HostConfig`,
//! `NetworkingConfig` and their parts, with the API's field names so that request bodies of
//! API 1.41+ deserialize as they are (unknown fields ignored, `null` read as empty) and
//! records print as Docker's inspect does.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Docker's `Config`: what the container runs (the image's config merged with the request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ContainerConfig {
    pub hostname: String,
    pub domainname: String,
    /// `name|uid[:group|gid]`; empty: the image's.
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    /// `KEY=VALUE`; a bare `KEY` removes the variable (the image's, say).
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub env: Vec<String>,
    /// `None`: the image's. A string in a request is a one-element list (Docker's StrSlice).
    #[serde(deserialize_with = "str_slice")]
    pub cmd: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args_escaped: Option<bool>,
    pub image: String,
    /// Anonymous volumes: container path → `{}` (`null` when none, as Docker prints it).
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    pub working_dir: String,
    /// `None`: the image's; `[""]` clears it (`--entrypoint ""`).
    #[serde(deserialize_with = "str_slice")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_disabled: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub on_build: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (`None`: 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(
        deserialize_with = "str_slice",
        skip_serializing_if = "Option::is_none"
    )]
    pub shell: Option<Vec<String>>,
}

/// Docker's `HealthConfig` (durations in nanoseconds, 0 meaning the default).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    /// `[]` inherit, `["NONE"]` disable, `["CMD", args…]`, `["CMD-SHELL", command]`.
    #[serde(deserialize_with = "null_default")]
    pub test: Vec<String>,
    // docker-py sends `"StartPeriod": null` when it is not set; Go reads null as zero.
    #[serde(deserialize_with = "null_default")]
    pub interval: i64,
    #[serde(deserialize_with = "null_default")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_default")]
    pub retries: i64,
    #[serde(deserialize_with = "null_default")]
    pub start_period: i64,
}

/// Docker's `RestartPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// "", "no", "always", "unless-stopped", "on-failure".
    pub name: String,
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Whether the container is never restarted ("" or "no").
    pub fn is_none(&self) -> bool {
        matches!(self.name.as_str(), "" | "no")
    }
}

/// Docker's `LogConfig`: a driver (`json-file`, `local`, `none`; "" the default) and its
/// options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(deserialize_with = "null_default")]
    pub config: BTreeMap<String, String>,
}

/// One `Ulimits` entry (`-1`: unlimited).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// Docker's `Mount` (the `--mount` flag and `HostConfig.Mounts`); as in moby, empty fields
/// are not printed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Mount {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target: String,
    /// A host path (bind), a volume name (volume; empty: anonymous), nothing (tmpfs).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// "bind", "volume", "tmpfs".
    #[serde(rename = "Type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub consistency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind_options: Option<BindOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_options: Option<VolumeOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    /// "", "private", "rprivate", "shared", "rshared", "slave", "rslave".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub propagation: String,
    #[serde(skip_serializing_if = "is_false")]
    pub non_recursive: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    /// Do not copy the image's files into a new volume.
    #[serde(skip_serializing_if = "is_false")]
    pub no_copy: bool,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_config: Option<Driver>,
}

/// A volume driver and its options (only `local` without options exists here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Driver {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    /// Bytes; 0: the kernel's default (half the RAM).
    #[serde(skip_serializing_if = "is_zero")]
    pub size_bytes: i64,
    /// Permission bits (the API carries the number, `--mount tmpfs-mode=1777` is octal).
    #[serde(skip_serializing_if = "is_zero")]
    pub mode: u32,
}

/// Docker's `DeviceMapping` (`--device`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// Docker's `ThrottleDevice` (`--device-read-bps` and friends).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// Docker's `WeightDevice` (`--blkio-weight-device`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// One host address of a published port (`-p 127.0.0.1:8080:80`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    pub host_ip: String,
    pub host_port: String,
}

/// `"80/tcp"` → where it is published on the host.
pub type PortMap = BTreeMap<String, Vec<PortBinding>>;

/// Docker's `HostConfig`, with `Resources` flattened into it as the API does.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    /// `-v`: `host-path:dest[:opts]`, `volume:dest[:opts]`, `dest` (anonymous volume).
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub binds: Vec<String>,
    #[serde(rename = "ContainerIDFile")]
    pub container_id_file: String,
    #[serde(deserialize_with = "null_default")]
    pub log_config: LogConfig,
    /// "none", "host"; "", "default", "bridge", "container:NAME" and network names are
    /// understood but not supported yet.
    pub network_mode: String,
    #[serde(deserialize_with = "port_map")]
    pub port_bindings: PortMap,
    #[serde(deserialize_with = "null_default")]
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub volume_driver: String,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub volumes_from: Vec<String>,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub mounts: Vec<Mount>,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub cap_add: Vec<String>,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub cap_drop: Vec<String>,
    /// "", "private", "host".
    pub cgroupns_mode: String,
    #[serde(deserialize_with = "null_default")]
    pub dns: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_options: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub dns_search: Vec<String>,
    /// `host:ip` lines for /etc/hosts.
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub extra_hosts: Vec<String>,
    /// Supplementary groups (names resolved in the container's /etc/group, or gids).
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub group_add: Vec<String>,
    /// "", "private", "shareable", "none", "host", "container:NAME".
    pub ipc_mode: String,
    pub cgroup: String,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub links: Vec<String>,
    pub oom_score_adj: i64,
    /// "", "host", "container:NAME".
    pub pid_mode: String,
    pub privileged: bool,
    pub publish_all_ports: bool,
    pub readonly_rootfs: bool,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub security_opt: Vec<String>,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub storage_opt: BTreeMap<String, String>,
    /// `--tmpfs`: destination → options.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tmpfs: BTreeMap<String, String>,
    /// "", "host".
    #[serde(rename = "UTSMode")]
    pub uts_mode: String,
    pub userns_mode: String,
    /// Bytes of /dev/shm (0: 64 MiB).
    pub shm_size: i64,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub sysctls: BTreeMap<String, String>,
    pub runtime: String,
    /// The initial console size (height, width); Windows only in Docker, kept as sent.
    pub console_size: [u32; 2],
    /// Windows' isolation technology; always "" here.
    pub isolation: String,
    /// Paths masked in the container; `None`: Docker's defaults.
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only in the container; `None`: Docker's defaults.
    pub readonly_paths: Option<Vec<String>>,
    /// OCI annotations for the runtime (API 1.43; not printed when empty, as API 1.41 has
    /// no such field).
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Run an init (`--init`) as pid 1 that reaps and forwards signals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    // Resources.
    pub cpu_shares: i64,
    /// Bytes (0: unlimited).
    pub memory: i64,
    pub cgroup_parent: String,
    pub blkio_weight: u16,
    #[serde(deserialize_with = "null_default")]
    pub blkio_weight_device: Vec<WeightDevice>,
    #[serde(deserialize_with = "null_default")]
    pub blkio_device_read_bps: Vec<ThrottleDevice>,
    #[serde(deserialize_with = "null_default")]
    pub blkio_device_write_bps: Vec<ThrottleDevice>,
    #[serde(rename = "BlkioDeviceReadIOps", deserialize_with = "null_default")]
    pub blkio_device_read_iops: Vec<ThrottleDevice>,
    #[serde(rename = "BlkioDeviceWriteIOps", deserialize_with = "null_default")]
    pub blkio_device_write_iops: Vec<ThrottleDevice>,
    /// Microseconds.
    pub cpu_period: i64,
    /// Microseconds per period.
    pub cpu_quota: i64,
    pub cpu_realtime_period: i64,
    pub cpu_realtime_runtime: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    #[serde(deserialize_with = "null_default")]
    pub devices: Vec<DeviceMapping>,
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// GPU requests and the like, kept as sent (not supported).
    #[serde(deserialize_with = "null_default", serialize_with = "nil_if_empty")]
    pub device_requests: Vec<serde_json::Value>,
    pub kernel_memory: i64,
    #[serde(rename = "KernelMemoryTCP")]
    pub kernel_memory_tcp: i64,
    /// Bytes of the soft limit.
    pub memory_reservation: i64,
    /// Memory plus swap in bytes (-1: unlimited swap; 0: not set).
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    /// CPUs × 10⁹ (`--cpus 1.5` = 1500000000).
    pub nano_cpus: i64,
    pub oom_kill_disable: Option<bool>,
    /// `None`: unchanged; 0 or -1: unlimited.
    pub pids_limit: Option<i64>,
    #[serde(deserialize_with = "null_default")]
    pub ulimits: Vec<Ulimit>,
    // Windows-only resources: kept as sent so that records print every key of API 1.41.
    pub cpu_count: i64,
    pub cpu_percent: i64,
    #[serde(rename = "IOMaximumIOps")]
    pub io_maximum_iops: u64,
    #[serde(rename = "IOMaximumBandwidth")]
    pub io_maximum_bandwidth: u64,
}

/// Docker's `NetworkingConfig`: the container's endpoint on each network it joins, keyed by
/// the network's name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    #[serde(deserialize_with = "endpoints")]
    pub endpoints_config: BTreeMap<String, EndpointSettings>,
}

/// Docker's `EndpointSettings`: what a container asks of a network (`IPAMConfig`, `Aliases`,
/// `MacAddress`) and, once attached, what it got (ids, addresses, gateway). Addresses are
/// kept as Docker's strings ("" when unset) so that any request or old record reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    /// `--ip`/`--ip6`: the addresses asked for.
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    /// `--network-alias`.
    pub aliases: Option<Vec<String>>,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    /// `--mac-address`, then the address the endpoint got.
    pub mac_address: String,
    pub driver_opts: Option<BTreeMap<String, String>>,
}

/// Docker's `EndpointIPAMConfig`: addresses asked for on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "String::is_empty")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address", skip_serializing_if = "String::is_empty")]
    pub ipv6_address: String,
}

impl EndpointSettings {
    /// Forgets what an attachment filled in (endpoint id, addresses, gateway, the MAC unless
    /// `asked_mac`): what the endpoint asks for and its network stay.
    pub fn clear_attachment(&mut self, asked_mac: Option<&str>) {
        let network_id = std::mem::take(&mut self.network_id);
        let mac = asked_mac.unwrap_or_default().to_string();
        *self = EndpointSettings {
            ipam_config: self.ipam_config.take(),
            links: self.links.take(),
            aliases: self.aliases.take(),
            driver_opts: self.driver_opts.take(),
            network_id,
            mac_address: mac,
            ..EndpointSettings::default()
        };
    }
}

/// The body of `POST /containers/create`: `Config` with `HostConfig` and `NetworkingConfig`
/// beside its fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(deserialize_with = "null_default")]
    pub host_config: HostConfig,
    #[serde(deserialize_with = "null_default")]
    pub networking_config: NetworkingConfig,
}

/// `null` (Go's nil slice, map or pointer) read as the type's default.
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Go's `omitempty` for booleans.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Go's `omitempty` for numbers.
fn is_zero<N: Default + PartialEq>(n: &N) -> bool {
    *n == N::default()
}

/// An empty list printed as `null`: Go's nil slice, which Docker's records hold for the
/// lists its CLI leaves unset.
fn nil_if_empty<S, T>(list: &[T], s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
    T: Serialize,
{
    if list.is_empty() {
        s.serialize_none()
    } else {
        list.serialize(s)
    }
}

/// Docker's StrSlice: `null`, a string (one element) or a list of strings.
fn str_slice<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum StrSlice {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<StrSlice>::deserialize(d)?.map(|s| match s {
        StrSlice::One(s) => vec![s],
        StrSlice::Many(v) => v,
    }))
}

/// `EndpointsConfig`, whose map and values may be `null` (Go's nil map and pointers).
fn endpoints<'de, D>(d: D) -> Result<BTreeMap<String, EndpointSettings>, D::Error>
where
    D: Deserializer<'de>,
{
    let map: Option<BTreeMap<String, Option<EndpointSettings>>> = Option::deserialize(d)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A `PortMap` whose lists may be `null` (`{"2377/tcp": null}`).
fn port_map<'de, D>(d: D) -> Result<PortMap, D::Error>
where
    D: Deserializer<'de>,
{
    let map: Option<BTreeMap<String, Option<Vec<PortBinding>>>> = Option::deserialize(d)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_read_docker_s_shape_and_nulls() {
        let body = r#"{"EndpointsConfig": {
            "net1": {"IPAMConfig": {"IPv4Address": "10.1.0.9"}, "Aliases": ["db"],
                     "MacAddress": "02:42:0a:01:00:09", "Links": null, "DriverOpts": null},
            "bridge": null}}"#;
        let n: NetworkingConfig = serde_json::from_str(body).unwrap();
        let e = &n.endpoints_config["net1"];
        assert_eq!(e.ipam_config.as_ref().unwrap().ipv4_address, "10.1.0.9");
        assert_eq!(e.aliases.as_deref(), Some(&["db".to_string()][..]));
        assert_eq!(n.endpoints_config["bridge"], EndpointSettings::default());
        let old: NetworkingConfig = serde_json::from_str(r#"{"EndpointsConfig": null}"#).unwrap();
        assert!(old.endpoints_config.is_empty());
        let v = serde_json::to_value(EndpointSettings::default()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 13);
        assert!(v["IPAMConfig"].is_null() && v["Aliases"].is_null());
    }

    #[test]
    fn healthchecks_read_docker_py_s_nulls() {
        let body = r#"{"Test": ["CMD-SHELL", "true"], "Interval": 200000000,
                       "Timeout": null, "Retries": 3, "StartPeriod": null}"#;
        let h: HealthConfig = serde_json::from_str(body).unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.retries, h.start_period),
            (200000000, 0, 3, 0)
        );
    }

    #[test]
    fn clearing_an_attachment_keeps_what_was_asked() {
        let mut e = EndpointSettings {
            aliases: Some(vec!["db".into()]),
            network_id: "n1".into(),
            endpoint_id: "e1".into(),
            ip_address: "10.0.0.2".into(),
            ip_prefix_len: 24,
            mac_address: "02:42:0a:00:00:02".into(),
            ..Default::default()
        };
        e.clear_attachment(None);
        assert_eq!(e.network_id, "n1");
        assert_eq!(e.aliases.as_deref(), Some(&["db".to_string()][..]));
        assert!(e.endpoint_id.is_empty() && e.ip_address.is_empty() && e.mac_address.is_empty());
        assert_eq!(e.ip_prefix_len, 0);
    }

    /// What `docker create --name web -e A=1 -v /tmp:/tmp:ro -m 64m --restart on-failure:3
    /// busybox echo hi` (CLI 20.10, API 1.41) sends, with its nulls.
    const DOCKER_CREATE_BODY: &str = r#"{
      "Hostname": "", "Domainname": "", "User": "",
      "AttachStdin": false, "AttachStdout": true, "AttachStderr": true,
      "ExposedPorts": {"80/tcp": {}},
      "Tty": false, "OpenStdin": false, "StdinOnce": false,
      "Env": ["A=1"], "Cmd": ["echo", "hi"], "Image": "busybox",
      "Volumes": {"/data": {}}, "WorkingDir": "", "Entrypoint": null,
      "OnBuild": null, "Labels": {"com.example.vendor": "Acme"},
      "StopSignal": "SIGTERM", "StopTimeout": 10,
      "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30000000000,
                      "Timeout": 0, "Retries": 3, "StartPeriod": 0},
      "HostConfig": {
        "Binds": ["/tmp:/tmp:ro"], "ContainerIDFile": "",
        "LogConfig": {"Type": "", "Config": {}},
        "NetworkMode": "default",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "2377/tcp": null},
        "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
        "AutoRemove": false, "VolumeDriver": "", "VolumesFrom": null,
        "CapAdd": null, "CapDrop": null, "CgroupnsMode": "",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
        "GroupAdd": null, "IpcMode": "", "Cgroup": "", "Links": null,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": false,
        "PublishAllPorts": false, "ReadonlyRootfs": false, "SecurityOpt": null,
        "UTSMode": "", "UsernsMode": "", "ShmSize": 0, "ConsoleSize": [0, 0],
        "Isolation": "", "CpuShares": 0, "Memory": 67108864, "NanoCpus": 0,
        "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": null, "BlkioDeviceWriteBps": null,
        "BlkioDeviceReadIOps": null, "BlkioDeviceWriteIOps": null,
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": null,
        "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
        "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
        "OomKillDisable": false, "PidsLimit": null, "Ulimits": null,
        "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
        "MaskedPaths": null, "ReadonlyPaths": null, "Init": null
      },
      "NetworkingConfig": {"EndpointsConfig": {}}
    }"#;

    #[test]
    fn a_docker_create_body_deserializes_and_round_trips() {
        let req: CreateRequest = serde_json::from_str(DOCKER_CREATE_BODY).unwrap();
        let (c, h) = (&req.config, &req.host_config);
        assert_eq!(c.image, "busybox");
        assert_eq!(c.cmd, Some(vec!["echo".to_string(), "hi".to_string()]));
        assert_eq!(c.entrypoint, None);
        assert!(c.on_build.is_empty());
        assert_eq!(c.labels["com.example.vendor"], "Acme");
        assert_eq!(c.stop_timeout, Some(10));
        assert_eq!(c.healthcheck.as_ref().unwrap().retries, 3);
        assert_eq!(h.binds, vec!["/tmp:/tmp:ro".to_string()]);
        assert_eq!(h.memory, 64 << 20);
        assert_eq!(h.network_mode, "default");
        assert_eq!(h.restart_policy.name, "on-failure");
        assert_eq!(h.restart_policy.maximum_retry_count, 3);
        assert_eq!(h.port_bindings["80/tcp"][0].host_port, "8080");
        assert!(h.port_bindings["2377/tcp"].is_empty());
        assert!(h.cap_add.is_empty() && h.ulimits.is_empty() && h.extra_hosts.is_empty());
        assert_eq!(h.pids_limit, None);
        assert_eq!(h.oom_kill_disable, Some(false));
        assert_eq!(h.masked_paths, None);
        assert_eq!(h.init, None);

        let text = serde_json::to_string(&req).unwrap();
        let again: CreateRequest = serde_json::from_str(&text).unwrap();
        assert_eq!(again, req);
        // Records keep the API's spellings.
        for field in [
            "\"UTSMode\"",
            "\"ContainerIDFile\"",
            "\"BlkioDeviceReadIOps\"",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }

    /// The keys of `docker inspect`'s HostConfig (daemon 20.10, API 1.41) for a container
    /// made without options.
    const DOCKER_HOST_CONFIG_KEYS: &str = "Binds ContainerIDFile LogConfig NetworkMode \
        PortBindings RestartPolicy AutoRemove VolumeDriver VolumesFrom CapAdd CapDrop \
        CgroupnsMode Dns DnsOptions DnsSearch ExtraHosts GroupAdd IpcMode Cgroup Links \
        OomScoreAdj PidMode Privileged PublishAllPorts ReadonlyRootfs SecurityOpt UTSMode \
        UsernsMode ShmSize Runtime ConsoleSize Isolation CpuShares Memory NanoCpus \
        CgroupParent BlkioWeight BlkioWeightDevice BlkioDeviceReadBps BlkioDeviceWriteBps \
        BlkioDeviceReadIOps BlkioDeviceWriteIOps CpuPeriod CpuQuota CpuRealtimePeriod \
        CpuRealtimeRuntime CpusetCpus CpusetMems Devices DeviceCgroupRules DeviceRequests \
        KernelMemory KernelMemoryTCP MemoryReservation MemorySwap MemorySwappiness \
        OomKillDisable PidsLimit Ulimits CpuCount CpuPercent IOMaximumIOps \
        IOMaximumBandwidth MaskedPaths ReadonlyPaths";

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    #[test]
    fn an_empty_host_config_has_docker_s_keys_and_nils() {
        let v = serde_json::to_value(HostConfig::default()).unwrap();
        let mut want: Vec<String> = DOCKER_HOST_CONFIG_KEYS
            .split_whitespace()
            .map(String::from)
            .collect();
        want.sort();
        assert_eq!(keys(&v), want);
        for nil in [
            "Binds",
            "CapAdd",
            "SecurityOpt",
            "DeviceRequests",
            "MemorySwappiness",
            "OomKillDisable",
            "PidsLimit",
            "MaskedPaths",
        ] {
            assert!(v[nil].is_null(), "{nil}: {}", v[nil]);
        }
        assert_eq!(v["Dns"], serde_json::json!([]));
        assert_eq!(v["ConsoleSize"], serde_json::json!([0, 0]));
        let c = serde_json::to_value(ContainerConfig::default()).unwrap();
        assert!(c["Volumes"].is_null() && c["Env"].is_null() && c["OnBuild"].is_null());
    }

    #[test]
    fn omitempty_fields_print_when_set() {
        let h = HostConfig {
            tmpfs: BTreeMap::from([("/run".to_string(), String::new())]),
            annotations: BTreeMap::from([("a".to_string(), "b".to_string())]),
            binds: vec!["/a:/b".to_string()],
            ..HostConfig::default()
        };
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["Tmpfs"]["/run"], "");
        assert_eq!(v["Annotations"]["a"], "b");
        assert_eq!(v["Binds"][0], "/a:/b");
        assert!(v.get("Mounts").is_none() && v.get("Sysctls").is_none());
    }

    #[test]
    fn mounts_print_only_what_is_set() {
        let m = Mount {
            target: "/t".into(),
            kind: "tmpfs".into(),
            tmpfs_options: Some(TmpfsOptions::default()),
            ..Mount::default()
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"Target":"/t","Type":"tmpfs","TmpfsOptions":{}}"#
        );
    }

    #[test]
    fn an_old_record_without_the_new_keys_reads() {
        let h: HostConfig =
            serde_json::from_str(r#"{"Annotations": {}, "Mounts": [], "Memory": 5}"#).unwrap();
        assert_eq!(h.memory, 5);
        assert_eq!(h.console_size, [0, 0]);
        assert_eq!(h.isolation, "");
    }

    #[test]
    fn strslices_and_nulls() {
        let c: ContainerConfig =
            serde_json::from_str(r#"{"Entrypoint": "", "Cmd": "sh", "Env": null}"#).unwrap();
        assert_eq!(c.entrypoint, Some(vec![String::new()]));
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert!(c.env.is_empty());
        let h: HostConfig =
            serde_json::from_str(r#"{"LogConfig": null, "RestartPolicy": null, "Tmpfs": null}"#)
                .unwrap();
        assert_eq!(h, HostConfig::default());
        let empty: CreateRequest = serde_json::from_str(r#"{"HostConfig": null}"#).unwrap();
        assert_eq!(empty, CreateRequest::default());
    }
}

/// The body of Docker's `ContainerUpdate` (`docker update`): the resources and restart policy
/// to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateConfig {
    pub blkio_weight: Option<u16>,
    pub cpu_shares: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub memory_swap: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<RestartPolicy>,
}

impl UpdateConfig {
    /// Whether it changes nothing (Docker: "you must provide one or more flags").
    pub fn is_empty(&self) -> bool {
        *self == UpdateConfig::default()
    }

    /// `host` with the changes made.
    pub fn applied_to(&self, host: &HostConfig) -> HostConfig {
        let mut h = host.clone();
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = &self.$field {
                    h.$field = v.clone().into();
                }
            };
        }
        set!(blkio_weight);
        set!(cpu_shares);
        set!(cpu_period);
        set!(cpu_quota);
        set!(cpuset_cpus);
        set!(cpuset_mems);
        set!(memory);
        set!(memory_reservation);
        set!(memory_swap);
        set!(nano_cpus);
        set!(restart_policy);
        if let Some(p) = self.pids_limit {
            h.pids_limit = Some(p);
        }
        h
    }
}
