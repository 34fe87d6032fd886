//! Unit tests for Docker's default profile and its includes/excludes resolution.

use oci_spec::runtime::LinuxSeccompOperator;

use super::*;
use crate::compile;

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn amd64(kernel: (u32, u32), caps: &[String]) -> LinuxSeccomp {
    specialise(&Host {
        arch: "amd64",
        seccomp_arch: Some(Arch::ScmpArchX86_64),
        kernel,
        caps,
    })
}

fn rules<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
    p.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .collect()
}

fn allowed(p: &LinuxSeccomp, name: &str) -> bool {
    rules(p, name)
        .iter()
        .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none())
}

#[test]
fn embedded_profile_parses() {
    let profile = profile();
    assert_eq!(profile.default_action, LinuxSeccompAction::ScmpActErrno);
    assert!(profile.syscalls.len() > 20);
}

#[test]
fn shape_for_the_host() {
    let p = docker_default(&[]);
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    if cfg!(target_arch = "x86_64") {
        assert_eq!(
            p.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        assert!(allowed(&p, "arch_prctl"));
        assert!(allowed(&p, "modify_ldt"));
    }
    assert!(allowed(&p, "read"));
    assert!(!allowed(&p, "s390_runtime_instr"));
    assert!(!allowed(&p, "mount"));
}

#[test]
fn ptrace_family_needs_cap_sys_ptrace() {
    let none = amd64((6, 1), &[]);
    let ptrace = amd64((6, 1), &caps(&["CAP_SYS_PTRACE"]));
    for name in [
        "process_vm_readv",
        "process_vm_writev",
        "kcmp",
        "pidfd_getfd",
    ] {
        assert!(!allowed(&none, name), "{name}");
        assert!(allowed(&ptrace, name), "{name}");
    }
    // ptrace itself is also allowed to everyone on kernels >= 4.8 (moby's minKernel rule),
    // where the kernel no longer lets ptrace bypass seccomp; before that it needs the cap.
    assert!(allowed(&none, "ptrace"));
    let old = amd64((4, 4), &[]);
    assert!(!allowed(&old, "ptrace"));
    assert!(allowed(
        &amd64((4, 4), &caps(&["CAP_SYS_PTRACE"])),
        "ptrace"
    ));
}

#[test]
fn clone_is_restricted_without_cap_sys_admin() {
    let p = amd64((6, 1), &[]);
    assert!(!allowed(&p, "clone"));
    let clone = rules(&p, "clone");
    assert_eq!(clone.len(), 1);
    let args = clone[0].args().as_deref().unwrap_or(&[]);
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].index(), 0);
    assert_eq!(args[0].value(), 2_114_060_288);
    assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    let clone3 = rules(&p, "clone3");
    assert_eq!(clone3.len(), 1);
    assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(clone3[0].errno_ret(), Some(38));

    // Capability names may omit the prefix or use lowercase.
    let admin = amd64((6, 1), &caps(&["sys_admin"]));
    assert!(allowed(&admin, "clone"));
    assert!(allowed(&admin, "clone3"));
    assert!(allowed(&admin, "mount"));
    assert_eq!(
        rules(&admin, "clone").len(),
        1,
        "the conditional clone rule is excluded"
    );
    assert!(rules(&admin, "clone3")
        .iter()
        .all(|r| r.action() == LinuxSeccompAction::ScmpActAllow));
}

#[test]
fn other_arches_get_their_own_rules() {
    let p = specialise(&Host {
        arch: "s390x",
        seccomp_arch: Some(Arch::ScmpArchS390x),
        kernel: (6, 1),
        caps: &[],
    });
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchS390x, Arch::ScmpArchS390][..])
    );
    assert!(allowed(&p, "s390_runtime_instr"));
    assert!(!allowed(&p, "arch_prctl"));
    let clone = rules(&p, "clone");
    assert_eq!(clone.len(), 1);
    assert_eq!(clone[0].args().as_deref().map(|a| a[0].index()), Some(1));
}

#[test]
fn compiles_with_and_without_capabilities() {
    let all = caps(&[
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_SYS_BOOT",
        "CAP_SYS_MODULE",
        "CAP_SYSLOG",
        "CAP_SYS_TIME",
        "CAP_SYS_NICE",
    ]);
    for set in [Vec::new(), all] {
        let filter = compile(&docker_default(&set)).expect("docker default compiles");
        assert!(filter.instructions().len() < 4096);
    }
}

#[test]
fn kernel_versions_parse() {
    assert_eq!(parse_version("4.8"), Some((4, 8)));
    assert_eq!(parse_version("6.18.0-1-amd64\n"), Some((6, 18)));
    assert_eq!(parse_version("5"), Some((5, 0)));
    assert_eq!(parse_version("x"), None);
    assert!(kernel_version() >= (3, 0));
}

#[test]
fn compiling_the_default_profile_is_cheap() {
    let start = std::time::Instant::now();
    let filter = compile(&docker_default(&[])).expect("compile");
    let elapsed = start.elapsed();
    eprintln!(
        "docker default: {} instructions in {elapsed:?}",
        filter.instructions().len()
    );
    assert!(elapsed < std::time::Duration::from_secs(1));
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(&filter);
}

#[test]
fn custom_docker_profile_resolves_includes_for_the_host() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [
            {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_PTRACE"]}}
        ]
    }"#;
    let without = docker_profile(json, &caps(&["CAP_CHOWN"])).unwrap();
    assert!(allowed(&without, "read"));
    assert!(!allowed(&without, "ptrace"));
    let with = docker_profile(json, &caps(&["CAP_SYS_PTRACE"])).unwrap();
    assert!(allowed(&with, "ptrace"));
    assert_eq!(with.default_action(), LinuxSeccompAction::ScmpActErrno);
}

#[test]
fn oci_shaped_profile_keeps_its_architectures() {
    let json = r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}]}"#;
    let p = docker_profile(json, &[]).unwrap();
    assert_eq!(
        p.architectures().as_deref(),
        Some(&[Arch::ScmpArchX86_64][..])
    );
    assert_eq!(rules(&p, "mount").len(), 1);
}

#[test]
fn invalid_custom_profile_is_a_clear_error() {
    let err = docker_profile(r#"{"syscalls": 3}"#, &[]).unwrap_err();
    assert!(err.to_string().contains("invalid profile"), "{err}");
}
