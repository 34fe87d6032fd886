//! The runtime's side of `SCMP_ACT_NOTIFY`: the container's process sends its listener fd
//! over the sync socket, and the runtime (which still sees the host's filesystem) hands it to
//! the agent at `listenerPath` with the container's state, as runc does.

use std::os::fd::OwnedFd;

use crate::error::{Error, Result};

/// Connect to the filter's `listenerPath` and send the listener fd with the OCI
/// `containerProcessState` (`pid`: the process's pid as the runtime sees it).
pub(crate) fn hand_over(
    filter: Option<&pelagos_seccomp::CompiledFilter>,
    listener: OwnedFd,
    pid: i32,
    state_json: &[u8],
) -> Result<()> {
    let Some(filter) = filter else {
        return Err(Error::Child(
            "a seccomp listener fd arrived without a notify filter".into(),
        ));
    };
    let Some(path) = filter.listener_path() else {
        return Err(Error::Spec(
            "seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath".into(),
        ));
    };
    let sock = pelagos_seccomp::connect_listener(path)?;
    let state: serde_json::Value =
        serde_json::from_slice(state_json).unwrap_or(serde_json::Value::Null);
    pelagos_seccomp::send_listener_fd(&sock, &listener, pid, filter.listener_metadata(), &state)?;
    Ok(())
}
