//! What to do with one query: answer it from the records (A, AAAA, PTR, and an empty
//! answer for other types of a known name), forward it, or drop it.

use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::records::Records;

/// TTL of local answers: 0, since a container recreated under the same name gets a new
/// address and the next lookup is as cheap as a cached one.
pub const LOCAL_TTL: u32 = 0;

/// The largest answer over TCP.
pub const TCP_LIMIT: usize = u16::MAX as usize;

/// The EDNS payload size we advertise (the DNS flag day's 1232 bytes).
const EDNS_PAYLOAD: u16 = 1232;

/// How the query arrived, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// 512 bytes or the query's EDNS payload size.
    Udp,
    /// 65535 bytes.
    Tcp,
}

/// The decision for one query.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Not ours: ask the upstream resolvers; the answer may be at most `limit` bytes.
    Forward {
        /// The client's size limit.
        limit: usize,
    },
    /// Not a query (a response, garbage shorter than a header): say nothing.
    Drop,
}

/// Decide what to do with `packet`.
pub fn decide(packet: &[u8], records: &Records, transport: Transport) -> Decision {
    let request = match Message::from_vec(packet) {
        Ok(request) => request,
        Err(_) => return format_error(packet),
    };
    if request.message_type() != MessageType::Query {
        return Decision::Drop;
    }
    let limit = match transport {
        Transport::Udp => usize::from(request.max_payload()),
        Transport::Tcp => TCP_LIMIT,
    };
    let [query] = request.queries() else {
        return Decision::Forward { limit };
    };
    if request.op_code() != OpCode::Query || query.query_class() != DNSClass::IN {
        return Decision::Forward { limit };
    }
    match local_answers(query, records) {
        Some(answers) => Decision::Reply(encode_reply(&request, answers, limit)),
        None => Decision::Forward { limit },
    }
}

/// The records answering `query`, or `None` when the name is not ours.
fn local_answers(query: &Query, records: &Records) -> Option<Vec<Record>> {
    let owner = query.name().clone();
    if query.query_type() == RecordType::PTR {
        let addr = arpa_address(query.name())?;
        let target = Name::from_ascii(records.reverse(addr)?).ok()?;
        return Some(vec![Record::from_rdata(
            owner,
            LOCAL_TTL,
            RData::PTR(PTR(target)),
        )]);
    }
    let found = records.lookup(&query.name().to_ascii())?;
    let a = |ip| Record::from_rdata(owner.clone(), LOCAL_TTL, RData::A(A(ip)));
    let aaaa = |ip| Record::from_rdata(owner.clone(), LOCAL_TTL, RData::AAAA(AAAA(ip)));
    Some(match query.query_type() {
        RecordType::A => found.v4.iter().copied().map(a).collect(),
        RecordType::AAAA => found.v6.iter().copied().map(aaaa).collect(),
        RecordType::ANY => {
            let v4 = found.v4.iter().copied().map(a);
            v4.chain(found.v6.iter().copied().map(aaaa)).collect()
        }
        // A known name has no other records: an empty answer, never a leak upstream.
        _ => Vec::new(),
    })
}

/// The single address an `in-addr.arpa`/`ip6.arpa` name stands for.
fn arpa_address(name: &Name) -> Option<IpAddr> {
    let net = name.parse_arpa_name().ok()?;
    (net.prefix_len() == net.max_prefix_len()).then(|| net.addr())
}

/// Our answer to `request`, with answers dropped and TC set until it fits `limit` (the
/// client then asks again over TCP).
fn encode_reply(request: &Message, answers: Vec<Record>, limit: usize) -> Vec<u8> {
    let mut keep = answers.len();
    loop {
        let mut reply = reply_to(request, ResponseCode::NoError);
        reply
            .set_authoritative(true)
            .set_truncated(keep < answers.len());
        reply.add_answers(answers[..keep].iter().cloned());
        match reply.to_vec() {
            Ok(bytes) if bytes.len() <= limit || keep == 0 => return bytes,
            Ok(_) => keep /= 2,
            Err(_) => return servfail(request),
        }
    }
}

/// A response header for `request`: same id, question and RD; RA set.
fn reply_to(request: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true)
        .set_response_code(code)
        .add_queries(request.queries().iter().cloned());
    if request.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        reply.set_edns(edns);
    }
    reply
}

/// SERVFAIL for `request`, encoded (empty when even that cannot be encoded).
fn servfail(request: &Message) -> Vec<u8> {
    reply_to(request, ResponseCode::ServFail)
        .to_vec()
        .unwrap_or_default()
}

/// SERVFAIL for the query in `packet`: what the client gets when no upstream answered.
pub fn servfail_for(packet: &[u8]) -> Option<Vec<u8>> {
    let request = Message::from_vec(packet).ok()?;
    Some(servfail(&request))
}

