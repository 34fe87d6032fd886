//! IPAM against a real store: 200 concurrent allocations from separate processes (this test
//! binary re-run as a child) and from threads never share an address or host port;
//! exhaustion, release, reconcile, names for the resolver, removal refused while leased.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};

use pelagos_network::create::IpamConfigRequest;
use pelagos_network::{
    EndpointRequest, Error, HostPorts, NetworkCreate, NetworkCreateRequest, NetworkRecord,
    Networks, Protocol,
};

/// Set in a child: the root to allocate in.
const CHILD_ROOT: &str = "PELAGOS_NETWORK_TEST_CHILD_ROOT";
/// Set in a child: the container id to allocate for.
const CHILD_ID: &str = "PELAGOS_NETWORK_TEST_CHILD_ID";

fn create(networks: &Networks, name: &str, subnet: &str, ipv6: bool) -> NetworkRecord {
    let request = NetworkCreateRequest {
        name: name.into(),
        enable_ipv6: ipv6,
        ipam: pelagos_network::create::IpamRequest {
            config: vec![IpamConfigRequest {
                subnet: subnet.into(),
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    };
    networks
        .create(&NetworkCreate::parse(request).unwrap(), &[])
        .unwrap()
}

fn endpoint(id: &str, name: &str) -> EndpointRequest {
    EndpointRequest {
        container_id: id.into(),
        name: name.into(),
        ..Default::default()
    }
}

/// In a child process: one lease and one ephemeral host port. In the parent run: nothing.
#[test]
fn child_allocates() {
    let (Ok(root), Ok(id)) = (std::env::var(CHILD_ROOT), std::env::var(CHILD_ID)) else {
        return;
    };
    let root = Path::new(&root);
    let networks = Networks::open(root).unwrap();
    let net = networks.get("conc").unwrap();
    networks.allocate(&net, &endpoint(&id, &id[..8])).unwrap();
    let ports = HostPorts::with_range(root, 30000..=30999).unwrap();
    let any: IpAddr = "0.0.0.0".parse().unwrap();
    ports
        .allocate_host_port(&id, Protocol::Tcp, any, 80)
        .unwrap();
}

/// Kills children left running when the test fails midway.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn two_hundred_processes_get_distinct_addresses_and_ports() {
    let dir = tempfile::tempdir().unwrap();
    let networks = Networks::open(dir.path()).unwrap();
    let net = create(&networks, "conc", "10.77.0.0/16", false);
    let exe = std::env::current_exe().unwrap();
    let mut children = Children(Vec::new());
    for i in 0..200u32 {
        let child = Command::new(&exe)
            .args(["--exact", "child_allocates", "--test-threads=1", "--quiet"])
            .env(CHILD_ROOT, dir.path())
            .env(CHILD_ID, format!("{i:064x}"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        children.0.push(child);
    }
    while let Some(child) = children.0.pop() {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "a child failed ({}): {stdout}{stderr}",
            out.status
        );
    }
    let leases = networks.leases(&net).unwrap();
    assert_eq!(leases.len(), 200);
    let ips: HashSet<_> = leases.iter().map(|l| l.ipv4).collect();
    let macs: HashSet<_> = leases.iter().map(|l| l.mac).collect();
    assert_eq!((ips.len(), macs.len()), (200, 200));
    // First free: exactly .2 to .201, whatever the order.
    let expected: HashSet<_> = (2..=201u32)
        .map(|n| std::net::Ipv4Addr::from(u32::from_be_bytes([10, 77, 0, 0]) + n))
        .collect();
    assert_eq!(ips, expected);
    let ports = HostPorts::with_range(dir.path(), 30000..=30999).unwrap();
    let published: HashSet<u16> = ports.list().unwrap().iter().map(|p| p.host_port).collect();
    assert_eq!(published.len(), 200);
}

#[test]
fn threads_get_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let networks = Networks::open(dir.path()).unwrap();
    let net = create(&networks, "threads", "10.78.0.0/24", false);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (networks, net) = (networks.clone(), net.clone());
            s.spawn(move || {
                for i in 0..25 {
                    let id = format!("{t:02}{i:062}");
                    networks.allocate(&net, &endpoint(&id, &id)).unwrap();
                }
            });
        }
    });
    let leases = networks.leases(&net).unwrap();
    let ips: HashSet<_> = leases.iter().map(|l| l.ipv4).collect();
    assert_eq!((leases.len(), ips.len()), (200, 200));
    // Release half from threads, then the freed addresses are leased again.
    std::thread::scope(|s| {
        for lease in leases.iter().step_by(2) {
            let (networks, net) = (&networks, &net);
            s.spawn(move || networks.release(net, &lease.container_id).unwrap());
        }
    });
    assert_eq!(networks.leases(&net).unwrap().len(), 100);
    for i in 0..100 {
        networks
            .allocate(&net, &endpoint(&format!("again{i}"), "x"))
            .unwrap();
    }
    let ips: HashSet<_> = networks
        .leases(&net)
        .unwrap()
        .iter()
        .map(|l| l.ipv4)
        .collect();
    assert_eq!(ips.len(), 200);
}

