//! Tests for [`crate::unpack`]: real tar archives built in memory (plain, gzip, zstd),
//! unpacked into a sandbox temporary directory, then checked on the filesystem, including
//! that nothing outside the destination changed.

use super::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use tar::{Builder, EntryType, Header};

struct Tb(Builder<Vec<u8>>);

fn header(kind: EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_size(0);
    h
}

impl Tb {
    fn new() -> Self {
        Tb(Builder::new(Vec::new()))
    }
    fn file(&mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64, mtime: u64) {
        let mut h = header(EntryType::Regular, mode, uid, gid, mtime);
        h.set_size(data.len() as u64);
        self.0.append_data(&mut h, path, data).unwrap();
    }
    fn dir(&mut self, path: &str, mode: u32, uid: u64, gid: u64, mtime: u64) {
        let mut h = header(EntryType::Directory, mode, uid, gid, mtime);
        self.0.append_data(&mut h, path, io::empty()).unwrap();
    }
    fn symlink(&mut self, path: &str, target: &str) {
        self.raw(EntryType::Symlink, path.as_bytes(), target.as_bytes(), b"");
    }
    fn hardlink(&mut self, path: &str, target: &str) {
        self.raw(EntryType::Link, path.as_bytes(), target.as_bytes(), b"");
    }
    fn node(&mut self, path: &str, kind: EntryType, mode: u32, major: u32, minor: u32) {
        let mut h = header(kind, mode, 0, 0, 1_000);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.0.append_data(&mut h, path, io::empty()).unwrap();
    }
    /// An entry with unvalidated name and link name (the builder refuses `..`).
    fn raw(&mut self, kind: EntryType, name: &[u8], link: &[u8], data: &[u8]) {
        let mut h = header(kind, 0o644, 0, 0, 1_000);
        h.set_size(data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        self.0.append(&h, data).unwrap();
    }
    fn pax(&mut self, kv: &[(&str, &[u8])]) {
        self.0.append_pax_extensions(kv.iter().copied()).unwrap();
    }
    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

fn compress(data: &[u8], c: Compression) -> Vec<u8> {
    match c {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        Compression::Zstd => zstd::encode_all(data, 3).unwrap(),
    }
}

/// A temporary directory with the layer destination two levels down and a sentinel tree
/// beside it, so escapes have something to hit and can be seen.
struct Sandbox {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    before: Vec<(PathBuf, String)>,
    etc: Vec<(PathBuf, Option<Vec<u8>>, Option<i64>)>,
}

fn snapshot_etc() -> Vec<(PathBuf, Option<Vec<u8>>, Option<i64>)> {
    [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/pwned",
        "/pwned",
        "/escape",
    ]
    .iter()
    .map(|p| {
        let p = PathBuf::from(p);
        let data = fs::read(&p).ok();
        let mtime = fs::symlink_metadata(&p).ok().map(|m| m.mtime());
        (p, data, mtime)
    })
    .collect()
}

impl Sandbox {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("outside/etc")).unwrap();
        fs::write(tmp.path().join("outside/sentinel"), b"sentinel").unwrap();
        fs::write(tmp.path().join("outside/etc/shadow"), b"secret").unwrap();
        let dest = tmp.path().join("a/b/layer");
        fs::create_dir_all(&dest).unwrap();
        let mut s = Sandbox {
            tmp,
            dest,
            before: Vec::new(),
            etc: snapshot_etc(),
        };
        s.before = s.outside();
        s
    }
    fn outside(&self) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut todo = vec![self.tmp.path().to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p == self.dest {
                    continue;
                }
                let m = fs::symlink_metadata(&p).unwrap();
                let data = if m.is_file() {
                    String::from_utf8_lossy(&fs::read(&p).unwrap()).into_owned()
                } else {
                    String::new()
                };
                out.push((p.clone(), format!("{:o} {} {data}", m.mode(), m.mtime())));
                if m.is_dir() {
                    todo.push(p);
                }
            }
        }
        out.sort();
        out
    }
    fn unpack(&self, tar: &[u8], opts: &UnpackOptions) -> Result<UnpackStats, LayerError> {
        self.unpack_c(tar, Compression::None, opts)
    }
    fn unpack_c(
        &self,
        tar: &[u8],
        c: Compression,
        opts: &UnpackOptions,
    ) -> Result<UnpackStats, LayerError> {
        let blob = compress(tar, c);
        let r = unpack(&blob[..], c, &self.dest, opts);
        self.assert_outside_untouched();
        r
    }
    fn assert_outside_untouched(&self) {
        assert_eq!(
            self.outside(),
            self.before,
            "something outside dest changed"
        );
        assert_eq!(snapshot_etc(), self.etc, "host files changed");
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.dest.join(rel)
    }
}

