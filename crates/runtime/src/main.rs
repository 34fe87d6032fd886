//! `pelagos-runtime`: runc's command-line contract over the pelagos-container library, so
//! containerd, podman and Kubernetes can use pelagos in place of runc.
//!
//! `no_main`: std's start-up (stack-guard discovery through /proc/self/maps, signal stack
//! set-up) costs more than a container's whole setup work here, and nothing needs it: the
//! runtime is short-lived and single-threaded. glibc still hands std the arguments.
#![cfg_attr(not(test), no_main)]

/// println! that ends quietly on a closed stdout (`| head`) instead of panicking. SIGPIPE stays
/// ignored: the runtime writes to hooks' stdin, and a hook need not read it.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod cli;
mod commands;
mod log;
mod node_config;
mod process_flags;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use clap::Parser;

#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // std's start-up would ignore SIGPIPE; keep that, since hooks may not read their stdin.
    // SAFETY: installing SIG_IGN runs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    real_main();
    0
}

#[cfg_attr(test, allow(dead_code))]
fn real_main() {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            if !e.use_stderr() {
                let _ = e.print(); // --help
                std::process::exit(0);
            }
            // A caller that passed flags we do not know still finds why in its --log. The
            // arguments may be any bytes: read them as the kernel gave them.
            let args: Vec<OsString> = std::env::args_os().collect();
            let log = flag_value(&args, "--log").map(std::path::PathBuf::from);
            let format = flag_value(&args, "--log-format")
                .and_then(|f| f.to_str().and_then(|f| log::LogFormat::parse(f).ok()))
                .unwrap_or(log::LogFormat::Text);
            let text = match e.kind() {
                // clap does not say which argument: name it.
                clap::error::ErrorKind::InvalidUtf8 => not_utf8_message(&args),
                _ => e.to_string(),
            };
            let first = text
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .to_string();
            log::Logger::open(log.as_ref(), format).error(first.trim_start_matches("error: "));
            std::process::exit(1);
        }
    };
    if cli.version {
        outln!(
            "pelagos version {}\ncommit: {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            env!("PELAGOS_COMMIT"),
            pelagos_container::OCI_VERSION
        );
        return;
    }
    let mut logger = log::Logger::open(cli.log.as_ref(), cli.log_format);
    logger.install_warning_sink();
    let code = match commands::dispatch(&cli, &mut logger) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&error_text(&e));
            1
        }
    };
    std::process::exit(code);
}

/// Which argument is not UTF-8, with its bytes shown lossily.
fn not_utf8_message(args: &[OsString]) -> String {
    match args.iter().find(|a| a.to_str().is_none()) {
        Some(a) => format!("argument {:?} is not valid UTF-8", a.to_string_lossy()),
        None => "an argument is not valid UTF-8".into(),
    }
}

/// The value of a global flag given as `--flag value` or `--flag=value`.
fn flag_value(args: &[OsString], flag: &str) -> Option<OsString> {
    let prefix = format!("{flag}=");
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.as_bytes()
                .strip_prefix(prefix.as_bytes())
                .map(|v| OsStr::from_bytes(v).to_os_string())
        }
    })
}

/// The error and its causes, joined by ": ", leaving out a cause whose text the message
/// already holds (library errors print their source in their own message; `{e:#}` would
/// repeat it).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
