//! The texts of the container's /etc/hosts and /etc/resolv.conf (the monitor writes them
//! and the spec binds them): the host's or Docker's defaults, with `ExtraHosts` and `Dns*`.

use pelagos_model::config::HostConfig;

/// Docker's /etc/hosts for a container without a network of its own address.
pub const LOCALHOST_HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost \
ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
ff02::2\tip6-allrouters\n";

/// /etc/hosts: `host_hosts` (the host's file, for the host's network) or Docker's
/// localhost lines, then one `IP\tNAME` line per `ExtraHosts` entry.
pub fn hosts_file(host: &HostConfig, host_hosts: Option<&str>) -> String {
    let mut text = host_hosts.unwrap_or(LOCALHOST_HOSTS).to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for entry in &host.extra_hosts {
        if let Some((name, ip)) = entry.split_once(':') {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    text
}

/// /etc/resolv.conf as Docker's resolvconf `Build` writes it: the host's file as it is when
/// no `Dns*` is set; else `search`, `nameserver` and `options` lines, each from the flag when
/// given, else from the host's file (`--dns-search .` means no search line).
pub fn resolv_conf(host: &HostConfig, host_resolv: &str) -> String {
    if host.dns.is_empty() && host.dns_search.is_empty() && host.dns_options.is_empty() {
        return host_resolv.to_string();
    }
    let host_values = |key: &str| -> Vec<String> {
        host_resolv
            .lines()
            .filter_map(|l| l.split_once(char::is_whitespace))
            .filter(|(k, _)| *k == key)
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    let given_or_host = |given: &[String], key: &str| match given.is_empty() {
        true => host_values(key),
        false => given.to_vec(),
    };
    let mut text = String::new();
    let search = given_or_host(&host.dns_search, "search");
    if !search.is_empty() && search.join(" ").trim() != "." {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in given_or_host(&host.dns, "nameserver") {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    let options = given_or_host(&host.dns_options, "options");
    if !options.is_empty() {
        text.push_str(&format!("options {}\n", options.join(" ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_with_extra_hosts() {
        let host = HostConfig {
            extra_hosts: vec!["db:10.0.0.2".into(), "v6:::1".into()],
            ..Default::default()
        };
        let text = hosts_file(&host, None);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.0.0.2\tdb\n::1\tv6\n"), "{text}");
        assert_eq!(
            hosts_file(&HostConfig::default(), Some("1.2.3.4 h")),
            "1.2.3.4 h\n"
        );
    }

    #[test]
    fn resolv_conf_overrides() {
        let base = "# generated\nnameserver 1.1.1.1\nsearch corp\noptions ndots:2\n";
        assert_eq!(resolv_conf(&HostConfig::default(), base), base);
        let host = HostConfig {
            dns: vec!["9.9.9.9".into()],
            dns_search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&host, base),
            "nameserver 9.9.9.9\noptions ndots:2\n"
        );
        let host = HostConfig {
            dns_search: vec!["a.example".into(), "b.example".into()],
            dns_options: vec!["ndots:1".into(), "timeout:3".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf(&host, base),
            "search a.example b.example\nnameserver 1.1.1.1\noptions ndots:1 timeout:3\n"
        );
    }
}
