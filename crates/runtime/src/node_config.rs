//! The node's settings for pelagos-runtime: the `[runtime]` table of
//! `/etc/pelagos/config.toml` (other tables belong to the engine and are ignored), read once
//! by the commands that create or change a container.

use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

/// The `[runtime]` table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// Limits this node's cgroup v2 tree cannot enforce (a controller it lacks, as the cpu
    /// shares every CRI sandbox carries on a hybrid host) are skipped with a warning instead
    /// of failing `create`. A container's `run.pelagos.cgroup.skip-unavailable` annotation
    /// (`true`/`false`) overrides it.
    #[serde(default)]
    pub cgroup_skip_unavailable: bool,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    runtime: NodeSettings,
}

impl NodeSettings {
    /// The settings in `path`; all defaults when it does not exist.
    pub fn read(path: &Path) -> Result<NodeSettings> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        Self::parse(&text).with_context(|| format!("invalid configuration {}", path.display()))
    }

    fn parse(text: &str) -> Result<NodeSettings> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| {
            // toml's own text spans several lines (a source excerpt); errors here are one line.
            let line = e
                .span()
                .map_or(0, |s| text[..s.start].matches('\n').count() + 1);
            anyhow::anyhow!("line {line}: {}", e.message().trim())
        })?;
        Ok(file.runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_table_alone_is_read() {
        let text = "[network]\nbip = \"10.1.0.1/24\"\n[runtime]\ncgroup_skip_unavailable = true\n";
        assert!(NodeSettings::parse(text).unwrap().cgroup_skip_unavailable);
        assert_eq!(NodeSettings::parse("").unwrap(), NodeSettings::default());
        assert_eq!(
            NodeSettings::parse("[registries]\ninsecure = []\n").unwrap(),
            NodeSettings::default()
        );
    }

    #[test]
    fn mistakes_are_named() {
        for bad in [
            "[runtime]\ncgroup_skip_unavailable = \"yes\"\n",
            "[runtime]\ncgroup_skip_unavailble = true\n",
            "[runtime\n",
        ] {
            assert!(NodeSettings::parse(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_missing_file_is_the_defaults() {
        let got = NodeSettings::read(Path::new("/nonexistent/pelagos/config.toml")).unwrap();
        assert_eq!(got, NodeSettings::default());
    }
}
