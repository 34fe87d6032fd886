//! Facts about this host's cgroup v2 tree, each read once per process and cached: the cgroup2
//! mount point, the controllers its root offers, and the supported huge page sizes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::CgroupError;
use crate::fsutil;

static MOUNTPOINT: OnceLock<PathBuf> = OnceLock::new();
static CONTROLLERS: OnceLock<Vec<String>> = OnceLock::new();
static HUGEPAGE_SIZES: OnceLock<Vec<String>> = OnceLock::new();

/// The cgroup2 mount point, found in `/proc/self/mountinfo`: `/sys/fs/cgroup` on a pure v2 host,
/// `/sys/fs/cgroup/unified` on a hybrid one. Cached after the first successful call.
pub fn v2_mountpoint() -> Result<PathBuf, CgroupError> {
    if let Some(p) = MOUNTPOINT.get() {
        return Ok(p.clone());
    }
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| CgroupError::io("read", "/proc/self/mountinfo", e))?;
    let found = find_cgroup2(&info).ok_or(CgroupError::NoV2Mount)?;
    Ok(MOUNTPOINT.get_or_init(|| found).clone())
}

/// Pick the cgroup2 mount out of a mountinfo text, preferring the conventional locations.
pub(crate) fn find_cgroup2(mountinfo: &str) -> Option<PathBuf> {
    let mut mounts = Vec::new();
    for line in mountinfo.lines() {
        // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional...] - <fstype> <src> <sopts>"
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        if right.split(' ').next() != Some("cgroup2") {
            continue;
        }
        if let Some(mp) = left.split(' ').nth(4) {
            mounts.push(PathBuf::from(unescape_octal(mp)));
        }
    }
    for preferred in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if let Some(m) = mounts.iter().find(|m| m.as_os_str() == preferred) {
            return Some(m.clone());
        }
    }
    mounts.into_iter().next()
}

/// Undo mountinfo's `\ooo` escaping of spaces, tabs, newlines and backslashes.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The controllers listed in the v2 root's `cgroup.controllers`. Cached after the first call.
pub fn available_controllers() -> Result<Vec<String>, CgroupError> {
    if let Some(c) = CONTROLLERS.get() {
        return Ok(c.clone());
    }
    let root = v2_mountpoint()?;
    let list = read_controllers(&root)?;
    Ok(CONTROLLERS.get_or_init(|| list).clone())
}

/// Read a directory's `cgroup.controllers` (or `cgroup.subtree_control`: same format).
pub(crate) fn read_controllers(dir: &Path) -> Result<Vec<String>, CgroupError> {
    read_list(&dir.join("cgroup.controllers"))
}

pub(crate) fn read_list(file: &Path) -> Result<Vec<String>, CgroupError> {
    let text = fsutil::read(file)?;
    Ok(text.split_whitespace().map(str::to_owned).collect())
}

/// Huge page sizes this kernel supports, spelled like the cgroup files (`2MB`, `1GB`, `64KB`).
pub(crate) fn hugepage_sizes() -> Vec<String> {
    HUGEPAGE_SIZES
        .get_or_init(|| {
            let mut sizes = Vec::new();
            if let Ok(dir) = std::fs::read_dir("/sys/kernel/mm/hugepages") {
                for entry in dir.flatten() {
                    let name = entry.file_name();
                    let kb = name
                        .to_str()
                        .and_then(|n| n.strip_prefix("hugepages-"))
                        .and_then(|n| n.strip_suffix("kB"))
                        .and_then(|n| n.parse::<u64>().ok());
                    if let Some(kb) = kb {
                        sizes.push(kb_to_size(kb));
                    }
                }
            }
            sizes.sort();
            sizes
        })
        .clone()
}

/// 2048 -> "2MB", 1048576 -> "1GB", 64 -> "64KB" (the kernel's hugetlb cgroup file naming).
pub(crate) fn kb_to_size(kb: u64) -> String {
    if kb >= 1 << 20 && kb & ((1 << 20) - 1) == 0 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb & ((1 << 10) - 1) == 0 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}KB")
    }
}

/// What `check_resources` needs to know about the host (a parameter so tests can fake it).
#[derive(Debug, Clone)]
pub(crate) struct HostInfo {
    pub mount: PathBuf,
    pub controllers: Vec<String>,
    pub hugepage_sizes: Vec<String>,
}

impl HostInfo {
    pub(crate) fn current() -> Result<HostInfo, CgroupError> {
        Ok(HostInfo {
            mount: v2_mountpoint()?,
            controllers: available_controllers()?,
            hugepage_sizes: hugepage_sizes(),
        })
    }

    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    pub(crate) fn offers(&self) -> String {
        if self.controllers.is_empty() {
            "none".to_owned()
        } else {
            self.controllers.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hybrid_and_pure_mounts() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            find_cgroup2(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let pure =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n\
                    99 23 0:26 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2(pure), Some(PathBuf::from("/sys/fs/cgroup")));
        let odd = "99 23 0:26 / /mnt/my\\040cg rw - cgroup2 cgroup2 rw\n";
        assert_eq!(find_cgroup2(odd), Some(PathBuf::from("/mnt/my cg")));
        assert_eq!(find_cgroup2("1 2 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn this_host_has_a_v2_mount() {
        let mp = v2_mountpoint().expect("cgroup2 mount");
        assert!(mp.join("cgroup.controllers").exists());
        let _ = available_controllers().expect("controllers");
    }

    #[test]
    fn hugepage_size_names() {
        assert_eq!(kb_to_size(2048), "2MB");
        assert_eq!(kb_to_size(1048576), "1GB");
        assert_eq!(kb_to_size(64), "64KB");
        assert_eq!(kb_to_size(32768), "32MB");
    }
}
