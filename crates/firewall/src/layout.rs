//! The shape of table `inet pelagos`: its chains, set and fixed rules, the tags that mark
//! whose a rule is, and constructors for the nft commands that add and remove them.
//!
//! ```text
//! table inet pelagos {
//!   set bridges { type ifname }                         # every pelagos bridge
//!   chain forward { type filter hook forward priority filter; policy accept;
//!     ct state established,related accept; jump isolation; <net: iifname/oifname BR accept> }
//!   chain isolation { <net: drops for --internal, and between pelagos bridges> }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!     <net: masquerade SUBNET leaving by another interface; hairpin; 127.0.0.0/8 to BR> }
//!   chain prerouting { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//!   chain output { type nat hook output priority -100; fib daddr type local jump ports }
//!   chain ports { <ctr: jump ports-ID> }
//!   chain ports-ID { <dnat per published port of container ID> }
//! }
//! ```

use std::borrow::Cow;

use nftables::schema::{
    Chain, Element, FlushObject, NfCmd, NfListObject, NfObject, Rule, Set, SetType, SetTypeValue,
    Table,
};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

use crate::expr::{self, Stmt};
use crate::listing::Listing;

/// The table's name (family `inet`: IPv4 and IPv6 in one table).
pub const TABLE: &str = "pelagos";
/// The set of pelagos bridges' names.
pub(crate) const BRIDGES_SET: &str = "bridges";
/// Base chain: filter, hook forward.
pub(crate) const FORWARD: &str = "forward";
/// Regular chain of drops, jumped to from `forward` before any accept.
pub(crate) const ISOLATION: &str = "isolation";
/// Base chain: nat, hook postrouting.
pub(crate) const POSTROUTING: &str = "postrouting";
/// Base chain: nat, hook prerouting.
pub(crate) const PREROUTING: &str = "prerouting";
/// Base chain: nat, hook output.
pub(crate) const OUTPUT: &str = "output";
/// Regular chain jumping to each container's ports chain.
pub(crate) const PORTS: &str = "ports";

/// An owned nft command.
pub(crate) type Obj = NfObject<'static>;

/// The comment tagging a network's rules.
pub(crate) fn network_tag(bridge: &str) -> String {
    format!("net:{bridge}")
}

/// The comment tagging the jump to a container's ports chain.
pub(crate) fn container_tag(container_id: &str) -> String {
    format!("ctr:{container_id}")
}

/// The chain holding a container's DNAT rules.
pub(crate) fn ports_chain(container_id: &str) -> String {
    format!("{PORTS}-{container_id}")
}

fn table() -> Table<'static> {
    Table {
        family: NfFamily::INet,
        name: TABLE.into(),
        handle: None,
    }
}

fn chain(name: &str) -> Chain<'static> {
    Chain {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: name.to_owned().into(),
        ..Chain::default()
    }
}

fn base_chain(name: &str, kind: NfChainType, hook: NfHook, prio: i32) -> Chain<'static> {
    Chain {
        _type: Some(kind),
        hook: Some(hook),
        prio: Some(prio),
        policy: Some(NfChainPolicy::Accept),
        ..chain(name)
    }
}

fn bridges_set() -> Set<'static> {
    Set {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: BRIDGES_SET.into(),
        set_type: SetTypeValue::Single(SetType::Ifname),
        ..Set::default()
    }
}

/// `add rule inet pelagos CHAIN STMTS comment TAG`.
pub(crate) fn add_rule(chain: &str, stmts: Vec<Stmt>, tag: Option<&str>) -> Obj {
    NfObject::CmdObject(NfCmd::Add(NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(stmts),
        handle: None,
        index: None,
        comment: tag.map(|t| t.to_owned().into()),
    })))
}

/// `delete rule inet pelagos CHAIN handle HANDLE`.
pub(crate) fn delete_rule(chain: &str, handle: u32) -> Obj {
    NfObject::CmdObject(NfCmd::Delete(NfListObject::Rule(Rule {
        family: NfFamily::INet,
        table: TABLE.into(),
        chain: chain.to_owned().into(),
        expr: Cow::Owned(Vec::new()),
        handle: Some(handle),
        index: None,
        comment: None,
    })))
}

