//! Small helpers for cgroupfs interface files: whole-file reads, single-`write(2)` writes and
//! parsing of the "key value" line format.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::Path;

use crate::error::CgroupError;

/// Read a whole interface file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|e| CgroupError::io("read", path, e))
}

/// Read a whole interface file; `None` when it does not exist (controller not enabled, old kernel).
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, CgroupError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgroupError::io("read", path, e)),
    }
}

/// Write `value` to an existing interface file with one `write(2)` (cgroupfs parses each write
/// separately). Never creates the file. `field` names what the value is for, for the error.
pub(crate) fn write(path: &Path, value: &str, field: &str) -> Result<(), CgroupError> {
    write_raw(path, value).map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        field: field.to_owned(),
        source,
    })
}

pub(crate) fn write_raw(path: &Path, value: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
    let n = f.write(value.as_bytes())?;
    if n != value.len() {
        return Err(std::io::Error::new(ErrorKind::WriteZero, "short write"));
    }
    Ok(())
}

/// Parse "key value" lines (cpu.stat, memory.stat, memory.events, cgroup.events) into a map;
/// lines whose value is not an unsigned integer are skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_owned(), v))
        })
        .collect()
}

/// Parse a single-value file: a number, or `None` for "max".
pub(crate) fn parse_max(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keyed() {
        let m = parse_flat_keyed("usage_usec 10\nuser_usec 4\nbogus x\n\nsystem_usec 6\n");
        assert_eq!(m.get("usage_usec"), Some(&10));
        assert_eq!(m.get("system_usec"), Some(&6));
        assert_eq!(m.len(), 3);
        assert_eq!(parse_max("max\n"), None);
        assert_eq!(parse_max("42\n"), Some(42));
    }
}
