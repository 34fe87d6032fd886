//! Where the container's output is logged: a tiny trait and, until the model's log drivers
//! land, a minimal Docker json-file writer (`container.log`, one JSON object per line) and
//! the `none` driver. Swapping to the model's `LogWriter` changes this file only.

use std::fs;
use std::io::{BufRead, Write};
use std::path::Path;

use pelagos_model::config::LogConfig;

use crate::error::{Error, Result};

/// The log file of a container (in its directory).
pub const LOG_FILE: &str = "container.log";

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Docker's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// A log driver: receives complete lines (with their newline) or, with `partial`, a piece
/// of a line cut because it grew too long or its stream ended.
pub trait LogSink {
    fn write(&mut self, stream: Stream, line: &[u8], partial: bool);
}

/// Opens the log of the driver the container's LogConfig names.
pub fn open(dir: &Path, config: &LogConfig) -> Result<Box<dyn LogSink>> {
    match config.kind.as_str() {
        "none" => Ok(Box::new(Discard)),
        // "local" is written as json-file until the model's drivers land.
        "" | "json-file" | "local" => Ok(Box::new(JsonFile::open(&dir.join(LOG_FILE))?)),
        other => Err(Error::Invalid(format!(
            "log driver {other:?} is not supported (json-file, local, none are)"
        ))),
    }
}

/// The `none` driver (and the sink before a start).
pub struct Discard;

impl LogSink for Discard {
    fn write(&mut self, _: Stream, _: &[u8], _: bool) {}
}

/// Docker's json-file format.
struct JsonFile {
    file: fs::File,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry<'a> {
    log: std::borrow::Cow<'a, str>,
    stream: std::borrow::Cow<'a, str>,
    time: String,
}

impl JsonFile {
    fn open(path: &Path) -> Result<JsonFile> {
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("open {}", path.display()), e))?;
        Ok(JsonFile { file })
    }
}

impl LogSink for JsonFile {
    fn write(&mut self, stream: Stream, line: &[u8], _partial: bool) {
        let entry = Entry {
            log: String::from_utf8_lossy(line),
            stream: stream.as_str().into(),
            time: pelagos_model::names::now_rfc3339(),
        };
        if let Ok(mut text) = serde_json::to_vec(&entry) {
            text.push(b'\n');
            // A full disk loses log lines, never the container.
            let _ = self.file.write_all(&text);
        }
    }
}

/// Replays the json-file log of the container in `dir` (Docker's attach with `logs=1`):
/// `emit` gets each entry until it returns false.
pub fn replay(dir: &Path, mut emit: impl FnMut(Stream, &[u8]) -> bool) {
    let Ok(file) = fs::File::open(dir.join(LOG_FILE)) else {
        return;
    };
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { return };
        let Ok(entry) = serde_json::from_str::<Entry>(&line) else {
            continue;
        };
        let stream = if entry.stream == "stderr" {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        if !emit(stream, entry.log.as_bytes()) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_file_round_trips_and_none_discards() {
        let d = tempfile::tempdir().unwrap();
        let mut log = open(d.path(), &LogConfig::default()).unwrap();
        log.write(Stream::Stdout, b"hello\n", false);
        log.write(Stream::Stderr, b"\xffoops", true);
        drop(log);
        let mut got = Vec::new();
        replay(d.path(), |s, b| {
            got.push((s, b.to_vec()));
            true
        });
        assert_eq!(got[0], (Stream::Stdout, b"hello\n".to_vec()));
        assert_eq!(got[1].0, Stream::Stderr);
        assert!(String::from_utf8_lossy(&got[1].1).ends_with("oops"));
        let none = LogConfig {
            kind: "none".into(),
            ..Default::default()
        };
        let e = tempfile::tempdir().unwrap();
        open(e.path(), &none)
            .unwrap()
            .write(Stream::Stdout, b"x\n", false);
        assert!(!e.path().join(LOG_FILE).exists());
        let bad = LogConfig {
            kind: "syslog".into(),
            ..Default::default()
        };
        assert!(open(e.path(), &bad).is_err());
    }
}
