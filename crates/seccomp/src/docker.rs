//! Docker's default seccomp profile (moby 20.10), specialised for the host architecture, kernel
//! and a capability set, as an OCI `LinuxSeccomp`.

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSyscall};
use serde::Deserialize;

/// moby's `profiles/seccomp/default.json` (Docker 20.10), Apache-2.0 licensed like this crate.
const DOCKER_DEFAULT_JSON: &str = include_str!("../profiles/docker-default.json");

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: LinuxSeccompAction,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    arch_map: Vec<ArchMap>,
    /// OCI-style architecture list, used when there is no `archMap`.
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    syscalls: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Where the profile is being applied: what `includes`/`excludes` are matched against.
pub(crate) struct Host<'a> {
    /// Docker's (Go-style) architecture name: "amd64", "arm64", "x86", ...
    arch: &'static str,
    /// The seccomp architecture whose `archMap` entry applies.
    seccomp_arch: Option<Arch>,
    /// (major, minor) of the running kernel.
    kernel: (u32, u32),
    /// Capability names ("CAP_SYS_ADMIN"), normally the bounding set.
    caps: &'a [String],
}

/// Docker's default profile for the host architecture and kernel and the given capabilities
/// (normally the container's bounding set, e.g. "CAP_SYS_ADMIN"; the "CAP_" prefix is optional).
///
/// `includes`/`excludes` are resolved as Docker does: a rule is kept if all its included caps
/// are present, the host arch is among its included arches and the kernel is at least its
/// `minKernel`, and none of its excluded caps/arches match.
pub fn docker_default(capabilities: &[String]) -> LinuxSeccomp {
    let (arch, seccomp_arch) = host_arch();
    specialise(&Host {
        arch,
        seccomp_arch,
        kernel: kernel_version(),
        caps: capabilities,
    })
}

/// A Docker-format profile (`docker run --security-opt seccomp=FILE`: `defaultAction`,
/// `archMap`, `syscalls` with `includes`/`excludes`), specialised like [`docker_default`].
/// Syscall rules that use neither field are taken as they are, so an OCI-shaped profile with
/// `architectures` and plain `syscalls` loads too.
pub fn docker_profile(
    json: &str,
    capabilities: &[String],
) -> Result<LinuxSeccomp, crate::SeccompError> {
    let custom: Profile = serde_json::from_str(json)
        .map_err(|e| crate::SeccompError::InvalidProfile(e.to_string()))?;
    let (arch, seccomp_arch) = host_arch();
    let host = Host {
        arch,
        seccomp_arch,
        kernel: kernel_version(),
        caps: capabilities,
    };
    let mut out = specialise_profile(&custom, &host);
    if custom.arch_map.is_empty() && !custom.architectures.is_empty() {
        out.set_architectures(Some(custom.architectures.clone()));
    }
    Ok(out)
}

/// Parsed at each use, not kept: a long-lived caller (a container's monitor, a daemon) would
/// otherwise hold the parsed profile for its whole life for one use per container start.
fn profile() -> Profile {
    serde_json::from_str(DOCKER_DEFAULT_JSON)
        .expect("the embedded docker profile is valid (checked by a unit test)")
}

pub(crate) fn specialise(host: &Host<'_>) -> LinuxSeccomp {
    specialise_profile(&profile(), host)
}

fn specialise_profile(profile: &Profile, host: &Host<'_>) -> LinuxSeccomp {
    let mut out = LinuxSeccomp::default();
    out.set_default_action(profile.default_action);
    out.set_default_errno_ret(profile.default_errno_ret);
    let arches: Vec<Arch> = profile
        .arch_map
        .iter()
        .filter(|m| Some(m.architecture) == host.seccomp_arch)
        .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures.iter().copied()))
        .collect();
    out.set_architectures((!arches.is_empty()).then_some(arches));

    let syscalls: Vec<LinuxSyscall> = profile
        .syscalls
        .iter()
        .filter(|rule| applies(rule, host))
        .map(to_oci)
        .collect();
    out.set_syscalls(Some(syscalls));
    out
}

fn applies(rule: &Rule, host: &Host<'_>) -> bool {
    let has_cap = |cap: &String| {
        let want = normalise_cap(cap);
        host.caps.iter().any(|c| normalise_cap(c) == want)
    };
    let kernel_at_least = |v: &String| parse_version(v).is_some_and(|min| host.kernel >= min);
    let ex = &rule.excludes;
    let inc = &rule.includes;
    if ex.arches.iter().any(|a| a == host.arch)
        || ex.caps.iter().any(has_cap)
        || ex.min_kernel.as_ref().is_some_and(kernel_at_least)
    {
        return false;
    }
    let new_enough = match &inc.min_kernel {
        Some(v) => kernel_at_least(v),
        None => true,
    };
    (inc.arches.is_empty() || inc.arches.iter().any(|a| a == host.arch))
        && inc.caps.iter().all(has_cap)
        && new_enough
}

fn to_oci(rule: &Rule) -> LinuxSyscall {
    let mut call = LinuxSyscall::default();
    let mut names = rule.names.clone();
    names.extend(rule.name.iter().cloned());
    call.set_names(names);
    call.set_action(rule.action);
    call.set_errno_ret(rule.errno_ret);
    call.set_args(rule.args.clone().filter(|a| !a.is_empty()));
    call
}

fn normalise_cap(cap: &str) -> String {
    let upper = cap.trim().to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// "4.8" or "6.18.0-1-amd64" -> (major, minor).
pub(crate) fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn kernel_version() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|s| parse_version(&s))
        .or_else(uname_version)
        .unwrap_or((0, 0))
}

fn uname_version() -> Option<(u32, u32)> {
    // SAFETY: utsname is a plain C struct of char arrays; all-zero is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_version(std::str::from_utf8(&release).ok()?)
}

/// Docker's name for the host architecture and its seccomp architecture.
fn host_arch() -> (&'static str, Option<Arch>) {
    if cfg!(target_arch = "x86_64") {
        if cfg!(target_pointer_width = "32") {
            ("x32", Some(Arch::ScmpArchX32))
        } else {
            ("amd64", Some(Arch::ScmpArchX86_64))
        }
    } else if cfg!(target_arch = "x86") {
        ("x86", Some(Arch::ScmpArchX86))
    } else if cfg!(target_arch = "aarch64") {
        ("arm64", Some(Arch::ScmpArchAarch64))
    } else if cfg!(target_arch = "arm") {
        ("arm", Some(Arch::ScmpArchArm))
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        ("ppc64le", Some(Arch::ScmpArchPpc64le))
    } else if cfg!(target_arch = "powerpc64") {
        ("ppc64", Some(Arch::ScmpArchPpc64))
    } else if cfg!(target_arch = "s390x") {
        ("s390x", Some(Arch::ScmpArchS390x))
    } else if cfg!(target_arch = "riscv64") {
        ("riscv64", Some(Arch::ScmpArchRiscv64))
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        ("mipsel64", Some(Arch::ScmpArchMipsel64))
    } else if cfg!(target_arch = "mips64") {
        ("mips64", Some(Arch::ScmpArchMips64))
    } else if cfg!(target_arch = "loongarch64") {
        ("loong64", Some(Arch::ScmpArchLoongarch64))
    } else {
        ("unknown", None)
    }
}

#[cfg(test)]
#[path = "docker_tests.rs"]
mod tests;
