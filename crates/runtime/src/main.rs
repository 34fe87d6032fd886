//! `pelagos-runtime`: runc's command-line contract over the pelagos-container library, so
//! containerd, podman and Kubernetes can use pelagos in place of runc.

mod cli;
mod commands;
mod log;
mod process_flags;

use clap::Parser;

fn main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if cli.version {
        println!(
            "pelagos-runtime version {}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            env!("PELAGOS_COMMIT"),
            pelagos_container::OCI_VERSION
        );
        return;
    }
    let mut logger = log::Logger::open(cli.log.as_ref(), &cli.log_format);
    let code = match commands::dispatch(&cli, &mut logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}
