//! `run`'s name-service, group, sysctl, namespace and `--cidfile` flags, each seen from inside
//! a real container, and their bad values failing before anything is made.

mod cli_support;

use cli_support::{Env, Served};

fn setup() -> (Served, Env, String) {
    cli_support::served_busybox()
}

/// `readlink /proc/self/ns/KIND` of this (the host's) process.
fn host_ns(kind: &str) -> String {
    std::fs::read_link(format!("/proc/self/ns/{kind}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn ns_in(env: &Env, flags: &[&str], image: &str, kind: &str) -> String {
    let path = format!("/proc/self/ns/{kind}");
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&[image, "readlink", &path]);
    env.ok(&args).trim().to_string()
}

/// Removes every container (one whose start failed may be left, as in Docker).
fn remove_all(env: &Env) {
    for id in env.ok(&["ps", "-a", "-q"]).split_whitespace() {
        env.ok(&["rm", "-f", id]);
    }
}

#[test]
fn add_host_and_dns_flags_write_hosts_and_resolv_conf() {
    let (_served, env, image) = setup();
    let out = env.ok(&[
        "run",
        "--rm",
        "--add-host",
        "db:10.0.0.2",
        "--add-host",
        "v6=::1",
        "--dns",
        "9.9.9.9",
        "--dns",
        "1.1.1.1",
        "--dns-search",
        "a.example",
        "--dns-option",
        "ndots:1",
        &image,
        "cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]);
    assert!(out.starts_with("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(out.contains("\n10.0.0.2\tdb\n::1\tv6\n"), "{out}");
    assert!(
        out.ends_with(
            "search a.example\nnameserver 9.9.9.9\nnameserver 1.1.1.1\noptions ndots:1\n"
        ),
        "{out}"
    );
    // With the host's network, the host's /etc/hosts, then the extra entries.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "--add-host",
        "db:10.0.0.3",
        &image,
        "cat",
        "/etc/hosts",
    ]);
    let host_hosts = std::fs::read_to_string("/etc/hosts").unwrap();
    assert!(out.starts_with(host_hosts.trim_end()), "{out}");
    assert!(out.ends_with("10.0.0.3\tdb\n"), "{out}");
    env.assert_no_container_leftovers();
}

#[test]
fn group_add_takes_names_from_the_image_and_numbers_as_they_are() {
    let (_served, env, image) = setup();
    let out = env.ok(&[
        "run",
        "--rm",
        "--group-add",
        "app",
        "--group-add",
        "4242",
        &image,
        "id",
    ]);
    assert!(out.contains("1000(app)") && out.contains("4242"), "{out}");
    let (code, err) = env.fail(&["run", "--rm", "--group-add", "nogroup", &image, "id"]);
    assert_ne!(code, 0);
    assert!(err.contains("nogroup"), "{err}");
    remove_all(&env);
    env.assert_no_container_leftovers();
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces() {
    let (_served, env, image) = setup();
    let out = env.ok(&[
        "run",
        "--rm",
        "--sysctl",
        "kernel.shmmax=12345678",
        "--sysctl",
        "net.ipv4.ip_forward=1",
        &image,
        "cat",
        "/proc/sys/kernel/shmmax",
        "/proc/sys/net/ipv4/ip_forward",
    ]);
    assert_eq!(out, "12345678\n1\n");
    env.assert_no_container_leftovers();
}

#[test]
fn pid_ipc_uts_host_share_the_hosts_namespaces() {
    let (_served, env, image) = setup();
    for (flag, kind) in [("--pid", "pid"), ("--ipc", "ipc"), ("--uts", "uts")] {
        assert_eq!(ns_in(&env, &[flag, "host"], &image, kind), host_ns(kind));
        assert_ne!(ns_in(&env, &[], &image, kind), host_ns(kind), "{kind}");
    }
    for mode in ["private", "shareable"] {
        assert_ne!(ns_in(&env, &["--ipc", mode], &image, "ipc"), host_ns("ipc"));
    }
    // `--ipc none`: a namespace of its own without /dev/shm.
    let out = env.ok(&["run", "--rm", "--ipc", "none", &image, "ls", "/dev"]);
    assert!(!out.lines().any(|l| l == "shm"), "{out}");
    env.assert_no_container_leftovers();
}

#[test]
fn ipc_container_shares_the_donors_dev_shm() {
    let (_served, env, image) = setup();
    let donor = [
        "run",
        "-d",
        "--name",
        "donor",
        "--ipc",
        "shareable",
        "--shm-size",
        "8m",
    ];
    env.ok(&[&donor[..], &[&image, "sleep", "1000"]].concat());
    env.ok(&[
        "exec",
        "donor",
        "sh",
        "-c",
        "echo from-donor > /dev/shm/seg",
    ]);
    // The joiner sees the donor's POSIX shm files, and the donor sees the joiner's.
    let seen = env.ok(&[
        "run",
        "--rm",
        "--ipc",
        "container:donor",
        &image,
        "sh",
        "-c",
        "cat /dev/shm/seg; echo from-joiner > /dev/shm/back; df -k /dev/shm | tail -n 1",
    ]);
    let mut lines = seen.lines();
    assert_eq!(lines.next(), Some("from-donor"), "{seen}");
    let size_kib = lines.next().and_then(|l| l.split_whitespace().nth(1));
    assert_eq!(size_kib, Some("8192"), "{seen}");
    let back = env.ok(&["exec", "donor", "cat", "/dev/shm/back"]);
    assert_eq!(back.trim(), "from-joiner");
    // A private container's /dev/shm is its own.
    let private = env.ok(&["run", "--rm", &image, "ls", "/dev/shm"]);
    assert_eq!(private.trim(), "", "{private}");
    // The host-side mount goes with the donor.
    remove_all(&env);
    env.assert_no_container_leftovers();
}

#[test]
fn pid_ipc_uts_container_join_a_running_containers_namespaces() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--ipc",
        "shareable",
        &image,
        "sleep",
        "1000",
    ]);
    let pid = env
        .ok(&["inspect", "--format", "{{.State.Pid}}", "target"])
        .trim()
        .to_string();
    let id = env
        .ok(&["inspect", "--format", "{{.Id}}", "target"])
        .trim()
        .to_string();
    for kind in ["pid", "ipc", "uts"] {
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        let theirs = theirs.to_string_lossy();
        let flag = format!("--{kind}");
        for who in ["container:target", &format!("container:{}", &id[..12])] {
            assert_eq!(
                ns_in(&env, &[&flag, who], &image, kind),
                theirs,
                "{kind} {who}"
            );
        }
    }
    // In its pid namespace, the other container's processes are seen.
    let ps = env.ok(&["run", "--rm", "--pid", "container:target", &image, "ps"]);
    assert!(ps.contains("sleep 1000"), "{ps}");
    // The other container must be running, as in Docker.
    env.ok(&["run", "--name", "ended", &image, "true"]);
    let (code, err) = env.fail(&["run", "--pid", "container:ended", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("cannot join PID of a non running container: ended"),
        "{err}"
    );
    // Its IPC namespace only when it was made shareable (Docker's default is private).
    env.ok(&["run", "-d", "--name", "private", &image, "sleep", "1000"]);
    let (code, err) = env.fail(&["run", "--ipc", "container:private", &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains("container private: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"),
        "{err}"
    );
    let (_, err) = env.fail(&["run", "--ipc", "container:nosuch", &image, "true"]);
    assert!(
        err.to_lowercase().contains("no such container: nosuch"),
        "{err}"
    );
    remove_all(&env);
    env.assert_no_container_leftovers();
}

#[test]
fn devices_are_made_in_the_container_with_their_cgroup_permissions() {
    let (_served, env, image) = setup();
    let out = env.ok(&[
        "run",
        "--rm",
        "--device",
        "/dev/null:/dev/mynull",
        &image,
        "sh",
        "-c",
        "ls -l /dev/mynull && echo hi > /dev/mynull && echo written",
    ]);
    assert!(out.starts_with("crw-rw-rw-"), "{out}");
    assert!(
        out.contains("1,   3") && out.ends_with("written\n"),
        "{out}"
    );
    // Read-only in the cgroup: reads work, opening for writing is refused by the device
    // controller. A device outside Docker's default set (those are always `rwm`, in Docker
    // too); reading it only reports the current PM QoS latency.
    let latency = "/dev/cpu_dma_latency";
    if !std::path::Path::new(latency).exists() {
        eprintln!("{latency} missing: the permission check is skipped");
        env.assert_no_container_leftovers();
        return;
    }
    let out = env.ok(&[
        "run",
        "--rm",
        "--device",
        &format!("{latency}:/dev/ro:r"),
        &image,
        "sh",
        "-c",
        "head -c 4 /dev/ro | wc -c; (echo 1 > /dev/ro) 2>&1; true",
    ]);
    assert!(out.starts_with("4\n"), "{out}");
    assert!(out.contains("Operation not permitted"), "{out}");
    env.assert_no_container_leftovers();
}

#[test]
fn cidfile_gets_the_full_id_and_is_never_shared() {
    let (_served, env, image) = setup();
    let cidfile = env.dir.path().join("cid");
    let cid = cidfile.to_str().unwrap();
    let printed = env.ok(&[
        "run",
        "-d",
        "--cidfile",
        cid,
        "--name",
        "c1",
        &image,
        "true",
    ]);
    let id = std::fs::read_to_string(&cidfile).unwrap();
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(id, printed.trim());
    // A second run with the same file is refused before anything is made.
    let (code, err) = env.fail(&["run", "--cidfile", cid, &image, "true"]);
    assert_eq!(code, 125, "{err}");
    assert!(
        err.contains(&format!(
            "container ID file found, make sure the other container isn't running or delete {cid}"
        )),
        "{err}"
    );
    assert_eq!(env.ok(&["ps", "-a", "-q", "--no-trunc"]).trim(), id);
    // The file stays after the container is gone, as in Docker.
    env.ok(&["rm", "-f", "c1"]);
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    // `create` writes it too.
    let created = env.dir.path().join("cid-create");
    let printed = env.ok(&[
        "create",
        "--cidfile",
        created.to_str().unwrap(),
        &image,
        "true",
    ]);
    assert_eq!(std::fs::read_to_string(&created).unwrap(), printed.trim());
    env.ok(&["rm", printed.trim()]);
    // A run that creates nothing leaves no file.
    let other = env.dir.path().join("cid2");
    env.fail(&[
        "run",
        "--cidfile",
        other.to_str().unwrap(),
        "--pull",
        "never",
        "127.0.0.1:9/none/such:1",
        "true",
    ]);
    assert!(!other.exists());
    env.assert_no_container_leftovers();
}

#[test]
fn bad_values_fail_fast_with_nothing_created() {
    let (_served, env, image) = setup();
    let cidfile = env.dir.path().join("never");
    let cid = cidfile.to_str().unwrap();
    let cases: [(&[&str], &str); 14] = [
        (
            &["--device", "/dev/nope"],
            "error gathering device information while adding custom device \"/dev/nope\": no such file or directory",
        ),
        (
            &["--device", "/dev/null:/dev/x:rwx"],
            "invalid argument \"/dev/null:/dev/x:rwx\" for \"--device\" flag: bad mode specified: rwx",
        ),
        (&["--device", "/dev/null:/etc/x"], "must be under /dev"),
        (
            &["--add-host", "db:nope"],
            "invalid argument \"db:nope\" for \"--add-host\" flag: invalid IP address in add-host: \"nope\"",
        ),
        (
            &["--dns", "nine"],
            "invalid argument \"nine\" for \"--dns\" flag: IP address is not correctly formatted: nine",
        ),
        (
            &["--sysctl", "novalue"],
            "invalid argument \"novalue\" for \"--sysctl\" flag: sysctl 'novalue' is not allowed",
        ),
        (
            &["--sysctl", "vm.swappiness=1"],
            "invalid argument \"vm.swappiness=1\" for \"--sysctl\" flag: sysctl 'vm.swappiness=1' is not allowed",
        ),
        (
            &["--add-host", "nocolon"],
            "invalid argument \"nocolon\" for \"--add-host\" flag: bad format for add-host: \"nocolon\"",
        ),
        (
            &["--dns-search", "-x"],
            "invalid argument \"-x\" for \"--dns-search\" flag: -x is not a valid domain",
        ),
        (&["--pid", "weird"], "invalid PID mode"),
        (&["--ipc", "weird"], "invalid IPC mode"),
        (&["--uts", "weird"], "invalid UTS mode"),
        (&["--network", "container:nosuch"], "No such container: nosuch"),
        (&["--uts", "host", "--hostname", "h"], "Conflicting options"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--cidfile", cid];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[&image, "true"]);
        let (code, err) = env.fail(&args);
        assert_eq!(code, 125, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!cidfile.exists(), "{args:?}");
    }
    assert!(env.ok(&["ps", "-a", "-q"]).trim().is_empty());
    env.assert_no_container_leftovers();
}

#[test]
fn bool_flags_take_pflags_values() {
    let (_served, env, image) = setup();
    // `--rm=true` removes the container at its end, `--rm=false` (or `0`) keeps it.
    env.ok(&["run", "--rm=true", "--name", "pf-removed", &image, "true"]);
    env.ok(&["run", "--rm=false", "--name", "pf-kept", &image, "true"]);
    env.ok(&["run", "--rm=0", "--name", "pf-kept0", &image, "true"]);
    assert_eq!(
        env.ok(&["ps", "-a", "--format", "{{.Names}}"]),
        "pf-kept0\npf-kept\n"
    );
    // `-d=false` stays in the foreground, `-d=true` prints the id.
    assert_eq!(
        env.ok(&["run", "--rm", "-d=false", &image, "echo", "fg"]),
        "fg\n"
    );
    let id = env.ok(&["run", "-d=T", "--name", "pf-up", &image, "sleep", "1000"]);
    assert_eq!(id.trim().len(), 64, "{id}");
    assert_eq!(
        env.ok(&["ps", "-a=false", "--format", "{{.Names}}"]),
        "pf-up\n"
    );
    assert_eq!(env.ok(&["ps", "-a=1", "-q"]).lines().count(), 3);
    // Other bools: `--read-only`, and `--sig-proxy` bare.
    let (_, err) = env.fail(&["run", "--rm", "--read-only=true", &image, "touch", "/x"]);
    assert!(err.contains("Read-only file system"), "{err}");
    env.ok(&[
        "run",
        "--rm",
        "--read-only=false",
        "--sig-proxy",
        &image,
        "touch",
        "/x",
    ]);
    // A bad value is refused before anything is made.
    let (code, err) = env.fail(&["run", "--rm=maybe", "--name", "pf-never", &image]);
    assert_eq!(code, 125);
    assert!(
        err.starts_with("invalid argument \"maybe\" for \"--rm\" flag: strconv.ParseBool: parsing \"maybe\": invalid syntax"),
        "{err}"
    );
    env.ok(&["rm", "-f", "pf-up", "pf-kept", "pf-kept0"]);
    env.assert_no_container_leftovers();
}
