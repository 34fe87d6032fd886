//! Small constructors for the nft JSON statements pelagos's rules are made of, so that the
//! rule builders read like the nft rules they make.

use std::net::IpAddr;

use ipnet::IpNet;
use nftables::expr::{
    Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix, CT,
};
use nftables::stmt::{JumpTarget, Match, Operator, Statement, NAT};

/// An owned expression.
pub(crate) type Expr = Expression<'static>;
/// An owned statement.
pub(crate) type Stmt = Statement<'static>;

/// A string immediate.
pub(crate) fn text(value: impl Into<String>) -> Expr {
    Expression::String(value.into().into())
}

/// A list of strings (`established,related`).
pub(crate) fn list(values: &[&str]) -> Expr {
    Expression::List(values.iter().map(|v| text(*v)).collect())
}

/// `left == right`.
pub(crate) fn eq(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::EQ,
    })
}

/// `left != right`.
pub(crate) fn ne(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::NEQ,
    })
}

/// `left in right` (flag tests such as `ct state established,related`).
pub(crate) fn any_of(left: Expr, right: Expr) -> Stmt {
    Statement::Match(Match {
        left,
        right,
        op: Operator::IN,
    })
}

/// `meta KEY`.
pub(crate) fn meta(key: MetaKey) -> Expr {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

/// `iifname NAME`.
pub(crate) fn iifname_is(name: &str) -> Stmt {
    eq(meta(MetaKey::Iifname), text(name))
}

/// `oifname NAME`.
pub(crate) fn oifname_is(name: &str) -> Stmt {
    eq(meta(MetaKey::Oifname), text(name))
}

/// `PROTOCOL FIELD` (`ip saddr`, `tcp dport`).
pub(crate) fn payload(protocol: &str, field: &str) -> Expr {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: protocol.to_owned().into(),
            field: field.to_owned().into(),
        },
    )))
}

/// `ct KEY`.
pub(crate) fn ct(key: &str) -> Expr {
    Expression::Named(NamedExpression::CT(CT {
        key: key.to_owned().into(),
        family: None,
        dir: None,
    }))
}

/// `fib daddr type`.
pub(crate) fn fib_daddr_type() -> Expr {
    Expression::Named(NamedExpression::Fib(Fib {
        result: FibResult::Type,
        flags: [FibFlag::Daddr].into_iter().collect(),
    }))
}

/// An address.
pub(crate) fn addr(ip: IpAddr) -> Expr {
    text(ip.to_string())
}

/// A subnet as `ADDR/LEN`.
pub(crate) fn prefix(net: IpNet) -> Expr {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(addr(net.network())),
        len: u32::from(net.prefix_len()),
    }))
}

/// The header holding an address of `ip`'s family: `ip` or `ip6`.
pub(crate) fn ip_header(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

/// `ip saddr NET` or `ip6 saddr NET`.
pub(crate) fn saddr_in(net: IpNet) -> Stmt {
    eq(payload(ip_header(net.addr()), "saddr"), prefix(net))
}

/// `jump CHAIN`.
pub(crate) fn jump(chain: &str) -> Stmt {
    Statement::Jump(JumpTarget {
        target: chain.to_owned().into(),
    })
}

/// `accept`.
pub(crate) fn accept() -> Stmt {
    Statement::Accept(None)
}

/// `drop`.
pub(crate) fn drop() -> Stmt {
    Statement::Drop(None)
}

/// `masquerade`.
pub(crate) fn masquerade() -> Stmt {
    Statement::Masquerade(None::<NAT<'static>>)
}
