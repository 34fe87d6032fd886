//! Every `docker run` flag that shapes a container, as the CLI got them, turned into the
//! typed config with [`crate::flags`]' parsers and checked by [`crate::validate`].

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{
    ContainerConfig, EndpointIpamConfig, EndpointSettings, HostConfig, NetworkingConfig,
    PortBinding,
};
use crate::error::Result;
use crate::flags::{
    add_host, bytes, capability, cpus, cpuset, device, dns, dns_search, env, expose, healthcheck,
    labels, log_config, memory, memory_swap, mount, network, publish, restart, security_opt,
    stop_signal, sysctls, tmpfs, ulimit, volume, HealthFlags, VolumeFlag,
};
use crate::flags::{ipv4_address, ipv6_address, mac_address};
use crate::validate::{check_endpoints, network_mode};

/// Every `docker run` flag that shapes the container, as the CLI got them (strings, parsed
/// here). The CLI reads `--env-file`s itself ([`crate::flags::env_file`]) and passes their lines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFlags {
    pub image: String,
    /// Arguments after the image (replace the image's Cmd).
    pub command: Vec<String>,
    /// `--entrypoint` (`Some("")` clears the image's).
    pub entrypoint: Option<String>,
    /// Lines of the `--env-file`s, in order (before `-e`).
    pub env_file_lines: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub labels: Vec<String>,
    pub interactive: bool,
    pub tty: bool,
    pub detach: bool,
    pub rm: bool,
    pub read_only: bool,
    pub privileged: bool,
    pub init: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub network: Option<String>,
    /// `--ip`, `--ip6`, `--network-alias`, `--mac-address`: the endpoint on `network`.
    pub ip: Option<String>,
    pub ip6: Option<String>,
    pub network_aliases: Vec<String>,
    pub mac_address: Option<String>,
    pub publish: Vec<String>,
    /// `-P, --publish-all`: every exposed port on an ephemeral host port.
    pub publish_all: bool,
    /// `--expose`: ports exposed besides the image's.
    pub expose: Vec<String>,
    pub volumes: Vec<String>,
    pub mounts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub ulimits: Vec<String>,
    pub shm_size: Option<String>,
    pub memory: Option<String>,
    pub memory_swap: Option<String>,
    pub memory_reservation: Option<String>,
    pub cpus: Option<String>,
    pub cpu_shares: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids_limit: Option<i64>,
    pub oom_score_adj: Option<i64>,
    pub restart: Option<String>,
    pub log_driver: Option<String>,
    pub log_opts: Vec<String>,
    pub health: HealthFlags,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub add_hosts: Vec<String>,
    pub group_add: Vec<String>,
    pub sysctls: Vec<String>,
    pub pid: Option<String>,
    pub ipc: Option<String>,
    pub uts: Option<String>,
    pub cgroupns: Option<String>,
    pub cgroup_parent: Option<String>,
    pub devices: Vec<String>,
    /// `--cidfile` (the CLI writes it; recorded as Docker's `ContainerIDFile`).
    pub cidfile: Option<String>,
}

