//! pelagos-launch: the tiny static program that makes a container process's final `execve`
//! (CVE-2019-5736). The init and exec children are clones of the runtime; they exec this
//! program from a sealed memfd once everything else is done, so that no process that runs the
//! container's command (or a `#!/proc/self/exe` script) has the runtime's file as its
//! executable. It sets the exact capability sets, no_new_privs and the seccomp filter, then
//! execs the user's program: after the filter, only `execve` (and, for a notify filter, one
//! `sendmsg`) happen. With a parent death signal in the plan it sets `PR_SET_PDEATHSIG` after
//! the last credential change (capset; the user switch happened before this exec) and, before
//! the filter, checks through the caller's pidfd that the caller is still alive.
//!
//! Built by `crates/container/build.rs` with rustc alone (no_std, no libc, static, no PIE) and
//! embedded in the library. Usage (only by the library):
//!   pelagos-launch --exec PATH ARGV0 [ARGS...]   (hooks the init runs: execve as given)
//!   pelagos-launch PLAN_FD SYNC_FD FIFO_FD
//! PLAN_FD holds the plan (layout in `crates/container/src/init/launch.rs`, `write_plan`).
//! SYNC_FD (or -1) is the sync socket: errors go there as a `Failed` message, a notify
//! listener fd as `SeccompFd`. FIFO_FD (or -1) is `start`'s exec fifo. An error is a failure
//! report (`sync::encode_failure` in the library: kind byte, errno, stage, text) on both.
//! Both are marked close-on-exec first, so their peers see end-of-file at the final execve.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call launch_main",
    "ud2",
);

const SYS_WRITE: usize = 1;
const SYS_CLOSE: usize = 3;
const SYS_FSTAT: usize = 5;
const SYS_POLL: usize = 7;
const SYS_MMAP: usize = 9;
const SYS_SENDMSG: usize = 46;
const SYS_EXECVE: usize = 59;
const SYS_FCNTL: usize = 72;
const SYS_CAPSET: usize = 126;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;
const SYS_SECCOMP: usize = 317;

const PLAN_MAGIC: u32 = 0x324e_4c50; // "PLN2"
const FLAG_NO_NEW_PRIVS: u32 = 1;
const FLAG_SECCOMP: u32 = 2;
const FLAG_NOTIFY: u32 = 4;

/// The sync protocol's tags (crates/container/src/sync.rs).
const MSG_FAILED: u8 = 5;
const MSG_SECCOMP_FD: u8 = 7;

/// `ErrorKind::code` of the kinds the stub reports (crates/container/src/kind.rs).
const KIND_INVALID_ARGUMENT: u8 = 1;
const KIND_NOT_EXECUTABLE: u8 = 4;
const KIND_EXECUTABLE_NOT_FOUND: u8 = 5;
const KIND_INTERNAL: u8 = 7;

/// The stage of the final execve, whose errno tells the kind.
const STAGE_EXEC: &[u8] = b"exec";

unsafe fn syscall6(n: usize, a: usize, b: usize, c: usize, d: usize, e: usize, f: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for syscall `n`.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
             in("rdx") c, in("r10") d, in("r8") e, in("r9") f,
             lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

unsafe fn syscall3(n: usize, a: usize, b: usize, c: usize) -> isize {
    // SAFETY: forwarded.
    unsafe { syscall6(n, a, b, c, 0, 0, 0) }
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes an integer.
        unsafe { syscall3(SYS_EXIT_GROUP, code, 0, 0) };
    }
}

/// Where failures are reported.
struct Report {
    sync_fd: isize,
    fifo_fd: isize,
}

