//! `pelagos`: a daemonless, Docker-style command line over pelagos-engine. Thin: parse flags,
//! call the engine, print what Docker prints.

mod archive;
mod cli;
mod containers;
mod disk_usage;
mod events;
mod failure;
mod format;
mod images;
mod network;
mod network_create;
mod pflag;

mod port;
mod progress;
mod ps;
mod ps_ports;
mod relay;
mod run_config;
mod system;
mod usage;
mod volumes;

use std::io::Write;

use pelagos_engine::{Engine, EngineOptions};
use pelagos_model::filters::FilterError;

fn main() {
    let cli = parse_or_exit();
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) if flag_value_error(&e).is_some() => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let (path, _) = usage::command_path(&args);
            let why = flag_value_error(&e)
                .map(|e| e.to_string())
                .unwrap_or_default();
            let report = usage::flag_error(&path, why);
            let _ = write!(std::io::stderr(), "{}", report.text);
            report.code
        }
        Err(e) if filter_error(&e).is_some() => match filter_error(&e) {
            Some(FilterError::BadFormat(value)) => bad_filter_flag(value),
            _ => {
                let _ = writeln!(std::io::stderr(), "Error response from daemon: {e}");
                1
            }
        },
        Err(e) => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let (path, _) = usage::command_path(&args);
            let (text, code) = failure::render(&cli, &path, &e);
            let _ = write!(std::io::stderr(), "{text}");
            code
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// The command line, or Docker's wording and exit code for what is wrong with it.
fn parse_or_exit() -> cli::Cli {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let err = match cli::Cli::try_parse_args() {
        Ok(cli) => match misplaced_flag(&cli) {
            None => return cli,
            Some(report) => report,
        },
        Err(e) => usage::report(&e, &args),
    };
    if err.informational {
        let _ = write!(std::io::stdout(), "{}", err.text);
    } else {
        let _ = write!(std::io::stderr(), "{}", err.text);
    }
    let _ = std::io::stdout().flush();
    std::process::exit(err.code);
}

/// An unknown flag before `run`'s image or `exec`'s container: clap takes it as the first
/// word of the command (everything after the image belongs to the command, even `-c`).
fn misplaced_flag(cli: &cli::Cli) -> Option<usage::Report> {
    let group = match &cli.command {
        cli::Command::Container(_) => "container ",
        _ => "",
    };
    let is_create = matches!(cli.container_verb(), Some(cli::ContainerVerb::Create(_)));
    let (verb, first, too_few) = if let Some(a) = cli.run_args() {
        let verb = if is_create { "create" } else { "run" };
        (verb, a.image(), false)
    } else if let Some(a) = cli.exec_args() {
        let words = &a.container_and_command;
        let first = words.first().map(String::as_str).unwrap_or_default();
        // Docker's `exec` needs a command as well as the container.
        ("exec", first, words.len() < 2)
    } else {
        return None;
    };
    let path = format!("{group}{verb}");
    if first.starts_with('-') {
        return Some(usage::flag_error(&path, usage::unknown_flag(first)));
    }
    // `create` shares `run`'s flags but has no `-d` (it never starts anything).
    if is_create && cli.run_args().is_some_and(|a| a.detach) {
        let typed = std::env::args().find(|a| a == "--detach" || a.starts_with("--detach="));
        let flag = typed.map_or("-d".to_string(), |_| "--detach".to_string());
        return Some(usage::flag_error(&path, usage::unknown_flag(&flag)));
    }
    too_few.then(|| usage::arity_error(&path))
}

/// A `--filter` the engine refused, wherever it sits in the chain: Docker's daemon refuses
/// those, its CLI only a value without `=`.
fn filter_error(e: &anyhow::Error) -> Option<&FilterError> {
    e.chain().find_map(|c| {
        c.downcast_ref::<FilterError>()
            .or_else(|| {
                c.downcast_ref::<pelagos_engine::Error>()
                    .and_then(|e| e.filter_error())
            })
            .or_else(|| match c.downcast_ref::<pelagos_model::Error>() {
                Some(pelagos_model::Error::Filter(f)) => Some(f),
                _ => None,
            })
    })
}

