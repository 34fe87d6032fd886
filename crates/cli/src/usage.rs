//! Command-line mistakes reported as Docker's CLI reports them: the same sentences, usage
//! lines and exit codes (125 for a flag problem, 1 for a wrong number of arguments or an
//! unknown command), so that scripts written for `docker` see what they expect.
//!
//! clap finds the mistake; this module only words it. The usage lines and argument counts
//! are Docker's (docker/cli's cobra commands), checked against the `docker` CLI by
//! `tests/cli_errors.rs`.

use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::pflag::ParseBoolError;

/// Exit code of a flag problem (Docker's `StatusError{StatusCode: 125}`).
pub const EXIT_FLAG: i32 = 125;
/// Exit code of a wrong argument count or an unknown command.
pub const EXIT_ARGS: i32 = 1;

/// How many positional arguments a command takes (cobra's `Args` validators).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arity {
    /// A command group (`image`, `volume`, ...): a subcommand is expected.
    Group,
    None,
    Any,
    Exact(usize),
    Min(usize),
    Max(usize),
    Range(usize, usize),
}

/// Docker's usage line (after the program name) and argument count of each command path.
const COMMANDS: &[(&str, &str, Arity)] = &[
    ("", "[OPTIONS] COMMAND [ARG...]", Arity::Group),
    ("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", Arity::Exact(1)),
    ("push", "push [OPTIONS] NAME[:TAG]", Arity::Exact(1)),
    (
        "images",
        "images [OPTIONS] [REPOSITORY[:TAG]]",
        Arity::Max(1),
    ),
    ("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", Arity::Min(1)),
    ("history", "history [OPTIONS] IMAGE", Arity::Exact(1)),
    (
        "tag",
        "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
        Arity::Exact(2),
    ),
    ("save", "save [OPTIONS] IMAGE [IMAGE...]", Arity::Min(1)),
    ("load", "load [OPTIONS]", Arity::None),
    (
        "import",
        "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
        Arity::Min(1),
    ),
    ("login", "login [OPTIONS] [SERVER]", Arity::Max(1)),
    ("logout", "logout [SERVER]", Arity::Max(1)),
    (
        "run",
        "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        Arity::Min(1),
    ),
    ("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]", Arity::Min(1)),
    ("rename", "rename CONTAINER NEW_NAME", Arity::Exact(2)),
    ("attach", "attach [OPTIONS] CONTAINER", Arity::Exact(1)),
    (
        "update",
        "update [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    ("ps", "ps [OPTIONS]", Arity::None),
    ("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", Arity::Min(1)),
    (
        "inspect",
        "inspect [OPTIONS] NAME|ID [NAME|ID...]",
        Arity::Min(1),
    ),
    (
        "commit",
        "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
        Arity::Range(1, 2),
    ),
    (
        "start",
        "start [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    (
        "stop",
        "stop [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    (
        "restart",
        "restart [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    (
        "kill",
        "kill [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    ("wait", "wait CONTAINER [CONTAINER...]", Arity::Min(1)),
    ("logs", "logs [OPTIONS] CONTAINER", Arity::Exact(1)),
    (
        "exec",
        "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
        Arity::Min(2),
    ),
    ("pause", "pause CONTAINER [CONTAINER...]", Arity::Min(1)),
    ("unpause", "unpause CONTAINER [CONTAINER...]", Arity::Min(1)),
    ("top", "top CONTAINER [ps OPTIONS]", Arity::Min(1)),
    ("stats", "stats [OPTIONS] [CONTAINER...]", Arity::Any),
    (
        "cp",
        "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tpelagos cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
        Arity::Exact(2),
    ),
    ("diff", "diff CONTAINER", Arity::Exact(1)),
    ("export", "export [OPTIONS] CONTAINER", Arity::Exact(1)),
    (
        "port",
        "port CONTAINER [PRIVATE_PORT[/PROTO]]",
        Arity::Range(1, 2),
    ),
    ("events", "events [OPTIONS]", Arity::None),
    ("system events", "system events [OPTIONS]", Arity::None),
    ("version", "version [OPTIONS]", Arity::None),
    ("info", "info [OPTIONS]", Arity::None),
    ("image", "image", Arity::Group),
    (
        "image ls",
        "image ls [OPTIONS] [REPOSITORY[:TAG]]",
        Arity::Max(1),
    ),
    (
        "image inspect",
        "image inspect [OPTIONS] IMAGE [IMAGE...]",
        Arity::Min(1),
    ),
    (
        "image rm",
        "image rm [OPTIONS] IMAGE [IMAGE...]",
        Arity::Min(1),
    ),
    ("image prune", "image prune [OPTIONS]", Arity::None),
    ("volume", "volume COMMAND", Arity::Group),
    ("volume ls", "volume ls [OPTIONS]", Arity::None),
    (
        "volume create",
        "volume create [OPTIONS] [VOLUME]",
        Arity::Max(1),
    ),
    (
        "volume rm",
        "volume rm [OPTIONS] VOLUME [VOLUME...]",
        Arity::Min(1),
    ),
    (
        "volume inspect",
        "volume inspect [OPTIONS] VOLUME [VOLUME...]",
        Arity::Min(1),
    ),
    ("volume prune", "volume prune [OPTIONS]", Arity::None),
    ("network", "network", Arity::Group),
    (
        "network create",
        "network create [OPTIONS] NETWORK",
        Arity::Exact(1),
    ),
    ("network ls", "network ls [OPTIONS]", Arity::None),
    (
        "network inspect",
        "network inspect [OPTIONS] NETWORK [NETWORK...]",
        Arity::Min(1),
    ),
    ("network rm", "network rm NETWORK [NETWORK...]", Arity::Min(1)),
    ("network prune", "network prune [OPTIONS]", Arity::None),
    (
        "network connect",
        "network connect [OPTIONS] NETWORK CONTAINER",
        Arity::Exact(2),
    ),
    (
        "network disconnect",
        "network disconnect [OPTIONS] NETWORK CONTAINER",
        Arity::Exact(2),
    ),
    ("container", "container", Arity::Group),
    ("container ls", "container ls [OPTIONS]", Arity::None),
    ("container prune", "container prune [OPTIONS]", Arity::None),
    (
        "container inspect",
        "container inspect [OPTIONS] CONTAINER [CONTAINER...]",
        Arity::Min(1),
    ),
    ("system", "system", Arity::Group),
    ("system df", "system df [OPTIONS]", Arity::None),
    ("system prune", "system prune [OPTIONS]", Arity::None),
    ("system info", "system info [OPTIONS]", Arity::None),
];

/// Groups whose subcommands repeat top-level verbs (`image pull` is `pull`).
const GROUPS: [&str; 4] = ["image", "container", "volume", "network"];

/// Subcommand aliases, named in messages by the command's own name (cobra's `CommandPath`).
const ALIASES: [(&str, &str); 2] = [("list", "ls"), ("remove", "rm")];

/// Global flags that take a value, to skip while finding the command path in the arguments.
const GLOBAL_VALUE_FLAGS: [&str; 4] = ["--root", "--runroot", "--engine-config", "--config"];

/// A command's usage tail and arity; `container start` is `start`'s with the prefix.
fn lookup(path: &str) -> (String, Arity) {
    if let Some((_, usage, arity)) = COMMANDS.iter().find(|(p, _, _)| *p == path) {
        return (usage.to_string(), *arity);
    }
    if let Some((group, verb)) = path.split_once(' ') {
        if let Some((_, usage, arity)) = COMMANDS.iter().find(|(p, _, _)| *p == verb) {
            return (format!("{group} {usage}"), *arity);
        }
    }
    (format!("{path} [OPTIONS]"), Arity::Any)
}

/// The command path the arguments name (`run`, `image ls`), as far as it is known: a group
/// followed by a word that is not one of its commands stays the group alone.
pub fn command_path(args: &[String]) -> (String, Option<String>) {
    let mut words = Vec::new();
    let mut i = 0;
    while i < args.len() && words.len() < 2 {
        let a = &args[i];
        if GLOBAL_VALUE_FLAGS.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        let first_is_group = words
            .first()
            .is_some_and(|w: &String| GROUPS.contains(&w.as_str()) || w == "system");
        if !words.is_empty() && !first_is_group {
            break;
        }
        let word = match first_is_group {
            true => ALIASES
                .iter()
                .find(|(alias, _)| alias == a)
                .map_or(a.as_str(), |(_, name)| name),
            false => a.as_str(),
        };
        words.push(word.to_string());
        i += 1;
    }
    let path = words.join(" ");
    let unknown = (!words.is_empty()).then(|| path.clone());
    (path, unknown)
}

/// What a clap error means to a Docker user, worded and numbered as Docker does.
pub struct Report {
    pub text: String,
    pub code: i32,
    /// Help or version output (stdout, exit 0).
    pub informational: bool,
}

/// Words a clap parse error the way Docker's CLI would for the same arguments.
pub fn report(err: &clap::Error, args: &[String]) -> Report {
    let (path, _) = command_path(args);
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Report {
            text: err.to_string(),
            code: 0,
            informational: true,
        },
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            Report {
                text: err.render().to_string(),
                code: 0,
                informational: true,
            }
        }
        ErrorKind::InvalidSubcommand => unknown_command(err, &path),
        ErrorKind::UnknownArgument => match context(err, ContextKind::InvalidArg) {
            Some(arg) if arg.starts_with('-') => flag_error(&path, unknown_flag(&arg)),
            _ => arity_error(&path),
        },
        ErrorKind::MissingRequiredArgument
        | ErrorKind::TooFewValues
        | ErrorKind::TooManyValues
        | ErrorKind::WrongNumberOfValues => arity_error(&path),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            flag_error(&path, invalid_value(err, &path, args))
        }
        _ => flag_error(&path, first_line(err)),
    }
}

