//! Seccomp support for pelagos: compile OCI `linux.seccomp` profiles to BPF ahead of time, load
//! them with one raw syscall, and hand `SCMP_ACT_NOTIFY` listener fds to a seccomp agent.
//!
//! The crate turns an [`oci_spec::runtime::LinuxSeccomp`] into a [`CompiledFilter`] in the
//! runtime (parent) process with libseccomp, so that a bad profile is rejected at `create` time
//! with an error that names the bad input. The container's init process then calls
//! [`CompiledFilter::load`], which is a single `seccomp(SECCOMP_SET_MODE_FILTER)` syscall and does
//! not allocate. [`docker_default`] provides Docker's default profile specialised for the host
//! and a capability set, and [`supported_actions`] and its siblings feed the `features` command.
//!
//! The crate does not set `PR_SET_NO_NEW_PRIVS`, drop capabilities, fork or exec: the caller
//! orders those around [`CompiledFilter::load`]. It does not patch the filter to return `ENOSYS`
//! for syscalls newer than the profile (runc's "patchbpf"); unknown syscalls get the default
//! action.

mod cache;
mod compile;
mod docker;
mod error;
mod features;
mod flags;
mod load;
mod notify;
mod validate;

pub use cache::compile_cached;
pub use compile::{compile, CompiledFilter};
pub use docker::{docker_default, docker_profile};
pub use error::SeccompError;
pub use features::{
    known_flags, supported_actions, supported_archs, supported_flags, supported_operators,
};
pub use notify::{connect_listener, recv_fd, send_fd, send_listener_fd};
pub use validate::parse_profile;
