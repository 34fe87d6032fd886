//! The container's capabilities: Docker's default set, `--privileged`, and `CapAdd`/`CapDrop`
//! with moby's arithmetic (`TweakCapabilities`).

use std::collections::BTreeSet;

use pelagos_model::config::HostConfig;
use pelagos_model::security::{capability_name, is_all, ALL_CAPABILITIES};
use pelagos_model::Result;

/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// `--privileged` is every capability; `--cap-add ALL` is every capability except those
/// dropped; else `--cap-drop ALL` keeps only the added ones; else the defaults minus the
/// dropped plus the added (an add wins over a drop of the same one). Sorted names.
pub fn capabilities(host: &HostConfig) -> Result<Vec<String>> {
    let all = || ALL_CAPABILITIES.iter().map(|c| c.to_string());
    if host.privileged {
        return Ok(all().collect());
    }
    let names = |list: &[String]| -> Result<BTreeSet<String>> {
        list.iter()
            .filter(|c| !is_all(c))
            .map(|c| capability_name(c))
            .collect()
    };
    let drops = names(&host.cap_drop)?;
    let adds = names(&host.cap_add)?;
    let set: BTreeSet<String> = if host.cap_add.iter().any(|c| is_all(c)) {
        all().filter(|c| !drops.contains(c)).collect()
    } else if host.cap_drop.iter().any(|c| is_all(c)) {
        adds
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .chain(adds)
            .collect()
    };
    Ok(set.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::tests::strings;

    #[test]
    fn capability_arithmetic() {
        let mut h = HostConfig::default();
        assert_eq!(capabilities(&h).unwrap().len(), 14);
        h.cap_drop = strings(&["ALL"]);
        h.cap_add = strings(&["net_admin", "CAP_CHOWN"]);
        assert_eq!(
            capabilities(&h).unwrap(),
            strings(&["CAP_CHOWN", "CAP_NET_ADMIN"])
        );
        h.cap_add = strings(&["CAP_NOPE"]);
        assert!(capabilities(&h)
            .unwrap_err()
            .to_string()
            .contains("CAP_NOPE"));
        h.cap_drop = strings(&["mknod"]);
        h.cap_add.clear();
        assert!(!capabilities(&h).unwrap().contains(&"CAP_MKNOD".to_string()));
        // With ALL added, drops still apply (Docker's TweakCapabilities).
        h.cap_add = strings(&["ALL"]);
        h.cap_drop = strings(&["sys_admin", "CAP_NET_RAW"]);
        let caps = capabilities(&h).unwrap();
        assert_eq!(caps.len(), ALL_CAPABILITIES.len() - 2);
        assert!(!caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(caps.contains(&"CAP_SYS_PTRACE".to_string()));
        // An add wins over a drop of the same capability.
        h.cap_add = strings(&["NET_RAW"]);
        h.cap_drop = strings(&["net_raw", "chown"]);
        let caps = capabilities(&h).unwrap();
        assert!(caps.contains(&"CAP_NET_RAW".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        // A bad name in a drop is refused even with ALL added.
        h.cap_add = strings(&["ALL"]);
        h.cap_drop = strings(&["CAP_NOPE"]);
        assert!(capabilities(&h).is_err());
        h.privileged = true;
        assert_eq!(capabilities(&h).unwrap().len(), ALL_CAPABILITIES.len());
    }
}
