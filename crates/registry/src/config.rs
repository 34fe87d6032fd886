//! Registry settings from the `[registries]` table of `/etc/pelagos/config.toml`: plain-HTTP
//! registries, pull mirrors and the directory of per-registry CA certificates.
//!
//! ```toml
//! [registries]
//! # Registries reached over plain HTTP, always: host, host:port, or an IP network in CIDR
//! # form. A host without a port matches it on every port.
//! insecure = ["myreg.local:5000", "10.0.0.0/8"]
//! # Directory of extra CA certificates, Docker's certs.d layout:
//! # <certs_dir>/<host[:port]>/*.crt (PEM), trusted for that host on top of the system's
//! # roots. Default /etc/pelagos/certs.d.
//! certs_dir = "/etc/pelagos/certs.d"
//!
//! [registries.mirrors]
//! # Pull mirrors per registry, tried in order before the registry itself; a mirror serves
//! # the same repository paths. "docker.io" stands for Docker Hub. A mirror may be written
//! # with a scheme: "http://" makes it plain HTTP.
//! "docker.io" = ["mirror.local:5000"]
//! ```
//!
//! Which scheme a registry gets (see [`RegistryConfig::is_insecure`]):
//! * listed in `insecure` (by name, `host:port` or CIDR): plain HTTP, always;
//! * a loopback host (`localhost`, 127.0.0.0/8, `::1`, any port): plain HTTP, unless
//!   `<certs_dir>/<host[:port]>/` holds a `.crt` file, which makes it HTTPS trusting those
//!   roots besides the system's (as Docker does when certs.d is configured for a local
//!   registry);
//! * anything else: HTTPS, with the system's roots and the host's certs.d roots.
//!
//! Other tables of the file belong to other parts of pelagos and are ignored; unknown keys
//! inside `[registries]` are errors, so that a typo does not silently do nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::error::RegistryError;

/// Default location of per-registry CA certificates.
pub(crate) const DEFAULT_CERTS_DIR: &str = "/etc/pelagos/certs.d";

/// How pelagos reaches registries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Registries reached over plain HTTP: `host`, `host:port` or a CIDR network.
    pub insecure: Vec<String>,
    /// Registry (`docker.io`, `host[:port]`) → mirrors (`host[:port]`), tried in order.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// Directory of per-registry CA certificates (`<certs_dir>/<host[:port]>/*.crt`).
    pub certs_dir: PathBuf,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            insecure: Vec::new(),
            mirrors: BTreeMap::new(),
            certs_dir: PathBuf::from(DEFAULT_CERTS_DIR),
        }
    }
}

const KNOWN_KEYS: &str = "insecure, mirrors, certs_dir";

