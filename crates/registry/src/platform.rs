//! Image platforms (`linux/amd64`, `linux/arm64/v8`) and the matching rules used to pick an
//! entry of an OCI index or Docker manifest list, normalised the way containerd does.

use std::fmt;

/// A platform string such as `linux/amd64` is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {input:?}: {message}")]
pub struct PlatformError {
    /// The input.
    pub input: String,
    /// What is wrong.
    pub message: String,
}

/// An OS / CPU architecture / optional variant triple, as in an index entry's `platform`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// GOARCH spelling: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// CPU variant: `v8` for arm64, `v7`/`v6` for arm, `v2`/`v3` for amd64.
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the running machine (Linux, this binary's architecture).
    pub fn host() -> Platform {
        // One table of Go architecture names for the whole project: the image store's.
        let (_, architecture, variant) = pelagos_image::host_platform();
        Platform {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]`; architecture aliases (`x86_64`, `aarch64`, `armhf`) are
    /// normalised to GOARCH names.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let err = |message: &str| PlatformError {
            input: s.to_owned(),
            message: message.to_owned(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(err("expected os/arch or os/arch/variant, e.g. linux/amd64"));
        }
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("empty component"));
        }
        let valid = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !parts.iter().all(|p| valid(p)) {
            return Err(err(
                "components may only contain letters, digits, '_' and '-'",
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }

    /// Builds a platform from its parts, normalising names.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let os = os.to_ascii_lowercase();
        let arch = architecture.to_ascii_lowercase();
        let variant = variant
            .filter(|v| !v.is_empty())
            .map(|v| v.to_ascii_lowercase());
        let (architecture, variant) = match arch.as_str() {
            "x86_64" | "x86-64" => ("amd64".to_owned(), variant),
            "aarch64" => ("arm64".to_owned(), variant),
            "armhf" => ("arm".to_owned(), Some("v7".to_owned())),
            "armel" => ("arm".to_owned(), Some("v6".to_owned())),
            "i386" | "i686" | "x86" => ("386".to_owned(), variant),
            _ => (arch, variant),
        };
        // "8" and "v8" are both seen in the wild for arm64.
        let variant = variant.map(|v| {
            if v.bytes().all(|b| b.is_ascii_digit())
                && matches!(architecture.as_str(), "arm" | "arm64")
            {
                format!("v{v}")
            } else {
                v
            }
        });
        Platform {
            os,
            architecture,
            variant,
        }
    }

    /// Variant with the architecture's default made explicit (`arm64` → `v8`, `arm` → `v7`,
    /// `amd64` → `v1`), so that `linux/arm64` and `linux/arm64/v8` compare equal.
    fn effective_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            ("amd64", None) => Some("v1"),
            (_, v) => v,
        }
    }

    /// Whether an index entry for `entry` can serve a request for `self`: same OS and
    /// architecture, and the same (effective) variant when the request names one or the
    /// architecture has a default variant.
    pub fn matches(&self, entry: &Platform) -> bool {
        if self.os != entry.os || self.architecture != entry.architecture {
            return false;
        }
        match (self.variant.as_deref(), self.effective_variant()) {
            // No variant asked for, and none implied: any variant will do.
            (None, None) => true,
            _ => self.effective_variant() == entry.effective_variant(),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for s in [
            "linux/amd64",
            "linux/arm64/v8",
            "linux/arm/v6",
            "windows/amd64",
        ] {
            assert_eq!(Platform::parse(s).unwrap().to_string(), s);
        }
        let p = Platform::parse("Linux/x86_64").unwrap();
        assert_eq!(p.to_string(), "linux/amd64");
        assert_eq!(
            Platform::parse("linux/aarch64/8").unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn parse_rejects_malformed() {
        for s in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
        ] {
            let err = Platform::parse(s).unwrap_err();
            assert_eq!(err.input, s);
            assert!(err.to_string().contains(&format!("{s:?}")), "{err}");
            let wrapped = crate::RegistryError::from(err);
            assert!(
                wrapped.to_string().starts_with("invalid platform"),
                "{wrapped}"
            );
        }
    }

    #[test]
    fn default_variants_match() {
        let arm64 = Platform::parse("linux/arm64").unwrap();
        let arm64v8 = Platform::parse("linux/arm64/v8").unwrap();
        assert!(arm64.matches(&arm64v8) && arm64v8.matches(&arm64));
        let armv7 = Platform::parse("linux/arm/v7").unwrap();
        let armv6 = Platform::parse("linux/arm/v6").unwrap();
        let arm = Platform::parse("linux/arm").unwrap();
        assert!(arm.matches(&armv7));
        assert!(!arm.matches(&armv6));
        assert!(!armv7.matches(&armv6));
        let amd64 = Platform::parse("linux/amd64").unwrap();
        assert!(!amd64.matches(&arm64));
        assert!(!amd64.matches(&Platform::parse("windows/amd64").unwrap()));
        // A variant-less request on an architecture without a default takes any variant.
        let riscv = Platform::parse("linux/riscv64").unwrap();
        assert!(riscv.matches(&Platform::parse("linux/riscv64/rva22").unwrap()));
    }

    #[test]
    fn host_is_linux() {
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        assert!(h.matches(&h));
    }
}