/// `add chain inet pelagos NAME`.
pub(crate) fn add_chain(name: &str) -> Obj {
    NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(chain(name))))
}

/// `flush chain inet pelagos NAME`.
pub(crate) fn flush_chain(name: &str) -> Obj {
    NfObject::CmdObject(NfCmd::Flush(FlushObject::Chain(chain(name))))
}

/// `delete chain inet pelagos NAME`.
pub(crate) fn delete_chain(name: &str) -> Obj {
    NfObject::CmdObject(NfCmd::Delete(NfListObject::Chain(chain(name))))
}

/// `add element inet pelagos bridges { BRIDGE }` (or `delete`).
pub(crate) fn bridge_element(bridge: &str, add: bool) -> Obj {
    let element = NfListObject::Element(Element {
        family: NfFamily::INet,
        table: TABLE.into(),
        name: BRIDGES_SET.into(),
        elem: Cow::Owned(vec![expr::text(bridge)]),
    });
    NfObject::CmdObject(if add {
        NfCmd::Add(element)
    } else {
        NfCmd::Delete(element)
    })
}

/// `add table` then `delete table`: removes the table whether or not it exists.
pub(crate) fn delete_table() -> Vec<Obj> {
    vec![
        NfObject::CmdObject(NfCmd::Add(NfListObject::Table(table()))),
        NfObject::CmdObject(NfCmd::Delete(NfListObject::Table(table()))),
    ]
}

/// The commands that create what of the table's fixed part `existing` lacks. Objects are
/// added only when missing: re-adding an existing chain makes the kernel wait for an RCU
/// grace period (≈ 13 ms measured) when nft's socket closes.
pub(crate) fn skeleton(existing: Option<&Listing>) -> Vec<Obj> {
    let has_chain = |name: &str| existing.is_some_and(|l| l.has_chain(name));
    let mut cmds = Vec::new();
    if existing.is_none() {
        cmds.push(NfObject::CmdObject(NfCmd::Add(
            NfListObject::Table(table()),
        )));
    }
    if !existing.is_some_and(|l| l.has_set(BRIDGES_SET)) {
        cmds.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Set(
            Box::new(bridges_set()),
        ))));
    }
    for (name, base) in chains() {
        if has_chain(name) {
            continue;
        }
        let chain = match base {
            Some((kind, hook, prio)) => base_chain(name, kind, hook, prio),
            None => chain(name),
        };
        cmds.push(NfObject::CmdObject(NfCmd::Add(NfListObject::Chain(chain))));
        cmds.extend(fixed_rules(name));
    }
    cmds
}

/// A base chain's type, hook and priority.
type Hook = (NfChainType, NfHook, i32);

/// The table's chains, in creation order, with their hook if they are base chains
/// (regular chains first: base chains' rules jump to them).
fn chains() -> [(&'static str, Option<Hook>); 6] {
    [
        (ISOLATION, None),
        (PORTS, None),
        (FORWARD, Some((NfChainType::Filter, NfHook::Forward, 0))),
        (
            POSTROUTING,
            Some((NfChainType::NAT, NfHook::Postrouting, 100)),
        ),
        (
            PREROUTING,
            Some((NfChainType::NAT, NfHook::Prerouting, -100)),
        ),
        (OUTPUT, Some((NfChainType::NAT, NfHook::Output, -100))),
    ]
}

/// The rules a chain starts with.
fn fixed_rules(chain: &str) -> Vec<Obj> {
    match chain {
        FORWARD => vec![
            add_rule(
                FORWARD,
                vec![
                    expr::any_of(expr::ct("state"), expr::list(&["established", "related"])),
                    expr::accept(),
                ],
                None,
            ),
            add_rule(FORWARD, vec![expr::jump(ISOLATION)], None),
        ],
        PREROUTING | OUTPUT => vec![add_rule(
            chain,
            vec![
                expr::eq(expr::fib_daddr_type(), expr::text("local")),
                expr::jump(PORTS),
            ],
            None,
        )],
        _ => Vec::new(),
    }
}
