//! `linux.resources.devices` for cgroup v2: validation of the OCI rules and their translation
//! into a BPF_PROG_TYPE_CGROUP_DEVICE program, written instruction by instruction.
//!
//! No crate is used for this: the eBPF crates (aya, libbpf-rs, ...) are large, need a compiler
//! toolchain or libbpf, and this job needs only six kinds of instructions and a forward-jump
//! assembler. The semantics follow the cgroup v1 devices controller, like runc and crun: rules
//! apply in order and a later rule overrides an earlier one; a request matching no rule is
//! denied. Unlike a single "first match" pass, each requested access bit (m, r, w) is decided
//! on its own, so `[allow c 1:3 r, allow c 1:3 w]` permits opening /dev/null read-write and
//! `[allow a rwm, deny c 1:3 w]` refuses it, exactly as v1 did.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use crate::error::CgroupError;

/// `BPF_DEVCG_ACC_*` access bits, as found in the upper 16 bits of `bpf_cgroup_dev_ctx.access_type`.
pub(crate) const ACC_MKNOD: u8 = 1;
pub(crate) const ACC_READ: u8 = 2;
pub(crate) const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// `BPF_DEVCG_DEV_*` device types, the lower 16 bits of `access_type`.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One validated device rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DeviceRule {
    pub allow: bool,
    /// `None` for "a" (all types), else `DEV_BLOCK`/`DEV_CHAR`.
    pub dev_type: Option<i32>,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

impl DeviceRule {
    /// Validate the OCI rule at `index` of `linux.resources.devices`.
    pub(crate) fn from_oci(d: &LinuxDeviceCgroup, index: usize) -> Result<DeviceRule, CgroupError> {
        let field = format!("linux.resources.devices[{index}]");
        let dev_type = match d.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => None,
            LinuxDeviceType::B => Some(DEV_BLOCK),
            // "u" is an unbuffered character device: still a character device to the kernel.
            LinuxDeviceType::C | LinuxDeviceType::U => Some(DEV_CHAR),
            LinuxDeviceType::P => {
                return Err(CgroupError::invalid(
                    format!("{field}.type"),
                    "device type \"p\" (FIFO) cannot be controlled; use \"a\", \"b\" or \"c\"",
                ));
            }
        };
        let number = |v: Option<i64>, name: &str| -> Result<Option<u32>, CgroupError> {
            match v {
                None | Some(-1) => Ok(None),
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => Ok(Some(n as u32)),
                Some(n) => Err(CgroupError::invalid(
                    format!("{field}.{name}"),
                    format!("{n} is not a device number (use -1 or omit it for any)"),
                )),
            }
        };
        let major = number(d.major(), "major")?;
        let minor = number(d.minor(), "minor")?;
        // A missing or empty access string means all of "rwm", as for the v1 devices files.
        let mut access = 0;
        for ch in d.access().as_deref().unwrap_or("").chars() {
            access |= match ch {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => {
                    return Err(CgroupError::invalid(
                        format!("{field}.access"),
                        format!("unknown access {other:?} (only 'r', 'w' and 'm' are valid)"),
                    ));
                }
            };
        }
        if access == 0 {
            access = ACC_ALL;
        }
        Ok(DeviceRule {
            allow: d.allow(),
            dev_type,
            major,
            minor,
            access,
        })
    }

    /// Matches every device (of every type).
    fn is_wildcard(&self) -> bool {
        self.dev_type.is_none() && self.major.is_none() && self.minor.is_none()
    }
}

/// The rules a container needs to work at all (runc's and crun's default allow list):
/// mknod of any node, and the standard /dev entries: null, zero, full, random, urandom, tty,
/// console, ptmx and /dev/pts/*. The runtime appends these (and rules for `linux.devices`).
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let rule = |typ, major: Option<i64>, minor: Option<i64>, access: &str| {
        let mut r = LinuxDeviceCgroup::default();
        r.set_allow(true);
        r.set_typ(Some(typ));
        r.set_major(major);
        r.set_minor(minor);
        r.set_access(Some(access.to_owned()));
        r
    };
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"), // /dev/null
        rule(C, Some(1), Some(5), "rwm"), // /dev/zero
        rule(C, Some(1), Some(7), "rwm"), // /dev/full
        rule(C, Some(1), Some(8), "rwm"), // /dev/random
        rule(C, Some(1), Some(9), "rwm"), // /dev/urandom
        rule(C, Some(5), Some(0), "rwm"), // /dev/tty
        rule(C, Some(5), Some(1), "rwm"), // /dev/console
        rule(C, Some(5), Some(2), "rwm"), // /dev/ptmx
        rule(C, Some(136), None, "rwm"),  // /dev/pts/*
    ]
}

/// One eBPF instruction, laid out like the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
const BPF_LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
const BPF_ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const BPF_ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
const BPF_ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
const BPF_ALU64_MOV_K: u8 = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
const BPF_JMP_JA: u8 = 0x05; // BPF_JMP | BPF_JA
const BPF_JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
const BPF_JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

