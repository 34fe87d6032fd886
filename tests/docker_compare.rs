//! pelagos beside Docker's own daemon (Debian's docker.io on a private socket, driven by the
//! `docker` CLI 28): the same commands on the same image, compared on exit code, stdout and
//! stderr once container ids, ages and the program's name are made neutral.

mod cli_support;

use std::collections::BTreeSet;

use cli_support::dockerd::Dockerd;
use cli_support::{Env, Served};
use serde_json::Value;

/// One test's pair: pelagos with its own store, dockerd with its own, the image in both.
struct Pair {
    _served: Served,
    env: Env,
    docker: Dockerd,
    image: String,
}

/// What a command did, made neutral.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Pair {
    fn new() -> Pair {
        let (served, env, image) = cli_support::served_busybox();
        let docker = Dockerd::start(&env.cgroup_parent);
        let pulled = docker.run(&["pull", "-q", &image]);
        assert!(
            pulled.status.success(),
            "docker pull {image}: {}",
            String::from_utf8_lossy(&pulled.stderr)
        );
        Pair {
            _served: served,
            env,
            docker,
            image,
        }
    }

    /// `IMG` in `args` stands for the image.
    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        args.iter()
            .map(|a| if *a == "IMG" { self.image.as_str() } else { a })
            .collect()
    }

    fn docker(&self, args: &[&str]) -> Outcome {
        let out = self.docker.run(&self.args(args));
        self.outcome(out, "docker")
    }

    fn pelagos(&self, args: &[&str]) -> Outcome {
        let out = self.env.run(&self.args(args));
        self.outcome(out, "pelagos")
    }

    fn outcome(&self, out: std::process::Output, program: &str) -> Outcome {
        let text = |b: &[u8]| neutral(&String::from_utf8_lossy(b), program, &self.image);
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: text(&out.stdout),
            stderr: text(&out.stderr),
        }
    }

    /// Runs `args` in both; returns (docker's, pelagos's).
    fn both(&self, args: &[&str]) -> (Outcome, Outcome) {
        (self.docker(args), self.pelagos(args))
    }

    /// Runs `args` in both and records a difference in `diffs`.
    fn same(&self, diffs: &mut Vec<String>, args: &[&str]) {
        let (theirs, ours) = self.both(args);
        if theirs != ours {
            diffs.push(format!(
                "{args:?}\n  docker:  {theirs:?}\n  pelagos: {ours:?}"
            ));
        }
    }

    /// Runs `args` in both and compares only the exit codes.
    fn same_code(&self, diffs: &mut Vec<String>, args: &[&str]) -> (Outcome, Outcome) {
        let (theirs, ours) = self.both(args);
        if theirs.code != ours.code {
            diffs.push(format!(
                "{args:?}: exit {} (docker) vs {} (pelagos)\n  docker:  {theirs:?}\n  pelagos: {ours:?}",
                theirs.code, ours.code
            ));
        }
        (theirs, ours)
    }

    /// Runs `args` in both, expecting success.
    fn setup(&self, args: &[&str]) {
        let (theirs, ours) = self.both(args);
        assert!(
            theirs.code == 0 && ours.code == 0,
            "{args:?}: {theirs:?} / {ours:?}"
        );
    }
}

/// Ids, ages, the image's registry address and the program's name made neutral.
fn neutral(text: &str, program: &str, image: &str) -> String {
    // The private daemon runs without IP forwarding (it must not touch the host's network)
    // and says so after some verbs: that line is about the test's daemon, not the verb.
    let text = text.replace(
        "IPv4 forwarding is disabled. Networking will not work.\n",
        "",
    );
    let mut out = text.replace(image, "IMG").replace(program, "PROG");
    out = replace_hex_runs(&out, 64, "<ID>");
    out = replace_hex_runs(&out, 12, "<SHORTID>");
    for ago in ["Less than a second", "About a minute", "About an hour"] {
        out = out.replace(ago, "<AGE>");
    }
    replace_counted_ages(&out)
}

/// Every run of exactly `len` lowercase hex digits.
fn replace_hex_runs(text: &str, len: usize, with: &str) -> String {
    let mut out = String::new();
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() == len && run.chars().any(|c| c.is_ascii_digit()) {
            out.push_str(with);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_hexdigit() && !c.is_ascii_uppercase() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// `3 seconds`, `1 second`, `2 minutes` → `<AGE>`, line by line.
fn replace_counted_ages(text: &str) -> String {
    let units = ["second", "seconds", "minute", "minutes", "hours"];
    let line = |l: &str| -> String {
        let words: Vec<&str> = l.split(' ').collect();
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let next = words.get(i + 1).copied().unwrap_or_default();
            let unit = next.trim_end_matches(')');
            if words[i].parse::<u32>().is_ok() && units.contains(&unit) {
                // Keep what closed the unit's word (a parenthesis).
                out.push(format!("<AGE>{}", &next[unit.len()..]));
                i += 2;
            } else {
                out.push(words[i].to_string());
                i += 1;
            }
        }
        out.join(" ")
    };
    text.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// A table's rows as their fields (columns are three or more spaces apart).
fn fields(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("   ")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect()
        })
        .collect()
}