impl Report {
    /// Report `what: errno text` (and the path for exec) as a failure report of `stage`, and
    /// exit 127... as the init would. `errno` is the syscall's negative return.
    fn fail(&self, stage: &[u8], what: &[u8], path: &[u8], errno: isize) -> ! {
        let errno = -errno;
        let mut buf = [0u8; 512];
        let mut n = 0;
        let mut put = |s: &[u8]| {
            for &b in s {
                if n < buf.len() {
                    buf[n] = b;
                    n += 1;
                }
            }
        };
        // Tag, then the report: kind, errno (i32 LE), stage length, stage, text.
        put(&[MSG_FAILED, kind_of(stage, errno)]);
        put(&(errno as i32).to_le_bytes());
        put(&[stage.len() as u8]);
        put(stage);
        let text_at = 7 + stage.len();
        put(what);
        if !path.is_empty() {
            put(b" ");
            put(path);
        }
        put(b": ");
        put(errno_text(errno));
        let at = |i: usize| buf.as_ptr() as usize + i;
        // SAFETY: writes from a buffer we own, within its first n bytes.
        unsafe {
            if self.sync_fd >= 0 {
                syscall3(SYS_WRITE, self.sync_fd as usize, at(0), n);
            }
            if self.fifo_fd >= 0 {
                syscall3(SYS_WRITE, self.fifo_fd as usize, at(1), n - 1);
            }
            if self.sync_fd < 0 && self.fifo_fd < 0 {
                syscall3(SYS_WRITE, 2, at(text_at), n - text_at);
                syscall3(SYS_WRITE, 2, b"\n".as_ptr() as usize, 1);
            }
        }
        exit(127)
    }
}

/// The kind of a failure (`ErrorKind` in the library): only the final execve's errno says
/// more than "internal": the program is missing, or cannot be executed.
fn kind_of(stage: &[u8], errno: isize) -> u8 {
    if stage != STAGE_EXEC {
        return KIND_INTERNAL;
    }
    match errno {
        2 | 20 => KIND_EXECUTABLE_NOT_FOUND, // ENOENT, ENOTDIR (also a missing interpreter)
        1 | 8 | 13 | 21 => KIND_NOT_EXECUTABLE, // EPERM, ENOEXEC, EACCES, EISDIR
        7 => KIND_INVALID_ARGUMENT,           // E2BIG: the arguments are too long
        _ => KIND_INTERNAL,
    }
}

/// runc's words for the errors callers tell apart (Docker's 126/127), numbers otherwise.
fn errno_text(errno: isize) -> &'static [u8] {
    match errno {
        1 => b"operation not permitted",
        2 => b"no such file or directory",
        3 => b"no such process",
        7 => b"argument list too long",
        8 => b"exec format error",
        9 => b"bad file descriptor",
        12 => b"cannot allocate memory",
        13 => b"permission denied",
        14 => b"bad address",
        20 => b"not a directory",
        21 => b"is a directory",
        22 => b"invalid argument",
        26 => b"text file busy",
        40 => b"too many levels of symbolic links",
        _ => b"unexpected error",
    }
}

/// A cursor over the plan, mapped copy-on-write so pointer arrays can be filled in place.
struct Plan {
    base: *mut u8,
    len: usize,
    pos: usize,
}

impl Plan {
    fn u32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        // SAFETY: take checked that 4 bytes lie inside the mapping.
        Some(u32::from_le_bytes(unsafe { [*b, *b.add(1), *b.add(2), *b.add(3)] }))
    }
    fn u64(&mut self) -> Option<u64> {
        let lo = self.u32()? as u64;
        let hi = self.u32()? as u64;
        Some(lo | hi << 32)
    }
    /// `n` bytes, then padding to 8.
    fn take(&mut self, n: usize) -> Option<*mut u8> {
        let end = self.pos.checked_add(n)?;
        if end > self.len {
            return None;
        }
        // SAFETY: pos..end is inside the mapping.
        let p = unsafe { self.base.add(self.pos) };
        self.pos = end;
        Some(p)
    }
    fn align8(&mut self) -> Option<()> {
        let pad = (8 - self.pos % 8) % 8;
        self.take(pad).map(drop)
    }
    /// A NUL-terminated string of the given length (NUL included).
    fn cstr(&mut self) -> Option<(*const u8, usize)> {
        let n = self.u32()? as usize;
        let p = self.take(n)?;
        // SAFETY: n bytes at p are inside the mapping.
        if n == 0 || unsafe { *p.add(n - 1) } != 0 {
            return None;
        }
        self.align8()?;
        Some((p, n - 1))
    }
    /// `count` strings and a NULL-terminated pointer array (room reserved by the writer).
    fn string_list(&mut self) -> Option<*const *const u8> {
        let count = self.u32()? as usize;
        self.align8()?;
        let table = self.take(count.checked_add(1)?.checked_mul(8)?)? as *mut *const u8;
        for i in 0..count {
            let (p, _) = self.cstr()?;
            // SAFETY: the table has count + 1 slots.
            unsafe { *table.add(i) = p };
        }
        // SAFETY: the last slot.
        unsafe { *table.add(count) = core::ptr::null() };
        Some(table)
    }
}

