//! How long `attach_container` takes, for information: a bridge in a fresh namespace, then
//! ROUNDS containers (fresh namespaces) attached and detached one at a time. Run as root:
//! `cargo run --release -p pelagos-netlink --example attach_bench [ROUNDS]`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use common::Netns;
use pelagos_netlink::{sysctl, Attachment, Netlink};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rounds: usize = std::env::args().nth(1).map_or(Ok(20), |n| n.parse())?;
    let host = Netns::new();
    let containers: Vec<Netns> = (0..rounds).map(|_| Netns::new()).collect();
    let mut times = host.run(|| measure(&containers))?;
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "attach_container over {rounds} rounds: min {:?}, median {:?}, max {:?}, mean {:?}",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1],
        total / rounds as u32,
    );
    Ok(())
}

/// Attaches each container in turn (from the host namespace's thread) and detaches it.
fn measure(containers: &[Netns]) -> Result<Vec<Duration>, pelagos_netlink::Error> {
    let mut netlink = Netlink::open()?;
    let bridge = netlink.ensure_bridge("pbench0", None)?;
    sysctl::set_ipv6_disabled("pbench0", false)?;
    netlink.add_address(bridge, "10.93.0.1/16".parse().expect("subnet"))?;
    netlink.add_address(bridge, "fd93::1/64".parse().expect("subnet"))?;
    let mut times = Vec::with_capacity(containers.len());
    for (round, container) in containers.iter().enumerate() {
        let attachment = Attachment {
            bridge: "pbench0".to_owned(),
            host_veth_name: format!("pbv{round}"),
            container_ifname: "eth0".to_owned(),
            mac: Some([0x02, 0x42, 10, 93, 0, 2]),
            addrs: vec![
                "10.93.0.2/16".parse().expect("address"),
                "fd93::2/64".parse().expect("address"),
            ],
            gateways: vec![
                "10.93.0.1".parse().expect("gateway"),
                "fd93::1".parse().expect("gateway"),
            ],
            mtu: None,
        };
        let start = Instant::now();
        netlink.attach_container(container.fd.as_fd(), &attachment)?;
        times.push(start.elapsed());
        netlink.detach_container(&attachment.host_veth_name)?;
    }
    Ok(times)
}
