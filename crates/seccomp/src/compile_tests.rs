//! Unit tests for `compile`: every action and operator, flag handling and input errors.

use oci_spec::runtime::LinuxSeccompFilterFlag;
use serde_json::{json, Value};

use super::*;
use crate::features::supported_archs;

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("test profile is valid OCI")
}

fn one_rule(action: &str, extra: Value) -> LinuxSeccomp {
    let mut rule = json!({"names": ["getcwd"], "action": action});
    if let (Some(rule), Some(extra)) = (rule.as_object_mut(), extra.as_object()) {
        rule.extend(extra.clone());
    }
    profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [rule]
    }))
}

#[test]
fn every_action_compiles() {
    for action in [
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY",
    ] {
        let filter = compile(&one_rule(action, json!({"errnoRet": 38})))
            .unwrap_or_else(|e| panic!("{action}: {e}"));
        assert!(filter.instructions().len() > 4, "{action}");
        assert_eq!(
            filter.uses_notify(),
            action == "SCMP_ACT_NOTIFY",
            "{action}"
        );
    }
    // A rule equal to the default action is dropped instead of making libseccomp fail.
    let filter = compile(&one_rule("SCMP_ACT_ALLOW", json!({}))).expect("allow rule");
    let baseline = compile(&profile(json!({"defaultAction": "SCMP_ACT_ALLOW"}))).expect("empty");
    assert_eq!(filter.instructions().len(), baseline.instructions().len());
}

#[test]
fn errno_ret_lands_in_the_program() {
    let filter = compile(&one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": 38}))).expect("compile");
    let ret = libc::SECCOMP_RET_ERRNO | 38;
    assert!(filter.instructions().iter().any(|i| i.k == ret));

    // Without errnoRet, ERRNO means EPERM.
    let filter = compile(&one_rule("SCMP_ACT_ERRNO", json!({}))).expect("compile");
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    assert!(filter.instructions().iter().any(|i| i.k == eperm));

    let deny = profile(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95}));
    let filter = compile(&deny).expect("compile");
    assert!(filter
        .instructions()
        .iter()
        .any(|i| i.k == libc::SECCOMP_RET_ERRNO | 95));
}

#[test]
fn every_operator_compiles() {
    for op in [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ] {
        let args = json!({"args": [
            {"index": 1, "value": 255, "valueTwo": 16, "op": op},
            {"index": 0, "value": 0, "op": "SCMP_CMP_NE"}
        ]});
        compile(&one_rule("SCMP_ACT_ERRNO", args)).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
    // The same argument compared twice: one rule per condition (runc's OR fallback).
    let args = json!({"args": [
        {"index": 1, "value": 100, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 200, "op": "SCMP_CMP_EQ"}
    ]});
    compile(&one_rule("SCMP_ACT_ERRNO", args)).expect("repeated index");
}

#[test]
fn architectures_are_added() {
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": [{"names": ["read", "write", "chown32", "socketcall"], "action": "SCMP_ACT_ALLOW"}]
    }));
    let multi = compile(&p).expect("compile");
    let native = compile(&profile(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    })))
    .expect("compile");
    assert!(multi.instructions().len() > native.instructions().len());
    // Names that exist on some architecture are not "unknown".
    assert!(
        multi.skipped_syscalls().is_empty(),
        "{:?}",
        multi.skipped_syscalls()
    );
}

#[test]
fn unknown_syscalls_are_skipped_and_reported() {
    let p = profile(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd", "not_a_syscall", ""], "action": "SCMP_ACT_ERRNO"}]
    }));
    let filter = compile(&p).expect("compile");
    assert_eq!(filter.skipped_syscalls(), ["not_a_syscall", ""]);
}

#[test]
fn input_errors_name_the_bad_input() {
    let unsupported = ["SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K", "SCMP_ARCH_SH"]
        .into_iter()
        .find(|a| !supported_archs().iter().any(|s| s == a));
    if let Some(arch) = unsupported {
        let err = compile(&profile(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}),
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("seccomp: unsupported architecture \"{arch}\"")
        );
    }

    let mut p = one_rule("SCMP_ACT_NOTIFY", json!({}));
    p.set_listener_path(None);
    let err = compile(&p).unwrap_err();
    assert!(
        matches!(err, SeccompError::NotifyWithoutListener(ref s) if s == "getcwd"),
        "{err}"
    );
    assert!(err.to_string().contains("listenerPath"));

    let err = compile(&profile(
        json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}),
    ))
    .unwrap_err();
    assert!(matches!(err, SeccompError::NotifyDefaultAction));

    let p = profile(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x",
        "syscalls": [{"names": ["openat", "write"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(
        matches!(compile(&p), Err(SeccompError::NotifyForbiddenSyscall(ref s)) if s == "write")
    );

    let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
        {"names": [], "action": "SCMP_ACT_ERRNO"}
    ]}));
    let err = compile(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seccomp: syscalls[1] has an empty names list"
    );

    let err = compile(&one_rule(
        "SCMP_ACT_ERRNO",
        json!({"args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}),
    ))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::InvalidArgIndex { index: 6, .. }),
        "{err}"
    );

    let err = compile(&one_rule("SCMP_ACT_ERRNO", json!({"errnoRet": 70000}))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seccomp: errnoRet 70000 for syscall \"getcwd\" is out of range (0..=65535)"
    );

    // Two different actions for the same syscall without conditions: like runc, libseccomp
    // keeps the first rule (2.5.x) rather than failing.
    let p = profile(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getcwd"], "action": "SCMP_ACT_KILL"}
    ]}));
    let filter = compile(&p).expect("conflicting actions compile");
    let eperm = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;
    assert!(filter.instructions().iter().any(|i| i.k == eperm));
}

#[test]
fn kernel_flags_follow_the_profile() {
    let mut p = one_rule("SCMP_ACT_ERRNO", json!({}));
    p.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    let filter = compile(&p).expect("compile");
    // WAIT_KILLABLE_RECV only means something (and is only accepted) with a listener.
    let expected = libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_LOG
        | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    assert_eq!(filter.flags(), expected);

    let mut p = one_rule("SCMP_ACT_NOTIFY", json!({}));
    p.set_listener_metadata(Some("meta".into()));
    p.set_flags(Some(vec![
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
    ]));
    let filter = compile(&p).expect("compile");
    let expected = libc::SECCOMP_FILTER_FLAG_TSYNC
        | libc::SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER
        | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    assert_eq!(filter.flags(), expected);
    assert_eq!(filter.listener_path(), Some(Path::new("/run/agent.sock")));
    assert_eq!(filter.listener_metadata(), Some("meta"));
}

#[test]
fn decode_checks_length() {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&0x06u16.to_ne_bytes());
    bytes.extend_from_slice(&[0, 0]);
    bytes.extend_from_slice(&0x7fff_0000u32.to_ne_bytes());
    let prog = decode(&bytes).expect("decode");
    assert_eq!(prog.len(), 1);
    assert_eq!(prog[0].code, 0x06);
    assert_eq!(prog[0].k, 0x7fff_0000);
    assert!(decode(&bytes[..7]).is_err());
    assert!(decode(&[]).is_err());
}
