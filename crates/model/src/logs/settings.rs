//! A container's `LogConfig` checked and parsed once: the driver, `max-size`, `max-file`,
//! with Docker's defaults and Docker's error texts.

use serde::{Deserialize, Serialize};

use crate::config::LogConfig;
use crate::error::{Error, Result};

/// The `local` driver's defaults, as Docker's: 20 MiB files, five of them.
const LOCAL_MAX_SIZE: u64 = 20 * 1024 * 1024;
const LOCAL_MAX_FILE: u32 = 5;

/// A log driver pelagos implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Driver {
    JsonFile,
    Local,
    None,
}

impl Driver {
    /// Docker's name of the driver.
    pub fn name(self) -> &'static str {
        match self {
            Driver::JsonFile => "json-file",
            Driver::Local => "local",
            Driver::None => "none",
        }
    }
}

/// How a container's log is written: the driver, the size at which the file is rotated
/// (`None`: never) and how many files are kept, the current one included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSettings {
    pub driver: Driver,
    pub max_size: Option<u64>,
    pub max_file: u32,
    /// `json-file`'s `labels` and `env`: the container labels and environment variables
    /// whose values go with every entry (`logs --details`).
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
}

impl Default for LogSettings {
    /// Docker's default: `json-file`, one file without a size limit.
    fn default() -> LogSettings {
        LogSettings {
            driver: Driver::JsonFile,
            max_size: None,
            max_file: 1,
            labels: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl LogSettings {
    /// The settings of `config`. Options other than `max-size`, `max-file` and
    /// `compress=false` are refused, naming the option and the driver.
    pub fn from_config(config: &LogConfig) -> Result<LogSettings> {
        let driver = match config.kind.as_str() {
            "" | "json-file" => Driver::JsonFile,
            "local" => Driver::Local,
            "none" => Driver::None,
            other => {
                return Err(Error::Invalid(format!(
                    "no log driver named '{other}' is registered: pelagos supports the \
                     json-file, local and none log drivers"
                )))
            }
        };
        let mut settings = LogSettings::defaults(driver);
        for (key, value) in &config.config {
            match key.as_str() {
                "max-size" if driver != Driver::None => {
                    settings.max_size = parse_max_size(driver, value)?
                }
                "max-file" if driver != Driver::None => settings.max_file = parse_max_file(value)?,
                "compress" if driver != Driver::None => check_compress(value)?,
                "labels" if driver == Driver::JsonFile => settings.labels = keys(value),
                "env" if driver == Driver::JsonFile => settings.env = keys(value),
                _ => {
                    return Err(Error::Invalid(format!(
                        "unknown log opt '{key}' for {} log driver",
                        driver.name()
                    )))
                }
            }
        }
        if settings.max_size.is_none() {
            // Docker: max-file "only effective when max-size is also set".
            settings.max_file = 1;
        }
        Ok(settings)
    }

    /// Docker's `ExtraAttributes`: the named labels and environment variables the
    /// container has, sorted by name.
    pub fn attrs(
        &self,
        labels: &std::collections::BTreeMap<String, String>,
        env: &[String],
    ) -> Vec<(String, String)> {
        let mut attrs = std::collections::BTreeMap::new();
        for key in &self.labels {
            if let Some(v) = labels.get(key) {
                attrs.insert(key.clone(), v.clone());
            }
        }
        for var in env {
            if let Some((k, v)) = var.split_once('=') {
                if self.env.iter().any(|e| e == k) {
                    attrs.insert(k.to_string(), v.to_string());
                }
            }
        }
        attrs.into_iter().collect()
    }

    fn defaults(driver: Driver) -> LogSettings {
        match driver {
            Driver::Local => LogSettings {
                driver,
                max_size: Some(LOCAL_MAX_SIZE),
                max_file: LOCAL_MAX_FILE,
                ..LogSettings::default()
            },
            Driver::JsonFile | Driver::None => LogSettings {
                driver,
                ..LogSettings::default()
            },
        }
    }

    /// The name of the current log file in the container's directory (`None` for `none`).
    pub fn file_name(&self) -> Option<&'static str> {
        match self.driver {
            Driver::JsonFile => Some(super::JSON_FILE_NAME),
            Driver::Local => Some(super::LOCAL_FILE_NAME),
            Driver::None => None,
        }
    }
}

/// `max-size`: Docker's sizes (`512k`, `10m`, `1g`, decimal units as Docker's
/// `FromHumanSize`); `-1` is json-file's "unlimited".
fn parse_max_size(driver: Driver, value: &str) -> Result<Option<u64>> {
    if value == "-1" && driver == Driver::JsonFile {
        return Ok(None);
    }
    match parse_size(value) {
        Some(0) => Err(Error::Invalid(format!(
            "invalid max-size {value:?}: max-size must be a positive number"
        ))),
        Some(size) => Ok(Some(size)),
        None => Err(Error::Invalid(format!(
            "invalid max-size {value:?} for the {} log driver: use a size such as 512k, 10m \
             or 1g",
            driver.name()
        ))),
    }
}

/// A size as Docker's `units.FromHumanSize` reads it: a non-negative number, an optional
/// space, an optional unit `b`, `k`, `m`, `g`, `t`, `p` (any case, optionally followed by
/// `b` or `ib`), all of them powers of 1000.
pub(crate) fn parse_size(value: &str) -> Option<u64> {
    let digits = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let number: f64 = number.parse().ok()?;
    let unit = unit.strip_prefix(' ').unwrap_or(unit).to_ascii_lowercase();
    let mut chars = unit.chars();
    let power = match chars.next() {
        None => 0,
        Some('b') if unit.len() == 1 => 0,
        Some(c) => "kmgtp".find(c)? as i32 + 1,
    };
    if !matches!(chars.as_str(), "" | "b" | "ib") {
        return None;
    }
    let size = number * 1000f64.powi(power);
    // A float to an integer: saturates, which is fine for sizes beyond any disk.
    size.is_finite().then_some(size as u64)
}

/// `max-file`: a whole number, at least 1.
/// A comma-separated list of names.
fn keys(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

fn parse_max_file(value: &str) -> Result<u32> {
    match value.parse::<i64>() {
        Ok(n) if n < 1 => Err(Error::Invalid(format!(
            "invalid max-file {value:?}: max-file cannot be less than 1"
        ))),
        Ok(n) => u32::try_from(n)
            .map_err(|_| Error::Invalid(format!("invalid max-file {value:?}: too many files"))),
        Err(_) => Err(Error::Invalid(format!(
            "invalid max-file {value:?}: use a whole number of files, at least 1"
        ))),
    }
}

/// `compress`: only false; rotated files are not compressed.
fn check_compress(value: &str) -> Result<()> {
    match value {
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(()),
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Err(Error::Invalid(
            "log opt compress=true is not supported: pelagos does not compress rotated log \
             files; drop the option or set compress=false"
                .to_string(),
        )),
        _ => Err(Error::Invalid(format!(
            "invalid boolean value for compress: {value:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(kind: &str, opts: &[(&str, &str)]) -> LogConfig {
        LogConfig {
            kind: kind.to_string(),
            config: opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn invalid(kind: &str, opts: &[(&str, &str)]) -> String {
        match LogSettings::from_config(&config(kind, opts)) {
            Err(Error::Invalid(text)) => text,
            other => panic!("{kind} {opts:?}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn defaults_follow_docker() {
        let json = LogSettings::from_config(&config("", &[])).unwrap();
        assert_eq!(json, LogSettings::default());
        assert_eq!(json.file_name(), Some("container.log"));
        let local = LogSettings::from_config(&config("local", &[])).unwrap();
        assert_eq!(local.max_size, Some(20 * 1024 * 1024));
        assert_eq!(local.max_file, 5);
        let none = LogSettings::from_config(&config("none", &[])).unwrap();
        assert_eq!(none.driver, Driver::None);
        assert_eq!(none.file_name(), None);
    }

    #[test]
    fn sizes_and_counts_parse() {
        let s = LogSettings::from_config(&config(
            "json-file",
            &[
                ("max-size", "10m"),
                ("max-file", "3"),
                ("compress", "false"),
            ],
        ))
        .unwrap();
        assert_eq!((s.max_size, s.max_file), (Some(10_000_000), 3));
        let unlimited =
            LogSettings::from_config(&config("json-file", &[("max-size", "-1")])).unwrap();
        assert_eq!(unlimited.max_size, None);
        // Docker: max-file only takes effect with max-size.
        let no_size = LogSettings::from_config(&config("", &[("max-file", "4")])).unwrap();
        assert_eq!((no_size.max_size, no_size.max_file), (None, 1));
        for (text, size) in [
            ("512k", 512_000),
            ("1g", 1_000_000_000),
            ("1.5MB", 1_500_000),
            ("2 KiB", 2_000),
            ("100", 100),
            ("7b", 7),
        ] {
            assert_eq!(parse_size(text), Some(size), "{text}");
        }
        for bad in ["", "m", "-5", "10x", "10mbb", "1..2k"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_options_are_named() {
        assert_eq!(
            invalid("json-file", &[("labels-x", "a")]),
            "unknown log opt 'labels-x' for json-file log driver"
        );
        assert_eq!(
            invalid("local", &[("mode", "x")]),
            "unknown log opt 'mode' for local log driver"
        );
        assert!(invalid("none", &[("max-size", "1m")]).contains("'max-size' for none"));
        assert!(invalid("syslog", &[]).contains("'syslog'"));
        assert!(invalid("", &[("compress", "true")]).contains("not supported"));
        assert!(invalid("", &[("compress", "maybe")]).contains("compress"));
        assert!(invalid("", &[("max-size", "0")]).contains("positive"));
        assert!(invalid("", &[("max-size", "ten")]).contains("10m"));
        assert!(invalid("local", &[("max-size", "-1")]).contains("local"));
        assert!(invalid("", &[("max-size", "1m"), ("max-file", "0")]).contains("less than 1"));
        assert!(invalid("", &[("max-file", "x")]).contains("whole number"));
    }
}
