//! Cuts the container's output into log lines: complete lines as they end, a line longer than
//! Docker's 16 KiB buffer in partial pieces, and what is left when a stream ends.

use crate::log_sink::{LogSink, Stream};

/// Docker's log line buffer: longer lines are logged in pieces marked partial.
pub const MAX_LINE: usize = 16 * 1024;

/// Unfinished lines of stdout and stderr.
#[derive(Debug, Default)]
pub struct Lines {
    pending: [Vec<u8>; 2],
}

fn slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl Lines {
    /// Logs the complete lines of `bytes` (after what was pending) and keeps the rest.
    pub fn push(&mut self, stream: Stream, mut bytes: &[u8], sink: &mut dyn LogSink) {
        let pending = &mut self.pending[slot(stream)];
        while let Some(pos) = bytes.iter().position(|b| *b == b'\n') {
            let (line, rest) = bytes.split_at(pos + 1);
            if pending.is_empty() {
                sink.write(stream, line, false);
            } else {
                pending.extend_from_slice(line);
                sink.write(stream, pending, false);
                pending.clear();
            }
            bytes = rest;
        }
        pending.extend_from_slice(bytes);
        while pending.len() >= MAX_LINE {
            sink.write(stream, &pending[..MAX_LINE], true);
            pending.drain(..MAX_LINE);
        }
        if pending.capacity() > MAX_LINE && pending.is_empty() {
            // Do not keep a large buffer for the rest of the container's life.
            *pending = Vec::new();
        }
    }

    /// Logs what is pending of `stream` (its end).
    pub fn flush(&mut self, stream: Stream, sink: &mut dyn LogSink) {
        let pending = std::mem::take(&mut self.pending[slot(stream)]);
        if !pending.is_empty() {
            sink.write(stream, &pending, true);
        }
    }

    /// Logs what is pending of both streams.
    pub fn flush_all(&mut self, sink: &mut dyn LogSink) {
        self.flush(Stream::Stdout, sink);
        self.flush(Stream::Stderr, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Vec<(Stream, Vec<u8>, bool)>);

    impl LogSink for Record {
        fn write(&mut self, stream: Stream, line: &[u8], partial: bool) {
            self.0.push((stream, line.to_vec(), partial));
        }
    }

    #[test]
    fn lines_are_joined_cut_and_flushed() {
        let mut lines = Lines::default();
        let mut rec = Record::default();
        lines.push(Stream::Stdout, b"a\nb", &mut rec);
        lines.push(Stream::Stderr, b"e\n", &mut rec);
        lines.push(Stream::Stdout, b"c\nd", &mut rec);
        lines.push(Stream::Stdout, &vec![b'x'; MAX_LINE + 1], &mut rec);
        lines.flush_all(&mut rec);
        let got: Vec<(Stream, Vec<u8>, bool)> = rec.0;
        assert_eq!(got[0], (Stream::Stdout, b"a\n".to_vec(), false));
        assert_eq!(got[1], (Stream::Stderr, b"e\n".to_vec(), false));
        assert_eq!(got[2], (Stream::Stdout, b"bc\n".to_vec(), false));
        assert_eq!(got[3].1.len(), MAX_LINE);
        assert!(got[3].2 && got[3].1.starts_with(b"dx"));
        assert_eq!(got[4], (Stream::Stdout, b"xx".to_vec(), true));
        assert_eq!(got.len(), 5);
    }
}