/// `unknown flag: --x`, or cobra's wording for an unknown short flag.
pub fn unknown_flag(arg: &str) -> String {
    match arg.strip_prefix('-') {
        Some(short) if !short.starts_with('-') => {
            let letter = short.chars().next().unwrap_or('-');
            format!("unknown shorthand flag: '{letter}' in {arg}")
        }
        _ => format!("unknown flag: {}", arg.split('=').next().unwrap_or(arg)),
    }
}

/// A flag problem: the sentence, the usage, exit 125.
pub fn flag_error(path: &str, sentence: String) -> Report {
    let (usage, _) = lookup(path);
    Report {
        text: format!(
            "{sentence}\n\nUsage:  pelagos {}\n\nRun 'pelagos{} --help' for more information\n",
            usage.trim_start(),
            spaced(path)
        ),
        code: EXIT_FLAG,
        informational: false,
    }
}

pub fn arity_error(path: &str) -> Report {
    let (usage, arity) = lookup(path);
    let (phrase, verb) = match arity {
        Arity::None => ("accepts no arguments".to_string(), "Run"),
        Arity::Exact(n) => (format!("requires {n} {}", plural(n)), "Run"),
        Arity::Min(n) => (format!("requires at least {n} {}", plural(n)), "See"),
        Arity::Max(n) => (format!("requires at most {n} {}", plural(n)), "Run"),
        Arity::Range(a, b) => (
            format!("requires at least {a} and at most {b} arguments"),
            "Run",
        ),
        Arity::Group | Arity::Any => ("was given unexpected arguments".to_string(), "Run"),
    };
    Report {
        text: format!(
            "pelagos: 'pelagos {path}' {phrase}\n\nUsage:  pelagos {usage}\n\n{verb} 'pelagos {path} --help' for more information\n"
        ),
        code: EXIT_ARGS,
        informational: false,
    }
}

