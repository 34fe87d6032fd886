//! `ps` (filters, `--format`, `-n`/`-l`/`-s`, STATUS texts), `top` (the host's `ps` over the
//! container's pids) and `logs --since/--until/--details`, through the `pelagos` binary.

mod cli_support;

use std::time::Duration;

use cli_support::{wait_for, Env, Served};

fn setup() -> (Served, Env, String) {
    cli_support::served_busybox()
}

/// `ps -a` names for `filter` (sorted).
fn names(env: &Env, filter: &[&str]) -> Vec<String> {
    let mut args = vec!["ps", "-a", "--format", "{{.Names}}"];
    for f in filter {
        args.extend(["--filter", f]);
    }
    let mut out: Vec<String> = env.ok(&args).lines().map(String::from).collect();
    out.sort();
    out
}

fn status(env: &Env, name: &str) -> String {
    env.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={name}"),
        "--format",
        "{{.Status}}",
    ])
    .trim()
    .to_string()
}

#[test]
fn ps_filters_formats_and_status_texts() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "--name",
        "pstl-zero",
        "-l",
        "tier=db",
        &image,
        "true",
    ]);
    env.run(&[
        "run",
        "--name",
        "pstl-exited",
        "-l",
        "tier=web",
        "-l",
        "solo",
        &image,
        "sh",
        "-c",
        "exit 3",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "pstl-up",
        "-v",
        "pstlvol:/data",
        &image,
        "sleep",
        "1000",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "pstl-paused",
        &image,
        "sleep",
        "1000",
    ]);
    env.ok(&["pause", "pstl-paused"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "pstl-healthy",
        "--health-cmd",
        "true",
        "--health-interval",
        "1s",
        &image,
        "sleep",
        "1000",
    ]);

    // STATUS texts.
    assert!(status(&env, "pstl-zero").starts_with("Exited (0) "));
    assert!(
        status(&env, "pstl-exited").starts_with("Exited (3) "),
        "{}",
        status(&env, "pstl-exited")
    );
    assert!(status(&env, "pstl-exited").ends_with(" ago"));
    assert!(status(&env, "pstl-up").starts_with("Up "));
    assert!(status(&env, "pstl-paused").ends_with(" (Paused)"));
    wait_for("healthy", || {
        status(&env, "pstl-healthy").ends_with(" (healthy)")
    });

    // Filters: each key, values of one key OR, keys AND.
    let all5 = [
        "pstl-exited",
        "pstl-healthy",
        "pstl-paused",
        "pstl-up",
        "pstl-zero",
    ];
    assert_eq!(names(&env, &[]), all5);
    assert!(names(&env, &["status=created"]).is_empty());
    assert_eq!(
        names(&env, &["status=exited", "status=created"]),
        ["pstl-exited", "pstl-zero"]
    );
    assert_eq!(names(&env, &["label=tier"]), ["pstl-exited", "pstl-zero"]);
    assert_eq!(names(&env, &["label=tier=web"]), ["pstl-exited"]);
    assert_eq!(names(&env, &["label=tier", "label=solo"]), ["pstl-exited"]);
    assert_eq!(names(&env, &["name=pstl-pa"]), ["pstl-paused"]);
    let id = env
        .ok(&["inspect", "--format", "{{.Id}}", "pstl-up"])
        .trim()
        .to_string();
    assert_eq!(names(&env, &[&format!("id={}", &id[..10])]), ["pstl-up"]);
    assert_eq!(names(&env, &["exited=3"]), ["pstl-exited"]);
    assert_eq!(names(&env, &["exited=0"]), ["pstl-zero"]);
    assert_eq!(names(&env, &["health=healthy"]), ["pstl-healthy"]);
    assert_eq!(names(&env, &["health=none", "status=running"]), ["pstl-up"]);
    assert_eq!(names(&env, &["volume=pstlvol"]), ["pstl-up"]);
    assert_eq!(names(&env, &["volume=/data"]), ["pstl-up"]);
    assert_eq!(names(&env, &[&format!("ancestor={image}")]), all5);
    assert!(names(&env, &["ancestor=no-such-image"]).is_empty());
    assert_eq!(names(&env, &["before=pstl-exited"]), ["pstl-zero"]);
    assert_eq!(names(&env, &["since=pstl-paused"]), ["pstl-healthy"]);
    assert_eq!(names(&env, &["is-task=false"]), all5);
    let (code, err) = env.fail(&["ps", "--filter", "x=1"]);
    assert_eq!(code, 1);
    assert!(err.contains("invalid filter 'x'"), "{err}");
    assert!(env
        .fail(&["ps", "--filter", "status=sleeping"])
        .1
        .contains("invalid filter 'status=sleeping'"));

    // Without -a only live containers; -n and -l count every state, newest first.
    assert_eq!(env.ok(&["ps", "--format", "{{.Names}}"]).lines().count(), 3);
    assert_eq!(
        env.ok(&["ps", "-n", "2", "--format", "{{.Names}}"]),
        "pstl-healthy\npstl-paused\n"
    );
    assert_eq!(
        env.ok(&["ps", "-l", "--format", "{{.Names}}"]),
        "pstl-healthy\n"
    );

    // Format fields, the default table, json, -q, --no-trunc, -s.
    let line = env.ok(&[
        "ps",
        "-a",
        "--filter",
        "name=pstl-exited",
        "--format",
        "{{.ID}}|{{.Command}}|{{.State}}|{{.Labels}}|{{.RunningFor}}|{{.Ports}}|{{.Networks}}",
    ]);
    let f: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(f[0].len(), 12);
    // moby's container list quotes an argument holding a space.
    assert_eq!(f[1], "\"sh -c 'exit 3'\"");
    assert_eq!(f[2], "exited");
    assert_eq!(f[3], "solo=,tier=web");
    assert!(f[4].ends_with(" ago"));
    assert_eq!(f[5], "");
    // Docker's method `.Label "k"`, in a pipeline, in `if`, and its errors.
    let labelled =
        |format: &str| env.ok(&["ps", "-a", "--filter", "label=tier", "--format", format]);
    assert_eq!(
        labelled(r#"{{.Names}}={{.Label "tier"}}|{{.Label "solo"}}|{{.Label "nope"}}"#),
        "pstl-exited=web||\npstl-zero=db||\n"
    );
    assert_eq!(
        labelled(
            r#"{{if .Label "tier"}}+{{end}}{{if .Label "solo"}}solo{{end}}{{ .Label "tier" | upper }}"#
        ),
        "+WEB\n+DB\n"
    );
    let (_, err) = env.fail(&["ps", "-a", "--format", "{{.Label}}"]);
    assert!(
        err.contains("wrong number of args for Label: want 1 got 0"),
        "{err}"
    );
    let (_, err) = env.fail(&["ps", "-a", "--format", r#"{{.Labels "tier"}}"#]);
    assert!(
        err.contains("Labels is not a method but has arguments"),
        "{err}"
    );
    assert_eq!(
        env.ok(&["ps", "--no-trunc", "-q", "--filter", "name=pstl-up"])
            .trim(),
        id
    );
    assert_eq!(
        env.ok(&["ps", "-q", "--filter", "name=pstl-up"]).trim(),
        &id[..12]
    );
    assert_eq!(
        env.ok(&[
            "ps",
            "-a",
            "--filter",
            "name=pstl-up",
            "--format",
            "{{.Mounts}} {{.LocalVolumes}}"
        ])
        .trim(),
        "pstlvol 1"
    );
    let table = env.ok(&["ps", "--filter", "name=pstl-up"]);
    let header = table.lines().next().unwrap();
    for title in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(title), "{header}");
    }
    assert!(table.lines().nth(1).unwrap().contains("\"sleep 1000\""));
    let custom = env.ok(&[
        "ps",
        "--filter",
        "name=pstl-up",
        "--format",
        "table {{.Names}}\t{{.State}}",
    ]);
    assert!(custom.starts_with("NAMES"), "{custom}");
    assert!(custom.contains("STATE"));
    let json: serde_json::Value = serde_json::from_str(
        env.ok(&["ps", "--filter", "name=pstl-up", "--format", "json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(json["Names"], "pstl-up");
    assert_eq!(json["State"], "running");
    // Docker's keys, nothing more: the labels map behind `.Label` stays out.
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "Command",
            "CreatedAt",
            "ID",
            "Image",
            "Labels",
            "LocalVolumes",
            "Mounts",
            "Names",
            "Networks",
            "Platform",
            "Ports",
            "RunningFor",
            "Size",
            "State",
            "Status"
        ]
    );
    env.ok(&[
        "exec",
        "pstl-up",
        "sh",
        "-c",
        "echo hello > /data/../written",
    ]);
    let sized = env.ok(&["ps", "-s", "--filter", "name=pstl-up"]);
    assert!(sized.lines().next().unwrap().ends_with("SIZE"), "{sized}");
    let size = env.ok(&["ps", "--filter", "name=pstl-up", "--format", "{{.Size}}"]);
    assert!(
        size.contains("B (virtual ") && size.trim().ends_with("B)"),
        "{size}"
    );

    env.ok(&["unpause", "pstl-paused"]);
    env.ok(&[
        "rm",
        "-f",
        "pstl-zero",
        "pstl-exited",
        "pstl-up",
        "pstl-paused",
        "pstl-healthy",
    ]);
    env.assert_no_container_leftovers();
}

#[test]
fn top_runs_the_hosts_ps_over_the_containers_pids() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "pstl-top", &image, "sleep", "1000"]);
    let out = env.ok(&["top", "pstl-top"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(
        rows[0].starts_with("root ") && rows[0].ends_with("sleep 1000"),
        "{out}"
    );

    let out = env.ok(&["top", "pstl-top", "-o", "pid,comm"]);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["PID", "COMMAND"]);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1][1], "sleep");

    let (code, err) = env.fail(&["top", "pstl-top", "--no-such-ps-option"]);
    assert_ne!(code, 0);
    assert!(err.contains("ps"), "{err}");
    let (_, err) = env.fail(&["top", "pstl-top", "-o", "comm"]);
    assert!(
        err.contains("Couldn't find PID field in ps output"),
        "{err}"
    );

    env.ok(&["rm", "-f", "pstl-top"]);
    env.assert_no_container_leftovers();
}

