//! A container's port rules as nf_tables expressions, the bytecode `nft` makes of
//! [`crate::ports`]'s JSON rules (`nft --debug=netlink,mnl` shows it): both list alike.

use std::net::{IpAddr, Ipv6Addr};

use crate::nfmsg::Attrs;
use crate::types::PortRule;

/// `NFTA_LIST_ELEM`, `NFTA_EXPR_NAME`, `NFTA_EXPR_DATA`.
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
/// `NFTA_DATA_VALUE`, `NFTA_DATA_VERDICT`, `NFTA_VERDICT_CODE`, `NFTA_VERDICT_CHAIN`.
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;
/// `NFT_JUMP` (-3).
const JUMP: u32 = (-3i32) as u32;
/// Registers: the verdict's, the first and second 128-bit ones.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;
/// `NFT_META_NFPROTO`, `NFT_META_L4PROTO`.
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;
/// `NFT_PAYLOAD_NETWORK_HEADER`, `NFT_PAYLOAD_TRANSPORT_HEADER`.
const NETWORK_HEADER: u32 = 1;
const TRANSPORT_HEADER: u32 = 2;
/// `NFT_CMP_*` operators.
const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;
const CMP_LTE: u32 = 3;
const CMP_GTE: u32 = 5;
/// `NFT_NAT_DNAT` and `NF_NAT_RANGE_PROTO_SPECIFIED`.
const NAT_DNAT: u32 = 1;
const NAT_PROTO_SPECIFIED: u32 = 2;
/// `NFTNL_UDATA_RULE_COMMENT`: libnftnl's TLV type of a rule's comment.
const UDATA_COMMENT: u8 = 0;

/// A rule's expression list under construction.
#[derive(Debug, Default)]
pub(crate) struct Exprs(Attrs);

impl Exprs {
    /// The `NFTA_RULE_EXPRESSIONS` contents.
    pub fn into_attrs(self) -> Attrs {
        self.0
    }

    fn expr(&mut self, name: &str, data: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.0.nest(LIST_ELEM, |elem| {
            elem.string(EXPR_NAME, name).nest(EXPR_DATA, data);
        });
        self
    }

    /// `meta load KEY => reg 1`.
    fn meta(&mut self, key: u32) -> &mut Self {
        self.expr("meta", |a| {
            a.u32(1, REG_1).u32(2, key);
        })
    }

    /// `payload load LEN @ BASE + OFFSET => reg`.
    fn payload(&mut self, reg: u32, base: u32, offset: u32, len: u32) -> &mut Self {
        self.expr("payload", |a| {
            a.u32(1, reg).u32(2, base).u32(3, offset).u32(4, len);
        })
    }

    /// `cmp OP reg 1 VALUE`.
    fn cmp(&mut self, op: u32, value: &[u8]) -> &mut Self {
        self.expr("cmp", |a| {
            a.u32(1, REG_1).u32(2, op).nest(3, |d| {
                d.bytes(DATA_VALUE, value);
            });
        })
    }

    /// `immediate reg VALUE`.
    fn immediate(&mut self, reg: u32, value: &[u8]) -> &mut Self {
        self.expr("immediate", |a| {
            a.u32(1, reg).nest(2, |d| {
                d.bytes(DATA_VALUE, value);
            });
        })
    }
}

/// The expressions of [`crate::ports`]'s DNAT rule; for a range, `map_id` is the batch's
/// id of its port map ([`crate::nfmsg::new_port_map`]).
pub(crate) fn dnat_rule(port: &PortRule, map_id: u32) -> Exprs {
    let mut e = Exprs::default();
    let v4 = port.container_ip.is_ipv4();
    e.meta(META_NFPROTO).cmp(CMP_EQ, &[if v4 { 2 } else { 10 }]);
    let (offset, len) = if v4 { (16, 4) } else { (24, 16) };
    let matched = match port.matched_host_ip() {
        Some(host) => Some((CMP_EQ, addr_bytes(host))),
        None if v4 => None,
        None => Some((CMP_NEQ, Ipv6Addr::LOCALHOST.octets().to_vec())),
    };
    if let Some((op, addr)) = matched {
        e.payload(REG_1, NETWORK_HEADER, offset, len).cmp(op, &addr);
    }
    e.meta(META_L4PROTO).cmp(CMP_EQ, &[port.proto.number()]);
    e.payload(REG_1, TRANSPORT_HEADER, 2, 2);
    if port.host_port == port.host_port_end {
        e.cmp(CMP_EQ, &port.host_port.to_be_bytes())
            .immediate(REG_1, &addr_bytes(port.container_ip))
            .immediate(REG_2, &port.container_port.to_be_bytes());
    } else {
        e.cmp(CMP_GTE, &port.host_port.to_be_bytes())
            .cmp(CMP_LTE, &port.host_port_end.to_be_bytes())
            .immediate(REG_1, &addr_bytes(port.container_ip))
            .payload(REG_2, TRANSPORT_HEADER, 2, 2)
            .expr("lookup", |a| {
                a.string(1, crate::nfmsg::ANONYMOUS_MAP)
                    .u32(2, REG_2)
                    .u32(3, REG_2)
                    .u32(4, map_id);
            });
    }
    e.expr("nat", |a| {
        a.u32(1, NAT_DNAT)
            .u32(2, if v4 { 2 } else { 10 })
            .u32(3, REG_1)
            .u32(5, REG_2)
            .u32(7, NAT_PROTO_SPECIFIED);
    });
    e
}

