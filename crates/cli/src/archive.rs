//! `cp`, `diff` and `export`: the client half of Docker's copy rules (docker/cli's `cp.go`):
//! which side is the container, the local path's checks, the archive's rebase, progress.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use pelagos_engine::container::cp::{self, prepare_archive_copy, CopyInfo};
use pelagos_engine::container::fsroot::{self, split_dir_entry, ContainerFs, RootDir, View};
use pelagos_engine::container::tar_in::{ExtractOptions, Owners};
use pelagos_engine::container::{diff as diff_verb, export as export_verb};

use crate::cli::{Cli, CpArgs, ExportArgs, TopArgs};
use crate::format::human_size;

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is an absolute path or starts
/// with `.` before its colon (a local path holding a colon).
fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((ctr, path)) if !ctr.is_empty() && !ctr.starts_with('.') => (Some(ctr), path),
        _ => (None, arg),
    }
}

/// Docker's `resolveLocalPath`: absolute, a trailing `/` or `/.` kept.
fn local_path(path: &str) -> Result<String> {
    if path.starts_with('/') {
        return Ok(path.to_owned());
    }
    let cwd = std::env::current_dir().context("the current directory")?;
    Ok(format!(
        "{}/{path}",
        cwd.to_string_lossy().trim_end_matches('/')
    ))
}

pub fn cp(cli: &Cli, a: &CpArgs) -> Result<i32> {
    let (src_ctr, src) = split_cp_arg(&a.source);
    let (dst_ctr, dst) = split_cp_arg(&a.destination);
    if src.is_empty() {
        bail!("source can not be empty");
    }
    if dst.is_empty() {
        bail!("destination can not be empty");
    }
    let size = match (src_ctr, dst_ctr) {
        (Some(ctr), None) => from_container(cli, a, ctr, src, dst)?,
        (None, Some(ctr)) => to_container(cli, a, ctr, src, dst)?,
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
    };
    if let Some((size, to)) = size {
        if !a.quiet && std::io::stderr().is_terminal() {
            eprintln!("Successfully copied {} to {to}", human_size(size));
        }
    }
    Ok(0)
}

/// The stream of `produce` extracted by `consume` through a pipe, the producer on its own
/// thread; the producer's error wins (the consumer then only saw a cut stream), unless it
/// is only the broken pipe of a consumer that gave up.
fn piped(
    produce: impl FnOnce(std::io::PipeWriter) -> pelagos_engine::Result<u64> + Send,
    consume: impl FnOnce(std::io::PipeReader) -> pelagos_engine::Result<u64>,
) -> Result<u64> {
    let (reader, writer) = std::io::pipe().context("make a pipe")?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || produce(writer));
        let consumed = consume(reader);
        let produced = producer
            .join()
            .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
        match (produced, consumed) {
            // The consumer stopped reading: its error says why.
            (Err(pelagos_engine::Error::Io { source, .. }), Err(e))
                if source.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                Err(e.into())
            }
            (Err(e), _) | (Ok(_), Err(e)) => Err(e.into()),
            (Ok(size), Ok(_)) => Ok(size),
        }
    })
}

fn open_container(cli: &Cli, ctr: &str) -> Result<(pelagos_engine::Engine, ContainerFs)> {
    let engine = crate::engine(cli)?;
    let fs = fsroot::open(&engine, ctr, View::Live)?;
    Ok((engine, fs))
}

/// `cp CTR:SRC DEST`: returns the size copied and where to, for the progress line.
fn from_container(
    cli: &Cli,
    a: &CpArgs,
    ctr: &str,
    src: &str,
    dst: &str,
) -> Result<Option<(u64, String)>> {
    let (_engine, fs) = open_container(cli, ctr)?;
    if dst == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        cp::archive(&fs, src, a.follow_link, &mut out)?;
        out.flush().context("write to stdout")?;
        return Ok(None);
    }
    let stat = cp::stat(&fs, src, a.follow_link)?;
    let dst = local_path(dst)?;
    let (dir, rebase) = prepare_archive_copy(stat.is_dir, &stat.name, &host_destination(&dst)?)?;
    let host = RootDir::host()?;
    let owners = match a.archive {
        true => Owners::Keep,
        // The files become the caller's, as Docker's client makes them.
        false => Owners::All {
            uid: nix::unistd::getuid().as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        },
    };
    let opts = ExtractOptions {
        owners,
        rebase,
        replace_dir_non_dir: false,
    };
    let follow = a.follow_link;
    let size = piped(
        |w| cp::archive(&fs, src, follow, w),
        |r| cp::extract_in(&host, None, &dir, r, &opts),
    )?;
    Ok(Some((size, dst)))
}

