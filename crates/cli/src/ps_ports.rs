//! `ps`'s PORTS column as Docker's CLI writes it (`formatter.DisplayablePorts`): published
//! ports `0.0.0.0:8080->80/tcp`, runs of equal mappings grouped (`0.0.0.0:80-81->80-81/tcp`).

use pelagos_engine::container::list::SummaryPort;

/// A run of consecutive private ports sharing a key (`tcp` or `IP/tcp`).
struct Group {
    key: String,
    first: u16,
    last: u16,
}

/// The column's text for a container's ports.
pub fn displayable_ports(ports: &[SummaryPort]) -> String {
    let mut sorted: Vec<&SummaryPort> = ports.iter().collect();
    sorted.sort_by(|a, b| {
        (a.private_port, &a.ip, a.public_port, &a.kind).cmp(&(
            b.private_port,
            &b.ip,
            b.public_port,
            &b.kind,
        ))
    });
    let mut groups: Vec<Group> = Vec::new();
    let mut closed = Vec::new();
    let mut mappings = Vec::new();
    for port in sorted {
        let current = port.private_port;
        let mut key = port.kind.clone();
        if !port.ip.is_empty() {
            let public = port.public_port.unwrap_or(0);
            if public != current {
                let host = join_host_port(&port.ip, public);
                mappings.push(format!("{host}->{current}/{}", port.kind));
                continue;
            }
            key = format!("{}/{}", port.ip, port.kind);
        }
        match groups.iter_mut().find(|g| g.key == key) {
            None => groups.push(Group {
                key,
                first: current,
                last: current,
            }),
            Some(g) if g.last.checked_add(1) == Some(current) => g.last = current,
            Some(g) => {
                closed.push(form_group(&g.key, g.first, g.last));
                (g.first, g.last) = (current, current);
            }
        }
    }
    closed.extend(groups.iter().map(|g| form_group(&g.key, g.first, g.last)));
    closed.extend(mappings);
    closed.join(", ")
}

fn form_group(key: &str, first: u16, last: u16) -> String {
    let (ip, kind) = key.rsplit_once('/').unwrap_or(("", key));
    let mut group = first.to_string();
    if first != last {
        group = format!("{group}-{last}");
    }
    if !ip.is_empty() {
        group = format!("{ip}:{group}->{group}");
    }
    format!("{group}/{kind}")
}

/// Go's `net.JoinHostPort`.
fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: &str, private: u16, public: Option<u16>) -> SummaryPort {
        SummaryPort {
            ip: ip.into(),
            private_port: private,
            public_port: public,
            kind: "tcp".into(),
        }
    }

    #[test]
    fn ports_read_as_in_dockers_ps() {
        assert_eq!(displayable_ports(&[]), "");
        assert_eq!(
            displayable_ports(&[port("0.0.0.0", 80, Some(8080))]),
            "0.0.0.0:8080->80/tcp"
        );
        let same = [port("0.0.0.0", 81, Some(81)), port("0.0.0.0", 80, Some(80))];
        assert_eq!(displayable_ports(&same), "0.0.0.0:80-81->80-81/tcp");
        let exposed = [
            port("", 443, None),
            port("::", 80, Some(32768)),
            port("", 444, None),
        ];
        assert_eq!(
            displayable_ports(&exposed),
            "443-444/tcp, [::]:32768->80/tcp"
        );
    }
}
