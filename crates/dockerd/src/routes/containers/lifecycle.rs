//! The lifecycle verbs: start, stop, restart, kill, pause, unpause, rename, update, remove
//! and prune, each the engine verb the CLI calls, with moby's statuses (204 done, 304
//! nothing to do, 409 wrong state).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use pelagos_engine::container::{self as verbs, lookup};
use pelagos_model::config::{RestartPolicy, UpdateConfig};
use pelagos_model::events::Event;
use pelagos_model::filters::PruneFilter;
use pelagos_model::protocol::WaitCondition;
use pelagos_model::state::Status;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::query::{self, Params};
use crate::state::AppState;

/// A whole-number query parameter (moby's `strconv.Atoi`), absent when empty.
fn int_param(params: &Params, name: &str) -> ApiResult<Option<i64>> {
    match params.get(name).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "invalid value for {name}: strconv.Atoi: parsing {text:?}: invalid syntax"
            ))
        }),
    }
}

/// A signal query parameter (`KILL`, `SIGKILL`, `9`), absent when empty or `0` (moby's
/// "the default one").
fn signal_param(params: &Params) -> ApiResult<Option<i32>> {
    match params.get("signal").map(String::as_str) {
        None | Some("" | "0") => Ok(None),
        Some(text) => Ok(Some(verbs::kill::parse_signal(text)?)),
    }
}

/// `POST /containers/{id}/start`: 204, or 304 when it runs already. An attach waiting for
/// this start (`docker run`, `docker start -a` attach first) gets the connection the
/// container is started with, so none of its output is missed.
pub async fn start(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let attaches = state.attaches.clone();
    let waits = state.waits.clone();
    state
        .blocking(move |engine| -> ApiResult<StatusCode> {
            let record = lookup(engine, &id)?;
            if record.state.status == Status::Paused {
                return Err(ApiError::conflict(
                    "cannot start a paused container, try unpause instead",
                ));
            }
            let started = start_and_wake(engine, &attaches, &waits, record.id.as_str())?;
            Ok(match started {
                true => StatusCode::NO_CONTENT,
                false => StatusCode::NOT_MODIFIED,
            })
        })
        .await
}

/// Starts container `id`, handing the start's connection to an attach that waits for it,
/// then wakes the waits that found no monitor yet: `start` and `restart` alike.
fn start_and_wake(
    engine: &pelagos_engine::Engine,
    attaches: &crate::hijack::PendingAttaches,
    waits: &super::wait::Waits,
    id: &str,
) -> pelagos_engine::Result<bool> {
    let started = crate::hijack::start_container(engine, attaches, id)?;
    waits.poke(id);
    Ok(started)
}

