//! The daemon's flags, with dockerd's names where dockerd has them, parsed once into
//! [`DaemonOptions`].

use std::path::PathBuf;

use clap::Parser;

/// `pelagos-dockerd` flags.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "pelagos-dockerd",
    version,
    about = "The Docker Engine API over pelagos: the docker CLI, SDKs and compose, daemonless underneath"
)]
pub struct Flags {
    /// Socket(s) to listen on: unix:///PATH, fd:// (systemd socket activation), tcp://HOST:PORT
    /// (only with --tlsverify and its certificates).
    #[arg(short = 'H', long = "host", value_name = "ADDR")]
    pub hosts: Vec<String>,
    /// Images, containers, volumes, networks (shared with the `pelagos` CLI).
    #[arg(long, env = "PELAGOS_ROOT", default_value = "/var/lib/pelagos")]
    pub data_root: PathBuf,
    /// Runtime state of live containers.
    #[arg(long, env = "PELAGOS_RUNROOT", default_value = "/run/pelagos")]
    pub exec_root: PathBuf,
    /// Engine configuration: registries, mirrors, the default network.
    #[arg(
        long,
        env = "PELAGOS_CONFIG",
        default_value = "/etc/pelagos/config.toml"
    )]
    pub config_file: PathBuf,
    /// Group owning the unix socket (mode 0660); `docker` when that group exists.
    #[arg(short = 'G', long = "group", default_value = "docker")]
    pub group: String,
    /// Registries reached over plain HTTP or with unverified certificates (added to the
    /// configuration file's).
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    pub insecure_registries: Vec<String>,
    /// Mirrors of Docker Hub (added to the configuration file's).
    #[arg(long = "registry-mirror", value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// debug, info, warn, error, fatal.
    #[arg(short = 'l', long = "log-level", default_value = "info")]
    pub log_level: String,
    /// Where to write the daemon's pid.
    #[arg(short = 'p', long, default_value = "/run/pelagos/dockerd.pid")]
    pub pidfile: PathBuf,
    /// cgroup under which containers are placed.
    #[arg(long, env = "PELAGOS_CGROUP_PARENT", default_value = "/pelagos")]
    pub cgroup_parent: String,
    /// Serve TCP with TLS and verify clients against --tlscacert.
    #[arg(long)]
    pub tlsverify: bool,
    /// CA certificate clients must be signed by.
    #[arg(long)]
    pub tlscacert: Option<PathBuf>,
    /// The server's certificate.
    #[arg(long)]
    pub tlscert: Option<PathBuf>,
    /// The server's key.
    #[arg(long)]
    pub tlskey: Option<PathBuf>,
}

/// The default socket.
pub const DEFAULT_SOCKET: &str = "unix:///run/pelagos/docker.sock";

impl Flags {
    /// The hosts to listen on (the default socket when none is given).
    pub fn hosts(&self) -> Vec<String> {
        if self.hosts.is_empty() {
            vec![DEFAULT_SOCKET.to_string()]
        } else {
            self.hosts.clone()
        }
    }

    /// The tracing level `--log-level` names (`fatal` is `error`).
    pub fn tracing_level(&self) -> Result<tracing::Level, String> {
        match self.log_level.as_str() {
            "debug" => Ok(tracing::Level::DEBUG),
            "info" => Ok(tracing::Level::INFO),
            "warn" => Ok(tracing::Level::WARN),
            "error" | "fatal" => Ok(tracing::Level::ERROR),
            other => Err(format!("unable to parse logging level: {other}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_dockerds() {
        let f = Flags::try_parse_from(["pelagos-dockerd"]).unwrap();
        assert_eq!(f.hosts(), vec![DEFAULT_SOCKET.to_string()]);
        assert_eq!(f.tracing_level().unwrap(), tracing::Level::INFO);
        let f = Flags::try_parse_from([
            "pelagos-dockerd",
            "-H",
            "unix:///tmp/a.sock",
            "-H",
            "fd://",
            "--log-level",
            "fatal",
        ])
        .unwrap();
        assert_eq!(f.hosts(), vec!["unix:///tmp/a.sock", "fd://"]);
        assert_eq!(f.tracing_level().unwrap(), tracing::Level::ERROR);
        let f = Flags::try_parse_from(["pelagos-dockerd", "--log-level", "loud"]).unwrap();
        assert!(f.tracing_level().unwrap_err().contains("loud"));
    }
}
