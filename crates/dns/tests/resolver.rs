//! End to end: the `pelagos-dns` binary in a network namespace the test creates, listening
//! on addresses added to its `lo` (this kernel has no dummy links), forwarding to a fake upstream in the same namespace, asked
//! with queries built by hickory-proto over UDP and TCP.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use pelagos_dns::names::{self, Entry, Names};
use pelagos_dns::pidfile::{self, Status};

/// The resolver's addresses on the test namespace's `lo`.
const LISTEN4: Ipv4Addr = Ipv4Addr::new(10, 89, 0, 1);
const LISTEN6: Ipv6Addr = Ipv6Addr::new(0xfd89, 0, 0, 0, 0, 0, 0, 1);
/// The fake upstream's address and its one answer.
const UPSTREAM: Ipv4Addr = Ipv4Addr::new(10, 89, 1, 53);
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// How long a test waits for something before failing (never asserted on).
const PATIENCE: Duration = Duration::from_secs(20);

/// A network namespace held by `unshare --net sleep infinity`, killed on drop.
struct NetNs {
    holder: Child,
}

impl NetNs {
    /// A namespace with `lo` up, carrying the listen and upstream addresses.
    fn new() -> NetNs {
        let holder = Command::new("unshare")
            .args(["--net", "sleep", "infinity"])
            .spawn()
            .expect("unshare");
        let ns = NetNs { holder };
        ns.wait_until_unshared();
        for args in [
            "link set lo up",
            "addr add 10.89.0.1/24 dev lo",
            "addr add 10.89.1.53/24 dev lo",
            "-6 addr add fd89::1/128 dev lo",
        ] {
            ns.ip(args);
        }
        ns
    }

    /// `/proc/<holder>/ns/net`.
    fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/ns/net", self.holder.id()))
    }

    /// Wait until the holder is in its own namespace (unshare has run).
    fn wait_until_unshared(&self) {
        let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
        let deadline = Instant::now() + PATIENCE;
        while std::fs::read_link(self.path())
            .ok()
            .is_none_or(|theirs| theirs == ours)
        {
            assert!(Instant::now() < deadline, "unshare --net did not start");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Run `ip ARGS` in the namespace.
    fn ip(&self, args: &str) {
        let status = self
            .command("ip")
            .args(args.split_whitespace())
            .status()
            .expect("nsenter ip");
        assert!(status.success(), "ip {args}: {status}");
    }

    /// `program` run in the namespace (nsenter execs it: the child's pid is the program's).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.path().display()))
            .arg(program);
        command
    }

    /// Run `work` on a thread that joined the namespace.
    fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let ns = File::open(self.path()).expect("open netns");
        std::thread::spawn(move || {
            setns(&ns, CloneFlags::CLONE_NEWNET).expect("setns");
            work()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// A UDP responder on `UPSTREAM:53` answering every query with `UPSTREAM_ANSWER`.
struct FakeUpstream {
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
}

impl FakeUpstream {
    fn start(ns: &NetNs) -> FakeUpstream {
        let socket = ns.run(|| UdpSocket::bind((UPSTREAM, 53)).expect("bind fake upstream"));
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let (stop2, queries2) = (Arc::clone(&stop), Arc::clone(&queries));
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                queries2.fetch_add(1, Ordering::Relaxed);
                let _ = socket.send_to(&upstream_answer(&buf[..len]), from);
            }
        });
        FakeUpstream { stop, queries }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The fake upstream's answer to `packet`.
fn upstream_answer(packet: &[u8]) -> Vec<u8> {
    let query = Message::from_vec(packet).unwrap();
    let mut answer = Message::new();
    answer
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_recursion_available(true);
    for q in query.queries() {
        answer.add_query(q.clone());
        let rdata = RData::A(A(UPSTREAM_ANSWER));
        answer.add_answer(Record::from_rdata(q.name().clone(), 60, rdata));
    }
    answer.to_vec().unwrap()
}

/// A running resolver, killed on drop if still running.
struct Resolver {
    child: Child,
    pidfile: PathBuf,
}

impl Resolver {
    /// Start `pelagos-dns` in `ns` and wait until its pid file says it is bound.
    fn start(ns: &NetNs, dir: &Path, extra: &[&str]) -> Resolver {
        let resolv = dir.join("resolv.conf");
        std::fs::write(
            &resolv,
            // The resolver's longest wait for an upstream: on a loaded machine the fake
            // upstream's thread may answer late, which is not what these tests are about.
            format!("nameserver {UPSTREAM}\noptions timeout:5\n"),
        )
        .unwrap();
        let pidfile = dir.join("dns.pid");
        let child = ns
            .command(env!("CARGO_BIN_EXE_pelagos-dns"))
            .arg(format!("--listen={LISTEN4},{LISTEN6}"))
            .arg("--names")
            .arg(names::path(dir))
            .arg("--upstream-from")
            .arg(&resolv)
            .arg("--pidfile")
            .arg(&pidfile)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn pelagos-dns");
        let mut resolver = Resolver { child, pidfile };
        resolver.wait_until_bound();
        resolver
    }

    fn wait_until_bound(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("pelagos-dns exited before binding: {status}");
            }
            if pidfile::status(&self.pidfile).unwrap() == Status::Running(self.child.id()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "pelagos-dns never wrote its pid file"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Wait for the process to exit by itself.
    fn wait_for_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "pelagos-dns did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resident set size in KiB.
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The query for `name`/`kind` as bytes.
fn query_bytes(name: &str, kind: RecordType) -> Vec<u8> {
    let mut message = Message::new();
    message.set_id(0x4242).set_recursion_desired(true);
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
    message.to_vec().unwrap()
}

/// Ask the resolver at `server` over UDP from inside `ns`.
fn ask_udp(ns: &NetNs, server: IpAddr, name: &str, kind: RecordType) -> Message {
    let query = query_bytes(name, kind);
    let bytes = ns.run(move || {
        let local: IpAddr = if server.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            Ipv6Addr::UNSPECIFIED.into()
        };
        let socket = UdpSocket::bind((local, 0)).unwrap();
        socket.set_read_timeout(Some(PATIENCE)).unwrap();
        socket.send_to(&query, SocketAddr::new(server, 53)).unwrap();
        let mut buf = vec![0u8; 4096];
        let len = socket.recv(&mut buf).expect("no answer over UDP");
        buf.truncate(len);
        buf
    });
    Message::from_vec(&bytes).unwrap()
}

/// Ask the resolver at `LISTEN4` over TCP from inside `ns`.
fn ask_tcp(ns: &NetNs, name: &str, kind: RecordType) -> Message {
    let query = query_bytes(name, kind);
    let bytes = ns.run(move || {
        let mut stream = TcpStream::connect((LISTEN4, 53)).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&query);
        stream.write_all(&framed).unwrap();
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).unwrap();
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer).unwrap();
        answer
    });
    Message::from_vec(&bytes).unwrap()
}

