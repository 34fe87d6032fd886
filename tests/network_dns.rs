//! Containers finding each other by name on user networks (`pelagos-dns`, one resolver per
//! network started by the monitors), every test inside a network namespace it made: names,
//! aliases and short ids resolve on the network and nowhere else, the default bridge resolves
//! none, and the resolver goes with the network's last container, also after a monitor was
//! killed with SIGKILL.

mod cli_support;

use std::path::PathBuf;

use cli_support::net::{inspect, kill_monitor, setup};
use cli_support::{wait_for, Env};
use pelagos_dns::pidfile::{self, Status};
use pelagos_network::Networks;

/// Kills, when dropped (a failed test too), every resolver still running for the env's
/// networks: processes this test's pelagos started, found by their pid files.
struct Resolvers<'a>(&'a Env);

impl Resolvers<'_> {
    /// The resolver directory of network `name`.
    fn dir(&self, name: &str) -> PathBuf {
        let networks = Networks::open(&self.0.root).unwrap();
        let network = networks.get(name).unwrap();
        networks.dir_of(&network).join(pelagos_dns::DIR_NAME)
    }

    fn status(&self, name: &str) -> Status {
        pidfile::status(&self.dir(name).join(pelagos_dns::PID_FILE_NAME)).unwrap()
    }

    /// The ids in the names file of network `name`.
    fn names(&self, name: &str) -> Vec<String> {
        let names = pelagos_dns::names::read(&self.dir(name)).unwrap();
        names.entries.into_iter().map(|e| e.id).collect()
    }

    /// Waits until network `name` has no resolver: its pid file unlocked, its process gone.
    fn wait_gone(&self, name: &str, pid: u32) {
        wait_for("the resolver to exit", || {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z"));
            self.status(name) == Status::NotRunning && !alive
        });
    }
}

impl Drop for Resolvers<'_> {
    fn drop(&mut self) {
        let Ok(dirs) = std::fs::read_dir(self.0.root.join("networks")) else {
            return;
        };
        for dir in dirs.flatten() {
            let pid_file = dir
                .path()
                .join(pelagos_dns::DIR_NAME)
                .join(pelagos_dns::PID_FILE_NAME);
            if let Ok(Status::Running(pid)) = pidfile::status(&pid_file) {
                // SAFETY: kill(2) on a resolver this test's pelagos started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

fn run_sleeper(env: &Env, image: &str, name: &str, network: &str, extra: &[&str]) -> String {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "sleep", "1000"]);
    env.ok(&args);
    inspect(env, name, "{{.Id}}")
}

/// `nslookup NAME` from a new container on `network`: its output and whether it succeeded.
fn nslookup(env: &Env, image: &str, network: &str, name: &str) -> (bool, String) {
    let out = env.run(&["run", "--rm", "--network", network, image, "nslookup", name]);
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn names_aliases_and_short_ids_resolve_on_a_user_network_and_the_resolver_goes_last() {
    let (_served, env, image) = setup();
    let resolvers = Resolvers(&env);
    env.ok(&["network", "create", "app"]);
    let id = run_sleeper(&env, &image, "db", "app", &["--network-alias", "database"]);
    let ip = inspect(&env, "db", "{{.NetworkSettings.Networks.app.IPAddress}}");
    let gateway = inspect(&env, "db", "{{.NetworkSettings.Networks.app.Gateway}}");
    let Status::Running(pid) = resolvers.status("app") else {
        panic!("no resolver for app after run -d");
    };
    assert_eq!(resolvers.names("app"), std::slice::from_ref(&id));
    for name in ["db", "database", &id[..12], "DB"] {
        let (ok, out) = nslookup(&env, &image, "app", name);
        assert!(
            ok && out.contains(&format!("Address: {ip}")),
            "{name}: {out}"
        );
    }
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "app",
        &image,
        "sh",
        "-c",
        "cat /etc/resolv.conf /etc/hosts && ping -c1 -W5 db",
    ]);
    assert!(out.contains(&format!("nameserver {gateway}\n")), "{out}");
    assert_eq!(out.matches("nameserver").count(), 1, "{out}");
    assert!(
        !out.contains("\tdb\n"),
        "other containers are not in /etc/hosts: {out}"
    );
    assert!(out.contains(&format!("from {ip}")), "{out}");
    // Not a container's name: forwarded, and no upstream is reachable from this namespace.
    let (_, out) = nslookup(&env, &image, "app", "nosuch");
    assert!(!out.contains(&format!("Address: {ip}")), "{out}");
    // The container itself resolves the others (and itself) too.
    let out = env.ok(&["exec", "db", "nslookup", "database"]);
    assert!(out.contains(&format!("Address: {ip}")), "{out}");
    env.ok(&["rm", "-f", "db"]);
    resolvers.wait_gone("app", pid);
    assert!(resolvers.names("app").is_empty());
    // The next container starts a new one.
    run_sleeper(&env, &image, "db2", "app", &[]);
    let Status::Running(second) = resolvers.status("app") else {
        panic!("no resolver for app after the second run -d");
    };
    let (ok, out) = nslookup(&env, &image, "app", "db2");
    assert!(ok, "{out}");
    env.ok(&["rm", "-f", "db2"]);
    resolvers.wait_gone("app", second);
    env.ok(&["network", "rm", "app"]);
    env.assert_no_container_leftovers();
}

