//! pelagos-init: Docker's `--init` for pelagos. A tiny static init (`stub/init.rs`, like tini,
//! Docker's `docker-init`) that runs as pid 1 of a container, forwards signals to the command,
//! reaps zombies and exits with the command's status.
//!
//! The crate embeds the program and installs it once, content-addressed, in a directory of the
//! engine's; the engine bind-mounts that file read-only at [`CONTAINER_PATH`] and puts it in
//! front of the command: `[CONTAINER_PATH, "--", cmd, args...]`. It deliberately does not
//! mount, build specs or run containers (the engine does), and has no options of tini's (`-g`,
//! `-s`, `-p`, `-e`): signals always go to the child's pid, as `docker run --init` does.

mod install;

pub use install::{file_name, install, Error};

/// The init program: a static x86_64 executable of a few KiB, no libc, no loader.
pub const INIT_BYTES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pelagos-init"));

/// Where the engine bind-mounts the init inside a container (Docker's path).
pub const CONTAINER_PATH: &str = "/sbin/docker-init";