/// Entry point from `_start`: the stack holds argc, argv[], NULL, envp[].
#[no_mangle]
unsafe extern "C" fn launch_main(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    if argc >= 4 && is_exec_flag(argv) {
        exec_as_given(argc, argv);
    }
    if argc < 4 {
        exit(126);
    }
    // SAFETY: argc >= 4 strings are present.
    let (plan_fd, sync_fd, fifo_fd) =
        unsafe { (parse_int(*argv.add(1)), parse_int(*argv.add(2)), parse_int(*argv.add(3))) };
    let report = Report { sync_fd, fifo_fd };
    for fd in [sync_fd, fifo_fd] {
        if fd >= 0 {
            // SAFETY: F_SETFD on a descriptor number; no memory involved.
            unsafe { syscall3(SYS_FCNTL, fd as usize, 2 /* F_SETFD */, 1 /* FD_CLOEXEC */) };
        }
    }
    let Some(mut plan) = map_plan(plan_fd) else {
        report.fail(b"launch", b"read the launch plan", b"", -22);
    };
    // SAFETY: the plan descriptor is ours; the mapping stays.
    unsafe { syscall3(SYS_CLOSE, plan_fd as usize, 0, 0) };
    match run(&mut plan, &report) {
        Some(never) => match never {},
        None => report.fail(b"launch", b"parse the launch plan", b"", -22),
    }
}

/// argv[1] == "--exec".
fn is_exec_flag(argv: *const *const u8) -> bool {
    // SAFETY: argv[1] exists (argc >= 4) and is NUL-terminated.
    let arg = unsafe { *argv.add(1) };
    let want = b"--exec\0";
    (0..want.len()).all(|i| unsafe { *arg.add(i) } == want[i])
}

