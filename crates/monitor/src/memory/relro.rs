//! The relocated read-only data (RELRO) of the static-pie monitor: found and checked once,
//! dropped while the monitor sleeps and rebuilt from the executable's RELR table as it wakes.

use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::OnceLock;

use super::{raw, PAGE};

const DT_NULL: i64 = 0;
const DT_PLTRELSZ: i64 = 2;
const DT_RELA: i64 = 7;
const DT_RELASZ: i64 = 8;
const DT_RELAENT: i64 = 9;
const DT_REL: i64 = 17;
const DT_RELSZ: i64 = 18;
const DT_RELENT: i64 = 19;
const DT_PLTREL: i64 = 20;
const DT_TEXTREL: i64 = 22;
const DT_JMPREL: i64 = 23;
const DT_FLAGS: i64 = 30;
const DT_RELRSZ: i64 = 35;
const DT_RELR: i64 = 36;
const DT_RELRENT: i64 = 37;
/// Android's packed relocation tables: a format this code does not read.
const DT_ANDROID_TABLES: [i64; 3] = [0x6000_000f, 0x6000_0011, 0x6fff_e000];
const DF_TEXTREL: u64 = 4;

/// The pages of RELRO that hold nothing but the file's content plus RELR relocations, and
/// what it takes to rebuild them; plain integers, for [`poll_rebuilding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relro {
    /// The load base: what each relocation adds, and where link address 0 is.
    base: usize,
    /// The RELR table, in a read-only segment of the executable.
    relr: usize,
    relr_words: usize,
    /// The page-aligned range dropped and rebuilt.
    start: usize,
    end: usize,
}

/// Why the RELRO pages stay resident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// No RELR table (linked without `-z pack-relative-relocs`, or at a fixed address).
    NoRelr,
    /// Something this code does not expect; the words say what.
    Unexpected(&'static str),
}

/// The RELRO to drop before sleeping, if any: found once, and only while this process has
/// one thread.
pub fn for_sleep() -> Option<Relro> {
    static FOUND: OnceLock<Result<Relro, Kept>> = OnceLock::new();
    let relro = (*FOUND.get_or_init(find)).ok()?;
    single_threaded().then_some(relro)
}

fn single_threaded() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|tasks| tasks.count() == 1)
}

/// Polls with `relro`'s pages dropped, and rebuilds them before returning: raw system
/// calls and the RELR loop, on its arguments, its stack and the RELR table (never written);
/// no call, no static, no GOT entry. Inlined into `memory::drop_and_poll`, whose assembly is
/// checked. Returns poll's raw result.
///
/// # Safety
/// `relro` comes from [`for_sleep`] in this process, on its only thread; `fds` points to
/// `nfds` pollfd.
#[inline(always)]
pub unsafe fn poll_rebuilding(
    relro: Relro,
    fds: *mut libc::pollfd,
    nfds: usize,
    timeout_ms: i32,
) -> isize {
    let len = relro.end.wrapping_sub(relro.start);
    // Writable first: if that fails, nothing is dropped.
    // SAFETY: our own RELRO pages; only protections change.
    if unsafe { raw::mprotect(relro.start, len, libc::PROT_READ | libc::PROT_WRITE) } != 0 {
        // SAFETY: forwarded from the caller.
        return unsafe { raw::poll(fds, nfds, timeout_ms) };
    }
    // SAFETY: the pages revert to the file's content, which the rebuild below turns back
    // into exactly their current content (checked by `find`); nothing reads them before.
    // In one mapping, the drop happens whole or not at all: rebuild only after a drop.
    let dropped = unsafe { raw::madvise(relro.start, len, libc::MADV_DONTNEED) } == 0;
    // SAFETY: forwarded from the caller.
    let ready = unsafe { raw::poll(fds, nfds, timeout_ms) };
    if dropped {
        // SAFETY: the table and the range are the ones `find` checked; the range is
        // writable and holds the file's content.
        unsafe {
            apply_relr(
                relro.relr as *const u64,
                relro.relr_words,
                relro.base,
                relro.base,
                relro.start,
                relro.end,
            )
        };
    }
    // Read-only again. Should this fail, the pages stay writable, with the right content.
    // SAFETY: as above.
    unsafe { raw::mprotect(relro.start, len, libc::PROT_READ) };
    ready
}

