//! Capability names and `--security-opt` values (`SecurityOpt`) with Docker's daemon rules,
//! parsed into what they ask for.

use crate::error::{Error, Result};

/// Every capability the kernel headers of this era know (for `--cap-add ALL`).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Whether a `CapAdd`/`CapDrop` entry means every capability.
pub fn is_all(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("all")
}

/// Normalises a capability name (`net_admin`, `CAP_NET_ADMIN`) or refuses an unknown one.
pub fn capability_name(name: &str) -> Result<String> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if ALL_CAPABILITIES.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(Error::Invalid(format!("unknown capability: {name:?}")))
    }
}

/// The seccomp profile asked for.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Seccomp {
    /// Docker's default profile.
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=<JSON>`: the profile's text (the CLI reads the file and sends its content,
    /// as Docker's does).
    Profile(String),
}

/// What `SecurityOpt` asks for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecurityOptions {
    /// `no-new-privileges[=true|false]`.
    pub no_new_privileges: bool,
    pub seccomp: Seccomp,
    /// `apparmor=PROFILE`; `None` also for `apparmor=unconfined`.
    pub apparmor: Option<String>,
    /// `systempaths=unconfined`: no masked or read-only paths.
    pub systempaths_unconfined: bool,
}

fn invalid(opt: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "invalid --security-opt (SecurityOpt) {opt:?}: {why}"
    ))
}

/// Parses `SecurityOpt` with the daemon's rules (`key=value`, the legacy `key:value`,
/// `no-new-privileges` alone). SELinux labels are refused but `label=disable`, which asks
/// for what pelagos does anyway.
pub fn security_options(list: &[String]) -> Result<SecurityOptions> {
    let mut out = SecurityOptions::default();
    for opt in list {
        let opt = opt.trim();
        if opt == "no-new-privileges" {
            out.no_new_privileges = true;
            continue;
        }
        if opt == "disable" {
            continue; // label disable, the old spelling
        }
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(|| {
                invalid(
                    opt,
                    "expected no-new-privileges[=BOOL], seccomp=unconfined|PROFILE, \
                     apparmor=PROFILE, label=disable or systempaths=unconfined",
                )
            })?;
        match key {
            "no-new-privileges" => {
                out.no_new_privileges =
                    parse_bool(value).ok_or_else(|| invalid(opt, "expected true or false"))?;
            }
            "seccomp" if value == "unconfined" => out.seccomp = Seccomp::Unconfined,
            "seccomp" => {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(value).map_err(
                    |e| {
                        invalid(
                            &format!("seccomp={}", short(value)),
                            &format!(
                                "decoding the seccomp profile failed: {e} (pelagos run reads \
                                 the file of --security-opt seccomp=FILE and sends its JSON)"
                            ),
                        )
                    },
                )?;
                out.seccomp = Seccomp::Profile(value.to_string());
            }
            "apparmor" if value.is_empty() => return Err(invalid(opt, "no profile named")),
            "apparmor" if value == "unconfined" => out.apparmor = None,
            "apparmor" => out.apparmor = Some(value.to_string()),
            "label" if value == "disable" => {}
            "label" => {
                return Err(invalid(
                    opt,
                    "SELinux labels are not supported (only label=disable)",
                ))
            }
            "systempaths" if value == "unconfined" => out.systempaths_unconfined = true,
            "systempaths" => return Err(invalid(opt, "only systempaths=unconfined exists")),
            _ => return Err(invalid(opt, "unknown option")),
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The start of a long value (a whole profile) for a message.
fn short(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capability_names_normalise() {
        assert_eq!(capability_name("net_admin").unwrap(), "CAP_NET_ADMIN");
        assert_eq!(capability_name("CAP_CHOWN").unwrap(), "CAP_CHOWN");
        let err = capability_name("CAP_NOPE").unwrap_err().to_string();
        assert!(err.contains("CAP_NOPE"), "{err}");
        assert!(is_all("all") && is_all("ALL"));
    }

    #[test]
    fn security_options_parse_and_refuse() {
        let s = security_options(&strings(&["no-new-privileges", "seccomp=unconfined"])).unwrap();
        assert!(s.no_new_privileges);
        assert_eq!(s.seccomp, Seccomp::Unconfined);
        let s = security_options(&strings(&["no-new-privileges:false"])).unwrap();
        assert!(!s.no_new_privileges);
        let s =
            security_options(&strings(&[r#"seccomp={"defaultAction":"SCMP_ACT_ALLOW"}"#])).unwrap();
        assert!(matches!(s.seccomp, Seccomp::Profile(_)));
        let err = security_options(&strings(&["seccomp=/does/not/exist"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("seccomp=/does/not/exist"), "{err}");
        let s = security_options(&strings(&["apparmor=my-profile", "label=disable"])).unwrap();
        assert_eq!(s.apparmor.as_deref(), Some("my-profile"));
        assert!(
            security_options(&strings(&["systempaths=unconfined"]))
                .unwrap()
                .systempaths_unconfined
        );
        for bad in [
            "bogus",
            "label=type:x",
            "no-new-privileges=maybe",
            "foo=bar",
        ] {
            assert!(security_options(&strings(&[bad])).is_err(), "{bad}");
        }
    }
}
