//! Parse a raw `linux.seccomp` JSON object with errors that name the bad action, operator,
//! architecture or flag, instead of serde's generic "unknown variant" message.

use oci_spec::runtime::LinuxSeccomp;
use serde_json::Value;

use crate::error::SeccompError;
use crate::features::{known_flags, ACTIONS, ARCHS, OPERATORS};

/// Parse the `linux.seccomp` object of a config.json into a [`LinuxSeccomp`].
///
/// Unknown `SCMP_ACT_*`, `SCMP_CMP_*`, `SCMP_ARCH_*` and `SECCOMP_FILTER_FLAG_*` strings are
/// reported by name; any other shape problem is [`SeccompError::InvalidProfile`].
pub fn parse_profile(value: &Value) -> Result<LinuxSeccomp, SeccompError> {
    check_strings(value)?;
    serde_json::from_value(value.clone()).map_err(|e| SeccompError::InvalidProfile(e.to_string()))
}

fn check_strings(value: &Value) -> Result<(), SeccompError> {
    let unknown = |list: &[&str], v: &Value| -> Option<String> {
        let s = v.as_str()?;
        (!list.contains(&s)).then(|| s.to_string())
    };
    if let Some(bad) = value.get("defaultAction").and_then(|v| unknown(ACTIONS, v)) {
        return Err(SeccompError::UnknownAction(bad));
    }
    for arch in array(value, "architectures") {
        if let Some(bad) = unknown(ARCHS, arch).filter(|a| a != "SCMP_ARCH_NATIVE") {
            return Err(SeccompError::UnsupportedArch(bad));
        }
    }
    let flags = known_flags();
    for flag in array(value, "flags") {
        if let Some(s) = flag.as_str().filter(|s| !flags.iter().any(|f| f == s)) {
            return Err(SeccompError::UnknownFlag(s.to_string()));
        }
    }
    for call in array(value, "syscalls") {
        if let Some(bad) = call.get("action").and_then(|v| unknown(ACTIONS, v)) {
            return Err(SeccompError::UnknownAction(bad));
        }
        for arg in array(call, "args") {
            if let Some(bad) = arg.get("op").and_then(|v| unknown(OPERATORS, v)) {
                return Err(SeccompError::UnknownOperator(bad));
            }
        }
    }
    Ok(())
}

fn array<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bad_strings_are_named() {
        let base = json!({"defaultAction": "SCMP_ACT_ALLOW"});
        assert!(parse_profile(&base).is_ok());

        let err = parse_profile(
            &json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_FOO"]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: unsupported architecture \"SCMP_ARCH_FOO\""
        );

        let err = parse_profile(
            &json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp: unknown filter flag \"SECCOMP_FILTER_FLAG_BOGUS\""
        );

        let err = parse_profile(&json!({"defaultAction": "SCMP_ACT_NOPE"})).unwrap_err();
        assert!(matches!(err, SeccompError::UnknownAction(ref a) if a == "SCMP_ACT_NOPE"));

        let err = parse_profile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}
        ]}))
        .unwrap_err();
        assert!(matches!(err, SeccompError::UnknownOperator(ref o) if o == "SCMP_CMP_XX"));

        let err = parse_profile(&json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": "x"}))
            .unwrap_err();
        assert!(matches!(err, SeccompError::InvalidProfile(_)), "{err}");
    }
}
