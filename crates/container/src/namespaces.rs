//! Which namespaces a container creates and which it joins by path, and the clone/setns flags
//! for each.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};

use crate::error::{Error, Result, SysContext};

/// The namespaces of one container: new ones and ones joined by path.
#[derive(Debug, Clone, Default)]
pub struct NamespacePlan {
    pub new: Vec<LinuxNamespaceType>,
    /// In [`JOIN_ORDER`].
    pub join: Vec<JoinedNamespace>,
}

/// A namespace joined by path, opened (as the runtime, host root) and type-checked when the
/// config is validated: joining goes through this handle, so a path the container's mapped
/// root cannot reach still works, and the file cannot be swapped between check and join.
#[derive(Debug, Clone)]
pub struct JoinedNamespace {
    pub typ: LinuxNamespaceType,
    pub path: PathBuf,
    fd: Arc<OwnedFd>,
}

impl JoinedNamespace {
    /// setns into it. That moves the whole process: only the init (a cloned child) and
    /// create's parent side, behind its single-thread check, call it.
    pub(crate) fn enter(&self) -> Result<()> {
        nix::sched::setns(&*self.fd, clone_flag(self.typ)).sys(|| {
            format!(
                "join {} namespace {}",
                proc_name(self.typ),
                self.path.display()
            )
        })
    }
}

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The name of the namespace's file under /proc/PID/ns.
pub fn proc_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Time => "time",
    }
}

/// Order in which joined namespaces are entered: user first (it grants the rights for the
/// rest), mount last (it changes how later paths resolve).
const JOIN_ORDER: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Time,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Mount,
];

impl NamespacePlan {
    pub fn from_spec(namespaces: &[LinuxNamespace]) -> Result<NamespacePlan> {
        let mut plan = NamespacePlan::default();
        for ns in namespaces {
            let t = ns.typ();
            if plan.has(t) {
                return Err(Error::Spec(format!(
                    "linux.namespaces lists the {} namespace twice",
                    proc_name(t)
                )));
            }
            match ns.path() {
                Some(p) if !p.as_os_str().is_empty() => {
                    let fd = open_checked(t, p)?;
                    plan.join.push(JoinedNamespace {
                        typ: t,
                        path: p.clone(),
                        fd: Arc::new(fd),
                    });
                }
                _ => plan.new.push(t),
            }
        }
        if plan.joins(LinuxNamespaceType::User) && plan.creates(LinuxNamespaceType::Pid) {
            return Err(Error::Unsupported(
                "linux.namespaces",
                "joining a user namespace by path while creating a new pid namespace".into(),
            ));
        }
        plan.join
            .sort_by_key(|j| JOIN_ORDER.iter().position(|o| *o == j.typ).unwrap_or(0));
        Ok(plan)
    }

    pub fn creates(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(&t)
    }

    pub fn joins(&self, t: LinuxNamespaceType) -> bool {
        self.joined(t).is_some()
    }

    pub fn joined(&self, t: LinuxNamespaceType) -> Option<&JoinedNamespace> {
        self.join.iter().find(|j| j.typ == t)
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.creates(t) || self.joins(t)
    }

    /// clone3 flags for the namespaces created at clone time. A new time namespace is created
    /// by the parent with unshare (offsets must be written before any process enters it).
    pub fn clone_flags(&self) -> CloneFlags {
        self.new
            .iter()
            .filter(|t| **t != LinuxNamespaceType::Time)
            .fold(CloneFlags::empty(), |acc, t| acc | clone_flag(*t))
    }
}

/// Open a joined namespace's path; it must be a namespace file of the right type.
fn open_checked(t: LinuxNamespaceType, path: &Path) -> Result<OwnedFd> {
    let fd = open_ns(path)?;
    let flag = clone_flag(t).bits();
    // NS_GET_NSTYPE = _IO(0xb7, 0x3)
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl on a descriptor we own, with no argument pointer.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE) };
    if ret < 0 {
        return Err(Error::Spec(format!(
            "linux.namespaces: {} is not a namespace file",
            path.display()
        )));
    }
    if ret != flag {
        return Err(Error::Spec(format!(
            "linux.namespaces: {} is not a {} namespace",
            path.display(),
            proc_name(t)
        )));
    }
    Ok(fd)
}

pub fn open_ns(path: &Path) -> Result<OwnedFd> {
    let fd = nix::fcntl::open(
        path,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .sys(|| format!("open namespace {}", path.display()))?;
    // SAFETY: `open` returned a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(t: LinuxNamespaceType, path: Option<&str>) -> LinuxNamespace {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path.map(PathBuf::from));
        n
    }

    #[test]
    fn plan_splits_new_and_joined() {
        let plan = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Network, Some("/proc/self/ns/net")),
            ns(LinuxNamespaceType::Mount, None),
        ])
        .unwrap();
        assert!(plan.creates(LinuxNamespaceType::Pid));
        assert!(plan.joins(LinuxNamespaceType::Network));
        assert_eq!(
            plan.clone_flags(),
            CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWNS
        );
    }

    #[test]
    fn wrong_type_and_duplicates_are_errors() {
        let err =
            NamespacePlan::from_spec(&[ns(LinuxNamespaceType::Ipc, Some("/proc/self/ns/net"))])
                .unwrap_err()
                .to_string();
        assert!(err.contains("is not a ipc namespace"), "{err}");
        let err = NamespacePlan::from_spec(&[ns(LinuxNamespaceType::Ipc, Some("/etc/hostname"))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a namespace file"), "{err}");
        let err = NamespacePlan::from_spec(&[
            ns(LinuxNamespaceType::Pid, None),
            ns(LinuxNamespaceType::Pid, None),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("twice"), "{err}");
    }
}
