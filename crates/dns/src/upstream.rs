//! The host's resolvers, read from a resolv.conf (re-read when it changes), and forwarding
//! one query to them (or to a container's own `--dns` servers): UDP with a timeout, servers
//! tried in rotation, TCP for a truncated answer.
//!
//! Which file: [`host_resolv_conf`], Docker's choice (systemd-resolved's stub swapped for the
//! servers it uses). Other loopback servers (a local dnsmasq) are kept: this process runs in
//! the host's network namespace, where they are reachable (as Docker's embedded resolver
//! forwards to them from the host's namespace).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Per-server timeout when resolv.conf sets none (glibc's 5 s is for clients, which retry).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Upper bound of `options timeout:`, so a client's own retry never overtakes us for long.
const MAX_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the file's identity is checked at most.
const RECHECK: Duration = Duration::from_secs(1);

/// What a resolv.conf says about upstream servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines, in order (unparsable ones are skipped).
    pub servers: Vec<IpAddr>,
    /// `options timeout:N`, capped at 5 s.
    pub timeout: Duration,
}

impl ResolvConf {
    /// Parse resolv.conf text.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            servers: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => conf
                    .servers
                    .extend(words.next().and_then(|w| w.parse::<IpAddr>().ok())),
                Some("options") => words.for_each(|option| conf.apply_option(option)),
                _ => {}
            }
        }
        conf
    }

    /// Apply one `options` word.
    fn apply_option(&mut self, option: &str) {
        let seconds = option
            .strip_prefix("timeout:")
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(seconds) = seconds {
            self.timeout = Duration::from_secs(seconds.max(1)).min(MAX_TIMEOUT);
        }
    }
}

/// The host's resolver configuration.
pub const ETC_RESOLV_CONF: &str = "/etc/resolv.conf";
/// Where systemd-resolved lists the servers its stub forwards to.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// systemd-resolved's stub listener.
const SYSTEMD_STUB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53));

/// The host's resolv.conf as Docker picks it: /etc/resolv.conf, unless its only nameserver is
/// systemd-resolved's stub (127.0.0.53) and [`SYSTEMD_RESOLV_CONF`] exists: then that one.
pub fn host_resolv_conf() -> PathBuf {
    resolv_conf_of(Path::new(ETC_RESOLV_CONF), Path::new(SYSTEMD_RESOLV_CONF))
}

/// [`host_resolv_conf`] over the files `etc` and `systemd`.
pub fn resolv_conf_of(etc: &Path, systemd: &Path) -> PathBuf {
    let text = std::fs::read_to_string(etc).unwrap_or_default();
    let only_stub = ResolvConf::parse(&text).servers == [SYSTEMD_STUB];
    match only_stub && systemd.is_file() {
        true => systemd.to_path_buf(),
        false => etc.to_path_buf(),
    }
}

/// The file's identity: a change of any of these means the file was rewritten.
type Stamp = (u64, u64, i64, i64, u64);

/// The upstream servers of one resolv.conf, shared by all forwarding threads.
#[derive(Debug)]
pub struct Upstreams {
    path: PathBuf,
    port: u16,
    next: AtomicUsize,
    state: Mutex<Loaded>,
}

/// The last reading of the file.
#[derive(Debug)]
struct Loaded {
    conf: ResolvConf,
    stamp: Option<Stamp>,
    checked: Instant,
}

impl Upstreams {
    /// The servers of the resolv.conf at `path`, on port 53.
    pub fn from_file(path: &Path) -> Upstreams {
        Upstreams::with_port(path, 53)
    }

    /// The servers of `path` on `port` (tests run fake upstreams on other ports).
    pub fn with_port(path: &Path, port: u16) -> Upstreams {
        let (conf, stamp) = load(path);
        Upstreams {
            path: path.to_path_buf(),
            port,
            next: AtomicUsize::new(0),
            state: Mutex::new(Loaded {
                conf,
                stamp,
                checked: Instant::now(),
            }),
        }
    }

    /// The servers in the order to try them this time (rotated) and the timeout.
    pub fn plan(&self) -> (Vec<SocketAddr>, Duration) {
        self.plan_for(&[])
    }

