//! `pelagos-mkimage`: writes test images as OCI layouts for scripts (benchmarks, manual
//! tests); a command-line front end to `pelagos_testkit::images`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use pelagos_testkit::images::{self, BuiltImage, Compression, Format, ImageBuilder};

/// Write test images into OCI image layouts (push them with
/// `skopeo copy oci:DIR:TAG docker://HOST/NAME:TAG`).
#[derive(Parser)]
#[command(name = "pelagos-mkimage", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

impl From<Comp> for Compression {
    fn from(c: Comp) -> Self {
        match c {
            Comp::None => Compression::None,
            Comp::Gzip => Compression::Gzip,
            Comp::Zstd => Compression::Zstd,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Fmt {
    Oci,
    Docker,
}

impl From<Fmt> for Format {
    fn from(f: Fmt) -> Self {
        match f {
            Fmt::Oci => Format::Oci,
            Fmt::Docker => Format::Docker,
        }
    }
}

#[derive(Subcommand)]
enum Cmd {
    /// The host's busybox-static with its applet links, /etc/passwd, /etc/group, Cmd ["sh"].
    Busybox {
        /// Layout directory (created if missing).
        dir: PathBuf,
        /// Tag inside the layout.
        tag: String,
        /// Manifest format.
        #[arg(long, value_enum, default_value = "oci")]
        format: Fmt,
        /// Layer compression (zstd needs --format oci).
        #[arg(long, value_enum, default_value = "gzip")]
        compression: Comp,
    },
    /// A directory tree (e.g. a debootstrapped Debian) split into N layers of about equal
    /// size; owners, modes, xattrs, symlinks and hardlinks kept, device nodes skipped.
    Rootfs {
        /// The root filesystem to pack.
        rootfs: PathBuf,
        /// Layout directory (created if missing).
        dir: PathBuf,
        /// Tag inside the layout.
        tag: String,
        /// Number of layers.
        #[arg(long, default_value_t = 4)]
        layers: usize,
        /// Manifest format.
        #[arg(long, value_enum, default_value = "oci")]
        format: Fmt,
        /// Layer compression.
        #[arg(long, value_enum, default_value = "gzip")]
        compression: Comp,
        /// The image's Cmd (repeat for more arguments).
        #[arg(long = "cmd", default_values_t = ["bash".to_string()])]
        cmd: Vec<String>,
    },
    /// A multi-platform index of busybox for linux/amd64 and linux/arm64 (the arm64 image
    /// holds the host's binary too: only its platform differs).
    Index {
        /// Layout directory (created if missing).
        dir: PathBuf,
        /// Tag inside the layout.
        tag: String,
        /// Manifest format (docker writes a manifest list).
        #[arg(long, value_enum, default_value = "oci")]
        format: Fmt,
    },
    /// Three layers with a file and a directory whited out, an opaque directory and a
    /// replaced file.
    Whiteouts {
        /// Layout directory (created if missing).
        dir: PathBuf,
        /// Tag inside the layout.
        tag: String,
    },
    /// Push a tag of a layout with skopeo, manifest bytes unchanged (Docker-format images
    /// through a dir: export, indexes with --all, loopback registries without TLS).
    Push {
        /// Layout directory.
        dir: PathBuf,
        /// Tag inside the layout.
        tag: String,
        /// Destination, HOST:PORT/NAME:TAG.
        dest: String,
        /// More arguments for `skopeo copy` (after `--`), e.g. `-- --dest-creds u:p`.
        #[arg(last = true)]
        skopeo_args: Vec<String>,
    },
}

fn report(b: &BuiltImage) {
    println!(
        "{} {} ({} layers, {} bytes compressed)",
        b.tag,
        b.manifest_digest,
        b.layer_digests.len(),
        b.layers_size()
    );
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Busybox {
            dir,
            tag,
            format,
            compression,
        } => {
            let image = ImageBuilder::new()
                .layer(images::busybox_layer()?, compression.into())
                .env("PATH", images::DEFAULT_PATH)
                .cmd(["sh"])
                .format(format.into());
            report(&image.write(&dir, &tag)?);
        }
        Cmd::Rootfs {
            rootfs,
            dir,
            tag,
            layers,
            format,
            compression,
            cmd,
        } => {
            let mut image = ImageBuilder::new()
                .env("PATH", images::DEFAULT_PATH)
                .cmd(cmd)
                .format(format.into());
            for l in images::rootfs_layers(&rootfs, layers)
                .with_context(|| format!("splitting {} into layers", rootfs.display()))?
            {
                image = image.layer(l, compression.into());
            }
            let built = image.write(&dir, &tag)?;
            report(&built);
            for (d, s) in built.layer_digests.iter().zip(&built.layer_sizes) {
                println!("  {d} {s}");
            }
        }
        Cmd::Index { dir, tag, format } => {
            let bb = images::busybox()?.format(format.into());
            let index = images::write_index(
                &dir,
                &tag,
                &[
                    bb.clone().platform("linux", "amd64", None),
                    bb.platform("linux", "arm64", None),
                ],
            )?;
            println!(
                "{} {} ({} manifests)",
                index.tag,
                index.digest,
                index.images.len()
            );
        }
        Cmd::Whiteouts { dir, tag } => report(&images::whiteouts().write(&dir, &tag)?),
        Cmd::Push {
            dir,
            tag,
            dest,
            skopeo_args,
        } => {
            let args: Vec<&str> = skopeo_args.iter().map(String::as_str).collect();
            images::skopeo_push(&dir, &tag, &dest, &args)?;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pelagos-mkimage: {e:#}");
            ExitCode::FAILURE
        }
    }
}
