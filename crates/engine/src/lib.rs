//! pelagos-engine: what the `pelagos` CLI and `pelagos-dockerd` share above the runtime core.
//!
//! * [`pull`] / [`push`]: images between registries ([`pelagos_registry`]) and the local store
//!   ([`pelagos_image::ImageStore`]), layers downloaded in parallel and unpacked as they arrive;
//! * [`spec`]: the OCI spec Docker would build for an image and `docker run` flags;
//! * [`overlay`]: overlayfs root filesystems over the store's layers;
//! * [`containers`] and [`run`]: container records and running a container in the foreground.
//!
//! Paths: images, layers and container records under [`EngineOptions::root`]
//! (`/var/lib/pelagos`), runtime state under [`EngineOptions::runroot`] (`/run/pelagos`),
//! registry settings in [`EngineOptions::config_file`] (`/etc/pelagos/config.toml`).

pub mod commit;
pub mod containers;
pub mod error;
pub mod flags;
pub mod monitor;
pub mod overlay;
pub mod pull;
pub mod push;
pub mod run;
pub mod spec;
pub mod user;
pub mod volumes;

use std::path::PathBuf;
use std::sync::Arc;

pub use error::{Error, Result};
use pelagos_image::ImageStore;
use pelagos_registry::{AuthFile, Client, RegistryConfig};

/// Where the engine keeps things.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Images, layers, container records (`/var/lib/pelagos`).
    pub root: PathBuf,
    /// Runtime state of live containers (`/run/pelagos`).
    pub runroot: PathBuf,
    /// Engine configuration (`/etc/pelagos/config.toml`): registries, mirrors.
    pub config_file: PathBuf,
    /// Registry credentials (`~/.docker/config.json`).
    pub auth_file: PathBuf,
    /// cgroup under which containers are placed (`/pelagos`).
    pub cgroup_parent: String,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            root: PathBuf::from("/var/lib/pelagos"),
            runroot: PathBuf::from("/run/pelagos"),
            config_file: PathBuf::from("/etc/pelagos/config.toml"),
            auth_file: AuthFile::default_path(),
            cgroup_parent: "/pelagos".into(),
        }
    }
}

/// An opened engine: the image store, the container records, the configuration.
pub struct Engine {
    /// Where things are.
    pub options: EngineOptions,
    images: Arc<ImageStore>,
    containers: containers::Containers,
    volumes: volumes::Volumes,
    registries: RegistryConfig,
}

impl Engine {
    /// Opens (creating when missing) the stores under the configured paths.
    pub fn open(options: EngineOptions) -> Result<Engine> {
        let images = ImageStore::open(options.root.join("image"))?;
        let containers = containers::Containers::open(options.root.join("containers"))?;
        let volumes = volumes::Volumes::open(options.root.join("volumes"))?;
        let registries = RegistryConfig::load(&options.config_file)?;
        Ok(Engine {
            options,
            images: Arc::new(images),
            containers,
            volumes,
            registries,
        })
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The image store, shareable with worker threads.
    pub fn images_arc(&self) -> Arc<ImageStore> {
        self.images.clone()
    }

    /// The container records.
    pub fn containers(&self) -> &containers::Containers {
        &self.containers
    }

    /// The volumes.
    pub fn volumes(&self) -> &volumes::Volumes {
        &self.volumes
    }

    /// Registry settings from the configuration file.
    pub fn registries(&self) -> &RegistryConfig {
        &self.registries
    }

    /// The credential file.
    pub fn auth_file(&self) -> Result<AuthFile> {
        Ok(AuthFile::load(&self.options.auth_file)?)
    }

    /// A registry client with the configured registries and stored credentials.
    pub fn registry_client(&self) -> Result<Client> {
        Ok(Client::new(&self.registries, self.auth_file()?))
    }

    /// The runtime core over the state directory.
    pub fn runtime(&self) -> pelagos_container::Runtime {
        pelagos_container::Runtime::new(&self.options.runroot)
    }

    /// Whether the container's process runs (its runtime state exists and is not stopped).
    pub fn is_running(&self, id: &pelagos_container::ContainerId) -> bool {
        let runtime = self.runtime();
        runtime
            .load(id)
            .map(|s| runtime.status(&s) != pelagos_container::Status::Stopped)
            .unwrap_or(false)
    }

    /// Whether some container uses the image (for `image rm` and `image prune`).
    pub fn image_in_use_fn(&self) -> Result<impl Fn(&pelagos_image::Digest) -> bool> {
        let used = self.containers.images_in_use()?;
        Ok(move |d: &pelagos_image::Digest| used.contains(&d.to_string()))
    }
}

/// A tokio runtime for one network operation of a single-threaded tool. Its threads end
/// when it is dropped, so the process is single-threaded again before it creates containers.
pub fn io_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the I/O runtime", e))
}