fn unknown_command(err: &clap::Error, path: &str) -> Report {
    let name = context(err, ContextKind::InvalidSubcommand).unwrap_or_default();
    // `path` already holds the unknown word when it follows a group.
    let group = path
        .split_once(' ')
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    let usage = if group.is_empty() {
        String::new()
    } else {
        format!("\nUsage:  pelagos {}\n", lookup(&group).0)
    };
    Report {
        text: format!(
            "pelagos: unknown command: pelagos{} {name}\n{usage}\nRun 'pelagos{} --help' for more information\n",
            spaced(&group),
            spaced(&group)
        ),
        code: EXIT_ARGS,
        informational: false,
    }
}

/// `invalid argument "V" for "-t, --time" flag: why`, or `flag needs an argument: --x`.
fn invalid_value(err: &clap::Error, path: &str, args: &[String]) -> String {
    let arg = context(err, ContextKind::InvalidArg).unwrap_or_default();
    // clap names the argument with its value: `--time <TIME>`, `--rm[=<true|false>]`.
    let long = arg
        .split([' ', '[', '='])
        .next()
        .unwrap_or_default()
        .to_string();
    let value = context(err, ContextKind::InvalidValue).unwrap_or_default();
    let bool_error =
        std::error::Error::source(err).and_then(|e| e.downcast_ref::<ParseBoolError>());
    let short_with_empty_value = args
        .iter()
        .any(|a| a.starts_with('-') && !a.starts_with("--") && a.ends_with('='));
    if value.is_empty() && bool_error.is_some() && short_with_empty_value {
        // pflag: `-d=` is `-d`, then `=` as a shorthand of its own.
        return unknown_flag("-=");
    }
    if value.is_empty() && bool_error.is_none() {
        let typed_short = args
            .iter()
            .rev()
            .find(|a| a.starts_with('-') && !a.starts_with("--"))
            .filter(|_| !args.iter().any(|a| a == &long));
        return match typed_short {
            Some(s) => format!(
                "flag needs an argument: '{}' in {s}",
                s.chars().nth(1).unwrap_or('-')
            ),
            None => format!("flag needs an argument: {long}"),
        };
    }
    let why = match bool_error {
        // Go's own words for a bool, as pflag gives them (`--rm=` included).
        Some(bool_error) => bool_error.to_string(),
        None => {
            let why = first_line(err);
            why.rsplit(": ").next().unwrap_or(&why).to_string()
        }
    };
    format!(
        "invalid argument \"{value}\" for \"{}\" flag: {why}",
        flag_names(path, &long)
    )
}

