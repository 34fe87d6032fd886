//! `cp`, `diff` and `export` through the CLI on real containers, running and stopped:
//! Docker's path rules, ownership, tar streams on stdin/stdout, a hostile container's
//! symlinks (reads and writes stay inside it), and no mount left behind.

mod cli_support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Stdio;

use cli_support::{Env, Served};
use pelagos_testkit::images::{self as kit, Compression, LayerBuilder};
use pelagos_testkit::registry::Auth;

/// busybox with a layer of test files and hostile symlinks: `/escape -> /`,
/// `/up -> ../../../../etc`, `/dstlink -> /`.
fn setup() -> (Served, Env, String) {
    let extra = LayerBuilder::new()
        .dir("img", 0o755)
        .file("img/keep.txt", "keep\n", 0o644)
        .file("img/gone.txt", "gone\n", 0o644)
        .file("img/change.txt", "before\n", 0o644)
        .dir("tmp", 0o1777)
        .symlink("escape", "/")
        .symlink("up", "../../../../etc")
        .symlink("dstlink", "/")
        .symlink("img/link.txt", "keep.txt");
    let image = kit::busybox()
        .unwrap()
        .layer(extra, Compression::Gzip)
        .cmd(["sh"]);
    let served = Served::start(Auth::None, &[(&image, "box:1")]);
    let env = Env::new();
    let name = served.image("box:1");
    env.ok(&["pull", "-q", &name]);
    (served, env, name)
}

/// No mount under the test's directory (a stopped container's copies mount nothing that
/// outlives them).
fn assert_no_mounts(env: &Env) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = env.dir.path().to_string_lossy().into_owned();
    let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&ours)).collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

fn finish(env: &Env, names: &[&str]) {
    for n in names {
        env.ok(&["rm", "-f", n]);
    }
    env.assert_no_container_leftovers();
}