impl RunFlags {
    /// The typed config, parsed and [validated](crate::validate::validate): nothing exists
    /// yet when this fails. `cwd` resolves `-v ./dir:…`; `lookup` gives `-e KEY` values.
    pub fn to_config(
        &self,
        cwd: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(ContainerConfig, HostConfig)> {
        let config = self.container_config(cwd, lookup)?;
        let host = self.host_config(cwd)?;
        crate::validate::validate(&config, &host)?;
        Ok((config, host))
    }

    /// The endpoint the network flags ask for (Docker's CLI makes one for the network it
    /// joins), checked against the network mode of `host`: addresses and aliases only on user
    /// networks, nothing for `none` and `host`.
    pub fn networking_config(
        &self,
        config: &ContainerConfig,
        host: &HostConfig,
    ) -> Result<NetworkingConfig> {
        let ipam = (self.ip.is_some() || self.ip6.is_some()).then(|| -> Result<_> {
            Ok(EndpointIpamConfig {
                ipv4_address: self
                    .ip
                    .as_deref()
                    .map(ipv4_address)
                    .transpose()?
                    .unwrap_or_default(),
                ipv6_address: self
                    .ip6
                    .as_deref()
                    .map(ipv6_address)
                    .transpose()?
                    .unwrap_or_default(),
            })
        });
        let endpoint = EndpointSettings {
            ipam_config: ipam.transpose()?,
            aliases: (!self.network_aliases.is_empty()).then(|| self.network_aliases.clone()),
            mac_address: self
                .mac_address
                .as_deref()
                .map(mac_address)
                .transpose()?
                .unwrap_or_default(),
            ..Default::default()
        };
        let mode = network_mode(config, host)?;
        let key = mode
            .bridge_network()
            .or(self.network.as_deref())
            .unwrap_or("default");
        let mut networking = NetworkingConfig::default();
        if mode.bridge_network().is_some() || endpoint != EndpointSettings::default() {
            networking
                .endpoints_config
                .insert(key.to_string(), endpoint);
        }
        check_endpoints(&mode, &networking)?;
        Ok(networking)
    }

    fn container_config(
        &self,
        cwd: &Path,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ContainerConfig> {
        let mut volumes = BTreeMap::new();
        for v in &self.volumes {
            if let VolumeFlag::Anonymous(dst) = volume(v, cwd)? {
                volumes.insert(dst, serde_json::json!({}));
            }
        }
        let mut exposed = BTreeMap::new();
        for p in &self.publish {
            for (port, _) in publish(p)? {
                exposed.insert(port, serde_json::json!({}));
            }
        }
        for e in &self.expose {
            for port in expose(e)? {
                exposed.insert(port, serde_json::json!({}));
            }
        }
        let attach = !self.detach;
        Ok(ContainerConfig {
            hostname: self.hostname.clone().unwrap_or_default(),
            domainname: self.domainname.clone().unwrap_or_default(),
            user: self.user.clone().unwrap_or_default(),
            attach_stdin: attach && self.interactive,
            attach_stdout: attach,
            attach_stderr: attach,
            exposed_ports: (!exposed.is_empty()).then_some(exposed),
            tty: self.tty,
            open_stdin: self.interactive,
            stdin_once: attach && self.interactive,
            env: self
                .env_file_lines
                .iter()
                .cloned()
                .chain(env(&self.env, lookup)?)
                .collect(),
            cmd: (!self.command.is_empty()).then(|| self.command.clone()),
            healthcheck: healthcheck(&self.health)?,
            image: self.image.clone(),
            volumes: (!volumes.is_empty()).then_some(volumes),
            working_dir: self.workdir.clone().unwrap_or_default(),
            entrypoint: self.entrypoint.as_ref().map(|e| vec![e.clone()]),
            labels: labels(&self.labels)?,
            stop_signal: self.stop_signal.as_deref().map(stop_signal).transpose()?,
            stop_timeout: self.stop_timeout,
            mac_address: self.mac_address.as_deref().map(mac_address).transpose()?,
            ..Default::default()
        })
    }

    fn host_config(&self, cwd: &Path) -> Result<HostConfig> {
        let size =
            |flag: &str, v: &Option<String>| v.as_deref().map(|v| bytes(flag, v)).transpose();
        let mut binds = Vec::new();
        for v in &self.volumes {
            if let VolumeFlag::Bind(b) = volume(v, cwd)? {
                binds.push(b);
            }
        }
        let mut port_bindings: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
        for p in &self.publish {
            for (port, binding) in publish(p)? {
                port_bindings.entry(port).or_default().push(binding);
            }
        }
        let caps = |flag: &str, list: &[String]| -> Result<Vec<String>> {
            list.iter().map(|c| capability(flag, c)).collect()
        };
        Ok(HostConfig {
            binds,
            log_config: log_config(self.log_driver.as_deref(), &self.log_opts)?,
            network_mode: self
                .network
                .as_deref()
                .map(network)
                .transpose()?
                .unwrap_or_default(),
            port_bindings,
            publish_all_ports: self.publish_all,
            restart_policy: self
                .restart
                .as_deref()
                .map(restart)
                .transpose()?
                .unwrap_or_default(),
            auto_remove: self.rm,
            mounts: self
                .mounts
                .iter()
                .map(|m| mount(m))
                .collect::<Result<_>>()?,
            cap_add: caps("--cap-add", &self.cap_add)?,
            cap_drop: caps("--cap-drop", &self.cap_drop)?,
            cgroupns_mode: self.cgroupns.clone().unwrap_or_default(),
            dns: self.dns.iter().map(|d| dns(d)).collect::<Result<_>>()?,
            dns_options: self.dns_options.clone(),
            dns_search: self
                .dns_search
                .iter()
                .map(|d| dns_search(d))
                .collect::<Result<_>>()?,
            extra_hosts: self
                .add_hosts
                .iter()
                .map(|h| add_host(h))
                .collect::<Result<_>>()?,
            container_id_file: self.cidfile.clone().unwrap_or_default(),
            devices: self
                .devices
                .iter()
                .map(|d| device(d))
                .collect::<Result<_>>()?,
            group_add: self.group_add.clone(),
            ipc_mode: self.ipc.clone().unwrap_or_default(),
            oom_score_adj: self.oom_score_adj.unwrap_or(0),
            pid_mode: self.pid.clone().unwrap_or_default(),
            privileged: self.privileged,
            readonly_rootfs: self.read_only,
            security_opt: self
                .security_opt
                .iter()
                .map(|s| security_opt(s))
                .collect::<Result<_>>()?,
            tmpfs: self.tmpfs.iter().map(|t| tmpfs(t)).collect::<Result<_>>()?,
            uts_mode: self.uts.clone().unwrap_or_default(),
            shm_size: size("--shm-size", &self.shm_size)?.unwrap_or(0),
            sysctls: sysctls(&self.sysctls)?,
            init: self.init.then_some(true),
            cpu_shares: self.cpu_shares.unwrap_or(0),
            memory: self.memory.as_deref().map(memory).transpose()?.unwrap_or(0),
            cgroup_parent: self.cgroup_parent.clone().unwrap_or_default(),
            cpuset_cpus: self
                .cpuset_cpus
                .as_deref()
                .map(|c| cpuset("--cpuset-cpus", c))
                .transpose()?
                .unwrap_or_default(),
            cpuset_mems: self
                .cpuset_mems
                .as_deref()
                .map(|c| cpuset("--cpuset-mems", c))
                .transpose()?
                .unwrap_or_default(),
            memory_reservation: size("--memory-reservation", &self.memory_reservation)?
                .unwrap_or(0),
            memory_swap: self
                .memory_swap
                .as_deref()
                .map(memory_swap)
                .transpose()?
                .unwrap_or(0),
            nano_cpus: self.cpus.as_deref().map(cpus).transpose()?.unwrap_or(0),
            pids_limit: self.pids_limit,
            ulimits: self
                .ulimits
                .iter()
                .map(|u| ulimit(u))
                .collect::<Result<_>>()?,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn run_flags_become_the_typed_config() {
        let d = tempfile::tempdir().unwrap();
        let flags = RunFlags {
            image: "busybox".into(),
            command: vec!["sh".into()],
            env: vec!["A=1".into()],
            env_file_lines: vec!["B=2".into()],
            volumes: vec![
                format!("{}:/h:ro", d.path().display()),
                "/anon".into(),
                "data:/d".into(),
            ],
            tmpfs: vec!["/run:size=1m".into()],
            memory: Some("64m".into()),
            cpus: Some("1".into()),
            restart: Some("on-failure:2".into()),
            network: Some("host".into()),
            interactive: true,
            init: true,
            ..Default::default()
        };
        let (c, h) = flags.to_config(d.path(), &no_env).unwrap();
        assert_eq!(c.env, ["B=2", "A=1"]);
        assert_eq!(c.cmd.as_deref(), Some(&["sh".to_string()][..]));
        assert!(c.volumes.unwrap().contains_key("/anon"));
        assert!(c.open_stdin && c.attach_stdin && c.stdin_once);
        assert_eq!(h.binds.len(), 2);
        assert_eq!(h.memory, 64 << 20);
        assert_eq!(h.nano_cpus, 1_000_000_000);
        assert_eq!(h.restart_policy.maximum_retry_count, 2);
        assert_eq!(h.tmpfs["/run"], "size=1m");
        assert_eq!(h.init, Some(true));
        // Errors come out before anything is made, with the flag's name.
        let bad = RunFlags {
            memory: Some("64x".into()),
            ..flags.clone()
        };
        assert!(bad
            .to_config(d.path(), &no_env)
            .unwrap_err()
            .to_string()
            .contains("--memory"));
        let bad = RunFlags {
            volumes: vec!["relpath:/x:zz".into()],
            ..flags.clone()
        };
        assert!(bad
            .to_config(d.path(), &no_env)
            .unwrap_err()
            .to_string()
            .contains("invalid mode: zz"));
        let bad = RunFlags { rm: true, ..flags };
        assert!(bad
            .to_config(d.path(), &no_env)
            .unwrap_err()
            .to_string()
            .contains("Conflicting options"));
    }

    fn networking(flags: &RunFlags) -> Result<NetworkingConfig> {
        let d = tempfile::tempdir().unwrap();
        let (c, h) = flags.to_config(d.path(), &no_env)?;
        flags.networking_config(&c, &h)
    }

    #[test]
    fn network_flags_become_the_endpoint() {
        let flags = RunFlags {
            image: "busybox".into(),
            network: Some("mynet".into()),
            ip: Some("10.9.0.5".into()),
            network_aliases: vec!["db".into()],
            mac_address: Some("02:42:0A:09:00:05".into()),
            ..Default::default()
        };
        let n = networking(&flags).unwrap();
        let e = &n.endpoints_config["mynet"];
        assert_eq!(e.ipam_config.as_ref().unwrap().ipv4_address, "10.9.0.5");
        assert_eq!(e.aliases.as_deref(), Some(&["db".to_string()][..]));
        assert_eq!(e.mac_address, "02:42:0a:09:00:05");
        // The default bridge: an empty endpoint keyed `bridge`.
        let plain = RunFlags {
            image: "busybox".into(),
            network: Some("bridge".into()),
            ..Default::default()
        };
        let n = networking(&plain).unwrap();
        assert_eq!(n.endpoints_config.keys().collect::<Vec<_>>(), ["bridge"]);
        // No --network (or `default`): the engine's default network, not known here; an
        // endpoint only when a flag asks something of it, keyed `default`.
        for network in [None, Some("default".to_string())] {
            let unsaid = RunFlags {
                image: "busybox".into(),
                network: network.clone(),
                ..Default::default()
            };
            assert!(networking(&unsaid).unwrap().endpoints_config.is_empty());
            let aliased = RunFlags {
                network_aliases: vec!["db".into()],
                ..unsaid
            };
            let n = networking(&aliased).unwrap();
            assert_eq!(n.endpoints_config.keys().collect::<Vec<_>>(), ["default"]);
        }
        for (flags, words) in [
            (
                RunFlags {
                    network: Some("bridge".into()),
                    ip: Some("172.17.0.9".into()),
                    ..flags.clone()
                },
                "user specified IP address is supported on user defined networks only",
            ),
            (
                RunFlags {
                    network: Some("bridge".into()),
                    ip: None,
                    ..flags.clone()
                },
                "network-scoped alias is supported only",
            ),
            (
                RunFlags {
                    network: Some("none".into()),
                    ..flags.clone()
                },
                "need a bridge network",
            ),
            (
                RunFlags {
                    ip: Some("10.9.0.300".into()),
                    ..flags.clone()
                },
                "invalid IPv4 address",
            ),
            (
                RunFlags {
                    mac_address: Some("01:00:5e:00:00:01".into()),
                    ..flags.clone()
                },
                "not a valid mac address",
            ),
        ] {
            let e = networking(&flags).unwrap_err().to_string();
            assert!(e.contains(words), "{words}: {e}");
        }
    }
}
