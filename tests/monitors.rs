//! The engine's findings of issue 9 as a user meets them through the CLI: races between
//! verbs, dead monitors and clients, parallel stops, restart backoff, logs of foreground
//! containers and their size cap, paused state, exec's exit codes, bad flags failing fast.

mod cli_support;

use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cli_support::{wait_for, Env, Served};

fn setup() -> (Served, Env, String) {
    cli_support::served_busybox()
}

fn inspect(env: &Env, name: &str, format: &str) -> String {
    env.ok(&["inspect", "--format", format, name])
        .trim()
        .to_string()
}

fn record(env: &Env, name: &str) -> serde_json::Value {
    let id = inspect(env, name, "{{.Id}}");
    serde_json::from_str(
        &std::fs::read_to_string(env.root.join("containers").join(id).join("container.json"))
            .unwrap(),
    )
    .unwrap()
}

fn monitor_pid(env: &Env, name: &str) -> i32 {
    record(env, name)["state"]["owner"]["pid"].as_i64().unwrap() as i32
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z"))
        .unwrap_or(false)
}

#[test]
fn bad_flag_values_fail_before_anything_is_pulled_or_made() {
    let (_served, env, image) = setup();
    // An image that is not in the store, from a registry nobody serves: a pull would fail
    // with another message; the flag is what must be reported.
    let missing = "127.0.0.1:9/none/such:1";
    for (args, word) in [
        (vec!["run", "-m", "64x", missing, "true"], "64x"),
        (vec!["run", "-v", "relpath:/x:zz", missing, "true"], "zz"),
        (
            vec!["run", "--restart", "sometimes", missing, "true"],
            "sometimes",
        ),
        (
            vec!["run", "--log-opt", "max-size=lots", missing, "true"],
            "max-size",
        ),
        (vec!["run", "--cpus", "-1", &image, "true"], "cpus"),
    ] {
        let (code, err) = env.fail(&args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(word), "{args:?}: {err}");
    }
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    assert!(env.ok(&["volume", "ls", "-q"]).trim().is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn the_monitor_is_its_own_program_and_outlives_its_client() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "mon", &image, "sleep", "100"]);
    let pid = monitor_pid(&env, "mon");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.to_string_lossy().ends_with("pelagos-monitor"),
        "{}",
        exe.display()
    );
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    assert_eq!(threads, 1, "the monitor is single-threaded");
    env.ok(&["rm", "-f", "mon"]);
    // It answers the removal, then exits.
    wait_for("the monitor to exit", || !alive(pid));
    env.assert_no_container_leftovers();
}

