//! Errors and warnings for callers: one line on stderr and, with `--log`, a line in the log
//! file (logrus-style JSON with `--log-format json`), where containerd and conmon look.

use std::io::Write;
use std::path::PathBuf;

/// `--log-format`: runc knows exactly these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(text: &str) -> Result<LogFormat, String> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("the log format must be text or json".into()),
        }
    }
}

pub struct Logger {
    file: Option<std::fs::File>,
    json: bool,
}

impl Logger {
    /// Open the log early so that every later failure lands in it.
    pub fn open(path: Option<&PathBuf>, format: LogFormat) -> Logger {
        let file = path.and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Logger {
            file,
            json: format == LogFormat::Json,
        }
    }

    pub fn error(&mut self, msg: &str) {
        eprintln!("pelagos-runtime: {msg}");
        self.write("error", msg);
    }

    /// A warning goes to the log; without `--log`, to stderr so that it is not lost.
    pub fn warn(&mut self, msg: &str) {
        if self.file.is_none() {
            eprintln!("pelagos-runtime: warning: {msg}");
        }
        self.write("warning", msg);
    }

    fn write(&mut self, level: &str, msg: &str) {
        if let Some(f) = self.file.as_ref() {
            write_line(f, self.json, level, msg);
        }
    }

    /// With `--log`, the library's warnings go to the log file only, as runc's do: during
    /// `create` under containerd stderr is the container's own stderr.
    pub fn install_warning_sink(&self) {
        let Some(f) = self.file.as_ref().and_then(|f| f.try_clone().ok()) else {
            return;
        };
        let json = self.json;
        pelagos_container::container::set_warning_sink(Box::new(move |msg| {
            write_line(&f, json, "warning", msg)
        }));
    }
}

fn write_line(mut f: &std::fs::File, json: bool, level: &str, msg: &str) {
    let time = pelagos_container::state::now_rfc3339_nano();
    let line = if json {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time={time:?} level={level} msg={msg:?}")
    };
    let _ = writeln!(f, "{line}");
}