/// FORMERR for a packet with a header but an unreadable body; nothing for less.
fn format_error(packet: &[u8]) -> Decision {
    let Some(id) = packet.get(..2).filter(|_| packet.len() >= 12) else {
        return Decision::Drop;
    };
    if packet[2] & 0x80 != 0 {
        return Decision::Drop; // a response: never answer those
    }
    let id = u16::from_be_bytes([id[0], id[1]]);
    match Message::error_msg(id, OpCode::Query, ResponseCode::FormErr).to_vec() {
        Ok(bytes) => Decision::Reply(bytes),
        Err(_) => Decision::Drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{Entry, Names};
    use std::net::Ipv4Addr;

    fn records() -> Records {
        let db = Entry::container(
            "0123456789abcdef",
            "db",
            &[],
            vec![Ipv4Addr::new(10, 1, 0, 2)],
            vec![],
        );
        Records::new(&Names {
            domain: Some("dns.pelagos".into()),
            entries: vec![db],
        })
    }

    fn query(name: &str, kind: RecordType) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        m.to_vec().unwrap()
    }

    fn reply(decision: Decision) -> Message {
        match decision {
            Decision::Reply(bytes) => Message::from_vec(&bytes).unwrap(),
            other => panic!("not a reply: {other:?}"),
        }
    }

    #[test]
    fn known_names_are_answered_with_their_addresses() {
        let answer = reply(decide(
            &query("DB.dns.pelagos.", RecordType::A),
            &records(),
            Transport::Udp,
        ));
        assert_eq!(answer.id(), 7);
        assert!(answer.authoritative() && answer.recursion_available());
        assert_eq!(answer.answers().len(), 1);
        assert_eq!(
            answer.answers()[0].data(),
            &RData::A(A(Ipv4Addr::new(10, 1, 0, 2)))
        );
        assert_eq!(answer.answers()[0].name().to_ascii(), "DB.dns.pelagos.");
    }

    #[test]
    fn known_names_without_the_type_get_an_empty_answer() {
        for kind in [RecordType::AAAA, RecordType::MX] {
            let answer = reply(decide(&query("db", kind), &records(), Transport::Udp));
            assert_eq!(answer.response_code(), ResponseCode::NoError);
            assert!(answer.answers().is_empty());
        }
    }

    #[test]
    fn unknown_names_and_addresses_are_forwarded() {
        let decision = decide(
            &query("example.com.", RecordType::A),
            &records(),
            Transport::Udp,
        );
        assert_eq!(decision, Decision::Forward { limit: 512 });
        let ptr = query("9.0.1.10.in-addr.arpa.", RecordType::PTR);
        assert_eq!(
            decide(&ptr, &records(), Transport::Tcp),
            Decision::Forward { limit: TCP_LIMIT }
        );
    }

    #[test]
    fn ptr_of_a_container_address_is_its_name() {
        let answer = reply(decide(
            &query("2.0.1.10.in-addr.arpa.", RecordType::PTR),
            &records(),
            Transport::Udp,
        ));
        assert_eq!(
            answer.answers()[0].data(),
            &RData::PTR(PTR(Name::from_ascii("db.dns.pelagos.").unwrap()))
        );
    }

    #[test]
    fn many_addresses_are_truncated_to_fit_udp() {
        let v4 = (1..=100).map(|i| Ipv4Addr::new(10, 1, 0, i)).collect();
        let big = Records::new(&Names {
            domain: None,
            entries: vec![Entry::container("x", "many", &[], v4, vec![])],
        });
        let answer = reply(decide(&query("many", RecordType::A), &big, Transport::Udp));
        assert!(answer.truncated());
        assert!(answer.answers().len() < 100);
        let full = reply(decide(&query("many", RecordType::A), &big, Transport::Tcp));
        assert_eq!(full.answers().len(), 100);
    }

    #[test]
    fn garbage_gets_formerr_and_responses_are_ignored() {
        let mut packet = query("db", RecordType::A);
        packet.truncate(14);
        assert_eq!(
            reply(decide(&packet, &records(), Transport::Udp)).response_code(),
            ResponseCode::FormErr
        );
        assert_eq!(
            decide(&[1, 2, 3], &records(), Transport::Udp),
            Decision::Drop
        );
        let mut response = query("db", RecordType::A);
        response[2] |= 0x80;
        assert_eq!(
            decide(&response, &records(), Transport::Udp),
            Decision::Drop
        );
        let servfail =
            Message::from_vec(&servfail_for(&query("x", RecordType::A)).unwrap()).unwrap();
        assert_eq!(servfail.response_code(), ResponseCode::ServFail);
    }
}
