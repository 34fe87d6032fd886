//! Docker's timestamps for `--since`, `--until` and the `until` filter: a duration before
//! now, unix seconds, or RFC 3339 and its shorter layouts (`timetypes.GetTimestamp`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{FixedOffset, Local, NaiveDateTime, TimeZone};

/// A value that is no timestamp, in Docker's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimestampError {
    /// A date that is not RFC 3339.
    #[error("invalid timestamp {0:?}: not RFC 3339 (2006-01-02T15:04:05Z07:00)")]
    NotRfc3339(String),
    /// Neither a time nor a duration.
    #[error("failed to parse value as time or duration: {0:?}")]
    Unparsable(String),
}

/// Docker's `timetypes.GetTimestamp`: a Go duration before `now` (`10m`, `1h30m`), unix
/// seconds with an optional fraction, or RFC 3339 and its shorter layouts (`2006-01-02`,
/// `2006-01-02T15`, `2006-01-02T15:04`, with or without a zone; without one, local time).
pub fn parse(value: &str, now: SystemTime) -> Result<SystemTime, TimestampError> {
    if value != "0" {
        if let Some((negative, d)) = go_duration(value) {
            let at = if negative {
                now.checked_add(d)
            } else {
                now.checked_sub(d)
            };
            return at.ok_or_else(|| TimestampError::Unparsable(value.to_string()));
        }
    }
    if let Some(t) = absolute(value) {
        return Ok(t);
    }
    if value.contains('-') {
        return Err(TimestampError::NotRfc3339(value.to_string()));
    }
    unix(value).ok_or_else(|| TimestampError::Unparsable(value.to_string()))
}

/// A Go `time.ParseDuration`: `[-+]` then number-unit pairs (`1h30m`, `1.5s`, `300ms`).
fn go_duration(value: &str) -> Option<(bool, Duration)> {
    let (negative, mut rest) = match value.as_bytes().first()? {
        b'-' => (true, &value[1..]),
        b'+' => (false, &value[1..]),
        _ => (false, value),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * seconds;
    }
    Duration::try_from_secs_f64(total)
        .ok()
        .map(|d| (negative, d))
}

/// `secs` or `secs.fraction` since the epoch (the fraction scaled to nanoseconds).
fn unix(value: &str) -> Option<SystemTime> {
    let (secs, fraction) = value.split_once('.').unwrap_or((value, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    if !fraction.is_empty() {
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        nanos = fraction.parse::<u32>().ok()? * 10u32.pow(9 - fraction.len() as u32);
    }
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// A date, optionally with `T` and an hour, minutes, seconds and fraction, optionally with
/// `Z` or `±hh:mm`; local time without a zone.
fn absolute(value: &str) -> Option<SystemTime> {
    if value.len() < 10 || !value.is_char_boundary(10) {
        return None;
    }
    let (date, rest) = value.split_at(10);
    let (clock, zone) = split_zone(rest)?;
    let clock = match clock.strip_prefix(['T', 't']) {
        None if clock.is_empty() => "00:00:00".to_string(),
        None => return None,
        Some(c) => match c.split(':').count() {
            1 if c.len() == 2 => format!("{c}:00:00"),
            2 => format!("{c}:00"),
            3 => c.to_string(),
            _ => return None,
        },
    };
    let naive =
        NaiveDateTime::parse_from_str(&format!("{date}T{clock}"), "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    let utc = match zone {
        Some(offset) => offset.from_local_datetime(&naive).single()?.to_utc(),
        None => Local.from_local_datetime(&naive).earliest()?.to_utc(),
    };
    let nanos = utc.timestamp_nanos_opt()?;
    Some(UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).ok()?))
}

/// Splits the time of day from its zone (`Z`, `+07:00`, `-0700`); `None` inside: no zone.
fn split_zone(rest: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(clock) = rest.strip_suffix(['Z', 'z']) {
        return Some((clock, FixedOffset::east_opt(0)));
    }
    let Some(at) = rest.rfind(['+', '-']) else {
        return Some((rest, None));
    };
    let (clock, zone) = rest.split_at(at);
    let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds = digits[..2].parse::<i32>().ok()? * 3600 + digits[2..].parse::<i32>().ok()? * 60;
    let offset = if zone.starts_with('-') {
        FixedOffset::west_opt(seconds)
    } else {
        FixedOffset::east_opt(seconds)
    }?;
    Some((clock, Some(offset)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn durations_count_back_from_now() {
        let now = at(10_000, 0);
        assert_eq!(parse("10m", now).unwrap(), at(9_400, 0));
        assert_eq!(parse("1h30m", now).unwrap(), at(4_600, 0));
        assert_eq!(parse("1.5s", now).unwrap(), at(9_998, 500_000_000));
        assert_eq!(parse("-10s", now).unwrap(), at(10_010, 0));
        assert!(parse("10x", now).is_err());
        assert!(parse("5000000000000000h", now).is_err());
    }

    #[test]
    fn unix_seconds_with_fraction() {
        let now = SystemTime::now();
        assert_eq!(parse("0", now).unwrap(), UNIX_EPOCH);
        assert_eq!(parse("1700000000", now).unwrap(), at(1_700_000_000, 0));
        assert_eq!(
            parse("1700000000.5", now).unwrap(),
            at(1_700_000_000, 500_000_000)
        );
        assert_eq!(
            parse("1700000000.000000001", now).unwrap(),
            at(1_700_000_000, 1)
        );
    }

    #[test]
    fn rfc3339_and_shorter_layouts() {
        let now = SystemTime::now();
        let t = |s| parse(s, now).unwrap();
        assert_eq!(t("2023-11-14T22:13:20Z"), at(1_700_000_000, 0));
        assert_eq!(t("2023-11-14T22:13:20.25Z"), at(1_700_000_000, 250_000_000));
        assert_eq!(t("2023-11-15T00:13:20+02:00"), at(1_700_000_000, 0));
        assert_eq!(t("2023-11-14T21:13:20-01:00"), at(1_700_000_000, 0));
        assert_eq!(t("2023-11-14T22:13Z"), at(1_699_999_980, 0));
        assert_eq!(t("2023-11-14T22Z"), at(1_699_999_200, 0));
        assert_eq!(t("2023-11-14Z"), at(1_699_920_000, 0));
        // Without a zone: local time.
        let local = Local
            .with_ymd_and_hms(2023, 11, 14, 22, 13, 20)
            .earliest()
            .unwrap()
            .timestamp() as u64;
        assert_eq!(t("2023-11-14T22:13:20"), at(local, 0));
        assert!(parse("2023-13-14", now).is_err());
        assert!(parse("yesterday", now).is_err());
    }
}
