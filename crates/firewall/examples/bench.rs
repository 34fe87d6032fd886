//! Measures the firewall's calls. Run it as root inside a scratch network namespace that has
//! a bridge `pbr0`, never on a host's own firewall:
//! `unshare --net sh -c 'ip link add pbr0 type bridge && target/release/examples/bench'`.

use std::time::{Duration, Instant};

use pelagos_firewall::{Firewall, NetworkRules, PortRule, Proto};

const ROUNDS: u16 = 30;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
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
    nft_path(&fw)?;
    netlink_path(&fw)?;
    fresh_sockets()?;
    fw.remove_network("pbr0")?;
    fw.remove_all()?;
    Ok(())
}

fn port(p: u16) -> PortRule {
    PortRule {
        host_ip: None,
        host_port: p,
        host_port_end: p,
        container_ip: std::net::Ipv4Addr::new(10, 88, 0, 2).into(),
        container_port: 80,
        proto: Proto::Tcp,
    }
}

/// Before: `nft -j -f -` to add, a listing then `nft -j -f -` to remove.
fn nft_path(fw: &Firewall) -> Res<()> {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let id = format!("bench{i}");
        add.push(time(|| fw.add_ports_via_nft(&id, &[port(9000 + i)]))?);
        remove.push(time(|| fw.remove_ports(&id))?);
    }
    println!(
        "nft:     add_ports {:?}, remove_ports {:?} (medians)",
        median(add),
        median(remove)
    );
    Ok(())
}

/// After: one netlink batch each way on a kept socket.
fn netlink_path(fw: &Firewall) -> Res<()> {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let id = format!("bench{i}");
        let mut published = None;
        add.push(time(|| {
            published = Some(fw.add_ports(&id, &[port(9000 + i)])?);
            Ok(())
        })?);
        let published = published.ok_or("no rules")?;
        remove.push(time(|| fw.remove_ports_known(&id, &published))?);
    }
    println!(
        "netlink: add_ports {:?}, remove_ports_known {:?} (medians)",
        median(add),
        median(remove)
    );
    Ok(())
}

/// A socket per container: what closing it right after a deletion costs.
fn fresh_sockets() -> Res<()> {
    let (mut close_after_add, mut close_after_remove) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        let id = format!("fresh{i}");
        let fw = Firewall::new();
        let published = fw.add_ports(&id, &[port(9000 + i)])?;
        let started = Instant::now();
        drop(fw);
        close_after_add.push(started.elapsed());
        let fw = Firewall::new();
        fw.remove_ports_known(&id, &published)?;
        let started = Instant::now();
        drop(fw);
        close_after_remove.push(started.elapsed());
    }
    println!(
        "socket close: after an addition {:?}, after a deletion {:?} (medians)",
        median(close_after_add),
        median(close_after_remove)
    );
    Ok(())
}

fn time(f: impl FnOnce() -> Result<(), pelagos_firewall::Error>) -> Res<Duration> {
    let started = Instant::now();
    f()?;
    Ok(started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}
