//! The rtnetlink socket and its request/acknowledgement exchange: a batch of requests goes out
//! in one datagram, and replies are read until every request has its ack or error.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NlasIterator, NLM_F_ACK,
    NLM_F_ACK_TLVS, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::Error;
use crate::netns;

/// Receive buffer size: a link's full description with statistics fits many times over.
const RECV_BUFFER: usize = 64 * 1024;
/// The length of a netlink message header, echoed in capped acknowledgements.
const HEADER_LEN: usize = 16;
/// `NLMSGERR_ATTR_MSG`: the extended acknowledgement's human-readable text.
const EXT_ACK_MSG: u16 = 1;

/// A synchronous rtnetlink handle owning one socket, bound to the network namespace it was
/// opened in for its whole life.
pub struct Netlink {
    socket: Socket,
    next_seq: u32,
    recv_buf: Vec<u8>,
}

/// One request of a batch: the message, its `NLM_F_*` flags beyond `REQUEST|ACK`, and the
/// operation's name for errors.
pub(crate) struct Request {
    pub message: RouteNetlinkMessage,
    pub flags: u16,
    pub what: String,
}

impl Request {
    pub(crate) fn new(message: RouteNetlinkMessage, flags: u16, what: impl Into<String>) -> Self {
        Request {
            message,
            flags,
            what: what.into(),
        }
    }
}

/// What the kernel answered to one request: its reply messages, or the error it acked.
pub(crate) type Outcome = Result<Vec<RouteNetlinkMessage>, Error>;

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink")
            .field("fd", &self.socket.as_raw_fd())
            .field("next_seq", &self.next_seq)
            .finish()
    }
}

impl Netlink {
    /// Opens a handle in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, Error> {
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(|e| Error::io("open rtnetlink socket", e))?;
        socket
            .bind_auto()
            .map_err(|e| Error::io("bind rtnetlink socket", e))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|e| Error::io("connect rtnetlink socket", e))?;
        // Capped acks echo only the request's header, not the whole request; extended acks
        // carry the kernel's reason text, which goes into error messages. Both are optional
        // kernel features: failing to set them costs only message quality.
        let _ = socket.set_cap_ack(true);
        let _ = socket.set_ext_ack(true);
        Ok(Netlink {
            socket,
            next_seq: 1,
            recv_buf: Vec::with_capacity(RECV_BUFFER),
        })
    }

    /// Opens a handle in the network namespace `netns` (an fd of `/proc/PID/ns/net` or a
    /// bind mount of one): the calling thread enters it, makes the socket, and returns to its
    /// own namespace; the socket stays in `netns`.
    ///
    /// Network namespace membership is per thread: call this from a single-threaded process
    /// or from a thread that may be in `netns` for a moment (other threads are unaffected;
    /// a signal handler running on this thread meanwhile would see `netns`). If the return
    /// fails the thread is left in `netns` and the error says so.
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Netlink, Error> {
        netns::run_in(netns, Netlink::open)?
    }

    /// Sends `requests` in one datagram and reads until each has its ack or error. The kernel
    /// handles the messages in order and goes on after a failed one, so callers batch only
    /// requests whose later members stay harmless when an earlier one fails.
    pub(crate) fn transact(&mut self, requests: Vec<Request>) -> Result<Vec<Outcome>, Error> {
        let first_seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(requests.len() as u32);
        let (datagram, whats) = encode(requests, first_seq);
        self.socket
            .send(&datagram, 0)
            .map_err(|e| Error::io("send rtnetlink request", e))?;
        let mut pending = Pending::new(whats, first_seq);
        while !pending.done() {
            self.receive_into(&mut pending)?;
        }
        Ok(pending.into_outcomes())
    }

    /// Sends one request and returns its replies, or the error the kernel acked it with.
    pub(crate) fn request(&mut self, request: Request) -> Result<Vec<RouteNetlinkMessage>, Error> {
        take_last(&mut self.transact(vec![request])?)
    }

    /// Reads one datagram and files each message it holds under its request.
    fn receive_into(&mut self, pending: &mut Pending) -> Result<(), Error> {
        self.recv_buf.clear();
        let size = loop {
            match self.socket.recv(&mut self.recv_buf, 0) {
                Ok(size) => break size,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("receive rtnetlink reply", e)),
            }
        };
        if size > self.recv_buf.len() {
            return Err(pending.protocol_error(format!("reply of {size} bytes truncated")));
        }
        let mut offset = 0;
        while offset < size {
            let bytes = &self.recv_buf[offset..size];
            let length = NetlinkBuffer::new_checked(bytes)
                .map_err(|e| pending.protocol_error(e.to_string()))?
                .length() as usize;
            let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes[..length])
                .map_err(|e| pending.protocol_error(e.to_string()))?;
            pending.file(message)?;
            offset += align4(length);
        }
        Ok(())
    }
}

