//! nf_tables netlink messages written by hand: attributes, the messages a container's ports
//! need (NEWCHAIN, NEWRULE, DELRULE, DELCHAIN) and the batch that makes them one transaction.

/// `NFNL_SUBSYS_NFTABLES`: the message type's high byte.
const SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` and `NFNL_MSG_BATCH_END`.
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
/// `NFPROTO_INET`: table `inet pelagos`'s family.
const FAMILY_INET: u8 = 1;

/// `NLM_F_*` request flags.
pub(crate) const F_REQUEST: u16 = 0x1;
pub(crate) const F_ACK: u16 = 0x4;
pub(crate) const F_ECHO: u16 = 0x8;
pub(crate) const F_APPEND: u16 = 0x800;
pub(crate) const F_CREATE: u16 = 0x400;
/// `NLA_F_NESTED`.
const NESTED: u16 = 0x8000;
/// The netlink header's length.
pub(crate) const HEADER_LEN: usize = 16;
/// The netfilter header (`struct nfgenmsg`) after it.
pub(crate) const NFGEN_LEN: usize = 4;

/// `NFT_MSG_*` message kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NewChain = 3,
    DelChain = 5,
    NewRule = 6,
    DelRule = 8,
    NewSet = 9,
    NewSetElem = 12,
}

impl Kind {
    /// The netlink message type.
    pub fn message_type(self) -> u16 {
        SUBSYS_NFTABLES << 8 | self as u16
    }
}

/// `NFTA_CHAIN_*` and `NFTA_RULE_*` attributes.
pub(crate) mod attr {
    pub const CHAIN_TABLE: u16 = 1;
    pub const CHAIN_NAME: u16 = 3;
    pub const RULE_TABLE: u16 = 1;
    pub const RULE_CHAIN: u16 = 2;
    pub const RULE_HANDLE: u16 = 3;
    pub const RULE_EXPRESSIONS: u16 = 4;
    pub const RULE_USERDATA: u16 = 7;
}

/// A buffer of netlink attributes (type-length-value, 4-byte aligned).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Attrs(Vec<u8>);

impl Attrs {
    /// An attribute holding `value`.
    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.header(kind, value.len());
        self.0.extend_from_slice(value);
        self.pad();
        self
    }

    /// A NUL-terminated string.
    pub fn string(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut bytes = value.as_bytes().to_vec();
        bytes.push(0);
        self.bytes(kind, &bytes)
    }

    /// A big-endian u32 (nf_tables' integers are all big-endian).
    pub fn u32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.bytes(kind, &value.to_be_bytes())
    }

    /// A big-endian u64.
    pub fn u64(&mut self, kind: u16, value: u64) -> &mut Self {
        self.bytes(kind, &value.to_be_bytes())
    }

    /// A nested attribute holding what `fill` writes.
    pub fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        fill(&mut inner);
        self.bytes(kind | NESTED, &inner.0)
    }

    /// The encoded attributes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn header(&mut self, kind: u16, value_len: usize) {
        // Attribute values here are names, addresses and expression lists: far below 64 KiB.
        let len = u16::try_from(4 + value_len).unwrap_or(u16::MAX);
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.0.resize(align4(self.0.len()), 0);
    }
}

/// One message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub kind: Kind,
    /// `NLM_F_*` beyond `REQUEST` (and `ACK` on a batch's last).
    pub flags: u16,
    pub attrs: Attrs,
}

/// `add chain inet pelagos NAME` (no error if it exists).
pub(crate) fn new_chain(table: &str, name: &str) -> Message {
    let mut attrs = Attrs::default();
    attrs
        .string(attr::CHAIN_TABLE, table)
        .string(attr::CHAIN_NAME, name);
    Message {
        kind: Kind::NewChain,
        flags: F_CREATE,
        attrs,
    }
}

/// `delete chain inet pelagos NAME` (it must be empty).
pub(crate) fn del_chain(table: &str, name: &str) -> Message {
    Message {
        kind: Kind::DelChain,
        ..new_chain(table, name)
    }
}

/// `add rule inet pelagos CHAIN …`: `expressions` is an `NFTA_RULE_EXPRESSIONS` list,
/// `userdata` libnftnl's TLVs (the comment); `echo` asks the kernel to send the rule back
/// with its handle.
pub(crate) fn new_rule(
    table: &str,
    chain: &str,
    expressions: &Attrs,
    userdata: Option<&[u8]>,
    echo: bool,
) -> Message {
    let mut attrs = Attrs::default();
    attrs
        .string(attr::RULE_TABLE, table)
        .string(attr::RULE_CHAIN, chain)
        .bytes(attr::RULE_EXPRESSIONS | NESTED, expressions.as_bytes());
    if let Some(userdata) = userdata {
        attrs.bytes(attr::RULE_USERDATA, userdata);
    }
    Message {
        kind: Kind::NewRule,
        flags: F_CREATE | F_APPEND | if echo { F_ECHO } else { 0 },
        attrs,
    }
}

/// `NFTA_SET_*`, `NFTA_SET_ELEM_LIST_*`, `NFTA_SET_ELEM_*` attributes and set values.
mod set {
    pub const TABLE: u16 = 1;
    pub const NAME: u16 = 2;
    pub const FLAGS: u16 = 3;
    pub const KEY_TYPE: u16 = 4;
    pub const KEY_LEN: u16 = 5;
    pub const DATA_TYPE: u16 = 6;
    pub const DATA_LEN: u16 = 7;
    pub const DESC: u16 = 9;
    pub const DESC_SIZE: u16 = 1;
    pub const ID: u16 = 10;
    pub const USERDATA: u16 = 13;
    pub const LIST_SET: u16 = 2;
    pub const LIST_ELEMENTS: u16 = 3;
    pub const LIST_SET_ID: u16 = 4;
    pub const ELEM: u16 = 1;
    pub const ELEM_KEY: u16 = 1;
    pub const ELEM_DATA: u16 = 2;
    pub const DATA_VALUE: u16 = 1;
    /// `NFT_SET_ANONYMOUS | NFT_SET_CONSTANT | NFT_SET_MAP`.
    pub const ANONYMOUS_CONSTANT_MAP: u32 = 0x1 | 0x2 | 0x8;
    /// nft's `inet_service` type (a port).
    pub const INET_SERVICE: u32 = 13;
    /// libnftnl's set userdata as nft writes it for a port-to-port map: key and data
    /// byte order big-endian (2), and a 0 merge-elements flag.
    pub const PORT_MAP_USERDATA: [u8; 18] = [0, 4, 2, 0, 0, 0, 1, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0];
}

/// The name nft gives anonymous maps; the kernel replaces `%d`.
pub(crate) const ANONYMOUS_MAP: &str = "__map%d";

/// An anonymous constant map from port to port, `id` naming it inside the batch: NEWSET
/// then NEWSETELEM, as nft writes `… map { 8080 : 80, 8081 : 81 }`.
pub(crate) fn new_port_map(table: &str, id: u32, pairs: &[(u16, u16)]) -> [Message; 2] {
    let mut attrs = Attrs::default();
    attrs
        .string(set::TABLE, table)
        .string(set::NAME, ANONYMOUS_MAP)
        .u32(set::FLAGS, set::ANONYMOUS_CONSTANT_MAP)
        .u32(set::KEY_TYPE, set::INET_SERVICE)
        .u32(set::KEY_LEN, 2)
        .u32(set::DATA_TYPE, set::INET_SERVICE)
        .u32(set::DATA_LEN, 2)
        .u32(set::ID, id)
        .nest(set::DESC, |d| {
            d.u32(set::DESC_SIZE, pairs.len() as u32);
        })
        .bytes(set::USERDATA, &set::PORT_MAP_USERDATA);
    let new_set = Message {
        kind: Kind::NewSet,
        flags: F_CREATE,
        attrs,
    };
    let mut attrs = Attrs::default();
    attrs
        .string(set::TABLE, table)
        .string(set::LIST_SET, ANONYMOUS_MAP)
        .u32(set::LIST_SET_ID, id)
        .nest(set::LIST_ELEMENTS, |list| {
            for (key, data) in pairs {
                list.nest(set::ELEM, |elem| {
                    elem.nest(set::ELEM_KEY, |k| {
                        k.bytes(set::DATA_VALUE, &key.to_be_bytes());
                    })
                    .nest(set::ELEM_DATA, |d| {
                        d.bytes(set::DATA_VALUE, &data.to_be_bytes());
                    });
                });
            }
        });
    let elements = Message {
        kind: Kind::NewSetElem,
        flags: F_CREATE,
        attrs,
    };
    [new_set, elements]
}

/// `delete rule inet pelagos CHAIN handle HANDLE`, or without a handle `flush chain`.
pub(crate) fn del_rule(table: &str, chain: &str, handle: Option<u64>) -> Message {
    let mut attrs = Attrs::default();
    attrs
        .string(attr::RULE_TABLE, table)
        .string(attr::RULE_CHAIN, chain);
    if let Some(handle) = handle {
        attrs.u64(attr::RULE_HANDLE, handle);
    }
    Message {
        kind: Kind::DelRule,
        flags: 0,
        attrs,
    }
}

/// The datagram of one transaction: BATCH_BEGIN, the messages numbered from `first_seq`,
/// BATCH_END. Only the last message asks for an ack: the kernel reports every failed one
/// anyway, and a thousand acks would overflow the socket's receive buffer. Returns the
/// datagram with the sequence number after the last one used.
pub(crate) fn batch(messages: &[Message], first_seq: u32) -> (Vec<u8>, u32) {
    let mut out = Vec::new();
    let mut seq = first_seq;
    let subsys = SUBSYS_NFTABLES.to_be_bytes();
    push(
        &mut out,
        BATCH_BEGIN,
        F_REQUEST,
        seq,
        [0, 0, subsys[0], subsys[1]],
        &[],
    );
    for (index, message) in messages.iter().enumerate() {
        seq = seq.wrapping_add(1);
        let ack = if index + 1 == messages.len() {
            F_ACK
        } else {
            0
        };
        let flags = F_REQUEST | ack | message.flags;
        let nfgen = [FAMILY_INET, 0, 0, 0];
        push(
            &mut out,
            message.kind.message_type(),
            flags,
            seq,
            nfgen,
            message.attrs.as_bytes(),
        );
    }
    seq = seq.wrapping_add(1);
    push(
        &mut out,
        BATCH_END,
        F_REQUEST,
        seq,
        [0, 0, subsys[0], subsys[1]],
        &[],
    );
    (out, seq.wrapping_add(1))
}

fn push(out: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, nfgen: [u8; 4], attrs: &[u8]) {
    let len = (HEADER_LEN + NFGEN_LEN + attrs.len()) as u32;
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&nfgen);
    out.extend_from_slice(attrs);
    out.resize(align4(out.len()), 0);
}

/// `len` rounded up to netlink's 4-byte alignment.
pub(crate) fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// The attributes (type without flags, value) of `bytes`, stopping at a malformed one.
pub(crate) fn parse_attrs(mut bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while bytes.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([bytes[0], bytes[1]]));
        let kind = u16::from_ne_bytes([bytes[2], bytes[3]]) & !NESTED;
        if len < 4 || len > bytes.len() {
            break;
        }
        out.push((kind, &bytes[4..len]));
        bytes = &bytes[align4(len).min(bytes.len())..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nested() {
        let mut attrs = Attrs::default();
        attrs.string(1, "ab").u32(2, 7).nest(3, |inner| {
            inner.bytes(1, &[9]);
        });
        assert_eq!(
            attrs.as_bytes(),
            [
                7, 0, 1, 0, b'a', b'b', 0, 0, // "ab\0" + pad
                8, 0, 2, 0, 0, 0, 0, 7, // big-endian 7
                12, 0, 3, 0x80, 5, 0, 1, 0, 9, 0, 0, 0 // nested
            ]
        );
        let parsed = parse_attrs(attrs.as_bytes());
        assert_eq!(parsed[0], (1, &b"ab\0"[..]));
        assert_eq!(parsed[1], (2, &[0, 0, 0, 7][..]));
        assert_eq!(parse_attrs(parsed[2].1), vec![(1, &[9u8][..])]);
    }

    #[test]
    fn a_batch_is_framed_by_begin_and_end() {
        let messages = [
            new_chain("pelagos", "ports-a"),
            del_rule("pelagos", "ports", Some(5)),
        ];
        let (bytes, next) = batch(&messages, 100);
        assert_eq!(next, 104);
        let mut types = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            let len = u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes([bytes[offset + 4], bytes[offset + 5]]);
            let flags = u16::from_ne_bytes([bytes[offset + 6], bytes[offset + 7]]);
            let seq = u32::from_ne_bytes(bytes[offset + 8..offset + 12].try_into().unwrap());
            types.push((kind, flags, seq));
            offset += align4(len);
        }
        assert_eq!(
            types,
            vec![
                (0x10, F_REQUEST, 100),
                (0x0a03, F_REQUEST | F_CREATE, 101),
                (0x0a08, F_REQUEST | F_ACK, 102),
                (0x11, F_REQUEST, 103),
            ]
        );
        // BATCH_BEGIN names the subsystem, big-endian, in nfgenmsg's res_id.
        assert_eq!(&bytes[16..20], &[0, 0, 0, 10]);
    }

    #[test]
    fn a_rule_deletion_names_its_handle() {
        let message = del_rule("pelagos", "ports", Some(0x0102));
        let attrs = parse_attrs(message.attrs.as_bytes());
        assert_eq!(attrs[2], (attr::RULE_HANDLE, &[0, 0, 0, 0, 0, 0, 1, 2][..]));
        assert_eq!(
            parse_attrs(del_rule("t", "c", None).attrs.as_bytes()).len(),
            2
        );
    }

    #[test]
    fn a_port_map_is_an_anonymous_set_and_its_elements() {
        let [set, elements] = new_port_map("pelagos", 2, &[(9000, 80), (9001, 81)]);
        assert_eq!((set.kind, elements.kind), (Kind::NewSet, Kind::NewSetElem));
        let attrs = parse_attrs(set.attrs.as_bytes());
        assert_eq!(attrs[1], (set::NAME, &b"__map%d\0"[..]));
        assert_eq!(attrs[2].1, 0x0bu32.to_be_bytes());
        assert_eq!(attrs[7], (set::ID, &2u32.to_be_bytes()[..]));
        let attrs = parse_attrs(elements.attrs.as_bytes());
        let list = parse_attrs(attrs[3].1);
        assert_eq!(list.len(), 2);
        let second = parse_attrs(list[1].1);
        let key = parse_attrs(second[0].1);
        let data = parse_attrs(second[1].1);
        assert_eq!((key[0].1, data[0].1), (&[0x23, 0x29][..], &[0, 81][..]));
    }
}