#[test]
fn rm_f_racing_run_d_leaves_no_invisible_container() {
    let (_served, env, image) = setup();
    for i in 0..8 {
        let name = format!("race{i}");
        let mut run = env
            .cmd()
            .args(["run", "-d", "--name", &name, &image, "sleep", "100"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let the rm land at a different point of the run each round.
        std::thread::sleep(Duration::from_millis(3 * i));
        let rm = env.run(&["rm", "-f", &name]);
        let run_out = run.wait().unwrap();
        let listed = env.ok(&["ps", "-a", "--no-trunc", "-q"]);
        if rm.status.success() && run_out.success() {
            // rm won after the start: nothing may run on without a record.
            assert!(listed.trim().is_empty() || env.run(&["inspect", &name]).status.success());
        }
        // Whatever happened, what is left is visible and removable.
        let _ = env.run(&["rm", "-f", &name]);
        assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty(), "round {i}");
        env.assert_no_container_leftovers();
    }
}

#[test]
fn stop_of_several_containers_signals_them_all_at_once() {
    let (_served, env, image) = setup();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let names = ["s1", "s2", "s3"];
    // Each, on SIGTERM, says so and then waits until all three were told: with a sequential
    // stop, s1 would wait for the others until killed after the (long) timeout.
    for n in names {
        let script = format!(
            "trap 'touch /shared/{n}; while [ $(ls /shared | wc -l) -lt 3 ]; do sleep 0.05; done; exit 0' TERM; \
             touch /shared/ready-{n}; while :; do sleep 0.05; done"
        );
        env.ok(&[
            "run",
            "-d",
            "--name",
            n,
            "-v",
            &format!("{}:/shared", shared.display()),
            &image,
            "sh",
            "-c",
            &script,
        ]);
    }
    wait_for("the containers to be ready", || {
        names
            .iter()
            .all(|n| shared.join(format!("ready-{n}")).exists())
    });
    for n in names {
        std::fs::remove_file(shared.join(format!("ready-{n}"))).unwrap();
    }
    let begun = Instant::now();
    let out = env.ok(&["stop", "-t", "600", "s1", "s2", "s3"]);
    assert_eq!(out, "s1\ns2\ns3\n");
    assert!(
        begun.elapsed() < Duration::from_secs(300),
        "a stop waited out its timeout"
    );
    for n in names {
        assert_eq!(
            inspect(&env, n, "{{.State.ExitCode}}"),
            "0",
            "{n} exited by itself"
        );
    }
    env.ok(&["rm", "s1", "s2", "s3"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_killed_monitor_is_seen_at_once_and_its_container_dies_with_it() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "orphan", &image, "sleep", "100"]);
    let container_pid: i32 = inspect(&env, "orphan", "{{.State.Pid}}").parse().unwrap();
    let monitor = monitor_pid(&env, "orphan");
    // SAFETY: kill(2) of the monitor this test started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    wait_for("the container to die with its monitor", || {
        !alive(container_pid)
    });
    // The very next look tells the truth, without any stop.
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(inspect(&env, "orphan", "{{.State.Error}}").contains("monitor"));
    assert_eq!(env.ok(&["wait", "orphan"]).trim(), "137");
    env.ok(&["rm", "orphan"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_killed_foreground_run_leaves_a_watched_container() {
    let (_served, env, image) = setup();
    let mut run = env
        .cmd()
        .args([
            "run",
            "--name",
            "fg",
            &image,
            "sh",
            "-c",
            "echo up; sleep 100",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the container to run", || {
        env.run(&["logs", "fg"]).stdout.starts_with(b"up")
    });
    run.kill().unwrap();
    run.wait().unwrap();
    // Its monitor still owns it: ps says Up, exec works, stop records the real exit.
    assert!(env.ok(&["ps"]).contains("fg"));
    assert_eq!(env.ok(&["exec", "fg", "echo", "still"]), "still\n");
    env.ok(&["stop", "-t", "1", "fg"]);
    assert!(
        env.ok(&["ps", "-a"]).contains("Exited (143)")
            || env.ok(&["ps", "-a"]).contains("Exited (137)")
    );
    env.ok(&["rm", "fg"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_killed_rm_leaves_a_truthful_ps_and_a_clean_second_rm() {
    let (_served, env, image) = setup();
    for i in 0..5u64 {
        let name = format!("victim{i}");
        env.ok(&["run", "-d", "--name", &name, &image, "sleep", "100"]);
        let mut rm = env.cmd().args(["rm", "-f", &name]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(2 * i));
        let _ = rm.kill();
        let _ = rm.wait();
        // Either gone, or listed with a state the next command can act on.
        let ps = env.ok(&["ps", "-a"]);
        assert!(
            !ps.contains(&name)
                || ps.contains("Up")
                || ps.contains("Removal In Progress")
                || ps.contains("Exited"),
            "{ps}"
        );
        let _ = env.run(&["rm", "-f", &name]);
        assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty(), "round {i}");
        env.assert_no_container_leftovers();
    }
}

#[test]
fn stop_ends_a_restart_backoff_at_once() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flap",
        "--restart",
        "always",
        &image,
        "false",
    ]);
    // After seven quick failures the backoff is 12.8 s.
    wait_for("seven restarts", || {
        inspect(&env, "flap", "{{.RestartCount}}")
            .parse::<u32>()
            .unwrap_or(0)
            >= 7
    });
    let begun = Instant::now();
    env.ok(&["stop", "flap"]);
    assert!(
        begun.elapsed() < Duration::from_secs(6),
        "stop waited out the backoff ({:?})",
        begun.elapsed()
    );
    assert_eq!(inspect(&env, "flap", "{{.State.Status}}"), "exited");
    env.ok(&["rm", "flap"]);
    env.assert_no_container_leftovers();
}

#[test]
fn foreground_containers_keep_a_log_with_a_size_cap() {
    let (_served, env, image) = setup();
    assert_eq!(
        env.ok(&["run", "--name", "fg", &image, "echo", "hello"]),
        "hello\n"
    );
    assert_eq!(env.ok(&["logs", "fg"]), "hello\n");
    env.ok(&[
        "run",
        "--name",
        "big",
        "--log-opt",
        "max-size=10k",
        "--log-opt",
        "max-file=2",
        &image,
        "sh",
        "-c",
        "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let dir = env
        .root
        .join("containers")
        .join(inspect(&env, "big", "{{.Id}}"));
    let mut total = 0;
    for f in ["container.log", "container.log.1"] {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len <= 12 * 1024, "{f}: {len}");
        total += len;
    }
    assert!(!dir.join("container.log.2").exists());
    assert!(total > 10 * 1024);
    assert_eq!(env.ok(&["logs", "-n", "1", "big"]), "line-2999\n");
    env.ok(&["rm", "fg", "big"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_paused_container_says_so() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "pz", &image, "sleep", "100"]);
    env.ok(&["pause", "pz"]);
    assert_eq!(inspect(&env, "pz", "{{.State.Status}}"), "paused");
    assert_eq!(inspect(&env, "pz", "{{.State.Paused}}"), "true");
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    env.ok(&["unpause", "pz"]);
    assert_eq!(inspect(&env, "pz", "{{.State.Status}}"), "running");
    env.ok(&["rm", "-f", "pz"]);
    env.assert_no_container_leftovers();
}

#[test]
fn a_container_is_free_for_the_next_verb_when_its_run_returns() {
    let (_served, env, image) = setup();
    // The monitor ends the container's life (record, unmount, owner lock) before it answers
    // the exit: `start`, `rm` and `run --name` right after a foreground run never meet a
    // container that is "busy" with a monitor on its way out.
    for round in 0..5 {
        env.ok(&["run", "--name", "again", &image, "true"]);
        env.ok(&["start", "again"]);
        assert_eq!(env.ok(&["wait", "again"]).trim(), "0", "round {round}");
        env.ok(&["rm", "again"]);
        env.ok(&["run", "--rm", "--name", "again", &image, "true"]);
    }
    env.assert_no_container_leftovers();
}

#[test]
fn exec_exit_codes_are_dockers() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "ex", &image, "sleep", "100"]);
    // Docker's daemon answers 126 for an exec that cannot start, found or not.
    let (code, err) = env.fail(&["exec", "ex", "/no/such/program"]);
    assert_eq!(code, 126, "{err}");
    let (code, err) = env.fail(&["exec", "ex", "/etc/passwd"]);
    assert_eq!(code, 126, "{err}");
    let (code, _) = env.fail(&["exec", "ex", "sh", "-c", "exit 5"]);
    assert_eq!(code, 5);
    let (code, err) = env.fail(&["run", "--rm", &image, "/no/such/program"]);
    assert_eq!(code, 127, "{err}");
    env.ok(&["rm", "-f", "ex"]);
    env.assert_no_container_leftovers();
}

