//! Ethernet addresses: parsed from and printed as `02:42:ac:11:00:02`, and Docker's
//! derivation of a container's MAC from its IPv4 address.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// A 48-bit Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// Docker's MAC for an IPv4 address: locally administered `02:42` and the four bytes.
    pub fn from_ipv4(ip: Ipv4Addr) -> MacAddress {
        let [a, b, c, d] = ip.octets();
        MacAddress([0x02, 0x42, a, b, c, d])
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddress {
    type Err = Error;

    /// Six colon-separated hex bytes; a multicast address is refused (Docker's `--mac-address`).
    fn from_str(text: &str) -> Result<MacAddress, Error> {
        let invalid = || Error::Invalid(format!("{text} is not a valid mac address"));
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().filter(|p| p.len() == 2).ok_or_else(invalid)?;
            *byte = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        if bytes[0] & 1 == 1 {
            return Err(Error::Invalid(format!(
                "{text} is a multicast address: a container needs a unicast one"
            )));
        }
        Ok(MacAddress(bytes))
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MacAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MacAddress, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_derivation_and_text_form() {
        let m = MacAddress::from_ipv4(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(m.to_string(), "02:42:ac:11:00:02");
        assert_eq!("02:42:ac:11:00:02".parse::<MacAddress>().unwrap(), m);
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"02:42:ac:11:00:02\"");
        for bad in [
            "",
            "02:42",
            "02:42:ac:11:00:02:03",
            "zz:42:ac:11:00:02",
            "01:00:5e:00:00:01",
        ] {
            assert!(bad.parse::<MacAddress>().is_err(), "{bad}");
        }
    }
}
