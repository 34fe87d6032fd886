//! Signal names and numbers as `kill` accepts them: `KILL`, `SIGKILL`, `9`, `RTMIN+3`.

use crate::error::{Error, Result};

/// The standard signals by name (without the `SIG` prefix), as runc's table has them.
const SIGNALS: &[(&str, i32)] = &[
    ("ABRT", libc::SIGABRT),
    ("ALRM", libc::SIGALRM),
    ("BUS", libc::SIGBUS),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("FPE", libc::SIGFPE),
    ("HUP", libc::SIGHUP),
    ("ILL", libc::SIGILL),
    ("INT", libc::SIGINT),
    ("IO", libc::SIGIO),
    ("IOT", libc::SIGIOT),
    ("KILL", libc::SIGKILL),
    ("PIPE", libc::SIGPIPE),
    ("POLL", libc::SIGPOLL),
    ("PROF", libc::SIGPROF),
    ("PWR", libc::SIGPWR),
    ("QUIT", libc::SIGQUIT),
    ("SEGV", libc::SIGSEGV),
    ("STKFLT", libc::SIGSTKFLT),
    ("STOP", libc::SIGSTOP),
    ("SYS", libc::SIGSYS),
    ("TERM", libc::SIGTERM),
    ("TRAP", libc::SIGTRAP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("USR1", libc::SIGUSR1),
    ("USR2", libc::SIGUSR2),
    ("VTALRM", libc::SIGVTALRM),
    ("WINCH", libc::SIGWINCH),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
];

/// Parse a signal given by name (any case, with or without `SIG`), by number, or as
/// `RTMIN+n` / `RTMAX-n`.
pub fn parse_signal(text: &str) -> Result<i32> {
    let bad = || Error::BadSignal(text.to_string());
    if let Ok(n) = text.parse::<i32>() {
        return if (1..=libc::SIGRTMAX()).contains(&n) {
            Ok(n)
        } else {
            Err(bad())
        };
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(found) = SIGNALS.iter().find(|(n, _)| *n == name) {
        return Ok(found.1);
    }
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let rt = if name == "RTMIN" {
        Some(min)
    } else if name == "RTMAX" {
        Some(max)
    } else if let Some(off) = name.strip_prefix("RTMIN+") {
        off.parse::<i32>().ok().map(|o| min + o)
    } else if let Some(off) = name.strip_prefix("RTMAX-") {
        off.parse::<i32>().ok().map(|o| max - o)
    } else {
        None
    };
    match rt {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_prefixes() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("USR1").unwrap(), libc::SIGUSR1);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), libc::SIGRTMIN() + 2);
        assert_eq!(parse_signal("RTMAX-1").unwrap(), libc::SIGRTMAX() - 1);
    }

    #[test]
    fn rejects_bad_signals() {
        for bad in ["", "0", "-1", "65", "FOO", "SIG", "RTMIN+99", "RTMAX-x"] {
            let err = parse_signal(bad).unwrap_err();
            assert!(err.to_string().contains("invalid signal"), "{bad}: {err}");
        }
    }
}
