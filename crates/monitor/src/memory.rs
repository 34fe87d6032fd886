//! Keeping the resident monitor small. Creating a container or an exec runs a lot of code
//! (spec building, seccomp compilation, the runtime core), allocates and goes deep on the
//! stack; between those the monitor only sleeps in poll(2). So after a burst of work it sheds
//! what the burst left resident: free heap, the read buffer's pages, the stack below the
//! loop's frame, and, as the very last step before it sleeps, the pages of its own code and
//! read-only data (clean file pages, which the kernel maps again from the page cache on the
//! next use) and, in the static-pie release build, its relocated read-only data (RELRO),
//! rebuilt from the executable's RELR relocations the moment it wakes (`relro`).
//!
//! The code pages go last because every page fault maps a whole window of neighbouring
//! pages (the kernel's fault-around): whatever runs between the drop and the sleep would map
//! much of the binary back. So the drops and the poll are raw system calls in one small
//! function.
//!
//! Why dropping RELRO is safe. A static-pie executable relocates itself at start: the
//! pointers in its constant data (vtables, `&'static str` in constant tables, the GOT) get
//! the load base added, which makes ~190 KiB of RELRO pages private copies. A dropped RELRO
//! page reads as the file's unrelocated words, so no code that reads them may run between
//! the drop and the rebuild. That window lies inside one `#[inline(never)]` function,
//! `drop_and_poll`: raw system calls (mprotect writable, madvise, poll), then the RELR loop
//! on integers it was passed, reading only its arguments, its stack and the RELR table (in
//! a read-only segment that is never written), then mprotect read-only again; its assembly
//! has no call and no GOT or RELRO reference (checked with objdump, docs/monitor.md). No
//! other code runs in the window: the monitor has one thread (checked in /proc/self/task
//! before each drop) and no process shares its memory while it runs (its clones have fork
//! semantics; a vfork-style spawn suspends it until the exec); the only signal disposition
//! it sets is SIGPIPE's (ignored), so no handler runs Rust code (std's SIGSEGV and SIGBUS
//! handlers run only on a crash); an interrupted poll comes back through the same rebuild.
//! Only pages whose whole content is the file's plus the RELR relocations are dropped:
//! checked once, byte for byte, by relocating the file's pages with the same loop and
//! comparing them with memory (RELRO is read-only from before `main` on, so nothing writes
//! it later), so pages holding anything else written at run time (ifunc GOT entries, the
//! dynamic section glibc adjusts, zeroed padding) and pages that other relocations target
//! are never dropped. If anything is unexpected (no RELR table, a fixed address, another
//! architecture) RELRO simply stays resident.

use std::ptr::NonNull;

use crate::error::{Error, Result};

mod relro;

/// Heap settings for a long-lived process that allocates in bursts: freed memory goes back
/// to the kernel at once.
pub fn tune_heap() {
    // SAFETY: mallopt only changes glibc's allocator parameters.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 * 1024);
        libc::mallopt(libc::M_TOP_PAD, 0);
    }
}

/// A read buffer of its own pages, so that they can be given back when idle.
pub struct Scratch {
    ptr: NonNull<u8>,
    len: usize,
}

impl Scratch {
    /// `len` bytes (a multiple of the page size), zeroed.
    pub fn new(len: usize) -> Result<Scratch> {
        // SAFETY: an anonymous private mapping at an address of the kernel's choice; no
        // existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::io(
                "map the read buffer",
                std::io::Error::last_os_error(),
            ));
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| Error::Internal("mmap returned a null buffer".into()))?;
        Ok(Scratch { ptr, len })
    }

    /// Gives its pages back (its content is scratch: nothing is kept between reads).
    pub fn release(&mut self) {
        // SAFETY: the range is exactly our own anonymous mapping, and `&mut self` proves no
        // slice of it is alive; the pages read as zeroes afterwards.
        unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_DONTNEED) };
    }
}

impl std::ops::Deref for Scratch {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` mapped, readable bytes owned by this value for its whole life.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` makes the slice exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // SAFETY: our own mapping, unmapped once; no slice of it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// Stack kept below the caller's frame: the frames of the calls made from here live there.
const STACK_MARGIN: usize = 16 * 1024;
const PAGE: usize = 4096;

/// What to drop before sleeping: the address ranges of the executable's clean read-only
/// pages, and its relocated read-only data when that can be rebuilt.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Image {
    ranges: Vec<(usize, usize)>,
    relro: Option<relro::Relro>,
}

