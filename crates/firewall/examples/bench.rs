//! Measures the firewall's calls. Run it as root inside a scratch network namespace that has
//! a bridge `pbr0`, never on a host's own firewall:
//! `unshare --net sh -c 'ip link add pbr0 type bridge && target/release/examples/bench'`.

use std::time::Instant;

use pelagos_firewall::{Firewall, NetworkRules, PortRule, Proto};

const ROUNDS: u32 = 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fw = Firewall::new();
    let net = NetworkRules {
        bridge: "pbr0".into(),
        subnets: vec!["10.88.0.0/24".parse()?],
        internal: false,
    };
    let started = Instant::now();
    fw.ensure_network(&net)?;
    println!("ensure_network (new table): {:?}", started.elapsed());
    let started = Instant::now();
    fw.ensure_network(&net)?;
    println!("ensure_network (again): {:?}", started.elapsed());
    let port = |p: u16| PortRule {
        host_ip: None,
        host_port: p,
        host_port_end: p,
        container_ip: "10.88.0.2"
            .parse()
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into()),
        container_port: 80,
        proto: Proto::Tcp,
    };
    let started = Instant::now();
    for i in 0..ROUNDS {
        fw.add_ports(&format!("bench{i}"), &[port(9000 + i as u16)])?;
    }
    println!("add_ports: {:?} each", started.elapsed() / ROUNDS);
    let started = Instant::now();
    for i in 0..ROUNDS {
        fw.remove_ports(&format!("bench{i}"))?;
    }
    println!("remove_ports: {:?} each", started.elapsed() / ROUNDS);
    fw.remove_network("pbr0")?;
    fw.remove_all()?;
    Ok(())
}
