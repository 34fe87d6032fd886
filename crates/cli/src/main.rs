//! `pelagos`: a daemonless, Docker-style command line over pelagos-engine. Thin: parse flags,
//! call the engine, print what Docker prints.

mod archive;
mod cli;
mod containers;
mod format;
mod images;
mod progress;
mod relay;
mod run_config;
mod system;
mod volumes;

use std::io::Write;

use clap::Parser;
use pelagos_engine::{Engine, EngineOptions};

/// `docker run`'s exit code when the container could not be created or started.
pub const EXIT_RUN_FAILED: i32 = 125;

fn main() {
    let cli = cli::Cli::parse();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {e:#}");
            match &cli.command {
                cli::Command::Run(_) | cli::Command::Exec(_) => exit_code_of_run_error(&e),
                _ => 1,
            }
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Docker's codes, from the error's kind (never its text): 127 when the command is not
/// found, 126 when it cannot be invoked, 125 for everything else that kept it from running.
fn exit_code_of_run_error(e: &anyhow::Error) -> i32 {
    kind_of(e)
        .map(pelagos_model::kind::exit_code)
        .unwrap_or(EXIT_RUN_FAILED)
}

/// The kind of an error from the engine, the model or the runtime core.
fn kind_of(e: &anyhow::Error) -> Option<pelagos_model::ErrorKind> {
    e.chain().find_map(|cause| {
        if let Some(e) = cause.downcast_ref::<pelagos_engine::Error>() {
            Some(e.kind())
        } else if let Some(e) = cause.downcast_ref::<pelagos_model::Error>() {
            Some(e.kind())
        } else {
            cause
                .downcast_ref::<pelagos_container::Error>()
                .map(|e| e.kind())
        }
    })
}

/// Opens the engine with the global flags.
pub fn engine(cli: &cli::Cli) -> anyhow::Result<Engine> {
    let mut opts = EngineOptions {
        root: cli.root.clone(),
        runroot: cli.runroot.clone(),
        config_file: cli.engine_config.clone(),
        // One command per process: its monitors outlive it and init adopts them.
        short_lived: true,
        ..EngineOptions::default()
    };
    if let Some(dir) = &cli.client_config {
        opts.auth_file = dir.join("config.json");
    }
    if let cli::Command::Run(run) = &cli.command {
        opts.cgroup_parent = run.cgroup_parent.clone();
    }
    opts.monitor_program = std::env::var_os("PELAGOS_MONITOR").map(Into::into);
    Ok(Engine::open(opts)?)
}

fn dispatch(cli: &cli::Cli) -> anyhow::Result<i32> {
    use cli::{Command as C, ImageCommand as I};
    match &cli.command {
        C::Pull(a) | C::Image(I::Pull(a)) => images::pull(cli, a),
        C::Push(a) | C::Image(I::Push(a)) => images::push(cli, a),
        C::Images(a) | C::Image(I::Ls(a)) => images::list(cli, a),
        C::Image(I::Inspect(a)) => images::inspect(cli, a),
        C::History(a) | C::Image(I::History(a)) => images::history(cli, a),
        C::Rmi(a) | C::Image(I::Rm(a)) => images::remove(cli, a),
        C::Tag(a) | C::Image(I::Tag(a)) => images::tag(cli, a),
        C::Image(I::Prune(a)) => images::prune(cli, a),
        C::Save(a) | C::Image(I::Save(a)) => images::save(cli, a),
        C::Load(a) | C::Image(I::Load(a)) => images::load(cli, a),
        C::Import(a) | C::Image(I::Import(a)) => images::import(cli, a),
        C::Login(a) => images::login(cli, a),
        C::Logout(a) => images::logout(cli, a),
        C::Run(a) => containers::run(cli, a),
        C::Ps(a) => containers::ps(cli, a),
        C::Rm(a) => containers::remove(cli, a),
        C::Inspect(a) => containers::inspect(cli, a),
        C::Version(a) => system::version(a),
        C::Volume(v) => volumes::dispatch(cli, v),
        C::Container(cli::ContainerCommand::Ls(a)) => containers::ps(cli, a),
        C::Container(cli::ContainerCommand::Rm(a)) => containers::remove(cli, a),
        C::Container(cli::ContainerCommand::Inspect(a)) => containers::inspect(cli, a),
        C::Container(cli::ContainerCommand::Prune(a)) => system::container_prune(cli, a),
        C::Commit(a) | C::Container(cli::ContainerCommand::Commit(a)) => containers::commit(cli, a),
        C::Start(a) => containers::start(cli, a),
        C::Stop(a) => containers::stop(cli, a, false),
        C::Restart(a) => containers::stop(cli, a, true),
        C::Kill(a) => containers::kill(cli, a),
        C::Wait(a) => containers::wait(cli, a),
        C::Logs(a) => containers::logs(cli, a),
        C::Exec(a) => containers::exec(cli, a),
        C::Pause(a) => containers::pause(cli, a, true),
        C::Unpause(a) => containers::pause(cli, a, false),
        C::Top(a) => containers::top(cli, a),
        C::Cp(a) | C::Container(cli::ContainerCommand::Cp(a)) => archive::cp(cli, a),
        C::Diff(a) | C::Container(cli::ContainerCommand::Diff(a)) => archive::diff(cli, a),
        C::Export(a) | C::Container(cli::ContainerCommand::Export(a)) => archive::export(cli, a),
        C::Stats(a) => containers::stats(cli, a),
        C::System(cli::SystemCommand::Df(a)) => system::df(cli, a),
        C::System(cli::SystemCommand::Prune(a)) => system::prune(cli, a),
        C::System(cli::SystemCommand::Info(a)) => system::info(cli, a),
        C::Info(a) => system::info(cli, a),
    }
}
