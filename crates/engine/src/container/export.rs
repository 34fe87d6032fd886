//! `export`: a tar stream of a container's whole root filesystem, as `docker export` makes
//! it: the image's files with the container's changes, without what the runtime mounts on
//! it (/proc, /sys, volumes). A running container's overlay is read where its monitor
//! mounted it; a stopped one's is mounted privately for the export.

use std::io::Write;

use rustix::fs::OFlags;

use super::fsroot::{self, View};
use super::tar_out::{Counting, TarOut};
use crate::error::{Error, Result};
use crate::Engine;

/// Writes the container's root filesystem to `out`; returns the stream's size.
pub fn export(engine: &Engine, name_or_id: &str, out: impl Write) -> Result<u64> {
    let fs = fsroot::open(engine, name_or_id, View::Rootfs)?;
    let top = fs
        .root()
        .open("/", OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| Error::io(format!("open the root filesystem of {}", fs.name), e))?;
    let mut tar = TarOut::new(Counting::new(out));
    tar.append_dir_fd(&top, "")?;
    Ok(tar.finish()?.count)
}
