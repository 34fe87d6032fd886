//! The container's seccomp profile: Docker's default, the profile sent inline with
//! `--security-opt seccomp=…`, or none (privileged, unconfined); specialised for its caps.

use oci_spec::runtime::LinuxSeccomp;
use pelagos_model::config::HostConfig;
use pelagos_model::security::{Seccomp, SecurityOptions};
use pelagos_model::{Error, Result};

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::Invalid(format!(
        "invalid --security-opt seccomp (HostConfig.SecurityOpt): {e}"
    ))
}

/// The profile for a container with capabilities `caps` (its bounding set).
pub fn seccomp(
    host: &HostConfig,
    security: &SecurityOptions,
    caps: &[String],
) -> Result<Option<LinuxSeccomp>> {
    if host.privileged {
        return Ok(None);
    }
    match &security.seccomp {
        Seccomp::Unconfined => Ok(None),
        Seccomp::Default => Ok(Some(pelagos_seccomp::docker_default(caps))),
        Seccomp::Profile(text) => pelagos_seccomp::docker_profile(text, caps)
            .map(Some)
            .map_err(invalid),
    }
}

/// Compiles a profile given with `--security-opt seccomp=…` (Docker's own default always
/// compiles), so that a bad one is refused before anything exists.
pub fn check(host: &HostConfig, security: &SecurityOptions, caps: &[String]) -> Result<()> {
    if !matches!(security.seccomp, Seccomp::Profile(_)) {
        return Ok(());
    }
    if let Some(profile) = seccomp(host, security, caps)? {
        pelagos_seccomp::compile(&profile).map_err(invalid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn security(seccomp: Seccomp) -> SecurityOptions {
        SecurityOptions {
            seccomp,
            ..Default::default()
        }
    }

    #[test]
    fn profiles() {
        let host = HostConfig::default();
        let caps = ["CAP_CHOWN".to_string()];
        assert!(seccomp(&host, &security(Seccomp::Default), &caps)
            .unwrap()
            .is_some());
        assert!(seccomp(&host, &security(Seccomp::Unconfined), &caps)
            .unwrap()
            .is_none());
        let privileged = HostConfig {
            privileged: true,
            ..Default::default()
        };
        assert!(seccomp(&privileged, &security(Seccomp::Default), &caps)
            .unwrap()
            .is_none());
        let allow = Seccomp::Profile(r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#.into());
        check(&host, &security(allow), &caps).unwrap();
        let bad = Seccomp::Profile(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#.into());
        let e = check(&host, &security(bad), &caps).unwrap_err().to_string();
        assert!(e.contains("seccomp"), "{e}");
    }
}
