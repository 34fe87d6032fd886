//! The container's root filesystem, built inside its mount namespace: mounts resolved safely
//! under the rootfs (openat2 RESOLVE_IN_ROOT, mounting onto the opened fd), devices, masked and
//! read-only paths, then pivot_root.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount};

use crate::error::{Error, Result, SysContext};
pub use crate::mount_opts::is_bind;
use crate::mount_opts::MountOptions;
use crate::sys::{self, fd_path, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS};

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// What to create at a mount destination that does not exist yet.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Dir,
    File,
}

/// Map a `linux.rootfsPropagation` word to mount flags.
pub fn propagation_flags(word: &str) -> Result<MsFlags> {
    Ok(match word {
        "" => MsFlags::empty(),
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        other => {
            return Err(Error::Spec(format!(
                "linux.rootfsPropagation {other:?} is not one of shared, slave, private, unbindable"
            )))
        }
    })
}

/// The rootfs being assembled: its path on the host and an O_PATH handle to it.
pub struct Rootfs {
    pub path: PathBuf,
    pub fd: OwnedFd,
    pub bundle: PathBuf,
    /// Whether mknod is allowed (false in a new user namespace: devices are bind-mounted).
    pub can_mknod: bool,
}

fn none() -> Option<&'static str> {
    None
}

/// Open `name` under `dir` as a directory to read, without following a final symlink.
fn open_dir_at(dir: RawFd, name: &std::ffi::CStr) -> std::io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    open_at(dir, name, flags, 0)
}

/// openat(2) into an owned descriptor.
fn open_at(
    dir: RawFd,
    name: &std::ffi::CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name; the kernel checks the descriptor.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags, mode) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A libc return value as a Result.
fn cvt(ret: libc::c_int) -> std::io::Result<()> {
    if ret < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `tmpcopyup` (runc's and crun's tmpfs extension): copy the directory `from`, which the new
/// tmpfs hides, into `to`, the tmpfs, keeping modes, owners, symlinks, device nodes and fifos
/// (as runc's copy does). Symlinks are copied, never followed.
fn copy_tree(from: RawFd, to: RawFd, dest: &Path) -> Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;

    let err = |what: String| {
        move |source: std::io::Error| Error::Io {
            what: format!("tmpcopyup: {what}"),
            source,
        }
    };
    let read_err = || err(format!("read directory {}", dest.display()));
    for entry in std::fs::read_dir(fd_path(from)).map_err(read_err())? {
        let entry = entry.map_err(read_err())?;
        let name = entry.file_name();
        let path = dest.join(&name);
        let what = || format!("copy {}", path.display());
        let c = CString::new(name.as_bytes()).map_err(|e| err(what())(e.into()))?;
        // SAFETY: stat is plain data, all zeroes is a valid value.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated name and a writable stat buffer.
        cvt(unsafe { libc::fstatat(from, c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })
            .map_err(err(what()))?;
        let kind = st.st_mode & libc::S_IFMT;
        match kind {
            libc::S_IFDIR => {
                // SAFETY: a NUL-terminated name.
                cvt(unsafe { libc::mkdirat(to, c.as_ptr(), 0o700) }).map_err(err(what()))?;
                let sub_from = open_dir_at(from, &c).map_err(err(what()))?;
                let sub_to = open_dir_at(to, &c).map_err(err(what()))?;
                copy_tree(sub_from.as_raw_fd(), sub_to.as_raw_fd(), &path)?;
            }
            libc::S_IFREG => {
                let rd = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
                let wr = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC;
                let mut src = std::fs::File::from(open_at(from, &c, rd, 0).map_err(err(what()))?);
                let mut dst = std::fs::File::from(open_at(to, &c, wr, 0o600).map_err(err(what()))?);
                std::io::copy(&mut src, &mut dst).map_err(err(what()))?;
            }
            libc::S_IFLNK => {
                let target = std::fs::read_link(entry.path()).map_err(err(what()))?;
                let t = CString::new(target.as_os_str().as_bytes())
                    .map_err(|e| err(what())(e.into()))?;
                // SAFETY: NUL-terminated strings.
                cvt(unsafe { libc::symlinkat(t.as_ptr(), to, c.as_ptr()) }).map_err(err(what()))?;
            }
            libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
                // SAFETY: a NUL-terminated name.
                cvt(unsafe { libc::mknodat(to, c.as_ptr(), kind | 0o600, st.st_rdev) })
                    .map_err(err(what()))?;
            }
            // A socket means nothing without its listener.
            _ => continue,
        }
        let nofollow = libc::AT_SYMLINK_NOFOLLOW;
        // SAFETY: a NUL-terminated name.
        cvt(unsafe { libc::fchownat(to, c.as_ptr(), st.st_uid, st.st_gid, nofollow) })
            .map_err(err(what()))?;
        if kind != libc::S_IFLNK {
            // After the chown, which clears set-id bits. SAFETY: a NUL-terminated name.
            cvt(unsafe { libc::fchmodat(to, c.as_ptr(), st.st_mode & 0o7777, 0) })
                .map_err(err(what()))?;
        }
    }
    Ok(())
}

