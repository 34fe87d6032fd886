//! Container ids, checked once where they enter (a command line, a saved record) against
//! runc's rule. Every path under the state root is built from a [`ContainerId`], so an id such
//! as `../x` can never name a directory outside it.

use std::ffi::OsStr;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// runc's limit on an id's length, in bytes.
pub const MAX_ID_LEN: usize = 1024;

/// The rule, as error messages state it.
pub const ID_RULE: &str = "only letters, digits and _ + - . are allowed";

/// An id that passed [`ContainerId::parse`]: letters, digits, `_ + - .`, not `.` or `..`, at
/// most [`MAX_ID_LEN`] bytes. A single path component, never a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContainerId(String);

impl ContainerId {
    pub fn parse(id: &str) -> Result<ContainerId> {
        let bad = |reason| Error::InvalidId {
            id: id.to_string(),
            reason,
        };
        if id.is_empty() {
            return Err(bad("it is empty; ids have 1 to 1024 characters"));
        }
        if id == "." || id == ".." {
            return Err(bad("\".\" and \"..\" are not allowed"));
        }
        if id.len() > MAX_ID_LEN {
            return Err(bad("it is longer than 1024 bytes"));
        }
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.');
        if !id.bytes().all(allowed) {
            return Err(bad(ID_RULE));
        }
        Ok(ContainerId(id.to_string()))
    }

    /// An id as the kernel hands it over (a command line, a directory entry): bytes that are
    /// not UTF-8 break the rule too, and the message shows them escaped.
    pub fn parse_os(id: &OsStr) -> Result<ContainerId> {
        match id.to_str() {
            Some(text) => ContainerId::parse(text),
            None => Err(Error::InvalidId {
                id: id.to_string_lossy().into_owned(),
                reason: ID_RULE,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for ContainerId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for ContainerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContainerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ContainerId {
    type Err = Error;
    fn from_str(s: &str) -> Result<ContainerId> {
        ContainerId::parse(s)
    }
}

impl TryFrom<String> for ContainerId {
    type Error = Error;
    fn try_from(s: String) -> Result<ContainerId> {
        ContainerId::parse(&s)
    }
}

impl From<ContainerId> for String {
    fn from(id: ContainerId) -> String {
        id.0
    }
}

impl PartialEq<str> for ContainerId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ContainerId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn valid_ids() {
        for good in ["abc-1.2_3+x", "a", ".a", "..a", &"x".repeat(MAX_ID_LEN)] {
            assert_eq!(ContainerId::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn hostile_ids_name_the_id_and_the_rule() {
        let long = "x".repeat(MAX_ID_LEN + 1);
        for bad in [
            "", ".", "..", "../x", "a/b", "/abs", "a b", "ü", "a\0b", &long,
        ] {
            let err = ContainerId::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid container id "), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        let err = ContainerId::parse("../x").unwrap_err().to_string();
        assert_eq!(err, format!("invalid container id \"../x\": {ID_RULE}"));
    }

    #[test]
    fn non_utf8_is_refused() {
        let err = ContainerId::parse_os(OsStr::from_bytes(b"a\xffb")).unwrap_err();
        assert!(err.to_string().contains(ID_RULE), "{err}");
    }

    #[test]
    fn deserializing_checks_the_rule() {
        assert!(serde_json::from_str::<ContainerId>("\"../x\"").is_err());
        let id: ContainerId = serde_json::from_str("\"ok\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"ok\"");
    }
}