// Registers: R1 holds the context on entry; R2..R5 are loaded from it below.
const R0: u8 = 0;
const R1: u8 = 1;
const R_TYPE: u8 = 2;
const R_ACCESS: u8 = 3;
const R_MAJOR: u8 = 4;
const R_MINOR: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    // `dst_reg:4, src_reg:4` bitfields: dst is the low nibble on little-endian targets.
    let regs = if cfg!(target_endian = "little") {
        (src << 4) | (dst & 0x0f)
    } else {
        (dst << 4) | (src & 0x0f)
    };
    Insn {
        code,
        regs,
        off,
        imm,
    }
}

/// A tiny assembler with forward labels.
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    fixups: Vec<(usize, usize)>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }
    fn bind(&mut self, l: usize) {
        self.labels[l] = Some(self.insns.len());
    }
    fn emit(&mut self, i: Insn) {
        self.insns.push(i);
    }
    fn jump(&mut self, code: u8, reg: u8, imm: i32, target: usize) {
        self.fixups.push((self.insns.len(), target));
        self.emit(insn(code, reg, 0, 0, imm));
    }
    fn finish(mut self) -> Result<Vec<Insn>, CgroupError> {
        for (at, label) in self.fixups {
            let target = self.labels[label].unwrap_or(self.insns.len());
            let off = i16::try_from(target as i64 - at as i64 - 1).map_err(|_| {
                CgroupError::invalid(
                    "linux.resources.devices",
                    "too many rules for one eBPF program",
                )
            })?;
            self.insns[at].off = off;
        }
        Ok(self.insns)
    }
}

/// Compile validated rules into the device filter program.
pub(crate) fn compile(rules: &[DeviceRule]) -> Result<Vec<Insn>, CgroupError> {
    let mut a = Asm {
        insns: Vec::with_capacity(16 + rules.len() * 12),
        labels: Vec::new(),
        fixups: Vec::new(),
    };
    let deny = a.label();
    // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
    a.emit(insn(BPF_LDX_MEM_W, R_TYPE, R1, 0, 0));
    a.emit(insn(BPF_ALU32_AND_K, R_TYPE, 0, 0, 0xffff));
    a.emit(insn(BPF_LDX_MEM_W, R_ACCESS, R1, 0, 0));
    a.emit(insn(BPF_ALU32_RSH_K, R_ACCESS, 0, 0, 16));
    a.emit(insn(BPF_LDX_MEM_W, R_MAJOR, R1, 4, 0));
    a.emit(insn(BPF_LDX_MEM_W, R_MINOR, R1, 8, 0));

    for bit in [ACC_MKNOD, ACC_READ, ACC_WRITE] {
        // The rules that can decide this bit, latest first, cut after the first wildcard
        // (it shadows everything before it); with no wildcard, the default is deny.
        let mut relevant = Vec::new();
        let mut verdict = false;
        for r in rules.iter().rev().filter(|r| r.access & bit != 0) {
            if r.is_wildcard() {
                verdict = r.allow;
                break;
            }
            relevant.push(*r);
        }
        if relevant.is_empty() && verdict {
            continue; // this bit is always allowed
        }
        let next = a.label();
        // if (!(access & bit)) goto next;
        a.emit(insn(BPF_ALU32_MOV_X, R1, R_ACCESS, 0, 0));
        a.emit(insn(BPF_ALU32_AND_K, R1, 0, 0, i32::from(bit)));
        a.jump(BPF_JMP_JEQ_K, R1, 0, next);
        for r in relevant {
            let skip = a.label();
            if let Some(t) = r.dev_type {
                a.jump(BPF_JMP_JNE_K, R_TYPE, t, skip);
            }
            if let Some(m) = r.major {
                a.jump(BPF_JMP_JNE_K, R_MAJOR, m as i32, skip);
            }
            if let Some(m) = r.minor {
                a.jump(BPF_JMP_JNE_K, R_MINOR, m as i32, skip);
            }
            a.jump(BPF_JMP_JA, 0, 0, if r.allow { next } else { deny });
            a.bind(skip);
        }
        if !verdict {
            a.jump(BPF_JMP_JA, 0, 0, deny);
        }
        a.bind(next);
    }
    // Every requested bit was allowed.
    a.emit(insn(BPF_ALU64_MOV_K, R0, 0, 0, 1));
    a.emit(insn(BPF_JMP_EXIT, 0, 0, 0, 0));
    // The verifier rejects unreachable instructions: emit the deny exit only when used.
    if a.fixups.iter().any(|(_, l)| *l == deny) {
        a.bind(deny);
        a.emit(insn(BPF_ALU64_MOV_K, R0, 0, 0, 0));
        a.emit(insn(BPF_JMP_EXIT, 0, 0, 0, 0));
    }
    a.finish()
}

#[cfg(test)]
mod tests;
