//! The `pelagos-dns` binary: flags → [`pelagos_dns::Config`], signals blocked and read
//! through a signalfd, then the event loop until SIGTERM or (with `--exit-when-empty`) the
//! last name is gone.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use pelagos_dns::{Config, Server};

/// The resolver of one pelagos network: answers its containers' names, forwards the rest.
#[derive(Debug, Parser)]
#[command(name = "pelagos-dns", version)]
struct Args {
    /// The addresses to listen on (the network's gateways), comma separated.
    #[arg(long, value_delimiter = ',', required = true)]
    listen: Vec<IpAddr>,
    /// The port to listen on.
    #[arg(long, default_value_t = 53)]
    port: u16,
    /// The names file (JSON, written with pelagos_dns::names).
    #[arg(long)]
    names: PathBuf,
    /// The resolv.conf whose nameservers get every query that is not a container's name.
    #[arg(long, default_value = "/etc/resolv.conf")]
    upstream_from: PathBuf,
    /// Lock this file for the process's life and write the pid into it once bound.
    #[arg(long)]
    pidfile: Option<PathBuf>,
    /// Exit 0 when the names file has no entries (the network's last container left).
    #[arg(long)]
    exit_when_empty: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pelagos-dns: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Block the signals we read (before any thread exists, so all inherit the mask), bind,
/// serve.
fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut mask = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(signal);
    }
    mask.thread_block()?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
    let config = Config {
        listen: args.listen,
        port: args.port,
        names_file: args.names,
        upstream_from: args.upstream_from,
        pidfile: args.pidfile,
        exit_when_empty: args.exit_when_empty,
    };
    Server::bind(config)?.serve(&signals)?;
    Ok(())
}