fn lmeta(p: &Path) -> fs::Metadata {
    fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    match rfs::lgetxattr(p, name, &mut buf[..]) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

fn problem(r: Result<UnpackStats, LayerError>) -> (String, Problem) {
    match r {
        Err(LayerError::Entry { entry, problem }) => (entry, problem),
        other => panic!("expected an entry problem, got {other:?}"),
    }
}

// vfs_cap_data revision 2, effective, permitted = CAP_NET_RAW.
const CAP_NET_RAW: [u8; 20] = [
    1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

fn normal_tree() -> Vec<u8> {
    let mut t = Tb::new();
    t.dir("./", 0o755, 0, 0, 1_000);
    t.dir("etc", 0o750, 0, 42, 1_500_000_000);
    t.file(
        "etc/hosts",
        b"127.0.0.1 localhost\n",
        0o644,
        1000,
        1001,
        1_600_000_000,
    );
    t.dir("bin", 0o755, 0, 0, 1_000);
    t.file("bin/su", b"#!su", 0o4755, 0, 0, 1_000);
    t.file("bin/wall", b"#!wall", 0o2755, 0, 5, 1_000);
    t.pax(&[
        ("SCHILY.xattr.security.capability", &CAP_NET_RAW),
        ("SCHILY.xattr.user.note", b"hello"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/evil"),
        ("mtime", b"1700000000.25"),
        ("uid", b"3000000"),
    ]);
    t.file("bin/ping", b"#!ping", 0o755, 0, 0, 1_000);
    t.dir("tmp", 0o1777, 0, 0, 1_000);
    t.pax(&[("SCHILY.xattr.trusted.pelagos", b"link")]);
    t.symlink("etc/localtime", "/usr/share/zoneinfo/UTC");
    t.hardlink("bin/su2", "bin/su");
    t.pax(&[("SCHILY.xattr.trusted.pelagos", b"dev")]);
    t.node("dev/null", EntryType::Char, 0o666, 1, 3);
    t.node("dev/loop0", EntryType::Block, 0o660, 7, 0);
    t.node("run/fifo", EntryType::Fifo, 0o620, 0, 0);
    t.finish()
}

#[test]
fn unpacks_normal_tree_plain_gzip_zstd() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let s = Sandbox::new();
        let stats = s
            .unpack_c(&normal_tree(), c, &UnpackOptions::default())
            .unwrap();
        assert_eq!(stats.files, 4, "{c:?}");
        assert_eq!(stats.dirs, 4);
        assert_eq!(stats.symlinks, 1);
        assert_eq!(stats.hardlinks, 1);
        assert_eq!(stats.devices, 3);
        assert_eq!(stats.dropped_xattrs, 1);

        let hosts = lmeta(&s.p("etc/hosts"));
        assert_eq!(
            fs::read(s.p("etc/hosts")).unwrap(),
            b"127.0.0.1 localhost\n"
        );
        assert_eq!((hosts.uid(), hosts.gid()), (1000, 1001));
        assert_eq!(hosts.mode() & 0o7777, 0o644);
        assert_eq!(hosts.mtime(), 1_600_000_000);

        let etc = lmeta(&s.p("etc"));
        assert_eq!(etc.mode() & 0o7777, 0o750);
        assert_eq!(etc.gid(), 42);
        assert_eq!(etc.mtime(), 1_500_000_000, "directory times are set last");
        assert_eq!(lmeta(&s.p("tmp")).mode() & 0o7777, 0o1777);
        assert_eq!(lmeta(&s.dest).mode() & 0o7777, 0o755);
        assert_eq!(lmeta(&s.p("bin/su")).mode() & 0o7777, 0o4755);
        assert_eq!(lmeta(&s.p("bin/wall")).mode() & 0o7777, 0o2755);
        assert_eq!(lmeta(&s.p("bin/wall")).gid(), 5);

        let ping = lmeta(&s.p("bin/ping"));
        assert_eq!(ping.uid(), 3_000_000);
        assert_eq!(
            (ping.mtime(), ping.mtime_nsec()),
            (1_700_000_000, 250_000_000)
        );
        assert_eq!(
            xattr(&s.p("bin/ping"), "security.capability").unwrap(),
            CAP_NET_RAW
        );
        assert_eq!(xattr(&s.p("bin/ping"), "user.note").unwrap(), b"hello");
        assert_eq!(xattr(&s.p("bin/ping"), "trusted.overlay.redirect"), None);

        let lt = lmeta(&s.p("etc/localtime"));
        assert!(lt.file_type().is_symlink());
        assert_eq!(
            fs::read_link(s.p("etc/localtime")).unwrap(),
            Path::new("/usr/share/zoneinfo/UTC")
        );
        assert_eq!(lt.mtime(), 1_000);
        assert_eq!(
            xattr(&s.p("etc/localtime"), "trusted.pelagos").unwrap(),
            b"link"
        );
        assert_eq!(xattr(&s.p("dev/null"), "trusted.pelagos").unwrap(), b"dev");

        assert_eq!(lmeta(&s.p("bin/su2")).ino(), lmeta(&s.p("bin/su")).ino());

        let null = lmeta(&s.p("dev/null"));
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), rfs::makedev(1, 3));
        assert_eq!(null.mode() & 0o7777, 0o666);
        let lp = lmeta(&s.p("dev/loop0"));
        assert!(lp.file_type().is_block_device());
        assert_eq!(lp.rdev(), rfs::makedev(7, 0));
        let fifo = lmeta(&s.p("run/fifo"));
        assert!(fifo.file_type().is_fifo());
        assert_eq!(fifo.mode() & 0o7777, 0o620);
    }
}

