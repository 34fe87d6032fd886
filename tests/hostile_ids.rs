//! Hostile input on every verb of pelagos-runtime: ids that are paths (`..`, `../x`, `a/b`,
//! absolute), empty, too long or not UTF-8, and non-UTF-8 bytes anywhere on the command line.
//! Each must fail with exit code 1 and a message, never panic, and change nothing on disk:
//! canaries sit where a path built from the id would land.

mod support;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use support::{runtime_bin, unique, Bundle, OutputText};

/// A private directory: `<base>/root` is `--root`; canaries around and inside it.
struct World {
    base: PathBuf,
    bundle: Bundle,
}

impl World {
    fn new() -> World {
        let name = unique("hostile");
        let base = std::env::temp_dir().join(format!("pelagos-it-{name}"));
        let _ = std::fs::remove_dir_all(&base);
        let world = World {
            base,
            bundle: Bundle::busybox(&name),
        };
        // `..` from the root, `../x`, an absolute id, and `a/b` inside the root.
        for dir in ["root/a/b", "x", "abs"] {
            std::fs::create_dir_all(world.base.join(dir)).expect("mkdir canary dir");
            std::fs::write(world.base.join(dir).join("canary"), dir).expect("canary");
        }
        std::fs::write(world.base.join("canary"), "parent of the root").expect("canary");
        world
    }

    fn root(&self) -> PathBuf {
        self.base.join("root")
    }

    /// Every path under the base with the contents of its files.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        walk(&self.base, &mut out);
        out
    }

    fn rt(&self, args: &[OsString]) -> Output {
        Command::new(runtime_bin())
            .arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(&self.bundle.dir)
            .stdin(Stdio::null())
            .output()
            .expect("spawn runtime")
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.insert(path.clone(), Vec::new());
            walk(&path, out);
        } else {
            out.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
        }
    }
}

fn os(s: &str) -> OsString {
    s.into()
}

/// Every verb that takes an id, as argument lists with the id in its place.
fn verbs(bundle: &Path, id: &OsStr) -> Vec<Vec<OsString>> {
    let id = id.to_os_string();
    let b = bundle.as_os_str().to_os_string();
    vec![
        vec![os("create"), os("--bundle"), b.clone(), id.clone()],
        vec![os("run"), os("--bundle"), b, id.clone()],
        vec![os("start"), id.clone()],
        vec![os("state"), id.clone()],
        vec![os("kill"), id.clone(), os("KILL")],
        vec![os("kill"), os("--all"), id.clone()],
        vec![os("delete"), id.clone()],
        vec![os("delete"), os("--force"), id.clone()],
        vec![os("exec"), id.clone(), os("true")],
        vec![os("ps"), os("--format"), os("json"), id.clone()],
        vec![os("pause"), id.clone()],
        vec![os("resume"), id.clone()],
        vec![os("update"), os("--pids-limit"), os("10"), id.clone()],
        vec![os("events"), os("--stats"), id],
    ]
}

/// Exit code 1 (not a panic's 101 or an abort's 134), one `pelagos-runtime:` line naming
/// `words`.
fn assert_clean_failure(out: &Output, args: &[OsString], words: &str) {
    let err = out.stderr_text();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?}: expected exit code 1, got {:?}; stderr: {err}",
        out.status
    );
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one error line: {err:?}");
    assert!(
        lines[0].starts_with("pelagos-runtime: ") && lines[0].contains(words),
        "{args:?}: error line does not say {words:?}: {}",
        lines[0]
    );
}

