//! runc's command line as clap structs: global flags, one struct per subcommand. Flags may
//! come before or after the container id, as runc accepts.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::log::LogFormat;

#[derive(Parser, Debug)]
#[command(
    name = "pelagos-runtime",
    about = "OCI container runtime with runc's command-line contract",
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for container state.
    #[arg(long, global = true, default_value = "/run/pelagos")]
    pub root: PathBuf,
    /// The node's settings: the `[runtime]` table of this file (see docs/kubernetes.md).
    #[arg(
        long = "config-file",
        global = true,
        default_value = "/etc/pelagos/config.toml"
    )]
    pub config_file: PathBuf,
    /// Log file (errors and warnings); containerd passes <bundle>/log.json.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = LogFormat::parse)]
    pub log_format: LogFormat,
    /// cgroupsPath is slice:prefix:name (systemd style).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// crun's cgroup manager flag: cgroupfs, systemd or disabled.
    #[arg(long = "cgroup-manager", global = true)]
    pub cgroup_manager: Option<String>,
    /// Accepted for compatibility.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Accepted for compatibility (true, false, auto); before the subcommand.
    #[arg(long)]
    pub rootless: Option<String>,
    /// Accepted for compatibility.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `defer`: clap builds a subcommand's argument table only when that subcommand is used
/// (measured: 0.3 ms less per start).
#[derive(Subcommand, Debug)]
#[command(defer = true)]
pub enum Command {
    /// Create a container; its process waits for `start`.
    Create(CreateArgs),
    /// Start the process of a created container.
    Start(IdArg),
    /// Print a container's state as JSON.
    State(IdArg),
    /// Send a signal to a container's init (or to all its processes).
    Kill(KillArgs),
    /// Delete a container and all it holds.
    Delete(DeleteArgs),
    /// Create and start a container, and wait for it unless --detach.
    Run(RunArgs),
    /// Run a new process inside a running container.
    Exec(ExecArgs),
    /// List containers.
    List(ListArgs),
    /// Show a container's processes.
    Ps(PsArgs),
    /// Freeze all processes of a container.
    Pause(IdArg),
    /// Thaw a paused container.
    Resume(IdArg),
    /// Change a running container's resource limits.
    Update(UpdateArgs),
    /// Show a container's events and resource usage.
    Events(EventsArgs),
    /// Print the features this runtime supports (JSON).
    Features,
    /// Write a default config.json.
    Spec(SpecArgs),
    /// Checkpoint a container (not supported yet).
    Checkpoint(PassThrough),
    /// Restore a container (not supported yet).
    Restore(PassThrough),
}

#[derive(Args, Debug)]
pub struct IdArg {
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug, Clone)]
pub struct CreateFlags {
    /// Bundle directory (default: current directory).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// AF_UNIX socket to send the pty master to.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// AF_UNIX socket to send a pidfd of the init to.
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Keep the caller's session keyring (default: join a new one named after the id).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass N extra fds (3..3+N-1) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// crun's: config file instead of <bundle>/config.json.
    #[arg(long = "config", short = 'f')]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Accepted and ignored: create always detaches.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub flags: CreateFlags,
    /// Return once started instead of waiting.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Do not become a child subreaper.
    #[arg(long = "no-subreaper")]
    pub no_subreaper: bool,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal every process of the container.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
    /// Signal name or number (default SIGTERM).
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    /// Kill a running container first; succeed when it does not exist.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Print only ids.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    #[arg(short = 'f', long, default_value = "table")]
    pub format: String,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
    /// Arguments for ps(1) in table format (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// process.json describing the process.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    #[arg(short = 'd', long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long = "pidfd-socket")]
    pub pidfd_socket: Option<PathBuf>,
    #[arg(short = 't', long)]
    pub tty: bool,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// Add a capability (repeatable).
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long)]
    pub apparmor: Option<String>,
    #[arg(long = "process-label")]
    pub process_label: Option<String>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: i32,
    /// Sub-cgroup of the container's cgroup.
    #[arg(long)]
    pub cgroup: Option<String>,
    #[arg(long = "ignore-paused")]
    pub ignore_paused: bool,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// LinuxResources JSON file, or - for stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    #[arg(long = "memory-swap")]
    pub memory_swap: Option<String>,
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_shares: Option<u64>,
    #[arg(long = "cpu-quota")]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pub pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug)]
pub struct EventsArgs {
    /// Print one stats record and exit.
    #[arg(long)]
    pub stats: bool,
    /// Interval between stats, e.g. 5s.
    #[arg(long, default_value = "5s")]
    pub interval: String,
    /// Container id: letters, digits and _ + - .
    pub id: OsString,
}

#[derive(Args, Debug)]
pub struct SpecArgs {
    /// Write a spec for a rootless container.
    #[arg(long = "rootless", id = "spec_rootless", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
}

#[derive(Args, Debug)]
pub struct PassThrough {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