/// `cp SRC CTR:DEST`.
fn to_container(
    cli: &Cli,
    a: &CpArgs,
    ctr: &str,
    src: &str,
    dst: &str,
) -> Result<Option<(u64, String)>> {
    let (_engine, fs) = open_container(cli, ctr)?;
    // Docker's daemon makes the files its root's unless asked to keep the stream's owners.
    let owners = match a.archive {
        true => Owners::Keep,
        false => Owners::All { uid: 0, gid: 0 },
    };
    if src == "-" {
        match cp::stat(&fs, dst, true) {
            Ok(st) if st.is_dir => {}
            _ => bail!("destination \"{ctr}:{dst}\" must be a directory"),
        }
        let opts = ExtractOptions {
            owners,
            rebase: None,
            replace_dir_non_dir: false,
        };
        cp::extract_to(&fs, dst, std::io::stdin().lock(), &opts)?;
        return Ok(None);
    }
    let dst_info = match cp::stat(&fs, dst, true) {
        Ok(st) => CopyInfo {
            path: dst.to_owned(),
            exists: true,
            is_dir: st.is_dir,
        },
        // As Docker: the extraction finds out whether the parent exists.
        Err(_) => CopyInfo {
            path: dst.to_owned(),
            exists: false,
            is_dir: false,
        },
    };
    let src = local_path(src)?;
    let host = RootDir::host()?;
    let src_stat = match cp::stat_in(&host, None, &src, a.follow_link) {
        // Docker's client finds this out itself and says it so.
        Err(e) if e.kind() == pelagos_model::ErrorKind::NotFound => {
            let text = format!("lstat {src}: no such file or directory");
            return Err(crate::failure::Plain::new(text, 1).into());
        }
        other => other?,
    };
    let (dir, rebase) = prepare_archive_copy(src_stat.is_dir, &src_stat.name, &dst_info)?;
    let opts = ExtractOptions {
        owners,
        rebase,
        replace_dir_non_dir: false,
    };
    let follow = a.follow_link;
    let size = piped(
        |w| cp::archive_in(&host, None, &src, follow, w),
        |r| cp::extract_to(&fs, &dir, r, &opts),
    )?;
    Ok(Some((size, format!("{ctr}:{dst}"))))
}

/// Docker's `CopyInfoDestinationPath` on the local side: symlinks in the last component are
/// followed (the copy lands at their target); a missing path needs an existing parent.
fn host_destination(path: &str) -> Result<CopyInfo> {
    let mut path = path.to_owned();
    for _ in 0..=10 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&path).with_context(|| format!("readlink {path}"))?;
                let target = target.to_string_lossy();
                path = match target.starts_with('/') {
                    true => target.into_owned(),
                    false => format!("{}/{target}", split_dir_entry(&path).0),
                };
            }
            Ok(m) => {
                return Ok(CopyInfo {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (parent, _) = split_dir_entry(&path);
                let Ok(m) = std::fs::metadata(&parent) else {
                    bail!("invalid output path: directory {parent:?} does not exist");
                };
                if !m.is_dir() {
                    bail!("stat {parent}: not a directory");
                }
                return Ok(CopyInfo {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(e).with_context(|| format!("lstat {path}")),
        }
    }
    bail!("too many symlinks in {path}")
}

pub fn diff(cli: &Cli, a: &TopArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    let changes = diff_verb::diff(&engine, &a.container)?;
    let mut out = std::io::stdout().lock();
    for c in changes {
        writeln!(out, "{} {}", c.kind.letter(), c.path)?;
    }
    Ok(0)
}

pub fn export(cli: &Cli, a: &ExportArgs) -> Result<i32> {
    let engine = crate::engine(cli)?;
    match &a.output {
        Some(path) => export_to_file(&engine, &a.container, path)?,
        None => {
            let out = std::io::stdout();
            if out.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let mut w = std::io::BufWriter::new(out.lock());
            export_verb::export(&engine, &a.container, &mut w)?;
            w.flush().context("write to stdout")?;
        }
    }
    Ok(0)
}

/// Writes beside the file and renames it into place, as Docker's client does: a failed
/// export leaves no half-written file.
fn export_to_file(engine: &pelagos_engine::Engine, container: &str, path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".docker_temp_")
        .tempfile_in(&dir)
        .with_context(|| format!("failed to create a temporary file in {}", dir.display()))?;
    let mut w = std::io::BufWriter::new(tmp.as_file());
    export_verb::export(engine, container, &mut w)?;
    w.flush().context("write the export")?;
    drop(w);
    tmp.persist(path)
        .with_context(|| format!("failed to save to {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_arguments_split_as_docker_splits_them() {
        assert_eq!(split_cp_arg("c:/x"), (Some("c"), "/x"));
        assert_eq!(split_cp_arg("/a:b"), (None, "/a:b"));
        assert_eq!(split_cp_arg("./a:b"), (None, "./a:b"));
        assert_eq!(split_cp_arg("file"), (None, "file"));
    }

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(1234), "1.234kB");
        assert_eq!(human_size(1200), "1.2kB");
        assert_eq!(human_size(2_000_000), "2MB");
        assert_eq!(human_size(123_456_789), "123.5MB");
    }
}
