//! Errors and warnings for callers: one line on stderr and, with `--log`, a line in the log
//! file (logrus-style JSON with `--log-format json`), where containerd and conmon look.

use std::io::Write;
use std::path::PathBuf;

pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
}

impl Logger {
    /// Open the log early so that every later failure lands in it.
    pub fn open(path: Option<&PathBuf>, format: &str) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Logger {
            file,
            json: format == "json",
        }
    }

    pub fn error(&mut self, msg: &str) {
        eprintln!("pelagos-runtime: {msg}");
        self.write("error", msg);
    }

    pub fn warn(&mut self, msg: &str) {
        self.write("warning", msg);
    }

    fn write(&mut self, level: &str, msg: &str) {
        let Some(f) = self.file.as_mut() else { return };
        let time = pelagos_container::state::now_rfc3339_nano();
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        let _ = writeln!(f, "{line}");
    }
}
