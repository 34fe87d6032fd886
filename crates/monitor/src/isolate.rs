//! Work done in a forked copy of the monitor whose result comes back as JSON: whatever the
//! work allocates or caches for the life of a process (the spec builder keeps Docker's parsed
//! seccomp profile) dies with the copy instead of staying in the long-lived monitor.

use std::io::{Read, Write};

use pelagos_model::WireError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::sys;

/// Runs `work` in a child process and returns its result (its error keeps its kind).
pub fn in_child<T, F>(what: &str, work: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    let (r, w) = sys::pipe()?;
    // SAFETY: the monitor is single-threaded, so the child may run any code; it leaves with
    // _exit, running no destructor or atexit handler of the monitor's.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::sys(format!("fork to {what}"), e))? {
        nix::unistd::ForkResult::Child => {
            drop(r);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            let sent: std::result::Result<T, WireError> = match outcome {
                Ok(result) => result.map_err(|e| e.to_wire()),
                Err(_) => Err(Error::Internal(format!("{what}: panicked")).to_wire()),
            };
            let ok = serde_json::to_vec(&sent)
                .is_ok_and(|bytes| std::fs::File::from(w).write_all(&bytes).is_ok());
            // SAFETY: _exit ends the copy at once, as fork's child must.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut bytes = Vec::new();
            let read = std::fs::File::from(r).read_to_end(&mut bytes);
            sys::reap(child.as_raw())?;
            read.map_err(|e| Error::io(format!("read the result of {what}"), e))?;
            let sent: std::result::Result<T, WireError> = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Internal(format!("{what}: no result ({e})")))?;
            sent.map_err(|w| Error::Model(pelagos_model::Error::Remote(w)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::ErrorKind;

    #[test]
    fn results_and_errors_come_back() {
        let v: Vec<String> = in_child("test", || Ok(vec!["a".to_string(); 20_000])).unwrap();
        assert_eq!(v.len(), 20_000);
        let e = in_child::<u8, _>("test", || Err(Error::Invalid("bad".into()))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.to_string(), "bad");
    }
}
