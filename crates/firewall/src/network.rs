//! A bridge network's rules: forwarding accepts, `--internal` and cross-network isolation,
//! masquerade of its subnets, hairpin and loopback NAT to its containers' published ports.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use nftables::expr::MetaKey;

use crate::expr::{self, Stmt};
use crate::layout::{self, Obj, FORWARD, ISOLATION, POSTROUTING};
use crate::types::NetworkRules;

/// The commands adding every rule of `net`, each tagged with its bridge.
pub(crate) fn rules(net: &NetworkRules) -> Vec<Obj> {
    let tag = layout::network_tag(&net.bridge);
    let mut cmds = vec![layout::bridge_element(&net.bridge, true)];
    let mut add =
        |chain: &str, stmts: Vec<Stmt>| cmds.push(layout::add_rule(chain, stmts, Some(&tag)));
    for stmts in isolation(net) {
        add(ISOLATION, stmts);
    }
    if !net.internal {
        add(FORWARD, vec![expr::iifname_is(&net.bridge), expr::accept()]);
        add(FORWARD, vec![expr::oifname_is(&net.bridge), expr::accept()]);
    }
    for stmts in postrouting(net) {
        add(POSTROUTING, stmts);
    }
    cmds
}

/// Drops: an internal network forwards nothing in or out of its bridge; any other one
/// forwards nothing to another pelagos bridge (Docker's isolation between networks).
fn isolation(net: &NetworkRules) -> Vec<Vec<Stmt>> {
    let br = net.bridge.as_str();
    let not_br = || expr::ne(expr::meta(MetaKey::Oifname), expr::text(br));
    if net.internal {
        return vec![
            vec![expr::iifname_is(br), not_br(), expr::drop()],
            vec![
                expr::oifname_is(br),
                expr::ne(expr::meta(MetaKey::Iifname), expr::text(br)),
                expr::drop(),
            ],
        ];
    }
    let to_other_bridge = expr::eq(
        expr::meta(MetaKey::Oifname),
        expr::text(format!("@{}", layout::BRIDGES_SET)),
    );
    vec![vec![
        expr::iifname_is(br),
        not_br(),
        to_other_bridge,
        expr::drop(),
    ]]
}

/// Source NAT: each subnet masqueraded when leaving by another interface (not for an
/// internal network); connections DNAT'd back into the bridge from its own subnet
/// (hairpin) and from 127.0.0.0/8 (the host's loopback, routed there by
/// `route_localnet`) masqueraded so that replies come back through the host.
fn postrouting(net: &NetworkRules) -> Vec<Vec<Stmt>> {
    let br = net.bridge.as_str();
    let mut rules = Vec::new();
    for subnet in &net.subnets {
        let subnet = subnet.trunc();
        if !net.internal {
            rules.push(vec![
                expr::saddr_in(subnet),
                expr::ne(expr::meta(MetaKey::Oifname), expr::text(br)),
                expr::masquerade(),
            ]);
        }
        rules.push(vec![
            expr::oifname_is(br),
            expr::any_of(expr::ct("status"), expr::text("dnat")),
            expr::saddr_in(subnet),
            expr::masquerade(),
        ]);
    }
    let loopback = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default());
    rules.push(vec![
        expr::oifname_is(br),
        expr::saddr_in(loopback),
        expr::masquerade(),
    ]);
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(internal: bool) -> NetworkRules {
        NetworkRules {
            bridge: "br-test".into(),
            subnets: vec![
                "10.88.0.0/16".parse().unwrap(),
                "fd00:88::/64".parse().unwrap(),
            ],
            internal,
        }
    }

    fn json(cmds: &[Obj]) -> String {
        serde_json::to_string(cmds).unwrap()
    }

    #[test]
    fn a_network_masquerades_its_subnets_and_accepts_forwarding() {
        let text = json(&rules(&net(false)));
        assert!(text.contains(r#""masquerade":null"#), "{text}");
        assert!(text.contains(r#""addr":"10.88.0.0","len":16"#), "{text}");
        assert!(
            text.contains(r#""protocol":"ip6","field":"saddr""#),
            "{text}"
        );
        assert!(text.contains(r#""right":"@bridges""#), "{text}");
        assert!(text.contains(r#""comment":"net:br-test""#), "{text}");
        assert_eq!(text.matches(r#""accept":null"#).count(), 2, "{text}");
    }

    #[test]
    fn an_internal_network_drops_and_never_masquerades_out() {
        let cmds = rules(&net(true));
        let text = json(&cmds);
        assert_eq!(text.matches(r#""drop":null"#).count(), 2, "{text}");
        assert!(!text.contains(r#""accept":null"#), "{text}");
        // Only hairpin (one per subnet) and loopback masquerades: all go into the bridge.
        assert_eq!(text.matches(r#""masquerade":null"#).count(), 3, "{text}");
    }

    #[test]
    fn subnets_are_written_by_their_network_address() {
        let mut n = net(false);
        n.subnets = vec!["10.88.0.1/16".parse().unwrap()];
        assert!(json(&rules(&n)).contains(r#""addr":"10.88.0.0""#));
    }
}
