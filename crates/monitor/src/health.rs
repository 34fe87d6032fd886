//! Docker's healthchecks: `Config.Healthcheck` (`CMD`, `CMD-SHELL`, `NONE`) with its
//! interval, timeout, retries and start period (defaults 30 s, 30 s, 3, 0); each probe an exec
//! in the container with its output captured (4 KiB) and killed at the timeout; the result
//! folded into `State.Health` as Docker does.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use pelagos_container::{ContainerId, Runtime};
use pelagos_model::config::ContainerConfig;
use pelagos_model::protocol::ExecSpec;
use pelagos_model::state::{Health, HealthLog, HealthStatus};

use crate::error::{Error, Result};
use crate::{exec, sys};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps this much of a probe's output.
pub const MAX_OUTPUT: usize = 4096;
/// And this many results.
const MAX_LOG: usize = 5;

/// A container's healthcheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub cmd: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
}

fn nanos_or(n: i64, default: Duration) -> Duration {
    match u64::try_from(n) {
        Ok(n) if n > 0 => Duration::from_nanos(n),
        _ => default,
    }
}

impl Settings {
    /// The healthcheck of a container config; `None` without one or with `NONE`.
    pub fn of(config: &ContainerConfig) -> Result<Option<Settings>> {
        let Some(h) = &config.healthcheck else {
            return Ok(None);
        };
        let cmd = match h.test.split_first() {
            None => return Ok(None),
            Some((kind, _)) if kind == "NONE" => return Ok(None),
            Some((kind, args)) if kind == "CMD" && !args.is_empty() => args.to_vec(),
            Some((kind, [line])) if kind == "CMD-SHELL" => {
                vec!["/bin/sh".into(), "-c".into(), line.clone()]
            }
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "invalid healthcheck test {:?}: expected [\"CMD\", args...], \
                     [\"CMD-SHELL\", command] or [\"NONE\"]",
                    h.test
                )))
            }
        };
        Ok(Some(Settings {
            cmd,
            interval: nanos_or(h.interval, DEFAULT_INTERVAL),
            timeout: nanos_or(h.timeout, DEFAULT_TIMEOUT),
            retries: u32::try_from(h.retries)
                .ok()
                .filter(|r| *r > 0)
                .unwrap_or(DEFAULT_RETRIES),
            start_period: nanos_or(h.start_period, Duration::ZERO),
        }))
    }
}

/// A probe in flight.
pub struct Probe {
    pub pid: i32,
    pub pidfd: OwnedFd,
    /// Read end of its stdout and stderr.
    pub output: Option<OwnedFd>,
    captured: Vec<u8>,
    pub deadline: Instant,
    start: String,
    timed_out: bool,
}

/// The healthcheck of one run of the container.
pub struct Checker {
    pub settings: Settings,
    /// When the container started.
    started: Instant,
    next: Instant,
    pub probe: Option<Probe>,
}

impl Checker {
    /// First probe an interval after the start.
    pub fn new(settings: Settings, started: Instant) -> Checker {
        Checker {
            next: started + settings.interval,
            settings,
            started,
            probe: None,
        }
    }

    /// The next moment something is due: a probe's timeout or the next probe.
    pub fn deadline(&self) -> Instant {
        match &self.probe {
            Some(p) if !p.timed_out => p.deadline,
            Some(_) => self.next.max(Instant::now() + Duration::from_secs(1)),
            None => self.next,
        }
    }

    /// Whether a probe should start now.
    pub fn due(&self, now: Instant) -> bool {
        self.probe.is_none() && now >= self.next
    }

    /// Starts a probe in the container whose init is `init_pid`; a failure to start is a
    /// failed probe, returned as its log entry.
    pub fn start(
        &mut self,
        runtime: &Runtime,
        id: &ContainerId,
        init_pid: i32,
        now: Instant,
    ) -> Option<HealthLog> {
        self.next = now + self.settings.interval;
        let start = pelagos_model::names::now_rfc3339();
        match self.spawn(runtime, id, init_pid, now, start.clone()) {
            Ok(p) => {
                self.probe = Some(p);
                None
            }
            Err(e) => Some(HealthLog {
                end: pelagos_model::names::now_rfc3339(),
                start,
                exit_code: -1,
                output: e.to_string(),
            }),
        }
    }

    fn spawn(
        &self,
        runtime: &Runtime,
        id: &ContainerId,
        init_pid: i32,
        now: Instant,
        start: String,
    ) -> Result<Probe> {
        let spec = ExecSpec {
            cmd: self.settings.cmd.clone(),
            ..Default::default()
        };
        let process = exec::build_process(runtime, id, init_pid, &spec)?;
        let (r, w) = sys::pipe()?;
        let null = sys::dev_null(false)?;
        let started = exec::spawn(runtime, id, process, [null.as_fd(), w.as_fd(), w.as_fd()])?;
        sys::set_nonblocking(r.as_fd())?;
        Ok(Probe {
            pid: started.pid,
            pidfd: started.pidfd,
            output: Some(r),
            captured: Vec::new(),
            deadline: now + self.settings.timeout,
            start,
            timed_out: false,
        })
    }

