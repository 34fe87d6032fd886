//! Docker's restart policies (`no`, `always`, `unless-stopped`, `on-failure[:N]`) and its
//! backoff: 100 ms doubling up to a minute, from scratch after a run of 10 s or more.

use std::time::Duration;

use pelagos_model::config::RestartPolicy;

use crate::error::{Error, Result};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the backoff.
const STABLE_RUN: Duration = Duration::from_secs(10);

/// When the container is started again after it exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    /// As `always` here: a stop ends every policy until the next start.
    UnlessStopped,
    /// After a non-zero exit, at most this many times (0: no limit).
    OnFailure(u32),
}

impl Policy {
    /// The policy of a HostConfig.
    pub fn of(p: &RestartPolicy) -> Result<Policy> {
        let max = u32::try_from(p.maximum_retry_count.max(0)).unwrap_or(u32::MAX);
        match p.name.as_str() {
            "" | "no" => Ok(Policy::No),
            "always" => Ok(Policy::Always),
            "unless-stopped" => Ok(Policy::UnlessStopped),
            "on-failure" => Ok(Policy::OnFailure(max)),
            other => Err(Error::Invalid(format!(
                "invalid restart policy {other:?}: expected no, always, unless-stopped or \
                 on-failure"
            ))),
        }
    }

    /// Whether an exit with `code` after `restarts` restarts (by this monitor) restarts.
    pub fn wants(self, code: i32, restarts: u32) -> bool {
        match self {
            Policy::No => false,
            Policy::Always | Policy::UnlessStopped => true,
            Policy::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
        }
    }
}

/// The delay before the next restart.
#[derive(Debug, Default)]
pub struct Backoff {
    delay: Option<Duration>,
}

impl Backoff {
    /// The delay after a run of `ran`.
    pub fn next(&mut self, ran: Duration) -> Duration {
        if ran >= STABLE_RUN {
            self.delay = None;
        }
        let d = match self.delay {
            None => FIRST_DELAY,
            Some(d) => (d * 2).min(MAX_DELAY),
        };
        self.delay = Some(d);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> Result<Policy> {
        Policy::of(&RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        })
    }

    #[test]
    fn policies_like_docker() {
        assert_eq!(policy("", 0).unwrap(), Policy::No);
        assert_eq!(policy("on-failure", 3).unwrap(), Policy::OnFailure(3));
        assert!(policy("sometimes", 0).is_err());
        assert!(!Policy::OnFailure(2).wants(0, 0));
        assert!(Policy::OnFailure(2).wants(1, 1));
        assert!(!Policy::OnFailure(2).wants(1, 2));
        assert!(Policy::OnFailure(0).wants(1, 100));
        assert!(Policy::Always.wants(0, 100));
        assert!(!Policy::No.wants(1, 0));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(5);
        assert_eq!(b.next(short), Duration::from_millis(100));
        assert_eq!(b.next(short), Duration::from_millis(200));
        assert_eq!(b.next(short), Duration::from_millis(400));
        for _ in 0..20 {
            b.next(short);
        }
        assert_eq!(b.next(short), MAX_DELAY);
        assert_eq!(b.next(STABLE_RUN), FIRST_DELAY);
    }
}
