//! OCI mount options (`ro`, `nosuid`, `rbind`, `rro`, `mode=755` …) parsed into mount(2) flags,
//! propagation, recursive mount_setattr attributes and the filesystem data string.

use nix::mount::MsFlags;
use oci_spec::runtime::Mount;

use crate::error::{Error, Result};
use crate::sys::*;

/// MS_NOSYMFOLLOW (Linux 5.10), which `nix` does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(256);

/// A mount's options, split by how the kernel takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for mount(2) (for a bind mount: applied by a remount after the bind).
    pub flags: MsFlags,
    /// Flags explicitly cleared (`rw`, `suid`, `dev`, `exec`, …), for bind remounts.
    pub cleared: MsFlags,
    /// MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, possibly with MS_REC.
    pub propagation: MsFlags,
    /// mount_setattr attributes applied with AT_RECURSIVE (`rro`, `rnosuid`, …).
    pub rec_set: u64,
    pub rec_clr: u64,
    /// Comma-joined options the filesystem itself interprets (`mode=755,size=64k`).
    pub data: String,
    pub bind: bool,
    pub recursive_bind: bool,
    /// crun's `tmpcopyup`: copy the directory's previous content into a new tmpfs.
    pub tmpcopyup: bool,
    /// Options with no meaning for this pelagos version; a bind mount refuses them.
    pub unknown: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: MsFlags::empty(),
            rec_set: 0,
            rec_clr: 0,
            data: String::new(),
            bind: false,
            recursive_bind: false,
            tmpcopyup: false,
            unknown: Vec::new(),
        }
    }
}

/// Options that set (true) or clear (false) a mount(2) flag.
const FLAG_OPTIONS: &[(&str, bool, MsFlags)] = &[
    ("async", false, MsFlags::MS_SYNCHRONOUS),
    ("atime", false, MsFlags::MS_NOATIME),
    ("defaults", false, MsFlags::empty()),
    ("dev", false, MsFlags::MS_NODEV),
    ("diratime", false, MsFlags::MS_NODIRATIME),
    ("dirsync", true, MsFlags::MS_DIRSYNC),
    ("exec", false, MsFlags::MS_NOEXEC),
    ("iversion", true, MsFlags::MS_I_VERSION),
    ("lazytime", true, MsFlags::MS_LAZYTIME),
    ("loud", false, MsFlags::MS_SILENT),
    ("mand", true, MsFlags::MS_MANDLOCK),
    ("noatime", true, MsFlags::MS_NOATIME),
    ("nodev", true, MsFlags::MS_NODEV),
    ("nodiratime", true, MsFlags::MS_NODIRATIME),
    ("noexec", true, MsFlags::MS_NOEXEC),
    ("noiversion", false, MsFlags::MS_I_VERSION),
    ("nolazytime", false, MsFlags::MS_LAZYTIME),
    ("nomand", false, MsFlags::MS_MANDLOCK),
    ("norelatime", false, MsFlags::MS_RELATIME),
    ("nostrictatime", false, MsFlags::MS_STRICTATIME),
    ("nosuid", true, MsFlags::MS_NOSUID),
    ("nosymfollow", true, MS_NOSYMFOLLOW),
    ("relatime", true, MsFlags::MS_RELATIME),
    ("remount", true, MsFlags::MS_REMOUNT),
    ("ro", true, MsFlags::MS_RDONLY),
    ("rw", false, MsFlags::MS_RDONLY),
    ("silent", true, MsFlags::MS_SILENT),
    ("strictatime", true, MsFlags::MS_STRICTATIME),
    ("suid", false, MsFlags::MS_NOSUID),
    ("symfollow", false, MS_NOSYMFOLLOW),
    ("sync", true, MsFlags::MS_SYNCHRONOUS),
];

