//! The monitor's command line: `pelagos-monitor --root ROOT --runroot RUNROOT [--no-detach] ID`
//! (no clap: the monitor is kept small).

use std::ffi::OsString;
use std::path::PathBuf;

use pelagos_container::ContainerId;

/// What the monitor was started for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The engine's root (`/var/lib/pelagos`).
    pub root: PathBuf,
    /// The engine's runroot (`/run/pelagos`).
    pub runroot: PathBuf,
    /// Fork once and let the first process exit (the caller reaps it); `--no-detach` for a
    /// caller that exits first.
    pub detach: bool,
    pub id: ContainerId,
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, String> {
    let (mut root, mut runroot, mut id) = (None, None, None);
    let mut detach = true;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        match a.to_str() {
            Some("--root") => root = args.next().map(PathBuf::from),
            Some("--runroot") => runroot = args.next().map(PathBuf::from),
            Some("--no-detach") => detach = false,
            Some(text) if !text.starts_with('-') && id.is_none() => {
                id = Some(ContainerId::parse(text).map_err(|e| e.to_string())?)
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let usage = "usage: pelagos-monitor --root ROOT --runroot RUNROOT [--no-detach] ID";
    Ok(Args {
        root: root.ok_or(usage)?,
        runroot: runroot.ok_or(usage)?,
        detach,
        id: id.ok_or(usage)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn parses_the_engine_command_line() {
        let a = parse(os(&["--root", "/r", "--runroot", "/run/p", "abc"])).unwrap();
        assert_eq!(a.root, PathBuf::from("/r"));
        assert_eq!(a.runroot, PathBuf::from("/run/p"));
        assert_eq!(a.id.as_str(), "abc");
        assert!(a.detach);
        let a = parse(os(&[
            "--root",
            "/r",
            "--runroot",
            "/x",
            "--no-detach",
            "abc",
        ]))
        .unwrap();
        assert!(!a.detach);
        assert!(parse(os(&["--root", "/r", "abc"])).is_err());
        assert!(parse(os(&["--root", "/r", "--runroot", "/x", "a", "b"])).is_err());
        assert!(parse(os(&["--bogus"])).is_err());
        assert!(parse(os(&["--root", "/r", "--runroot", "/x", "../x"])).is_err());
    }
}
