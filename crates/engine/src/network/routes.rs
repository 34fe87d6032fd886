//! The route prefixes of the engine's network namespace, which a subnet pelagos chooses (the
//! default bridge's, a `network create` without `--subnet`) must avoid.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};

/// The IPv4 prefixes of this namespace's routes but the default one, from /proc/net/route:
/// the subnets pelagos chooses avoid them (a host already routing 172.17.0.0/16 elsewhere).
pub fn host_routes() -> Vec<IpNet> {
    std::fs::read_to_string("/proc/net/route")
        .map(|text| parse_routes(&text))
        .unwrap_or_default()
}

/// `Iface Destination Gateway Flags RefCnt Use Metric Mask …`, addresses in the host's
/// byte order as hex.
fn parse_routes(text: &str) -> Vec<IpNet> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let destination = hex_addr(fields.get(1)?)?;
            let mask = hex_addr(fields.get(7)?)?;
            let prefix = u32::from(mask).count_ones() as u8;
            (prefix > 0).then(|| Ipv4Net::new(destination, prefix).ok().map(IpNet::V4))?
        })
        .collect()
}

fn hex_addr(field: &str) -> Option<Ipv4Addr> {
    let raw = u32::from_str_radix(field, 16).ok()?;
    Some(Ipv4Addr::from(raw.to_ne_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_routes(text);
        let want: Vec<IpNet> = vec![
            "192.0.2.0/24".parse().unwrap(),
            "172.17.0.0/16".parse().unwrap(),
        ];
        assert_eq!(routes, want);
    }
}