/// The last outcome of a batch (callers unpack batches from the end).
pub(crate) fn take_last(outcomes: &mut Vec<Outcome>) -> Outcome {
    outcomes.pop().unwrap_or_else(|| {
        Err(Error::Protocol {
            what: "netlink batch".to_owned(),
            detail: "fewer outcomes than requests".to_owned(),
        })
    })
}

/// Serializes the batch into one buffer, sequence numbers counting from `first_seq`; returns
/// it with the requests' operation names.
fn encode(requests: Vec<Request>, first_seq: u32) -> (Vec<u8>, Vec<String>) {
    let mut datagram = Vec::new();
    let mut whats = Vec::with_capacity(requests.len());
    for (seq, request) in (first_seq..).zip(requests) {
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK | request.flags;
        header.sequence_number = seq;
        let mut message =
            NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request.message));
        message.finalize();
        let start = datagram.len();
        datagram.resize(start + align4(message.buffer_len()), 0);
        message.serialize(&mut datagram[start..start + message.buffer_len()]);
        whats.push(request.what);
    }
    (datagram, whats)
}

fn align4(length: usize) -> usize {
    (length + 3) & !3
}

/// The requests of a batch awaiting their acks, with the replies gathered so far.
struct Pending {
    first_seq: u32,
    whats: Vec<String>,
    replies: Vec<Vec<RouteNetlinkMessage>>,
    outcomes: Vec<Option<Outcome>>,
    remaining: usize,
}

impl Pending {
    fn new(whats: Vec<String>, first_seq: u32) -> Pending {
        let count = whats.len();
        Pending {
            first_seq,
            whats,
            replies: (0..count).map(|_| Vec::new()).collect(),
            outcomes: (0..count).map(|_| None).collect(),
            remaining: count,
        }
    }

    fn done(&self) -> bool {
        self.remaining == 0
    }

    /// Files one message under its request; messages of no pending request (a late answer to
    /// an earlier batch) are dropped.
    fn file(&mut self, message: NetlinkMessage<RouteNetlinkMessage>) -> Result<(), Error> {
        let slot = message.header.sequence_number.wrapping_sub(self.first_seq) as usize;
        if slot >= self.outcomes.len() || self.outcomes[slot].is_some() {
            return Ok(());
        }
        match message.payload {
            NetlinkPayload::InnerMessage(reply) => self.replies[slot].push(reply),
            NetlinkPayload::Error(ack) => {
                let outcome = match ack.code {
                    None => Ok(std::mem::take(&mut self.replies[slot])),
                    Some(code) => {
                        let detail = ext_ack_text(message.header.flags, &ack.header);
                        Err(Error::from_errno(-code.get(), &self.whats[slot], detail))
                    }
                };
                self.outcomes[slot] = Some(outcome);
                self.remaining -= 1;
            }
            NetlinkPayload::Overrun(_) => {
                return Err(self.protocol_error("receive buffer overrun".to_owned()))
            }
            _ => {}
        }
        Ok(())
    }

    fn protocol_error(&self, detail: String) -> Error {
        Error::Protocol {
            what: self.whats.join(", "),
            detail,
        }
    }