#[test]
fn detects_compression_from_magic() {
    for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let s = Sandbox::new();
        let blob = compress(&normal_tree(), c);
        let stats = unpack_detect(&blob[..], &s.dest, &UnpackOptions::default()).unwrap();
        assert_eq!(stats.files, 4);
        assert_eq!(fs::read(s.p("bin/su")).unwrap(), b"#!su");
    }
}

#[test]
fn consumes_the_whole_stream() {
    let s = Sandbox::new();
    let mut blob = compress(&normal_tree(), Compression::None);
    blob.extend_from_slice(&[0u8; 8192]);
    let mut reader = io::Cursor::new(blob);
    unpack(
        &mut reader,
        Compression::None,
        &s.dest,
        &UnpackOptions::default(),
    )
    .unwrap();
    assert_eq!(reader.position() as usize, reader.get_ref().len());
}

#[test]
fn devices_can_be_skipped() {
    let s = Sandbox::new();
    let opts = UnpackOptions {
        devices: DeviceNodes::Skip,
        ..Default::default()
    };
    let stats = s.unpack(&normal_tree(), &opts).unwrap();
    assert_eq!(stats.skipped_devices, 2);
    assert_eq!(stats.devices, 1);
    assert!(!s.p("dev/null").exists());
    assert!(lmeta(&s.p("run/fifo")).file_type().is_fifo());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let s = Sandbox::new();
    let mut t = Tb::new();
    t.file("a/keep", b"k", 0o644, 0, 0, 1);
    t.file("a/gone", b"g", 0o644, 7, 7, 1);
    t.file("a/.wh.gone", b"", 0o644, 0, 0, 1);
    t.file("a/.wh.lower", b"", 0o644, 0, 0, 1);
    t.dir("b", 0o755, 0, 0, 1);
    t.file("b/.wh..wh..opq", b"", 0o644, 0, 0, 1);
    t.file("b/x", b"x", 0o644, 0, 0, 1);
    t.file("c/.wh..wh..opq", b"", 0o644, 0, 0, 1);
    t.file("a/.wh..wh.plnk", b"", 0o644, 0, 0, 1);
    let stats = s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert_eq!((stats.whiteouts, stats.opaque_dirs), (2, 2));
    for name in ["a/gone", "a/lower"] {
        let m = lmeta(&s.p(name));
        assert!(m.file_type().is_char_device(), "{name}");
        assert_eq!(m.rdev(), 0);
        assert_eq!((m.uid(), m.gid()), (0, 0));
    }
    assert!(!s.p("a/.wh.gone").exists() && !s.p("a/.wh..wh.plnk").exists());
    assert_eq!(fs::read(s.p("a/keep")).unwrap(), b"k");
    assert_eq!(xattr(&s.p("b"), "trusted.overlay.opaque").unwrap(), b"y");
    assert_eq!(xattr(&s.p("c"), "trusted.overlay.opaque").unwrap(), b"y");
    assert!(!s.p("b/.wh..wh..opq").exists());
    assert_eq!(fs::read(s.p("b/x")).unwrap(), b"x");
}

