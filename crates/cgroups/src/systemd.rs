//! `--systemd-cgroup` when systemd runs: the container's cgroup is a transient scope that
//! systemd creates around the init's pid (StartTransientUnit with `Delegate=yes`, as runc and
//! crun do), and stops on delete. Without systemd the same `slice:prefix:name` paths are plain
//! directories (see `path.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use oci_spec::runtime::LinuxResources;

use crate::dbus::{Arg, Bus, DbusError, Reply, Value};
use crate::error::CgroupError;

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const NO_SUCH_UNIT: &str = "org.freedesktop.systemd1.NoSuchUnit";
/// How long systemd gets to start or stop a scope (it takes milliseconds).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Whether systemd is the init system here (`sd_booted()`'s test).
pub fn is_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

fn err(unit: &str, message: impl std::fmt::Display) -> CgroupError {
    CgroupError::Systemd {
        unit: unit.to_owned(),
        message: message.to_string(),
    }
}

/// The unit and its slice for a cgroup path made by `path::resolve` in systemd mode:
/// `/a.slice/a-b.slice/p-n.scope` -> (`p-n.scope`, `a-b.slice`); at the root `-.slice`.
pub fn unit_and_slice(rel: &str) -> Result<(String, String), CgroupError> {
    let mut comps = rel.rsplit('/').filter(|c| !c.is_empty());
    let unit = comps.next().unwrap_or_default().to_owned();
    if !unit.ends_with(".scope") {
        return Err(err(
            &unit,
            "only scopes can hold a container under systemd (the cgroupsPath names a slice)",
        ));
    }
    let slice = comps.next().unwrap_or("-.slice").to_owned();
    Ok((unit, slice))
}

fn connect(unit: &str) -> Result<Bus, CgroupError> {
    Bus::system(TIMEOUT).map_err(|e| err(unit, format!("connect to the system bus: {e}")))
}

fn manager_call(bus: &mut Bus, member: &str, args: &[Arg<'_>]) -> Result<Reply, DbusError> {
    bus.call(DEST, MANAGER_PATH, MANAGER, member, args)
}

/// `cpu.shares` (2..262144) to systemd's `CPUWeight` (1..10000), the conversion runc and crun use.
fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 100;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262142
}