#[test]
fn hostile_ids_are_refused_by_every_verb_and_change_nothing() {
    let world = World::new();
    let abs = world.base.join("abs");
    let too_long = "a".repeat(1025);
    let ids: Vec<(OsString, &str)> = vec![
        (os(".."), "\".\" and \"..\" are not allowed"),
        (os("."), "\".\" and \"..\" are not allowed"),
        (os("../x"), "only letters, digits and _ + - . are allowed"),
        (os("a/b"), "only letters, digits and _ + - . are allowed"),
        (
            abs.into_os_string(),
            "only letters, digits and _ + - . are allowed",
        ),
        (os(""), "it is empty"),
        (os(&too_long), "it is longer than 1024 bytes"),
        (
            OsString::from_vec(b"..\xff/../x".to_vec()),
            "only letters, digits and _ + - . are allowed",
        ),
    ];
    let before = world.snapshot();
    for (id, rule) in &ids {
        let shown = format!("invalid container id {:?}: {rule}", id.to_string_lossy());
        for args in verbs(&world.bundle.dir, id) {
            let out = world.rt(&args);
            assert_clean_failure(&out, &args, &shown);
            assert_eq!(world.snapshot(), before, "{args:?} changed the disk");
        }
    }
}

#[test]
fn longest_valid_id_is_accepted() {
    // runc's limit is 1024 bytes: such an id is valid and merely does not exist.
    let world = World::new();
    let id = "a".repeat(1024);
    let args = [os("state"), os(&id)];
    let out = world.rt(&args);
    assert_clean_failure(&out, &args, "does not exist");
}

#[test]
fn non_utf8_arguments_are_errors_not_panics() {
    let world = World::new();
    let bad = || OsString::from_vec(b"x\xff".to_vec());
    let not_utf8 = "argument \"x\u{fffd}\" is not valid UTF-8";
    let cases: Vec<(Vec<OsString>, &str)> = vec![
        // As a flag value.
        (
            vec![os("--log-format"), bad(), os("state"), os("c")],
            not_utf8,
        ),
        (vec![os("kill"), os("c"), bad()], not_utf8),
        (vec![os("ps"), os("--format"), bad(), os("c")], not_utf8),
        (
            vec![os("exec"), os("--cwd"), bad(), os("c"), os("true")],
            "does not exist",
        ),
        (
            vec![
                os("create"),
                os("--pid-file"),
                bad(),
                os("--bundle"),
                bad(),
                os("c"),
            ],
            "invalid config.json",
        ),
        (vec![os("update"), os("--memory"), bad(), os("c")], not_utf8),
        // As a flag name, before and after the verb.
        (
            vec![OsString::from_vec(b"--\xff".to_vec()), os("state"), os("c")],
            "unexpected argument",
        ),
        (
            vec![
                os("delete"),
                OsString::from_vec(b"--f\xff".to_vec()),
                os("c"),
            ],
            "unexpected argument",
        ),
        // As the verb.
        (vec![bad(), os("c")], "unrecognized subcommand"),
        // In the exec'd command (the process's argv; must be text for the OCI spec).
        (vec![os("exec"), os("c"), os("echo"), bad()], not_utf8),
    ];
    let before = world.snapshot();
    for (args, words) in &cases {
        let out = world.rt(args);
        assert_clean_failure(&out, args, words);
    }
    assert_eq!(world.snapshot(), before, "a failed call changed the disk");
}

#[test]
fn unknown_log_format_is_an_error() {
    let world = World::new();
    let log = world.base.join("log");
    let args = [
        os("--log"),
        log.clone().into_os_string(),
        os("--log-format"),
        os("xml"),
        os("state"),
        os("c"),
    ];
    let out = world.rt(&args);
    assert_clean_failure(&out, &args, "the log format must be text or json");
    // The error still reaches the log a caller such as containerd reads (as text).
    let logged = std::fs::read_to_string(&log).expect("log written");
    assert!(logged.contains("level=error"), "{logged}");
    assert!(logged.contains("text or json"), "{logged}");
    // Both known formats still work.
    for format in ["text", "json"] {
        let args = [os("--log-format"), os(format), os("state"), os("c")];
        let out = world.rt(&args);
        assert_clean_failure(&out, &args, "container c does not exist");
    }
}