#[test]
fn whiteouts_applied_in_place() {
    let s = Sandbox::new();
    // A lower layer already flattened into dest.
    fs::create_dir_all(s.p("a")).unwrap();
    fs::write(s.p("a/lower"), b"l").unwrap();
    fs::create_dir_all(s.p("b/sub/deep")).unwrap();
    fs::write(s.p("b/old"), b"o").unwrap();
    fs::write(s.p("b/sub/deep/f"), b"f").unwrap();
    fs::create_dir_all(s.p("b/kept")).unwrap();
    let mut t = Tb::new();
    t.file("a/.wh.lower", b"", 0o644, 0, 0, 1);
    t.file("a/.wh.never-existed", b"", 0o644, 0, 0, 1);
    t.file("b/new", b"n", 0o644, 0, 0, 1);
    t.file("b/kept/x", b"x", 0o644, 0, 0, 1);
    t.file("b/.wh..wh..opq", b"", 0o644, 0, 0, 1);
    t.file("nope/.wh.x", b"", 0o644, 0, 0, 1);
    let opts = UnpackOptions {
        apply_whiteouts_in_place: true,
        ..Default::default()
    };
    s.unpack(&t.finish(), &opts).unwrap();
    assert!(!s.p("a/lower").exists());
    assert!(!s.p("a/never-existed").exists());
    assert!(!s.p("b/old").exists() && !s.p("b/sub").exists());
    assert_eq!(fs::read(s.p("b/new")).unwrap(), b"n");
    assert_eq!(fs::read(s.p("b/kept/x")).unwrap(), b"x");
    assert_eq!(xattr(&s.p("b"), "trusted.overlay.opaque"), None);
    assert!(!s.p("nope").exists());
}

#[test]
fn dotdot_escape_is_refused() {
    for name in ["../escape", "a/../../escape", "../../../../../../escape"] {
        let s = Sandbox::new();
        let mut t = Tb::new();
        t.raw(EntryType::Regular, name.as_bytes(), b"", b"pwned");
        let r = s.unpack(&t.finish(), &UnpackOptions::default());
        let msg = r.as_ref().unwrap_err().to_string();
        assert_eq!(
            msg,
            format!("layer entry {name:?}: path escapes the layer directory")
        );
        assert_eq!(problem(r), (name.to_string(), Problem::PathEscapes));
        assert!(!s.tmp.path().join("a/b/escape").exists());
        assert!(!s.tmp.path().join("a/escape").exists());
    }
    // `..` that stays inside is resolved lexically.
    let s = Sandbox::new();
    let mut t = Tb::new();
    t.raw(EntryType::Regular, b"x/../inside", b"", b"ok");
    s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(s.p("inside")).unwrap(), b"ok");
}

