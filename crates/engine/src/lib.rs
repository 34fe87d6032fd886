//! pelagos-engine: what the `pelagos` CLI and `pelagos-dockerd` share above the runtime core.
//!
//! * [`pull`] / [`push`]: images between registries ([`pelagos_registry`]) and the local store
//!   ([`pelagos_image::ImageStore`]), layers downloaded in parallel and unpacked as they arrive;
//! * [`spec`]: the OCI spec Docker would build for an image and `docker run` flags;
//! * [`container`]: the container verbs (create, start, stop, kill, rm, wait, exec, attach,
//!   logs, inspect, ps, top, stats), each a client of the container's monitor
//!   (`pelagos-monitor`, started with `posix_spawn`);
//! * [`volumes`]: named and anonymous volumes, `volume ls`/`prune` filters;
//!   [`image_prune`]: `image prune` filters;
//! * [`network`]: network records (`network create/ls/inspect/rm/prune`), the default
//!   `bridge` from the `[network]` settings.
//!
//! The engine is the control plane: thread-safe, no process-global effects (no fork, no
//! signal masks, no chdir, no fds 0-2), so a tokio daemon calls it as the CLI does.
//!
//! Paths: images, layers and container records under [`EngineOptions::root`]
//! (`/var/lib/pelagos`), runtime state under [`EngineOptions::runroot`] (`/run/pelagos`),
//! registry and default-network settings in [`EngineOptions::config_file`]
//! (`/etc/pelagos/config.toml`).

pub mod commit;
pub mod container;
pub mod disk_usage;
pub mod error;
pub mod image_prune;
pub mod image_views;
pub mod network;
pub mod pull;
pub mod push;
pub mod system;
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
    /// The `pelagos-monitor` program (`None`: `$PELAGOS_MONITOR`, else next to the running
    /// program, else `/usr/libexec/pelagos/pelagos-monitor`).
    pub monitor_program: Option<PathBuf>,
    /// Whether this process exits before the monitors it starts (the CLI): they then stay
    /// its children, adopted by init when it exits, which saves each monitor a fork. `false`
    /// (a daemon, a library user): every monitor detaches, so no zombie is left to reap.
    pub short_lived: bool,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions {
            root: PathBuf::from("/var/lib/pelagos"),
            runroot: PathBuf::from("/run/pelagos"),
            config_file: PathBuf::from("/etc/pelagos/config.toml"),
            auth_file: AuthFile::default_path(),
            cgroup_parent: "/pelagos".into(),
            monitor_program: None,
            short_lived: false,
        }
    }
}

/// An opened engine: the image store, the container records, the configuration.
pub struct Engine {
    /// Where things are.
    pub options: EngineOptions,
    images: Arc<ImageStore>,
    containers: pelagos_model::store::Containers,
    volumes: volumes::Volumes,
    networks: pelagos_network::Networks,
    network_settings: network::settings::NetworkSettings,
    registries: RegistryConfig,
    events: pelagos_model::events::EventLog,
}

impl Engine {
    /// Opens (creating when missing) the stores under the configured paths.
    pub fn open(options: EngineOptions) -> Result<Engine> {
        let images = ImageStore::open(options.root.join("image"))?;
        let containers = pelagos_model::store::Containers::open(options.root.join("containers"))?;
        let volumes = volumes::Volumes::open(options.root.join("volumes"))?;
        let networks = pelagos_network::Networks::open(&options.root)?;
        let registries = RegistryConfig::load(&options.config_file)?;
        let network_settings = network::settings::load(&options.config_file)?;
        let events = pelagos_model::events::EventLog::new(&options.root);
        Ok(Engine {
            events,
            options,
            images: Arc::new(images),
            containers,
            volumes,
            networks,
            network_settings,
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
    pub fn containers(&self) -> &pelagos_model::store::Containers {
        &self.containers
    }

    /// The volumes.
    pub fn volumes(&self) -> &volumes::Volumes {
        &self.volumes
    }

    /// The network records.
    pub fn networks(&self) -> &pelagos_network::Networks {
        &self.networks
    }

    /// The networks' settings (the `[network]` table of the configuration).
    pub fn network_settings(&self) -> &network::settings::NetworkSettings {
        &self.network_settings
    }

    /// The event log (`docker events`).
    pub fn events(&self) -> &pelagos_model::events::EventLog {
        &self.events
    }

    /// Records an event; a failure to record it never fails the action.
    pub fn emit(&self, event: &pelagos_model::events::Event) {
        self.events.emit(event)
    }

    /// Registry settings from the configuration file.
    pub fn registries(&self) -> &RegistryConfig {
        &self.registries
    }

    /// The registry settings, to extend after loading (the daemon's `--insecure-registry`
    /// and `--registry-mirror` flags add to the configuration file's).
    pub fn registries_mut(&mut self) -> &mut RegistryConfig {
        &mut self.registries
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

    /// The monitor program to start.
    pub fn monitor_program(&self) -> Result<PathBuf> {
        locate_program(
            self.options.monitor_program.as_deref(),
            "PELAGOS_MONITOR",
            "pelagos-monitor",
        )
    }

    /// The container init for `--init`, installed once under the root.
    pub fn init_program(&self) -> Result<PathBuf> {
        let dir = self.options.root.join("bin");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        pelagos_init::install(&dir).map_err(|e| Error::Task(format!("install the init: {e}")))
    }

    /// Whether some container uses the image (for `image rm` and `image prune`).
    pub fn image_in_use_fn(&self) -> Result<impl Fn(&pelagos_image::Digest) -> bool> {
        let used = self.containers.images_in_use()?;
        Ok(move |d: &pelagos_image::Digest| used.contains(&d.to_string()))
    }
}

/// A helper program: the configured path, else the environment variable, else next to the
/// running program, else under /usr/libexec/pelagos.
fn locate_program(configured: Option<&std::path::Path>, env: &str, name: &str) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(env) {
        return Ok(PathBuf::from(p));
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join(name)));
    for candidate in beside
        .into_iter()
        .chain([PathBuf::from("/usr/libexec/pelagos").join(name)])
    {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::Task(format!(
        "cannot find {name}: install it next to the pelagos program or set {env}"
    )))
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
