//! The `features` report of runtime-spec: what this runtime build supports.

use serde_json::{json, Value};

pub fn features() -> Value {
    let mount_options = crate::mount_opts::known_options();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": crate::OCI_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": mount_options,
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<std::collections::BTreeSet<_>>(),
            "cgroup": { "v1": false, "v2": true, "systemd": false, "systemdUser": false, "rdma": true },
            "seccomp": {
                "enabled": true,
                "actions": pelagos_seccomp::supported_actions(),
                "operators": pelagos_seccomp::supported_operators(),
                "archs": pelagos_seccomp::supported_archs(),
                "knownFlags": pelagos_seccomp::known_flags(),
                "supportedFlags": pelagos_seccomp::supported_flags(),
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } },
        },
        "annotations": {
            "io.github.pelagos.version": env!("CARGO_PKG_VERSION"),
            "run.pelagos.cgroup.skip-unavailable": "true opts out of limits the host's cgroup v2 tree cannot enforce",
        },
    })
}
