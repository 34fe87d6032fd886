//! `pelagos port` / `container port`: a container's published ports as Docker's CLI lists
//! them (`80/tcp -> 0.0.0.0:8080`, or one private port's host addresses).

use std::cmp::Ordering;
use std::io::Write;

use anyhow::{bail, Result};
use pelagos_engine::container::port;
use pelagos_model::config::PortMap;

use crate::cli::{Cli, PortArgs};

pub fn port(cli: &Cli, a: &PortArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let (_, ports) = port::ports(&engine, &a.container)?;
    let lines = match &a.private_port {
        Some(asked) => host_addresses(&ports, asked, &a.container)?,
        None => mappings(&ports),
    };
    if !lines.is_empty() {
        writeln!(std::io::stdout().lock(), "{}", lines.join("\n"))?;
    }
    Ok(0)
}

/// Every published port: `PRIVATE/PROTO -> HOST:PORT`, in natural order.
fn mappings(ports: &PortMap) -> Vec<String> {
    let mut lines: Vec<String> = (ports.iter())
        .flat_map(|(from, to)| {
            to.iter()
                .map(move |b| format!("{from} -> {}", join_host_port(&b.host_ip, &b.host_port)))
        })
        .collect();
    lines.sort_by(|a, b| natural_cmp(a, b));
    lines
}

/// The host addresses of `PRIVATE[/PROTO]` (tcp when no protocol is given).
fn host_addresses(ports: &PortMap, asked: &str, container: &str) -> Result<Vec<String>> {
    let (number, proto) = asked.split_once('/').unwrap_or((asked, "tcp"));
    let proto = if proto.is_empty() { "tcp" } else { proto };
    check_port_number(number)?;
    let bindings = ports.get(&format!("{number}/{proto}"));
    let Some(bindings) = bindings.filter(|b| !b.is_empty()) else {
        bail!("Error: No public port '{asked}' published for {container}");
    };
    let mut lines: Vec<String> = (bindings.iter())
        .map(|b| join_host_port(&b.host_ip, &b.host_port))
        .collect();
    lines.sort_by(|a, b| natural_cmp(a, b));
    Ok(lines)
}

/// Go's `strconv.ParseUint(number, 10, 16)`, with its error as Docker prints it.
fn check_port_number(number: &str) -> Result<()> {
    let why = if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        "invalid syntax"
    } else if number.parse::<u16>().is_err() {
        "value out of range"
    } else {
        return Ok(());
    };
    bail!("invalid port ({number}): strconv.ParseUint: parsing {number:?}: {why}")
}

/// Go's `net.JoinHostPort`: an IPv6 host in brackets.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Natural order (`sortorder.NaturalLess`): runs of digits compare as numbers.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        let (Some(ca), Some(cb)) = (a.chars().next(), b.chars().next()) else {
            return a.len().cmp(&b.len());
        };
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let (na, ra) = split_digits(a);
            let (nb, rb) = split_digits(b);
            let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
            let order = ta.len().cmp(&tb.len()).then(ta.cmp(tb));
            if order != Ordering::Equal {
                return order;
            }
            (a, b) = (ra, rb);
        } else if ca != cb {
            return ca.cmp(&cb);
        } else {
            (a, b) = (&a[ca.len_utf8()..], &b[cb.len_utf8()..]);
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::PortBinding;

    fn ports() -> PortMap {
        let bind = |ip: &str, port: &str| PortBinding {
            host_ip: ip.into(),
            host_port: port.into(),
        };
        PortMap::from([
            (
                "80/tcp".into(),
                vec![bind("0.0.0.0", "8080"), bind("::", "8080")],
            ),
            ("9/udp".into(), vec![bind("127.0.0.1", "9000")]),
            ("443/tcp".into(), Vec::new()),
        ])
    }

    #[test]
    fn every_mapping_in_natural_order() {
        assert_eq!(
            mappings(&ports()),
            [
                "9/udp -> 127.0.0.1:9000",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::]:8080"
            ]
        );
        assert!(mappings(&PortMap::new()).is_empty());
    }

    #[test]
    fn one_private_port() {
        assert_eq!(
            host_addresses(&ports(), "80", "web").unwrap(),
            ["0.0.0.0:8080", "[::]:8080"]
        );
        assert_eq!(
            host_addresses(&ports(), "9/udp", "web").unwrap(),
            ["127.0.0.1:9000"]
        );
        let err = |asked: &str| {
            host_addresses(&ports(), asked, "web")
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("443/tcp"),
            "Error: No public port '443/tcp' published for web"
        );
        assert_eq!(err("9"), "Error: No public port '9' published for web");
        assert_eq!(
            err("abc"),
            "invalid port (abc): strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            err("70000/tcp"),
            "invalid port (70000): strconv.ParseUint: parsing \"70000\": value out of range"
        );
    }
}