#[test]
fn absolute_paths_land_inside() {
    let s = Sandbox::new();
    let mut t = Tb::new();
    t.raw(EntryType::Regular, b"/abs/path", b"", b"inside");
    t.raw(EntryType::Regular, b"/etc/pwned", b"", b"inside");
    s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(s.p("abs/path")).unwrap(), b"inside");
    assert_eq!(fs::read(s.p("etc/pwned")).unwrap(), b"inside");
}

#[test]
fn symlinked_parents_are_never_followed() {
    let s = Sandbox::new();
    let outside = s.tmp.path().join("outside");
    let cases = [
        ("link", "/etc".to_string(), "link/passwd"),
        ("out", outside.display().to_string(), "out/pwned"),
        ("rel", "../../../outside".to_string(), "rel/pwned"),
        ("inner", "sub".to_string(), "inner/x"),
    ];
    for (link, target, victim) in cases {
        let mut t = Tb::new();
        t.dir("sub", 0o755, 0, 0, 1);
        t.symlink(link, &target);
        t.file(victim, b"pwned", 0o644, 0, 0, 1);
        let r = s.unpack(&t.finish(), &UnpackOptions::default());
        let msg = r.as_ref().unwrap_err().to_string();
        assert!(
            msg.contains("is a symlink, which is never followed"),
            "{msg}"
        );
        assert_eq!(
            problem(r),
            (
                victim.to_string(),
                Problem::ParentIsSymlink(link.to_string())
            )
        );
        // The symlink itself is stored as is.
        assert_eq!(fs::read_link(s.p(link)).unwrap(), Path::new(&target));
    }
    assert!(!outside.join("pwned").exists());
    assert!(!s.p("sub/x").exists());
}

#[test]
fn hostile_hardlinks_are_refused() {
    let s = Sandbox::new();
    let outside = s.tmp.path().join("outside");
    let mut t = Tb::new();
    t.hardlink("h", "../../outside/etc/shadow");
    let r = s.unpack(&t.finish(), &UnpackOptions::default());
    assert_eq!(
        r.as_ref().unwrap_err().to_string(),
        "layer entry \"h\": hardlink target \"../../outside/etc/shadow\" escapes the layer directory"
    );
    assert!(matches!(problem(r).1, Problem::HardlinkEscapes(_)));

    let mut t = Tb::new();
    t.hardlink("h", "../../etc/shadow");
    assert!(matches!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())).1,
        Problem::HardlinkEscapes(_)
    ));

    // Through a symlink pointing outside.
    let mut t = Tb::new();
    t.symlink("l", &outside.display().to_string());
    t.hardlink("h", "l/sentinel");
    assert_eq!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())).1,
        Problem::HardlinkThroughSymlink("l/sentinel".into())
    );
    // To an absolute path: taken inside the layer, where it does not exist.
    let mut t = Tb::new();
    t.hardlink("h", "/etc/shadow");
    assert_eq!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())).1,
        Problem::HardlinkTargetMissing("/etc/shadow".into())
    );
    assert!(!s.p("h").exists());

    // A hardlink to the symlink itself links the symlink, not what it points at.
    let mut t = Tb::new();
    t.hardlink("hl", "l");
    s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert!(lmeta(&s.p("hl")).file_type().is_symlink());
    assert_eq!(lmeta(&s.p("hl")).ino(), lmeta(&s.p("l")).ino());
    assert_eq!(lmeta(&outside.join("sentinel")).nlink(), 1);
}

