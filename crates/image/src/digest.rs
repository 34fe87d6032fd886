//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and streaming verification.
//!
//! A [`Digest`] is the OCI/Docker content identifier: an algorithm name, a
//! colon, and the lowercase hex encoding of the hash. Only the algorithms the
//! OCI image spec registers, `sha256` and `sha512`, are accepted, and the hex
//! part must have exactly the length the algorithm produces (64 and 128
//! characters), so a parsed digest is always one that can be checked.
//!
//! [`Verifier`] is an [`io::Write`] sink that hashes everything written into it
//! and, at [`Verifier::finish`], checks both the digest and (optionally) the
//! byte count. When an expected size is given, a write that would go past it is
//! refused immediately, so an oversized or endless stream is cut off early
//! rather than hashed to the end.

use std::fmt;
use std::io;
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// A hash algorithm usable in a [`Digest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters. The default for OCI content.
    Sha256,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as written in a digest (`sha256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// Length of the hex encoding of this algorithm's output.
    pub(crate) fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:hex` shape at all.
    #[error("invalid digest {0:?}: expected <algorithm>:<hex>, e.g. sha256:<64 hex characters>")]
    Format(String),
    /// Well-formed algorithm name that is not sha256 or sha512.
    #[error(
        "invalid digest {input:?}: unsupported algorithm {algorithm:?} (supported: sha256, sha512)"
    )]
    UnsupportedAlgorithm {
        /// The whole input.
        input: String,
        /// The algorithm part.
        algorithm: String,
    },
    /// Hex part of the wrong length for the algorithm.
    #[error("invalid digest {input:?}: {algorithm} needs {expected} hex characters, got {actual}")]
    Length {
        /// The whole input.
        input: String,
        /// The algorithm.
        algorithm: Algorithm,
        /// Required hex length.
        expected: usize,
        /// Hex length found.
        actual: usize,
    },
    /// Hex part containing something other than `[0-9a-f]`.
    #[error("invalid digest {0:?}: the hash must be lowercase hexadecimal [0-9a-f]")]
    Hex(String),
}

/// A validated content digest such as `sha256:e3b0c442...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex`, checking the algorithm and the hex length.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_owned()))?;
        if !is_algorithm_grammar(alg) || hex.is_empty() {
            return Err(DigestError::Format(s.to_owned()));
        }
        let algorithm =
            Algorithm::from_name(alg).ok_or_else(|| DigestError::UnsupportedAlgorithm {
                input: s.to_owned(),
                algorithm: alg.to_owned(),
            })?;
        Digest::from_parts(algorithm, hex).map_err(|e| match e {
            DigestError::Length {
                algorithm,
                expected,
                actual,
                ..
            } => DigestError::Length {
                input: s.to_owned(),
                algorithm,
                expected,
                actual,
            },
            DigestError::Hex(_) => DigestError::Hex(s.to_owned()),
            other => other,
        })
    }

    /// Builds a digest from an algorithm and its hex encoding, validating the hex.
    pub fn from_parts(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        if hex.len() != algorithm.hex_len() {
            return Err(DigestError::Length {
                input: format!("{algorithm}:{hex}"),
                algorithm,
                expected: algorithm.hex_len(),
                actual: hex.len(),
            });
        }
        if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Hex(format!("{algorithm}:{hex}")));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }

    /// Computes the digest of `data` with `algorithm`.
    pub fn of_bytes(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = Hasher::new(algorithm);
        h.update(data);
        h.finish()
    }

    /// The hash algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex encoding of the hash (no algorithm prefix).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*` (OCI algorithm grammar).
fn is_algorithm_grammar(s: &str) -> bool {
    let mut expect_alpha = true;
    for b in s.bytes() {
        if expect_alpha {
            if !b.is_ascii_alphabetic() {
                return false;
            }
            expect_alpha = false;
        } else if matches!(b, b'-' | b'_' | b'+' | b'.') {
            expect_alpha = true;
        } else if !b.is_ascii_alphanumeric() {
            return false;
        }
    }
    !expect_alpha
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

enum HasherState {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// Incremental hasher producing a [`Digest`], for content whose digest is
/// not known in advance (the uncompressed stream of an imported layer).
pub(crate) struct Hasher {
    state: HasherState,
}

impl Hasher {
    pub(crate) fn new(algorithm: Algorithm) -> Hasher {
        let state = match algorithm {
            Algorithm::Sha256 => HasherState::Sha256(Sha256::new()),
            Algorithm::Sha512 => HasherState::Sha512(Sha512::new()),
        };
        Hasher { state }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            HasherState::Sha256(h) => h.update(data),
            HasherState::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> Digest {
        let (algorithm, bytes) = match self.state {
            HasherState::Sha256(h) => (Algorithm::Sha256, h.finalize().to_vec()),
            HasherState::Sha512(h) => (Algorithm::Sha512, h.finalize().to_vec()),
        };
        Digest {
            algorithm,
            hex: to_hex(&bytes),
        }
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0f)] as char);
    }
    s
}

/// Content failed verification against its descriptor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The bytes hash to a different digest.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    DigestMismatch {
        /// Digest the content was supposed to have.
        expected: Digest,
        /// Digest the content actually has.
        actual: Digest,
    },
    /// The byte count differs from the expected size.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// Digest the content was supposed to have.
        digest: Digest,
        /// Expected size in bytes.
        expected: u64,
        /// Bytes received (for an overrun, at least this many).
        actual: u64,
    },
}

