//! The `local` driver's format: length-prefixed binary records with the length repeated at
//! the end, so that a file reads forwards and backwards without an index.
//!
//! A record: `len: u32 LE`, `flags: u8`, `time: u64 LE` (ns since the epoch), the entry's
//! bytes, `len: u32 LE` again; `len` counts flags, time and bytes. `flags`: the high nibble
//! is the format version (1), bit 0 stderr, bit 1 partial, bits 2-3 zero.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::format::{Record, Split};
use super::{LogEntry, Stream};

const VERSION: u8 = 0x10;
const STDERR: u8 = 0x01;
const PARTIAL: u8 = 0x02;
const KNOWN: u8 = VERSION | STDERR | PARTIAL;
/// Bytes of a length field.
const LEN: usize = 4;
/// Bytes of flags and time.
const HEAD: usize = 9;
/// The largest body accepted when reading: entries are at most 16 KiB, anything far larger is
/// a corrupt length.
const MAX_BODY: usize = 1 << 20;
/// The largest record accepted when reading.
pub(super) const MAX_RECORD: usize = MAX_BODY + 2 * LEN;

/// Appends the record of `record` to `out`.
pub(super) fn encode(record: &Record<'_>, out: &mut Vec<u8>) {
    let mut flags = VERSION;
    if record.stream == Stream::Stderr {
        flags |= STDERR;
    }
    if record.partial {
        flags |= PARTIAL;
    }
    let nanos = record
        .time
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    // Entries are at most 16 KiB; a length that does not fit is a caller's bug, written
    // saturated so that it reads back as corrupt instead of as a wrong record.
    let len = u32::try_from(HEAD + record.bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.push(flags);
    out.extend_from_slice(&nanos.to_le_bytes());
    out.extend_from_slice(record.bytes);
    out.extend_from_slice(&len.to_le_bytes());
}

fn read_len(bytes: &[u8]) -> Option<usize> {
    let len = u32::from_le_bytes(bytes.get(..LEN)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    (HEAD..=MAX_BODY).contains(&len).then_some(len)
}

/// Whether `record` (a whole record) has matching lengths and known flags.
fn is_whole(record: &[u8], len: usize) -> bool {
    let tail = record.len() - LEN;
    read_len(record) == Some(len)
        && read_len(&record[tail..]) == Some(len)
        && record[LEN] & !KNOWN == 0
        && record[LEN] & 0xf0 == VERSION
}

/// The length of the first record of `buf`.
pub(super) fn split_first(buf: &[u8]) -> Split {
    if buf.len() < LEN {
        return Split::NeedMore;
    }
    let Some(len) = read_len(buf) else {
        return Split::Corrupt;
    };
    let total = len + 2 * LEN;
    match buf.get(..total) {
        None => Split::NeedMore,
        Some(record) if is_whole(record, len) => Split::Record(total),
        Some(_) => Split::Corrupt,
    }
}

/// Where the last record of `buf` starts (`buf` ends at the end of a record).
pub(super) fn split_last(buf: &[u8], at_start: bool) -> Split {
    let need_more = if at_start {
        Split::Corrupt
    } else {
        Split::NeedMore
    };
    if buf.len() < LEN {
        return need_more;
    }
    let Some(len) = read_len(&buf[buf.len() - LEN..]) else {
        return Split::Corrupt;
    };
    let total = len + 2 * LEN;
    let Some(start) = buf.len().checked_sub(total) else {
        return need_more;
    };
    if is_whole(&buf[start..], len) {
        Split::Record(start)
    } else {
        Split::Corrupt
    }
}

/// The entry of a whole record (checked by a split).
pub(super) fn decode(record: &[u8]) -> Option<LogEntry> {
    let flags = *record.get(LEN)?;
    let nanos = u64::from_le_bytes(record.get(LEN + 1..LEN + HEAD)?.try_into().ok()?);
    let bytes = record.get(LEN + HEAD..record.len().checked_sub(LEN)?)?;
    Some(LogEntry {
        stream: if flags & STDERR != 0 {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        time: time_of(nanos),
        bytes: bytes.to_vec(),
        partial: flags & PARTIAL != 0,
    })
}

fn time_of(nanos: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(bytes: &[u8], stream: Stream, partial: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let time = time_of(1_767_323_045_123_456_789);
        encode(
            &Record {
                stream,
                time,
                bytes,
                partial,
            },
            &mut out,
        );
        out
    }

    #[test]
    fn records_round_trip_both_ways() {
        let mut file = encoded(b"one\n", Stream::Stdout, false);
        file.extend(encoded(b"\xff\x00two", Stream::Stderr, true));
        let Split::Record(first) = split_first(&file) else {
            panic!("no first record")
        };
        assert_eq!(first, 4 + 9 + 4 + 4);
        let Split::Record(last) = split_last(&file, true) else {
            panic!("no last record")
        };
        assert_eq!(last, first);
        let one = decode(&file[..first]).unwrap();
        assert_eq!(
            (one.bytes.as_slice(), one.stream, one.partial),
            (&b"one\n"[..], Stream::Stdout, false)
        );
        let two = decode(&file[last..]).unwrap();
        assert_eq!(
            (two.bytes.as_slice(), two.stream, two.partial),
            (&b"\xff\x00two"[..], Stream::Stderr, true)
        );
        assert_eq!(two.time, time_of(1_767_323_045_123_456_789));
    }

    #[test]
    fn torn_and_corrupt_records_are_told_apart() {
        let record = encoded(b"hello", Stream::Stdout, false);
        assert!(matches!(split_first(&record[..10]), Split::NeedMore));
        assert!(matches!(split_last(&record[3..], false), Split::NeedMore));
        assert!(matches!(split_last(&record[3..], true), Split::Corrupt));
        let mut bad = record.clone();
        bad[4] = 0x20;
        assert!(matches!(split_first(&bad), Split::Corrupt));
        assert!(matches!(split_first(&[0xff; 8]), Split::Corrupt));
    }
}