/// Applies the RELR relocations of `table` whose target lies in `[lo, hi)`: the word of
/// link address `a` is at `place + a` and gets `add` added. An even entry is an address (its
/// word is relocated); an odd entry is a bitmap whose bit `i` (1..=63) relocates the `i`-th
/// word after the last address, and the next bitmap continues 63 words further (the gABI's
/// RELR, as glibc's `ELF_DYNAMIC_DO_RELR`). Plain loops and volatile accesses: no call.
///
/// # Safety
/// `table` points to `words` readable entries; every target in `[lo, hi)` is an aligned,
/// writable word.
#[inline(always)]
unsafe fn apply_relr(
    table: *const u64,
    words: usize,
    place: usize,
    add: usize,
    lo: usize,
    hi: usize,
) {
    let mut next = 0usize;
    let mut i = 0usize;
    while i < words {
        // SAFETY: i < words.
        let entry = unsafe { table.add(i).read_volatile() } as usize;
        i += 1;
        if entry & 1 == 0 {
            next = place.wrapping_add(entry);
            // SAFETY: forwarded from the caller.
            unsafe { relocate(next, add, lo, hi) };
            next = next.wrapping_add(8);
            continue;
        }
        let mut bits = entry >> 1;
        let mut at = next;
        while bits != 0 {
            if bits & 1 != 0 {
                // SAFETY: forwarded from the caller.
                unsafe { relocate(at, add, lo, hi) };
            }
            bits >>= 1;
            at = at.wrapping_add(8);
        }
        next = next.wrapping_add(63 * 8);
    }
}

/// Adds `add` to the word at `at` when it lies in `[lo, hi)`.
///
/// # Safety
/// As for [`apply_relr`].
#[inline(always)]
unsafe fn relocate(at: usize, add: usize, lo: usize, hi: usize) {
    if lo <= at && at < hi {
        let word = at as *mut usize;
        // SAFETY: an aligned, writable word in `[lo, hi)` (the caller's promise).
        unsafe { word.write_volatile(word.read_volatile().wrapping_add(add)) };
    }
}

/// Finds the executable's RELRO and the longest run of its pages that a drop and a rebuild
/// give back unchanged: whose whole content is the file's plus RELR relocations (compared
/// byte for byte, rebuilt with the same loop), and that no other relocation (RELA, REL,
/// PLT) or the dynamic section (adjusted in place by glibc) touches.
pub fn find() -> Result<Relro, Kept> {
    use Kept::Unexpected;
    if !cfg!(target_arch = "x86_64") {
        return Err(Unexpected("the raw system calls exist for x86_64 only"));
    }
    // SAFETY: sysconf only reads a value.
    if unsafe { libc::sysconf(libc::_SC_PAGESIZE) } != PAGE as libc::c_long {
        return Err(Unexpected("a page size other than 4 KiB"));
    }
    let exe = Loaded::executable().ok_or(Unexpected("the executable is not in dl_iterate_phdr"))?;
    let file =
        File::open("/proc/self/exe").map_err(|_| Unexpected("cannot open /proc/self/exe"))?;
    let dynamic = Dynamic::read(&file, &exe)?;
    if dynamic.relr_size == 0 {
        return Err(Kept::NoRelr);
    }
    if exe.base == 0 {
        return Err(Unexpected("loaded at its link address"));
    }
    let relr = exe.relr_table(&file, &dynamic)?;
    let (lo, hi) = exe.relro_pages()?;
    let vma = Vma::holding(lo, hi, &file)?;
    let excluded = excluded_pages(&exe, &file, &dynamic)?;
    let same = pages_rebuilt_unchanged(&exe, &file, &relr, &vma, (lo, hi));
    let eligible: Vec<bool> = same
        .iter()
        .enumerate()
        .map(|(i, same)| *same && excluded.binary_search(&(lo + i * PAGE)).is_err())
        .collect();
    let (first, count) = longest_run(&eligible)
        .ok_or(Unexpected("no RELRO page holds only RELR-relocated words"))?;
    Ok(Relro {
        base: exe.base,
        relr: exe.base.wrapping_add(dynamic.relr as usize),
        relr_words: relr.len(),
        start: lo + first * PAGE,
        end: lo + (first + count) * PAGE,
    })
}