/// The resource properties systemd itself should hold for the scope, so that a daemon-reload
/// does not reset what the runtime writes into the scope's files.
fn resource_properties(res: &LinuxResources) -> Vec<(&'static str, Value)> {
    let mut props: Vec<(&'static str, Value)> = Vec::new();
    let as_max = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if let Some(m) = res.memory() {
        if let Some(limit) = m.limit() {
            props.push(("MemoryMax", Value::U64(as_max(limit))));
            if let Some(swap) = m.swap() {
                // OCI's swap is memory+swap; systemd's MemorySwapMax is swap alone.
                let swap_only = if swap < 0 || limit < 0 {
                    u64::MAX
                } else {
                    (swap - limit).max(0) as u64
                };
                props.push(("MemorySwapMax", Value::U64(swap_only)));
            }
        }
        if let Some(low) = m.reservation() {
            props.push(("MemoryLow", Value::U64(as_max(low))));
        }
    }
    if let Some(p) = res.pids() {
        props.push(("TasksMax", Value::U64(as_max(p.limit()))));
    }
    if let Some(c) = res.cpu() {
        if let Some(shares) = c.shares() {
            props.push(("CPUWeight", Value::U64(shares_to_weight(shares))));
        }
        if let (Some(quota), Some(period)) = (c.quota(), c.period()) {
            if quota > 0 && period > 0 {
                props.push((
                    "CPUQuotaPerSecUSec",
                    Value::U64(quota as u64 * 1_000_000 / period),
                ));
                props.push(("CPUQuotaPeriodUSec", Value::U64(period)));
            }
        }
    }
    props
}

/// Asks systemd for the transient scope `rel` holding `pid`, delegated to the runtime, and
/// waits until it is active. The scope's cgroup is then `<v2 root><rel>`.
pub fn start_scope(
    rel: &str,
    pid: i32,
    description: &str,
    res: &LinuxResources,
) -> Result<(), CgroupError> {
    let (unit, slice) = unit_and_slice(rel)?;
    let mut bus = connect(&unit)?;
    let mut props: Vec<(&str, Value)> = vec![
        ("Description", Value::Str(description.to_owned())),
        ("Slice", Value::Str(slice)),
        ("Delegate", Value::Bool(true)),
        ("PIDs", Value::U32Array(vec![pid as u32])),
        ("DefaultDependencies", Value::Bool(false)),
        ("MemoryAccounting", Value::Bool(true)),
        ("CPUAccounting", Value::Bool(true)),
        ("TasksAccounting", Value::Bool(true)),
        ("IOAccounting", Value::Bool(true)),
    ];
    props.extend(resource_properties(res));
    manager_call(
        &mut bus,
        "StartTransientUnit",
        &[
            Arg::Str(&unit),
            Arg::Str("replace"),
            Arg::Props(&props),
            Arg::EmptyAux,
        ],
    )
    .map_err(|e| err(&unit, format!("StartTransientUnit: {e}")))?;
    wait_state(&mut bus, &unit, |s| s == "active", "become active")
}

/// Stops the scope (its processes are killed first by the caller) and waits until systemd
/// has removed it. A unit systemd no longer knows is already stopped.
pub fn stop_scope(rel: &str) -> Result<(), CgroupError> {
    let (unit, _) = unit_and_slice(rel)?;
    let mut bus = connect(&unit)?;
    match manager_call(
        &mut bus,
        "StopUnit",
        &[Arg::Str(&unit), Arg::Str("replace")],
    ) {
        Ok(_) => {}
        Err(e) if e.name == NO_SUCH_UNIT => return Ok(()),
        Err(e) => return Err(err(&unit, format!("StopUnit: {e}"))),
    }
    wait_state(
        &mut bus,
        &unit,
        |s| s == "inactive" || s == "failed",
        "stop",
    )
}

/// Polls the unit's ActiveState (scopes change state within milliseconds; polling avoids a
/// signal subscription). A unit that vanished counts as "inactive".
fn wait_state(
    bus: &mut Bus,
    unit: &str,
    done: impl Fn(&str) -> bool,
    what: &str,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + TIMEOUT;
    let mut pause = Duration::from_micros(200);
    loop {
        let state = match manager_call(bus, "GetUnit", &[Arg::Str(unit)]) {
            Ok(Reply::Text(path)) => match bus.call(
                DEST,
                &path,
                "org.freedesktop.DBus.Properties",
                "Get",
                &[
                    Arg::Str("org.freedesktop.systemd1.Unit"),
                    Arg::Str("ActiveState"),
                ],
            ) {
                Ok(Reply::VariantText(s)) => s,
                Ok(other) => {
                    return Err(err(unit, format!("unexpected ActiveState reply {other:?}")))
                }
                Err(e) if e.name == "org.freedesktop.DBus.Error.UnknownObject" => {
                    "inactive".to_owned()
                }
                Err(e) => return Err(err(unit, format!("read ActiveState: {e}"))),
            },
            Ok(other) => return Err(err(unit, format!("unexpected GetUnit reply {other:?}"))),
            Err(e) if e.name == NO_SUCH_UNIT => "inactive".to_owned(),
            Err(e) => return Err(err(unit, format!("GetUnit: {e}"))),
        };
        if done(&state) {
            return Ok(());
        }
        if state == "failed" {
            return Err(err(unit, format!("the unit failed to {what}")));
        }
        if Instant::now() > deadline {
            return Err(err(
                unit,
                format!("did not {what} within {TIMEOUT:?} (state {state})"),
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_slices_from_paths() {
        assert_eq!(
            unit_and_slice("/system.slice/pelagos-abc.scope").unwrap(),
            ("pelagos-abc.scope".into(), "system.slice".into())
        );
        assert_eq!(
            unit_and_slice("/a.slice/a-b.slice/x-y.scope").unwrap(),
            ("x-y.scope".into(), "a-b.slice".into())
        );
        assert_eq!(unit_and_slice("/c.scope").unwrap().1, "-.slice");
        assert!(unit_and_slice("/a.slice/a-b.slice").is_err());
    }

    #[test]
    fn weights_and_quotas_convert_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262144), 10000);
        let res: LinuxResources = serde_json::from_value(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 3145728, "reservation": 524288},
            "pids": {"limit": -1},
            "cpu": {"shares": 1024, "quota": 50000, "period": 100000}
        }))
        .unwrap();
        let props = resource_properties(&res);
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("MemoryMax"), Some(Value::U64(1048576)));
        assert_eq!(get("MemorySwapMax"), Some(Value::U64(2097152)));
        assert_eq!(get("MemoryLow"), Some(Value::U64(524288)));
        assert_eq!(get("TasksMax"), Some(Value::U64(u64::MAX)));
        assert_eq!(get("CPUWeight"), Some(Value::U64(39)));
        assert_eq!(get("CPUQuotaPerSecUSec"), Some(Value::U64(500000)));
    }
}