/// An [`io::Write`] sink that hashes its input and checks it at [`finish`](Verifier::finish).
///
/// ```
/// use std::io::Write;
/// use pelagos_image::{Algorithm, Digest, Verifier};
/// let expected = Digest::of_bytes(Algorithm::Sha256, b"hello");
/// let mut v = Verifier::new(expected.clone(), Some(5));
/// v.write_all(b"hello").unwrap();
/// assert_eq!(v.finish().unwrap(), 5);
/// ```
pub struct Verifier {
    expected: Digest,
    expected_size: Option<u64>,
    hasher: Hasher,
    written: u64,
    overrun: bool,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("bytes_written", &self.bytes_written())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier for content that must hash to `expected` and, if given, be
    /// exactly `expected_size` bytes long.
    pub fn new(expected: Digest, expected_size: Option<u64>) -> Verifier {
        let hasher = Hasher::new(expected.algorithm());
        Verifier {
            expected,
            expected_size,
            hasher,
            written: 0,
            overrun: false,
        }
    }

    /// Bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Checks size and digest; returns the number of bytes on success.
    pub fn finish(self) -> Result<u64, VerifyError> {
        if let Some(expected) = self.expected_size {
            if self.overrun || self.written != expected {
                return Err(VerifyError::SizeMismatch {
                    digest: self.expected,
                    expected,
                    actual: self.written,
                });
            }
        }
        let actual = self.hasher.finish();
        if actual != self.expected {
            return Err(VerifyError::DigestMismatch {
                expected: self.expected,
                actual,
            });
        }
        Ok(self.written)
    }
}

impl io::Write for Verifier {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if let Some(expected) = self.expected_size {
            if self.written.saturating_add(len) > expected {
                self.overrun = true;
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    VerifyError::SizeMismatch {
                        digest: self.expected.clone(),
                        expected,
                        actual: self.written.saturating_add(len),
                    },
                ));
            }
        }
        self.hasher.update(buf);
        self.written += len;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_display_round_trip() {
        let s = format!("sha256:{EMPTY_SHA256}");
        let d = Digest::parse(&s).unwrap();
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.hex(), EMPTY_SHA256);
        assert_eq!(d.to_string(), s);
        let s512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(Digest::parse(&s512).unwrap().to_string(), s512);
    }

    #[test]
    fn of_bytes_known_values() {
        assert_eq!(Digest::of_bytes(Algorithm::Sha256, b"").hex(), EMPTY_SHA256);
        assert_eq!(
            Digest::of_bytes(Algorithm::Sha512, b"abc").hex(),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            ("", "expected <algorithm>:<hex>"),
            ("sha256", "expected <algorithm>:<hex>"),
            ("sha256:", "expected <algorithm>:<hex>"),
            (":abc", "expected <algorithm>:<hex>"),
            ("1sha:abc", "expected <algorithm>:<hex>"),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                "unsupported algorithm \"md5\"",
            ),
            ("sha384:abc", "unsupported algorithm"),
            ("sha256:abc", "needs 64 hex characters, got 3"),
            ("sha512:abc", "needs 128 hex characters, got 3"),
        ];
        for (input, want) in cases {
            let err = Digest::parse(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input:?}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input:?}: {err}");
        }
        let upper = format!("sha256:{}", EMPTY_SHA256.to_uppercase());
        assert!(matches!(Digest::parse(&upper), Err(DigestError::Hex(_))));
        let bad = format!("sha256:{}g", &EMPTY_SHA256[..63]);
        assert!(matches!(Digest::parse(&bad), Err(DigestError::Hex(_))));
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of_bytes(Algorithm::Sha256, b"");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"sha256:{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn verifier_accepts_matching_content_in_pieces() {
        let data = b"the quick brown fox";
        let d = Digest::of_bytes(Algorithm::Sha256, data);
        let mut v = Verifier::new(d, Some(data.len() as u64));
        for chunk in data.chunks(3) {
            v.write_all(chunk).unwrap();
        }
        assert_eq!(v.finish().unwrap(), data.len() as u64);
    }

    #[test]
    fn verifier_without_size() {
        let d = Digest::of_bytes(Algorithm::Sha512, b"xyz");
        let mut v = Verifier::new(d, None);
        v.write_all(b"xyz").unwrap();
        assert_eq!(v.finish().unwrap(), 3);
    }

    #[test]
    fn verifier_digest_mismatch() {
        let d = Digest::of_bytes(Algorithm::Sha256, b"good");
        let mut v = Verifier::new(d.clone(), Some(4));
        v.write_all(b"evil").unwrap();
        match v.finish() {
            Err(VerifyError::DigestMismatch { expected, actual }) => {
                assert_eq!(expected, d);
                assert_eq!(actual, Digest::of_bytes(Algorithm::Sha256, b"evil"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn verifier_short_content() {
        let d = Digest::of_bytes(Algorithm::Sha256, b"good");
        let mut v = Verifier::new(d, Some(10));
        v.write_all(b"good").unwrap();
        assert!(matches!(
            v.finish(),
            Err(VerifyError::SizeMismatch {
                expected: 10,
                actual: 4,
                ..
            })
        ));
    }

    #[test]
    fn verifier_refuses_overrun_early() {
        let d = Digest::of_bytes(Algorithm::Sha256, b"good");
        let mut v = Verifier::new(d, Some(4));
        v.write_all(b"goo").unwrap();
        let err = v.write_all(b"ds").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(v.bytes_written(), 3);
        assert!(matches!(v.finish(), Err(VerifyError::SizeMismatch { .. })));
    }
}