/// A host scratch directory with a file, a directory tree and an owner to keep.
fn host_tree(env: &Env, name: &str) -> std::path::PathBuf {
    let h = env.dir.path().join(format!("host-{name}"));
    std::fs::create_dir_all(h.join("tree/sub")).unwrap();
    std::fs::write(h.join("file.txt"), "hello\n").unwrap();
    std::fs::write(h.join("tree/a.txt"), "a\n").unwrap();
    std::fs::write(h.join("tree/sub/b.txt"), "b\n").unwrap();
    std::os::unix::fs::symlink("a.txt", h.join("tree/ln")).unwrap();
    std::os::unix::fs::chown(h.join("file.txt"), Some(1234), Some(5678)).unwrap();
    h
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Copies in and out of `ctr` and checks the results on the host side.
fn round_trips(env: &Env, ctr: &str) {
    let h = host_tree(env, ctr);
    let out = env.dir.path().join(format!("out-{ctr}"));
    std::fs::create_dir(&out).unwrap();
    let at = |p: &str| format!("{ctr}:{p}");
    let hp = |p: &str| h.join(p).to_string_lossy().into_owned();
    let op = |p: &str| out.join(p).to_string_lossy().into_owned();
    // A file into a directory goes inside it; a directory to a new name takes that name;
    // SRC/. copies the contents.
    env.ok(&["cp", "-q", &hp("file.txt"), &at("/tmp")]);
    env.ok(&["cp", "-q", &hp("tree"), &at("/tmp/newtree")]);
    env.ok(&["cp", "-q", &hp("tree/."), &at("/img")]);
    env.ok(&["cp", "-q", &at("/tmp/file.txt"), &op("file.txt")]);
    assert_eq!(read(&out.join("file.txt")), "hello\n");
    env.ok(&["cp", "-q", &at("/tmp/newtree"), &op("")]);
    assert_eq!(read(&out.join("newtree/sub/b.txt")), "b\n");
    assert_eq!(
        std::fs::read_link(out.join("newtree/ln")).unwrap(),
        Path::new("a.txt")
    );
    env.ok(&["cp", "-q", &at("/img/."), &op("imgcopy")]);
    assert_eq!(read(&out.join("imgcopy/a.txt")), "a\n");
    assert_eq!(read(&out.join("imgcopy/keep.txt")), "keep\n");
    assert_eq!(read(&out.join("imgcopy/sub/b.txt")), "b\n");
    // Ownership: the container's root without -a, the source's with it; the copy out is
    // the caller's without -a.
    let meta = std::fs::metadata(out.join("file.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    env.ok(&["cp", "-q", "-a", &hp("file.txt"), &at("/tmp/kept.txt")]);
    env.ok(&["cp", "-q", "-a", &at("/tmp/kept.txt"), &op("kept.txt")]);
    let meta = std::fs::metadata(out.join("kept.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    env.ok(&["cp", "-q", "-a", &at("/tmp/file.txt"), &op("root.txt")]);
    let meta = std::fs::metadata(out.join("root.txt")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    // -L: the link's target, under the link's name.
    env.ok(&["cp", "-q", "-L", &at("/img/link.txt"), &op("")]);
    assert_eq!(read(&out.join("link.txt")), "keep\n");
    env.ok(&["cp", "-q", &at("/img/link.txt"), &op("asis")]);
    assert!(std::fs::symlink_metadata(out.join("asis"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn copies_round_trip_with_running_and_stopped_containers() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "live", &image, "sleep", "1000"]);
    round_trips(&env, "live");
    // What was copied in is seen by the container's processes.
    assert_eq!(
        env.ok(&["exec", "live", "cat", "/tmp/newtree/a.txt"]),
        "a\n"
    );
    let owner = env.ok(&["exec", "live", "stat", "-c", "%u:%g", "/tmp/kept.txt"]);
    assert_eq!(owner.trim(), "1234:5678");

    env.ok(&["run", "--name", "done", &image, "true"]);
    round_trips(&env, "done");
    assert_no_mounts_but_live(&env);
    // The stopped container starts again with what was copied in.
    env.ok(&["start", "done"]);
    env.ok(&["wait", "done"]);
    let again = env.dir.path().join("again");
    env.ok(&["cp", "-q", "done:/tmp/kept.txt", &again.to_string_lossy()]);
    assert_eq!(read(&again), "hello\n");
    assert_no_mounts_but_live(&env);
    finish(&env, &["live", "done"]);
}

#[test]
fn copy_errors_follow_docker() {
    let (_served, env, image) = setup();
    env.ok(&["run", "--name", "cc", &image, "true"]);
    let h = host_tree(&env, "t");
    let hp = |p: &str| h.join(p).to_string_lossy().into_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["cc:/nope".into(), hp("x")],
            "Could not find the file /nope in container cc",
        ),
        (
            vec![hp("file.txt"), "cc:/nope/x".into()],
            "Could not find the file /nope in container cc",
        ),
        (vec!["cc:/img/keep.txt/".into(), hp("x")], "not a directory"),
        (
            vec![hp("file.txt"), "cc:/tmp/newdir/".into()],
            "no such directory",
        ),
        (
            vec!["cc:/img/keep.txt".into(), hp("missing/x")],
            "does not exist",
        ),
        (
            vec!["cc:/img/keep.txt".into(), hp("nodir/")],
            "no such directory",
        ),
        (
            vec!["cc:/img".into(), hp("file.txt")],
            "cannot copy directory",
        ),
        (
            vec![hp("a"), hp("b")],
            "must specify at least one container source",
        ),
        (
            vec!["cc:/a".into(), "cc:/b".into()],
            "copying between containers is not supported",
        ),
        (vec!["nosuch:/a".into(), hp("b")], "No such container"),
    ];
    for (args, want) in cases {
        let mut all = vec!["cp"];
        all.extend(args.iter().map(String::as_str));
        let (code, err) = env.fail(&all);
        assert_eq!(code, 1, "{all:?}: {err}");
        assert!(
            err.to_lowercase().contains(&want.to_lowercase()),
            "{all:?}: {err}"
        );
        assert_no_mounts(&env);
    }
    // The file onto an existing file replaces it; a file onto a directory goes inside.
    env.ok(&["cp", "-q", &hp("file.txt"), "cc:/img/keep.txt"]);
    env.ok(&["cp", "-q", &hp("file.txt"), "cc:/img/"]);
    let out = env.dir.path().join("o");
    std::fs::create_dir(&out).unwrap();
    env.ok(&["cp", "-q", "cc:/img", &out.to_string_lossy()]);
    assert_eq!(read(&out.join("img/keep.txt")), "hello\n");
    assert_eq!(read(&out.join("img/file.txt")), "hello\n");
    finish(&env, &["cc"]);
}

#[test]
fn tar_streams_on_stdin_and_stdout() {
    let (_served, env, image) = setup();
    env.ok(&["run", "-d", "--name", "ss", &image, "sleep", "1000"]);
    env.ok(&["run", "--name", "tt", &image, "true"]);
    for ctr in ["ss", "tt"] {
        // A tar on stdin is extracted into the directory; one leaving it is refused.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o640);
        tar.append_data(&mut h, "in/x.txt", &b"xyz"[..]).unwrap();
        let ok = tar.into_inner().unwrap();
        feed(&env, &["cp", "-", &format!("{ctr}:/tmp")], &ok, true);
        let out = env.run(&["cp", &format!("{ctr}:/tmp/in"), "-"]);
        assert!(out.status.success());
        let mut names = Vec::new();
        let mut ar = tar::Archive::new(&out.stdout[..]);
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            names.push(e.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["in/", "in/x.txt"]);
        // The destination of a stdin stream must be a directory.
        let err = feed(
            &env,
            &["cp", "-", &format!("{ctr}:/img/keep.txt")],
            &ok,
            false,
        );
        assert!(err.contains("must be a directory"), "{err}");
        let mut bad = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../../escape");
        h.set_cksum();
        bad.append(&h, &b"x"[..]).unwrap();
        let bad = bad.into_inner().unwrap();
        let err = feed(&env, &["cp", "-", &format!("{ctr}:/tmp")], &bad, false);
        assert!(err.contains("invalid path"), "{err}");
    }
    assert!(!Path::new("/escape").exists());
    finish(&env, &["ss", "tt"]);
}

/// Runs with `input` on stdin; returns stderr, checking success as `ok` says.
fn feed(env: &Env, args: &[&str], input: &[u8], ok: bool) -> String {
    let mut child = env
        .cmd()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(input);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.success(), ok, "{args:?}: {err}");
    err
}

#[test]
fn hostile_symlinks_keep_copies_inside_the_container() {
    let (_served, env, image) = setup();
    let marker = format!("pelagos-archive-secret-{}", std::process::id());
    let host_marker = Path::new("/tmp").join(&marker);
    std::fs::write(&host_marker, "host secret\n").unwrap();
    let planted = format!("pelagos-archive-planted-{}", std::process::id());
    env.ok(&["run", "-d", "--name", "evil", &image, "sleep", "1000"]);
    env.ok(&["exec", "evil", "ln", "-s", "/", "/evil"]);
    env.ok(&["run", "--name", "cold", &image, "true"]);
    let h = host_tree(&env, "t");
    std::fs::write(h.join(&planted), "planted\n").unwrap();
    let src = h.join(&planted).to_string_lossy().into_owned();
    for ctr in ["evil", "cold"] {
        let out = env.dir.path().join(format!("o-{ctr}"));
        std::fs::create_dir(&out).unwrap();
        let o = out.to_string_lossy().into_owned();
        // Reads: the links lead to the container's own files.
        for path in [
            format!("/escape/tmp/{marker}"),
            format!("/up/../tmp/{marker}"),
            format!("/escape/../../../tmp/{marker}"),
        ] {
            let (_, err) = env.fail(&["cp", &format!("{ctr}:{path}"), &o]);
            assert!(err.contains("Could not find the file"), "{path}: {err}");
        }
        env.ok(&[
            "cp",
            "-q",
            &format!("{ctr}:/up/passwd"),
            &format!("{o}/passwd"),
        ]);
        assert_eq!(read(&out.join("passwd")), kit::BUSYBOX_PASSWD);
        env.ok(&["cp", "-q", "-L", &format!("{ctr}:/escape/up/group"), &o]);
        assert_eq!(read(&out.join("group")), kit::BUSYBOX_GROUP);
        // Writes: through a symlinked destination, a symlinked parent and `..` chains.
        env.ok(&["cp", "-q", &src, &format!("{ctr}:/dstlink")]);
        env.ok(&["cp", "-q", &src, &format!("{ctr}:/escape/tmp/")]);
        env.ok(&["cp", "-q", &src, &format!("{ctr}:/up/../../../tmp/p2")]);
        for p in [
            format!("/{planted}"),
            format!("/tmp/{planted}"),
            "/tmp/p2".into(),
        ] {
            assert!(!Path::new(&p).exists(), "{p} reached the host");
            env.ok(&["cp", "-q", &format!("{ctr}:{p}"), &format!("{o}/check")]);
            assert_eq!(read(&out.join("check")), "planted\n");
            std::fs::remove_file(out.join("check")).unwrap();
        }
        assert_eq!(read(&host_marker), "host secret\n");
    }
    // A stream whose symlink entry points at / lands in the container's root.
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    tar.append_link(&mut h, "root", "/").unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    tar.append_data(&mut h, format!("root/{planted}.tar"), &b"t\n"[..])
        .unwrap();
    feed(
        &env,
        &["cp", "-", "evil:/tmp"],
        &tar.into_inner().unwrap(),
        true,
    );
    assert!(!Path::new(&format!("/{planted}.tar")).exists());
    assert_eq!(
        env.ok(&["exec", "evil", "cat", &format!("/{planted}.tar")]),
        "t\n"
    );
    std::fs::remove_file(&host_marker).unwrap();
    assert_no_mounts_but_live(&env);
    finish(&env, &["evil", "cold"]);
}

/// Only the running containers' own root filesystems are mounted.
fn assert_no_mounts_but_live(env: &Env) {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let ours = env.dir.path().to_string_lossy().into_owned();
    let left: Vec<&str> = mounts
        .lines()
        .filter(|l| l.contains(&ours) && !l.contains("/rootfs "))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
    assert_eq!(mounts.lines().filter(|l| l.contains(&ours)).count(), 1);
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let (_served, env, image) = setup();
    let script = "echo after > /img/change.txt; rm /img/gone.txt; mkdir /newdir; \
                  echo n > /newdir/f; rm -r /bin/sh";
    env.ok(&["run", "--name", "dd", &image, "sh", "-c", script]);
    let want =
        "C /bin\nD /bin/sh\nC /img\nC /img/change.txt\nD /img/gone.txt\nA /newdir\nA /newdir/f\n";
    assert_eq!(env.ok(&["diff", "dd"]), want);
    assert_eq!(env.ok(&["container", "diff", "dd"]), want);
    env.ok(&["run", "-d", "--name", "rr", &image, "sleep", "1000"]);
    env.ok(&["exec", "rr", "touch", "/img/new"]);
    assert_eq!(env.ok(&["diff", "rr"]), "C /img\nA /img/new\n");
    env.ok(&["run", "--name", "nn", &image, "true"]);
    assert_eq!(env.ok(&["diff", "nn"]), "");
    finish(&env, &["dd", "rr", "nn"]);
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn export_holds_the_image_and_the_changes() {
    let (_served, env, image) = setup();
    env.ok(&[
        "run",
        "--name",
        "xx",
        &image,
        "sh",
        "-c",
        "echo v > /added; rm /img/gone.txt",
    ]);
    let file = env.dir.path().join("x.tar");
    env.ok(&["export", "-o", &file.to_string_lossy(), "xx"]);
    assert_no_mounts(&env);
    let bytes = std::fs::read(&file).unwrap();
    let names = tar_names(&bytes);
    for want in [
        "added",
        "bin/busybox",
        "etc/passwd",
        "img/keep.txt",
        "escape",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    assert!(!names.iter().any(|n| n == "img/gone.txt"));
    let mut ar = tar::Archive::new(&bytes[..]);
    let added = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap() == Path::new("added"))
        .map(|mut e| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut e, &mut s).unwrap();
            s
        });
    assert_eq!(added.as_deref(), Some("v\n"));
    // A running container: its root filesystem without /proc's or /sys's contents.
    env.ok(&["run", "-d", "--name", "yy", &image, "sleep", "1000"]);
    let out = env.run(&["container", "export", "yy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = tar_names(&out.stdout);
    assert!(names.iter().any(|n| n == "bin/busybox"));
    assert!(
        !names.iter().any(|n| n.starts_with("proc/") && n != "proc/"),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.starts_with("sys/") && n != "sys/"));
    let (code, err) = env.fail(&["export", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("No such container"), "{err}");
    finish(&env, &["xx", "yy"]);
}
