//! The crate's error type: every message is lowercase and names the path, file or
//! `linux.resources` field it is about.

use std::io;
use std::path::PathBuf;

/// Errors of the cgroup v2 manager.
#[derive(thiserror::Error, Debug)]
pub enum CgroupError {
    /// systemd refused or failed a request about the container's scope.
    #[error("systemd: unit {unit}: {message}")]
    Systemd {
        /// The scope.
        unit: String,
        /// What went wrong.
        message: String,
    },

    /// `/proc/self/mountinfo` lists no cgroup2 filesystem.
    #[error("no cgroup2 filesystem is mounted (checked /proc/self/mountinfo); pelagos supports cgroup v2 only")]
    NoV2Mount,

    /// `linux.cgroupsPath` (or a saved relative path, or the container id) is unusable.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },

    /// A requested limit needs a controller that the v2 root does not offer.
    #[error("cgroup v2 controller \"{controller}\" is not available on this host ({mount} offers: {offers}); cannot apply {field}")]
    ControllerUnavailable {
        controller: String,
        mount: PathBuf,
        offers: String,
        field: String,
    },

    /// A `linux.resources` value is malformed or cannot be expressed in cgroup v2.
    #[error("invalid {field}: {reason}")]
    InvalidResource { field: String, reason: String },

    /// Writing a value into a cgroup interface file failed.
    #[error("cannot write {value:?} to {path} (for {field}): {source}")]
    Write {
        path: PathBuf,
        value: String,
        field: String,
        #[source]
        source: io::Error,
    },

    /// Any other filesystem operation on the cgroup tree failed.
    #[error("cannot {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The kernel did not reach the wanted state in time.
    #[error("timed out after {millis} ms waiting for {path} to {what}")]
    Timeout {
        path: PathBuf,
        what: &'static str,
        millis: u128,
    },

    /// A bpf(2) call for the device filter failed.
    #[error("cannot {op} the eBPF device filter for {path}: {source}")]
    Bpf {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The verifier rejected the generated device filter (a bug in this crate).
    #[error(
        "the kernel rejected the eBPF device filter for {path}: {source}; verifier log: {log}"
    )]
    BpfVerifier {
        path: PathBuf,
        log: String,
        #[source]
        source: io::Error,
    },
}

impl CgroupError {
    /// A file or directory that was expected is gone (ENOENT).
    pub fn is_not_found(&self) -> bool {
        match self {
            CgroupError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            CgroupError::Write { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgroupError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::InvalidResource {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
