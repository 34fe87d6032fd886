//! `pelagos events` / `system events`: the event log under the root, filtered as Docker's
//! `--filter`, from `--since` (else from now) and, without `--until`, followed until
//! SIGINT or SIGTERM.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use chrono::{FixedOffset, Local, NaiveDateTime, TimeZone};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use pelagos_model::events::{Event, EventLog, Filter, TimeRange};

use crate::cli::{Cli, EventsArgs};

pub fn events(cli: &Cli, a: &EventsArgs) -> Result<i32> {
    let filter = Filter::parse(&a.filter)?;
    let now = SystemTime::now();
    let since = a.since.as_deref().map(|s| timestamp(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| timestamp(s, now)).transpose()?;
    let range = TimeRange {
        // Without --since, Docker shows only what happens from now on.
        since: Some(since.unwrap_or(now)),
        until,
    };
    // Parsed once, before anything is read (`json` is `{{json .}}`, as Docker's).
    let template = a
        .format
        .as_deref()
        .map(pelagos_template::Template::parse_format)
        .transpose()
        .map_err(|e| anyhow::anyhow!("bad --format: {e}"))?;
    let log = EventLog::new(&cli.root);
    let mut out = std::io::stdout().lock();
    let mut print = |e: &Event| -> std::io::Result<()> {
        if !filter.matches(e) {
            return Ok(());
        }
        let line = match &template {
            Some(t) => t
                .render(&serde_json::to_value(e)?)
                .map_err(std::io::Error::other)?,
            None => e.to_text(),
        };
        writeln!(out, "{line}")?;
        out.flush()
    };
    if until.is_some_and(|u| u <= now) {
        log.read(&range, &mut print)?;
        return Ok(0);
    }
    // SIGINT and SIGTERM end the follow cleanly: blocked, and read from a signalfd the
    // follow watches beside the log.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    signals.thread_block().context("block SIGINT and SIGTERM")?;
    let stop = SignalFd::with_flags(&signals, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .context("signalfd")?;
    log.follow(&range, Some(std::os::fd::AsFd::as_fd(&stop)), &mut print)?;
    Ok(0)
}

/// Docker's `timetypes.GetTimestamp`: a Go duration before `now` (`10m`, `1h30m`), unix
/// seconds with an optional fraction, or RFC 3339 and its shorter layouts (`2006-01-02`,
/// `2006-01-02T15`, `2006-01-02T15:04`, with or without a zone; without one, local time).
pub fn timestamp(value: &str, now: SystemTime) -> Result<SystemTime> {
    if value != "0" {
        if let Some((negative, d)) = go_duration(value) {
            return Ok(if negative { now + d } else { now - d });
        }
    }
    if let Some(t) = absolute(value) {
        return Ok(t);
    }
    if value.contains('-') {
        bail!("invalid timestamp {value:?}: not RFC 3339 (2006-01-02T15:04:05Z07:00)");
    }
    unix(value).ok_or_else(|| anyhow!("failed to parse value as time or duration: {value:?}"))
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
        assert_eq!(timestamp("10m", now).unwrap(), at(9_400, 0));
        assert_eq!(timestamp("1h30m", now).unwrap(), at(4_600, 0));
        assert_eq!(timestamp("1.5s", now).unwrap(), at(9_998, 500_000_000));
        assert_eq!(timestamp("-10s", now).unwrap(), at(10_010, 0));
        assert!(timestamp("10x", now).is_err());
    }

    #[test]
    fn unix_seconds_with_fraction() {
        let now = SystemTime::now();
        assert_eq!(timestamp("0", now).unwrap(), UNIX_EPOCH);
        assert_eq!(timestamp("1700000000", now).unwrap(), at(1_700_000_000, 0));
        assert_eq!(
            timestamp("1700000000.5", now).unwrap(),
            at(1_700_000_000, 500_000_000)
        );
        assert_eq!(
            timestamp("1700000000.000000001", now).unwrap(),
            at(1_700_000_000, 1)
        );
    }

    #[test]
    fn rfc3339_and_shorter_layouts() {
        let now = SystemTime::now();
        let t = |s| timestamp(s, now).unwrap();
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
        assert!(timestamp("2023-13-14", now).is_err());
        assert!(timestamp("yesterday", now).is_err());
    }
}
