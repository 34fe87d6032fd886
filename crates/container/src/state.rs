//! Container state on disk: `<root>/<id>/state.json`, written atomically, and the live status
//! derived from the init process (pid + start time) and the cgroup's freezer.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::id::ContainerId;
use crate::sys;

/// Where runc puts it and callers expect it: the state file inside the container's directory.
pub const STATE_FILE: &str = "state.json";
/// Frozen copy of config.json taken at create: later edits of the bundle do not affect the container.
pub const CONFIG_FILE: &str = "config.json";
/// The fifo the parked init writes to; `start` reads it. Present while the container is `created`.
pub const EXEC_FIFO: &str = "exec.fifo";

/// The container status words of runtime-spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers of a container between invocations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SavedState {
    pub id: ContainerId,
    pub pid: i32,
    /// Start time of `pid` in clock ticks, to detect pid reuse.
    pub pid_start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub owner: String,
    /// The cgroup path relative to the v2 mount.
    pub cgroup: String,
    /// How many levels of the cgroup path create made (removed again on delete).
    #[serde(default)]
    pub cgroup_owned_levels: usize,
    /// The cgroup is a systemd scope (created and removed through systemd's D-Bus API).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub systemd_scope: bool,
    /// Whether the container has its own pid namespace (then killing init kills all).
    pub own_pid_ns: bool,
    /// Set once `start` ran (or for `run`), so a pid alive without fifo reads as running.
    #[serde(default)]
    pub started: bool,
}

/// The `state` command's output: runtime-spec's state plus runc's extra fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateReport<'a> {
    pub oci_version: &'static str,
    pub id: &'a str,
    pub pid: i32,
    pub status: Status,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
    pub owner: &'a str,
}

impl SavedState {
    pub fn load(dir: &Path, id: &ContainerId) -> Result<SavedState> {
        let path = dir.join(STATE_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            // An id longer than a file name may be (255 bytes) is valid for runc, but no
            // container can have it.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENAMETOOLONG) =>
            {
                return Err(Error::NotFound(id.to_string()))
            }
            Err(e) => return Err(e).io(|| format!("read {}", path.display())),
        };
        serde_json::from_slice(&data).map_err(|e| Error::Io {
            what: format!("corrupt state file {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// Write atomically: a reader never sees half a file.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let tmp = dir.join(".state.json.tmp");
        let data = serde_json::to_vec(self).map_err(|e| Error::Spec(e.to_string()))?;
        let mut f = fs::File::create(&tmp).io(|| format!("write {}", tmp.display()))?;
        f.write_all(&data)
            .io(|| format!("write {}", tmp.display()))?;
        fs::rename(&tmp, dir.join(STATE_FILE)).io(|| format!("write state in {}", dir.display()))
    }

    /// Whether the init process recorded here is still the same live process.
    pub fn init_alive(&self) -> bool {
        self.pid > 0
            && sys::process_start_time(self.pid) == Some(self.pid_start_time)
            && sys::process_state(self.pid) != Some('Z')
    }

    pub fn report<'a>(&'a self, status: Status) -> StateReport<'a> {
        StateReport {
            oci_version: crate::OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }
}

/// Now as RFC 3339 with nanoseconds in UTC, the format of runc's `created`.
pub fn now_rfc3339_nano() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format_rfc3339_nano(now.as_secs() as i64, now.subsec_nanos())
}

/// Format seconds since the epoch (UTC) as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`. Hand-written (a
/// date crate for one format is not worth its weight on the start path); days to civil date by
/// Howard Hinnant's algorithm.
pub fn format_rfc3339_nano(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(format_rfc3339_nano(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            format_rfc3339_nano(951_782_400, 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            format_rfc3339_nano(1_796_040_000, 123_456_789),
            "2026-11-30T12:00:00.123456789Z"
        );
    }

    #[test]
    fn status_words() {
        assert_eq!(
            serde_json::to_string(&Status::Paused).unwrap(),
            "\"paused\""
        );
        assert_eq!(Status::Created.to_string(), "created");
    }
}
