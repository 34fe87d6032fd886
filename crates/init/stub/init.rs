//! pelagos-init: the tiny static init that `docker run --init` puts at pid 1 of a container
//! (tini's job, Docker's `/sbin/docker-init`). It runs the command as its only child, forwards
//! every signal it receives to that child, reaps every zombie, and exits with the child's status.
//!
//! Built by `crates/init/build.rs` with rustc alone (no_std, no libc, static, no PIE, x86_64)
//! and embedded in the `pelagos-init` library. Usage:
//!   pelagos-init [--] COMMAND [ARG...]
//! The command is found on `PATH` (from the environment, or the default below) when it has no
//! '/', as execvp does, without execvp's `/bin/sh` retry for files without a `#!` (as runc).
//! Exit status: the command's, 128+N if a signal N killed it, 127 if it was not found, 126 if
//! it could not be executed, 1 for a usage error or a failed fork.
//!
//! Signals go to the child's pid only (tini's default, what Docker runs; not tini -g's process
//! group): the child leads its own process group, and a terminal's keys reach that group
//! directly because the child takes the terminal's foreground.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};

global_asm!(
    ".globl _start",
    "_start:",
    "xor rbp, rbp",
    "mov rdi, rsp",
    "and rsp, -16",
    "call init_main",
    "ud2",
);

const SYS_WRITE: usize = 1;
const SYS_RT_SIGACTION: usize = 13;
const SYS_RT_SIGPROCMASK: usize = 14;
const SYS_IOCTL: usize = 16;
const SYS_GETPID: usize = 39;
const SYS_FORK: usize = 57;
const SYS_EXECVE: usize = 59;
const SYS_WAIT4: usize = 61;
const SYS_KILL: usize = 62;
const SYS_SETPGID: usize = 109;
const SYS_GETPGRP: usize = 111;
const SYS_RT_SIGTIMEDWAIT: usize = 128;
const SYS_PRCTL: usize = 157;
const SYS_EXIT_GROUP: usize = 231;

const ENOENT: isize = 2;
const EACCES: isize = 13;

const SIGCHLD: usize = 17;
const SIGTTIN: usize = 21;
const SIGTTOU: usize = 22;

/// Signals the init never blocks: the synchronous ones (a fault while blocked kills anyway)
/// and the terminal's stop signals, which it ignores instead, so that its own writes to a
/// terminal whose foreground is the child's group cannot stop it (as tini).
const NEVER_BLOCKED: [usize; 9] = [4, 5, 6, 7, 8, 11, 31, SIGTTIN, SIGTTOU];

const DEFAULT_PATH: &[u8] = b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