/// The executable as loaded: its base and program headers (from dl_iterate_phdr).
struct Loaded {
    base: usize,
    phdrs: Vec<libc::Elf64_Phdr>,
}

impl Loaded {
    /// The entry of dl_iterate_phdr whose program headers are the kernel's AT_PHDR, checked
    /// against its PT_PHDR.
    fn executable() -> Option<Loaded> {
        struct Search {
            at_phdr: usize,
            found: Option<Loaded>,
        }
        unsafe extern "C" fn visit(
            info: *mut libc::dl_phdr_info,
            _size: usize,
            data: *mut libc::c_void,
        ) -> libc::c_int {
            // SAFETY: glibc passes a valid entry, and `data` is the `Search` below, borrowed
            // by nothing else during the call.
            let (info, search) = unsafe { (&*info, &mut *data.cast::<Search>()) };
            if info.dlpi_phdr as usize != search.at_phdr {
                return 0;
            }
            // SAFETY: `dlpi_phnum` headers at `dlpi_phdr`, mapped for the process's life.
            let phdrs =
                unsafe { std::slice::from_raw_parts(info.dlpi_phdr, info.dlpi_phnum.into()) };
            search.found = Some(Loaded {
                base: info.dlpi_addr as usize,
                phdrs: phdrs.to_vec(),
            });
            1
        }
        // SAFETY: getauxval only reads the auxiliary vector.
        let at_phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
        let mut search = Search {
            at_phdr,
            found: None,
        };
        // SAFETY: `visit` matches the callback type and only uses `search` during the call.
        unsafe { libc::dl_iterate_phdr(Some(visit), (&raw mut search).cast()) };
        let exe = search.found?;
        let phdr = exe.segment(libc::PT_PHDR)?;
        (exe.base.wrapping_add(phdr.p_vaddr as usize) == at_phdr).then_some(exe)
    }

    fn segment(&self, kind: u32) -> Option<&libc::Elf64_Phdr> {
        self.phdrs.iter().find(|p| p.p_type == kind)
    }

    /// The file offset of `len` bytes at link address `vaddr`, in a loaded segment's file
    /// content; with that segment's flags (`PF_R`, `PF_W`, `PF_X`).
    fn file_offset(&self, vaddr: u64, len: u64) -> Option<(u64, u32)> {
        let end = vaddr.checked_add(len)?;
        self.phdrs
            .iter()
            .filter(|p| p.p_type == libc::PT_LOAD)
            .find(|p| p.p_vaddr <= vaddr && end <= p.p_vaddr.saturating_add(p.p_filesz))
            .map(|p| (p.p_offset + (vaddr - p.p_vaddr), p.p_flags))
    }

    /// What glibc makes read-only after relocating: PT_GNU_RELRO, its ends rounded down.
    fn relro_pages(&self) -> Result<(usize, usize), Kept> {
        let relro = self
            .segment(libc::PT_GNU_RELRO)
            .ok_or(Kept::Unexpected("no PT_GNU_RELRO"))?;
        let start = self.base.wrapping_add(relro.p_vaddr as usize);
        let lo = start & !(PAGE - 1);
        let hi = start.wrapping_add(relro.p_memsz as usize) & !(PAGE - 1);
        if lo >= hi {
            return Err(Kept::Unexpected("RELRO smaller than a page"));
        }
        Ok((lo, hi))
    }

    /// The RELR table, read from the file and checked to be what memory holds, in a
    /// read-only segment, with aligned addresses.
    fn relr_table(&self, file: &File, dynamic: &Dynamic) -> Result<Vec<u64>, Kept> {
        use Kept::Unexpected;
        if dynamic.relr_ent != 8 || !dynamic.relr_size.is_multiple_of(8) {
            return Err(Unexpected("RELR entries of another size"));
        }
        let (offset, flags) = self
            .file_offset(dynamic.relr, dynamic.relr_size)
            .ok_or(Unexpected("RELR table outside the file's segments"))?;
        if flags & libc::PF_W != 0 || flags & libc::PF_R == 0 {
            return Err(Unexpected("RELR table not in a read-only segment"));
        }
        let bytes = read_file(file, offset, dynamic.relr_size as usize)?;
        let address = self.base.wrapping_add(dynamic.relr as usize) as *const u8;
        // SAFETY: the table lies in a loaded, readable segment of the executable, mapped
        // for the process's life.
        let memory = unsafe { std::slice::from_raw_parts(address, bytes.len()) };
        if memory != bytes.as_slice() {
            return Err(Unexpected("RELR table in memory differs from the file"));
        }
        let table = words(&bytes);
        if table.iter().any(|e| e & 1 == 0 && !e.is_multiple_of(8)) {
            return Err(Unexpected("unaligned RELR address"));
        }
        Ok(table)
    }
}

