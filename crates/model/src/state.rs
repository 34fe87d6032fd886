//! A container's state as Docker reports it: one status enum and the facts around it
//! (pid, exit code, times, health), kept in the record by whoever owns the container.

use serde::{Deserialize, Serialize};

/// Docker's container statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Made, never started (or its start failed).
    #[default]
    Created,
    Running,
    Paused,
    /// Between two runs of its restart policy.
    Restarting,
    /// Being removed: a later `rm` finishes the job.
    Removing,
    Exited,
    /// Its owner died and the container could not be cleaned up.
    Dead,
}

impl Status {
    /// Docker's word for it (`docker inspect`'s State.Status).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a monitor owns the container in this status (its process may run).
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Docker's health statuses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// Docker's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// One probe's result (Docker keeps the last five).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's State.Health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u32,
    pub log: Vec<HealthLog>,
}

/// Who owns a live container: its monitor, named by pid and start time (a pid alone can be
/// reused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    /// Field 22 of /proc/PID/stat.
    pub start_time: u64,
}

/// The state part of a record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// Host pid of the container's init while it runs, else 0.
    #[serde(default)]
    pub pid: i32,
    #[serde(default)]
    pub exit_code: i32,
    /// Why it failed to start or ended abnormally (Docker's State.Error).
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub health: Option<Health>,
    #[serde(default)]
    pub owner: Option<Owner>,
    /// A stop was asked for: no restart policy applies until the next start.
    #[serde(default)]
    pub stop_requested: bool,
    #[serde(default)]
    pub restart_count: u32,
}