    /// [`Upstreams::plan`] with a container's own servers (`own`) instead of the file's,
    /// unless `own` is empty; the file's timeout either way.
    pub fn plan_for(&self, own: &[IpAddr]) -> (Vec<SocketAddr>, Duration) {
        let conf = self.current();
        let chosen = match own.is_empty() {
            true => &conf.servers,
            false => own,
        };
        let mut servers: Vec<SocketAddr> = chosen
            .iter()
            .map(|ip| SocketAddr::new(*ip, self.port))
            .collect();
        if !servers.is_empty() {
            let start = self.next.fetch_add(1, Ordering::Relaxed) % servers.len();
            servers.rotate_left(start);
        }
        (servers, conf.timeout)
    }

    /// The configuration, re-read if the file changed since the last check.
    fn current(&self) -> ResolvConf {
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            if stamp(&self.path) != state.stamp {
                (state.conf, state.stamp) = load(&self.path);
            }
        }
        state.conf.clone()
    }
}

/// Read `path`; an unreadable file has no servers (forwarded queries then get SERVFAIL).
fn load(path: &Path) -> (ResolvConf, Option<Stamp>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    (ResolvConf::parse(&text), stamp(path))
}

/// The identity of `path`, `None` if it cannot be read.
fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.dev(),
        meta.ino(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.size(),
    ))
}

/// Ask the upstream servers (the client's `own`, else the host's) to answer `query`; the
/// answer fits `limit` bytes (a truncated UDP answer when the full one, asked again over
/// TCP, would not). `None`: nobody answered.
pub fn forward(
    query: &[u8],
    upstreams: &Upstreams,
    own: &[IpAddr],
    limit: usize,
) -> Option<Vec<u8>> {
    let client_id = query.get(..2)?;
    let (servers, timeout) = upstreams.plan_for(own);
    let mut ours = query.to_vec();
    ours[..2].copy_from_slice(&random_id().to_be_bytes());
    for server in servers {
        let Some(mut answer) = exchange(&ours, server, timeout, limit) else {
            continue;
        };
        answer[..2].copy_from_slice(client_id);
        return Some(answer);
    }
    None
}

/// One server's answer to `query`: over UDP, then over TCP if truncated and the client can
/// take more.
fn exchange(query: &[u8], server: SocketAddr, timeout: Duration, limit: usize) -> Option<Vec<u8>> {
    let answer = exchange_udp(query, server, timeout)?;
    if !is_truncated(&answer) || limit <= answer.len() {
        return Some(answer);
    }
    match exchange_tcp(query, server, timeout) {
        Some(full) if full.len() <= limit => Some(full),
        _ => Some(answer),
    }
}

/// Query `server` over UDP from a fresh socket (a random source port) connected to it, so
/// only its datagrams arrive; answers with another id are ignored.
fn exchange_udp(query: &[u8], server: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let local: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0)).ok()?;
    socket.connect(server).ok()?;
    socket.send(query).ok()?;
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65535];
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())?;
        socket.set_read_timeout(Some(left)).ok()?;
        let len = socket.recv(&mut buf).ok()?;
        if is_answer_to(&buf[..len], query) {
            buf.truncate(len);
            return Some(buf);
        }
    }
}

/// Query `server` over TCP (two-byte length prefix each way).
fn exchange_tcp(query: &[u8], server: SocketAddr, timeout: Duration) -> Option<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&server, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    write_framed(&mut stream, query).ok()?;
    let answer = read_framed(&mut stream).ok()?;
    is_answer_to(&answer, query).then_some(answer)
}

/// Write one length-prefixed DNS message.
pub fn write_framed(stream: &mut impl Write, message: &[u8]) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "message over 65535 bytes")
    })?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed)
}

/// Read one length-prefixed DNS message.
pub fn read_framed(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len)?;
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message)?;
    Ok(message)
}

/// A response (QR set) with the query's id.
fn is_answer_to(answer: &[u8], query: &[u8]) -> bool {
    answer.len() >= 12 && answer[..2] == query[..2] && answer[2] & 0x80 != 0
}

/// The TC bit.
fn is_truncated(answer: &[u8]) -> bool {
    answer.get(2).is_some_and(|flags| flags & 0x02 != 0)
}