impl RegistryConfig {
    /// Reads the `[registries]` table of the configuration file at `path`; a missing file
    /// gives the defaults.
    pub fn load(path: &Path) -> Result<RegistryConfig, RegistryError> {
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(RegistryConfig::default()),
            Err(source) => Err(RegistryError::ConfigRead {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// Parses configuration text (the whole file; only `[registries]` is looked at).
    pub fn from_toml_str(text: &str) -> Result<RegistryConfig, RegistryError> {
        parse(text, "<string>")
    }

    /// dockerd's `--insecure-registry`: `host`, `host:port` or a CIDR network reached over
    /// plain HTTP, added to the file's (an `http://` or `https://` prefix is dropped, as
    /// dockerd does).
    pub fn add_insecure(&mut self, entry: &str) -> Result<(), RegistryError> {
        let lower = entry.trim().to_ascii_lowercase();
        let bare = lower
            .strip_prefix("http://")
            .or_else(|| lower.strip_prefix("https://"))
            .unwrap_or(&lower)
            .trim_end_matches('/')
            .to_string();
        let err = |message: String| RegistryError::Config {
            source_name: "--insecure-registry".to_owned(),
            message,
        };
        if bare.contains("://") {
            return Err(err(format!(
                "insecure registry {entry} should not contain '://'"
            )));
        }
        if !bare.contains('/') {
            validate_host(&bare).map_err(|m| err(format!("{entry:?}: {m}")))?;
        }
        validate_insecure_entry(&bare).map_err(|m| err(format!("{entry:?}: {m}")))?;
        if !self.insecure.contains(&bare) {
            self.insecure.push(bare);
        }
        Ok(())
    }

    /// dockerd's `--registry-mirror`: a mirror of Docker Hub tried before it, after the
    /// file's; an `http://` mirror is reached over plain HTTP.
    pub fn add_hub_mirror(&mut self, url: &str) -> Result<(), RegistryError> {
        let (host, plain_http) = mirror_host(url.trim()).map_err(|m| RegistryError::Config {
            source_name: "--registry-mirror".to_owned(),
            message: format!("{url:?}: {m}"),
        })?;
        if plain_http && !self.insecure.contains(&host) {
            self.insecure.push(host.clone());
        }
        let hub = self
            .mirrors
            .entry(normalize_registry_key("docker.io"))
            .or_default();
        if !hub.contains(&host) {
            hub.push(host);
        }
        Ok(())
    }

    /// Whether `host` (`host[:port]`, as in a reference or a mirror list) is reached over plain
    /// HTTP: when an `insecure` entry names it or, for an IP address, a CIDR entry contains it
    /// (host names are not resolved for CIDR matching); and for a loopback host without a
    /// certs.d directory (`has_ca_certs`, which reads the file system).
    pub fn is_insecure(&self, host: &str) -> bool {
        if self.listed_insecure(host) {
            return true;
        }
        is_loopback(host) && !self.has_ca_certs(host)
    }

    /// Whether `<certs_dir>/<host>/` holds at least one `.crt` file (an unreadable directory
    /// counts as holding one, so that the error reading it is reported, not skipped).
    pub(crate) fn has_ca_certs(&self, host: &str) -> bool {
        crate::tls::crt_files(&self.certs_dir.join(host)).map_or(true, |f| !f.is_empty())
    }

    /// Whether an `insecure` entry names `host` or contains its address.
    pub(crate) fn listed_insecure(&self, host: &str) -> bool {
        let (name, port) = split_host_port(host);
        let ip = parse_ip(name);
        let name_lower = name.to_ascii_lowercase();
        self.insecure.iter().any(|entry| {
            let entry = entry.trim();
            if let Some((net, prefix)) = parse_cidr(entry) {
                return ip.is_some_and(|ip| cidr_contains(net, prefix, ip));
            }
            let (ename, eport) = split_host_port(entry);
            ename.eq_ignore_ascii_case(&name_lower)
                && match eport {
                    None => true,
                    Some(p) => Some(p) == port,
                }
        })
    }

    /// The mirrors configured for `registry` (`docker.io` for Docker Hub under any name).
    pub(crate) fn mirrors_for(&self, registry: &str) -> &[String] {
        let key = normalize_registry_key(registry);
        self.mirrors.get(&key).map(Vec::as_slice).unwrap_or(&[])
    }
}

fn parse(text: &str, source_name: &str) -> Result<RegistryConfig, RegistryError> {
    let err = |message: String| RegistryError::Config {
        source_name: source_name.to_owned(),
        message,
    };
    let doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(format!("not valid TOML: {}", e.to_string().trim())))?;
    let mut config = RegistryConfig::default();
    // Hosts of http:// mirrors, added to `insecure` once the table is read (key order is
    // not something to rely on).
    let mut plain_mirrors: Vec<String> = Vec::new();
    let Some(section) = doc.get("registries") else {
        return Ok(config);
    };
    let toml::Value::Table(section) = section else {
        return Err(err(format!(
            "registries: expected a table, found {}",
            section.type_str()
        )));
    };
    for (key, value) in section {
        match key.as_str() {
            "insecure" => {
                let list = string_list(value, "registries.insecure").map_err(err)?;
                for (i, entry) in list.iter().enumerate() {
                    validate_insecure_entry(entry)
                        .map_err(|m| err(format!("registries.insecure[{i}] {entry:?}: {m}")))?;
                }
                config.insecure = list;
            }
            "certs_dir" => match value {
                toml::Value::String(s) if !s.is_empty() => config.certs_dir = PathBuf::from(s),
                other => {
                    return Err(err(format!(
                        "registries.certs_dir: expected a non-empty string (a directory), found {}",
                        describe(other)
                    )))
                }
            },
            "mirrors" => {
                let toml::Value::Table(mirrors) = value else {
                    return Err(err(format!(
                        "registries.mirrors: expected a table of registry = [mirrors], found {}",
                        value.type_str()
                    )));
                };
                for (registry, list) in mirrors {
                    let key_name = format!("registries.mirrors.{registry:?}");
                    validate_host(registry.trim_end_matches('/'))
                        .map_err(|m| err(format!("{key_name}: invalid registry name: {m}")))?;
                    let list = string_list(list, &key_name).map_err(err)?;
                    let mut hosts = Vec::new();
                    for (i, m) in list.iter().enumerate() {
                        let (host, plain_http) = mirror_host(m)
                            .map_err(|e| err(format!("{key_name}[{i}] {m:?}: {e}")))?;
                        if plain_http {
                            plain_mirrors.push(host.clone());
                        }
                        hosts.push(host);
                    }
                    config
                        .mirrors
                        .entry(normalize_registry_key(registry))
                        .or_default()
                        .extend(hosts);
                }
            }
            other => {
                return Err(err(format!(
                    "registries.{other}: unknown key (known keys: {KNOWN_KEYS})"
                )))
            }
        }
    }
    for host in plain_mirrors {
        if !config.insecure.contains(&host) {
            config.insecure.push(host);
        }
    }
    Ok(config)
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("string {s:?}"),
        other => other.type_str().to_owned(),
    }
}

fn string_list(value: &toml::Value, key: &str) -> Result<Vec<String>, String> {
    let toml::Value::Array(items) = value else {
        return Err(format!(
            "{key}: expected an array of strings, found {}",
            describe(value)
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            toml::Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            toml::Value::String(_) => Err(format!("{key}[{i}]: empty string")),
            other => Err(format!(
                "{key}[{i}]: expected a string, found {}",
                describe(other)
            )),
        })
        .collect()
}

/// `https://mirror:5000/` → (`mirror:5000`, false); `http://m` → (`m`, true).
fn mirror_host(s: &str) -> Result<(String, bool), String> {
    let (rest, plain) = if let Some(r) = s.strip_prefix("http://") {
        (r, true)
    } else if let Some(r) = s.strip_prefix("https://") {
        (r, false)
    } else if s.contains("://") {
        return Err("only http:// and https:// mirrors are supported".into());
    } else {
        (s, false)
    };
    let host = rest.trim_end_matches('/');
    if host.contains('/') {
        return Err("a mirror is host[:port], without a path".into());
    }
    validate_host(host)?;
    Ok((host.to_ascii_lowercase(), plain))
}

fn validate_insecure_entry(entry: &str) -> Result<(), String> {
    if entry.contains('/') {
        return match parse_cidr(entry) {
            Some(_) => Ok(()),
            None => Err("not a valid CIDR network (e.g. 10.0.0.0/8, fd00::/8)".into()),
        };
    }
    validate_host(entry)
}

/// `host`, `host:port`, `1.2.3.4[:port]`, `[::1][:port]`.
fn validate_host(s: &str) -> Result<(), String> {
    let (name, port) = split_host_port(s);
    if name.is_empty() {
        return Err("empty host".into());
    }
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(format!("port {p:?} is not a number from 0 to 65535"));
        }
    }
    if parse_ip(name).is_some() {
        return Ok(());
    }
    let ok = name.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?} is not a valid host name or IP address"))
    }
}