unsafe fn syscall4(n: usize, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for syscall `n`.
    unsafe {
        asm!("syscall", inlateout("rax") n as isize => ret, in("rdi") a, in("rsi") b,
             in("rdx") c, in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

fn exit(code: usize) -> ! {
    loop {
        // SAFETY: exit_group takes an integer.
        unsafe { syscall4(SYS_EXIT_GROUP, code, 0, 0, 0) };
    }
}

/// Writes `pelagos-init: ` and the parts as one line on stderr, in one write.
fn say(parts: &[&[u8]]) {
    let mut buf = [0u8; 512];
    let mut n = 0;
    for part in [b"pelagos-init: " as &[u8]]
        .iter()
        .chain(parts)
        .chain(&[b"\n" as &[u8]])
    {
        for &b in *part {
            n = put(&mut buf, n, b);
        }
    }
    if n == buf.len() {
        buf[n - 1] = b'\n';
    }
    // SAFETY: writes n bytes from a buffer we own.
    unsafe { syscall4(SYS_WRITE, 2, buf.as_ptr() as usize, n, 0) };
}

/// Stores `b` at `buf[n]` if there is room; the next free index. (No indexing that can
/// panic: core's panic code wants an unwinder, which this program does not link.)
fn put(buf: &mut [u8], n: usize, b: u8) -> usize {
    match buf.get_mut(n) {
        Some(slot) => {
            *slot = b;
            n + 1
        }
        None => n,
    }
}

/// The kernel's `struct sigaction` on x86_64.
#[repr(C)]
#[derive(Clone, Copy)]
struct KernelSigaction {
    handler: usize,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// What the init changed about signals, kept so the child can put it back before its exec.
struct SavedSignals {
    mask: u64,
    ttin: KernelSigaction,
    ttou: KernelSigaction,
}

fn bit(sig: usize) -> u64 {
    1 << (sig - 1)
}

/// The signals the init blocks and waits for: all but `NEVER_BLOCKED` (the kernel drops
/// SIGKILL and SIGSTOP from the set itself).
fn waited_signals() -> u64 {
    NEVER_BLOCKED
        .iter()
        .fold(!0u64, |set, &sig| set & !bit(sig))
}

/// Blocks every waited signal and ignores SIGTTIN/SIGTTOU; returns what was there before.
/// Blocked signals reach pid 1 of a pid namespace even without a handler (the kernel only
/// drops unblocked, default-action ones), so no handler is needed.
fn take_over_signals() -> SavedSignals {
    let set = waited_signals();
    let ignore = KernelSigaction {
        handler: 1, /* SIG_IGN */
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let mut saved = SavedSignals {
        mask: 0,
        ttin: ignore,
        ttou: ignore,
    };
    // SAFETY: the kernel reads and writes 8-byte sets and sigaction structs we own.
    unsafe {
        syscall4(
            SYS_RT_SIGPROCMASK,
            2, /* SIG_SETMASK */
            &set as *const u64 as usize,
            &mut saved.mask as *mut u64 as usize,
            8,
        );
        for (sig, old) in [(SIGTTIN, &mut saved.ttin), (SIGTTOU, &mut saved.ttou)] {
            syscall4(
                SYS_RT_SIGACTION,
                sig,
                &ignore as *const _ as usize,
                old as *mut KernelSigaction as usize,
                8,
            );
        }
    }
    saved
}

/// In the child: the dispositions and mask the init was started with, as the command would
/// have had without an init.
fn give_back_signals(saved: &SavedSignals) {
    // SAFETY: the kernel reads sigaction structs and a set we own.
    unsafe {
        for (sig, old) in [(SIGTTIN, &saved.ttin), (SIGTTOU, &saved.ttou)] {
            syscall4(
                SYS_RT_SIGACTION,
                sig,
                old as *const KernelSigaction as usize,
                0,
                8,
            );
        }
        syscall4(
            SYS_RT_SIGPROCMASK,
            2,
            &saved.mask as *const u64 as usize,
            0,
            8,
        );
    }
}

/// In the child: a process group of its own, and the terminal's foreground if stdin is one
/// (errors ignored: no terminal, or not ours). SIGTTOU is still blocked here, so taking the
/// foreground from the background cannot stop the child.
fn isolate_child() {
    // SAFETY: integer arguments; TIOCSPGRP reads the pid_t we own.
    unsafe {
        syscall4(SYS_SETPGID, 0, 0, 0, 0);
        let pgrp = syscall4(SYS_GETPGRP, 0, 0, 0, 0) as i32;
        syscall4(
            SYS_IOCTL,
            0,
            0x5410, /* TIOCSPGRP */
            &pgrp as *const i32 as usize,
            0,
        );
    }
}

/// Entry point from `_start`: the stack holds argc, argv[], NULL, envp[].
#[no_mangle]
unsafe extern "C" fn init_main(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout.
    let (argc, argv) = unsafe { (*sp, sp.add(1) as *const *const u8) };
    // SAFETY: envp follows argv's NULL.
    let envp = unsafe { argv.add(argc + 1) };
    // SAFETY: argv[1] exists when argc > 1 and is NUL-terminated.
    let first = if argc > 1 && unsafe { cstr(*argv.add(1)) } == b"--" {
        2
    } else {
        1
    };
    if first >= argc {
        say(&[b"usage: pelagos-init [--] COMMAND [ARG...]"]);
        exit(1);
    }
    // SAFETY: argv[first..argc] are the command and its arguments, NULL-terminated.
    let command = unsafe { argv.add(first) };
    // SAFETY: integer arguments.
    if unsafe { syscall4(SYS_GETPID, 0, 0, 0, 0) } != 1 {
        // Not pid 1 (a shared pid namespace): orphans come to us only as a subreaper.
        // SAFETY: integer arguments.
        unsafe {
            syscall4(SYS_PRCTL, 36 /* PR_SET_CHILD_SUBREAPER */, 1, 0, 0)
        };
    }
    let saved = take_over_signals();
    // SAFETY: fork has no arguments; the process is single-threaded.
    let child = unsafe { syscall4(SYS_FORK, 0, 0, 0, 0) };
    if child < 0 {
        say(&[b"fork: ", errno_text(-child)]);
        exit(1);
    }
    if child == 0 {
        isolate_child();
        give_back_signals(&saved);
        exec_command(command, envp);
    }
    supervise(child)
}

/// Forwards each signal to the child and reaps after each wake-up, until the child is gone.
fn supervise(child: isize) -> ! {
    let set = waited_signals();
    loop {
        // SAFETY: the kernel reads the 8-byte set; no siginfo, no timeout.
        let sig = unsafe { syscall4(SYS_RT_SIGTIMEDWAIT, &set as *const u64 as usize, 0, 0, 8) };
        if sig > 0 && sig as usize != SIGCHLD {
            // SAFETY: integer arguments; ESRCH (the child just exited) is fine.
            unsafe { syscall4(SYS_KILL, child as usize, sig as usize, 0, 0) };
        }
        if let Some(code) = reap_all(child) {
            exit(code);
        }
    }
}

/// Waits for every exited child without blocking; the main child's exit code if it was one.
fn reap_all(child: isize) -> Option<usize> {
    let mut code = None;
    loop {
        let mut status: i32 = 0;
        // SAFETY: wait4 writes the status we own; WNOHANG, no rusage.
        let pid = unsafe {
            syscall4(
                SYS_WAIT4,
                -1isize as usize,
                &mut status as *mut i32 as usize,
                1,
                0,
            )
        };
        if pid <= 0 {
            return code;
        }
        if pid == child {
            code = Some(exit_code(status));
        }
    }
}

/// The shell's convention: the exit status, or 128+N when signal N ended the process.
fn exit_code(status: i32) -> usize {
    let sig = (status & 0x7f) as usize;
    if sig == 0 {
        ((status >> 8) & 0xff) as usize
    } else {
        128 + sig
    }
}

/// execve the command, searching `PATH` when it names no directory; never returns.
fn exec_command(command: *const *const u8, envp: *const *const u8) -> ! {
    // SAFETY: command[0] exists and is NUL-terminated.
    let name = unsafe { cstr(*command) };
    if name.is_empty() {
        exec_failed(name, -ENOENT, false);
    }
    // Not `contains`: core's memchr brings core's panic code, which wants an unwinder.
    #[allow(clippy::manual_contains)]
    let has_slash = name.iter().any(|&b| b == b'/');
    if has_slash {
        // SAFETY: NUL-terminated path, NULL-terminated arrays from the kernel's stack.
        let r = unsafe {
            syscall4(
                SYS_EXECVE,
                name.as_ptr() as usize,
                command as usize,
                envp as usize,
                0,
            )
        };
        exec_failed(name, r, false);
    }
    let mut denied = false;
    for dir in search_path(envp).split(|&b| b == b':') {
        let mut buf = [0u8; 4096];
        let Some(path) = join(&mut buf, dir, name) else {
            continue;
        };
        // SAFETY: NUL-terminated path in buf, NULL-terminated arrays from the kernel's stack.
        let r = unsafe {
            syscall4(
                SYS_EXECVE,
                path as usize,
                command as usize,
                envp as usize,
                0,
            )
        };
        match -r {
            EACCES => denied = true,
            // Not in this directory (or it is unusable): try the next, as execvp.
            2 | 19 | 20 | 110 | 116 => {} // ENOENT ENODEV ENOTDIR ETIMEDOUT ESTALE
            _ => exec_failed(name, r, false),
        }
    }
    exec_failed(name, if denied { -EACCES } else { -ENOENT }, true)
}

/// Reports an exec failure naming the command; 127 for not found, 126 otherwise.
fn exec_failed(name: &[u8], r: isize, searched: bool) -> ! {
    let errno = -r;
    let text = if searched && errno == ENOENT {
        b"executable file not found in $PATH" as &[u8]
    } else {
        errno_text(errno)
    };
    say(&[b"exec \"", name, b"\": ", text]);
    exit(if errno == ENOENT { 127 } else { 126 })
}

/// `dir/name` NUL-terminated in buf (`name` alone for an empty entry: the current directory,
/// as execvp); None if it does not fit.
fn join(buf: &mut [u8], dir: &[u8], name: &[u8]) -> Option<*const u8> {
    let slash: &[u8] = if dir.is_empty() { b"" } else { b"/" };
    let mut n = 0;
    for &b in dir.iter().chain(slash).chain(name).chain(b"\0") {
        n = put(buf, n, b);
    }
    // `put` stops at the end of buf, so n falls short exactly when the path does not fit.
    (n == dir.len() + slash.len() + name.len() + 1).then_some(buf.as_ptr())
}

/// `PATH` from the environment, or the default.
fn search_path(envp: *const *const u8) -> &'static [u8] {
    let mut i = 0;
    loop {
        // SAFETY: envp is NULL-terminated; each entry is NUL-terminated.
        let entry = unsafe { *envp.add(i) };
        if entry.is_null() {
            return DEFAULT_PATH;
        }
        // SAFETY: as above.
        if let Some(path) = unsafe { cstr(entry) }.strip_prefix(b"PATH=") {
            return path;
        }
        i += 1;
    }
}

/// The bytes of a NUL-terminated string (without the NUL).
///
/// # Safety
/// `p` points at a NUL-terminated string that lives for the whole program (argv, envp).
unsafe fn cstr(p: *const u8) -> &'static [u8] {
    // SAFETY: the caller's promise.
    unsafe { core::slice::from_raw_parts(p, strlen(p)) }
}

/// Words for the errors a user can act on (lowercase, as Docker prints them).
fn errno_text(errno: isize) -> &'static [u8] {
    match errno {
        1 => b"operation not permitted",
        2 => b"no such file or directory",
        7 => b"argument list too long",
        8 => b"exec format error",
        11 => b"resource temporarily unavailable",
        12 => b"cannot allocate memory",
        13 => b"permission denied",
        20 => b"not a directory",
        21 => b"is a directory",
        26 => b"text file busy",
        36 => b"file name too long",
        40 => b"too many levels of symbolic links",
        _ => b"unexpected error",
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(1)
}

// The launch stub's copy of the functions the compiler may call (there is no libc).
#[path = "../../container/stub/nolibc.rs"]
mod nolibc;
use nolibc::strlen;