fn assert_no_diffs(diffs: Vec<String>) {
    assert!(
        diffs.is_empty(),
        "{} difference(s) from Docker:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn runs_and_execs_exit_and_print_as_dockers() {
    let p = Pair::new();
    let mut diffs = Vec::new();
    let none = ["--network", "none"];
    let run = |rest: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["run", "--rm", none[0], none[1]].map(String::from).to_vec();
        v.extend(rest.iter().map(|s| s.to_string()));
        v
    };
    fn call(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    for rest in [
        &["IMG", "echo", "hi"][..],
        &["IMG", "sh", "-c", "echo out; echo err >&2; exit 3"],
        &["-e", "A=1", "-w", "/tmp", "IMG", "sh", "-c", "echo $A; pwd"],
        &["-u", "65534:65534", "IMG", "id"],
    ] {
        p.same(&mut diffs, &call(&run(rest)));
    }
    // A command that cannot start: Docker's code, the shape of its message (runc's own words
    // inside differ) and the help line.
    for (cmd, code) in [("/nonexistent", 127), ("/etc", 126)] {
        let (theirs, ours) = p.same_code(&mut diffs, &call(&run(&["IMG", cmd])));
        assert_eq!(theirs.code, code);
        let shape = |o: &Outcome| {
            let first = o.stderr.lines().next().unwrap_or_default().to_string();
            let tail: Vec<String> = o.stderr.lines().skip(1).map(String::from).collect();
            (
                first.starts_with("PROG: Error response from daemon: "),
                first.contains(&format!("exec: \"{cmd}\"")),
                tail,
            )
        };
        if shape(&theirs) != shape(&ours) {
            diffs.push(format!("run {cmd}: {theirs:?} vs {ours:?}"));
        }
    }

    p.setup(&[
        "run",
        "-d",
        "--name",
        "x1",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    p.same(
        &mut diffs,
        &["exec", "x1", "sh", "-c", "echo out; echo err >&2; exit 5"],
    );
    p.same(
        &mut diffs,
        &[
            "exec",
            "-e",
            "B=2",
            "-w",
            "/etc",
            "x1",
            "sh",
            "-c",
            "echo $B; pwd",
        ],
    );
    p.same(&mut diffs, &["exec", "-d", "x1", "true"]);
    // Docker's exec says 126 for a command it cannot start, found or not; -d says 1.
    for args in [
        &["exec", "x1", "/nonexistent"][..],
        &["exec", "x1", "/etc"],
        &["exec", "-d", "x1", "/nonexistent"],
    ] {
        p.same_code(&mut diffs, args);
    }
    p.setup(&["rm", "-f", "x1"]);
    assert_no_diffs(diffs);
}

#[test]
fn refusals_read_and_exit_as_dockers() {
    let p = Pair::new();
    let mut diffs = Vec::new();
    // No such container, for every verb that takes one.
    for args in [
        &["stop", "nosuch"][..],
        &["start", "nosuch"],
        &["restart", "nosuch"],
        &["kill", "nosuch"],
        &["rm", "nosuch"],
        &["rm", "-f", "nosuch"],
        &["pause", "nosuch"],
        &["unpause", "nosuch"],
        &["wait", "nosuch"],
        &["logs", "nosuch"],
        &["top", "nosuch"],
        &["diff", "nosuch"],
        &["export", "nosuch"],
        &["port", "nosuch"],
        &["attach", "nosuch"],
        &["exec", "nosuch", "true"],
        &["rename", "nosuch", "other"],
        &["update", "--cpu-shares", "512", "nosuch"],
        &["inspect", "nosuch"],
        &["container", "inspect", "nosuch"],
        &["cp", "nosuch:/etc/passwd", "-"],
        &["volume", "inspect", "nosuch"],
        &["volume", "rm", "nosuch"],
    ] {
        p.same(&mut diffs, args);
    }

    // A container that is not running.
    p.setup(&[
        "create",
        "--name",
        "idle",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    for args in [
        &["pause", "idle"][..],
        &["unpause", "idle"],
        &["kill", "idle"],
        &["exec", "idle", "true"],
        &["attach", "idle"],
        &["top", "idle"],
        &["rename", "idle", "idle"],
        &["port", "idle"],
        &["wait", "nosuch", "idle"],
    ] {
        p.same(&mut diffs, args);
    }
    // A running one, and a paused one.
    p.setup(&["start", "idle"]);
    p.same(&mut diffs, &["rm", "idle"]);
    p.same(&mut diffs, &["unpause", "idle"]);
    p.setup(&["pause", "idle"]);
    p.same(&mut diffs, &["pause", "idle"]);
    p.same(&mut diffs, &["rm", "idle"]);
    p.same(&mut diffs, &["exec", "idle", "true"]);
    p.setup(&["unpause", "idle"]);

    // Names taken, in `run` (125 and its help line) and `create` (1).
    p.same(
        &mut diffs,
        &["run", "-d", "--name", "idle", "--network", "none", "IMG"],
    );
    p.same(
        &mut diffs,
        &["create", "--name", "idle", "--network", "none", "IMG"],
    );
    // Volumes in use; copies the client refuses.
    p.setup(&["volume", "create", "data"]);
    p.setup(&[
        "run",
        "-d",
        "--name",
        "user",
        "-v",
        "data:/d",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    p.same(&mut diffs, &["volume", "rm", "data"]);
    p.same(&mut diffs, &["cp", "idle:/etc/passwd", "user:/tmp/"]);
    p.same(&mut diffs, &["cp", "idle:/etc", "/nonexistent-dir/sub"]);
    // (Docker's client doubles the leading slash in its message: the code is compared.)
    p.same_code(&mut diffs, &["cp", "/nonexistent-file", "idle:/tmp/"]);
    p.same(&mut diffs, &["cp", "idle:/nosuch", "-"]);
    p.setup(&["rm", "-f", "idle", "user"]);
    p.same(&mut diffs, &["volume", "rm", "data"]);
    assert_no_diffs(diffs);
}

#[test]
fn verbs_print_what_dockers_print() {
    let p = Pair::new();
    let mut diffs = Vec::new();
    let (theirs, ours) = p.both(&[
        "create",
        "--name",
        "c1",
        "-l",
        "tier=web",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    assert_eq!((theirs.code, ours.code), (0, 0));
    assert_eq!(theirs.stdout, ours.stdout, "create prints the id");
    for args in [
        &["start", "c1"][..],
        &["pause", "c1"],
        &["unpause", "c1"],
        &[
            "exec",
            "c1",
            "sh",
            "-c",
            "echo hi > /tmp/new; mkdir /tmp/dir; rm /etc/group",
        ],
        &["diff", "c1"],
        &["top", "c1"],
        &["port", "c1"],
        // (Docker takes limits this host cannot enforce and drops them with a warning;
        // pelagos refuses them: compared where both can act.)
        &["update", "--restart", "on-failure:3", "c1"],
        &[
            "inspect",
            "-f",
            "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}} {{.Config.Labels}} {{.State.Status}}",
            "c1",
        ],
        &["rename", "c1", "c2"],
        &["restart", "-t", "0", "c2"],
        &["kill", "c2"],
        &["wait", "c2"],
        &["logs", "c2"],
        &["rm", "c2"],
        &["volume", "create", "v1"],
        &["volume", "create", "--label", "k=v", "v2"],
        &["volume", "ls"],
        &["volume", "ls", "-q", "--filter", "label=k"],
        &[
            "volume",
            "inspect",
            "-f",
            "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}",
            "v2",
        ],
        &["volume", "rm", "v1", "v2"],
    ] {
        if args[0] == "diff" {
            // Docker lists changes in no fixed order.
            let (theirs, ours) = p.both(args);
            let sorted = |o: &Outcome| {
                let mut lines: Vec<String> = o.stdout.lines().map(String::from).collect();
                lines.sort();
                (o.code, lines)
            };
            if sorted(&theirs) != sorted(&ours) {
                diffs.push(format!("diff: {theirs:?} vs {ours:?}"));
            }
            continue;
        }
        if args[0] == "top" {
            // The same columns; pids differ (Docker's are in its own pid namespace here).
            let (theirs, ours) = p.both(args);
            let header = |o: &Outcome| fields(&o.stdout).into_iter().next();
            let cmd = |o: &Outcome| fields(&o.stdout).get(1).and_then(|r| r.last().cloned());
            if header(&theirs) != header(&ours) || cmd(&theirs) != cmd(&ours) {
                diffs.push(format!("top: {theirs:?} vs {ours:?}"));
            }
            continue;
        }
        p.same(&mut diffs, args);
    }

    // ps: the same columns and cells (widths follow the ages, which differ).
    p.setup(&[
        "create",
        "--name",
        "made",
        "--network",
        "none",
        "IMG",
        "echo",
        "a b",
    ]);
    let (theirs, ours) = p.both(&[
        "run",
        "--name",
        "ran",
        "--network",
        "none",
        "IMG",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!((theirs.code, ours.code), (3, 3));
    p.setup(&[
        "run",
        "-d",
        "--name",
        "up",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    let (theirs, ours) = p.both(&["ps", "-a"]);
    if fields(&theirs.stdout) != fields(&ours.stdout) {
        diffs.push(format!("ps -a:\n{}\nvs\n{}", theirs.stdout, ours.stdout));
    }
    for args in [
        &[
            "ps",
            "-a",
            "--format",
            "{{.Names}}|{{.Command}}|{{.Status}}|{{.Ports}}|{{.Labels}}",
        ][..],
        &["ps", "-q", "--filter", "status=exited"],
        &["ps", "-a", "--filter", "name=ra", "--format", "{{.Names}}"],
        &["ps", "-n", "1", "--format", "{{.Names}}"],
        &["container", "ls", "-l", "--format", "{{.Names}} {{.Image}}"],
    ] {
        p.same(&mut diffs, args);
    }
    // The JSON keys scripts read.
    let keys = |o: &Outcome| -> BTreeSet<String> {
        let v: Value =
            serde_json::from_str(o.stdout.lines().next().unwrap_or("{}")).unwrap_or(Value::Null);
        v.as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (theirs, ours) = p.both(&["ps", "-a", "--format", "json"]);
    if keys(&theirs) != keys(&ours) {
        diffs.push(format!(
            "ps --format json keys: {:?} vs {:?}",
            keys(&theirs),
            keys(&ours)
        ));
    }
    p.setup(&["rm", "-f", "made", "ran", "up"]);
    assert_no_diffs(diffs);
}

#[test]
fn inspect_and_events_carry_dockers_keys() {
    let p = Pair::new();
    let mut diffs = Vec::new();
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
        .to_string();
    p.setup(&[
        "run",
        "--rm",
        "--name",
        "once",
        "--network",
        "none",
        "IMG",
        "true",
    ]);
    p.setup(&[
        "create",
        "--name",
        "k1",
        "-l",
        "a=b",
        "-e",
        "X=1",
        "--network",
        "none",
        "IMG",
        "sleep",
        "1000",
    ]);
    p.setup(&["start", "k1"]);
    p.setup(&["exec", "k1", "true"]);
    p.setup(&["pause", "k1"]);
    p.setup(&["unpause", "k1"]);
    p.setup(&["kill", "k1"]);
    p.setup(&["rename", "k1", "k2"]);

    // inspect: every key Docker has at the top and one level down, no key it lacks.
    let tree = |o: &Outcome| -> BTreeSet<String> {
        let v: Value = serde_json::from_str(&o.stdout).unwrap_or(Value::Null);
        let mut keys = BTreeSet::new();
        if let Some(top) = v.get(0).and_then(Value::as_object) {
            for (k, inner) in top {
                keys.insert(k.clone());
                if let Some(m) = inner.as_object() {
                    keys.extend(m.keys().map(|i| format!("{k}.{i}")));
                }
            }
        }
        keys
    };
    let (theirs, ours) = p.both(&["inspect", "k2"]);
    let (t, o) = (tree(&theirs), tree(&ours));
    let missing: Vec<_> = t.difference(&o).collect();
    let extra: Vec<_> = o.difference(&t).collect();
    if !missing.is_empty() || !extra.is_empty() {
        diffs.push(format!(
            "inspect keys: missing {missing:?}, extra {extra:?}"
        ));
    }
    p.setup(&["rm", "k2"]);

    // events: the same container actions, in order, with the same names.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() + 1).to_string())
        .unwrap_or_default();
    p.same(
        &mut diffs,
        &[
            "events",
            "--since",
            &since,
            "--until",
            &until,
            "--filter",
            "type=container",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.a}}",
        ],
    );
    assert_no_diffs(diffs);
}

#[test]
fn neutral_text_hides_ids_and_ages_only() {
    let id = "0123456789abcdef".repeat(4);
    let text = format!(
        "docker: {id} Up 3 seconds (Paused)\nExited (0) 2 minutes ago\nLess than a second ago"
    );
    assert_eq!(
        neutral(&text, "docker", "img:1"),
        "PROG: <ID> Up <AGE> (Paused)\nExited (0) <AGE> ago\n<AGE> ago"
    );
    assert_eq!(neutral("c1 deadbeefcafe", "x", "y"), "c1 deadbeefcafe");
    assert_eq!(neutral("0123456789ab", "x", "y"), "<SHORTID>");
}