/// The relocation entries of the dynamic section (link addresses and sizes).
#[derive(Debug, Default)]
struct Dynamic {
    relr: u64,
    relr_size: u64,
    relr_ent: u64,
    /// RELA, REL and PLT tables: (address, size, entry size).
    others: [(u64, u64, u64); 3],
}

impl Dynamic {
    /// Read from the file: glibc adjusts some entries in memory by the load base.
    fn read(file: &File, exe: &Loaded) -> Result<Dynamic, Kept> {
        use Kept::Unexpected;
        let Some(seg) = exe.segment(libc::PT_DYNAMIC) else {
            return Ok(Dynamic::default());
        };
        let entries = words(&read_file(file, seg.p_offset, seg.p_filesz as usize)?);
        let mut d = Dynamic::default();
        let (mut plt_kind, mut plt) = (0, (0, 0));
        for pair in entries.chunks_exact(2) {
            let (tag, value) = (pair[0] as i64, pair[1]);
            match tag {
                DT_NULL => break,
                DT_RELR => d.relr = value,
                DT_RELRSZ => d.relr_size = value,
                DT_RELRENT => d.relr_ent = value,
                DT_RELA => d.others[0].0 = value,
                DT_RELASZ => d.others[0].1 = value,
                DT_RELAENT => d.others[0].2 = value,
                DT_REL => d.others[1].0 = value,
                DT_RELSZ => d.others[1].1 = value,
                DT_RELENT => d.others[1].2 = value,
                DT_JMPREL => plt.0 = value,
                DT_PLTRELSZ => plt.1 = value,
                DT_PLTREL => plt_kind = value as i64,
                DT_TEXTREL => return Err(Unexpected("text relocations")),
                DT_FLAGS if value & DF_TEXTREL != 0 => return Err(Unexpected("text relocations")),
                t if DT_ANDROID_TABLES.contains(&t) => {
                    return Err(Unexpected("Android packed relocations"))
                }
                _ => {}
            }
        }
        let plt_ent = match plt_kind {
            DT_RELA => 24,
            DT_REL => 16,
            _ => 0,
        };
        d.others[2] = (plt.0, plt.1, plt_ent);
        Ok(d)
    }
}

/// The pages (sorted) that relocations other than RELR write, and those of the dynamic
/// section: never dropped.
fn excluded_pages(exe: &Loaded, file: &File, dynamic: &Dynamic) -> Result<Vec<usize>, Kept> {
    use Kept::Unexpected;
    let mut pages = Vec::new();
    for &(vaddr, size, ent) in &dynamic.others {
        if size == 0 {
            continue;
        }
        if ent != 16 && ent != 24 || !size.is_multiple_of(ent) {
            return Err(Unexpected("relocations of an unknown entry size"));
        }
        let (offset, _) = exe
            .file_offset(vaddr, size)
            .ok_or(Unexpected("relocations outside the file's segments"))?;
        let table = read_file(file, offset, size as usize)?;
        for entry in table.chunks_exact(ent as usize) {
            let target = words(&entry[..8])[0] as usize;
            pages.push(exe.base.wrapping_add(target) & !(PAGE - 1));
        }
    }
    if let Some(seg) = exe.segment(libc::PT_DYNAMIC) {
        let start = exe.base.wrapping_add(seg.p_vaddr as usize);
        let end = start.wrapping_add(seg.p_memsz as usize);
        pages.extend((start & !(PAGE - 1)..end).step_by(PAGE));
    }
    pages.sort_unstable();
    pages.dedup();
    Ok(pages)
}

/// The mapping of /proc/self/maps that holds a range.
#[derive(Debug, PartialEq, Eq)]
struct Vma {
    start: usize,
    offset: u64,
}

