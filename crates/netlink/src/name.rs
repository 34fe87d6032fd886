//! Interface names checked against the kernel's rules (`dev_valid_name`) before a request
//! goes out, so a bad name fails with a message about the name rather than `EINVAL`.

use crate::error::Error;

/// `IFNAMSIZ` less the terminating NUL.
pub const MAX_IFNAME_LEN: usize = 15;

/// Checks that `name` is a valid interface name: 1 to 15 bytes, not `.` or `..`, without `/`,
/// `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("reserved")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0')
    {
        Some("contains '/', ':', a NUL or whitespace")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_kernel_rules() {
        for good in ["eth0", "pelagos0", "veth1234567890a", "br-0.1"] {
            assert!(check_ifname(good).is_ok(), "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "eth0:1", "veth1234567890ab"] {
            assert!(
                matches!(check_ifname(bad), Err(Error::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