/// Docker's flag error for a filter without `=` (prunes have no `-f` for it).
fn bad_filter_flag(value: &str) -> i32 {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let (path, _) = usage::command_path(&args);
    let flag = match path.ends_with("prune") {
        true => "--filter",
        false => "-f, --filter",
    };
    let why = FilterError::BadFormat(value.to_string());
    let report = usage::flag_error(
        &path,
        format!("invalid argument {value:?} for {flag:?} flag: {why}"),
    );
    let _ = write!(std::io::stderr(), "{}", report.text);
    report.code
}

/// A flag value that does not parse: Docker prints it with the command's usage.
fn flag_value_error(e: &anyhow::Error) -> Option<&pelagos_model::Error> {
    e.chain()
        .filter_map(|c| c.downcast_ref::<pelagos_model::Error>())
        .find(|e| matches!(e, pelagos_model::Error::FlagValue { .. }))
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
    if let Some(run) = cli.run_args() {
        opts.cgroup_parent = run.cgroup_parent.clone();
    }
    opts.monitor_program = std::env::var_os("PELAGOS_MONITOR").map(Into::into);
    Ok(Engine::open(opts)?)
}

fn dispatch(cli: &cli::Cli) -> anyhow::Result<i32> {
    use cli::{Command as C, ContainerCommand as K, ImageCommand as I};
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
        C::Verb(v) | C::Container(K::Verb(v)) => container_verb(cli, v),
        C::Ps(a) | C::Container(K::Ls(a)) => ps::ps(cli, a),
        C::Container(K::Prune(a)) => system::container_prune(cli, a),
        C::Version(a) => system::version(a),
        C::Volume(v) => volumes::dispatch(cli, v),
        C::Network(n) => network::dispatch(cli, n),
        C::System(cli::SystemCommand::Df(a)) => disk_usage::df(cli, a),
        C::System(cli::SystemCommand::Prune(a)) => system::prune(cli, a),
        C::System(cli::SystemCommand::Info(a)) => system::info(cli, a),
        C::Info(a) => system::info(cli, a),
        C::Events(a) | C::System(cli::SystemCommand::Events(a)) => events::events(cli, a),
    }
}

/// A container verb, the same at the top level and under `container`.
fn container_verb(cli: &cli::Cli, verb: &cli::ContainerVerb) -> anyhow::Result<i32> {
    use cli::ContainerVerb as V;
    match verb {
        V::Run(a) => containers::run(cli, a),
        V::Create(a) => containers::create(cli, a),
        V::Rename(a) => containers::rename(cli, a),
        V::Attach(a) => containers::attach(cli, a),
        V::Update(a) => containers::update(cli, a),
        V::Rm(a) => containers::remove(cli, a),
        V::Inspect(a) => containers::inspect(cli, a),
        V::Commit(a) => containers::commit(cli, a),
        V::Start(a) => containers::start(cli, a),
        V::Stop(a) => containers::stop(cli, a, false),
        V::Restart(a) => containers::stop(cli, a, true),
        V::Kill(a) => containers::kill(cli, a),
        V::Wait(a) => containers::wait(cli, a),
        V::Logs(a) => containers::logs(cli, a),
        V::Exec(a) => containers::exec(cli, a),
        V::Pause(a) => containers::pause(cli, a, true),
        V::Unpause(a) => containers::pause(cli, a, false),
        V::Top(a) => containers::top(cli, a),
        V::Stats(a) => containers::stats(cli, a),
        V::Cp(a) => archive::cp(cli, a),
        V::Diff(a) => archive::diff(cli, a),
        V::Export(a) => archive::export(cli, a),
        V::Port(a) => port::port(cli, a),
    }
}