/// An id an off-path host cannot guess (SipHash of a counter under a per-process random key).
fn random_id() -> u16 {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    RandomState::new().hash_one(n) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_and_timeout_and_skips_junk() {
        let conf = ResolvConf::parse(
            "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\n\
             nameserver 2001:db8::1\nnameserver bogus\noptions rotate timeout:30 attempts:2\n",
        );
        let servers: Vec<IpAddr> =
            vec!["10.0.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
        assert_eq!(conf.servers, servers);
        assert_eq!(conf.timeout, MAX_TIMEOUT);
        assert_eq!(ResolvConf::parse("").timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn systemd_resolved_s_stub_alone_is_swapped_for_its_servers() {
        let dir = tempfile::tempdir().unwrap();
        let (etc, systemd) = (dir.path().join("etc"), dir.path().join("systemd"));
        std::fs::write(&etc, "nameserver 127.0.0.53\noptions edns0 trust-ad\n").unwrap();
        assert_eq!(resolv_conf_of(&etc, &systemd), etc, "no systemd file: keep");
        std::fs::write(&systemd, "nameserver 192.0.2.1\n").unwrap();
        assert_eq!(resolv_conf_of(&etc, &systemd), systemd);
        std::fs::write(&etc, "nameserver 127.0.0.53\nnameserver 192.0.2.9\n").unwrap();
        assert_eq!(resolv_conf_of(&etc, &systemd), etc, "not the stub alone");
        std::fs::write(&etc, "nameserver 127.0.0.1\n").unwrap();
        assert_eq!(
            resolv_conf_of(&etc, &systemd),
            etc,
            "another loopback server"
        );
    }

    #[test]
    fn plan_rotates_the_servers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 10.0.0.1\nnameserver 10.0.0.2\n").unwrap();
        let upstreams = Upstreams::from_file(&path);
        let first = upstreams.plan().0;
        let second = upstreams.plan().0;
        assert_eq!(first.len(), 2);
        assert_eq!(first[0], second[1]);
        assert_eq!(first[0].port(), 53);
        let own: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(upstreams.plan_for(&[own]).0, [SocketAddr::new(own, 53)]);
    }

    #[test]
    fn framing_round_trips() {
        let mut wire = Vec::new();
        write_framed(&mut wire, b"hello").unwrap();
        assert_eq!(&wire[..2], &[0, 5]);
        assert_eq!(read_framed(&mut wire.as_slice()).unwrap(), b"hello");
    }

    #[test]
    fn truncated_upstream_answers_are_asked_again_over_tcp() {
        // A fake upstream on loopback: UDP answers truncated, TCP answers in full.
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            let (len, from) = udp.recv_from(&mut buf).unwrap();
            let mut answer = buf[..len].to_vec();
            answer[2] |= 0x82; // QR + TC
            udp.send_to(&answer, from).unwrap();
        });
        std::thread::spawn(move || {
            let (mut conn, _) = tcp.accept().unwrap();
            let mut answer = read_framed(&mut conn).unwrap();
            answer[2] |= 0x80;
            answer.extend_from_slice(&[0u8; 600]);
            write_framed(&mut conn, &answer).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.1\n").unwrap();
        let query = [0xab, 0xcd, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let answer = forward(&query, &Upstreams::with_port(&path, port), &[], 4096).unwrap();
        assert_eq!(&answer[..2], &[0xab, 0xcd], "the client's id is restored");
        assert_eq!(answer.len(), 12 + 600, "the full TCP answer");
    }

    #[test]
    fn a_silent_server_times_out_and_the_next_one_answers() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let live = UdpSocket::bind(("127.0.0.2", port)).unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((len, from)) = live.recv_from(&mut buf) {
                buf[2] |= 0x80;
                live.send_to(&buf[..len], from).unwrap();
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(
            &path,
            "nameserver 127.0.0.1\nnameserver 127.0.0.2\noptions timeout:1\n",
        )
        .unwrap();
        let upstreams = Upstreams::with_port(&path, port);
        let query = [0, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        // Whichever server the rotation starts with, both queries are answered.
        for _ in 0..2 {
            let answer = forward(&query, &upstreams, &[], 512).unwrap();
            assert_eq!(&answer[..3], &[0, 9, 0x81]);
        }
        drop(silent);
    }
}
