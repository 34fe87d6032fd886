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

/// /etc/resolv.conf: the host's, with its `nameserver`, `search` and `options` lines replaced
/// by `Dns`, `DnsSearch` (`.` for none) and `DnsOptions` when those are set.
pub fn resolv_conf(host: &HostConfig, host_resolv: &str) -> String {
    let replaces =
        |line: &str, key: &str, given: bool| given && line.split_whitespace().next() == Some(key);
    let mut out: Vec<String> = host_resolv
        .lines()
        .filter(|l| {
            !replaces(l, "nameserver", !host.dns.is_empty())
                && !replaces(l, "search", !host.dns_search.is_empty())
                && !replaces(l, "domain", !host.dns_search.is_empty())
                && !replaces(l, "options", !host.dns_options.is_empty())
        })
        .map(str::to_string)
        .collect();
    out.extend(host.dns.iter().map(|d| format!("nameserver {d}")));
    let search: Vec<&str> = host
        .dns_search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        out.push(format!("search {}", search.join(" ")));
    }
    if !host.dns_options.is_empty() {
        out.push(format!("options {}", host.dns_options.join(" ")));
    }
    let mut text = out.join("\n");
    if !text.is_empty() {
        text.push('\n');
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
            "# generated\noptions ndots:2\nnameserver 9.9.9.9\n"
        );
    }
}
