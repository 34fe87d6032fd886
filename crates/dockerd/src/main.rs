//! `pelagos-dockerd`: the Docker Engine API over pelagos's engine (see the library).

use anyhow::Context;
use clap::Parser;
use pelagos_dockerd::flags::Flags;

fn main() -> anyhow::Result<()> {
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
