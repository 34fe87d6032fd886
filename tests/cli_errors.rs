//! Command-line mistakes compared with Docker's own CLI: for each, `docker` (the CLI alone:
//! these errors come before any daemon is asked) and `pelagos` print the same sentence and
//! usage lines (with the program's name swapped) and exit with the same code.

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::{Env, Served};
use pelagos_testkit::images as kit;
use pelagos_testkit::registry::Auth;

/// The docker CLI: `/usr/local/bin/docker` (the CLI 28 these hosts carry) before `docker` on
/// the PATH (Debian's 20.10 client, if docker.io is installed).
fn docker() -> Command {
    let program = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the docker CLI is installed on these hosts (/usr/local/bin/docker)");
    let mut c = Command::new(program);
    // No daemon is ever reached: every case fails while parsing.
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env(
            "DOCKER_CONFIG",
            std::env::temp_dir().join("pelagos-cli-errors-docker"),
        )
        .stdin(Stdio::null());
    c
}

/// Exit code and stderr, with the program's name and a known cobra misprint ("SRun")
/// normalised.
fn outcome(mut c: Command, args: &[&str], name: &str) -> (i32, String) {
    let out = c.args(args).output().expect("spawn");
    let text = String::from_utf8_lossy(&out.stderr)
        .replace(name, "PROG")
        .replace("SRun 'PROG", "Run 'PROG");
    (out.status.code().unwrap_or(-1), text)
}

/// Cases whose whole output matches.
const SAME_TEXT: &[&[&str]] = &[
    &["run", "--bogus", "img"],
    &["run", "-z", "img"],
    &["run", "-m"],
    &["run"],
    &["bogus"],
    &["--bogus"],
    &["container", "bogus"],
    &["volume", "bogus"],
    &["image", "bogus"],
    &["system", "bogus"],
    &["ps", "--bogus"],
    &["ps", "x"],
    &["logs", "--tail"],
    &["stop"],
    &["stop", "-t"],
    &["rm"],
    &["logs"],
    &["logs", "a", "b"],
    &["logs", "--bogus", "x"],
    &["exec"],
    &["exec", "c"],
    &["exec", "-z", "c", "true"],
    &["commit"],
    &["tag", "a"],
    &["images", "a", "b"],
    &["load", "x"],
    &["version", "x"],
    &["pull"],
    &["push"],
    &["history"],
    &["rmi"],
    &["save"],
    &["inspect"],
    &["start"],
    &["restart"],
    &["kill"],
    &["wait"],
    &["pause"],
    &["unpause"],
    &["top"],
    &["volume", "rm"],
    &["volume", "inspect"],
    &["volume", "create", "a", "b"],
    &["volume", "ls", "x"],
    &["image", "ls", "a", "b"],
    &["image", "inspect"],
    &["image", "rm"],
    &["image", "tag", "a"],
    &["container", "ls", "x"],
    &["container", "rm"],
    &["container", "inspect"],
    &["system", "df", "x"],
    &["container", "run"],
    &["container", "run", "--bogus", "img"],
    &["container", "start"],
    &["container", "stop", "-t"],
    &["container", "exec", "c"],
    &["container", "logs", "--bogus", "x"],
    &["container", "wait"],
    &["container", "top"],
    &["cp"],
    &["cp", "--bogus"],
    &["container", "cp", "a"],
    &["diff"],
    &["container", "diff"],
    &["export"],
    &["container", "export", "a", "b"],
    &["events", "x"],
    &["system", "events", "x"],
    &["events", "--bogus"],
    &["create"],
    &["create", "-d", "img"],
    &["container", "create", "--bogus", "img"],
    &["rename", "a"],
    &["container", "rename"],
    &["attach"],
    &["container", "attach", "a", "b"],
    &["attach", "--bogus", "a"],
    // Bool flags take pflag's values (`--rm=false`); a bad one is Go's ParseBool error.
    &["run", "--rm=maybe", "img"],
    &["run", "--rm=", "img"],
    &["run", "-d=yes", "img"],
    &["run", "-dit=maybe", "img"],
    &["run", "-d=", "img"],
    &["run", "--sig-proxy=maybe", "img"],
    &["run", "--privileged=T", "--rm=F", "--bogus", "img"],
    &["create", "--rm=nope", "img"],
    &["exec", "-it=maybe", "c", "sh"],
    &["ps", "-a=maybe"],
    &["ps", "-a=false", "x"],
    &["ps", "-a", "true"],
    &["ps", "--quiet="],
    &["container", "ls", "--no-trunc=yes"],
    &["images", "--all=2"],
    &["volume", "ls", "-q=x"],
    &["rm", "-f=maybe", "a"],
    &["logs", "-f=maybe", "c"],
    &["port"],
    &["port", "a", "b", "c"],
    &["port", "--bogus", "a"],
    &["container", "port"],
    // Networks: arity, aliases named by the command's own name, flags, and the IPAM flags
    // Docker's CLI pairs before asking the daemon.
    &["network", "bogus"],
    &["network", "create"],
    &["network", "create", "a", "b"],
    &["network", "ls", "x"],
    &["network", "list", "x"],
    &["network", "rm"],
    &["network", "remove"],
    &["network", "inspect"],
    &["network", "prune", "x"],
    &["network", "connect", "a"],
    &["network", "disconnect", "a"],
    &["network", "connect", "--bogus", "a", "b"],
    &["network", "create", "--bogus", "a"],
    &["network", "create", "-d"],
    &["network", "create", "--subnet"],
    &["network", "create", "--ipv6=maybe", "a"],
    &["network", "create", "--label", "=x", "a"],
    &["network", "ls", "-f", "x"],
    &["network", "ls", "-f"],
    &["network", "ls", "-q=maybe"],
    &["network", "inspect", "-f"],
    &["network", "rm", "-f=x", "a"],
    &["network", "prune", "--filter", "x"],
    &["network", "prune", "--bogus"],
    &["network", "create", "--gateway", "10.0.0.1", "a"],
    &[
        "network",
        "create",
        "--subnet",
        "10.0.0.0/8",
        "--gateway",
        "11.0.0.1",
        "a",
    ],
    &[
        "network",
        "create",
        "--subnet",
        "10.0.0.0/8",
        "--ip-range",
        "10.1.0.0",
        "a",
    ],
    &[
        "network",
        "create",
        "--subnet",
        "10.0.0.0/8,10.0.0.0/16",
        "a",
    ],
    &[
        "network",
        "create",
        "--subnet",
        "nope",
        "--ip-range",
        "10.0.0.0/8",
        "a",
    ],
    &["network", "create", "--aux-address", "x", "a"],
    &[
        "network",
        "create",
        "--subnet",
        "10.0.0.0/8,11.0.0.0/8",
        "--ip-range",
        "10.1.0.0/16,10.2.0.0/16",
        "a",
    ],
];

