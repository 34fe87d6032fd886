//! Media types and the small part of manifest / index JSON that resolving needs, parsed
//! leniently (unknown fields ignored) but with every descriptor's digest and size validated.

use pelagos_image::Digest;
use serde::Deserialize;

use crate::platform::Platform;

pub use pelagos_image::media::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};

/// Docker schema 1 manifest (refused).
pub(crate) const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
/// Docker schema 1 signed manifest (refused).
pub(crate) const DOCKER_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// Layer media types pelagos can unpack: OCI and Docker, uncompressed, gzip and zstd
/// (including the OCI "non-distributable" variants, which are ordinary tars).
pub(crate) const LAYER_MEDIA_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

/// What is sent in `Accept` for manifests. Schema 1 is included so that such an image is
/// recognised and refused by name instead of looking like a missing tag.
pub(crate) const ACCEPT: &[&str] = &[
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_MANIFEST_LIST,
    DOCKER_MANIFEST,
    DOCKER_SCHEMA1_SIGNED,
    DOCKER_SCHEMA1,
];

/// A blob as named by a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobDescriptor {
    /// Media type from the manifest.
    pub media_type: String,
    /// Content digest.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTop {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<RawDescriptor>>,
    #[serde(default)]
    config: Option<RawDescriptor>,
    #[serde(default)]
    layers: Option<Vec<RawDescriptor>>,
}

/// A parsed manifest document.
#[derive(Debug)]
pub(crate) enum Parsed {
    /// An image manifest: config and layers.
    Image {
        media_type: String,
        config: BlobDescriptor,
        layers: Vec<BlobDescriptor>,
    },
    /// An index / manifest list.
    Index {
        media_type: String,
        entries: Vec<IndexEntry>,
    },
    /// Docker schema 1.
    Schema1 { media_type: String },
}

/// One entry of an index.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    pub(crate) descriptor: BlobDescriptor,
    pub(crate) platform: Option<Platform>,
}

/// Why a manifest document could not be used.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// Not JSON, or JSON of the wrong shape; the message says where.
    Malformed(String),
    /// A media type outside the supported set.
    UnsupportedMediaType(String),
}

fn descriptor(raw: RawDescriptor, what: &str) -> Result<BlobDescriptor, ParseError> {
    let digest =
        Digest::parse(&raw.digest).map_err(|e| ParseError::Malformed(format!("{what}: {e}")))?;
    let size = u64::try_from(raw.size).map_err(|_| {
        ParseError::Malformed(format!("{what} {digest}: negative size {}", raw.size))
    })?;
    Ok(BlobDescriptor {
        media_type: raw.media_type,
        digest,
        size,
    })
}

