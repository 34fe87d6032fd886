//! Image references, parsed and normalised the way Docker does it.
//!
//! This follows `github.com/distribution/reference` (`ParseNormalizedNamed`
//! followed by `TagNameOnly`), which is what `docker pull` uses:
//!
//! | input                         | canonical form                              |
//! |-------------------------------|---------------------------------------------|
//! | `busybox`                     | `docker.io/library/busybox:latest`          |
//! | `user/app`                    | `docker.io/user/app:latest`                 |
//! | `index.docker.io/busybox`     | `docker.io/library/busybox:latest`          |
//! | `localhost:5000/a/b:tag`      | `localhost:5000/a/b:tag`                    |
//! | `name@sha256:<hex>`           | `docker.io/library/name@sha256:<hex>`       |
//!
//! Rules:
//! * The first `/`-separated component is a registry host if it contains a
//!   `.` or `:`, is exactly `localhost`, or contains an uppercase letter
//!   (repository paths cannot, so Docker treats it as a host name). Otherwise
//!   the registry is `docker.io`, and a single-component name on Docker Hub
//!   gets the `library/` prefix. `index.docker.io` is an alias of `docker.io`.
//! * Host: dot-separated labels `[a-zA-Z0-9]` / `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`
//!   or a bracketed IPv6 address, optionally followed by `:<port digits>`.
//! * Repository path components: `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`,
//!   lowercase only.
//! * Tag: `[\w][\w.-]{0,127}`. Digest: see [`Digest`].
//! * `registry/repository` is at most 255 characters.
//! * A bare 64-character hex string is rejected (it is an image ID, not a name).
//! * With neither tag nor digest the tag defaults to `latest`; with a digest
//!   and no tag, there is no tag.
//!
//! One deliberate difference: for a first component that contains a `.` but
//! is not a valid host (`a.b_c/foo`), Docker silently yields a reference with
//! an empty domain; here it is an error.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The canonical name of Docker Hub.
pub const DOCKER_HUB: &str = "docker.io";
/// Legacy alias of Docker Hub, normalised to [`DOCKER_HUB`].
pub(crate) const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Host that serves the registry API for Docker Hub.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Maximum length of `registry/repository`.
pub(crate) const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Maximum length of a tag.
pub(crate) const TAG_LENGTH_MAX: usize = 128;

/// A reference could not be parsed; names the input and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {input:?}: {kind}")]
pub struct ReferenceError {
    /// The string given to [`Reference::parse`].
    pub input: String,
    /// What is wrong with it.
    pub kind: ReferenceErrorKind,
}

/// The specific problem with a reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceErrorKind {
    /// Empty input.
    #[error("reference is empty")]
    Empty,
    /// A bare 64-character hex string.
    #[error("a 64-character hexadecimal string is an image ID, not a repository name")]
    HexIdentifier,
    /// The repository path contains uppercase letters.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// The registry host is not a valid `host[:port]`.
    #[error(
        "registry host {0:?} is not a valid host name, IPv4 or [IPv6] address with optional :port"
    )]
    InvalidRegistry(String),
    /// The repository path is empty or has an empty component (`a//b`, `a/`).
    #[error("repository path {0:?} has an empty component")]
    EmptyComponent(String),
    /// A repository path component breaks the grammar.
    #[error("repository path component {0:?} is invalid: it must be lowercase letters and digits, separated by single '.', '_' or '__' or by runs of '-', and must not start or end with a separator")]
    InvalidComponent(String),
    /// `registry/repository` is too long.
    #[error("name {name:?} is {len} characters long, the maximum is {NAME_TOTAL_LENGTH_MAX}")]
    NameTooLong {
        /// The full `registry/repository` name.
        name: String,
        /// Its length.
        len: usize,
    },
    /// The tag breaks `[\w][\w.-]{0,127}`.
    #[error("tag {0:?} is invalid: it must be 1 to 128 characters from [A-Za-z0-9_.-] and must not start with '.' or '-'")]
    InvalidTag(String),
    /// The digest part is invalid.
    #[error("{0}")]
    InvalidDigest(DigestError),
    /// More than one `@`.
    #[error("more than one '@' (a reference holds at most one digest)")]
    MultipleDigests,
}

