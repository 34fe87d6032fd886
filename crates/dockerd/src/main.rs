//! `pelagos-dockerd`: the Docker Engine API over pelagos's engine (see the library).

use anyhow::Context;
use clap::Parser;
use pelagos_dockerd::flags::Flags;

fn main() -> anyhow::Result<()> {
    tune_allocator();
    let flags = Flags::parse();
    let level = flags.tracing_level().map_err(anyhow::Error::msg)?;
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let served = runtime
        .block_on(pelagos_dockerd::server::run(flags))
        .context("pelagos-dockerd");
    // A blocking task still reading from a monitor must not hold the exit: the containers
    // and their monitors live on without the daemon.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    served
}

/// glibc's malloc gives every thread that allocates its own arena and keeps each arena at its
/// peak. The daemon serves requests on tokio's blocking pool, whose threads come and go, so
/// 100 container starts left +2.3 MiB in five arenas while the live heap stayed under 1 MiB
/// (measured with heaptrack and /proc/PID/smaps). One arena, and fixed mmap/trim thresholds
/// (glibc raises them after each large free), keep the daemon at its live size; the daemon
/// allocates little, so one arena costs no measurable contention.
#[cfg(target_env = "gnu")]
fn tune_allocator() {
    const THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only sets allocator parameters; called first thing in main, before any
    // other thread exists. A refused setting (returns 0) leaves glibc's default, which is safe.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, THRESHOLD);
    }
}

/// Other C libraries size their heaps their own way; nothing to tune.
#[cfg(not(target_env = "gnu"))]
fn tune_allocator() {}
