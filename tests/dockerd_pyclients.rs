//! pelagos-dockerd through the real Python clients: docker-py 7.1.0 (negotiated, and pinned to
//! API 1.41 and 1.24) and testcontainers-python 4.15.0, run from `tests/clients/` against a
//! daemon of the test's own; one test per flow group so a failure names the flow.

mod dockerd_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use dockerd_support::{served_busybox, Daemon, Options};

/// The venv `scripts/deps` makes, with the pinned clients of tests/clients/requirements.txt.
const VENV_PYTHON: &str = "/opt/pelagos-tests/venv/bin/python";

fn python() -> &'static str {
    assert!(
        Path::new(VENV_PYTHON).is_file(),
        "{VENV_PYTHON} is missing: run `scripts/deps` (it makes the venv with docker-py and \
         testcontainers from tests/clients/requirements.txt)"
    );
    VENV_PYTHON
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/clients")
        .join(name)
}

/// `python SCRIPT ARGS…` against the daemon (run in its netns when it has one), with the
/// image's name in `PELAGOS_TEST_IMAGE`; it must exit 0, else its output and the daemon's log.
fn run_script(d: &Daemon, image: &str, name: &str, args: &[&str]) {
    let mut c = match &d.netns {
        Some(holder) => holder.cmd(python()),
        None => Command::new(python()),
    };
    c.arg(script(name))
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", d.socket.display()))
        .env("DOCKER_CONFIG", &d.docker_config)
        .env("PELAGOS_TEST_IMAGE", image)
        .env("TESTCONTAINERS_RYUK_DISABLED", "true")
        .env("PYTHONUNBUFFERED", "1")
        .env_remove("DOCKER_API_VERSION")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::null());
    let out = c.output().expect("spawn python");
    assert!(
        out.status.success(),
        "{name} {args:?} failed ({}):\n{}{}\n--- daemon log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        d.log()
    );
}

/// A daemon with busybox pulled from a served registry, the group run, nothing left after.
fn dockerpy_group(group: &str) {
    let served = served_busybox();
    let d = Daemon::start();
    d.ok(&["pull", &served.image]);
    run_script(&d, &served.image, "dockerpy_flows.py", &[group]);
    d.assert_no_container_leftovers();
}

#[test]
fn dockerpy_system_and_images() {
    dockerpy_group("system_and_images");
}

#[test]
fn dockerpy_run_and_logs() {
    dockerpy_group("run_and_logs");
}

#[test]
fn dockerpy_exec_and_attach() {
    dockerpy_group("exec_and_attach");
}

#[test]
fn dockerpy_lifecycle_stats_top_archive_and_filters() {
    dockerpy_group("lifecycle");
}

#[test]
fn dockerpy_restart_policy_and_healthcheck() {
    dockerpy_group("health_and_restart");
}

#[test]
fn dockerpy_volumes() {
    dockerpy_group("volumes");
}

#[test]
fn dockerpy_events_and_prune() {
    dockerpy_group("events_and_prune");
}

#[test]
fn dockerpy_errors() {
    dockerpy_group("errors");
}

/// A daemon in a network namespace of the test's own (bridges, ports), its loopback up so a
/// script in the namespace reaches published ports; busybox put in its store from the host.
fn netns_daemon_with_busybox() -> (dockerd_support::ServedBusybox, Daemon) {
    let served = served_busybox();
    let d = Daemon::start_with(Options {
        netns: true,
        ..Options::default()
    });
    d.pull_on_host(&served.image);
    let holder = d.netns.as_ref().expect("the daemon's netns");
    // A new network namespace starts with its loopback down.
    holder.ok("ip", &["link", "set", "lo", "up"]);
    (served, d)
}

#[test]
fn dockerpy_networks() {
    let (served, d) = netns_daemon_with_busybox();
    run_script(&d, &served.image, "dockerpy_flows.py", &["networks"]);
    d.assert_no_container_leftovers();
}

#[test]
fn testcontainers_log_wait_exec_logs_port_and_stop() {
    let (served, d) = netns_daemon_with_busybox();
    run_script(&d, &served.image, "testcontainers_flow.py", &[]);
    d.assert_no_container_leftovers();
}
