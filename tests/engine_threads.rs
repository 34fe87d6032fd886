//! The engine driven as `pelagos-dockerd` will drive it: from a multithreaded tokio program,
//! 32 tasks at once running, exec'ing into, attaching to, stopping and removing containers.
//! Nothing may leak: no record, mount, runtime state, cgroup, socket or monitor.

mod cli_support;

use std::os::fd::AsFd;
use std::sync::Arc;

use cli_support::{Env, Served};
use pelagos_engine::container::{self as verbs, create::CreateRequest, start::StartOutcome};
use pelagos_engine::{Engine, EngineOptions};
use pelagos_model::config::{ContainerConfig, HostConfig};
use pelagos_model::protocol::{Attach, ExecSpec, Frame, Reply, WaitCondition};
use pelagos_testkit::images as kit;
use pelagos_testkit::registry::Auth;

fn engine(env: &Env) -> Engine {
    Engine::open(EngineOptions {
        root: env.root.clone(),
        runroot: env.runroot.clone(),
        config_file: env.engine_config.clone(),
        cgroup_parent: env.cgroup_parent.clone(),
        monitor_program: Some(cli_support::monitor_program()),
        ..EngineOptions::default()
    })
    .unwrap()
}

fn request(name: &str, image: &str, cmd: &[&str]) -> CreateRequest {
    CreateRequest {
        name: Some(name.into()),
        image_name: image.into(),
        config: ContainerConfig {
            cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        },
        host_config: HostConfig {
            network_mode: "none".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// One task's whole story with its own container.
fn life(engine: &Engine, image: &str, n: usize) -> Result<(), String> {
    let e = |x: pelagos_engine::Error| format!("task {n}: {x}");
    let record = engine.images().get(image).map_err(|x| x.to_string())?;
    let name = format!("t{n}");
    match n % 4 {
        // run -d, exec, stop, rm
        0 => {
            verbs::create::create(engine, &record, request(&name, image, &["sleep", "100"]))
                .map_err(e)?;
            verbs::start::start(engine, &name, None).map_err(e)?;
            let (r, w) = nix::unistd::pipe().map_err(|x| x.to_string())?;
            let devnull = std::fs::File::open("/dev/null").map_err(|x| x.to_string())?;
            let session = verbs::exec::exec(
                engine,
                &name,
                ExecSpec {
                    cmd: vec!["echo".into(), format!("hi{n}")],
                    ..Default::default()
                },
                &[w.as_fd(), devnull.as_fd()],
            )
            .map_err(e)?;
            drop(w);
            let code = session.wait().map_err(e)?;
            let mut out = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut out)
                .map_err(|x| x.to_string())?;
            if code != 0 || out != format!("hi{n}\n") {
                return Err(format!("task {n}: exec gave {code} {out:?}"));
            }
            verbs::stop::stop(engine, &name, Some(1)).map_err(e)?;
            verbs::remove::remove(engine, &name, false, false).map_err(e)?;
        }
        // run attached: output and exit code through the attach
        1 => {
            verbs::create::create(
                engine,
                &record,
                request(
                    &name,
                    image,
                    &["sh", "-c", "echo out; echo err >&2; exit 3"],
                ),
            )
            .map_err(e)?;
            let attach = Attach {
                stdout: true,
                stderr: true,
                ..Default::default()
            };
            let StartOutcome::Started(mut started) =
                verbs::start::start(engine, &name, Some(attach)).map_err(e)?
            else {
                return Err(format!("task {n}: already running?"));
            };
            let (mut out, mut code) = (Vec::new(), None);
            while let Some(frame) = started.client.next_frame().map_err(|x| x.to_string())? {
                match frame {
                    Frame::Data { bytes, .. } => out.extend(bytes),
                    Frame::Control {
                        message: Reply::Exited { exit_code, .. },
                        ..
                    } => {
                        code = Some(exit_code);
                        break;
                    }
                    Frame::Control { .. } => {}
                }
            }
            let text = String::from_utf8_lossy(&out);
            if code != Some(3) || !text.contains("out") || !text.contains("err") {
                return Err(format!("task {n}: attach gave {code:?} {text:?}"));
            }
            verbs::remove::remove(engine, &name, false, false).map_err(e)?;
        }
        // run -d, kill, wait, rm
        2 => {
            verbs::create::create(engine, &record, request(&name, image, &["sleep", "100"]))
                .map_err(e)?;
            verbs::start::start(engine, &name, None).map_err(e)?;
            verbs::kill::kill(engine, &name, libc::SIGKILL).map_err(e)?;
            let code = verbs::wait::wait(engine, &name, WaitCondition::NotRunning).map_err(e)?;
            if code != 137 {
                return Err(format!("task {n}: wait gave {code}"));
            }
            verbs::remove::remove(engine, &name, false, false).map_err(e)?;
        }
        // run -d, rm -f at once
        _ => {
            verbs::create::create(engine, &record, request(&name, image, &["sleep", "100"]))
                .map_err(e)?;
            verbs::start::start(engine, &name, None).map_err(e)?;
            verbs::remove::remove(engine, &name, true, false).map_err(e)?;
        }
    }
    Ok(())
}

#[test]
fn thirty_two_tokio_tasks_share_one_engine_and_nothing_leaks() {
    let image = kit::busybox().unwrap().cmd(["sh"]);
    let served = Served::start(Auth::None, &[(&image, "box:1")]);
    let env = Env::new();
    let name = served.image("box:1");
    env.ok(&["pull", "-q", &name]);
    let engine = Arc::new(engine(&env));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let failures: Vec<String> = runtime.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|n| {
                let (engine, name) = (engine.clone(), name.clone());
                tokio::task::spawn_blocking(move || life(&engine, &name, n))
            })
            .collect();
        let mut failures = Vec::new();
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(e) => failures.push(e.to_string()),
            }
        }
        failures
    });
    assert!(failures.is_empty(), "{failures:#?}");
    // The engine's process is unchanged: still the test's own threads, fds 0-2 untouched.
    assert!(engine.containers().list().unwrap().is_empty());
    env.assert_no_container_leftovers();
}
