//! A shell script written for docker (`tests/scripts/docker-daily.sh`: run, ps
//! --filter/--format, logs, exec, cp, inspect --format, events --since, stop, rm, prune)
//! runs unchanged with `alias docker=pelagos`.

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::{Env, Served};
use pelagos_testkit::images as kit;
use pelagos_testkit::registry::Auth;

#[test]
fn a_docker_script_runs_with_alias_docker_pelagos() {
    let image = kit::busybox().unwrap().cmd(["sh"]);
    let served = Served::start(Auth::None, &[(&image, "box:1")]);
    let env = Env::new();
    let image = served.image("box:1");
    env.ok(&["pull", "-q", &image]);
    let pelagos = env.cmd();
    let mut script = Command::new("bash");
    for (key, value) in pelagos.get_envs() {
        if let Some(value) = value {
            script.env(key, value);
        }
    }
    let out = script
        .env("DOCKER_ALIAS", pelagos.get_program())
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/scripts/docker-daily.sh"
        ))
        .arg(&image)
        .stdin(Stdio::null())
        .output()
        .expect("run bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    if !out.status.success() {
        // Whatever the script left behind goes before the failure is reported.
        let _ = env.run(&["rm", "-f", "web", "job"]);
    }
    assert!(
        out.status.success(),
        "the script failed ({:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(stdout.contains("the docker script ran"), "{stdout}");
    env.assert_no_container_leftovers();
}
