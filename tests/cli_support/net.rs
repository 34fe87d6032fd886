//! What the network tests share: an env whose pelagos runs in a network namespace of the
//! test's own, and looks at containers, leases and pelagos's nft table from there.

use pelagos_network::Networks;

use super::{Env, Served};

/// busybox pulled in the test's own namespace, then an env whose pelagos runs in a new one.
pub fn setup() -> (Served, Env, String) {
    let (served, env, image) = super::served_busybox();
    (served, env.in_new_netns(), image)
}

/// `inspect --format FORMAT NAME`, trimmed.
pub fn inspect(env: &Env, name: &str, format: &str) -> String {
    env.ok(&["inspect", "--format", format, name])
        .trim()
        .to_string()
}

/// The container's full id.
pub fn full_id(env: &Env, name: &str) -> String {
    inspect(env, name, "{{.Id}}")
}

/// `run -d --name NAME EXTRA… IMAGE sleep 1000`; the container's full id.
pub fn run_sleeper(env: &Env, image: &str, name: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sleep", "1000"]);
    env.ok(&args);
    full_id(env, name)
}

/// The containers holding a lease on network `name` in the env's store.
pub fn leases(env: &Env, name: &str) -> Vec<String> {
    let networks = Networks::open(&env.root).unwrap();
    let network = networks.get(name).unwrap();
    networks
        .leases(&network)
        .unwrap()
        .into_iter()
        .map(|l| l.container_id)
        .collect()
}

/// pelagos's nft table in the holder's namespace (empty without it).
pub fn nft_table(env: &Env) -> String {
    let out = env
        .holder()
        .cmd("nft")
        .args(["list", "table", "inet", "pelagos"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Kills container `id`'s monitor with SIGKILL and waits until the monitor and the
/// container's init (which dies with it: parent-death signal) are gone or zombies.
pub fn kill_monitor(env: &Env, id: &str) {
    let path = env.root.join("containers").join(id).join("container.json");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let monitor = record["state"]["owner"]["pid"].as_i64().unwrap() as i32;
    let container = record["state"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on a pid this test's pelagos started (the container's monitor).
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    let dead = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true)
    };
    super::wait_for("the monitor and its container to die", || {
        dead(monitor) && dead(container)
    });
}
