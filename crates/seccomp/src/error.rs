//! The crate's error type; every message is lowercase, starts with "seccomp:" and names the bad
//! input.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong while compiling, loading or handing over a seccomp filter.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SeccompError {
    /// An architecture that libseccomp (or this crate) does not know.
    #[error("seccomp: unsupported architecture \"{0}\"")]
    UnsupportedArch(String),
    /// A filter flag string that is not one of the OCI `SECCOMP_FILTER_FLAG_*` names.
    #[error("seccomp: unknown filter flag \"{0}\"")]
    UnknownFlag(String),
    /// A known filter flag that the running kernel rejects.
    #[error("seccomp: filter flag \"{0}\" is not supported by the running kernel")]
    UnsupportedFlag(String),
    /// An action string that is not one of the OCI `SCMP_ACT_*` names.
    #[error("seccomp: unknown action \"{0}\"")]
    UnknownAction(String),
    /// An operator string that is not one of the OCI `SCMP_CMP_*` names.
    #[error("seccomp: unknown operator \"{0}\"")]
    UnknownOperator(String),
    /// The profile JSON does not have the OCI `LinuxSeccomp` shape.
    #[error("seccomp: invalid profile: {0}")]
    InvalidProfile(String),
    /// `SCMP_ACT_NOTIFY` is used but `listenerPath` is missing or empty.
    #[error("seccomp: SCMP_ACT_NOTIFY is used by syscall \"{0}\" but listenerPath is not set")]
    NotifyWithoutListener(String),
    /// `SCMP_ACT_NOTIFY` as the default action would trap the runtime's own syscalls.
    #[error("seccomp: SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyDefaultAction,
    /// `SCMP_ACT_NOTIFY` on a syscall the runtime needs after loading the filter.
    #[error(
        "seccomp: SCMP_ACT_NOTIFY cannot be used for syscall \"{0}\": the runtime uses it to hand \
         the listener fd over after loading the filter"
    )]
    NotifyForbiddenSyscall(String),
    /// A `syscalls[]` entry with no names.
    #[error("seccomp: syscalls[{0}] has an empty names list")]
    EmptyNames(usize),
    /// An argument index outside 0..=5.
    #[error("seccomp: argument index {index} for syscall \"{syscall}\" is out of range (0..=5)")]
    InvalidArgIndex {
        /// The syscall the rule is for.
        syscall: String,
        /// The bad index.
        index: usize,
    },
    /// An `errnoRet` (or `defaultErrnoRet`) that does not fit in the 16-bit action data.
    #[error("seccomp: errnoRet {value} for {what} is out of range (0..=65535)")]
    ErrnoOutOfRange {
        /// "the default action" or `syscall "name"`.
        what: String,
        /// The bad value.
        value: u32,
    },
    /// libseccomp refused something.
    #[error("seccomp: {context}: {source}")]
    Libseccomp {
        /// What was being done, naming the input.
        context: String,
        /// The libseccomp error.
        #[source]
        source: libseccomp::error::SeccompError,
    },
    /// Reading the exported BPF back failed.
    #[error("seccomp: exporting the bpf program failed: {0}")]
    Export(#[source] std::io::Error),
    /// The exported program does not fit the kernel's limit.
    #[error(
        "seccomp: the compiled filter has {0} instructions, more than the kernel's limit of 4096"
    )]
    ProgramTooLong(usize),
    /// `seccomp(SECCOMP_SET_MODE_FILTER)` failed.
    #[error("seccomp: loading the filter failed: {0}{hint}", hint = load_hint(*.0))]
    Load(Errno),
    /// `SECCOMP_FILTER_FLAG_TSYNC` could not synchronise another thread.
    #[error("seccomp: SECCOMP_FILTER_FLAG_TSYNC could not synchronise thread {0}")]
    TsyncFailed(i64),
    /// Connecting to the seccomp agent failed.
    #[error("seccomp: connecting to listener {}: {source}", path.display())]
    Connect {
        /// The listenerPath.
        path: PathBuf,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// Sending or receiving a file descriptor failed.
    #[error("seccomp: {what} failed: {errno}")]
    FdPassing {
        /// "sendmsg", "recvmsg", ...
        what: &'static str,
        /// The errno.
        errno: Errno,
    },
    /// Building the container process state JSON failed.
    #[error("seccomp: encoding the container process state: {0}")]
    Json(#[from] serde_json::Error),
}

fn load_hint(errno: Errno) -> &'static str {
    match errno {
        Errno::EACCES => " (set no_new_privs or keep CAP_SYS_ADMIN before loading)",
        Errno::EINVAL => " (the kernel rejected the program or one of its flags)",
        _ => "",
    }
}

impl SeccompError {
    pub(crate) fn libseccomp(
        context: impl Into<String>,
    ) -> impl FnOnce(libseccomp::error::SeccompError) -> Self {
        let context = context.into();
        move |source| SeccompError::Libseccomp { context, source }
    }
}
