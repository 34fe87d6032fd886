//! `pelagos run IMAGE` in the foreground: the image config applied, Docker's flags honoured,
//! Docker's defaults (capabilities, seccomp, masked and read-only paths, private /dev) in
//! force, output and exit codes passed through, nothing left after `--rm`.

mod cli_support;

use cli_support::{Env, Served};
use pelagos_testkit::images::{self as kit, Compression, LayerBuilder};
use pelagos_testkit::registry::Auth;

/// One registry and a store holding an image with a full config, shared by a test.
fn setup() -> (Served, Env, String) {
    let app = kit::busybox()
        .unwrap()
        .layer(
            LayerBuilder::new()
                .file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n", 0o644)
                .file("etc/group", "root:x:0:\napp:x:1000:\nstaff:x:50:app\n", 0o644)
                .dir("srv", 0o755)
                .file("srv/greeting", "hello\n", 0o644),
            Compression::Gzip,
        )
        .entrypoint(["/bin/sh", "-c"])
        .cmd(["echo \"$GREETING from $(pwd) as $(id -u):$(id -g)\""])
        .env("GREETING", "hi")
        .workdir("/srv")
        .user("app")
        .stop_signal("SIGQUIT");
    let served = Served::start(Auth::None, &[(&app, "app:1")]);
    let env = Env::new();
    let image = served.image("app:1");
    env.ok(&["pull", "-q", &image]);
    (served, env, image)
}

fn status_field(env: &Env, image: &str, extra: &[&str], field: &str) -> String {
    let mut args = vec!["run", "--rm", "--entrypoint", ""];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "grep", field, "/proc/self/status"]);
    let out = env.ok(&args);
    out.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn image_config_and_overrides() {
    let (_served, env, image) = setup();
    assert_eq!(
        env.ok(&["run", "--rm", &image]),
        "hi from /srv as 1000:1000\n"
    );
    // Arguments replace Cmd, keep the entrypoint.
    assert_eq!(
        env.ok(&["run", "--rm", &image, "echo $GREETING-$HOSTNAME"])
            .trim()
            .len(),
        15
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-e",
            "GREETING=yo",
            "-w",
            "/tmp",
            "-u",
            "0:50",
            &image
        ]),
        "yo from /tmp as 0:50\n"
    );
    // A missing working directory is created, owned by root as dockerd does.
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "-w",
            "/new/dir",
            &image,
            "stat -c %u /new/dir"
        ]),
        "0\n"
    );
    // Supplementary groups from /etc/group; --entrypoint drops the image's Cmd.
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "id", &image, "-G"]),
        "1000 50\n"
    );
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--hostname",
            "box",
            "--entrypoint",
            "hostname",
            &image
        ]),
        "box\n"
    );
    let env_out = env.ok(&["run", "--rm", "--entrypoint", "env", &image]);
    assert!(
        env_out.contains("PATH=") && env_out.contains("HOSTNAME="),
        "{env_out}"
    );
    let (code, err) = env.fail(&["run", "--rm", "-u", "ghost", &image]);
    assert_eq!(code, 125);
    assert!(err.contains("unable to find user ghost"), "{err}");
    let (code, _) = env.fail(&["run", "--rm", "--entrypoint", "/no/such/binary", &image]);
    assert_eq!(code, 127);
    let (code, _) = env.fail(&["run", "--rm", "--entrypoint", "/etc/passwd", &image]);
    assert_eq!(code, 126);
    let (code, _) = env.fail(&["run", "--rm", "--entrypoint", "nosuchcommand", &image]);
    assert_eq!(code, 127);
    env.assert_no_container_leftovers();
}

