//! A cache of compiled filters on disk, keyed by the profile, libseccomp's version and the
//! kernel: libseccomp needs several milliseconds to turn Docker's default profile into BPF,
//! more than the rest of a container's start. Like crun's seccomp cache, a hit reads the
//! finished program instead. Any unreadable or mismatching entry is recompiled and rewritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use sha2::{Digest, Sha256};

use crate::compile::{compile, CompiledFilter};
use crate::error::SeccompError;

const MAGIC: &[u8; 8] = b"PLGSBPF1";

/// What decides the compiled program besides the profile: libseccomp's version (its code
/// generation), the kernel (supported filter flags, Docker profile specialisation happened
/// before), and this crate's version (the file format).
fn environment_key() -> String {
    let lib = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{lib}/{kernel}/{}", env!("CARGO_PKG_VERSION"))
}

fn key(profile: &LinuxSeccomp) -> Result<String, SeccompError> {
    let json =
        serde_json::to_vec(profile).map_err(|e| SeccompError::InvalidProfile(e.to_string()))?;
    let mut h = Sha256::new();
    h.update(environment_key().as_bytes());
    h.update([0]);
    h.update(&json);
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode(f: &CompiledFilter) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    // c_ulong is u64 on the 64-bit targets pelagos builds for; the file keeps 8 bytes.
    #[allow(clippy::useless_conversion)]
    let flags = u64::from(f.flags);
    out.extend_from_slice(&flags.to_le_bytes());
    out.push(u8::from(f.notify));
    let path = f.listener_path().map(|p| p.to_string_lossy().into_owned());
    put_str(&mut out, path.as_deref().unwrap_or(""));
    put_str(&mut out, f.listener_metadata().unwrap_or(""));
    out.extend_from_slice(&(f.skipped_syscalls().len() as u32).to_le_bytes());
    for s in f.skipped_syscalls() {
        put_str(&mut out, s);
    }
    out.extend_from_slice(&(f.program.len() as u32).to_le_bytes());
    for insn in &f.program {
        out.extend_from_slice(&insn.code.to_le_bytes());
        out.push(insn.jt);
        out.push(insn.jf);
        out.extend_from_slice(&insn.k.to_le_bytes());
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
}

fn decode(bytes: &[u8]) -> Option<CompiledFilter> {
    let mut r = Reader(bytes);
    if r.take(8)? != MAGIC {
        return None;
    }
    let flags = u64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let notify = r.take(1)?[0] != 0;
    let path = r.string()?;
    let metadata = r.string()?;
    let skipped_count = r.u32()? as usize;
    let mut skipped = Vec::with_capacity(skipped_count.min(1024));
    for _ in 0..skipped_count {
        skipped.push(r.string()?);
    }
    let count = r.u32()? as usize;
    if count == 0 || count > crate::compile::BPF_MAXINSNS {
        return None;
    }
    let mut program = Vec::with_capacity(count);
    for _ in 0..count {
        let b = r.take(8)?;
        program.push(libc::sock_filter {
            code: u16::from_le_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        });
    }
    if !r.0.is_empty() {
        return None;
    }
    Some(CompiledFilter::from_parts(
        program,
        libc::c_ulong::try_from(flags).ok()?,
        notify,
        (!path.is_empty()).then(|| PathBuf::from(path)),
        (!metadata.is_empty()).then_some(metadata),
        skipped,
    ))
}

/// [`compile`] through a cache directory (created 0700 when missing). A miss compiles and
/// stores the result; failing to store is not an error (the next start compiles again).
pub fn compile_cached(profile: &LinuxSeccomp, dir: &Path) -> Result<CompiledFilter, SeccompError> {
    let path = dir.join(format!("{}.bpf", key(profile)?));
    if let Some(hit) = std::fs::read(&path).ok().and_then(|b| decode(&b)) {
        return Ok(hit);
    }
    let compiled = compile(profile)?;
    let _ = store(dir, &path, &encode(&compiled));
    Ok(compiled)
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_filter_is_the_compiled_one() {
        let dir = tempfile::tempdir().unwrap();
        let profile = crate::docker_default(&["CAP_CHOWN".to_string()]);
        let fresh = compile(&profile).unwrap();
        let first = compile_cached(&profile, dir.path()).unwrap();
        let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(entries.len(), 1, "one cache entry");
        let second = compile_cached(&profile, dir.path()).unwrap();
        for f in [&first, &second] {
            assert_eq!(f.flags(), fresh.flags());
            assert_eq!(f.instructions().len(), fresh.instructions().len());
            assert!(f
                .instructions()
                .iter()
                .zip(fresh.instructions())
                .all(|(a, b)| a.code == b.code && a.jt == b.jt && a.jf == b.jf && a.k == b.k));
        }
        // A different profile is a different entry.
        let other = crate::docker_default(&["CAP_SYS_ADMIN".to_string()]);
        compile_cached(&other, dir.path()).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn a_corrupt_entry_is_recompiled() {
        let dir = tempfile::tempdir().unwrap();
        let profile = crate::docker_default(&[]);
        compile_cached(&profile, dir.path()).unwrap();
        let entry = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&entry).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&entry, &bytes).unwrap();
        let again = compile_cached(&profile, dir.path()).unwrap();
        assert_eq!(
            again.instructions().len(),
            compile(&profile).unwrap().instructions().len()
        );
        assert!(
            decode(&std::fs::read(&entry).unwrap()).is_some(),
            "rewritten"
        );
    }
}