impl Vma {
    /// The one read-only private mapping of `file` that holds `[lo, hi)`: what a drop
    /// reverts its pages to is that file's content at the mapping's offset.
    fn holding(lo: usize, hi: usize, file: &File) -> Result<Vma, Kept> {
        use Kept::Unexpected;
        let meta = file
            .metadata()
            .map_err(|_| Unexpected("cannot stat the executable"))?;
        let id = (libc::major(meta.dev()), libc::minor(meta.dev()), meta.ino());
        let maps = std::fs::read_to_string("/proc/self/maps")
            .map_err(|_| Unexpected("cannot read /proc/self/maps"))?;
        let line = maps
            .lines()
            .filter_map(parse_maps_line)
            .find(|m| m.0 <= lo && lo < m.1)
            .ok_or(Unexpected("RELRO is not mapped"))?;
        let (start, end, perms, offset, found_id) = line;
        if hi > end || perms != "r--p" || found_id != id {
            return Err(Unexpected(
                "RELRO is not one read-only mapping of the executable",
            ));
        }
        Ok(Vma { start, offset })
    }
}

/// (start, end, permissions, offset, (major, minor, inode)) of a line of /proc/self/maps.
type MapsLine<'a> = (usize, usize, &'a str, u64, (u32, u32, u64));

fn parse_maps_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode = fields.next()?.parse().ok()?;
    Some((
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
        perms,
        offset,
        (
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
            inode,
        ),
    ))
}

/// Per page of `[lo, hi)`: whether the file's content there, relocated by the RELR loop,
/// is byte for byte what memory holds now (and the page lies wholly in the file).
fn pages_rebuilt_unchanged(
    exe: &Loaded,
    file: &File,
    relr: &[u64],
    vma: &Vma,
    (lo, hi): (usize, usize),
) -> Vec<bool> {
    let len = hi - lo;
    let offset = vma.offset + (lo - vma.start) as u64;
    let in_file = file
        .metadata()
        .map_or(0, |m| m.len().saturating_sub(offset));
    let readable = len.min(in_file as usize);
    // Words, so that the relocated ones are aligned.
    let mut rebuilt = vec![0u64; len / 8];
    let rebuilt_ptr = rebuilt.as_mut_ptr() as usize;
    // SAFETY: the vector's own `len` bytes, viewed as bytes.
    let bytes = unsafe { std::slice::from_raw_parts_mut(rebuilt_ptr as *mut u8, len) };
    if file.read_exact_at(&mut bytes[..readable], offset).is_err() {
        return vec![false; len / PAGE];
    }
    let place = rebuilt_ptr.wrapping_add(exe.base).wrapping_sub(lo);
    // SAFETY: the table is a slice; targets are confined to the vector's aligned words.
    unsafe {
        apply_relr(
            relr.as_ptr(),
            relr.len(),
            place,
            exe.base,
            rebuilt_ptr,
            rebuilt_ptr + len,
        )
    };
    // SAFETY: `[lo, hi)` lies in a readable mapping (`Vma::holding`).
    let memory = unsafe { std::slice::from_raw_parts(lo as *const u8, len) };
    // SAFETY: as above, after the rebuild.
    let rebuilt_bytes = unsafe { std::slice::from_raw_parts(rebuilt_ptr as *const u8, len) };
    (0..len / PAGE)
        .map(|i| {
            let page = i * PAGE..(i + 1) * PAGE;
            page.end <= readable && memory[page.clone()] == rebuilt_bytes[page]
        })
        .collect()
}

/// The first index and length of the longest run of `true`.
fn longest_run(flags: &[bool]) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut start = 0;
    for (i, flag) in flags.iter().chain([&false]).enumerate() {
        if *flag {
            continue;
        }
        let count = i - start;
        if count > 0 && best.is_none_or(|b| count > b.1) {
            best = Some((start, count));
        }
        start = i + 1;
    }
    best
}

fn read_file(file: &File, offset: u64, len: usize) -> Result<Vec<u8>, Kept> {
    let mut bytes = vec![0u8; len];
    file.read_exact_at(&mut bytes, offset)
        .map_err(|_| Kept::Unexpected("cannot read the executable"))?;
    Ok(bytes)
}