    fn into_outcomes(self) -> Vec<Outcome> {
        let what = self.whats.join(", ");
        self.outcomes
            .into_iter()
            .map(|outcome| {
                outcome.unwrap_or_else(|| {
                    Err(Error::Protocol {
                        what: what.clone(),
                        detail: "no acknowledgement".to_owned(),
                    })
                })
            })
            .collect()
    }
}

/// The kernel's reason text from an extended ack: after the echoed (capped) request header
/// come attributes, one of which may be the message.
fn ext_ack_text(flags: u16, echoed: &[u8]) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 || echoed.len() < HEADER_LEN {
        return None;
    }
    NlasIterator::new(&echoed[HEADER_LEN..])
        .filter_map(Result::ok)
        .find(|nla| nla.kind() == EXT_ACK_MSG)
        .map(|nla| {
            let text = nla.value();
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            String::from_utf8_lossy(&text[..end]).into_owned()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::ErrorMessage;
    use netlink_packet_route::link::LinkMessage;
    use std::num::NonZeroI32;

    fn ack(seq: u32, code: i32) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let mut error = ErrorMessage::default();
        error.code = NonZeroI32::new(code);
        NetlinkMessage::new(header, NetlinkPayload::Error(error))
    }

    fn reply(seq: u32) -> NetlinkMessage<RouteNetlinkMessage> {
        let mut header = NetlinkHeader::default();
        header.sequence_number = seq;
        let link = RouteNetlinkMessage::NewLink(LinkMessage::default());
        NetlinkMessage::new(header, NetlinkPayload::InnerMessage(link))
    }

    fn batch(count: usize, first_seq: u32) -> Pending {
        let whats = (0..count).map(|i| format!("request {i}")).collect();
        Pending::new(whats, first_seq)
    }

    #[test]
    fn replies_and_acks_are_filed_by_sequence_number() {
        let mut pending = batch(2, u32::MAX);
        pending.file(reply(u32::MAX)).unwrap();
        pending.file(ack(7, 0)).unwrap(); // stale: not of this batch
        pending.file(ack(u32::MAX, 0)).unwrap();
        assert!(!pending.done());
        pending.file(ack(0, -19)).unwrap(); // wrapped sequence number, ENODEV
        assert!(pending.done());
        let outcomes = pending.into_outcomes();
        assert_eq!(outcomes[0].as_ref().unwrap().len(), 1);
        match &outcomes[1] {
            Err(Error::NotFound { what, .. }) => assert_eq!(what, "request 1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_batch_is_one_buffer_of_aligned_messages_with_ack_flags() {
        let requests = vec![
            Request::new(RouteNetlinkMessage::GetLink(LinkMessage::default()), 0, "a"),
            Request::new(RouteNetlinkMessage::SetLink(LinkMessage::default()), 0, "b"),
        ];
        let set_link_type = requests[1].message.message_type();
        let (datagram, whats) = encode(requests, 5);
        assert_eq!(whats, ["a", "b"]);
        let first = NetlinkBuffer::new_checked(&datagram[..]).unwrap();
        assert_eq!(first.sequence_number(), 5);
        assert_eq!(first.flags(), NLM_F_REQUEST | NLM_F_ACK);
        let offset = align4(first.length() as usize);
        let second = NetlinkBuffer::new_checked(&datagram[offset..]).unwrap();
        assert_eq!(second.sequence_number(), 6);
        assert_eq!(second.message_type(), set_link_type);
        assert_eq!(offset + align4(second.length() as usize), datagram.len());
    }

    #[test]
    fn extended_ack_text_is_read_after_the_echoed_header() {
        let mut echoed = vec![0u8; HEADER_LEN];
        let text = b"Unknown device type\0";
        let nla_len = (4 + text.len()) as u16;
        echoed.extend_from_slice(&nla_len.to_ne_bytes());
        echoed.extend_from_slice(&EXT_ACK_MSG.to_ne_bytes());
        echoed.extend_from_slice(text);
        echoed.resize(align4(echoed.len()), 0);
        assert_eq!(
            ext_ack_text(NLM_F_ACK_TLVS, &echoed).as_deref(),
            Some("Unknown device type")
        );
        assert_eq!(ext_ack_text(0, &echoed), None);
    }
}
