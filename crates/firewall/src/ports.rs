//! A container's published ports: its own chain `ports-ID` of DNAT rules (one per
//! [`PortRule`], a range mapped port to port) and the tagged jump to it from `ports`.

use std::net::{IpAddr, Ipv6Addr};

use nftables::expr::{Expression, Map, MetaKey, NamedExpression, Range, SetItem};
use nftables::stmt::{NATFamily, Statement, NAT};

use crate::expr::{self, Expr, Stmt};
use crate::layout::{self, Obj, PORTS};
use crate::types::PortRule;

/// The commands creating (or refilling, after a crash left it behind) the container's
/// chain and jumping to it. One nft transaction: the container's ports appear at once.
pub(crate) fn rules(container_id: &str, ports: &[PortRule]) -> Vec<Obj> {
    let chain = layout::ports_chain(container_id);
    let mut cmds = vec![layout::add_chain(&chain), layout::flush_chain(&chain)];
    cmds.extend(
        ports
            .iter()
            .map(|port| layout::add_rule(&chain, dnat_rule(port), None)),
    );
    let tag = layout::container_tag(container_id);
    cmds.push(layout::add_rule(
        PORTS,
        vec![expr::jump(&chain)],
        Some(&tag),
    ));
    cmds
}

/// `[ip daddr HOST | meta nfproto ipv4] PROTO dport PORTS dnat ip to CONTAINER:PORT`; an
/// IPv6 rule for every address skips `::1`, which no DNAT can take out of the loopback
/// (IPv6 has no `route_localnet`): a client there is refused at once instead of hanging.
fn dnat_rule(port: &PortRule) -> Vec<Stmt> {
    let family = expr::ip_header(port.container_ip);
    let mut stmts = match port.matched_host_ip() {
        Some(host) => vec![expr::eq(expr::payload(family, "daddr"), expr::addr(host))],
        None if family == "ip" => vec![expr::eq(expr::meta(MetaKey::Nfproto), expr::text("ipv4"))],
        None => vec![
            expr::eq(expr::meta(MetaKey::Nfproto), expr::text("ipv6")),
            expr::ne(
                expr::payload(family, "daddr"),
                expr::addr(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ),
        ],
    };
    let dport = || expr::payload(port.proto.name(), "dport");
    let host_ports = if port.host_port == port.host_port_end {
        Expression::Number(u32::from(port.host_port))
    } else {
        Expression::Range(Box::new(Range {
            range: [
                Expression::Number(u32::from(port.host_port)),
                Expression::Number(u32::from(port.host_port_end)),
            ],
        }))
    };
    stmts.extend([
        expr::eq(dport(), host_ports),
        Statement::DNAT(Some(NAT {
            addr: Some(expr::addr(port.container_ip)),
            family: Some(if family == "ip" {
                NATFamily::IP
            } else {
                NATFamily::IP6
            }),
            port: Some(container_ports(port, dport())),
            flags: None,
        })),
    ]);
    stmts
}

/// The container port: a number, or for a range a map from each host port to its own.
fn container_ports(port: &PortRule, dport: Expr) -> Expr {
    if port.host_port == port.host_port_end {
        return Expression::Number(u32::from(port.container_port));
    }
    let pairs = (port.host_port..=port.host_port_end)
        .zip(port.container_port..)
        .map(|(host, container)| {
            SetItem::Mapping(
                Expression::Number(u32::from(host)),
                Expression::Number(u32::from(container)),
            )
        })
        .collect();
    Expression::Named(NamedExpression::Map(Box::new(Map {
        key: dport,
        data: Expression::Named(NamedExpression::Set(pairs)),
    })))
}

/// The commands removing the container's jumps (by handle, from a listing) and chain.
pub(crate) fn removal(container_id: &str, jump_handles: &[u32], chain_exists: bool) -> Vec<Obj> {
    let mut cmds: Vec<Obj> = jump_handles
        .iter()
        .map(|h| layout::delete_rule(PORTS, *h))
        .collect();
    if chain_exists {
        let chain = layout::ports_chain(container_id);
        cmds.push(layout::flush_chain(&chain));
        cmds.push(layout::delete_chain(&chain));
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Proto;

    fn port() -> PortRule {
        PortRule::sample()
    }

    fn json(value: &impl serde::Serialize) -> String {
        serde_json::to_string(value).unwrap()
    }

    #[test]
    fn a_single_port_is_one_dnat() {
        let text = json(&dnat_rule(&port()));
        assert!(text.contains(r#""right":"ipv4""#), "{text}");
        assert!(
            text.contains(r#""protocol":"tcp","field":"dport"}},"right":8080"#),
            "{text}"
        );
        assert!(
            text.contains(r#""dnat":{"addr":"10.88.0.2","family":"ip","port":80}"#),
            "{text}"
        );
    }

    #[test]
    fn a_range_maps_port_to_port() {
        let range = PortRule {
            host_port_end: 8082,
            proto: Proto::Udp,
            ..port()
        };
        let text = json(&dnat_rule(&range));
        assert!(text.contains(r#""range":[8080,8082]"#), "{text}");
        assert!(
            text.contains(r#"[[8080,80],[8081,81],[8082,82]]"#),
            "{text}"
        );
    }

    #[test]
    fn a_host_address_is_matched_in_its_family() {
        let v6 = PortRule {
            host_ip: Some("fd00::1".parse().unwrap()),
            container_ip: "fd00:88::2".parse().unwrap(),
            proto: Proto::Sctp,
            ..port()
        };
        let text = json(&dnat_rule(&v6));
        assert!(
            text.contains(r#""protocol":"ip6","field":"daddr"}},"right":"fd00::1""#),
            "{text}"
        );
        assert!(text.contains(r#""family":"ip6""#), "{text}");
        assert!(text.contains(r#""protocol":"sctp""#), "{text}");
    }

    #[test]
    fn v6_on_every_address_leaves_the_loopback_alone() {
        let v6 = PortRule {
            container_ip: "fd00:88::2".parse().unwrap(),
            ..port()
        };
        let text = json(&dnat_rule(&v6));
        assert!(text.contains(r#""right":"ipv6""#), "{text}");
        assert!(
            text.contains(r#"{"protocol":"ip6","field":"daddr"}},"right":"::1","op":"!="}"#),
            "{text}"
        );
        assert!(!json(&dnat_rule(&port())).contains("!="));
    }

    #[test]
    fn the_jump_is_tagged_and_the_chain_refilled() {
        let text = json(&rules("abc", &[port()]));
        assert!(text.contains(r#""comment":"ctr:abc""#), "{text}");
        assert!(text.contains(r#"{"flush":{"chain""#), "{text}");
        assert!(text.contains(r#""target":"ports-abc""#), "{text}");
    }
}
