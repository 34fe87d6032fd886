//! Annotation keys pelagos reads from `config.json`. A leaf module: it imports nothing from
//! the crate, so `error.rs` (which every file imports) can name them without an import circle.

/// Annotation by which a user opts out of cgroup limits this host cannot enforce.
pub const SKIP_UNAVAILABLE_ANNOTATION: &str = "run.pelagos.cgroup.skip-unavailable";

/// Whether limits the host cannot enforce are skipped: the container's annotation (`true` or
/// `false`) when it has one, else the node's default (a RuntimeClass cannot add annotations,
/// so a node sets it for every pod; one pod can still opt out).
pub fn skip_unavailable(
    annotations: Option<&std::collections::HashMap<String, String>>,
    node_default: bool,
) -> bool {
    match annotations
        .and_then(|a| a.get(SKIP_UNAVAILABLE_ANNOTATION))
        .map(String::as_str)
    {
        Some("true") => true,
        Some("false") => false,
        _ => node_default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_annotation_overrides_the_node() {
        let with = |v: &str| {
            std::collections::HashMap::from([(SKIP_UNAVAILABLE_ANNOTATION.to_string(), v.into())])
        };
        assert!(!skip_unavailable(None, false));
        assert!(skip_unavailable(None, true));
        assert!(skip_unavailable(Some(&with("true")), false));
        assert!(!skip_unavailable(Some(&with("false")), true));
        assert!(skip_unavailable(Some(&with("maybe")), true));
    }
}
