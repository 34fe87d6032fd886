//! The runtime core's error type: one enum whose messages are the words runc's callers match
//! on, and whose variant decides its [`ErrorKind`].

use std::path::PathBuf;

use crate::kind::ErrorKind;

/// Errors of the container library. The `Display` texts are an API: containerd, podman and the
/// OCI suites match on words such as `does not exist` and `already exists`, so keep them stable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container with given ID already exists: {0}")]
    AlreadyExists(String),
    #[error("invalid container id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("container not running: {0}")]
    NotRunning(String),
    #[error("container paused: {0}")]
    Paused(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    NotStopped { id: String, status: String },
    #[error("cannot {action} container {id} in status {status}")]
    BadStatus {
        action: &'static str,
        id: String,
        status: String,
    },
    #[error("invalid config.json {path}: {reason}")]
    InvalidConfig { path: PathBuf, reason: String },
    #[error("invalid configuration: {0}")]
    Spec(String),
    #[error("{0} is not supported by pelagos-runtime: {1}")]
    Unsupported(&'static str, String),
    #[error("cgroup: {0}")]
    Cgroup(#[from] pelagos_cgroups::CgroupError),
    /// A limit this host cannot enforce: say how to opt out.
    #[error(
        "cgroup: {0}; to run without this limit, set the annotation {annotation}=true",
        annotation = crate::annotations::SKIP_UNAVAILABLE_ANNOTATION
    )]
    CgroupUnenforceable(pelagos_cgroups::CgroupError),
    #[error("{0}")]
    Seccomp(#[from] pelagos_seccomp::SeccompError),
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A protocol error between the runtime and a child it cloned (an unexpected message).
    #[error("{0}")]
    Child(String),
    /// The init (or exec child) closed the sync socket before it was ready: it died.
    #[error("container init exited unexpectedly during setup")]
    InitExited,
    /// A failure the init, an exec child or the launch stub reported (sync socket or exec
    /// fifo): its kind, errno and the setup stage it happened in travel with the text
    /// (`sync::encode_failure`).
    #[error("{message}")]
    Process {
        kind: ErrorKind,
        errno: Option<i32>,
        /// The step that failed, e.g. `rootfs`, `process`, `cwd`, `exec`.
        stage: String,
        message: String,
    },
    /// The program to run does not exist (runc's words: `no such file or directory`, or
    /// `executable file not found in $PATH`).
    #[error("exec: {program:?}: {reason}")]
    ExecutableNotFound {
        program: String,
        reason: &'static str,
    },
    /// The program exists but may not be executed (not a regular file, no execute bit).
    #[error("exec: {program:?}: permission denied")]
    NotExecutable { program: String },
    /// The process's working directory cannot be entered (the caller's `cwd` names a
    /// directory the container does not have, or one its user may not enter).
    #[error("chdir to cwd {}: {source}", path.display())]
    Cwd {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    /// `create`, `exec` and the foreground wait clone (fork semantics) or change process-wide
    /// state: they are refused in a process with other threads.
    #[error("{verb} must be called from a single-threaded process (found {threads} threads)")]
    MultiThreaded { verb: &'static str, threads: usize },
    #[error("hook {path} failed: {reason}")]
    Hook { path: PathBuf, reason: String },
    /// A poststart hook failed: runtime-spec 1.2 makes that an error, and the container is
    /// stopped (runc does the same).
    #[error("poststart {source}; container {id} was killed")]
    Poststart {
        id: String,
        #[source]
        source: Box<Error>,
    },
    /// `state.json` names something its container's frozen config does not: refuse to act on it.
    #[error("state of container {id} is not trusted: {reason}")]
    UntrustedState { id: String, reason: String },
    #[error("invalid signal {0:?}")]
    BadSignal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is, by variant alone.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            Error::NotFound(_) => K::NotFound,
            Error::AlreadyExists(_)
            | Error::NotRunning(_)
            | Error::Paused(_)
            | Error::NotStopped { .. }
            | Error::BadStatus { .. } => K::Conflict,
            Error::InvalidId { .. }
            | Error::InvalidConfig { .. }
            | Error::Spec(_)
            | Error::Unsupported(..)
            | Error::BadSignal(_)
            | Error::Cwd { .. }
            | Error::MultiThreaded { .. } => K::InvalidArgument,
            Error::CgroupUnenforceable(_) => K::Unenforceable,
            Error::Cgroup(e) => cgroup_kind(e),
            Error::Seccomp(e) => seccomp_kind(e),
            Error::ExecutableNotFound { .. } => K::ExecutableNotFound,
            Error::NotExecutable { .. } => K::NotExecutable,
            Error::Process { kind, .. } => *kind,
            Error::Sys { .. }
            | Error::Io { .. }
            | Error::Child(_)
            | Error::InitExited
            | Error::Hook { .. }
            | Error::Poststart { .. }
            | Error::UntrustedState { .. } => K::Internal,
        }
    }

    /// The errno behind the error, when a syscall's failure is what it reports.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Sys { source, .. } | Error::Cwd { source, .. } => Some(*source as i32),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Process { errno, .. } => *errno,
            _ => None,
        }
    }

    /// The stage of a child's setup a reported failure comes from (`Process` only).
    pub fn stage(&self) -> Option<&str> {
        match self {
            Error::Process { stage, .. } => Some(stage),
            _ => None,
        }
    }

    /// This error as a child reports it: kind, errno and text kept, `stage` recorded unless an
    /// inner step already named one.
    pub(crate) fn at_stage(self, stage: &str) -> Error {
        match self {
            e @ Error::Process { .. } => e,
            e => Error::Process {
                kind: e.kind(),
                errno: e.errno(),
                stage: stage.to_string(),
                message: e.to_string(),
            },
        }
    }
}