#[test]
fn docker_default_confinement() {
    let (_served, env, image) = setup();
    // Default seccomp profile, Docker's 14 capabilities, no no_new_privs.
    assert_eq!(status_field(&env, &image, &["-u", "0"], "Seccomp:"), "2");
    assert_eq!(
        status_field(&env, &image, &["-u", "0"], "CapBnd:"),
        "00000000a80425fb"
    );
    assert_eq!(status_field(&env, &image, &["-u", "0"], "NoNewPrivs:"), "0");
    assert_eq!(
        status_field(
            &env,
            &image,
            &["-u", "0", "--security-opt", "seccomp=unconfined"],
            "Seccomp:"
        ),
        "0"
    );
    assert_eq!(
        status_field(
            &env,
            &image,
            &["-u", "0", "--security-opt", "no-new-privileges"],
            "NoNewPrivs:"
        ),
        "1"
    );
    assert_eq!(
        status_field(
            &env,
            &image,
            &["-u", "0", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN"],
            "CapEff:"
        ),
        "0000000000001000"
    );
    // Masked and read-only paths, a private /dev, read-only /sys.
    let script = "cat /proc/kcore | wc -c; ls /dev | wc -l; \
        echo 1 > /proc/sys/kernel/printk 2>/dev/null || echo ro-proc; \
        touch /sys/x 2>/dev/null || echo ro-sys; mount | grep -c ' /dev/shm '";
    let out = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "kcore masked: {out}");
    let dev_entries: usize = lines[1].parse().unwrap();
    assert!(dev_entries < 20, "private /dev: {out}");
    assert!(
        lines.contains(&"ro-proc") && lines.contains(&"ro-sys"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"1"));
    // --read-only root, with /dev/shm still writable.
    let out = env.ok(&[
        "run",
        "--rm",
        "--read-only",
        "-u",
        "0",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "touch /x 2>/dev/null || echo ro-root; touch /dev/shm/x && echo shm-ok",
    ]);
    assert_eq!(out, "ro-root\nshm-ok\n");
    env.assert_no_container_leftovers();
}