/// `-t, --timeout` for `--timeout` of the command at `path`, as cobra names a flag with both
/// forms.
fn flag_names(path: &str, long: &str) -> String {
    let mut cmd = crate::cli::Cli::clap_command();
    for word in path.split_whitespace() {
        match cmd.find_subcommand(word) {
            Some(sub) => cmd = sub.clone(),
            None => break,
        }
    }
    let name = long.trim_start_matches('-');
    let short = cmd
        .get_arguments()
        .find(|a| a.get_long() == Some(name))
        .and_then(|a| a.get_short());
    match short {
        Some(c) => format!("-{c}, {long}"),
        None => long.to_string(),
    }
}

fn context(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => v.first().cloned(),
        other => Some(other.to_string()),
    }
}

fn first_line(err: &clap::Error) -> String {
    let text = err
        .kind()
        .as_str()
        .unwrap_or("invalid arguments")
        .to_string();
    let rendered = err.render().to_string();
    rendered
        .lines()
        .next()
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or(text)
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        "argument"
    } else {
        "arguments"
    }
}

fn spaced(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" {path}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_paths_skip_global_flags_and_stop_after_a_verb() {
        let p = |v: &[&str]| command_path(&strings(v)).0;
        assert_eq!(p(&["--root", "/r", "run", "--rm", "img", "sh"]), "run");
        assert_eq!(p(&["image", "ls", "x"]), "image ls");
        assert_eq!(p(&["container", "bogus"]), "container bogus");
        assert_eq!(p(&["system", "df"]), "system df");
        assert_eq!(p(&["network", "remove", "x"]), "network rm");
        assert_eq!(p(&["volume", "list"]), "volume ls");
        assert_eq!(p(&["remove"]), "remove");
        assert_eq!(p(&[]), "");
    }

    #[test]
    fn arity_sentences_are_cobras() {
        assert!(arity_error("logs")
            .text
            .starts_with("pelagos: 'pelagos logs' requires 1 argument\n"));
        assert!(arity_error("run").text.contains("See 'pelagos run --help'"));
        assert!(arity_error("tag").text.contains("requires 2 arguments"));
        assert!(arity_error("commit")
            .text
            .contains("requires at least 1 and at most 2 arguments"));
        assert!(arity_error("ps").text.contains("accepts no arguments"));
        assert!(arity_error("container start")
            .text
            .contains("Usage:  pelagos container start [OPTIONS] CONTAINER [CONTAINER...]"));
    }

    #[test]
    fn unknown_flags_are_worded_by_their_form() {
        assert_eq!(unknown_flag("--bogus"), "unknown flag: --bogus");
        assert_eq!(unknown_flag("--bogus=1"), "unknown flag: --bogus");
        assert_eq!(unknown_flag("-z"), "unknown shorthand flag: 'z' in -z");
    }
}