/// Gives back what a burst of work left resident (free heap, the deep stack) and returns the
/// code and constant pages to drop right before the next sleep ([`poll_dropping`]). Called
/// from the top of the monitor's loop, where the stack is shallow.
#[inline(never)]
pub fn shed() -> Image {
    let relro = relro::for_sleep();
    crate::sys::trim_heap();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return Image::default();
    };
    let maps = parse(&smaps);
    drop(smaps);
    let here = 0u8;
    drop_stack_below(&maps, std::hint::black_box(&here) as *const u8 as usize);
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return Image::default();
    };
    let mut ranges = Vec::new();
    for m in maps
        .iter()
        .filter(|m| !m.writable && std::path::Path::new(&m.path) == exe)
    {
        clean_runs(m, &mut ranges);
    }
    Image { ranges, relro }
}

/// One mapping of /proc/self/smaps.
#[derive(Debug, Default, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    writable: bool,
    path: String,
    /// Pages copied on write (relocated data): dropping them would lose the writes.
    anonymous_kb: u64,
    /// Such pages swapped out.
    swap_kb: u64,
}

/// The parts of a read-only mapping of the executable that hold no copied-on-write page.
fn clean_runs(m: &Mapping, out: &mut Vec<(usize, usize)>) {
    if m.anonymous_kb == 0 && m.swap_kb == 0 {
        out.push((m.start, m.end));
        return;
    }
    let Some(written) = written_pages(m) else {
        return;
    };
    let mut run_start = m.start;
    for (i, is_written) in written.iter().enumerate() {
        let page = m.start + i * PAGE;
        if *is_written {
            if run_start < page {
                out.push((run_start, page));
            }
            run_start = page + PAGE;
        }
    }
    if run_start < m.end {
        out.push((run_start, m.end));
    }
}

/// Per page of `m`: whether it is a private copy, present (bit 63 of /proc/self/pagemap) and
/// not a file page (bit 61), or swapped out (bit 62). `None` if it cannot be read: then
/// nothing of the mapping is dropped.
fn written_pages(m: &Mapping) -> Option<Vec<bool>> {
    use std::os::unix::fs::FileExt;
    let pages = (m.end - m.start) / PAGE;
    let mut raw = vec![0u8; pages * 8];
    let f = std::fs::File::open("/proc/self/pagemap").ok()?;
    f.read_exact_at(&mut raw, (m.start / PAGE * 8) as u64)
        .ok()?;
    Some(
        raw.chunks_exact(8)
            .map(|e| {
                let v = u64::from_le_bytes([e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7]]);
                v & (1 << 63) != 0 && v & (1 << 61) == 0 || v & (1 << 62) != 0
            })
            .collect(),
    )
}

