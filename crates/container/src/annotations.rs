//! Annotation keys pelagos reads from `config.json`. A leaf module: it imports nothing from
//! the crate, so `error.rs` (which every file imports) can name them without an import circle.

/// Annotation by which a user opts out of cgroup limits this host cannot enforce.
pub const SKIP_UNAVAILABLE_ANNOTATION: &str = "run.pelagos.cgroup.skip-unavailable";