#[test]
fn mistakes_read_and_exit_as_dockers() {
    let env = Env::new();
    let mut differences = Vec::new();
    for args in SAME_TEXT {
        let theirs = outcome(docker(), args, "docker");
        let ours = outcome(env.cmd(), args, "pelagos");
        if theirs != ours {
            differences.push(format!(
                "{args:?}\n  docker  ({}): {:?}\n  pelagos ({}): {:?}",
                theirs.0, theirs.1, ours.0, ours.1
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Invalid flag values: the same sentence up to the reason (Go's parser words its reasons
/// its own way) and the same code.
#[test]
fn invalid_flag_values_name_the_flag_as_docker_does() {
    let env = Env::new();
    for args in [&["stop", "-t", "x", "a"][..], &["run", "-m", "64x", "img"]] {
        let (code, theirs) = outcome(docker(), args, "docker");
        let (our_code, ours) = outcome(env.cmd(), args, "pelagos");
        assert_eq!((our_code, code), (125, 125), "{args:?}: {ours}");
        let head = |t: &str| t.split(" flag: ").next().unwrap_or_default().to_string();
        assert_eq!(head(&ours), head(&theirs), "{args:?}");
        assert!(
            ours.contains("Usage:  PROG"),
            "{args:?}: no usage line: {ours}"
        );
    }
    // Nothing was created by any of it.
    env.assert_no_container_leftovers();
}

/// Every `container` subcommand is its top-level verb.
#[test]
fn container_subcommands_are_the_verbs() {
    let image = kit::busybox().unwrap().cmd(["sh"]);
    let served = Served::start(Auth::None, &[(&image, "box:1")]);
    let env = Env::new();
    let image = served.image("box:1");
    env.ok(&["pull", "-q", &image]);
    let c = |args: &[&str]| {
        let mut v = vec!["container"];
        v.extend_from_slice(args);
        env.ok(&v)
    };
    c(&[
        "run",
        "-d",
        "--name",
        "sub",
        &image,
        "sh",
        "-c",
        "echo hello; sleep 100",
    ]);
    assert_eq!(c(&["exec", "sub", "echo", "hi"]).trim(), "hi");
    assert!(c(&["top", "sub"]).contains("sleep"));
    // Nothing is published (`--network none`): no lines, and an error for a port asked for.
    assert_eq!(c(&["port", "sub"]), "");
    let (code, err) = env.fail(&["container", "port", "sub", "80/tcp"]);
    assert_eq!(
        (code, err.trim()),
        (1, "Error: No public port '80/tcp' published for sub")
    );
    c(&["pause", "sub"]);
    c(&["unpause", "sub"]);
    c(&["stop", "-t", "0", "sub"]);
    assert_eq!(c(&["wait", "sub"]).trim(), "137");
    assert!(c(&["logs", "sub"]).contains("hello"));
    c(&["start", "sub"]);
    c(&["kill", "sub"]);
    c(&["restart", "-t", "0", "sub"]);
    c(&["stats", "--no-stream", "sub"]);
    c(&["rm", "-f", "sub"]);
    env.assert_no_container_leftovers();
}