impl Rootfs {
    /// Detach the container's mounts from the host (rslave), and make the rootfs a mount point.
    pub fn prepare(path: &Path, bundle: &Path, can_mknod: bool) -> Result<Rootfs> {
        mount(
            none(),
            "/",
            none(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            none(),
        )
        .sys(|| "make / rslave in the container's mount namespace".into())?;
        mount(
            Some(path),
            path,
            none(),
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none(),
        )
        .sys(|| format!("bind rootfs {}", path.display()))?;
        let fd = open_path(path)?;
        Ok(Rootfs {
            path: path.to_path_buf(),
            fd,
            bundle: bundle.to_path_buf(),
            can_mknod,
        })
    }

    /// Open `dest` (absolute inside the container) without leaving the rootfs, creating it
    /// (and its parents) as `create` says when missing.
    pub fn resolve(&self, dest: &Path, create: Option<Create>) -> Result<OwnedFd> {
        self.resolve_part(dest, &relative(dest), create)
    }

    /// `resolve` of `rel`, a leading part of `dest`'s path (errors name `dest`).
    fn resolve_part(&self, dest: &Path, rel: &Path, create: Option<Create>) -> Result<OwnedFd> {
        let rel = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        match openat2(
            self.fd.as_raw_fd(),
            rel,
            libc::O_PATH,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        ) {
            Ok(fd) => Ok(fd),
            Err(Errno::ENOENT) if create.is_some() => self.create(dest, rel, create),
            Err(e) => Err(e).sys(|| format!("resolve {} in rootfs", dest.display())),
        }
    }

    fn create(&self, dest: &Path, rel: &Path, create: Option<Create>) -> Result<OwnedFd> {
        let parent_rel = rel.parent().unwrap_or(Path::new(""));
        let parent = if parent_rel.as_os_str().is_empty() {
            open_path_at(self.fd.as_raw_fd(), Path::new("."))?
        } else {
            self.resolve_part(dest, parent_rel, Some(Create::Dir))?
        };
        let Some(name) = rel.file_name() else {
            return Ok(parent);
        };
        // The name exists but did not resolve: a symlink to nowhere (inside the rootfs). Say so
        // rather than fail later with ENOENT or ELOOP; nothing is created at its target.
        if let Ok(target) = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name) {
            return Err(Error::Spec(format!(
                "{}: /{} is a dangling symlink (to {:?}) in the container's root filesystem",
                dest.display(),
                rel.display(),
                target
            )));
        }
        match create {
            Some(Create::File) => {
                match nix::fcntl::openat(
                    Some(parent.as_raw_fd()),
                    name,
                    nix::fcntl::OFlag::O_CREAT
                        | nix::fcntl::OFlag::O_WRONLY
                        | nix::fcntl::OFlag::O_NOFOLLOW
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o644),
                ) {
                    Ok(fd) => drop(own(fd)),
                    Err(Errno::EEXIST) => {}
                    Err(e) => return Err(e).sys(|| format!("create /{}", rel.display())),
                }
            }
            _ => match nix::sys::stat::mkdirat(
                Some(parent.as_raw_fd()),
                name,
                Mode::from_bits_truncate(0o755),
            ) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).sys(|| format!("mkdir /{}", rel.display())),
            },
        }
        openat2(
            self.fd.as_raw_fd(),
            rel,
            libc::O_PATH,
            RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
        )
        .sys(|| format!("resolve /{} in rootfs", rel.display()))
    }

    /// Where `dest` leads inside the container once its symlinks and `..` are resolved in the
    /// rootfs (`/pp/x` with `/pp -> /proc/sys` is `/proc/sys/x`). The part that does not exist
    /// yet is taken as written: create makes directories (never symlinks) there.
    fn resolved_destination(&self, dest: &Path) -> Result<PathBuf> {
        let rel = relative(dest);
        let parts: Vec<Component> = rel.components().collect();
        for existing in (0..=parts.len()).rev() {
            let prefix: PathBuf = parts[..existing].iter().collect();
            let fd = match self.resolve_part(dest, &prefix, None) {
                Ok(fd) => fd,
                Err(Error::Sys {
                    source: Errno::ENOENT,
                    ..
                }) => continue,
                Err(e) => return Err(e),
            };
            let mut inside = self.path_inside(&fd, dest)?;
            for part in &parts[existing..] {
                match part {
                    Component::ParentDir => {
                        inside.pop();
                    }
                    Component::Normal(name) => inside.push(name),
                    _ => {}
                }
            }
            return Ok(inside);
        }
        Ok(PathBuf::from("/"))
    }

    /// The path inside the container of a descriptor opened under the rootfs.
    fn path_inside(&self, fd: &OwnedFd, dest: &Path) -> Result<PathBuf> {
        let host = std::fs::read_link(fd_path(fd.as_raw_fd())).map_err(|e| Error::Io {
            what: format!("find where {} resolves", dest.display()),
            source: e,
        })?;
        match host.strip_prefix(&self.path) {
            Ok(rest) => Ok(Path::new("/").join(rest)),
            Err(_) => Err(Error::Spec(format!(
                "mount destination {} resolves to {}, outside the root filesystem",
                dest.display(),
                host.display()
            ))),
        }
    }

    /// runc's rule (1.1.12 and 1.2) for destinations in /proc, applied where the destination
    /// really leads: see [`check_proc_destination`].
    fn check_proc_mount(&self, dest: &Path, typ: &str, bind_source: Option<&Path>) -> Result<()> {
        let resolved = self.resolved_destination(dest)?;
        check_proc_destination(dest, &resolved, typ, bind_source, || {
            bind_source.is_some_and(|src| {
                nix::sys::statfs::statfs(src)
                    .is_ok_and(|st| st.filesystem_type().0 == PROC_SUPER_MAGIC)
            })
        })
    }

    /// Like `resolve` without creating; a missing path is `None` (masked and read-only paths
    /// that the image lacks are skipped).
    fn resolve_existing(&self, path: &Path) -> Result<Option<OwnedFd>> {
        match self.resolve(path, None) {
            Ok(fd) => Ok(Some(fd)),
            Err(Error::Sys {
                source: Errno::ENOENT,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Perform one `mounts[]` entry. A bind mount's source comes as `opened_source` when the
    /// runtime opened it for us (a container whose root is not host root, see
    /// `userns::send_bind_sources`); it is mounted through that handle.
    /// Mount `m` with its options `opts`, parsed once at validation (`spec::Parsed`).
    pub fn mount_entry(
        &self,
        m: &Mount,
        opts: &MountOptions,
        cgroup_bind: Option<&Path>,
        opened_source: Option<&OwnedFd>,
    ) -> Result<()> {
        let dest = m.destination();
        let typ = m.typ().as_deref().unwrap_or("");
        let bind = opts.bind || typ == "bind";
        let what = || format!("mount {} on {}", typ_or(typ, bind), dest.display());

        if bind {
            if let Some(bad) = opts.unknown.first() {
                return Err(Error::Spec(format!(
                    "mount {}: unknown option {bad:?}",
                    dest.display()
                )));
            }
            let source = match opened_source {
                Some(fd) => PathBuf::from(fd_path(fd.as_raw_fd())),
                None => crate::userns::bind_source(m, &self.bundle)?,
            };
            let meta = std::fs::metadata(&source)
                .map_err(|e| Error::Spec(format!("mount source {}: {e}", source.display())))?;
            self.check_proc_mount(dest, typ, Some(&source))?;
            let target = self.resolve(
                dest,
                Some(if meta.is_dir() {
                    Create::Dir
                } else {
                    Create::File
                }),
            )?;
            let target_path = fd_path(target.as_raw_fd());
            return self.bind_onto(&source, &target_path, opts.recursive_bind, dest, opts, what);
        }

        if (typ == "proc" || typ == "sysfs") && self.is_symlink(dest) {
            return Err(Error::Spec(format!(
                "mount destination {} is a symlink: refusing to mount {typ} there",
                dest.display()
            )));
        }
        self.check_proc_mount(dest, typ, None)?;
        // A tmpfs over a directory the image has keeps that directory's mode unless the config
        // gives one (runc does the same; tmpfs would otherwise be 1777).
        let existing_mode =
            if typ == "tmpfs" && !opts.data.split(',').any(|o| o.starts_with("mode=")) {
                self.resolve_existing(dest)?
                    .and_then(|fd| nix::sys::stat::fstat(fd.as_raw_fd()).ok())
                    .map(|st| st.st_mode & 0o7777)
            } else {
                None
            };
        let target = self.resolve(dest, Some(Create::Dir))?;
        if typ == "proc" || typ == "sysfs" {
            check_not_overmounted(&target, dest)?;
        }
        let target_path = fd_path(target.as_raw_fd());
        // Bare words pelagos does not know go to the filesystem, which refuses what it does
        // not understand (as runc passes them on).
        let mut data_text = opts.data.clone();
        if let Some(mode) = existing_mode {
            if !data_text.is_empty() {
                data_text.push(',');
            }
            data_text.push_str(&format!("mode={mode:o}"));
        }
        for word in &opts.unknown {
            if !data_text.is_empty() {
                data_text.push(',');
            }
            data_text.push_str(word);
        }
        let data = (!data_text.is_empty()).then_some(data_text.as_str());
        let flags = opts.flags & !MsFlags::MS_REMOUNT;
        match typ {
            "cgroup" | "cgroup2" => {
                if let Some(dir) = cgroup_bind {
                    // No cgroup namespace: show the container its own cgroup by a bind mount.
                    return self.bind_onto(dir, &target_path, true, dest, opts, what);
                }
                mount(
                    Some("cgroup2"),
                    target_path.as_str(),
                    Some("cgroup2"),
                    flags,
                    data,
                )
                .sys(what)?;
            }
            _ => {
                let source = m
                    .source()
                    .as_ref()
                    .map(|s| s.as_os_str().to_owned())
                    .unwrap_or_else(|| typ.into());
                // tmpcopyup: hold on to the directory the tmpfs is about to hide, and mount
                // it writable until the copy is done.
                let copy_up = opts.tmpcopyup && typ == "tmpfs";
                let hidden = if copy_up {
                    match open_dir_at(target.as_raw_fd(), c".") {
                        Ok(fd) => Some(fd),
                        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => None,
                        Err(source) => {
                            return Err(Error::Io {
                                what: format!("tmpcopyup: open {}", dest.display()),
                                source,
                            })
                        }
                    }
                } else {
                    None
                };
                let mount_flags = if hidden.is_some() {
                    flags & !MsFlags::MS_RDONLY
                } else {
                    flags
                };
                let res = mount(
                    Some(source.as_os_str()),
                    target_path.as_str(),
                    Some(typ),
                    mount_flags,
                    data,
                );
                match res {
                    Ok(()) => {}
                    // Without a new network/ipc namespace of our own user namespace, sysfs and
                    // mqueue cannot be mounted fresh: show the host's, as runc does.
                    Err(Errno::EPERM) if typ == "sysfs" || typ == "mqueue" => {
                        let host = if typ == "sysfs" {
                            "/sys"
                        } else {
                            "/dev/mqueue"
                        };
                        return self.bind_onto(
                            Path::new(host),
                            &target_path,
                            true,
                            dest,
                            opts,
                            what,
                        );
                    }
                    Err(e) => return Err(e).sys(what),
                }
                if let Some(hidden) = hidden {
                    let top = self.resolve(dest, None)?;
                    let top = open_dir_at(top.as_raw_fd(), c".").map_err(|source| Error::Io {
                        what: format!("tmpcopyup: open the tmpfs at {}", dest.display()),
                        source,
                    })?;
                    copy_tree(hidden.as_raw_fd(), top.as_raw_fd(), dest)?;
                    if flags.contains(MsFlags::MS_RDONLY) {
                        mount(
                            none(),
                            fd_path(top.as_raw_fd()).as_str(),
                            none(),
                            flags | MsFlags::MS_REMOUNT,
                            data,
                        )
                        .sys(|| format!("remount {} read-only", dest.display()))?;
                    }
                }
            }
        }
        self.finish_mount(dest, opts, 0, 0)
    }

    /// Bind `source` onto the opened destination `target_path`, then apply the options' flags
    /// (which a bind only takes through attributes) and propagation.
    fn bind_onto(
        &self,
        source: &Path,
        target_path: &str,
        recursive: bool,
        dest: &Path,
        opts: &MountOptions,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        let mut flags = MsFlags::MS_BIND;
        if recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(source), target_path, none(), flags, none()).sys(what)?;
        let (set, clr) = opts.bind_attrs();
        self.finish_mount(dest, opts, set, clr)
    }

    /// Apply attributes (for binds and recursive options) and propagation to the mount now at `dest`.
    fn finish_mount(&self, dest: &Path, opts: &MountOptions, set: u64, clr: u64) -> Result<()> {
        if set == 0
            && clr == 0
            && opts.rec_set == 0
            && opts.rec_clr == 0
            && opts.propagation.is_empty()
        {
            return Ok(());
        }
        // Re-open: the new descriptor refers to the root of the mount just made.
        let fd = self.resolve(dest, None)?;
        if set != 0 || clr != 0 {
            sys::mount_setattr(fd.as_raw_fd(), false, set, clr)
                .sys(|| format!("set mount attributes on {}", dest.display()))?;
        }
        if opts.rec_set != 0 || opts.rec_clr != 0 {
            sys::mount_setattr(fd.as_raw_fd(), true, opts.rec_set, opts.rec_clr)
                .sys(|| format!("set recursive mount attributes on {}", dest.display()))?;
        }
        if !opts.propagation.is_empty() {
            mount(
                none(),
                fd_path(fd.as_raw_fd()).as_str(),
                none(),
                opts.propagation,
                none(),
            )
            .sys(|| format!("set propagation of {}", dest.display()))?;
        }
        Ok(())
    }

    fn is_symlink(&self, dest: &Path) -> bool {
        let rel = relative(dest);
        let (parent, name) = match (rel.parent(), rel.file_name()) {
            (Some(p), Some(n)) => (p, n),
            _ => return false,
        };
        let Ok(dir) = (if parent.as_os_str().is_empty() {
            open_path_at(self.fd.as_raw_fd(), Path::new("."))
        } else {
            self.resolve(parent, None)
        }) else {
            return false;
        };
        nix::sys::stat::fstatat(
            Some(dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
    }

    /// Whether the config mounts something of its own on /dev from the host (then the runtime
    /// does not populate it).
    pub fn create_devices(&self, devices: &[LinuxDevice], with_defaults: bool) -> Result<()> {
        if with_defaults {
            for (name, minor_major) in DEFAULT_DEVICES {
                self.make_device(
                    Path::new(name),
                    SFlag::S_IFCHR,
                    minor_major.0,
                    minor_major.1,
                    0o666,
                    0,
                    0,
                )?;
            }
        }
        for d in devices {
            let kind = match d.typ() {
                LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
                LinuxDeviceType::B => SFlag::S_IFBLK,
                LinuxDeviceType::P => SFlag::S_IFIFO,
                LinuxDeviceType::A => {
                    return Err(Error::Spec(format!(
                        "linux.devices {}: type \"a\" is only valid in cgroup rules",
                        d.path().display()
                    )))
                }
            };
            self.make_device(
                d.path(),
                kind,
                d.major() as u64,
                d.minor() as u64,
                d.file_mode().unwrap_or(0o666),
                d.uid().unwrap_or(0),
                d.gid().unwrap_or(0),
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn make_device(
        &self,
        path: &Path,
        kind: SFlag,
        major: u64,
        minor: u64,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<()> {
        let rel = relative(path);
        let parent = self.resolve(rel.parent().unwrap_or(Path::new("dev")), Some(Create::Dir))?;
        let name = rel
            .file_name()
            .ok_or_else(|| Error::Spec(format!("device path {}", path.display())))?;
        // Replace whatever is there (an image may ship placeholder files).
        let _ = nix::unistd::unlinkat(
            Some(parent.as_raw_fd()),
            name,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        let what = || format!("create device {}", path.display());
        if self.can_mknod || kind == SFlag::S_IFIFO {
            let dev = nix::sys::stat::makedev(major, minor);
            nix::sys::stat::mknodat(
                Some(parent.as_raw_fd()),
                name,
                kind,
                Mode::from_bits_truncate(mode & 0o7777),
                dev,
            )
            .sys(what)?;
            let node = nix::fcntl::openat(
                Some(parent.as_raw_fd()),
                name,
                nix::fcntl::OFlag::O_PATH
                    | nix::fcntl::OFlag::O_NOFOLLOW
                    | nix::fcntl::OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .sys(what)?;
            let node = own(node);
            // O_PATH fds cannot be fchmod'ed directly: go through the proc magic link.
            let p = fd_path(node.as_raw_fd());
            nix::sys::stat::fchmodat(
                None,
                p.as_str(),
                Mode::from_bits_truncate(mode & 0o7777),
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
            .sys(what)?;
            nix::unistd::fchownat(
                None,
                p.as_str(),
                Some(uid.into()),
                Some(gid.into()),
                nix::fcntl::AtFlags::empty(),
            )
            .sys(what)?;
        } else {
            // A user namespace cannot mknod: bind the host's node instead — only if it is
            // the very device asked for, never some other file at that path.
            let host = Path::new("/").join(&rel);
            let st = nix::sys::stat::lstat(&host).sys(what)?;
            let is_kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind;
            if !is_kind || st.st_rdev != nix::sys::stat::makedev(major, minor) {
                return Err(Error::Spec(format!(
                    "device {}: the host has no {major}:{minor} device there to bind into a user namespace",
                    path.display()
                )));
            }
            let target = self.resolve(path, Some(Create::File))?;
            mount(
                Some(&host),
                fd_path(target.as_raw_fd()).as_str(),
                none(),
                MsFlags::MS_BIND,
                none(),
            )
            .sys(what)?;
            // A device node needs neither set-id programs nor exec (crun mounts them so;
            // runc's plain bind keeps whatever the host's /dev has).
            let node = self.resolve(path, None)?;
            sys::mount_setattr(
                node.as_raw_fd(),
                false,
                sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NOEXEC,
                0,
            )
            .sys(|| format!("make device {} nosuid,noexec", path.display()))?;
        }
        Ok(())
    }

    /// The usual /dev symlinks; /dev/ptmx points into the container's devpts.
    pub fn dev_symlinks(&self, has_devpts: bool) -> Result<()> {
        let dev = self.resolve(Path::new("/dev"), Some(Create::Dir))?;
        let mut links = vec![
            ("/proc/self/fd", "fd"),
            ("/proc/self/fd/0", "stdin"),
            ("/proc/self/fd/1", "stdout"),
            ("/proc/self/fd/2", "stderr"),
        ];
        if Path::new("/proc/kcore").exists() {
            links.push(("/proc/kcore", "core"));
        }
        if has_devpts {
            let _ = nix::unistd::unlinkat(
                Some(dev.as_raw_fd()),
                "ptmx",
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
            links.push(("pts/ptmx", "ptmx"));
        }
        for (target, name) in links {
            match nix::unistd::symlinkat(target, Some(dev.as_raw_fd()), name) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).sys(|| format!("symlink /dev/{name}")),
            }
        }
        Ok(())
    }

    /// Hide `paths`: a directory gets an empty read-only tmpfs, a file the host's /dev/null
    /// (opened and checked to be the real 1:3 character device, never the container's).
    pub fn mask_paths(&self, paths: &[String], dev_null: &OwnedFd) -> Result<()> {
        for p in paths {
            let Some(target) = self.resolve_existing(Path::new(p))? else {
                continue;
            };
            let tp = fd_path(target.as_raw_fd());
            let st = nix::sys::stat::fstat(target.as_raw_fd()).sys(|| format!("stat {p}"))?;
            let what = || format!("mask {p}");
            if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
                mount(
                    Some("tmpfs"),
                    tp.as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY,
                    none(),
                )
                .sys(what)?;
            } else {
                mount(
                    Some(fd_path(dev_null.as_raw_fd()).as_str()),
                    tp.as_str(),
                    none(),
                    MsFlags::MS_BIND,
                    none(),
                )
                .sys(what)?;
            }
        }
        Ok(())
    }

    /// Make `paths` read-only bind mounts of themselves.
    pub fn readonly_paths(&self, paths: &[String]) -> Result<()> {
        for p in paths {
            let Some(target) = self.resolve_existing(Path::new(p))? else {
                continue;
            };
            let tp = fd_path(target.as_raw_fd());
            mount(
                Some(tp.as_str()),
                tp.as_str(),
                none(),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                none(),
            )
            .sys(|| format!("bind read-only path {p}"))?;
            let fd = self.resolve(Path::new(p), None)?;
            sys::mount_setattr(fd.as_raw_fd(), true, sys::MOUNT_ATTR_RDONLY, 0)
                .sys(|| format!("make {p} read-only"))?;
        }
        Ok(())
    }

    /// pivot_root into the rootfs and drop the old root; or, with `no_pivot`, MS_MOVE + chroot.
    pub fn pivot(&self, no_pivot: bool) -> Result<()> {
        nix::unistd::fchdir(self.fd.as_raw_fd()).sys(|| "chdir to rootfs".into())?;
        if no_pivot {
            mount(Some("."), "/", none(), MsFlags::MS_MOVE, none())
                .sys(|| "move rootfs to / (--no-pivot)".into())?;
            nix::unistd::chroot(".").sys(|| "chroot into rootfs".into())?;
        } else {
            let old_root = open_path(Path::new("/"))?;
            sys::pivot_root(Path::new("."), Path::new(".")).sys(|| "pivot_root".into())?;
            // The old root is now stacked on top of the new one. Step onto it (our cwd is
            // still the new root, and "." there would make the container's own mounts
            // rslave, undoing `shared` mount options), keep its unmount from propagating to
            // the host, then detach it.
            nix::unistd::fchdir(old_root.as_raw_fd()).sys(|| "chdir to old root".into())?;
            drop(old_root);
            mount(
                none(),
                ".",
                none(),
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                none(),
            )
            .sys(|| "make old root rslave".into())?;
            umount2(".", MntFlags::MNT_DETACH).sys(|| "detach old root".into())?;
        }
        nix::unistd::chdir("/").sys(|| "chdir /".into())
    }
}

const DEFAULT_DEVICES: [(&str, (u64, u64)); 6] = [
    ("/dev/null", (1, 3)),
    ("/dev/zero", (1, 5)),
    ("/dev/full", (1, 7)),
    ("/dev/random", (1, 8)),
    ("/dev/urandom", (1, 9)),
    ("/dev/tty", (5, 0)),
];

fn typ_or(typ: &str, bind: bool) -> &str {
    if bind {
        "bind"
    } else {
        typ
    }
}

/// A mount destination as a path relative to the rootfs ("/a/../b" stays "a/../b": openat2
/// with RESOLVE_IN_ROOT keeps ".." inside).
pub fn relative(dest: &Path) -> PathBuf {
    dest.components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .collect()
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass descriptors freshly returned by a successful open.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

pub fn open_path(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys(|| format!("open {}", path.display()))?;
    Ok(own(fd))
}

fn open_path_at(dir: RawFd, path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::openat(
        Some(dir),
        path,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys(|| format!("open {}", path.display()))?;
    Ok(own(fd))
}

/// The only places under /proc a mount may cover: files lxcfs emulates, and a few knobs (the
/// list of runc 1.2's `checkProcMount`).
const PROC_MOUNT_TARGETS: [&str; 11] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/meminfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/loadavg",
    "/proc/slabinfo",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
];

/// runc's rule for a mount whose destination `resolved` (symlinks followed in the rootfs) is
/// /proc or below it: on /proc itself only a `proc` mount or a bind of a procfs; below it only
/// the [`PROC_MOUNT_TARGETS`]. Anything else could cover procfs files that LSMs, sysctls or
/// the masked paths rely on (e.g. a writable file bound over /proc/sys/...). Outside /proc: no
/// rule.
fn check_proc_destination(
    dest: &Path,
    resolved: &Path,
    typ: &str,
    bind_source: Option<&Path>,
    source_is_procfs: impl FnOnce() -> bool,
) -> Result<()> {
    let Ok(below) = resolved.strip_prefix("/proc") else {
        return Ok(());
    };
    let shown = if resolved == dest {
        dest.display().to_string()
    } else {
        format!(
            "{} (which resolves to {})",
            dest.display(),
            resolved.display()
        )
    };
    if below.as_os_str().is_empty() {
        let ok = match bind_source {
            Some(_) => source_is_procfs(),
            None => typ == "proc",
        };
        if ok {
            return Ok(());
        }
        return Err(Error::Spec(format!(
            "mount destination {shown} is /proc: only a proc mount or a bind of a procfs may go there"
        )));
    }
    if PROC_MOUNT_TARGETS.iter().any(|t| Path::new(t) == resolved) {
        return Ok(());
    }
    Err(Error::Spec(format!(
        "mount destination {shown} is inside /proc: only {} may be mounted over there",
        PROC_MOUNT_TARGETS.join(", ")
    )))
}

/// A fresh proc or sysfs must land on a directory of the image, not on something the image
/// arranged to be a procfs (an over-mount trick).
fn check_not_overmounted(target: &OwnedFd, dest: &Path) -> Result<()> {
    let st = nix::sys::statfs::fstatfs(target).sys(|| format!("statfs {}", dest.display()))?;
    if st.filesystem_type().0 == PROC_SUPER_MAGIC {
        return Err(Error::Spec(format!(
            "mount destination {} is already inside a procfs",
            dest.display()
        )));
    }
    Ok(())
}

/// Open the host's /dev/null and check it is the real null device (1:3).
pub fn host_dev_null() -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_NOFOLLOW | nix::fcntl::OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .sys(|| "open /dev/null".into())?;
    let fd = own(fd);
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).sys(|| "stat /dev/null".into())?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(Error::Spec(
            "/dev/null is not the 1:3 character device: refusing to use it for masking".into(),
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_words() {
        assert_eq!(propagation_flags("shared").unwrap(), MsFlags::MS_SHARED);
        assert_eq!(
            propagation_flags("rslave").unwrap(),
            MsFlags::MS_SLAVE | MsFlags::MS_REC
        );
        assert!(propagation_flags("sideways").is_err());
    }

    #[test]
    fn relative_paths_stay_relative() {
        assert_eq!(relative(Path::new("/proc/sys")), PathBuf::from("proc/sys"));
        assert_eq!(relative(Path::new("/a/../b")), PathBuf::from("a/../b"));
        assert_eq!(relative(Path::new("/")), PathBuf::from(""));
    }

    #[test]
    fn proc_destinations_follow_runc() {
        let check = |resolved: &str, typ: &str, bind: bool, procfs: bool| {
            let src = Path::new("/src");
            check_proc_destination(
                Path::new("/d"),
                Path::new(resolved),
                typ,
                bind.then_some(src),
                || procfs,
            )
        };
        assert!(check("/proc", "proc", false, false).is_ok());
        assert!(check("/proc", "bind", true, true).is_ok());
        assert!(check("/proc", "bind", true, false).is_err());
        assert!(check("/proc", "tmpfs", false, false).is_err());
        assert!(check("/proc/uptime", "bind", true, false).is_ok());
        assert!(check("/proc/sys/kernel/ns_last_pid", "bind", true, false).is_ok());
        assert!(check("/proc/net/dev", "bind", true, false).is_ok());
        let err = check("/proc/sys/kernel/domainname", "bind", true, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/d") && err.contains("inside /proc"), "{err}");
        assert!(check("/proc/sys", "proc", false, false).is_err());
        assert!(check("/proc/sys", "tmpfs", false, false).is_err());
        assert!(check("/procfs", "tmpfs", false, false).is_ok());
        assert!(check("/srv/proc", "proc", false, false).is_ok());
        assert!(check("/", "tmpfs", false, false).is_ok());
    }

    #[test]
    fn real_dev_null_passes() {
        assert!(host_dev_null().is_ok());
    }
}