/// `--exec PATH ARGV0 ARGS...`: execve(PATH, [ARGV0, ARGS...], our environment). Used for the
/// hooks the init runs inside the container's namespaces.
fn exec_as_given(argc: usize, argv: *const *const u8) -> ! {
    // SAFETY: the kernel's initial stack layout: envp follows argv's NULL.
    let (path, args, envp) = unsafe { (*argv.add(2), argv.add(3), argv.add(argc + 1)) };
    // SAFETY: NUL-terminated path, NULL-terminated arrays from the kernel's stack.
    let r = unsafe { syscall3(SYS_EXECVE, path as usize, args as usize, envp as usize) };
    let report = Report {
        sync_fd: -1,
        fifo_fd: -1,
    };
    let mut len = 0;
    // SAFETY: path is NUL-terminated.
    while unsafe { *path.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: len bytes before the NUL.
    report.fail(b"hook", b"exec hook", unsafe { core::slice::from_raw_parts(path, len) }, r)
}

fn parse_int(mut p: *const u8) -> isize {
    let mut neg = false;
    let mut v: isize = 0;
    // SAFETY: argv strings are NUL-terminated.
    unsafe {
        if *p == b'-' {
            neg = true;
            p = p.add(1);
        }
        while (b'0'..=b'9').contains(&*p) {
            v = v * 10 + (*p - b'0') as isize;
            p = p.add(1);
        }
    }
    if neg {
        -v
    } else {
        v
    }
}

fn map_plan(fd: isize) -> Option<Plan> {
    let mut st = [0u64; 18]; // struct stat is 144 bytes on x86_64
    // SAFETY: fstat writes a struct stat into our buffer, which is large enough.
    if unsafe { syscall3(SYS_FSTAT, fd as usize, st.as_mut_ptr() as usize, 0) } < 0 {
        return None;
    }
    let len = st[6] as usize; // st_size
    if len == 0 {
        return None;
    }
    // PROT_READ|PROT_WRITE, MAP_PRIVATE: pointer tables are filled in a private copy.
    // SAFETY: a new mapping of the plan file; nothing else uses that address range.
    let p = unsafe { syscall6(SYS_MMAP, 0, len, 3, 2, fd as usize, 0) };
    if p < 0 && p > -4096 {
        return None;
    }
    Some(Plan {
        base: p as *mut u8,
        len,
        pos: 0,
    })
}

/// Parse the plan and apply it; returns None for a malformed plan.
fn run(plan: &mut Plan, report: &Report) -> Option<core::convert::Infallible> {
    if plan.u32()? != PLAN_MAGIC {
        return None;
    }
    let flags = plan.u32()?;
    let caps = [plan.u64()?, plan.u64()?, plan.u64()?, plan.u64()?];
    let parent_death_signal = plan.u32()? as usize;
    let caller_pidfd = plan.u32()? as i32 as isize;
    let seccomp_flags = plan.u32()? as usize;
    let bpf_count = plan.u32()? as usize;
    let bpf = plan.take(bpf_count.checked_mul(8)?)?;
    plan.align8()?;
    let (exe, exe_len) = plan.cstr()?;
    let argv = plan.string_list()?;
    let envp = plan.string_list()?;
    // SAFETY: exe points at exe_len bytes inside the mapping.
    let exe_bytes = unsafe { core::slice::from_raw_parts(exe, exe_len) };

    set_capabilities(caps, report);
    if flags & FLAG_NO_NEW_PRIVS != 0 {
        // SAFETY: prctl with integer arguments.
        let r = unsafe { syscall6(SYS_PRCTL, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0, 0) };
        if r < 0 {
            report.fail(b"capabilities", b"set no_new_privs", b"", r);
        }
    }
    if parent_death_signal != 0 {
        watch_parent(parent_death_signal, caller_pidfd, report);
    }
    if flags & FLAG_SECCOMP != 0 {
        load_seccomp(bpf, bpf_count, seccomp_flags, flags & FLAG_NOTIFY != 0, report);
    }
    // SAFETY: NUL-terminated path and NULL-terminated arrays inside the mapping.
    let r = unsafe { syscall3(SYS_EXECVE, exe as usize, argv as usize, envp as usize) };
    report.fail(STAGE_EXEC, b"exec", exe_bytes, r)
}

/// `PR_SET_PDEATHSIG`, after every credential change (they clear it), then make sure the
/// caller did not die before it was set: its pidfd polls readable once it has exited. The
/// pidfd is closed here: the container's program never holds it.
fn watch_parent(signal: usize, caller: isize, report: &Report) {
    // SAFETY: prctl with integer arguments.
    let r = unsafe { syscall6(SYS_PRCTL, 1 /* PR_SET_PDEATHSIG */, signal, 0, 0, 0, 0) };
    if r < 0 {
        report.fail(b"parent", b"set the parent death signal", b"", r);
    }
    if caller < 0 {
        return;
    }
    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }
    let mut pfd = PollFd {
        fd: caller as i32,
        events: 1, // POLLIN
        revents: 0,
    };
    let r = loop {
        // SAFETY: poll reads and writes one pollfd we own; timeout 0 never blocks.
        let r = unsafe { syscall3(SYS_POLL, &mut pfd as *mut PollFd as usize, 1, 0) };
        if r != -4 {
            break r; // not EINTR
        }
    };
    // SAFETY: closing the caller's pidfd, ours since the exec.
    unsafe { syscall3(SYS_CLOSE, caller as usize, 0, 0) };
    if r < 0 {
        report.fail(b"parent", b"check that the container's creator is alive", b"", r);
    }
    if r > 0 {
        let why = b"the process that created the container exited before its program started";
        report.fail(b"parent", why, b"", -3 /* ESRCH */);
    }
}