    /// Reads the probe's output (keeping the first 4 KiB).
    pub fn read_output(&mut self, buf: &mut [u8]) {
        let Some(p) = &mut self.probe else { return };
        let Some(fd) = &p.output else { return };
        loop {
            match sys::read_some(fd.as_fd(), buf) {
                sys::Read::Data(n) => {
                    let room = MAX_OUTPUT.saturating_sub(p.captured.len());
                    p.captured.extend_from_slice(&buf[..n.min(room)]);
                }
                sys::Read::Eof => {
                    p.output = None;
                    return;
                }
                sys::Read::WouldBlock => return,
            }
        }
    }

    /// Kills a probe past its timeout.
    pub fn enforce_timeout(&mut self, now: Instant) {
        if let Some(p) = &mut self.probe {
            if !p.timed_out && now >= p.deadline {
                let _ = pelagos_container::sys::pidfd_send_signal(&p.pidfd, libc::SIGKILL);
                p.timed_out = true;
            }
        }
    }

    /// The probe exited: reaps it and returns its log entry.
    pub fn finish(&mut self, buf: &mut [u8]) -> Option<HealthLog> {
        self.read_output(buf);
        let p = self.probe.take()?;
        // Docker's interval runs from the end of one probe to the start of the next.
        self.next = Instant::now() + self.settings.interval;
        let code = sys::reap(p.pid).unwrap_or(-1);
        let output = match p.timed_out {
            true => format!(
                "Health check exceeded timeout ({}s)",
                self.settings.timeout.as_secs_f64()
            ),
            false => String::from_utf8_lossy(&p.captured).into_owned(),
        };
        Some(HealthLog {
            start: p.start,
            end: pelagos_model::names::now_rfc3339(),
            exit_code: if p.timed_out { -1 } else { code },
            output,
        })
    }

    /// Whether `now` is within the start period.
    pub fn in_start_period(&self, now: Instant) -> bool {
        now.duration_since(self.started) < self.settings.start_period
    }
}

/// Folds a probe's result into the health state (moby's `handleProbeResult`): a success
/// makes it healthy; a failure counts towards the retries unless the container is still
/// starting within its start period.
pub fn apply(health: &mut Health, entry: HealthLog, in_start_period: bool, retries: u32) {
    if entry.exit_code == 0 {
        health.failing_streak = 0;
        health.status = HealthStatus::Healthy;
    } else if !(health.status == HealthStatus::Starting && in_start_period) {
        health.failing_streak += 1;
        if health.failing_streak >= retries {
            health.status = HealthStatus::Unhealthy;
        }
    }
    health.log.push(entry);
    if health.log.len() > MAX_LOG {
        let extra = health.log.len() - MAX_LOG;
        health.log.drain(..extra);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pelagos_model::config::HealthConfig;

    fn config(test: &[&str]) -> ContainerConfig {
        ContainerConfig {
            healthcheck: Some(HealthConfig {
                test: test.iter().map(|s| s.to_string()).collect(),
                interval: 2_000_000_000,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn settings_follow_docker() {
        let s = Settings::of(&config(&["CMD-SHELL", "exit 1"]))
            .unwrap()
            .unwrap();
        assert_eq!(s.cmd, vec!["/bin/sh", "-c", "exit 1"]);
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        assert_eq!(s.retries, 3);
        assert_eq!(s.start_period, Duration::ZERO);
        let s = Settings::of(&config(&["CMD", "true", "x"]))
            .unwrap()
            .unwrap();
        assert_eq!(s.cmd, vec!["true", "x"]);
        assert!(Settings::of(&config(&["NONE"])).unwrap().is_none());
        assert!(Settings::of(&config(&[])).unwrap().is_none());
        assert!(Settings::of(&ContainerConfig::default()).unwrap().is_none());
        assert!(Settings::of(&config(&["CMD"])).is_err());
        assert!(Settings::of(&config(&["BOGUS", "x"])).is_err());
    }

    #[test]
    fn results_fold_like_moby() {
        let entry = |code| HealthLog {
            exit_code: code,
            ..Default::default()
        };
        let mut h = Health::default();
        apply(&mut h, entry(1), true, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        apply(&mut h, entry(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        apply(&mut h, entry(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        apply(&mut h, entry(0), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            apply(&mut h, entry(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }
}
