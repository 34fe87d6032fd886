//! OCI and Docker media types, and the lenient JSON shapes of manifests,
//! indexes and descriptors that the store and the archive formats read and write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// Media type strings of the OCI image spec and Docker's registry schema 2.
pub mod media {
    /// OCI image manifest.
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    /// OCI image config.
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI uncompressed layer.
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI gzip layer.
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI zstd layer.
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// Docker schema 2 manifest.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker gzip layer.
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

    /// Whether `mt` names an image manifest (OCI or Docker).
    pub(crate) fn is_manifest(mt: &str) -> bool {
        matches!(base(mt), OCI_MANIFEST | DOCKER_MANIFEST)
    }

    /// Whether `mt` names an index / manifest list.
    pub(crate) fn is_index(mt: &str) -> bool {
        matches!(base(mt), OCI_INDEX | DOCKER_MANIFEST_LIST)
    }

    /// Whether `mt` is certainly not a layer: manifests, indexes, configs and
    /// other JSON documents.
    pub(crate) fn is_non_layer(mt: &str) -> bool {
        let b = base(mt);
        is_manifest(b)
            || is_index(b)
            || matches!(b, OCI_CONFIG | DOCKER_CONFIG)
            || b.ends_with("+json")
            || b.ends_with("/json")
    }

    /// The media type without parameters (`; charset=...`).
    fn base(mt: &str) -> &str {
        mt.split(';').next().unwrap_or("").trim()
    }
}

/// The OCI spec's `os/arch[/variant]` of this host, as Go names them.
pub fn host_platform() -> (&'static str, &'static str, Option<&'static str>) {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "powerpc64" => ("ppc64", None),
        "s390x" => ("s390x", None),
        "riscv64" => ("riscv64", None),
        "mips64" => ("mips64", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    ("linux", arch, variant)
}

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    pub(crate) fn display(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// An image manifest (OCI or Docker schema 2; the shapes agree).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// An image index / manifest list.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// Picks the manifest for this host from an index's entries: os and
/// architecture must match; a matching variant is preferred, and an entry
/// without a variant is accepted.
pub(crate) fn select_platform(manifests: &[Descriptor]) -> Option<&Descriptor> {
    let (os, arch, variant) = host_platform();
    let candidates: Vec<&Descriptor> = manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
        .collect();
    let exact = candidates.iter().copied().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.variant.as_deref() == variant)
    });
    exact
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|d| d.platform.as_ref().is_some_and(|p| p.variant.is_none()))
        })
        .or_else(|| candidates.first().copied())
        .or_else(|| match manifests {
            // A single entry without any platform: nothing else to choose.
            [only] if only.platform.is_none() => Some(only),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;

    fn desc(os: &str, arch: &str, variant: Option<&str>, n: u8) -> Descriptor {
        Descriptor {
            media_type: Some(media::OCI_MANIFEST.to_owned()),
            digest: Digest::of_bytes(Algorithm::Sha256, &[n]),
            size: 1,
            annotations: None,
            platform: Some(Platform {
                architecture: arch.to_owned(),
                os: os.to_owned(),
                variant: variant.map(str::to_owned),
            }),
        }
    }

    #[test]
    fn selects_host_platform() {
        let (os, arch, _) = host_platform();
        let list = vec![
            desc("linux", "s390x-not-host", None, 1),
            desc(os, arch, None, 2),
            desc("windows", arch, None, 3),
        ];
        assert_eq!(select_platform(&list).unwrap().digest, list[1].digest);
        assert!(select_platform(&list[..1]).is_none());
    }

    #[test]
    fn classifies_media_types() {
        assert!(media::is_manifest(media::DOCKER_MANIFEST));
        assert!(media::is_index(media::OCI_INDEX));
        assert!(media::is_non_layer(media::OCI_CONFIG));
        assert!(media::is_non_layer("application/json; charset=utf-8"));
        assert!(!media::is_non_layer(media::OCI_LAYER_GZIP));
        assert!(!media::is_non_layer("application/octet-stream"));
    }
}