/// Unmaps the stack pages more than [`STACK_MARGIN`] below `sp`: no frame lives there (one
/// thread, no signal handlers), and the kernel gives zeroed pages if the stack grows again.
fn drop_stack_below(maps: &[Mapping], sp: usize) {
    let Some(stack) = maps.iter().find(|m| m.path == "[stack]") else {
        return;
    };
    let end = sp.saturating_sub(STACK_MARGIN) & !(PAGE - 1);
    if stack.start < end && end <= stack.end {
        // SAFETY: [stack.start, end) is the main thread's stack more than STACK_MARGIN below
        // the frame of this call, where no live frame, red zone or signal frame is: zapping
        // it loses nothing.
        unsafe {
            libc::madvise(
                stack.start as *mut libc::c_void,
                end - stack.start,
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// The mappings of an smaps text.
fn parse(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let Some(first) = fields.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("").to_string();
            out.push(Mapping {
                start,
                end,
                writable: perms.contains('w'),
                path,
                ..Default::default()
            });
        } else if let (Some(m), "Anonymous:" | "Swap:") = (out.last_mut(), first) {
            let kb = fields
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            match first {
                "Swap:" => m.swap_kb = kb,
                _ => m.anonymous_kb = kb,
            }
        }
    }
    out
}

/// Drops `image`'s pages, sleeps in poll and, if RELRO was dropped, rebuilds it before
/// returning. Returns poll's count of ready descriptors (0 on EINTR).
pub fn poll_dropping(image: &Image, fds: &mut [libc::pollfd], timeout_ms: i32) -> Result<usize> {
    // SAFETY: the ranges and RELRO come from `shed` on the only thread (see `drop_and_poll`),
    // and `fds` is a valid, exclusively borrowed array of pollfd for the call.
    let n = unsafe {
        drop_and_poll(
            &image.ranges,
            image.relro,
            fds.as_mut_ptr(),
            fds.len(),
            timeout_ms,
        )
    };
    match n {
        n if n >= 0 => Ok(n as usize),
        n if n == -(libc::EINTR as isize) => Ok(0),
        n => Err(Error::sys("poll", nix::errno::Errno::from_raw(-n as i32))),
    }
}

/// The drops, the poll and the rebuild: raw system calls and the RELR loop in one function,
/// so that no other code runs between the drops and the sleep (it would fault pages back in)
/// nor between the RELRO drop and the end of its rebuild (it could read unrelocated data).
/// Its assembly is checked to reference no GOT or RELRO address (docs/monitor.md).
///
/// # Safety
/// Each range lies in a read-only private mapping of our executable and holds no page
/// written since it was mapped (checked by `shed`); `relro` comes from `relro::for_sleep`;
/// the process has one thread; `fds` points to `nfds` pollfd.
#[inline(never)]
unsafe fn drop_and_poll(
    ranges: &[(usize, usize)],
    relro: Option<relro::Relro>,
    fds: *mut libc::pollfd,
    nfds: usize,
    timeout_ms: i32,
) -> isize {
    for &(start, end) in ranges {
        // SAFETY: clean file pages (the caller's promise): the kernel maps the same content
        // again on the next access.
        unsafe { raw::madvise(start, end.wrapping_sub(start), libc::MADV_DONTNEED) };
    }
    match relro {
        // SAFETY: forwarded from the caller.
        Some(relro) => unsafe { relro::poll_rebuilding(relro, fds, nfds, timeout_ms) },
        // SAFETY: forwarded from the caller.
        None => unsafe { raw::poll(fds, nfds, timeout_ms) },
    }
}

/// The system calls without libc (whose code pages would be faulted back in, and whose
/// calls go through relocated data).
#[cfg(target_arch = "x86_64")]
mod raw {
    /// mprotect(2); returns the raw result (-errno on failure).
    ///
    /// # Safety
    /// The caller guarantees that the new protection is harmless for the range.
    #[inline(always)]
    pub unsafe fn mprotect(addr: usize, len: usize, prot: i32) -> isize {
        let ret: isize;
        // SAFETY: as for madvise.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") libc::SYS_mprotect as isize => ret,
                in("rdi") addr, in("rsi") len, in("rdx") prot as isize,
                lateout("rcx") _, lateout("r11") _, options(nostack))
        };
        ret
    }

    /// madvise(2); returns the raw result (-errno on failure).
    ///
    /// # Safety
    /// The caller guarantees that the advice is harmless for the range.
    #[inline(always)]
    pub unsafe fn madvise(addr: usize, len: usize, advice: i32) -> isize {
        let ret: isize;
        // SAFETY: the x86_64 Linux system call convention: number in rax, arguments in rdi,
        // rsi, rdx; rcx and r11 clobbered; the kernel touches no user stack.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") libc::SYS_madvise as isize => ret,
                in("rdi") addr, in("rsi") len, in("rdx") advice as isize,
                lateout("rcx") _, lateout("r11") _, options(nostack))
        };
        ret
    }

    /// poll(2); returns the raw result (-errno on failure).
    ///
    /// # Safety
    /// `fds` points to `n` valid pollfd.
    #[inline(always)]
    pub unsafe fn poll(fds: *mut libc::pollfd, n: usize, timeout_ms: i32) -> isize {
        let ret: isize;
        // SAFETY: as for madvise; the kernel reads and writes the `n` pollfd at `fds`.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") libc::SYS_poll as isize => ret,
                in("rdi") fds, in("rsi") n, in("rdx") timeout_ms as isize,
                lateout("rcx") _, lateout("r11") _, options(nostack))
        };
        ret
    }
}

