//! Where the container's output is logged: the model's log drivers (json-file, local, none)
//! behind the small trait the monitor's line splitter writes to.

use std::path::Path;

use pelagos_model::config::LogConfig;
use pelagos_model::logs::{self, LogSettings, LogWriter, ReadOptions};

pub use pelagos_model::logs::Stream;

use crate::error::Result;

/// A log driver: receives complete lines (with their newline) or, with `partial`, a piece
/// of a line cut because it grew too long or its stream ended.
pub trait LogSink {
    fn write(&mut self, stream: Stream, line: &[u8], partial: bool);
}

/// Opens the log of the driver the container's LogConfig names.
pub fn open(dir: &Path, config: &LogConfig) -> Result<Box<dyn LogSink>> {
    let settings = LogSettings::from_config(config)?;
    Ok(Box::new(Driver(LogWriter::open(dir, &settings)?)))
}

/// The sink before a start (nothing to log yet).
pub struct Discard;

impl LogSink for Discard {
    fn write(&mut self, _: Stream, _: &[u8], _: bool) {}
}

struct Driver(LogWriter);

impl LogSink for Driver {
    fn write(&mut self, stream: Stream, line: &[u8], partial: bool) {
        // A full disk must not stop the monitor: the entry is lost, as with Docker.
        let _ = self.0.write(stream, line, partial);
    }
}

/// Replays the log (`attach` with `logs`), stopping when `emit` says so.
pub fn replay(dir: &Path, config: &LogConfig, mut emit: impl FnMut(Stream, &[u8]) -> bool) {
    let Ok(settings) = LogSettings::from_config(config) else {
        return;
    };
    let _ = logs::read(dir, &settings, &ReadOptions::default(), &mut |e| {
        if emit(e.stream, &e.bytes) {
            Ok(())
        } else {
            Err(std::io::Error::other("the client went away"))
        }
    });
}
