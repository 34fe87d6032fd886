//! Hostile names on the `pelagos` CLI's verbs: container names and ids, volume names and
//! image references that are paths (`..`, `../x`, `/abs`, `a/b`), empty or not UTF-8. Each must
//! fail with a message, never panic, and change nothing on disk: canaries sit where a path
//! built from the name would land, beside and inside `--root` and `--runroot`.

mod cli_support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Output;

use cli_support::{Env, Served};
use pelagos_testkit::images as kit;
use pelagos_testkit::registry::Auth;

/// Every path under `dir` with the contents of its files (directories: empty).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    walk(dir, &mut out);
    out
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        // Lock files are opened (not changed) by every verb that reads records.
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().ends_with("lock"))
        {
            continue;
        }
        out.insert(
            path.clone(),
            if is_dir {
                Vec::new()
            } else {
                std::fs::read(&path).unwrap_or_default()
            },
        );
        if is_dir {
            walk(&path, out);
        }
    }
}

/// Canaries where `..`, `../x`, `/abs` (made absolute inside our dir) or `a/b` would land from
/// the records, volumes and runtime state directories.
fn plant_canaries(env: &Env) -> PathBuf {
    let base = env.dir.path();
    let abs = base.join("abs");
    for dir in [
        base.join("x"),
        abs.clone(),
        env.root.join("x"),
        env.root.join("containers/a/b"),
        env.root.join("volumes/a/b"),
        env.runroot.join("a/b"),
    ] {
        std::fs::create_dir_all(&dir).expect("mkdir canary");
        std::fs::write(dir.join("canary"), dir.to_string_lossy().as_bytes()).expect("canary");
    }
    std::fs::write(base.join("canary"), "parent").expect("canary");
    abs
}

fn pelagos(env: &Env, args: &[OsString]) -> Output {
    env.cmd().args(args).output().expect("spawn pelagos")
}

/// Failed, with a message, without a panic (101) or an abort (134). `rm -f` of what does not
/// exist says so and exits 0, as Docker's.
fn assert_clean_failure(out: &Output, args: &[OsString]) {
    let err = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    let forced_rm = args.first().is_some_and(|a| a == "rm") && args.iter().any(|a| a == "-f");
    assert!(
        code.is_some_and(|c| c != 101 && c != 134 && (c != 0 || forced_rm)),
        "{args:?}: exit {:?}, stderr: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(!err.trim().is_empty(), "{args:?}: no message");
}

fn os(s: &str) -> OsString {
    s.into()
}

#[test]
fn hostile_names_change_nothing_on_any_verb() {
    let served = Served::start(Auth::None, &[(&kit::busybox().unwrap(), "bb:1")]);
    let env = Env::new();
    let image = served.image("bb:1");
    env.ok(&["pull", "-q", &image]);
    // A real container, so that the records directory and its lock exist.
    env.ok(&["run", "--name", "kept", &image, "true"]);
    let abs = plant_canaries(&env);
    let names: Vec<OsString> = vec![
        os(".."),
        os("."),
        os("../x"),
        os("../../x"),
        os("a/b"),
        abs.into_os_string(),
        os(""),
        OsString::from_vec(b"..\xff/x".to_vec()),
    ];
    let before = snapshot(env.dir.path());
    for name in &names {
        let n = || name.clone();
        let volume = {
            let mut v = name.clone();
            v.push(":/data");
            v
        };
        let mut calls: Vec<Vec<OsString>> = vec![
            vec![os("run"), os("--name"), n(), os(&image), os("true")],
            vec![os("rm"), os("-f"), os("-v"), n()],
            vec![os("container"), os("rm"), n()],
            vec![os("stop"), n()],
            vec![os("restart"), n()],
            vec![os("start"), n()],
            vec![os("kill"), n()],
            vec![os("wait"), n()],
            vec![os("logs"), n()],
            vec![os("inspect"), n()],
            vec![os("container"), os("inspect"), n()],
            vec![os("pause"), n()],
            vec![os("unpause"), n()],
            vec![os("top"), n()],
            vec![os("stats"), os("--no-stream"), n()],
            vec![os("exec"), n(), os("true")],
            vec![os("commit"), n()],
            vec![os("volume"), os("create"), n()],
            vec![os("volume"), os("rm"), os("-f"), n()],
            vec![os("volume"), os("inspect"), n()],
            vec![os("rmi"), os("-f"), n()],
            vec![os("image"), os("inspect"), n()],
            vec![os("history"), n()],
            // (As a target, `a/b` is a valid reference: docker.io/a/b:latest.)
            vec![os("tag"), n(), os("ok:1")],
        ];
        // An absolute source, or one starting with `.` (Docker's CLI since 23 takes `.`, `..`,
        // `./x`, `../x` as host paths relative to the working directory), is a bind mount of
        // the host, not a volume name: binding it is Docker's behaviour, not an attack.
        if !name.as_bytes().starts_with(b"/") && !name.as_bytes().starts_with(b".") {
            calls.push(vec![
                os("run"),
                os("--rm"),
                os("-v"),
                volume,
                os(&image),
                os("true"),
            ]);
        }
        for args in &calls {
            let out = pelagos(&env, args);
            assert_clean_failure(&out, args);
            let after = snapshot(env.dir.path());
            let changed: Vec<&PathBuf> = after
                .keys()
                .chain(before.keys())
                .filter(|k| after.get(*k) != before.get(*k))
                .collect();
            assert!(changed.is_empty(), "{args:?} changed the disk: {changed:?}");
        }
    }
    env.ok(&["rm", "kept"]);
}

#[test]
fn non_utf8_arguments_are_errors_not_panics() {
    let env = Env::new();
    std::fs::create_dir_all(&env.root).expect("root");
    let bad = || OsString::from_vec(b"x\xff".to_vec());
    let cases: Vec<Vec<OsString>> = vec![
        vec![os("rm"), bad()],
        vec![os("run"), os("--name"), bad(), os("img")],
        vec![os("run"), os("-e"), bad(), os("img")],
        vec![os("ps"), os("--format"), bad()],
        vec![os("volume"), os("create"), bad()],
        vec![os("pull"), bad()],
        vec![OsString::from_vec(b"--\xff".to_vec()), os("ps")],
        vec![bad()],
    ];
    let before = snapshot(env.dir.path());
    for args in &cases {
        let out = pelagos(&env, args);
        assert_clean_failure(&out, args);
    }
    assert_eq!(
        snapshot(env.dir.path()),
        before,
        "a failed call changed the disk"
    );
}