/// A normalised image reference: `registry/repository[:tag][@digest]`.
///
/// Build one with [`Reference::parse`], which validates and normalises; the
/// fields are public for reading and pattern matching, and a value assembled
/// by hand is not re-validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any: `docker.io`, `localhost:5000`.
    pub registry: String,
    /// Repository path, e.g. `library/busybox`.
    pub repository: String,
    /// Tag; `latest` when the input had neither tag nor digest, `None` when it
    /// had a digest and no tag.
    pub tag: Option<String>,
    /// Content digest, if the input pinned one.
    pub digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises a reference the way `docker pull` does.
    pub fn parse(input: &str) -> Result<Reference, ReferenceError> {
        parse_inner(input).map_err(|kind| ReferenceError {
            input: input.to_owned(),
            kind,
        })
    }

    /// Docker's short form: `busybox:latest`, `user/app:v1`,
    /// `localhost:5000/a/b:tag`, `busybox@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_digest(&mut s);
        s
    }

    /// Docker's short form of the name alone (no tag or digest).
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            match self.repository.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.repository.clone(),
            }
        } else {
            format!("{}/{}", self.registry, self.repository)
        }
    }

    /// The full name without tag or digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Host to contact for the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    fn push_tag_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn parse_inner(input: &str) -> Result<Reference, ReferenceErrorKind> {
    if input.is_empty() {
        return Err(ReferenceErrorKind::Empty);
    }
    if input.len() == 64
        && input
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(ReferenceErrorKind::HexIdentifier);
    }

    let (name_tag, digest) = match input.split_once('@') {
        Some((_, d)) if d.contains('@') => return Err(ReferenceErrorKind::MultipleDigests),
        Some((nt, d)) => (
            nt,
            Some(Digest::parse(d).map_err(ReferenceErrorKind::InvalidDigest)?),
        ),
        None => (input, None),
    };

    // A ':' after the last '/' separates the tag; one before it is a port.
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return Err(ReferenceErrorKind::InvalidTag(tag.to_owned()));
        }
    }

    let (registry, repository) = split_docker_domain(name);
    if repository.to_lowercase() != repository {
        return Err(ReferenceErrorKind::Uppercase);
    }
    if !is_host(&registry) {
        return Err(ReferenceErrorKind::InvalidRegistry(registry));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err(ReferenceErrorKind::EmptyComponent(repository));
        }
        if !is_path_component(component) {
            return Err(ReferenceErrorKind::InvalidComponent(component.to_owned()));
        }
    }
    let len = registry.len() + 1 + repository.len();
    if len > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceErrorKind::NameTooLong {
            name: format!("{registry}/{repository}"),
            len,
        });
    }

    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some(DEFAULT_TAG.to_owned()),
    };
    Ok(Reference {
        registry,
        repository,
        tag,
        digest,
    })
}

/// Docker's `splitDockerDomain`: decides whether the first component is a host.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((first, rest)) = name.split_once('/') else {
        return (DOCKER_HUB.to_owned(), format!("library/{name}"));
    };
    let (domain, remainder) = if first == "localhost" {
        (first, rest)
    } else if first == DOCKER_HUB || first == DOCKER_HUB_LEGACY {
        (DOCKER_HUB, rest)
    } else if first.contains(['.', ':']) || first.to_lowercase() != first {
        (first, rest)
    } else {
        return (DOCKER_HUB.to_owned(), name.to_owned());
    };
    if domain == DOCKER_HUB && !remainder.contains('/') {
        (domain.to_owned(), format!("library/{remainder}"))
    } else {
        (domain.to_owned(), remainder.to_owned())
    }
}