/// Splits `host:port`, `[v6]:port`, `[v6]`, `host`; a bare IPv6 address has no port.
pub(crate) fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            let host = &rest[..end];
            let port = rest[end + 1..].strip_prefix(':');
            return (host, port);
        }
        return (s, None);
    }
    match s.rsplit_once(':') {
        // More than one ':' without brackets: a bare IPv6 address.
        Some((h, _)) if h.contains(':') => (s, None),
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

/// `localhost`, 127.0.0.0/8 or `::1`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let (name, _) = split_host_port(host);
    name.eq_ignore_ascii_case("localhost") || parse_ip(name).is_some_and(|ip| ip.is_loopback())
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    let prefix: u8 = prefix.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (prefix <= max).then_some((addr, prefix))
}

fn cidr_contains(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let ip = match (net, ip) {
        // An IPv4-mapped IPv6 address belongs to IPv4 networks.
        (IpAddr::V4(_), IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => return false,
        },
        _ => ip,
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Docker Hub's names → `docker.io`; others lowercased.
pub(crate) fn normalize_registry_key(registry: &str) -> String {
    let r = registry.trim_end_matches('/').to_ascii_lowercase();
    match r.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_owned()
        }
        _ => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_flags_extend_the_file() {
        let mut c = RegistryConfig::default();
        c.add_insecure("http://reg.lan:5000/").unwrap();
        c.add_insecure("10.0.0.0/8").unwrap();
        c.add_insecure("reg.lan:5000").unwrap();
        assert_eq!(c.insecure, ["reg.lan:5000", "10.0.0.0/8"]);
        assert!(c.is_insecure("reg.lan:5000") && c.is_insecure("10.2.3.4:1"));
        assert!(c.add_insecure("ftp://x").is_err());
        assert!(c.add_insecure("10.0.0.0/99").is_err());
        c.add_hub_mirror("http://mirror.lan:5000/").unwrap();
        c.add_hub_mirror("https://m2.lan").unwrap();
        assert_eq!(
            c.mirrors_for("index.docker.io"),
            ["mirror.lan:5000", "m2.lan"]
        );
        assert!(c.is_insecure("mirror.lan:5000") && !c.is_insecure("m2.lan"));
        assert!(c.add_hub_mirror("https://m.lan/path").is_err());
    }

    #[test]
    fn example_parses_and_other_tables_are_ignored() {
        let text = r#"
[runtime]
root = "/run/pelagos"
[registries]
insecure = ["myreg.local:5000", "10.0.0.0/8", "plainhost"]
certs_dir = "/tmp/certs"
[registries.mirrors]
"docker.io" = ["mirror.local:5000", "https://m2.example.com/", "http://m3.lan:8080"]
"quay.io" = []
[storage]
driver = "overlay"
"#;
        let c = RegistryConfig::from_toml_str(text).unwrap();
        assert_eq!(c.certs_dir, PathBuf::from("/tmp/certs"));
        assert_eq!(
            c.mirrors_for("docker.io"),
            ["mirror.local:5000", "m2.example.com", "m3.lan:8080"]
        );
        assert_eq!(c.mirrors_for("index.docker.io").len(), 3);
        assert!(c.mirrors_for("quay.io").is_empty());
        assert!(c.mirrors_for("ghcr.io").is_empty());
        assert!(c.is_insecure("myreg.local:5000"));
        assert!(!c.is_insecure("myreg.local:5001"));
        assert!(!c.is_insecure("myreg.local"));
        assert!(c.is_insecure("plainhost"));
        assert!(c.is_insecure("plainhost:444"));
        assert!(c.is_insecure("10.1.2.3:5000"));
        assert!(!c.is_insecure("11.1.2.3:5000"));
        // An http:// mirror is plain HTTP.
        assert!(c.is_insecure("m3.lan:8080"));
        assert!(!c.is_insecure("m2.example.com"));
        assert!(!c.is_insecure("registry-1.docker.io"));
    }

    #[test]
    fn loopback_is_plain_http_unless_it_has_a_certs_d_directory() {
        let certs = tempfile::tempdir().unwrap();
        let c = RegistryConfig {
            certs_dir: certs.path().to_owned(),
            ..RegistryConfig::default()
        };
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.8.9.10",
            "[::1]:5000",
            "[::1]",
            "LOCALHOST:1",
        ] {
            assert!(c.is_insecure(h), "{h}");
        }
        for h in [
            "docker.io",
            "128.0.0.1:5000",
            "[::2]:5000",
            "localhost.example.com",
        ] {
            assert!(!c.is_insecure(h), "{h}");
        }
        // An empty directory, or one without a .crt file, changes nothing.
        let host_dir = certs.path().join("127.0.0.1:5000");
        std::fs::create_dir(&host_dir).unwrap();
        std::fs::write(host_dir.join("ca.pem"), "not a .crt").unwrap();
        assert!(c.is_insecure("127.0.0.1:5000"));
        assert!(!c.has_ca_certs("127.0.0.1:5000"));
        // A .crt makes that host:port HTTPS, and only it.
        std::fs::write(host_dir.join("ca.crt"), "checked when the client is built").unwrap();
        assert!(c.has_ca_certs("127.0.0.1:5000"));
        assert!(!c.is_insecure("127.0.0.1:5000"));
        assert!(c.is_insecure("127.0.0.1:5001"));
        assert!(c.is_insecure("127.0.0.1"));
        // `insecure` wins over certs.d.
        let listed = RegistryConfig {
            insecure: vec!["127.0.0.1:5000".into()],
            ..c.clone()
        };
        assert!(listed.is_insecure("127.0.0.1:5000"));
    }

    #[test]
    fn ipv6_cidr() {
        let c = RegistryConfig::from_toml_str("[registries]\ninsecure = [\"fd00::/8\"]").unwrap();
        assert!(c.is_insecure("[fd12::1]:5000"));
        assert!(!c.is_insecure("[fe80::1]:5000"));
    }

    #[test]
    fn missing_file_and_missing_table_are_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            RegistryConfig::load(&dir.path().join("none.toml")).unwrap(),
            RegistryConfig::default()
        );
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[other]\nx = 1\n").unwrap();
        assert_eq!(RegistryConfig::load(&p).unwrap(), RegistryConfig::default());
        assert_eq!(
            RegistryConfig::default().certs_dir,
            PathBuf::from(DEFAULT_CERTS_DIR)
        );
    }

    #[test]
    fn errors_name_the_bad_key() {
        let cases = [
            (
                "[registries]\ninsecure = \"x\"",
                "registries.insecure: expected an array of strings, found string \"x\"",
            ),
            (
                "[registries]\ninsecure = [\"ok\", 5]",
                "registries.insecure[1]: expected a string, found integer",
            ),
            (
                "[registries]\ninsecure = [\"10.0.0.0/33\"]",
                "registries.insecure[0] \"10.0.0.0/33\": not a valid CIDR",
            ),
            (
                "[registries]\ninsecure = [\"host:99999\"]",
                "registries.insecure[0] \"host:99999\": port",
            ),
            (
                "[registries]\ninsecur = []",
                "registries.insecur: unknown key",
            ),
            (
                "[registries]\nmirrors = [\"a\"]",
                "registries.mirrors: expected a table",
            ),
            (
                "[registries.mirrors]\n\"docker.io\" = \"m\"",
                "registries.mirrors.\"docker.io\": expected an array",
            ),
            (
                "[registries.mirrors]\n\"docker.io\" = [\"ftp://m\"]",
                "registries.mirrors.\"docker.io\"[0] \"ftp://m\": only http:// and https://",
            ),
            (
                "[registries.mirrors]\n\"docker.io\" = [\"m/path\"]",
                "without a path",
            ),
            (
                "[registries.mirrors]\n\"bad host\" = [\"m\"]",
                "registries.mirrors.\"bad host\": invalid registry name",
            ),
            (
                "[registries]\ncerts_dir = 3",
                "registries.certs_dir: expected a non-empty string",
            ),
            (
                "registries = 1",
                "registries: expected a table, found integer",
            ),
            ("[registries\n", "not valid TOML"),
        ];
        for (text, needle) in cases {
            let err = RegistryConfig::from_toml_str(text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(msg.contains("<string>"), "{msg}");
        }
    }

    #[test]
    fn load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        std::fs::write(&p, "[registries]\nfoo = 1\n").unwrap();
        let msg = RegistryConfig::load(&p).unwrap_err().to_string();
        assert!(
            msg.contains(&p.display().to_string()) && msg.contains("registries.foo"),
            "{msg}"
        );
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), ("a", Some("1")));
        assert_eq!(split_host_port("a"), ("a", None));
        assert_eq!(split_host_port("[::1]:5"), ("::1", Some("5")));
        assert_eq!(split_host_port("::1"), ("::1", None));
    }
}
