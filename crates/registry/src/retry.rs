//! [`RetryPolicy`]: how often and how patiently a blob download is resumed after the
//! connection fails.

use std::time::Duration;

/// How a blob reader (`Client::blob_reader`) retries a failing download.
///
/// `max_attempts` bounds the number of consecutive requests that fail without delivering a
/// single byte; an attempt that makes progress resets the count, so a long download over a
/// flaky link keeps going as long as it advances. Between attempts the reader sleeps
/// `initial_backoff`, doubling up to `max_backoff`. Only connection failures, 5xx, 408 and 429
/// are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Consecutive failed attempts before giving up (at least 1).
    pub max_attempts: u32,
    /// Sleep before the first retry.
    pub initial_backoff: Duration,
    /// Longest sleep between attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Sleep after the `failures`-th consecutive failure (1-based).
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(200));
        assert_eq!(p.backoff(2), Duration::from_millis(400));
        assert_eq!(p.backoff(4), Duration::from_millis(1600));
        assert_eq!(p.backoff(10), Duration::from_secs(5));
        assert_eq!(p.backoff(100), Duration::from_secs(5));
    }
}