fn cgroup_kind(e: &pelagos_cgroups::CgroupError) -> ErrorKind {
    use pelagos_cgroups::CgroupError as C;
    match e {
        C::InvalidPath { .. } | C::InvalidResource { .. } => ErrorKind::InvalidArgument,
        C::ControllerUnavailable { .. } => ErrorKind::Unenforceable,
        _ => ErrorKind::Internal,
    }
}

fn seccomp_kind(e: &pelagos_seccomp::SeccompError) -> ErrorKind {
    use pelagos_seccomp::SeccompError as S;
    match e {
        S::UnsupportedArch(_)
        | S::UnknownFlag(_)
        | S::UnknownAction(_)
        | S::UnknownOperator(_)
        | S::InvalidProfile(_)
        | S::NotifyWithoutListener(_)
        | S::NotifyDefaultAction
        | S::NotifyForbiddenSyscall(_)
        | S::EmptyNames(_)
        | S::InvalidArgIndex { .. }
        | S::ErrnoOutOfRange { .. }
        | S::ProgramTooLong(_) => ErrorKind::InvalidArgument,
        S::UnsupportedFlag(_) => ErrorKind::Unenforceable,
        _ => ErrorKind::Internal,
    }
}

/// Record the setup stage a child's step failed in (see [`Error::at_stage`]).
pub(crate) trait StageContext<T> {
    fn stage(self, stage: &str) -> Result<T>;
}

impl<T> StageContext<T> for Result<T> {
    fn stage(self, stage: &str) -> Result<T> {
        self.map_err(|e| e.at_stage(stage))
    }
}

/// Attach a description to a `nix` error.
pub(crate) trait SysContext<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> SysContext<T> for nix::Result<T> {
    fn sys(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Sys {
            what: what(),
            source,
        })
    }
}

/// Attach a description to an I/O error.
pub(crate) trait IoContext<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys(errno: nix::errno::Errno) -> Error {
        Error::Sys {
            what: "mount /proc".into(),
            source: errno,
        }
    }

    #[test]
    fn kinds_follow_the_variant_not_the_text() {
        use ErrorKind as K;
        let status = |action| Error::BadStatus {
            action,
            id: "c".into(),
            status: "stopped".into(),
        };
        let cases = [
            (Error::NotFound("c".into()), K::NotFound),
            (Error::AlreadyExists("c".into()), K::Conflict),
            (Error::NotRunning("c".into()), K::Conflict),
            (Error::Paused("c".into()), K::Conflict),
            (status("start"), K::Conflict),
            (Error::Spec("does not exist".into()), K::InvalidArgument),
            (Error::BadSignal("SIGFOO".into()), K::InvalidArgument),
            (Error::Unsupported("x", "y".into()), K::InvalidArgument),
            (sys(nix::errno::Errno::ENOENT), K::Internal),
            (
                Error::Child("no such file or directory".into()),
                K::Internal,
            ),
            (Error::InitExited, K::Internal),
            (
                Error::NotExecutable {
                    program: "/etc".into(),
                },
                K::NotExecutable,
            ),
            (
                Error::MultiThreaded {
                    verb: "exec",
                    threads: 3,
                },
                K::InvalidArgument,
            ),
            (
                Error::Cwd {
                    path: "/nope".into(),
                    source: nix::errno::Errno::ENOENT,
                },
                K::InvalidArgument,
            ),
        ];
        for (err, kind) in cases {
            assert_eq!(err.kind(), kind, "{err}");
        }
    }

    #[test]
    fn a_stage_keeps_kind_errno_and_text() {
        let err = sys(nix::errno::Errno::EACCES);
        let text = err.to_string();
        let staged = err.at_stage("rootfs").at_stage("ignored");
        assert_eq!(staged.to_string(), text);
        assert_eq!(staged.kind(), ErrorKind::Internal);
        assert_eq!(staged.errno(), Some(libc::EACCES));
        assert_eq!(staged.stage(), Some("rootfs"));
        let cwd = Error::Cwd {
            path: "/nope".into(),
            source: nix::errno::Errno::ENOENT,
        };
        assert_eq!(
            cwd.to_string(),
            "chdir to cwd /nope: ENOENT: No such file or directory"
        );
        let staged = cwd.at_stage("cwd");
        assert_eq!(staged.kind(), ErrorKind::InvalidArgument);
        assert_eq!(staged.errno(), Some(libc::ENOENT));
    }
}