#[test]
fn replaced_entries_are_unlinked_not_written_through() {
    let s = Sandbox::new();
    let outside = s.tmp.path().join("outside");
    let mut t = Tb::new();
    // Symlink replaced by a directory, then written into.
    t.symlink("d", &outside.display().to_string());
    t.dir("d", 0o755, 0, 0, 1);
    t.file("d/f", b"inside", 0o644, 0, 0, 1);
    // Symlink replaced by a file.
    t.symlink("s", &outside.join("sentinel").display().to_string());
    t.file("s", b"new", 0o644, 0, 0, 1);
    // Hardlinked file replaced: the other name keeps the old content.
    t.file("orig", b"orig", 0o644, 0, 0, 1);
    t.hardlink("twin", "orig");
    t.file("twin", b"replaced", 0o644, 0, 0, 1);
    // Directory tree replaced by a file, then by a symlink.
    t.file("tree/a/b/c", b"c", 0o644, 0, 0, 1);
    t.dir("tree/a/ro", 0o555, 0, 0, 1);
    t.file("tree", b"file now", 0o644, 0, 0, 1);
    t.file("tree2/x", b"x", 0o644, 0, 0, 1);
    t.symlink("tree2", "/etc");
    s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert!(lmeta(&s.p("d")).is_dir());
    assert_eq!(fs::read(s.p("d/f")).unwrap(), b"inside");
    assert!(!outside.join("f").exists());
    assert!(lmeta(&s.p("s")).is_file());
    assert_eq!(fs::read(s.p("s")).unwrap(), b"new");
    assert_eq!(fs::read(s.p("orig")).unwrap(), b"orig");
    assert_eq!(fs::read(s.p("twin")).unwrap(), b"replaced");
    assert_eq!(fs::read(s.p("tree")).unwrap(), b"file now");
    assert!(lmeta(&s.p("tree2")).file_type().is_symlink());
}

#[test]
fn long_paths() {
    let s = Sandbox::new();
    let comp = "d".repeat(100);
    let deep = vec![comp.as_str(); 35].join("/") + "/file";
    assert!(deep.len() > 3000);
    let mut t = Tb::new();
    t.file(&deep, b"deep", 0o644, 0, 0, 1);
    s.unpack(&t.finish(), &UnpackOptions::default()).unwrap();
    assert_eq!(fs::read(s.p(&deep)).unwrap(), b"deep");

    let long_name = "x".repeat(300);
    let mut t = Tb::new();
    t.file(&long_name, b"x", 0o644, 0, 0, 1);
    match s.unpack(&t.finish(), &UnpackOptions::default()) {
        Err(e @ LayerError::EntryIo { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.starts_with(&format!("layer entry \"{long_name}\": ")),
                "{msg}"
            );
            assert!(msg.contains("File name too long"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let s = Sandbox::new();
    let r = unpack(
        &b"not gzip at all"[..],
        Compression::Gzip,
        &s.dest,
        &UnpackOptions::default(),
    );
    assert!(matches!(r, Err(LayerError::Archive { .. })), "{r:?}");
    assert!(r
        .unwrap_err()
        .to_string()
        .starts_with("reading layer archive: "));

    // Truncated in the middle of a file's content.
    let mut t = Tb::new();
    t.file("big", &[7u8; 4096], 0o644, 0, 0, 1);
    let tar = t.finish();
    let r = s.unpack(&tar[..1024], &UnpackOptions::default());
    let msg = r.unwrap_err().to_string();
    assert_eq!(
        msg,
        "layer entry \"big\": archive ends inside the file's contents (512 of 4096 bytes)"
    );

    // Truncated zstd.
    let blob = compress(&normal_tree(), Compression::Zstd);
    let r = unpack(
        &blob[..blob.len() / 2],
        Compression::Zstd,
        &s.dest,
        &UnpackOptions::default(),
    );
    assert!(r.is_err());

    let r = unpack(
        &b""[..],
        Compression::None,
        Path::new("/nonexistent/dir"),
        &UnpackOptions::default(),
    );
    assert!(matches!(r, Err(LayerError::Destination { .. })));

    // Root entry that is not a directory; parent that is a file.
    let mut t = Tb::new();
    t.file("plain", b"p", 0o644, 0, 0, 1);
    t.file("plain/child", b"c", 0o644, 0, 0, 1);
    assert_eq!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())),
        (
            "plain/child".into(),
            Problem::ParentNotDirectory("plain".into())
        )
    );
    let mut t = Tb::new();
    t.raw(EntryType::Regular, b"./", b"", b"");
    assert_eq!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())).1,
        Problem::RootNotDirectory
    );
    let mut t = Tb::new();
    t.raw(EntryType::Regular, b"a/.wh...", b"", b"");
    assert_eq!(
        problem(s.unpack(&t.finish(), &UnpackOptions::default())).1,
        Problem::InvalidWhiteout
    );
}