/// Little-endian 64-bit words.
fn words(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{poll_dropping, Image};
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;

    #[test]
    fn relr_entries_are_addresses_and_bitmaps_of_63_words() {
        let mut words = vec![0u64; 200];
        let table = [
            2 * 8,                    // word 2
            (0b101 << 1) | 1,         // words 3 and 5
            (1 << 1) | (1 << 63) | 1, // words 66 and 128
            150 * 8,                  // word 150, outside [lo, hi)
        ];
        let place = words.as_mut_ptr() as usize;
        // SAFETY: every target lies in `words`; 150 is left out by `hi`.
        unsafe {
            apply_relr(
                table.as_ptr(),
                table.len(),
                place,
                0x1000,
                place,
                place + 149 * 8,
            )
        };
        let moved: Vec<usize> = (0..200).filter(|i| words[*i] != 0).collect();
        assert_eq!(moved, vec![2, 3, 5, 66, 128]);
        assert!(moved.iter().all(|i| words[*i] == 0x1000));
    }

    #[test]
    fn the_longest_run_wins() {
        assert_eq!(longest_run(&[]), None);
        assert_eq!(longest_run(&[false, false]), None);
        assert_eq!(longest_run(&[true, false, true, true, false]), Some((2, 2)));
        assert_eq!(longest_run(&[true, true, false, true]), Some((0, 2)));
        assert_eq!(longest_run(&[false, true, true, true]), Some((1, 3)));
    }

    #[test]
    fn maps_lines_give_range_offset_and_file() {
        let line = "7fef6197c000-7fef619ac000 r--p 0037a000 fe:00 10010651  /usr/bin/m";
        assert_eq!(
            parse_maps_line(line),
            Some((
                0x7fef6197c000,
                0x7fef619ac000,
                "r--p",
                0x37a000,
                (0xfe, 0, 10010651)
            ))
        );
        assert_eq!(parse_maps_line("garbage"), None);
    }

    /// In a forked child (one thread): drops and rebuilds RELRO many times, checks while it
    /// sleeps that the pages are gone, and after each cycle that RELRO is byte for byte what
    /// it was and that formatting, trait objects and serde_json still work. Only meaningful
    /// in a build with RELR (the static-pie release build: docs/monitor.md); elsewhere there
    /// is nothing to drop.
    #[test]
    fn relro_rebuilt_after_a_drop_is_byte_for_byte_the_same() {
        match find() {
            Err(Kept::NoRelr) => {
                eprintln!("no RELR table in this build: nothing to drop");
                return;
            }
            Err(e) => panic!("a RELR table, yet RELRO would be kept: {e:?}"),
            Ok(r) => eprintln!("RELRO: dropping {} KiB", (r.end - r.start) / 1024),
        }
        let (range_r, range_w) = nix::unistd::pipe().unwrap();
        let (errors_r, errors_w) = nix::unistd::pipe().unwrap();
        let (wake_r, wake_w) = nix::unistd::pipe().unwrap();
        // SAFETY: the child only allocates (glibc's malloc is fork-safe), reads /proc and
        // writes to its pipes before _exit; it takes no lock another thread could hold.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = match cycles(&range_w, &wake_r) {
                    Ok(()) => 0,
                    Err(e) => {
                        let _ = nix::unistd::write(&errors_w, e.as_bytes());
                        1
                    }
                };
                // SAFETY: ends the child without running the harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        drop((range_w, errors_w, wake_r));
        let observed = observe_sleeping(child.as_raw(), range_r);
        let _ = nix::unistd::write(&wake_w, b"w");
        let status = nix::sys::wait::waitpid(child, None).unwrap();
        let mut errors = String::new();
        std::fs::File::from(errors_r)
            .read_to_string(&mut errors)
            .unwrap();
        assert_eq!(
            status,
            nix::sys::wait::WaitStatus::Exited(child, 0),
            "{errors}"
        );
        observed.unwrap();
    }

    /// The child's side: one cycle watched by the parent, then many quick ones.
    fn cycles(range_w: &std::os::fd::OwnedFd, wake_r: &std::os::fd::OwnedFd) -> Result<(), String> {
        let relro = find().map_err(|e| format!("find in the child: {e:?}"))?;
        let exe = Loaded::executable().ok_or("no executable")?;
        let (lo, hi) = exe.relro_pages().map_err(|e| format!("{e:?}"))?;
        // SAFETY: RELRO is mapped readable for the process's life.
        let snapshot = || unsafe { std::slice::from_raw_parts(lo as *const u8, hi - lo) }.to_vec();
        // The executable's mappings (the split made writable merges back).
        let exe_path = std::fs::read_link("/proc/self/exe").map_err(|e| e.to_string())?;
        let maps = || {
            let all = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
            let own = all
                .lines()
                .filter(|l| l.ends_with(&*exe_path.to_string_lossy()));
            own.collect::<Vec<_>>().join("\n")
        };
        let (before, maps_before, work_before) = (snapshot(), maps(), work());
        let image = Image {
            ranges: Vec::new(),
            relro: Some(relro),
        };
        let mut fds = [libc::pollfd {
            fd: wake_r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        let mut range = relro.start.to_le_bytes().to_vec();
        range.extend(relro.end.to_le_bytes());
        std::fs::File::from(range_w.try_clone().map_err(|e| e.to_string())?)
            .write_all(&range)
            .map_err(|e| e.to_string())?;
        for cycle in 0..500 {
            let timeout = if cycle == 0 { -1 } else { 0 };
            let ready = poll_dropping(&image, &mut fds, timeout).map_err(|e| e.to_string())?;
            if (cycle == 0) != (ready == 1) {
                return Err(format!("cycle {cycle}: poll said {ready}"));
            }
            if cycle == 0 {
                nix::unistd::read(wake_r.as_raw_fd(), &mut [0u8]).map_err(|e| e.to_string())?;
            }
            if snapshot() != before {
                return Err(format!("cycle {cycle}: RELRO differs after the rebuild"));
            }
            if work() != work_before {
                return Err(format!("cycle {cycle}: the same work gave another result"));
            }
        }
        if maps() != maps_before {
            return Err(format!(
                "the mappings were not merged back: {maps_before}\n{}",
                maps()
            ));
        }
        Ok(())
    }

    /// Formatting, trait objects, an error's message and a serde_json round trip.
    fn work() -> String {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Probe {
            name: String,
            values: Vec<u32>,
            inner: Option<Box<Probe>>,
        }
        let shown: Vec<Box<dyn std::fmt::Display>> =
            vec![Box::new(42u8), Box::new("text"), Box::new(1.5f64)];
        let probe = Probe {
            name: "outer".into(),
            values: vec![1, 2, 3],
            inner: Some(Box::new(Probe {
                name: "inner".into(),
                values: Vec::new(),
                inner: None,
            })),
        };
        let json = serde_json::to_string(&probe).unwrap_or_default();
        let back: Result<Probe, _> = serde_json::from_str(&json);
        let parse_error = "x".parse::<u32>().map_err(|e| e.to_string());
        let shown: Vec<String> = shown.iter().map(|d| d.to_string()).collect();
        format!("{shown:?} {json} {back:?} {parse_error:?}")
    }

    /// The parent's side: waits for the child to sleep in poll(2), then checks that the
    /// range it dropped holds no page.
    fn observe_sleeping(child: i32, range_r: std::os::fd::OwnedFd) -> Result<(), String> {
        let mut range = [0u8; 16];
        std::fs::File::from(range_r)
            .read_exact(&mut range)
            .map_err(|e| format!("no range from the child: {e}"))?;
        let word = |i: usize| usize::from_le_bytes(range[i..i + 8].try_into().unwrap_or_default());
        let (start, end) = (word(0), word(8));
        let asleep = (0..3000).any(|_| {
            let call = std::fs::read_to_string(format!("/proc/{child}/syscall"));
            let polling = call.is_ok_and(|c| c.starts_with(&format!("{} ", libc::SYS_poll)));
            if !polling {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            polling
        });
        if !asleep {
            return Err("the child never slept in poll".into());
        }
        let smaps =
            std::fs::read_to_string(format!("/proc/{child}/smaps")).map_err(|e| e.to_string())?;
        let header = format!("{start:x}-{end:x} rw-p ");
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&header));
        lines
            .next()
            .ok_or(format!("no mapping {header} in {smaps}"))?;
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap_or("");
        match rss.split_whitespace().nth(1) {
            Some("0") => Ok(()),
            _ => Err(format!("the dropped range still resident: {rss}")),
        }
    }
}