/// Parses manifest bytes. The type comes from the document's `mediaType`; when that is absent
/// (allowed for OCI) it is inferred from the shape: `manifests` → OCI index, `layers` → OCI
/// manifest.
pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, ParseError> {
    let top: RawTop = serde_json::from_slice(bytes).map_err(|e| {
        ParseError::Malformed(format!(
            "manifest is not valid JSON of the expected shape: {e}"
        ))
    })?;
    if top.schema_version == Some(1) {
        return Ok(Parsed::Schema1 {
            media_type: top
                .media_type
                .unwrap_or_else(|| DOCKER_SCHEMA1_SIGNED.to_owned()),
        });
    }
    let media_type = match top.media_type.as_deref() {
        Some(m) if !m.is_empty() => m.to_owned(),
        _ if top.manifests.is_some() => OCI_INDEX.to_owned(),
        _ if top.layers.is_some() || top.config.is_some() => OCI_MANIFEST.to_owned(),
        _ => {
            return Err(ParseError::Malformed(
                "manifest has no mediaType, manifests or layers".into(),
            ))
        }
    };
    if top.schema_version != Some(2) {
        return Err(ParseError::Malformed(format!(
            "schemaVersion is {:?}, expected 2",
            top.schema_version
        )));
    }
    match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            let raw = top
                .manifests
                .ok_or_else(|| ParseError::Malformed("index has no \"manifests\"".into()))?;
            let entries = raw
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    let platform = r
                        .platform
                        .as_ref()
                        .map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()));
                    Ok(IndexEntry {
                        descriptor: descriptor(r, &format!("manifests[{i}]"))?,
                        platform,
                    })
                })
                .collect::<Result<Vec<_>, ParseError>>()?;
            Ok(Parsed::Index {
                media_type,
                entries,
            })
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = descriptor(
                top.config
                    .ok_or_else(|| ParseError::Malformed("manifest has no \"config\"".into()))?,
                "config",
            )?;
            let layers = top
                .layers
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, r)| descriptor(r, &format!("layers[{i}]")))
                .collect::<Result<Vec<_>, ParseError>>()?;
            Ok(Parsed::Image {
                media_type,
                config,
                layers,
            })
        }
        DOCKER_SCHEMA1 | DOCKER_SCHEMA1_SIGNED => Ok(Parsed::Schema1 { media_type }),
        other => Err(ParseError::UnsupportedMediaType(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn image_manifest_with_and_without_media_type() {
        for mt in [
            format!(r#""mediaType": "{DOCKER_MANIFEST}","#),
            String::new(),
        ] {
            let doc = format!(
                r#"{{"schemaVersion": 2, {mt} "config": {{"mediaType": "{OCI_CONFIG}", "digest": "{D1}", "size": 7}},
                    "layers": [{{"mediaType": "{}", "digest": "{D2}", "size": 9}}], "annotations": {{"x": "y"}}}}"#,
                LAYER_MEDIA_TYPES[1]
            );
            let Parsed::Image {
                media_type,
                config,
                layers,
            } = parse(doc.as_bytes()).unwrap()
            else {
                panic!("not an image")
            };
            assert_eq!(
                media_type,
                if mt.is_empty() {
                    OCI_MANIFEST
                } else {
                    DOCKER_MANIFEST
                }
            );
            assert_eq!(config.size, 7);
            assert_eq!(layers[0].digest.to_string(), D2);
        }
    }

    #[test]
    fn index_entries_carry_platforms() {
        let doc = format!(
            r#"{{"schemaVersion": 2, "manifests": [
                {{"mediaType": "{OCI_MANIFEST}", "digest": "{D1}", "size": 1, "platform": {{"os": "linux", "architecture": "arm64", "variant": "v8"}}}},
                {{"mediaType": "{OCI_MANIFEST}", "digest": "{D2}", "size": 2}}]}}"#
        );
        let Parsed::Index {
            media_type,
            entries,
        } = parse(doc.as_bytes()).unwrap()
        else {
            panic!("not an index")
        };
        assert_eq!(media_type, OCI_INDEX);
        assert_eq!(
            entries[0].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert!(entries[1].platform.is_none());
    }

    #[test]
    fn schema1_is_recognised() {
        let doc = br#"{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}"#;
        assert!(matches!(parse(doc).unwrap(), Parsed::Schema1 { .. }));
        let doc = format!(r#"{{"schemaVersion": 1, "mediaType": "{DOCKER_SCHEMA1}"}}"#);
        assert!(
            matches!(parse(doc.as_bytes()).unwrap(), Parsed::Schema1 { media_type } if media_type == DOCKER_SCHEMA1)
        );
    }

    #[test]
    fn bad_documents() {
        let neg = format!(
            r#"{{"schemaVersion": 2, "config": {{"digest": "{D1}", "size": -1}}, "layers": []}}"#
        );
        let bad_digest =
            r#"{"schemaVersion": 2, "config": {"digest": "sha256:zz", "size": 1}, "layers": []}"#;
        let other = r#"{"schemaVersion": 2, "mediaType": "application/vnd.example+json"}"#;
        assert!(matches!(parse(b"nope"), Err(ParseError::Malformed(_))));
        assert!(
            matches!(parse(neg.as_bytes()), Err(ParseError::Malformed(m)) if m.contains("negative size"))
        );
        assert!(
            matches!(parse(bad_digest.as_bytes()), Err(ParseError::Malformed(m)) if m.contains("config"))
        );
        assert!(
            matches!(parse(other.as_bytes()), Err(ParseError::UnsupportedMediaType(m)) if m == "application/vnd.example+json")
        );
    }
}
