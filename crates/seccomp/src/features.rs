//! The seccomp lists the runtime's `features` command reports, and the kernel flag probe.

use std::str::FromStr;

use libseccomp::{ScmpAction, ScmpArch, ScmpFilterContext};
use oci_spec::runtime::LinuxSeccompFilterFlag;

use crate::flags::{flag_bits, flag_supported};

pub(crate) const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub(crate) const OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

pub(crate) const ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];

const FLAGS: &[LinuxSeccompFilterFlag] = &[
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// Every `SCMP_ACT_*` action [`compile`](crate::compile) accepts.
pub fn supported_actions() -> Vec<String> {
    strings(ACTIONS)
}

/// Every `SCMP_CMP_*` operator [`compile`](crate::compile) accepts.
pub fn supported_operators() -> Vec<String> {
    strings(OPERATORS)
}

/// The `SCMP_ARCH_*` architectures the linked libseccomp can generate filters for.
pub fn supported_archs() -> Vec<String> {
    ARCHS
        .iter()
        .filter(|name| {
            let Ok(arch) = ScmpArch::from_str(name) else {
                return false;
            };
            ScmpFilterContext::new(ScmpAction::Allow)
                .and_then(|mut ctx| ctx.add_arch(arch).map(|_| ()))
                .is_ok()
        })
        .map(|s| (*s).to_string())
        .collect()
}

/// The OCI `SECCOMP_FILTER_FLAG_*` names this crate understands.
pub fn known_flags() -> Vec<String> {
    FLAGS.iter().map(|&f| flag_bits(f).0.to_string()).collect()
}

/// The subset of [`known_flags`] the running kernel accepts.
pub fn supported_flags() -> Vec<String> {
    FLAGS
        .iter()
        .map(|&f| flag_bits(f))
        .filter(|&(_, bit)| flag_supported(bit))
        .map(|(name, _)| name.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_have_expected_entries() {
        assert!(supported_actions().contains(&"SCMP_ACT_NOTIFY".to_string()));
        assert_eq!(supported_operators().len(), 7);
        let archs = supported_archs();
        assert!(archs.contains(&"SCMP_ARCH_X86_64".to_string()), "{archs:?}");
        assert!(
            archs.contains(&"SCMP_ARCH_AARCH64".to_string()),
            "{archs:?}"
        );
        assert_eq!(known_flags().len(), 4);
    }

    #[test]
    fn kernel_supports_modern_flags() {
        // The test VM runs a recent kernel (>= 5.19) that knows every OCI flag.
        let supported = supported_flags();
        assert_eq!(supported, known_flags());
        assert!(!flag_supported(1 << 30));
    }
}
