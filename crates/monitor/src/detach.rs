//! Docker's detach keys (`ctrl-p,ctrl-q` by default): a key sequence on an attached tty
//! client's stdin that detaches it. Keys that start the sequence are held back until it is
//! complete or broken, then passed on.

use crate::error::{Error, Result};

/// Docker's default sequence.
pub const DEFAULT_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses Docker's syntax: comma-separated `ctrl-<char>` or single characters; an empty
/// string disables detaching.
pub fn parse(text: &str) -> Result<Vec<u8>> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(key).collect()
}

fn key(k: &str) -> Result<u8> {
    let bad = || {
        Error::Invalid(format!(
            "invalid detach key {k:?}: expected a letter or ctrl-<key>"
        ))
    };
    if let Some(c) = k.strip_prefix("ctrl-") {
        let c = match c.as_bytes() {
            [c] => c.to_ascii_lowercase(),
            _ => return Err(bad()),
        };
        return match c {
            b'a'..=b'z' => Ok(c - b'a' + 1),
            b'@' => Ok(0),
            b'[' => Ok(27),
            b'\\' => Ok(28),
            b']' => Ok(29),
            b'^' => Ok(30),
            b'_' => Ok(31),
            _ => Err(bad()),
        };
    }
    match k.as_bytes() {
        [c] if c.is_ascii() => Ok(*c),
        _ => Err(bad()),
    }
}

/// Watches one client's stdin for the sequence.
#[derive(Debug, Default)]
pub struct Matcher {
    keys: Vec<u8>,
    /// How many keys of the sequence the input ended with (held back).
    matched: usize,
}

/// What a chunk of stdin amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Pass these bytes to the container.
    Pass(Vec<u8>),
    /// The sequence was typed: pass these bytes (typed before it), then detach.
    Detach(Vec<u8>),
}

impl Matcher {
    pub fn new(keys: Vec<u8>) -> Matcher {
        Matcher { keys, matched: 0 }
    }

    /// Scans `input`.
    pub fn scan(&mut self, input: &[u8]) -> Scan {
        if self.keys.is_empty() {
            return Scan::Pass(input.to_vec());
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scan::Detach(out);
                }
                continue;
            }
            // Broken: the held keys were input after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
            } else {
                out.push(b);
            }
        }
        Scan::Pass(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_syntax() {
        assert_eq!(parse(DEFAULT_KEYS).unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse("ctrl-[").unwrap(), vec![27]);
        assert!(parse("").unwrap().is_empty());
        assert!(parse("ctrl-").is_err());
        assert!(parse("xy").is_err());
    }

    #[test]
    fn sequence_detaches_across_chunks_and_broken_ones_pass() {
        let mut m = Matcher::new(vec![16, 17]);
        assert_eq!(m.scan(b"ab\x10"), Scan::Pass(b"ab".to_vec()));
        assert_eq!(m.scan(b"\x11rest"), Scan::Detach(Vec::new()));
        assert_eq!(m.scan(b"\x10x"), Scan::Pass(b"\x10x".to_vec()));
        assert_eq!(m.scan(b"\x10\x10\x11"), Scan::Detach(b"\x10".to_vec()));
        let mut off = Matcher::new(Vec::new());
        assert_eq!(off.scan(b"\x10\x11"), Scan::Pass(b"\x10\x11".to_vec()));
    }
}