#[test]
fn networks_none_and_host() {
    let (_served, env, image) = setup();
    // none: only lo, and it is up.
    let out = env.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "ls /sys/class/net; cat /sys/class/net/lo/flags",
    ]);
    assert_eq!(out, "lo\n0x9\n");
    // host: the host's interfaces (at least as many as here) and its hostname.
    let host_ifaces = std::fs::read_dir("/sys/class/net").unwrap().count();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "ls /sys/class/net | wc -l; hostname",
    ]);
    let mut lines = out.lines();
    assert_eq!(lines.next().unwrap().parse::<usize>().unwrap(), host_ifaces);
    assert_eq!(
        lines.next().unwrap(),
        nix::unistd::gethostname().unwrap().to_string_lossy()
    );
    let (code, err) = env.fail(&["run", "--rm", "--network", "bridge9", &image]);
    assert_eq!(code, 125);
    assert!(err.contains("bridge9"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn without_rm_the_container_is_kept_until_rm() {
    let (_served, env, image) = setup();
    let out = env.run(&["run", "--name", "kept", &image, "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("kept") && ps.contains("Exited (3)"), "{ps}");
    assert!(env.ok(&["ps"]).lines().count() == 1, "not running");
    let (_, err) = env.fail(&["run", "--name", "kept", &image]);
    assert!(err.contains("already in use"), "{err}");
    let inspect: serde_json::Value = serde_json::from_str(&env.ok(&["inspect", "kept"])).unwrap();
    assert_eq!(inspect[0]["State"]["ExitCode"], 3);
    assert_eq!(inspect[0]["Name"], "/kept");
    assert_eq!(inspect[0]["Config"]["StopSignal"], "SIGQUIT");
    // The upper layer keeps what the container wrote, not mounted while stopped.
    let id = inspect[0]["Id"].as_str().unwrap().to_string();
    let upper = env.root.join("containers").join(&id).join("upper");
    assert!(upper.is_dir());
    assert_eq!(env.ok(&["rm", "kept"]).trim(), "kept");
    env.assert_no_container_leftovers();
    let (_, err) = env.fail(&["rm", "kept"]);
    assert!(err.contains("No such container"), "{err}");
}

#[test]
fn invalid_flags_fail_before_anything_is_made() {
    let (_served, env, image) = setup();
    for (args, needle) in [
        (vec!["--cap-add", "CAP_BOGUS"], "CAP_BOGUS"),
        (
            vec!["--security-opt", "seccomp=/nonexistent.json"],
            "/nonexistent.json",
        ),
        (vec!["--security-opt", "weird"], "weird"),
        (vec!["--name=-bad"], "-bad"),
        (vec!["-w", "relative"], "relative"),
        (vec!["--pull", "sometimes"], "sometimes"),
    ] {
        let mut full = vec!["run", "--rm"];
        full.extend(args.iter().copied());
        full.push(&image);
        let (code, err) = env.fail(&full);
        assert_eq!(code, 125, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        env.assert_no_container_leftovers();
    }
}

#[test]
fn stdin_only_with_i_and_a_terminal_with_t() {
    use std::io::Write;
    let (_served, env, image) = setup();
    let run_with_input = |args: &[&str]| {
        let mut child = env
            .cmd()
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let with_i = run_with_input(&["run", "--rm", "-i", "--entrypoint", "cat", &image]);
    assert_eq!(String::from_utf8_lossy(&with_i.stdout), "from stdin\n");
    let without = run_with_input(&["run", "--rm", "--entrypoint", "cat", &image]);
    assert!(without.status.success());
    assert_eq!(
        String::from_utf8_lossy(&without.stdout),
        "",
        "stdin is /dev/null without -i"
    );
    // -t: the process gets a pty as its controlling terminal (script(1) gives us one).
    let cmd = format!(
        "{} run --rm -t --entrypoint sh {image} -c 'tty; test -t 0 && echo is-a-tty'",
        env!("CARGO_BIN_EXE_pelagos")
    );
    let scripted = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("PELAGOS_ROOT", &env.root)
        .env("PELAGOS_RUNROOT", &env.runroot)
        .env("PELAGOS_CONFIG", &env.engine_config)
        .env("PELAGOS_CGROUP_PARENT", &env.cgroup_parent)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&scripted.stdout);
    assert!(
        text.contains("/dev/pts/0") && text.contains("is-a-tty"),
        "{text}"
    );
    env.assert_no_container_leftovers();
}

#[test]
fn sigterm_to_the_cli_ends_the_container_and_cleans_up() {
    let (_served, env, image) = setup();
    let mut child = env
        .cmd()
        .args([
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            &image,
            "-c",
            "trap 'exit 42' TERM; echo up; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 3];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"up\n");
    // SAFETY: kill(2) on the pid of the child this test spawned.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), None, "the CLI died of the signal");
    assert_eq!(
        status.code(),
        Some(42),
        "the container's trap ran and its code came back"
    );
    env.assert_no_container_leftovers();
}

#[test]
fn volumes_tmpfs_ulimits_and_limits() {
    let (_served, env, image) = setup();
    let host = env.dir.path().join("shared");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "host data\n").unwrap();
    let ro = env.dir.path().join("readonly");
    std::fs::create_dir_all(&ro).unwrap();
    let v = format!("{}:/data", host.display());
    let m = format!("type=bind,source={},target=/ro,readonly", ro.display());
    let script = "cat /data/from-host; echo written > /data/from-container; \
        touch /ro/x 2>/dev/null || echo ro-bind; \
        grep ' /scratch ' /proc/mounts | cut -d' ' -f3; \
        grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'; \
        grep 'Max open files' /proc/self/limits | tr -s ' ' | cut -d' ' -f4,5";
    let out = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "-v",
        &v,
        "--mount",
        &m,
        "--tmpfs",
        "/scratch:size=1m",
        "--shm-size",
        "8m",
        "--ulimit",
        "nofile=512:1024",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        script,
    ]);
    assert_eq!(
        out, "host data\nro-bind\ntmpfs\nsize=8192k\n512 1024\n",
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("from-container")).unwrap(),
        "written\n"
    );
    // -v creates a missing host directory, as Docker does.
    let made = env.dir.path().join("made-by-run");
    env.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", made.display()),
        &image,
        "true",
    ]);
    assert!(made.is_dir());
    // A limit this host's cgroup v2 tree cannot enforce (hugetlb only) is an error naming the
    // controller, and nothing is left.
    let (code, err) = env.fail(&["run", "--rm", "--pids-limit", "10", &image, "true"]);
    assert_eq!(code, 125);
    assert!(
        err.contains("--pids-limit") && err.contains("\"pids\""),
        "{err}"
    );
    env.assert_no_container_leftovers();
}

#[test]
fn named_and_anonymous_volumes() {
    let (_served, env, image) = setup();
    let vols = |env: &Env| -> Vec<String> {
        env.ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    };
    // A named volume is made on first use, filled from the image (copy-up), and outlives
    // the container.
    let out = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "-v",
        "state:/srv",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "cat /srv/greeting; echo kept > /srv/new",
    ]);
    assert_eq!(out, "hello\n");
    assert_eq!(vols(&env), vec!["state".to_string()]);
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        "state:/data:ro",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "cat /data/new; touch /data/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(out, "kept\nro\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["volume", "inspect", "state"])).unwrap();
    assert_eq!(inspect[0]["Driver"], "local");
    let mountpoint = inspect[0]["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{mountpoint}/new")).unwrap(),
        "kept\n"
    );

    // Anonymous volumes (-v /path, --mount type=volume) go with --rm.
    env.ok(&[
        "run",
        "--rm",
        "-v",
        "/scratch",
        "--mount",
        "type=volume,target=/more",
        &image,
        "true",
    ]);
    assert_eq!(vols(&env), vec!["state".to_string()]);

    // A kept container holds its volumes: rm refuses, rm -v takes the anonymous ones.
    env.ok(&[
        "run",
        "--name",
        "holder",
        "-v",
        "state:/srv",
        "-v",
        "/anon",
        &image,
        "true",
    ]);
    assert_eq!(vols(&env).len(), 2);
    let (_, err) = env.fail(&["volume", "rm", "state"]);
    assert!(err.contains("in use"), "{err}");
    env.ok(&["rm", "-v", "holder"]);
    assert_eq!(vols(&env), vec!["state".to_string()]);

    // prune: anonymous only by default, named ones with -a.
    env.ok(&["volume", "create", "--label", "k=v", "spare"]);
    assert_eq!(
        env.ok(&["volume", "ls", "--format", r#"{{.Name}}:{{.Label "k"}}"#]),
        "spare:v\nstate:\n"
    );
    assert!(env
        .ok(&["volume", "prune", "-f"])
        .contains("Total reclaimed space"));
    assert_eq!(vols(&env).len(), 2);
    let pruned = env.ok(&["volume", "prune", "-f", "-a"]);
    assert!(
        pruned.contains("state") && pruned.contains("spare"),
        "{pruned}"
    );
    assert!(vols(&env).is_empty());
    // A relative host path is taken from the current directory, as Docker's CLI does.
    let out = env
        .cmd()
        .current_dir(env.dir.path())
        .args(["run", "--rm", "-v", "./rel:/x", &image, "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(env.dir.path().join("rel").is_dir());
    let (_, err) = env.fail(&["run", "--rm", "-v", "rel:/x:zz", &image, "true"]);
    assert!(err.contains("zz"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn image_volumes_get_anonymous_volumes() {
    let img = kit::busybox()
        .unwrap()
        .layer(
            LayerBuilder::new()
                .dir("cache", 0o755)
                .file("cache/seed", "seed\n", 0o644),
            Compression::Gzip,
        )
        .volume("/cache");
    let served = Served::start(Auth::None, &[(&img, "vol:1")]);
    let env = Env::new();
    let image = served.image("vol:1");
    env.ok(&["pull", "-q", &image]);
    env.ok(&[
        "run",
        "--name",
        "v1",
        &image,
        "sh",
        "-c",
        "cat /cache/seed; mount | grep -c ' /cache '",
    ]);
    let listing = env.ok(&["volume", "ls", "--format", "json"]);
    let inspect: serde_json::Value = serde_json::from_str(listing.lines().next().unwrap()).unwrap();
    assert_eq!(inspect["Labels"]["com.docker.volume.anonymous"], "");
    let mp = inspect["Mountpoint"].as_str().unwrap().to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{mp}/seed")).unwrap(),
        "seed\n"
    );
    env.ok(&["rm", "-v", "v1"]);
    assert!(env.ok(&["volume", "ls", "-q"]).trim().is_empty());
    // A user mount over the VOLUME path replaces the anonymous one.
    env.ok(&["run", "--rm", "--tmpfs", "/cache", &image, "true"]);
    assert!(env.ok(&["volume", "ls", "-q"]).trim().is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn system_df_and_prune() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "--name",
        "stopped1",
        "-u",
        "0",
        &image,
        "sh -c 'head -c 100000 /dev/zero > /big'",
    ]);
    env.ok(&["volume", "create", "keep"]);
    env.ok(&["run", "--rm", "-v", "/anon", &image, "true"]);
    let rows: Vec<serde_json::Value> = env
        .ok(&["system", "df", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |t: &str| rows.iter().find(|r| r["Type"] == t).unwrap().clone();
    assert_eq!(row("Images")["TotalCount"], 1);
    assert_eq!(
        row("Images")["Active"],
        1,
        "the stopped container uses the image"
    );
    assert_eq!(row("Containers")["TotalCount"], 1);
    assert!(row("Containers")["SizeBytes"].as_u64().unwrap() >= 100_000);
    assert_eq!(row("Local Volumes")["TotalCount"], 1);
    let pruned = env.ok(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // system prune -a: the image is unused now; named volumes stay without `volume prune -a`.
    let out = env.ok(&["system", "prune", "-a", "-f", "--volumes"]);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(env.ok(&["images", "-q"]).trim().is_empty());
    assert_eq!(env.ok(&["volume", "ls", "-q"]).trim(), "keep");
    env.assert_no_container_leftovers();
}

#[test]
fn commit_turns_a_containers_changes_into_an_image() {
    let (_served, env, image) = setup();
    // Additions, a deletion of an image file, a directory replaced (opaque), a hard link, a
    // symlink, an owner and a mode.
    let script = "echo new > /added; ln /added /added-link; ln -s /added /added-sym; \
        rm /etc/group; rm -rf /srv && mkdir /srv && echo only > /srv/only; \
        mkdir /owned && chown 1000:50 /owned && chmod 0710 /owned";
    env.ok(&[
        "run",
        "--name",
        "work",
        "-u",
        "0",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        script,
    ]);
    let id = env.ok(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "tester",
        "-c",
        "ENV COMMITTED=yes",
        "work",
        "committed:1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let check =
        "cat /added /added-link; readlink /added-sym; ls /srv; test -e /etc/group || echo gone; \
        stat -c '%u:%g %a' /owned; stat -c %h /added; echo $COMMITTED";
    let out = env.ok(&[
        "run",
        "--rm",
        "-u",
        "0",
        "--entrypoint",
        "sh",
        "committed:1",
        "-c",
        check,
    ]);
    assert_eq!(
        out, "new\nnew\n/added\nonly\ngone\n1000:50 710\n2\nyes\n",
        "{out}"
    );
    let history = env.ok(&["history", "--format", "{{.Comment}}", "committed:1"]);
    assert_eq!(history.lines().next(), Some("my change"));
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "committed:1"])).unwrap();
    assert_eq!(inspect[0]["Author"], "tester");
    assert_eq!(
        inspect[0]["RootFS"]["Layers"].as_array().unwrap().len(),
        3,
        "base layers + 1"
    );
    // The committed image shares the base's layers and saves/loads like any other.
    let archive = env.dir.path().join("c.tar");
    env.ok(&["save", "-o", archive.to_str().unwrap(), "committed:1"]);
    let fresh = Env::new();
    fresh.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(
        fresh.ok(&[
            "run",
            "--rm",
            "--entrypoint",
            "cat",
            "committed:1",
            "/srv/only"
        ]),
        "only\n"
    );
    let (_, err) = env.fail(&["commit", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    env.ok(&["rm", "work"]);
    env.assert_no_container_leftovers();
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn detached_containers_and_their_lifecycle() {
    let (_served, env, image) = setup();
    // The image's StopSignal is SIGQUIT: `stop` sends that; `kill -s TERM` sends TERM.
    let script = "echo started; trap 'echo bye; exit 3' TERM QUIT; while :; do sleep 0.05; done";
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--entrypoint",
        "sh",
        &image,
        "-c",
        script,
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    assert!(env.ok(&["ps"]).contains("web"));
    wait_for("the first log line", || {
        env.ok(&["logs", "web"]) == "started\n"
    });
    // exec joins it, with the image's user unless -u says otherwise.
    assert_eq!(env.ok(&["exec", "web", "id", "-u"]), "1000\n");
    assert_eq!(
        env.ok(&[
            "exec",
            "-u",
            "0",
            "-e",
            "X=1",
            "web",
            "sh",
            "-c",
            "echo $(id -u)$X"
        ]),
        "01\n"
    );
    let (code, _) = env.fail(&["exec", "web", "sh", "-c", "exit 4"]);
    assert_eq!(code, 4);
    // logs -f follows until the container stops.
    let follower = env
        .cmd()
        .args(["logs", "-f", "web"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert_eq!(env.ok(&["stop", "-t", "5", "web"]).trim(), "web");
    let followed = follower.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&followed.stdout), "started\nbye\n");
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (3)"), "{ps}");
    assert_eq!(env.ok(&["wait", "web"]).trim(), "3");
    // start runs it again (same id, same upper layer); kill -s TERM ends it through its trap.
    env.ok(&["start", "web"]);
    wait_for("the second start", || {
        env.ok(&["logs", "web"]).matches("started").count() == 2
    });
    env.ok(&["kill", "-s", "TERM", "web"]);
    assert_eq!(env.ok(&["wait", "web"]).trim(), "3");
    let (_, err) = env.fail(&["kill", "web"]);
    assert!(err.contains("not running"), "{err}");
    // rm -f of a running detached container.
    env.ok(&["restart", "web"]);
    assert!(env.ok(&["ps"]).contains("web"));
    env.ok(&["rm", "-f", "web"]);
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    // --rm with -d: gone once it exits by itself.
    env.ok(&["run", "-d", "--rm", &image, "true"]);
    wait_for("the --rm container to go", || {
        env.ok(&["ps", "-a", "-q"]).trim().is_empty()
    });
    // A command that does not exist: the error comes back to run -d and the container stays
    // created with exit code 127, as Docker keeps it.
    let (code, err) = env.fail(&[
        "run",
        "-d",
        "--name",
        "nope",
        "--entrypoint",
        "/nope",
        &image,
    ]);
    assert_eq!(code, 127, "{err}");
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Created") && ps.contains("nope"), "{ps}");
    assert_eq!(
        env.ok(&["inspect", "--format", "{{.State.ExitCode}}", "nope"])
            .trim(),
        "127"
    );
    env.ok(&["rm", "nope"]);
    env.assert_no_container_leftovers();
}

#[test]
fn restart_policies() {
    let (_served, env, image) = setup();
    // on-failure:2: the first run and two restarts, then it stays exited.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        &image,
        "echo run; exit 1",
    ]);
    wait_for("three runs", || {
        env.ok(&["logs", "flaky"]) == "run\nrun\nrun\n"
            && env.ok(&["ps", "-a"]).contains("Exited (1)")
    });
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(
        env.ok(&["logs", "flaky"]),
        "run\nrun\nrun\n",
        "no fourth run"
    );
    // always: restarted after a clean exit too, until stop.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--restart",
        "always",
        &image,
        "echo tick; sleep 0.2",
    ]);
    wait_for("a restart", || {
        env.ok(&["logs", "loop"]).matches("tick").count() >= 2
    });
    env.ok(&["stop", "-t", "1", "loop"]);
    let ticks = env.ok(&["logs", "loop"]).matches("tick").count();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        env.ok(&["logs", "loop"]).matches("tick").count(),
        ticks,
        "stop ends the policy"
    );
    let (code, err) = env.fail(&["run", "--rm", "-d", "--restart", "always", &image, "true"]);
    assert_eq!(code, 125);
    assert!(err.contains("--restart and --rm"), "{err}");
    let (_, err) = env.fail(&["run", "--restart", "bogus", &image, "true"]);
    assert!(err.contains("bogus"), "{err}");
    env.ok(&["rm", "flaky", "loop"]);
    env.assert_no_container_leftovers();
}

#[test]
fn pause_top_and_stats() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        &image,
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done",
    ]);
    wait_for("the loop to run", || {
        env.run(&["exec", "busy", "cat", "/tmp/n"]).status.success()
    });
    // top: the container's processes, as the image's user (uid 1000), named as the host's
    // `ps` names it, as Docker's top does (a host user of that uid, else the number).
    let host_name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(1000))
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "1000".into());
    let top = env.ok(&["top", "busy"]);
    assert!(
        top.starts_with("UID") && top.contains(&host_name) && top.contains("sh -c"),
        "{top}"
    );
    // pause freezes it: the counter stands still; unpause lets it go on.
    env.ok(&["pause", "busy"]);
    let frozen_at = std::fs::read_to_string(
        env.root
            .join("containers")
            .join(env.ok(&["inspect", "--format", "{{.Id}}", "busy"]).trim())
            .join("upper/tmp/n"),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let still = std::fs::read_to_string(
        env.root
            .join("containers")
            .join(env.ok(&["inspect", "--format", "{{.Id}}", "busy"]).trim())
            .join("upper/tmp/n"),
    )
    .unwrap();
    assert_eq!(frozen_at, still, "paused processes made progress");
    env.ok(&["unpause", "busy"]);
    // stats: a row for the container with a CPU percentage. How large it is depends on how
    // busy the machine is, so what is checked is that the busy loop's CPU time keeps growing
    // (the counter stats reads, cpu.stat usage_usec of the container's cgroup), without any
    // bound on how fast.
    let row: serde_json::Value = serde_json::from_str(
        env.ok(&["stats", "--no-stream", "--format", "json", "busy"])
            .trim(),
    )
    .unwrap();
    let cpu: f64 = row["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu >= 0.0, "{row}");
    assert_eq!(row["Name"], "busy");
    let id = env.ok(&["inspect", "--format", "{{.Id}}", "busy"]);
    let cpu_stat = std::path::Path::new("/sys/fs/cgroup/unified")
        .join(env.cgroup_parent.trim_start_matches('/'))
        .join(id.trim())
        .join("cpu.stat");
    let usage = || -> u64 {
        std::fs::read_to_string(&cpu_stat)
            .unwrap_or_else(|e| panic!("{}: {e}", cpu_stat.display()))
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no usage_usec in {}", cpu_stat.display()))
    };
    let first = usage();
    wait_for("the busy loop's CPU time to grow", || usage() > first);
    env.ok(&["rm", "-f", "busy"]);
    let (_, err) = env.fail(&["top", "busy"]);
    assert!(err.contains("busy"), "{err}");
    env.assert_no_container_leftovers();
}

#[test]
fn a_container_whose_monitor_died_can_still_be_stopped_and_removed() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "orphan", &image, "sleep 100"]);
    let id = env
        .ok(&["inspect", "--format", "{{.Id}}", "orphan"])
        .trim()
        .to_string();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.root.join("containers").join(&id).join("container.json"))
            .unwrap(),
    )
    .unwrap();
    let monitor = record["state"]["owner"]["pid"].as_i64().unwrap() as i32;
    // SAFETY: kill(2) on the monitor this test's `run -d` started.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    wait_for("the monitor to go", || {
        std::fs::read_to_string(format!("/proc/{monitor}/stat"))
            .map(|s| s.contains(") Z"))
            .unwrap_or(true)
    });
    env.ok(&["stop", "-t", "1", "orphan"]);
    assert!(env.ok(&["ps", "-a"]).contains("Exited (137)"));
    env.ok(&["rm", "orphan"]);
    env.assert_no_container_leftovers();
}
