//! Root filesystems as overlayfs mounts: the image's layers as lower directories, a
//! per-container upper and work directory. Mounted by the container's monitor, the
//! single-threaded process plane, which may change its working directory for a moment.
//!
//! mount(2) takes its options in one page (4096 bytes). Absolute layer paths
//! (`/var/lib/pelagos/image/layers/sha256/<64 hex>/diff`) would cap an image at ~40 layers, so
//! the store keeps short symlinks (`l/<short>`) and the mount is made with the layer directory
//! as the working directory and relative lower paths, as Docker's overlay2 driver does. The
//! kernel's own limit (500 lower layers) is then the one that matters.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::OFlag;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Error, Result};

/// Page size the kernel copies mount options into.
const MOUNT_DATA_MAX: usize = 4096;

/// Restores the working directory when dropped (also on early return).
struct CwdGuard(OwnedFd);

impl Drop for CwdGuard {
    fn drop(&mut self) {
        let _ = nix::unistd::fchdir(self.0.as_raw_fd());
    }
}

/// The option string, or an error when it cannot fit.
fn options(lowers: &[String], upper: &Path, work: &Path, volatile: bool) -> Result<String> {
    let data = format!(
        "lowerdir={},upperdir={},workdir={},index=off{}",
        lowers.join(":"),
        upper.display(),
        work.display(),
        if volatile { ",volatile" } else { "" }
    );
    if data.len() >= MOUNT_DATA_MAX {
        return Err(Error::Invalid(format!(
            "image has {} layers: more than one overlayfs mount can stack",
            lowers.len()
        )));
    }
    Ok(data)
}

/// Mounts an overlay at `target`: `lowers` are relative to `layers_dir`, topmost first.
/// `volatile` (for containers removed when they exit, as podman does for `--rm`) skips the
/// sync of the upper directory's filesystem that an overlay unmount otherwise does: milliseconds
/// per container, for data nobody keeps.
///
/// Changes the process's working directory for the duration of the call: only the
/// single-threaded monitor calls it.
pub fn mount_overlay(
    layers_dir: &Path,
    lowers: &[String],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<()> {
    if lowers.is_empty() {
        return Err(Error::Invalid(
            "an overlay needs at least one lower layer".into(),
        ));
    }
    let data = options(lowers, upper, work, volatile)?;
    let here = nix::fcntl::open(
        ".",
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| Error::sys("open the current directory", e))?;
    // SAFETY: open just returned this descriptor; nothing else owns it.
    let _restore = CwdGuard(unsafe { OwnedFd::from_raw_fd(here) });
    std::env::set_current_dir(layers_dir)
        .map_err(|e| Error::io(format!("enter {}", layers_dir.display()), e))?;
    mount(
        Some("overlay"),
        target,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        Error::sys(
            format!(
                "mount overlay of {} layers on {}",
                lowers.len(),
                target.display()
            ),
            e,
        )
    })
}

/// Makes a cleanly unmounted volatile overlay mountable again. The kernel leaves
/// `WORK/work/incompat/volatile` to refuse any later mount (the upper directory may be torn
/// after a crash); the monitor that unmounted it knows it was not, so it syncs the upper
/// directory's filesystem and removes the marker (as overlayfs's documentation allows).
pub fn settle_volatile(upper: &Path, work: &Path) -> Result<()> {
    let incompat = work.join("work").join("incompat");
    if !incompat.join("volatile").exists() {
        return Ok(());
    }
    let dir = std::fs::File::open(upper)
        .map_err(|e| Error::io(format!("open {}", upper.display()), e))?;
    nix::unistd::syncfs(dir.as_raw_fd())
        .map_err(|e| Error::sys(format!("sync {}", upper.display()), e))?;
    std::fs::remove_dir_all(&incompat)
        .map_err(|e| Error::io(format!("remove {}", incompat.display()), e))
}

/// Unmounts a container's root filesystem; an absent mount is not an error.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(Error::sys(format!("unmount {}", target.display()), e)),
    }
}

/// Whether something is mounted exactly at `path` (per /proc/self/mountinfo).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.to_string_lossy();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| mp == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_string_reports_too_many_layers() {
        let short: Vec<String> = (0..250).map(|i| format!("l/{i:012}")).collect();
        assert!(options(&short, Path::new("/u"), Path::new("/w"), false).is_ok());
        let long: Vec<String> = (0..300).map(|i| format!("l/{i:012}")).collect();
        let err = options(&long, Path::new("/u"), Path::new("/w"), true).unwrap_err();
        assert!(err.to_string().contains("300 layers"), "{err}");
    }

    #[test]
    fn overlay_of_many_layers_mounts_and_unmounts() {
        // 200 real lower layers: more than absolute paths fit in one page.
        let d = tempfile::tempdir().unwrap();
        let layers = d.path().join("layers");
        let mut lowers = Vec::new();
        for i in 0..200 {
            let dir = layers.join(format!("sha256/{i:064}/diff"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("f{i}")), format!("{i}")).unwrap();
            std::fs::create_dir_all(layers.join("l")).unwrap();
            let short = format!("l/{i:012}");
            std::os::unix::fs::symlink(format!("../sha256/{i:064}/diff"), layers.join(&short))
                .unwrap();
            lowers.push(short);
        }
        lowers.reverse();
        for sub in ["upper", "work", "merged"] {
            std::fs::create_dir(d.path().join(sub)).unwrap();
        }
        let merged = d.path().join("merged");
        let cwd = std::env::current_dir().unwrap();
        mount_overlay(
            &layers,
            &lowers,
            &d.path().join("upper"),
            &d.path().join("work"),
            &merged,
            false,
        )
        .unwrap();
        assert_eq!(std::env::current_dir().unwrap(), cwd);
        assert!(is_mounted(&merged));
        let r = std::fs::read_to_string(merged.join("f0"));
        let r199 = std::fs::read_to_string(merged.join("f199"));
        std::fs::write(merged.join("new"), "x").unwrap();
        unmount(&merged).unwrap();
        assert_eq!(r.unwrap(), "0");
        assert_eq!(r199.unwrap(), "199");
        assert!(d.path().join("upper/new").exists());
        assert!(!is_mounted(&merged));
    }

    #[test]
    fn a_settled_volatile_overlay_mounts_again() {
        // mount(2) directly, absolute paths: no working directory change (tests run at once).
        let d = tempfile::tempdir().unwrap();
        let [lower, upper, work, merged] = ["lower", "upper", "work", "merged"].map(|s| {
            let p = d.path().join(s);
            std::fs::create_dir(&p).unwrap();
            p
        });
        let data = options(&[lower.display().to_string()], &upper, &work, true).unwrap();
        let mount_it = || {
            mount(
                Some("overlay"),
                &merged,
                Some("overlay"),
                MsFlags::empty(),
                Some(data.as_str()),
            )
        };
        mount_it().unwrap();
        std::fs::write(merged.join("kept"), "x").unwrap();
        unmount(&merged).unwrap();
        // The kernel's guard: a volatile overlay's directories are not mounted twice.
        assert_eq!(mount_it(), Err(nix::errno::Errno::EINVAL));
        settle_volatile(&upper, &work).unwrap();
        mount_it().unwrap();
        let kept = std::fs::read_to_string(merged.join("kept"));
        unmount(&merged).unwrap();
        assert_eq!(kept.unwrap(), "x");
        // Nothing to settle: no error.
        settle_volatile(&upper, &work).unwrap();
    }
}