/// `POST /containers/{id}/stop?t&signal`: 204, or 304 when it is not running.
pub async fn stop(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<StatusCode> {
    let timeout = int_param(&params, "t")?;
    let signal = signal_param(&params)?;
    state
        .blocking(move |engine| -> ApiResult<StatusCode> {
            let record = lookup(engine, &id)?;
            if !record.state.status.is_live() {
                return Ok(StatusCode::NOT_MODIFIED);
            }
            verbs::stop::stop_with_signal(engine, record.id.as_str(), signal, timeout)?;
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// `POST /containers/{id}/restart?t`: stopped (if running) and started again, as the CLI's
/// `restart`, which emits `restart` after the start.
pub async fn restart(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<StatusCode> {
    let timeout = int_param(&params, "t")?;
    let signal = signal_param(&params)?;
    let attaches = state.attaches.clone();
    let waits = state.waits.clone();
    state
        .blocking(move |engine| -> ApiResult<StatusCode> {
            let record = lookup(engine, &id)?;
            let id = record.id.as_str();
            verbs::stop::stop_for_restart(engine, id, signal, timeout)?;
            start_and_wake(engine, &attaches, &waits, id)?;
            if let Ok(record) = lookup(engine, id) {
                engine.emit(&Event::container(&record, "restart"));
            }
            Ok(StatusCode::NO_CONTENT)
        })
        .await
}

/// `POST /containers/{id}/kill?signal` (default SIGKILL): 204; 409 when it is not running.
/// As moby, a SIGKILL is answered once the container has exited.
pub async fn kill(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<StatusCode> {
    let signal = signal_param(&params)?.unwrap_or(libc::SIGKILL);
    state
        .blocking(move |engine| {
            verbs::kill::kill(engine, &id, signal)
                .map_err(|e| e.context(format!("Cannot kill container: {id}")))?;
            if signal == libc::SIGKILL {
                verbs::wait::wait(engine, &id, WaitCondition::NotRunning)?;
            }
            Ok::<_, pelagos_engine::Error>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/pause`.
pub async fn pause(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    freeze(state, id, true).await
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    freeze(state, id, false).await
}

async fn freeze(state: AppState, id: String, pause: bool) -> ApiResult<StatusCode> {
    state
        .blocking(move |engine| verbs::pause::pause(engine, &id, pause))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/{id}/rename?name`.
pub async fn rename(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<StatusCode> {
    let name = params.get("name").cloned().unwrap_or_default();
    let name = name.strip_prefix('/').unwrap_or(&name).to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    state
        .blocking(move |engine| verbs::rename::rename(engine, &id, &name))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Docker's `UpdateConfig` body: the Resources and the restart policy, where the docker CLI
/// sends every field and a zero (an empty policy name) means "unchanged", as moby reads it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateBody {
    blkio_weight: Option<u16>,
    cpu_shares: Option<i64>,
    cpu_period: Option<i64>,
    cpu_quota: Option<i64>,
    cpuset_cpus: Option<String>,
    cpuset_mems: Option<String>,
    memory: Option<i64>,
    memory_reservation: Option<i64>,
    memory_swap: Option<i64>,
    nano_cpus: Option<i64>,
    /// A pointer in moby: present means changed (0 or -1: unlimited).
    pids_limit: Option<i64>,
    restart_policy: Option<RestartPolicy>,
}

impl UpdateBody {
    /// The engine's change: zeros and empty strings dropped.
    fn into_change(self) -> UpdateConfig {
        let set = |v: Option<i64>| v.filter(|n| *n != 0);
        let text = |v: Option<String>| v.filter(|t| !t.is_empty());
        UpdateConfig {
            blkio_weight: self.blkio_weight.filter(|w| *w != 0),
            cpu_shares: set(self.cpu_shares),
            cpu_period: set(self.cpu_period),
            cpu_quota: set(self.cpu_quota),
            cpuset_cpus: text(self.cpuset_cpus),
            cpuset_mems: text(self.cpuset_mems),
            memory: set(self.memory),
            memory_reservation: set(self.memory_reservation),
            memory_swap: set(self.memory_swap),
            nano_cpus: set(self.nano_cpus),
            pids_limit: self.pids_limit,
            restart_policy: self.restart_policy.filter(|p| !p.name.is_empty()),
        }
    }
}

/// `POST /containers/{id}/update`: `{"Warnings":[]}`.
pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query::Json(body): query::Json<UpdateBody>,
) -> ApiResult<Json<Value>> {
    let change = body.into_change();
    state
        .blocking(move |engine| verbs::update::update(engine, &id, &change))
        .await?;
    Ok(Json(json!({ "Warnings": [] })))
}

/// `DELETE /containers/{id}?v&force&link`: 204.
pub async fn remove(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<StatusCode> {
    let flag = |name: &str| query::bool_value(params.get(name).map(String::as_str));
    if flag("link") {
        return Err(ApiError::bad_request(
            "legacy container links are not supported by pelagos: there is no link to remove \
             (link=true)",
        ));
    }
    let (force, volumes) = (flag("force"), flag("v"));
    state
        .blocking(move |engine| verbs::remove::remove(engine, &id, force, volumes))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /containers/prune?filters`: `{"ContainersDeleted","SpaceReclaimed"}`.
pub async fn prune(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> ApiResult<Json<Value>> {
    let args = query::filters(params.get("filters").map(String::as_str))?;
    let filter = PruneFilter::parse(&args, verbs::remove::PRUNE_KEYS)?;
    let (removed, bytes) = state
        .blocking(move |engine| verbs::remove::prune(engine, &filter))
        .await?;
    Ok(Json(json!({
        "ContainersDeleted": removed,
        "SpaceReclaimed": bytes,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_s_zeros_change_nothing() {
        let body: UpdateBody = serde_json::from_str(
            r#"{"CpuShares":0,"Memory":67108864,"CpusetCpus":"","PidsLimit":null,
                "RestartPolicy":{"Name":"","MaximumRetryCount":0}}"#,
        )
        .unwrap();
        let change = body.into_change();
        assert_eq!(change.memory, Some(64 << 20));
        assert_eq!(change.cpu_shares, None);
        assert_eq!(change.cpuset_cpus, None);
        assert_eq!(change.restart_policy, None);
        let body: UpdateBody = serde_json::from_str(
            r#"{"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":2}}"#,
        )
        .unwrap();
        assert_eq!(
            body.into_change()
                .restart_policy
                .unwrap()
                .maximum_retry_count,
            2
        );
    }
}