#[test]
fn the_default_bridge_resolves_no_names_and_keeps_no_loopback_server() {
    let (_served, env, image) = setup();
    let _resolvers = Resolvers(&env);
    run_sleeper(&env, &image, "db", "bridge", &[]);
    let ip = inspect(&env, "db", "{{.NetworkSettings.IPAddress}}");
    let (_, out) = nslookup(&env, &image, "bridge", "db");
    assert!(!out.contains(&format!("Address: {ip}")), "{out}");
    let networks = Networks::open(&env.root).unwrap();
    let bridge = networks.get("bridge").unwrap();
    assert!(!networks
        .dir_of(&bridge)
        .join(pelagos_dns::DIR_NAME)
        .exists());
    let resolv = env.ok(&["exec", "db", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver "), "{resolv}");
    assert!(!resolv.contains("nameserver 127."), "{resolv}");
    env.ok(&["rm", "-f", "db"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_monitor_killed_with_sigkill_leaves_no_name_after_rm_and_the_resolver_exits() {
    let (_served, env, image) = setup();
    let resolvers = Resolvers(&env);
    env.ok(&["network", "create", "app"]);
    let id = run_sleeper(&env, &image, "orphan", "app", &[]);
    let Status::Running(pid) = resolvers.status("app") else {
        panic!("no resolver for app after run -d");
    };
    kill_monitor(&env, &id);
    assert_eq!(
        resolvers.names("app"),
        [id],
        "only the engine's reconcile removes it"
    );
    env.ok(&["rm", "-f", "orphan"]);
    assert!(resolvers.names("app").is_empty());
    resolvers.wait_gone("app", pid);
    env.ok(&["network", "rm", "app"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_container_resolves_only_the_containers_of_its_own_network() {
    let (_served, env, image) = setup();
    let resolvers = Resolvers(&env);
    env.ok(&["network", "create", "front"]);
    env.ok(&["network", "create", "back"]);
    run_sleeper(&env, &image, "db", "back", &[]);
    run_sleeper(&env, &image, "web", "front", &[]);
    let db_ip = inspect(&env, "db", "{{.NetworkSettings.Networks.back.IPAddress}}");
    let (Status::Running(front), Status::Running(back)) =
        (resolvers.status("front"), resolvers.status("back"))
    else {
        panic!("one resolver per network");
    };
    assert_ne!(front, back);
    let (_, out) = nslookup(&env, &image, "front", "db");
    assert!(!out.contains(&format!("Address: {db_ip}")), "{out}");
    let (ok, out) = nslookup(&env, &image, "back", "db");
    assert!(ok && out.contains(&format!("Address: {db_ip}")), "{out}");
    env.ok(&["rm", "-f", "db", "web"]);
    resolvers.wait_gone("front", front);
    resolvers.wait_gone("back", back);
    env.ok(&["network", "rm", "front", "back"]);
    env.assert_no_container_leftovers();
}

#[test]
fn ipv6_networks_give_addresses_and_names_resolve_to_both_families() {
    let (_served, env, image) = setup();
    let _resolvers = Resolvers(&env);
    env.ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.78.0.0/24",
        "--subnet",
        "fd00:78::/64",
        "dual",
    ]);
    run_sleeper(&env, &image, "db", "dual", &[]);
    let v4 = inspect(&env, "db", "{{.NetworkSettings.Networks.dual.IPAddress}}");
    let v6 = inspect(
        &env,
        "db",
        "{{.NetworkSettings.Networks.dual.GlobalIPv6Address}}",
    );
    assert!(v4.starts_with("10.78.0."), "{v4}");
    assert!(v6.starts_with("fd00:78::"), "{v6}");
    let inside = env.ok(&["exec", "db", "ip", "-6", "-o", "addr", "show", "eth0"]);
    assert!(inside.contains(&format!("{v6}/64")), "{inside}");
    // Another container reaches it over IPv6, by address and by its name's AAAA record.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "dual",
        &image,
        "sh",
        "-c",
        &format!("ping -6 -c1 -W5 {v6} && nslookup -type=AAAA db && ping -6 -c1 -W5 db"),
    ]);
    assert!(out.contains(&format!("from {v6}")), "{out}");
    assert!(out.contains(&format!("Address: {v6}")), "{out}");
    env.ok(&["rm", "-f", "db"]);
    env.ok(&["network", "rm", "dual"]);
    env.assert_no_container_leftovers();
}