/// The addresses in an answer.
fn addresses(answer: &Message) -> Vec<IpAddr> {
    answer
        .answers()
        .iter()
        .filter_map(|record| match record.data() {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

fn v4(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A network with `db` (aliases `database`, v4 and v6) and `web` (v4 only).
fn two_containers() -> Names {
    let db = Entry::container(
        "0123456789abcdef0123456789abcdef",
        "db",
        &["database".to_string()],
        vec![Ipv4Addr::new(10, 89, 0, 2)],
        vec!["fd89::2".parse().unwrap()],
    );
    let web = Entry::container(
        "fedcba9876543210",
        "web",
        &[],
        vec![Ipv4Addr::new(10, 89, 0, 3)],
        vec![],
    );
    Names {
        domain: Some("dns.pelagos".into()),
        entries: vec![db, web],
    }
}

#[test]
fn names_aliases_and_ids_resolve_and_the_rest_is_forwarded() {
    let ns = NetNs::new();
    let upstream = FakeUpstream::start(&ns);
    let dir = tempfile::tempdir().unwrap();
    names::write(dir.path(), &two_containers()).unwrap();
    let resolver = Resolver::start(&ns, dir.path(), &[]);

    for name in [
        "db",
        "DB.",
        "database",
        "0123456789ab",
        "db.dns.pelagos.",
        "Database.DNS.Pelagos",
    ] {
        let answer = ask_udp(&ns, LISTEN4.into(), name, RecordType::A);
        assert_eq!(addresses(&answer), [v4("10.89.0.2")], "A {name}");
    }
    let aaaa = ask_udp(&ns, LISTEN6.into(), "db", RecordType::AAAA);
    assert_eq!(
        addresses(&aaaa),
        [v4("fd89::2")],
        "AAAA over the IPv6 listener"
    );
    let no_v6 = ask_udp(&ns, LISTEN4.into(), "web", RecordType::AAAA);
    assert_eq!(
        (no_v6.response_code(), no_v6.answers().len()),
        (ResponseCode::NoError, 0)
    );
    assert_eq!(
        addresses(&ask_tcp(&ns, "web", RecordType::A)),
        [v4("10.89.0.3")],
        "over TCP"
    );
    assert_eq!(
        upstream.queries.load(Ordering::Relaxed),
        0,
        "container names never go upstream"
    );

    let forwarded = ask_udp(&ns, LISTEN4.into(), "example.com.", RecordType::A);
    assert_eq!(forwarded.id(), 0x4242);
    assert_eq!(addresses(&forwarded), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert_eq!(
        addresses(&ask_tcp(&ns, "www.example.org", RecordType::A)),
        [IpAddr::V4(UPSTREAM_ANSWER)]
    );
    assert_eq!(upstream.queries.load(Ordering::Relaxed), 2);

    let ptr = ask_udp(
        &ns,
        LISTEN4.into(),
        "3.0.89.10.in-addr.arpa.",
        RecordType::PTR,
    );
    let target = ptr.answers().first().map(|r| r.data().to_string());
    assert_eq!(target.as_deref(), Some("web.dns.pelagos."));
    eprintln!("pelagos-dns RSS after serving: {} KiB", resolver.rss_kib());
}

#[test]
fn a_changed_names_file_is_seen_without_restart() {
    let ns = NetNs::new();
    let _upstream = FakeUpstream::start(&ns);
    let dir = tempfile::tempdir().unwrap();
    names::write(dir.path(), &two_containers()).unwrap();
    let _resolver = Resolver::start(&ns, dir.path(), &[]);

    let cache = Entry::container(
        "aaaabbbbccccdddd",
        "cache",
        &[],
        vec![Ipv4Addr::new(10, 89, 0, 4)],
        vec![],
    );
    names::update(dir.path(), |n| {
        n.entries.retain(|e| e.names[0] != "web");
        n.entries.push(cache);
    })
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while addresses(&ask_udp(&ns, LISTEN4.into(), "cache", RecordType::A)) != [v4("10.89.0.4")] {
        assert!(Instant::now() < deadline, "the new name never resolved");
        std::thread::sleep(Duration::from_millis(20));
    }
    let gone = ask_udp(&ns, LISTEN4.into(), "web", RecordType::A);
    assert_eq!(
        addresses(&gone),
        [IpAddr::V4(UPSTREAM_ANSWER)],
        "a removed name is forwarded"
    );
    assert_eq!(
        addresses(&ask_udp(&ns, LISTEN4.into(), "db", RecordType::A)),
        [v4("10.89.0.2")]
    );
}

#[test]
fn sigterm_exits_zero_and_releases_the_pid_file() {
    let ns = NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    names::write(dir.path(), &two_containers()).unwrap();
    let mut resolver = Resolver::start(&ns, dir.path(), &[]);
    kill(Pid::from_raw(resolver.child.id() as i32), Signal::SIGTERM).unwrap();
    let status = resolver.wait_for_exit();
    assert_eq!((status.code(), status.signal()), (Some(0), None));
    assert_eq!(
        pidfile::status(&resolver.pidfile).unwrap(),
        Status::NotRunning
    );
    // The port is free again: a second resolver binds it.
    let _again = Resolver::start(&ns, dir.path(), &[]);
}

#[test]
fn exit_when_empty_stops_after_the_last_container_leaves() {
    let ns = NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    names::write(dir.path(), &two_containers()).unwrap();
    let mut resolver = Resolver::start(&ns, dir.path(), &["--exit-when-empty"]);

    names::update(dir.path(), |n| n.entries.truncate(1)).unwrap();
    assert_eq!(
        addresses(&ask_udp(&ns, LISTEN4.into(), "db", RecordType::A)),
        [v4("10.89.0.2")]
    );
    assert!(
        resolver.child.try_wait().unwrap().is_none(),
        "one container left: still serving"
    );

    names::update(dir.path(), |n| n.entries.clear()).unwrap();
    let status = resolver.wait_for_exit();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        pidfile::status(&resolver.pidfile).unwrap(),
        Status::NotRunning
    );
}

#[test]
fn a_second_resolver_on_the_same_pid_file_refuses_to_start() {
    let ns = NetNs::new();
    let dir = tempfile::tempdir().unwrap();
    names::write(dir.path(), &two_containers()).unwrap();
    let first = Resolver::start(&ns, dir.path(), &[]);
    let output = ns
        .command(env!("CARGO_BIN_EXE_pelagos-dns"))
        .arg(format!("--listen={LISTEN4}"))
        .arg("--port=5353")
        .arg("--names")
        .arg(names::path(dir.path()))
        .arg("--pidfile")
        .arg(&first.pidfile)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("another pelagos-dns is running"),
        "{stderr}"
    );
    assert_eq!(
        pidfile::status(&first.pidfile).unwrap(),
        Status::Running(first.child.id())
    );
}
