//! Ids, names and times of containers and volumes: 64-hex random ids, Docker's name rule,
//! generated names, RFC 3339 timestamps.

use crate::error::{Error, Result};

const ADJECTIVES: [&str; 24] = [
    "azure", "brave", "calm", "deep", "eager", "fair", "gentle", "happy", "icy", "jolly", "keen",
    "lucid", "merry", "noble", "quiet", "rapid", "salty", "tidal", "vivid", "wise", "bold",
    "clever", "dreamy", "swift",
];
const CREATURES: [&str; 24] = [
    "albatross",
    "barracuda",
    "cuttlefish",
    "dolphin",
    "eel",
    "flounder",
    "grouper",
    "halibut",
    "jellyfish",
    "krill",
    "lobster",
    "marlin",
    "narwhal",
    "octopus",
    "pelican",
    "queenfish",
    "ray",
    "sardine",
    "tuna",
    "urchin",
    "walrus",
    "wrasse",
    "seal",
    "orca",
];

/// 64 random hex characters, as Docker's container ids.
pub fn new_id() -> Result<String> {
    let mut bytes = [0u8; 32];
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::io("getrandom", e.into())),
        }
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh container id.
pub fn new_container_id() -> Result<pelagos_container::ContainerId> {
    Ok(pelagos_container::ContainerId::parse(&new_id()?)?)
}

/// Docker's rule for container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        // Docker's daemon words for each kind.
        let allowed = "[a-zA-Z0-9][a-zA-Z0-9_.-]";
        Err(Error::Invalid(match kind {
            "container" => format!("Invalid container name ({name}), only {allowed} are allowed"),
            "volume" => format!(
                "{name:?} includes invalid characters for a local volume name, only \
                 {allowed:?} are allowed. If you intended to pass a host directory, use \
                 absolute path"
            ),
            _ => format!("invalid {kind} name {name:?}: only {allowed} are allowed"),
        }))
    }
}

/// Docker's rule for container names.
pub fn validate_name(name: &str) -> Result<()> {
    check_name("container", name)
}

/// Current time in RFC 3339 with nanoseconds, as Docker prints it.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()
}

/// A free generated name (`adjective_creature`), derived from the id.
pub fn generate_name(id: &str, taken: impl Fn(&str) -> bool) -> String {
    let seed = u64::from_str_radix(id.get(..16).unwrap_or("0"), 16).unwrap_or(0);
    for attempt in 0..ADJECTIVES.len() as u64 * CREATURES.len() as u64 {
        let n = seed.wrapping_add(attempt.wrapping_mul(7919));
        let name = format!(
            "{}_{}",
            ADJECTIVES[(n % ADJECTIVES.len() as u64) as usize],
            CREATURES[((n / ADJECTIVES.len() as u64) % CREATURES.len() as u64) as usize]
        );
        if !taken(&name) {
            return name;
        }
    }
    format!("pelagos_{}", id.get(..12).unwrap_or(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id().unwrap());
    }

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate_name("web-1.a_b").is_ok());
        for bad in ["", "a", "-x", "a/b", "a b", "ä1"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        let n = generate_name(&new_id().unwrap(), |_| false);
        assert!(n.contains('_'));
    }
}