/// Elsewhere through libc (its pages may come back: only the size suffers; RELRO is never
/// dropped there, see `relro::find`).
#[cfg(not(target_arch = "x86_64"))]
mod raw {
    /// # Safety
    /// The caller guarantees that the new protection is harmless for the range.
    pub unsafe fn mprotect(addr: usize, len: usize, prot: i32) -> isize {
        // SAFETY: forwarded from the caller.
        let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) };
        if r < 0 {
            return -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize);
        }
        r as isize
    }

    /// # Safety
    /// The caller guarantees that the advice is harmless for the range.
    pub unsafe fn madvise(addr: usize, len: usize, advice: i32) -> isize {
        // SAFETY: forwarded from the caller.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
        if r < 0 {
            return -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize);
        }
        r as isize
    }

    /// # Safety
    /// `fds` points to `n` valid pollfd.
    pub unsafe fn poll(fds: *mut libc::pollfd, n: usize, timeout_ms: i32) -> isize {
        // SAFETY: forwarded from the caller.
        let r = unsafe { libc::poll(fds, n as libc::nfds_t, timeout_ms) };
        if r < 0 {
            return -(std::io::Error::last_os_error().raw_os_error().unwrap_or(0) as isize);
        }
        r as isize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    const SMAPS: &str = "\
55d0000-55e0000 r-xp 000ec000 fe:00 68 /usr/bin/pelagos-monitor
Rss:                2184 kB
Anonymous:             0 kB
55e0000-55f0000 r--p 0035d000 fe:00 68 /usr/bin/pelagos-monitor
Anonymous:           188 kB
55f0000-5600000 rw-p 0038b000 fe:00 68 /usr/bin/pelagos-monitor
Anonymous:             0 kB
7ff0000-7ff8000 r--p 00000000 fe:00 69 /usr/lib/other
Anonymous:             0 kB
Swap:                  8 kB
";

    #[test]
    fn smaps_parse_into_mappings() {
        let maps = parse(SMAPS);
        assert_eq!(maps.len(), 4);
        assert_eq!((maps[0].start, maps[0].end), (0x55d0000, 0x55e0000));
        assert!(!maps[0].writable && maps[2].writable);
        assert_eq!(maps[1].anonymous_kb, 188);
        assert_eq!(maps[3].path, "/usr/lib/other");
        assert_eq!((maps[3].anonymous_kb, maps[3].swap_kb), (0, 8));
        let mut runs = Vec::new();
        clean_runs(&maps[0], &mut runs);
        assert_eq!(runs, vec![(0x55d0000, 0x55e0000)]);
    }

    #[test]
    fn written_pages_are_never_in_a_clean_run() {
        // A private file mapping with one page written (copied) and one only read.
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, &[7u8; 3 * PAGE]).unwrap();
        // SAFETY: a fresh private mapping of our own file.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                3 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                f.as_raw_fd(),
                0,
            )
        } as usize;
        // SAFETY: inside the mapping just made.
        unsafe {
            *((p + PAGE) as *mut u8) = 1;
            std::ptr::read_volatile(p as *const u8);
        }
        let m = Mapping {
            start: p,
            end: p + 3 * PAGE,
            anonymous_kb: 4,
            ..Default::default()
        };
        let mut runs = Vec::new();
        clean_runs(&m, &mut runs);
        assert_eq!(runs, vec![(p, p + PAGE), (p + 2 * PAGE, p + 3 * PAGE)]);
        // SAFETY: our mapping, unmapped once.
        unsafe { libc::munmap(p as *mut libc::c_void, 3 * PAGE) };
    }

    #[test]
    fn scratch_release_keeps_it_usable_and_polling_after_a_drop_works() {
        let mut s = Scratch::new(2 * PAGE).unwrap();
        s[PAGE] = 9;
        s.release();
        assert_eq!(s[PAGE], 0);
        s[0] = 1;
        let image = shed();
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, b"x").unwrap();
        let mut fds = [libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        assert_eq!(poll_dropping(&image, &mut fds, 1000).unwrap(), 1);
        assert_eq!(s[0], 1);
    }
}