/// `[\w][\w.-]{0,127}`
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    match bytes.split_first() {
        Some((&first, rest)) => {
            bytes.len() <= TAG_LENGTH_MAX
                && word(first)
                && rest.iter().all(|&b| word(b) || b == b'.' || b == b'-')
        }
        None => false,
    }
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &bytes[start..i];
        let ok = matches!(sep, b"." | b"_" | b"__") || sep.iter().all(|&b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host(:port)?` where host is a domain name / IPv4 or a bracketed IPv6 address.
fn is_host(s: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(bracketed) = s.strip_prefix('[') {
        let Some((inner, rest)) = bracketed.split_once(']') else {
            return false;
        };
        let inner_ok =
            !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return inner_ok && (rest.is_empty() || rest.strip_prefix(':').is_some_and(port_ok));
    }
    match s.split_once(':') {
        Some((host, port)) => is_domain_name(host) && port_ok(port),
        None => is_domain_name(s),
    }
}

fn is_domain_name(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        match (b.first(), b.last()) {
            (Some(&f), Some(&l)) => {
                f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// (input, canonical, familiar)
    fn ok_cases() -> Vec<(String, String, String)> {
        let d = format!("sha256:{H}");
        let v = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
        vec![
            v(
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            v(
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            v("user/app", "docker.io/user/app:latest", "user/app:latest"),
            v("user/app:v2", "docker.io/user/app:v2", "user/app:v2"),
            v(
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            v(
                "docker.io/library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            v(
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            v(
                "index.docker.io/user/app:x",
                "docker.io/user/app:x",
                "user/app:x",
            ),
            v(
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            v(
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            v(
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
            ),
            v(
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
            v(
                "127.0.0.1:5000/x",
                "127.0.0.1:5000/x:latest",
                "127.0.0.1:5000/x:latest",
            ),
            v(
                "registry.example.com/a",
                "registry.example.com/a:latest",
                "registry.example.com/a:latest",
            ),
            v(
                "example:5000/a",
                "example:5000/a:latest",
                "example:5000/a:latest",
            ),
            v("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a:latest"),
            v("[fe80::1]/a", "[fe80::1]/a:latest", "[fe80::1]/a:latest"),
            v(
                "Registry.Example.com/a",
                "Registry.Example.com/a:latest",
                "Registry.Example.com/a:latest",
            ),
            v("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),
            // A single component with ':' is name:tag, never host:port.
            v(
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
            v(
                "localhost",
                "docker.io/library/localhost:latest",
                "localhost:latest",
            ),
            v(
                "my-reg.a-b.io/g",
                "my-reg.a-b.io/g:latest",
                "my-reg.a-b.io/g:latest",
            ),
            v(
                "x/a.b_c__d---e",
                "docker.io/x/a.b_c__d---e:latest",
                "x/a.b_c__d---e:latest",
            ),
            v(
                "busybox:_under.score-OK",
                "docker.io/library/busybox:_under.score-OK",
                "busybox:_under.score-OK",
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
            (
                format!("busybox:1.36@{d}"),
                format!("docker.io/library/busybox:1.36@{d}"),
                format!("busybox:1.36@{d}"),
            ),
            (
                format!("localhost:5000/a@{d}"),
                format!("localhost:5000/a@{d}"),
                format!("localhost:5000/a@{d}"),
            ),
            (
                format!("ghcr.io/o/r:t@sha512:{}", "0".repeat(128)),
                format!("ghcr.io/o/r:t@sha512:{}", "0".repeat(128)),
                format!("ghcr.io/o/r:t@sha512:{}", "0".repeat(128)),
            ),
        ]
    }

    #[test]
    fn docker_normalisation_table() {
        for (input, canonical, familiar) in ok_cases() {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), canonical, "canonical of {input}");
            assert_eq!(r.familiar(), familiar, "familiar of {input}");
            // Both forms parse back to the same reference.
            assert_eq!(Reference::parse(&canonical).unwrap(), r, "{canonical}");
            assert_eq!(Reference::parse(&familiar).unwrap(), r, "{familiar}");
        }
    }

    #[test]
    fn fields() {
        let r = Reference::parse("localhost:5000/a/b:tag").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "a/b");
        assert_eq!(r.tag.as_deref(), Some("tag"));
        assert_eq!(r.digest, None);
        assert_eq!(r.name(), "localhost:5000/a/b");

        let r = Reference::parse(&format!("busybox@sha256:{H}")).unwrap();
        assert_eq!(r.tag, None, "a digest suppresses the default tag");
        assert_eq!(r.digest.as_ref().map(|d| d.hex()), Some(H));
    }

    #[test]
    fn api_host() {
        assert_eq!(
            Reference::parse("busybox").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("index.docker.io/a/b").unwrap().api_host(),
            "registry-1.docker.io"
        );
        assert_eq!(
            Reference::parse("localhost:5000/a").unwrap().api_host(),
            "localhost:5000"
        );
        assert_eq!(
            Reference::parse("quay.io/a/b").unwrap().api_host(),
            "quay.io"
        );
    }

    #[test]
    fn error_table() {
        let long_component = "a".repeat(256);
        let long_name = format!("{}/{}", "a".repeat(127), "b".repeat(128));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "reference is empty"),
            ("Busybox".into(), "repository name must be lowercase"),
            (
                "docker.io/Library/busybox".into(),
                "repository name must be lowercase",
            ),
            (
                "localhost:5000/A".into(),
                "repository name must be lowercase",
            ),
            (H.into(), "is an image ID"),
            ("busybox:".into(), "tag \"\" is invalid"),
            ("busybox:.bad".into(), "tag \".bad\" is invalid"),
            ("busybox:-bad".into(), "tag \"-bad\" is invalid"),
            (format!("busybox:{}", "t".repeat(129)), "is invalid"),
            ("busybox:a/b".into(), "registry host \"busybox:a\""),
            (
                "localhost:port/a".into(),
                "registry host \"localhost:port\"",
            ),
            ("-bad.com/a".into(), "registry host \"-bad.com\""),
            ("a..b/c".into(), "registry host \"a..b\""),
            ("a.b_c/foo".into(), "registry host \"a.b_c\""),
            ("[::1/a".into(), "registry host"),
            ("a//b".into(), "has an empty component"),
            ("user/app/".into(), "has an empty component"),
            ("/busybox".into(), "has an empty component"),
            ("-busybox".into(), "component \"-busybox\" is invalid"),
            ("busybox-".into(), "component \"busybox-\" is invalid"),
            ("a/b..c".into(), "component \"b..c\" is invalid"),
            ("a/b___c".into(), "component \"b___c\" is invalid"),
            ("a/b._c".into(), "component \"b._c\" is invalid"),
            ("a/b c".into(), "component \"b c\" is invalid"),
            ("a/b+c".into(), "component \"b+c\" is invalid"),
            (
                long_component.clone(),
                "characters long, the maximum is 255",
            ),
            (long_name.clone(), "characters long, the maximum is 255"),
            (
                "busybox@sha256:abc".into(),
                "needs 64 hex characters, got 3",
            ),
            ("busybox@md5:abc".into(), "unsupported algorithm"),
            ("busybox@latest".into(), "expected <algorithm>:<hex>"),
            (
                format!("busybox@sha256:{}", H.to_uppercase()),
                "lowercase hexadecimal",
            ),
            (format!("a@sha256:{H}@sha256:{H}"), "more than one '@'"),
        ];
        for (input, want) in &cases {
            let err = Reference::parse(input).expect_err(input);
            let msg = err.to_string();
            assert!(
                msg.starts_with(&format!("invalid reference {input:?}: ")),
                "{msg}"
            );
            assert!(msg.contains(want), "{input:?}: got {msg:?}, want {want:?}");
        }
        assert_eq!(
            Reference::parse("Busybox").unwrap_err().to_string(),
            "invalid reference \"Busybox\": repository name must be lowercase"
        );
    }

    #[test]
    fn name_length_limit_is_inclusive() {
        // docker.io/ (10) + user/ (5) + 240 = 255
        let ok = format!("user/{}", "a".repeat(240));
        assert!(Reference::parse(&ok).is_ok());
        let too_long = format!("user/{}", "a".repeat(241));
        assert!(matches!(
            Reference::parse(&too_long).map_err(|e| e.kind),
            Err(ReferenceErrorKind::NameTooLong { len: 256, .. })
        ));
        // The tag does not count towards the name length.
        assert!(Reference::parse(&format!("{ok}:{}", "t".repeat(128))).is_ok());
    }

    #[test]
    fn serde_as_string() {
        let r = Reference::parse("busybox").unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), r);
        assert!(serde_json::from_str::<Reference>("\"Busybox\"").is_err());
    }

    #[test]
    fn grammar_helpers() {
        for ok in ["a", "0", "a.b", "a_b", "a__b", "a-b", "a---b", "a.b-c_d__e"] {
            assert!(is_path_component(ok), "{ok}");
        }
        for bad in [
            "", ".", "a.", "_a", "a-", "a..b", "a.-b", "a-.b", "A", "a___b",
        ] {
            assert!(!is_path_component(bad), "{bad}");
        }
        for ok in ["a", "_", "A", "a.b-c_d", &"x".repeat(128)] {
            assert!(is_tag(ok), "{ok}");
        }
        for bad in ["", ".a", "-a", "a:b", "a/b", "a+b", &"x".repeat(129)] {
            assert!(!is_tag(bad), "{bad}");
        }
        for ok in [
            "localhost",
            "a.b",
            "a-b.c:1",
            "[::1]",
            "[::1]:80",
            "1.2.3.4:5000",
        ] {
            assert!(is_host(ok), "{ok}");
        }
        for bad in [
            "", "a:", ":80", "a.b.", "a:b", "[]", "[::1]x", "[g::1]", "a_b",
        ] {
            assert!(!is_host(bad), "{bad}");
        }
    }
}
