//! Docker's `json-file` format, byte for byte: one
//! `{"log":"…\n","stream":"stdout","time":"…Z"}` object a line, escaped as Docker's
//! `jsonlog` does and timed as Go's `RFC3339Nano`.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{Record, Split};
use super::{LogEntry, Stream};

/// The end of year 9999, the last time RFC 3339 can write.
const LAST_SECOND: u64 = 253_402_300_799;

/// Appends the line of `record` to `out`.
pub(super) fn encode(record: &Record<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{");
    if !record.bytes.is_empty() {
        // Docker leaves out an empty "log" (omitempty).
        out.extend_from_slice(b"\"log\":");
        escape(record.bytes, out);
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":\"");
    out.extend_from_slice(record.stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(format_time(record.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
}

/// A time as Docker writes it (Go's `RFC3339Nano` in UTC: nanoseconds without trailing
/// zeros): `2026-01-02T03:04:05.12345678Z`.
pub fn format_time(time: SystemTime) -> String {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let time = if since_epoch.as_secs() > LAST_SECOND {
        UNIX_EPOCH + Duration::new(LAST_SECOND, 999_999_999)
    } else {
        UNIX_EPOCH + since_epoch
    };
    let full = humantime::format_rfc3339_nanos(time).to_string();
    // "…:05.123450000Z" → "…:05.12345Z"; "…:05.000000000Z" → "…:05Z".
    let body = full.trim_end_matches('Z').trim_end_matches('0');
    let body = body.trim_end_matches('.');
    format!("{body}Z")
}

/// A JSON string as Docker's `ffjsonWriteJSONBytesAsString` writes it: `<`, `>`, `&`,
/// control characters as `\u00XX` (but `\n`, `\r`), U+2028/9 escaped, each byte of invalid
/// UTF-8 as `\ufffd`.
fn escape(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            escape_char(c, out);
        }
        for _ in chunk.invalid() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

fn escape_char(c: char, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match c {
        '"' => out.extend_from_slice(b"\\\""),
        '\\' => out.extend_from_slice(b"\\\\"),
        '\n' => out.extend_from_slice(b"\\n"),
        '\r' => out.extend_from_slice(b"\\r"),
        '\u{0}'..='\u{1f}' | '<' | '>' | '&' => {
            let b = c as u8;
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        '\u{2028}' => out.extend_from_slice(b"\\u2028"),
        '\u{2029}' => out.extend_from_slice(b"\\u2029"),
        c => {
            let mut utf8 = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
    }
}

/// The first line of `buf`.
pub(super) fn split_first(buf: &[u8]) -> Split {
    match buf.iter().position(|b| *b == b'\n') {
        Some(i) => Split::Record(i + 1),
        None => Split::NeedMore,
    }
}

/// Where the last line of `buf` (which ends with a newline) starts; `at_start`: `buf`
/// begins at the start of the file.
pub(super) fn split_last(buf: &[u8], at_start: bool) -> Split {
    let Some((_, before)) = buf.split_last() else {
        return Split::NeedMore;
    };
    match before.iter().rposition(|b| *b == b'\n') {
        Some(i) => Split::Record(i + 1),
        None if at_start => Split::Record(0),
        None => Split::NeedMore,
    }
}

#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(borrow, default)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

/// The entry of a line; `None` for a line that is not one (torn by a crash, foreign).
pub(super) fn decode(line: &[u8]) -> Option<LogEntry> {
    let line: Line<'_> = serde_json::from_slice(line).ok()?;
    let stream = match line.stream.as_ref() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let time = humantime::parse_rfc3339(&line.time).ok()?;
    let bytes = line.log.into_owned().into_bytes();
    Some(LogEntry {
        stream,
        time,
        partial: bytes.last() != Some(&b'\n'),
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(bytes: &[u8], stream: Stream) -> String {
        let mut out = Vec::new();
        let time = UNIX_EPOCH + Duration::new(1_767_323_045, 123_450_000);
        encode(
            &Record {
                stream,
                time,
                bytes,
                partial: false,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_are_dockers_bytes() {
        assert_eq!(
            line(b"hello world\n", Stream::Stdout),
            "{\"log\":\"hello world\\n\",\"stream\":\"stdout\",\"time\":\
             \"2026-01-02T03:04:05.12345Z\"}\n"
        );
        // Docker's escapes: HTML characters, tab as \u0009, invalid UTF-8 byte by byte.
        assert_eq!(
            line(b"a<b>&\"\\\t\r\x01\xe2\x80\xa8\xff\xe2\x82 \xc3\xa9\n", Stream::Stderr),
            "{\"log\":\"a\\u003cb\\u003e\\u0026\\\"\\\\\\u0009\\r\\u0001\\u2028\\ufffd\
             \\ufffd\\ufffd é\\n\",\"stream\":\"stderr\",\"time\":\"2026-01-02T03:04:05.12345Z\"}\n"
        );
        assert_eq!(
            line(b"", Stream::Stdout),
            "{\"stream\":\"stdout\",\"time\":\"2026-01-02T03:04:05.12345Z\"}\n"
        );
    }

    #[test]
    fn times_are_gos_rfc3339nano() {
        let at = |s, ns| format_time(UNIX_EPOCH + Duration::new(s, ns));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1, 100_000_000), "1970-01-01T00:00:01.1Z");
        assert_eq!(at(1, 123_456_789), "1970-01-01T00:00:01.123456789Z");
        assert_eq!(
            format_time(UNIX_EPOCH - Duration::new(5, 0)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(at(u64::MAX / 4, 0), "9999-12-31T23:59:59.999999999Z");
    }

    #[test]
    fn lines_decode_to_what_was_written() {
        let text = line(b"x\xffy\n", Stream::Stderr);
        let entry = decode(text.trim_end().as_bytes()).unwrap();
        assert_eq!(entry.bytes, "x\u{fffd}y\n".as_bytes());
        assert_eq!(entry.stream, Stream::Stderr);
        assert!(!entry.partial);
        assert_eq!(
            entry.time,
            UNIX_EPOCH + Duration::new(1_767_323_045, 123_450_000)
        );
        assert!(decode(b"{\"log\":\"torn").is_none());
        assert!(
            decode(b"{\"log\":\"x\",\"stream\":\"tty\",\"time\":\"2026-01-02T03:04:05Z\"}")
                .is_none()
        );
    }
}