/// capset(2) with effective, permitted and inheritable, then the ambient set exactly.
fn set_capabilities(caps: [u64; 4], report: &Report) {
    let [eff, perm, inh, amb] = caps;
    let header: [u32; 2] = [0x2008_0522, 0]; // _LINUX_CAPABILITY_VERSION_3, this process
    let data: [u32; 6] = [
        eff as u32,
        perm as u32,
        inh as u32,
        (eff >> 32) as u32,
        (perm >> 32) as u32,
        (inh >> 32) as u32,
    ];
    // SAFETY: capset reads a v3 header and two data structs that live for the call.
    let r = unsafe { syscall3(SYS_CAPSET, header.as_ptr() as usize, data.as_ptr() as usize, 0) };
    if r < 0 {
        report.fail(b"capabilities", b"set capabilities", b"", r);
    }
    const PR_CAP_AMBIENT: usize = 47;
    // SAFETY: prctl with integer arguments.
    let r = unsafe { syscall6(SYS_PRCTL, PR_CAP_AMBIENT, 4 /* CLEAR_ALL */, 0, 0, 0, 0) };
    if r < 0 {
        report.fail(b"capabilities", b"clear ambient capabilities", b"", r);
    }
    for cap in 0..64 {
        if amb & (1 << cap) != 0 {
            // SAFETY: prctl with integer arguments.
            let r = unsafe { syscall6(SYS_PRCTL, PR_CAP_AMBIENT, 2 /* RAISE */, cap, 0, 0, 0) };
            if r < 0 {
                report.fail(b"capabilities", b"raise an ambient capability", b"", r);
            }
        }
    }
}

/// seccomp(SECCOMP_SET_MODE_FILTER); a notify listener goes to the runtime over SYNC_FD.
fn load_seccomp(bpf: *mut u8, count: usize, flags: usize, notify: bool, report: &Report) {
    #[repr(C)]
    struct SockFprog {
        len: u16,
        filter: *const u8,
    }
    let prog = SockFprog {
        len: count as u16,
        filter: bpf,
    };
    // SAFETY: the program lives in the mapping; the kernel copies it.
    let r = unsafe { syscall3(SYS_SECCOMP, 1, flags, &prog as *const SockFprog as usize) };
    if r < 0 {
        report.fail(b"seccomp", b"load the seccomp filter", b"", r);
    }
    if notify && report.sync_fd >= 0 {
        send_listener(report.sync_fd, r, report);
    }
}

/// One sendmsg: the SeccompFd tag with the listener fd as SCM_RIGHTS.
fn send_listener(sock: isize, listener: isize, report: &Report) {
    #[repr(C)]
    struct Iovec {
        base: *const u8,
        len: usize,
    }
    #[repr(C)]
    struct Msghdr {
        name: usize,
        namelen: u32,
        iov: *const Iovec,
        iovlen: usize,
        control: *const u8,
        controllen: usize,
        flags: i32,
    }
    let tag = [MSG_SECCOMP_FD];
    let iov = Iovec {
        base: tag.as_ptr(),
        len: 1,
    };
    // cmsghdr { len: u64 = 20, level: i32 = SOL_SOCKET, type: i32 = SCM_RIGHTS } + fd, padded.
    let mut control = [0u8; 24];
    control[0] = 20;
    control[8] = 1; // SOL_SOCKET
    control[12] = 1; // SCM_RIGHTS
    let fd = (listener as i32).to_le_bytes();
    control[16] = fd[0];
    control[17] = fd[1];
    control[18] = fd[2];
    control[19] = fd[3];
    let msg = Msghdr {
        name: 0,
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: control.as_ptr(),
        controllen: 24,
        flags: 0,
    };
    // SAFETY: every pointer in msg refers to locals that outlive the call.
    let r = unsafe {
        syscall3(SYS_SENDMSG, sock as usize, &msg as *const Msghdr as usize, 0x4000 /* NOSIGNAL */)
    };
    if r < 0 {
        report.fail(b"seccomp", b"send the seccomp listener", b"", r);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(127)
}

mod nolibc;
