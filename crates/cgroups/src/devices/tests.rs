//! Tests of the device filter: the compiled program run through a small eBPF interpreter against
//! a reference model of the v1 semantics, and the real program enforced by the kernel.

use std::ffi::CString;
use std::os::fd::AsFd;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

use super::*;
use crate::testutil::TestCgroup;
use crate::Cgroup;

fn rule(
    allow: bool,
    typ: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_owned()));
    r
}

fn rules(oci: &[LinuxDeviceCgroup]) -> Vec<DeviceRule> {
    oci.iter()
        .enumerate()
        .map(|(i, r)| DeviceRule::from_oci(r, i).unwrap())
        .collect()
}

/// Execute the subset of eBPF the compiler emits on a `bpf_cgroup_dev_ctx`.
fn run(prog: &[Insn], dev_type: u32, access: u32, major: u32, minor: u32) -> u64 {
    let ctx = [(access << 16) | dev_type, major, minor];
    let mut reg = [0u64; 11];
    let mut pc = 0usize;
    for _ in 0..100_000 {
        let i = prog[pc];
        let (dst, src) = if cfg!(target_endian = "little") {
            ((i.regs & 0xf) as usize, (i.regs >> 4) as usize)
        } else {
            ((i.regs >> 4) as usize, (i.regs & 0xf) as usize)
        };
        pc += 1;
        match i.code {
            BPF_LDX_MEM_W => {
                assert_eq!(src, 1, "loads only from the context");
                reg[dst] = u64::from(ctx[(i.off / 4) as usize]);
            }
            BPF_ALU32_AND_K => reg[dst] = u64::from((reg[dst] as u32) & (i.imm as u32)),
            BPF_ALU32_RSH_K => reg[dst] = u64::from((reg[dst] as u32) >> i.imm),
            BPF_ALU32_MOV_X => reg[dst] = u64::from(reg[src] as u32),
            BPF_ALU64_MOV_K => reg[dst] = i.imm as i64 as u64,
            BPF_JMP_JA => pc = (pc as i64 + i64::from(i.off)) as usize,
            BPF_JMP_JEQ_K | BPF_JMP_JNE_K => {
                let eq = reg[dst] == i.imm as i64 as u64;
                if eq == (i.code == BPF_JMP_JEQ_K) {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            }
            BPF_JMP_EXIT => return reg[0],
            other => panic!("unexpected opcode {other:#x}"),
        }
    }
    panic!("program did not terminate");
}

/// The cgroup v1 semantics: for every requested bit, the last matching rule decides; no
/// matching rule denies.
fn model(rules: &[DeviceRule], dev_type: i32, access: u8, major: u32, minor: u32) -> bool {
    [ACC_MKNOD, ACC_READ, ACC_WRITE]
        .iter()
        .filter(|b| access & **b != 0)
        .all(|bit| {
            rules
                .iter()
                .rev()
                .find(|r| {
                    r.access & bit != 0
                        && !matches!(r.dev_type, Some(t) if t != dev_type)
                        && !matches!(r.major, Some(m) if m != major)
                        && !matches!(r.minor, Some(m) if m != minor)
                })
                .is_some_and(|r| r.allow)
        })
}

fn check_exhaustively(oci: &[LinuxDeviceCgroup]) {
    let rs = rules(oci);
    let prog = compile(&rs).unwrap();
    for dev_type in [DEV_BLOCK, DEV_CHAR] {
        for access in 1..=7u8 {
            for (major, minor) in [
                (1, 3),
                (1, 5),
                (1, 7),
                (5, 2),
                (136, 0),
                (136, 9),
                (8, 0),
                (8, 1),
                (7, 3),
            ] {
                let want = model(&rs, dev_type, access, major, minor);
                let got = run(&prog, dev_type as u32, u32::from(access), major, minor) == 1;
                assert_eq!(
                    got, want,
                    "type {dev_type} access {access} {major}:{minor} rules {rs:?}"
                );
            }
        }
    }
}

#[test]
fn program_matches_v1_semantics() {
    use LinuxDeviceType::{A, B, C};
    let cases: Vec<Vec<LinuxDeviceCgroup>> = vec![
        vec![],
        vec![rule(false, A, None, None, "rwm")],
        vec![rule(true, A, None, None, "rwm")],
        vec![
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "rwm"),
        ],
        vec![
            rule(true, A, None, None, "rwm"),
            rule(false, C, Some(1), Some(3), "w"),
        ],
        vec![
            rule(false, A, None, None, "rwm"),
            rule(true, C, Some(1), Some(3), "r"),
            rule(true, C, Some(1), Some(3), "w"),
        ],
        vec![
            rule(true, C, Some(1), Some(3), "rwm"),
            rule(false, A, None, None, "rwm"),
        ],
        vec![
            rule(true, C, Some(136), None, "rw"),
            rule(true, B, None, None, "m"),
            rule(false, C, Some(136), Some(9), ""),
        ],
        vec![
            rule(true, A, None, None, "r"),
            rule(false, B, Some(8), None, "r"),
            rule(true, A, Some(7), None, "w"),
        ],
        vec![
            rule(false, A, None, None, "m"),
            rule(true, C, None, Some(3), "m"),
        ],
    ];
    for c in &cases {
        check_exhaustively(c);
    }
    let mut defaults = vec![rule(false, A, None, None, "rwm")];
    defaults.extend(default_device_rules());
    check_exhaustively(&defaults);
}