const PROPAGATION_OPTIONS: &[(&str, MsFlags)] = &[
    ("private", MsFlags::MS_PRIVATE),
    ("rprivate", MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
    ("shared", MsFlags::MS_SHARED),
    ("rshared", MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
    ("slave", MsFlags::MS_SLAVE),
    ("rslave", MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
    ("unbindable", MsFlags::MS_UNBINDABLE),
    ("runbindable", MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
];

/// Recursive attribute options (mount_setattr with AT_RECURSIVE): set (true) or clear.
const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", true, MOUNT_ATTR_RDONLY),
    ("rrw", false, MOUNT_ATTR_RDONLY),
    ("rnosuid", true, MOUNT_ATTR_NOSUID),
    ("rsuid", false, MOUNT_ATTR_NOSUID),
    ("rnodev", true, MOUNT_ATTR_NODEV),
    ("rdev", false, MOUNT_ATTR_NODEV),
    ("rnoexec", true, MOUNT_ATTR_NOEXEC),
    ("rexec", false, MOUNT_ATTR_NOEXEC),
    ("rnodiratime", true, MOUNT_ATTR_NODIRATIME),
    ("rdiratime", false, MOUNT_ATTR_NODIRATIME),
    ("rnosymfollow", true, MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", false, MOUNT_ATTR_NOSYMFOLLOW),
];

/// The atime family, recursive: these replace the whole MOUNT_ATTR__ATIME field. The kernel
/// takes that field as one value (relatime, noatime or strictatime; clearing only part of it is
/// EINVAL), so the negative words name the value they leave: `rnorelatime` updates atime on
/// every access (strictatime), `rnostrictatime` goes back to the kernel's default (relatime).
const RECURSIVE_ATIME: &[(&str, u64)] = &[
    ("rnoatime", MOUNT_ATTR_NOATIME),
    ("rstrictatime", MOUNT_ATTR_STRICTATIME),
    ("rnorelatime", MOUNT_ATTR_STRICTATIME),
    ("rrelatime", MOUNT_ATTR_RELATIME),
    ("ratime", MOUNT_ATTR_RELATIME),
    ("rnostrictatime", MOUNT_ATTR_RELATIME),
];

/// Whether a `mounts[]` entry is a bind mount (type `bind`, or option `bind`/`rbind`). It lives
/// here, with the options, so that `userns` need not import `rootfs`, which imports `userns`.
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// Every option word `parse` understands (for the `features` report).
pub fn known_options() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = ["bind", "rbind", "tmpcopyup"]
        .into_iter()
        .chain(FLAG_OPTIONS.iter().map(|(n, ..)| *n))
        .chain(PROPAGATION_OPTIONS.iter().map(|(n, _)| *n))
        .chain(RECURSIVE_OPTIONS.iter().map(|(n, ..)| *n))
        .chain(RECURSIVE_ATIME.iter().map(|(n, _)| *n))
        .collect();
    all.sort_unstable();
    all
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Result<MountOptions> {
        let mut out = MountOptions::default();
        for opt in options {
            let opt = opt.as_str();
            if opt == "bind" {
                out.bind = true;
            } else if opt == "rbind" {
                out.bind = true;
                out.recursive_bind = true;
            } else if opt == "tmpcopyup" {
                out.tmpcopyup = true;
            } else if let Some((_, set, flag)) = FLAG_OPTIONS.iter().find(|(n, ..)| *n == opt) {
                if *set {
                    out.flags |= *flag;
                    out.cleared &= !*flag;
                } else {
                    out.flags &= !*flag;
                    out.cleared |= *flag;
                }
            } else if let Some((_, flag)) = PROPAGATION_OPTIONS.iter().find(|(n, _)| *n == opt) {
                out.propagation = *flag;
            } else if let Some((_, set, attr)) = RECURSIVE_OPTIONS.iter().find(|(n, ..)| *n == opt)
            {
                if *set {
                    out.rec_set |= attr;
                    out.rec_clr &= !attr;
                } else {
                    out.rec_clr |= attr;
                    out.rec_set &= !attr;
                }
            } else if let Some((_, attr)) = RECURSIVE_ATIME.iter().find(|(n, _)| *n == opt) {
                out.rec_clr |= MOUNT_ATTR_ATIME;
                out.rec_set = (out.rec_set & !MOUNT_ATTR_ATIME) | attr;
            } else if opt == "idmap" || opt == "ridmap" {
                return Err(Error::Unsupported(
                    "mount option",
                    format!("{opt:?} (id-mapped mounts)"),
                ));
            } else if opt.contains('=') || is_fs_flag_option(opt) {
                if !out.data.is_empty() {
                    out.data.push(',');
                }
                out.data.push_str(opt);
            } else {
                out.unknown.push(opt.to_string());
            }
        }
        Ok(out)
    }

    /// The mount_setattr attributes equivalent to the non-recursive flags, for bind mounts
    /// (whose flags only take effect through a remount).
    pub fn bind_attrs(&self) -> (u64, u64) {
        let map = [
            (MsFlags::MS_RDONLY, MOUNT_ATTR_RDONLY),
            (MsFlags::MS_NOSUID, MOUNT_ATTR_NOSUID),
            (MsFlags::MS_NODEV, MOUNT_ATTR_NODEV),
            (MsFlags::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (MsFlags::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
        ];
        let (mut set, mut clr) = (0, 0);
        for (flag, attr) in map {
            if self.flags.contains(flag) {
                set |= attr;
            } else if self.cleared.contains(flag) {
                clr |= attr;
            }
        }
        if self.flags.contains(MsFlags::MS_NOATIME) {
            set |= MOUNT_ATTR_NOATIME;
            clr |= MOUNT_ATTR_ATIME;
        } else if self.flags.contains(MsFlags::MS_STRICTATIME) {
            set |= MOUNT_ATTR_STRICTATIME;
            clr |= MOUNT_ATTR_ATIME;
        } else if self.flags.contains(MsFlags::MS_RELATIME) {
            clr |= MOUNT_ATTR_ATIME;
        }
        (set, clr)
    }
}

/// Bare words that filesystems take as data (devpts `newinstance`, tmpfs `huge`-less flags …).
fn is_fs_flag_option(opt: &str) -> bool {
    matches!(
        opt,
        "newinstance"
            | "noacl"
            | "acl"
            | "user_xattr"
            | "nouser_xattr"
            | "inode64"
            | "inode32"
            | "nsdelegate"
            | "memory_recursiveprot"
            | "memory_localevents"
            | "index=off"
            | "userxattr"
            | "redirect_dir=on"
            | "metacopy=on"
            | "volatile"
            | "hidepid=2"
            | "subset=pid"
            | "noswap"
            | "quota"
            | "usrquota"
            | "grpquota"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        let v: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
        MountOptions::parse(&v).unwrap()
    }

    #[test]
    fn flags_and_data() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.bind);
        let o = parse(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_and_propagation() {
        let o = parse(&["rbind", "rprivate", "ro", "nosuid"]);
        assert!(o.bind && o.recursive_bind);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        let (set, clr) = o.bind_attrs();
        assert_eq!(set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(clr, 0);
        let o = parse(&["bind", "shared"]);
        assert!(o.bind && !o.recursive_bind);
        assert_eq!(o.propagation, MsFlags::MS_SHARED);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoatime"]);
        assert_eq!(
            o.rec_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME);
        let o = parse(&["rbind", "rnorelatime"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME);
        assert!(o.unknown.is_empty());
        let o = parse(&["rnoatime", "rnostrictatime"]);
        assert_eq!(o.rec_set, MOUNT_ATTR_RELATIME);
        assert_eq!(o.rec_clr, MOUNT_ATTR_ATIME);
        let o = parse(&["rro", "rrw"]);
        assert_eq!(o.rec_set, 0);
        assert_eq!(o.rec_clr, MOUNT_ATTR_RDONLY);
    }

    #[test]
    fn unknown_and_unsupported() {
        let o = parse(&["bind", "frobnicate"]);
        assert_eq!(o.unknown, vec!["frobnicate".to_string()]);
        let err = MountOptions::parse(&["idmap".to_string()]).unwrap_err();
        assert!(err.to_string().contains("idmap"), "{err}");
        assert!(parse(&["newinstance", "ptmxmode=0666"])
            .data
            .contains("newinstance"));
    }
}
