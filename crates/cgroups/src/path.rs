//! Resolution of OCI `linux.cgroupsPath` (cgroupfs and systemd `slice:prefix:name` forms) into a
//! normalized path relative to the cgroup v2 root, rejecting anything that could escape it.

use crate::error::CgroupError;

/// Parent of containers whose `cgroupsPath` is empty or relative.
pub const DEFAULT_PARENT: &str = "/pelagos";

/// Scope prefix used when `systemd` is requested without a `cgroupsPath`.
const DEFAULT_SCOPE_PREFIX: &str = "pelagos";

fn bad(path: &str, reason: impl Into<String>) -> CgroupError {
    CgroupError::InvalidPath {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Resolve `cgroups_path` for container `id` to a normalized path like `/pelagos/abc`.
pub(crate) fn resolve(
    cgroups_path: Option<&str>,
    systemd: bool,
    id: &str,
) -> Result<String, CgroupError> {
    let given = cgroups_path.filter(|p| !p.is_empty());
    if systemd {
        return match given {
            Some(p) => systemd_path(p),
            None => {
                check_id(id)?;
                Ok(format!("/system.slice/{DEFAULT_SCOPE_PREFIX}-{id}.scope"))
            }
        };
    }
    match given {
        None => {
            check_id(id)?;
            normalize(&format!("{DEFAULT_PARENT}/{id}"))
        }
        Some(p) if p.starts_with('/') => normalize(p),
        Some(p) => {
            // Validate the user's text on its own first so the error names what they wrote.
            normalize(p)?;
            normalize(&format!("{DEFAULT_PARENT}/{p}"))
        }
    }
}

fn check_id(id: &str) -> Result<(), CgroupError> {
    if id.is_empty() || id == "." || id == ".." || id.contains('/') || id.contains('\0') {
        return Err(bad(id, "the container id cannot be used as a cgroup name"));
    }
    Ok(())
}

/// Normalize a cgroup path: collapse slashes, drop "." components, make it absolute; reject
/// NUL bytes, ".." components and the root itself.
pub(crate) fn normalize(path: &str) -> Result<String, CgroupError> {
    if path.contains('\0') {
        return Err(bad(path, "contains a NUL byte"));
    }
    let mut out = String::with_capacity(path.len() + 1);
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                return Err(bad(
                    path,
                    "\"..\" components are not allowed (the path must stay inside the cgroup root)",
                ))
            }
            c => {
                out.push('/');
                out.push_str(c);
            }
        }
    }
    if out.is_empty() {
        return Err(bad(
            path,
            "resolves to the cgroup root, which a container cannot use",
        ));
    }
    Ok(out)
}

/// `slice:prefix:name` -> `/<expanded slice>/<prefix>-<name>.scope` (or `/<slice>/<name>` when
/// `name` is itself a `.slice`).
fn systemd_path(p: &str) -> Result<String, CgroupError> {
    let parts: Vec<&str> = p.split(':').collect();
    let [slice, prefix, name] = parts[..] else {
        return Err(bad(
            p,
            "systemd cgroups path must have the form \"slice:prefix:name\"",
        ));
    };
    for (what, v) in [("slice", slice), ("prefix", prefix), ("name", name)] {
        if v.contains('/') || v.contains('\0') || v == "." || v == ".." {
            return Err(bad(
                p,
                format!("the {what} {v:?} is not a valid systemd unit name part"),
            ));
        }
    }
    if name.is_empty() {
        return Err(bad(p, "the name part of \"slice:prefix:name\" is empty"));
    }
    let slice = if slice.is_empty() {
        "system.slice"
    } else {
        slice
    };
    let mut out = expand_slice(slice).map_err(|reason| bad(p, reason))?;
    let unit = if name.ends_with(".slice") {
        name.to_owned()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    out.push('/');
    out.push_str(&unit);
    normalize(&out)
}

/// systemd slice expansion: "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice", "-.slice" -> "".
fn expand_slice(slice: &str) -> Result<String, String> {
    let Some(stem) = slice.strip_suffix(".slice") else {
        return Err(format!("the slice {slice:?} does not end in \".slice\""));
    };
    if stem == "-" {
        return Ok(String::new());
    }
    if stem.is_empty() || stem.starts_with('-') || stem.ends_with('-') || stem.contains("--") {
        return Err(format!(
            "the slice {slice:?} is not a valid systemd slice name"
        ));
    }
    let mut out = String::new();
    let ends = stem
        .match_indices('-')
        .map(|(i, _)| i)
        .chain(std::iter::once(stem.len()));
    for end in ends {
        out.push('/');
        out.push_str(&stem[..end]);
        out.push_str(".slice");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_relative_absolute() {
        assert_eq!(resolve(None, false, "abc").unwrap(), "/pelagos/abc");
        assert_eq!(resolve(Some(""), false, "abc").unwrap(), "/pelagos/abc");
        assert_eq!(resolve(Some("/a/b"), false, "abc").unwrap(), "/a/b");
        assert_eq!(resolve(Some("//a/./b/"), false, "abc").unwrap(), "/a/b");
        assert_eq!(resolve(Some("a/b"), false, "abc").unwrap(), "/pelagos/a/b");
    }

    #[test]
    fn rejects_escapes() {
        for p in ["/a/../b", "..", "a/..", "/..", "../../etc"] {
            let e = resolve(Some(p), false, "x").unwrap_err().to_string();
            assert!(e.contains(&format!("{p:?}")) && e.contains(".."), "{e}");
        }
        assert!(resolve(Some("/a\0b"), false, "x")
            .unwrap_err()
            .to_string()
            .contains("NUL"));
        assert!(resolve(Some("/"), false, "x")
            .unwrap_err()
            .to_string()
            .contains("root"));
        assert!(resolve(None, false, "..").is_err());
        assert!(resolve(None, false, "a/b").is_err());
        assert!(resolve(None, false, "").is_err());
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            resolve(Some("machine-foo.slice:pelagos:abc"), true, "x").unwrap(),
            "/machine.slice/machine-foo.slice/pelagos-abc.scope"
        );
        assert_eq!(
            resolve(Some(":pelagos:abc"), true, "x").unwrap(),
            "/system.slice/pelagos-abc.scope"
        );
        assert_eq!(
            resolve(Some("-.slice:p:n"), true, "x").unwrap(),
            "/p-n.scope"
        );
        assert_eq!(
            resolve(Some("user.slice::n"), true, "x").unwrap(),
            "/user.slice/n.scope"
        );
        assert_eq!(
            resolve(Some("a-b-c.slice:p:d.slice"), true, "x").unwrap(),
            "/a.slice/a-b.slice/a-b-c.slice/d.slice"
        );
        assert_eq!(
            resolve(None, true, "abc").unwrap(),
            "/system.slice/pelagos-abc.scope"
        );
        for bad in [
            "foo",
            "a:b",
            "a:b:c:d",
            "foo:p:n",
            "-foo.slice:p:n",
            "a--b.slice:p:n",
            "a-.slice:p:n",
            "system.slice:p:",
            "system.slice:p:..",
            "system.slice:../x:n",
            "x/y.slice:p:n",
        ] {
            let e = resolve(Some(bad), true, "x").unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }
}
