//! Docker's flag syntax (spf13/pflag) on clap, applied to every flag at once: bools take
//! `--rm`, `--rm=false`, `-d=0`, `-it=false` (the next word is never their value), and a flag
//! that takes a value takes the next word whatever it looks like (`--dns-search -x`).

use clap::builder::OsStr;
use clap::{Arg, ArgAction, Command};

/// A value Go's `strconv.ParseBool` refuses, worded as pflag reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseBoolError(String);

impl std::fmt::Display for ParseBoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "strconv.ParseBool: parsing {:?}: invalid syntax", self.0)
    }
}

impl std::error::Error for ParseBoolError {}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Result<bool, ParseBoolError> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ParseBoolError(text.to_string())),
    }
}

/// `cmd` with every flag, in it and in its subcommands, taking pflag's forms.
pub fn flags(cmd: Command) -> Command {
    cmd.mut_args(|arg| match bool_default(&arg) {
        Some(default) => pflag_bool(arg, default),
        None if takes_a_value(&arg) => pflag_value(arg),
        None => arg,
    })
    .mut_subcommands(flags)
}

/// A flag with a value as pflag reads it: the next word, whatever it looks like; of a
/// repeated one (not a list, as `-e`), the last.
fn pflag_value(arg: Arg) -> Arg {
    let arg = arg.allow_hyphen_values(true);
    match arg.get_action() {
        ArgAction::Set => {
            let id = arg.get_id().clone();
            arg.overrides_with(id)
        }
        _ => arg,
    }
}

/// A flag (not a positional argument) with a value: `--name NAME`, `-e VAR`.
fn takes_a_value(arg: &Arg) -> bool {
    !arg.is_positional() && matches!(arg.get_action(), ArgAction::Set | ArgAction::Append)
}

/// A bool flag's default: `false` for a switch (`--rm`), its own for a bool that already
/// takes a value (`--sig-proxy`, true); `None` for any other argument.
fn bool_default(arg: &Arg) -> Option<OsStr> {
    match arg.get_action() {
        ArgAction::SetTrue => Some("false".into()),
        ArgAction::Set if takes_true_or_false(arg) => Some(
            arg.get_default_values()
                .first()
                .cloned()
                .unwrap_or("false".into()),
        ),
        _ => None,
    }
}

/// clap's own bool parser: the possible values `true` and `false`.
fn takes_true_or_false(arg: &Arg) -> bool {
    let values: Vec<String> = arg
        .get_value_parser()
        .possible_values()
        .map(|values| values.map(|v| v.get_name().to_string()).collect())
        .unwrap_or_default();
    values == ["true", "false"]
}

/// pflag's `NoOptDefVal` of a bool: bare means true, a value only after `=`, the last of
/// repeated ones wins.
fn pflag_bool(arg: Arg, default: OsStr) -> Arg {
    let id = arg.get_id().clone();
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .default_value(default)
        .hide_default_value(true)
        .value_name("true|false")
        .value_parser(parse_bool)
        .overrides_with(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser, Debug)]
    struct Flags {
        #[arg(long)]
        rm: bool,
        #[arg(short, long)]
        detach: bool,
        #[arg(short, long)]
        interactive: bool,
        #[arg(short, long)]
        tty: bool,
        #[arg(long = "sig-proxy", default_value_t = true, action = ArgAction::Set)]
        sig_proxy: bool,
        #[arg(short, long)]
        name: Option<String>,
        words: Vec<String>,
    }

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        let mut m = flags(Flags::command())
            .try_get_matches_from(std::iter::once("x").chain(args.iter().copied()))?;
        Flags::from_arg_matches_mut(&mut m)
    }

    fn bools(args: &[&str]) -> [bool; 5] {
        let f = parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        [f.rm, f.detach, f.interactive, f.tty, f.sig_proxy]
    }

    #[test]
    fn go_parse_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        for bad in ["maybe", "", "yes", "tRUE", " true"] {
            assert!(parse_bool(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_bool("maybe").unwrap_err().to_string(),
            r#"strconv.ParseBool: parsing "maybe": invalid syntax"#
        );
    }

    #[test]
    fn bools_take_pflags_forms() {
        assert_eq!(bools(&[]), [false, false, false, false, true]);
        assert_eq!(bools(&["--rm", "-d"]), [true, true, false, false, true]);
        assert_eq!(
            bools(&["--rm=true", "-d=1"]),
            [true, true, false, false, true]
        );
        assert_eq!(
            bools(&["--rm=false", "-d=F"]),
            [false, false, false, false, true]
        );
        assert_eq!(bools(&["-it"]), [false, false, true, true, true]);
        // Only the last of a group of shorthands takes a value.
        assert_eq!(bools(&["-it=false"]), [false, false, true, false, true]);
        assert_eq!(bools(&["-dit=0"]), [false, true, true, false, true]);
        assert_eq!(
            bools(&["--sig-proxy=false"]),
            [false, false, false, false, false]
        );
        assert_eq!(bools(&["--sig-proxy"]), [false, false, false, false, true]);
        // The last of repeated flags wins.
        assert_eq!(
            bools(&["--rm", "--rm=false"]),
            [false, false, false, false, true]
        );
    }

    #[test]
    fn the_next_word_is_never_the_value() {
        let f = parse(&["--rm", "true", "-d", "false"]).unwrap();
        assert!(f.rm && f.detach);
        assert_eq!(f.words, ["true", "false"]);
        let f = parse(&["-dn", "web"]).unwrap();
        assert_eq!((f.detach, f.name.as_deref()), (true, Some("web")));
        // A flag with a value takes the next word, whatever it looks like.
        let f = parse(&["--name", "-x"]).unwrap();
        assert_eq!(f.name.as_deref(), Some("-x"));
        let f = parse(&["--name", "a", "-n", "--rm"]).unwrap();
        assert_eq!((f.rm, f.name.as_deref()), (false, Some("--rm")));
    }

    #[test]
    fn bad_values_are_refused_with_gos_reason() {
        for args in [&["--rm=maybe"][..], &["-d=yes"], &["-it=2"], &["--rm="]] {
            let e = parse(args).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
            let why = std::error::Error::source(&e).map(|s| s.to_string());
            assert!(
                why.is_some_and(|w| w.starts_with("strconv.ParseBool: parsing ")),
                "{args:?}: {e}"
            );
        }
    }
}
