//! The texts of the container's /etc/hosts and /etc/resolv.conf (the monitor writes them
//! and the spec binds them): the host's or Docker's defaults, with `ExtraHosts` and `Dns*`.

use std::net::IpAddr;

use pelagos_model::config::HostConfig;

/// Docker's nameservers for a container when none of the host's is reachable from it.
pub const FALLBACK_NAMESERVERS: [&str; 2] = ["8.8.8.8", "8.8.4.4"];
/// Docker's IPv6 ones, for a container with IPv6.
pub const FALLBACK_NAMESERVERS_V6: [&str; 2] = ["2001:4860:4860::8888", "2001:4860:4860::8844"];

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
    with_flags(&host.dns, &host.dns_search, &host.dns_options, host_resolv)
}

/// /etc/resolv.conf of a container on a network whose resolver listens on `resolvers` (a
/// user network): those are its only nameservers; `search` and `options` come from the
/// host's file or the flags. Its `--dns` servers are not listed: the resolver forwards the
/// container's other queries to them (Docker's embedded resolver does the same).
pub fn resolv_conf_via(host: &HostConfig, host_resolv: &str, resolvers: &[IpAddr]) -> String {
    let base = with_nameservers(host_resolv, resolvers);
    with_flags(&[], &host.dns_search, &host.dns_options, &base)
}

/// The host's resolv.conf as a container in a namespace of its own without a resolver of
/// its network gets it (Docker's default bridge): loopback nameservers, unreachable from
/// there, dropped, and IPv6 ones unless `ipv6`; Docker's fallback when none is left.
pub fn without_loopback(host_resolv: &str, ipv6: bool) -> String {
    let reachable = |line: &str| match nameserver_of(line) {
        Some(ip) => !ip.is_loopback() && (ipv6 || ip.is_ipv4()),
        None => true,
    };
    let kept: Vec<&str> = host_resolv.lines().filter(|l| reachable(l)).collect();
    let any_left = kept
        .iter()
        .any(|l| l.split_whitespace().next() == Some("nameserver"));
    let mut text: String = kept.iter().map(|l| format!("{l}\n")).collect();
    if !any_left {
        let v6 = FALLBACK_NAMESERVERS_V6.iter().filter(|_| ipv6);
        for ns in FALLBACK_NAMESERVERS.iter().chain(v6) {
            text.push_str(&format!("nameserver {ns}\n"));
        }
    }
    text
}

/// `text` with its nameserver lines replaced by `servers` (where the first one was, else at
/// the end).
fn with_nameservers(text: &str, servers: &[IpAddr]) -> String {
    let ours: String = servers
        .iter()
        .map(|s| format!("nameserver {s}\n"))
        .collect();
    let mut out = String::new();
    let mut placed = false;
    for line in text.lines() {
        if line.split_whitespace().next() != Some("nameserver") {
            out.push_str(&format!("{line}\n"));
        } else if !placed {
            out.push_str(&ours);
            placed = true;
        }
    }
    if !placed {
        out.push_str(&ours);
    }
    out
}

/// The address of a `nameserver` line (a zone, `%eth0`, ignored); `None` for other lines
/// and addresses that do not parse.
fn nameserver_of(line: &str) -> Option<IpAddr> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver")).then_some(())?;
    let word = words.next()?;
    word.split('%').next()?.parse().ok()
}

/// `host_resolv` as it is without flags; else `search`, `nameserver` and `options` lines,
/// each from the flag when given, else from `host_resolv`.
fn with_flags(
    dns: &[String],
    dns_search: &[String],
    dns_options: &[String],
    host_resolv: &str,
) -> String {
    if dns.is_empty() && dns_search.is_empty() && dns_options.is_empty() {
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
    let search = given_or_host(dns_search, "search");
    if !search.is_empty() && search.join(" ").trim() != "." {
        text.push_str(&format!("search {}\n", search.join(" ")));
    }
    for ns in given_or_host(dns, "nameserver") {
        text.push_str(&format!("nameserver {ns}\n"));
    }
    let options = given_or_host(dns_options, "options");
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
    fn user_networks_name_their_resolver_only() {
        let base = "nameserver 1.1.1.1\nsearch corp\nnameserver 1.0.0.1\noptions ndots:2\n";
        let gw: [IpAddr; 2] = ["10.9.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        assert_eq!(
            resolv_conf_via(&HostConfig::default(), base, &gw),
            "nameserver 10.9.0.1\nnameserver fd00::1\nsearch corp\noptions ndots:2\n"
        );
        let host = HostConfig {
            dns: vec!["9.9.9.9".into()],
            dns_options: vec!["ndots:1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_via(&host, "search corp\n", &gw[..1]),
            "search corp\nnameserver 10.9.0.1\noptions ndots:1\n"
        );
    }

    #[test]
    fn the_default_bridge_drops_loopback_servers() {
        let base = "nameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver fd00::53\n\
                    nameserver ::1\nsearch corp\n";
        assert_eq!(
            without_loopback(base, false),
            "nameserver 10.0.0.1\nsearch corp\n"
        );
        assert_eq!(
            without_loopback(base, true),
            "nameserver 10.0.0.1\nnameserver fd00::53\nsearch corp\n"
        );
        assert_eq!(
            without_loopback("nameserver 127.0.0.53\noptions edns0\n", false),
            "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
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