/// `jump CHAIN`.
pub(crate) fn jump(chain: &str) -> Exprs {
    let mut e = Exprs::default();
    e.expr("immediate", |a| {
        a.u32(1, REG_VERDICT).nest(2, |d| {
            d.nest(DATA_VERDICT, |v| {
                v.u32(VERDICT_CODE, JUMP).string(VERDICT_CHAIN, chain);
            });
        });
    });
    e
}

/// A rule's userdata holding its comment, as libnftnl writes it (`nft` reads it back).
pub(crate) fn comment(text: &str) -> Vec<u8> {
    let mut value = text.as_bytes().to_vec();
    value.push(0);
    // Tags are `ctr:ID` with ids of at most 100 bytes: far below the TLV's 255.
    let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
    let mut out = vec![UDATA_COMMENT, len];
    out.extend_from_slice(&value);
    out
}

fn addr_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfmsg::parse_attrs;
    use crate::types::Proto;

    /// An expression's name and its data's attributes.
    type Decoded = (String, Vec<(u16, Vec<u8>)>);

    /// Each expression, decoded.
    fn decode(exprs: &Exprs) -> Vec<Decoded> {
        parse_attrs(exprs.0.as_bytes())
            .into_iter()
            .map(|(_, elem)| {
                let parts = parse_attrs(elem);
                let name = String::from_utf8_lossy(parts[0].1)
                    .trim_end_matches('\0')
                    .to_owned();
                let data = parse_attrs(parts[1].1)
                    .into_iter()
                    .map(|(k, v)| (k, v.to_vec()))
                    .collect();
                (name, data)
            })
            .collect()
    }

    fn port() -> PortRule {
        PortRule::sample()
    }

    fn names(exprs: &Exprs) -> Vec<String> {
        decode(exprs).into_iter().map(|(n, _)| n).collect()
    }

    #[test]
    fn a_v4_port_is_nfproto_l4proto_dport_dnat() {
        let e = dnat_rule(&port(), 0);
        assert_eq!(
            names(&e),
            [
                "meta",
                "cmp",
                "meta",
                "cmp",
                "payload",
                "cmp",
                "immediate",
                "immediate",
                "nat"
            ]
        );
        let d = decode(&e);
        assert_eq!(d[0].1[1], (2, META_NFPROTO.to_be_bytes().to_vec()));
        assert_eq!(parse_attrs(&d[1].1[2].1)[0].1, [2]);
        assert_eq!(parse_attrs(&d[3].1[2].1)[0].1, [6]);
        assert_eq!(parse_attrs(&d[5].1[2].1)[0].1, 8080u16.to_be_bytes());
        assert_eq!(parse_attrs(&d[6].1[1].1)[0].1, [10, 88, 0, 2]);
        assert_eq!(parse_attrs(&d[7].1[1].1)[0].1, 80u16.to_be_bytes());
    }

    #[test]
    fn v6_on_every_address_skips_the_loopback() {
        let v6 = PortRule {
            container_ip: "fd00::2".parse().unwrap(),
            ..port()
        };
        let d = decode(&dnat_rule(&v6, 0));
        assert_eq!(d[2].0, "payload");
        assert_eq!(d[3].1[1], (2, CMP_NEQ.to_be_bytes().to_vec()));
        assert_eq!(parse_attrs(&d[3].1[2].1)[0].1, Ipv6Addr::LOCALHOST.octets());
    }

    #[test]
    fn a_host_address_is_matched() {
        let rule = PortRule {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            proto: Proto::Sctp,
            ..port()
        };
        let d = decode(&dnat_rule(&rule, 0));
        assert_eq!(parse_attrs(&d[3].1[2].1)[0].1, [127, 0, 0, 1]);
        assert_eq!(parse_attrs(&d[5].1[2].1)[0].1, [132]);
        let range = PortRule {
            host_port_end: 8082,
            ..rule
        };
        let d = decode(&dnat_rule(&range, 3));
        assert_eq!(d[7].1[1].1, CMP_GTE.to_be_bytes());
        assert_eq!(d[8].1[1].1, CMP_LTE.to_be_bytes());
        assert_eq!(d[11].0, "lookup");
        assert_eq!(d[11].1[3].1, 3u32.to_be_bytes());
    }

    #[test]
    fn the_jump_and_comment_are_libnftnls() {
        assert_eq!(comment("ctr:abc"), b"\x00\x08ctr:abc\x00");
        let d = decode(&jump("ports-abc"));
        assert_eq!(d[0].0, "immediate");
        let verdict = parse_attrs(&d[0].1[1].1);
        let inner = parse_attrs(verdict[0].1);
        assert_eq!(inner[0].1, JUMP.to_be_bytes());
        assert_eq!(inner[1].1, b"ports-abc\0");
    }
}