#[test]
fn logs_since_until_and_details() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "--name",
        "pstl-logs",
        "-l",
        "team=a b",
        "-e",
        "STAGE=dev",
        "--log-opt",
        "labels=team",
        "--log-opt",
        "env=STAGE",
        &image,
        "sh",
        "-c",
        "echo one; sleep 2; echo two",
    ]);
    let stamped = env.ok(&["logs", "-t", "pstl-logs"]);
    let times: Vec<&str> = stamped
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert_eq!(times.len(), 2, "{stamped}");
    // A moment between the two lines (they are two seconds apart).
    let first = humantime::parse_rfc3339_weak(times[0]).unwrap();
    let between = first + Duration::from_millis(1000);
    let unix = between.duration_since(std::time::UNIX_EPOCH).unwrap();
    let unix_text = format!("{}.{:09}", unix.as_secs(), unix.subsec_nanos());
    let rfc = humantime::format_rfc3339_nanos(between).to_string();
    assert_eq!(
        env.ok(&["logs", "--since", &unix_text, "pstl-logs"]),
        "two\n"
    );
    assert_eq!(env.ok(&["logs", "--until", &rfc, "pstl-logs"]), "one\n");
    assert_eq!(
        env.ok(&[
            "logs",
            "--since",
            times[0],
            "--until",
            times[0],
            "pstl-logs"
        ]),
        "one\n"
    );
    assert_eq!(
        env.ok(&["logs", "--since", "10m", "pstl-logs"]),
        "one\ntwo\n"
    );
    assert_eq!(env.ok(&["logs", "--until", "10m", "pstl-logs"]), "");
    assert!(env.fail(&["logs", "--since", "yesterday", "pstl-logs"]).0 != 0);

    assert_eq!(
        env.ok(&["logs", "--details", "pstl-logs"]),
        "STAGE=dev,team=a+b one\nSTAGE=dev,team=a+b two\n"
    );
    env.ok(&["run", "--name", "pstl-plain", &image, "echo", "x"]);
    assert_eq!(env.ok(&["logs", "--details", "pstl-plain"]), " x\n");

    env.ok(&["rm", "-f", "pstl-logs", "pstl-plain"]);
    env.assert_no_container_leftovers();
}