#[test]
fn exhaustion_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let networks = Networks::open(dir.path()).unwrap();
    let net = create(&networks, "tiny", "10.88.0.0/29", false);
    for i in 0..5 {
        networks
            .allocate(&net, &endpoint(&format!("c{i}"), "c"))
            .unwrap();
    }
    let e = networks.allocate(&net, &endpoint("c5", "c")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no available IPv4 addresses on this network's address pools: tiny (10.88.0.0/29)"
    );
    assert_eq!(e.kind(), pelagos_model::ErrorKind::Conflict);
}

#[test]
fn lease_lifecycle_names_and_removal() {
    let dir = tempfile::tempdir().unwrap();
    let networks = Networks::open(dir.path()).unwrap();
    let net = create(&networks, "app", "10.66.0.0/24", true);
    let db_id = "d".repeat(64);
    let mut db = endpoint(&db_id, "db");
    db.aliases = vec!["Postgres".into()];
    db.ipv4 = Some("10.66.0.50".parse().unwrap());
    let lease = networks.allocate(&net, &db).unwrap();
    assert_eq!(lease.ipv4.to_string(), "10.66.0.50");
    assert_eq!(lease.mac.to_string(), "02:42:0a:42:00:32");
    let v6 = lease.ipv6.expect("an IPv6 network leases IPv6 too");
    assert!(net.ipv6_pool().unwrap().subnet.contains(&IpAddr::V6(v6)));
    assert!(matches!(
        networks.allocate(&net, &db),
        Err(Error::EndpointExists { .. })
    ));
    let mut clash = endpoint("e", "web");
    clash.ipv4 = Some("10.66.0.50".parse().unwrap());
    assert_eq!(
        networks.allocate(&net, &clash).unwrap_err().to_string(),
        "Address already in use"
    );
    let web = networks.allocate(&net, &endpoint("e", "web")).unwrap();
    assert_eq!(web.ipv4.to_string(), "10.66.0.2");

    let view = networks.endpoints(&net).unwrap();
    assert_eq!(view[&db_id].ipv4_address, "10.66.0.50/24");
    assert!(view[&db_id].ipv6_address.ends_with("/64"));
    let inspect = serde_json::to_value(net.resource(view)).unwrap();
    assert_eq!(inspect["Containers"][&db_id]["Name"], "db");
    assert_eq!(inspect["IPAM"]["Config"][0]["Subnet"], "10.66.0.0/24");

    let e = networks.remove("app").unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "error while removing network: network app id {} has active endpoints",
            net.id
        )
    );
    let gone = networks.reconcile(&net, &|id| id == "e").unwrap();
    assert_eq!(gone.len(), 1);
    assert_eq!(networks.release(&net, "e").unwrap().unwrap().name, "web");
    assert!(networks.release(&net, "e").unwrap().is_none());
    networks.remove("app").unwrap();
    assert!(matches!(
        networks.allocate(&net, &endpoint("f", "f")),
        Err(Error::NotFound(_))
    ));
}
