//! pelagos-cgroups: the cgroup v2 manager of the pelagos OCI runtime.
//!
//! It resolves an OCI `linux.cgroupsPath` (cgroupfs or systemd `slice:prefix:name` form) to a
//! directory in the cgroup2 hierarchy, validates `linux.resources` against the controllers the
//! host really offers *before* anything is created, creates the directory with controller
//! delegation along the path, writes the v2 interface files, enforces `linux.resources.devices`
//! with a hand-assembled eBPF device program, and freezes, kills, lists, measures and removes
//! the container's processes and cgroup.
//!
//! It deliberately does not do cgroup v1 (not even on hybrid hosts, where it uses the cgroup2
//! mount at `/sys/fs/cgroup/unified` and reports v1-only controllers as unavailable) and does not
//! emulate limits the kernel cannot enforce: they are errors unless the caller opts out. With
//! `--systemd-cgroup` and systemd running, [`systemd`] has systemd create the scope over D-Bus
//! (a minimal client of its own, `dbus.rs`);
//! without systemd, `slice:prefix:name` paths are plain directories.

mod bpf;
mod cgroup;
mod dbus;
mod devices;
mod error;
mod freezer;
mod fsutil;
mod host;
mod path;
mod resources;
mod size;
mod stats;

pub mod systemd;

pub use cgroup::Cgroup;
pub use devices::default_device_rules;
pub use error::CgroupError;
pub use host::{available_controllers, v2_mountpoint};
pub use path::DEFAULT_PARENT;
pub use size::parse_size;
pub use stats::{CpuStats, HugetlbStats, IoStat, MemoryEvents, MemoryStats, PidsStats, Stats};

#[cfg(test)]
mod testutil;
