//! A process's capability sets as the kernel's bit masks, parsed once in the runtime from
//! oci-spec's enum (no names, no JSON), so the cloned child only applies numbers.

use oci_spec::runtime::{Capabilities, Process};

/// A process's capability sets as kernel bit masks, parsed once in the runtime (at
/// validation for the init, before the clone for exec): the cloned child only applies them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    /// None: `process.capabilities` is absent, the bounding set stays as it is.
    pub bounding: Option<u64>,
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    /// Only capabilities also permitted and inheritable (the others are skipped, as runc).
    pub ambient: u64,
}

impl CapabilitySets {
    pub fn of(process: &Process) -> CapabilitySets {
        let Some(c) = process.capabilities() else {
            return CapabilitySets::default();
        };
        let mask = |set: &Option<Capabilities>| {
            set.iter().flatten().fold(0u64, |m, c| m | 1 << number(*c))
        };
        let (effective, permitted, inheritable) = (
            mask(c.effective()),
            mask(c.permitted()),
            mask(c.inheritable()),
        );
        CapabilitySets {
            bounding: Some(mask(c.bounding())),
            effective,
            permitted,
            inheritable,
            ambient: mask(c.ambient()) & permitted & inheritable,
        }
    }

    /// Whether the effective set keeps capability number `cap`.
    pub fn keeps_effective(&self, cap: u32) -> bool {
        self.effective & (1 << cap) != 0
    }

    /// The exact sets for the launch stub: effective, permitted, inheritable, ambient.
    pub fn masks(&self) -> [u64; 4] {
        [
            self.effective,
            self.permitted,
            self.inheritable,
            self.ambient,
        ]
    }
}

/// CAP_SYS_ADMIN's number: with it kept, the process may load its seccomp filter last
/// without no_new_privs.
pub const CAP_SYS_ADMIN: u32 = 21;

/// The kernel's number of a capability (linux/capability.h).
fn number(c: oci_spec::runtime::Capability) -> u32 {
    use oci_spec::runtime::Capability as C;
    match c {
        C::Chown => 0,
        C::DacOverride => 1,
        C::DacReadSearch => 2,
        C::Fowner => 3,
        C::Fsetid => 4,
        C::Kill => 5,
        C::Setgid => 6,
        C::Setuid => 7,
        C::Setpcap => 8,
        C::LinuxImmutable => 9,
        C::NetBindService => 10,
        C::NetBroadcast => 11,
        C::NetAdmin => 12,
        C::NetRaw => 13,
        C::IpcLock => 14,
        C::IpcOwner => 15,
        C::SysModule => 16,
        C::SysRawio => 17,
        C::SysChroot => 18,
        C::SysPtrace => 19,
        C::SysPacct => 20,
        C::SysAdmin => 21,
        C::SysBoot => 22,
        C::SysNice => 23,
        C::SysResource => 24,
        C::SysTime => 25,
        C::SysTtyConfig => 26,
        C::Mknod => 27,
        C::Lease => 28,
        C::AuditWrite => 29,
        C::AuditControl => 30,
        C::Setfcap => 31,
        C::MacOverride => 32,
        C::MacAdmin => 33,
        C::Syslog => 34,
        C::WakeAlarm => 35,
        C::BlockSuspend => 36,
        C::AuditRead => 37,
        C::Perfmon => 38,
        C::Bpf => 39,
        C::CheckpointRestore => 40,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_sets_are_kernel_bit_masks() {
        let p: Process = serde_json::from_str(
            r#"{"cwd":"/","user":{"uid":0,"gid":0},"capabilities":{
                "bounding":["CAP_CHOWN","CAP_KILL","CAP_SYS_ADMIN","CAP_CHECKPOINT_RESTORE"],
                "effective":["CAP_KILL"],"permitted":["CAP_KILL","CAP_NET_RAW"],
                "inheritable":["CAP_NET_RAW"],"ambient":["CAP_NET_RAW","CAP_KILL"]}}"#,
        )
        .unwrap();
        let sets = CapabilitySets::of(&p);
        assert_eq!(sets.bounding, Some(1 | 1 << 5 | 1 << 21 | 1 << 40));
        assert_eq!(sets.effective, 1 << 5);
        assert_eq!(sets.permitted, 1 << 5 | 1 << 13);
        // Ambient only where also permitted and inheritable: KILL is not inheritable.
        assert_eq!(sets.ambient, 1 << 13);
        // Every variant maps to the kernel's number, as the caps crate knows them.
        for cap in caps::all() {
            let name = cap.to_string();
            let oci: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(name.clone())).unwrap();
            assert_eq!(number(oci), cap.index() as u32, "{name}");
        }
        let none: Process =
            serde_json::from_str(r#"{"cwd":"/","user":{"uid":0,"gid":0}}"#).unwrap();
        assert_eq!(CapabilitySets::of(&none), CapabilitySets::default());
    }
}