#[test]
fn allow_all_is_tiny_and_empty_denies() {
    let all = compile(&rules(&[rule(true, LinuxDeviceType::A, None, None, "rwm")])).unwrap();
    assert_eq!(
        all.len(),
        6 + 2,
        "prologue + allow, no unreachable deny block"
    );
    assert_eq!(run(&all, 2, 7, 1, 3), 1);
    let none = compile(&[]).unwrap();
    assert_eq!(run(&none, 2, 2, 1, 3), 0);
}

#[test]
fn rejects_bad_rules() {
    let bad = [
        rule(true, LinuxDeviceType::P, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, Some(-2), None, "rwm"),
        rule(true, LinuxDeviceType::C, None, Some(1 << 40), "rwm"),
        rule(true, LinuxDeviceType::C, None, None, "rwx"),
    ];
    for (i, r) in bad.iter().enumerate() {
        let e = DeviceRule::from_oci(r, i).unwrap_err().to_string();
        assert!(e.contains(&format!("linux.resources.devices[{i}]")), "{e}");
    }
    let mut no_access = rule(false, LinuxDeviceType::A, None, None, "");
    no_access.set_access(None);
    assert_eq!(DeviceRule::from_oci(&no_access, 0).unwrap().access, ACC_ALL);
}

/// Fork a child that joins `procs` and reports by exit code: 0 = /dev/null opened and /dev/zero
/// refused with EPERM; 2 = /dev/zero opened.
fn probe(procs: &CString) -> i32 {
    // SAFETY: the child only makes raw syscalls (open, write, close, _exit) on data prepared
    // before the fork.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: async-signal-safe libc calls on valid NUL-terminated strings and buffers.
            unsafe {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    libc::_exit(10);
                }
                libc::close(fd);
                if libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) < 0 {
                    libc::_exit(1);
                }
                if libc::open(c"/dev/zero".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) >= 0 {
                    libc::_exit(2);
                }
                if *libc::__errno_location() != libc::EPERM {
                    libc::_exit(3);
                }
                libc::_exit(0);
            }
        }
        ForkResult::Parent { child } => match waitpid(child, None).expect("waitpid") {
            WaitStatus::Exited(_, code) => code,
            other => panic!("probe child ended with {other:?}"),
        },
    }
}

#[test]
fn kernel_enforces_device_filter() {
    let t = TestCgroup::new("devices");
    let mut cg = Cgroup::resolve(Some(&t.rel), false, "unused").unwrap();
    cg.create().unwrap();
    let mut res = LinuxResources::default();
    res.set_devices(Some(vec![
        rule(false, LinuxDeviceType::A, None, None, "rwm"),
        rule(true, LinuxDeviceType::C, Some(1), Some(3), "rwm"),
    ]));
    cg.apply(&res, false).unwrap();
    let procs = CString::new(
        cg.path()
            .join("cgroup.procs")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    assert_eq!(
        probe(&procs),
        0,
        "/dev/null allowed, /dev/zero denied with EPERM"
    );

    // Re-applying replaces the program instead of stacking another one.
    res.set_devices(Some(vec![rule(
        true,
        LinuxDeviceType::A,
        None,
        None,
        "rwm",
    )]));
    cg.apply(&res, false).unwrap();
    let fd = cg.open_dir_fd().unwrap();
    assert_eq!(
        crate::bpf::attached_count(fd.as_fd(), cg.path()).unwrap(),
        1
    );
    assert_eq!(probe(&procs), 2, "everything allowed after the update");

    cg.destroy().unwrap();
    assert!(!cg.path().exists());
}