#[test]
fn init_reaps_and_forwards_signals_as_pid_1() {
    let (_served, env, image) = setup();
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--init",
            &image,
            "sh",
            "-c",
            "cat /proc/1/cmdline | tr '\\0' ' '"
        ]),
        "/sbin/docker-init -- sh -c cat /proc/1/cmdline | tr '\\0' ' ' "
    );
    env.ok(&[
        "run", "-d", "--init", "--name", "in1", &image, "sleep", "100",
    ]);
    env.ok(&["stop", "-t", "30", "in1"]);
    // sleep as pid 2 dies of the forwarded SIGTERM: 143, not a 30 s wait and 137.
    assert_eq!(inspect(&env, "in1", "{{.State.ExitCode}}"), "143");
    env.ok(&["rm", "in1"]);
    env.assert_no_container_leftovers();
}

#[test]
fn healthchecks_report_in_inspect() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -e /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        &image,
        "sleep",
        "100",
    ]);
    wait_for("unhealthy", || {
        inspect(&env, "hc", "{{.State.Health.Status}}") == "unhealthy"
    });
    env.ok(&["exec", "hc", "touch", "/tmp/ok"]);
    wait_for("healthy", || {
        inspect(&env, "hc", "{{.State.Health.Status}}") == "healthy"
    });
    assert!(env.ok(&["ps"]).contains("(healthy)"));
    env.ok(&["rm", "-f", "hc"]);
    env.assert_no_container_leftovers();
}

#[test]
fn only_root_reaches_a_monitor() {
    let (_served, env, image) = setup();
    // The test's directories are searchable by all, and the CLI runs with umask 0: the
    // monitor's own permissions are what must keep others out.
    for dir in [env.dir.path(), env.runroot.as_path()] {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let mut run = env.cmd();
    run.args(["run", "-d", "--name", "guarded", &image, "sleep", "100"]);
    // SAFETY: umask(2) in the child before exec; async-signal-safe.
    unsafe {
        run.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    assert!(run.output().unwrap().status.success());
    let id = inspect(&env, "guarded", "{{.Id}}");
    let socket = env.runroot.join("m").join(&id);
    assert!(socket.exists());
    // An unprivileged user who could connect could exec as root in the container.
    let probe = format!(
        "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); print('connected')",
        socket.display().to_string()
    );
    let out = std::process::Command::new("python3")
        .args(["-c", &probe])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody connected to the monitor");
    assert!(err.contains("PermissionError"), "{err}");
    env.ok(&["rm", "-f", "guarded"]);
    env.assert_no_container_leftovers();
}
