//! `POST /containers/{id}/wait?condition`: the headers at once, the body
//! `{"StatusCode","Error"}` when the condition is met (the docker CLI's `run` waits before it
//! starts the container, so it must hear back before the exit).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use pelagos_engine::container::lookup;
use pelagos_engine::container::wait::{wait_cancellable, WaitCancel};
use pelagos_model::protocol::WaitCondition;
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::query::Params;
use crate::state::AppState;

/// Docker's condition names; absent is `not-running`.
fn condition(text: Option<&str>) -> ApiResult<WaitCondition> {
    match text {
        None | Some("") | Some("not-running") => Ok(WaitCondition::NotRunning),
        Some("next-exit") => Ok(WaitCondition::NextExit),
        Some("removed") => Ok(WaitCondition::Removed),
        Some(other) => Err(ApiError::bad_request(format!(
            "invalid condition: {other:?}"
        ))),
    }
}

/// The answer once waited: the exit code, or the error in the body (the status is sent).
fn body_of(result: Option<pelagos_engine::Result<i32>>) -> Bytes {
    let value = match result {
        Some(Ok(code)) => json!({ "StatusCode": code, "Error": null }),
        Some(Err(e)) => json!({ "StatusCode": -1, "Error": { "Message": e.to_string() } }),
        None => json!({ "StatusCode": -1, "Error": { "Message": "the wait was cut short" } }),
    };
    Bytes::from(format!("{value}\n"))
}

/// Cancels the wait when the response is dropped (sent, or its client gone), and takes it
/// out of the registry, so the daemon keeps nothing for a container nobody waits on.
struct CancelOnDrop {
    cancel: Arc<WaitCancel>,
    waits: Arc<Waits>,
    id: String,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.cancel.cancel();
        self.waits.forget(&self.id, &self.cancel);
    }
}

/// The waits in progress by container id, so that a start wakes those that found no monitor
/// yet (the docker CLI's `run` waits before it starts) instead of their next look.
#[derive(Debug, Default)]
pub struct Waits {
    by_id: std::sync::Mutex<std::collections::HashMap<String, Vec<std::sync::Weak<WaitCancel>>>>,
}

impl Waits {
    /// Records `wait` for container `id` (forgotten once the wait is dropped).
    pub fn register(&self, id: &str, wait: &Arc<WaitCancel>) {
        if let Ok(mut map) = self.by_id.lock() {
            let list = map.entry(id.to_string()).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(wait));
        }
    }

    /// Takes `wait` (ended) out of container `id`'s list, and the list once empty.
    fn forget(&self, id: &str, wait: &Arc<WaitCancel>) {
        if let Ok(mut map) = self.by_id.lock() {
            if let Some(list) = map.get_mut(id) {
                let ended = Arc::as_ptr(wait);
                list.retain(|w| w.strong_count() > 0 && w.as_ptr() != ended);
                if list.is_empty() {
                    map.remove(id);
                }
            }
        }
    }

    /// How many containers have waits registered (for tests).
    #[cfg(test)]
    fn containers(&self) -> usize {
        self.by_id.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Wakes the waits for container `id` (it was just started).
    pub fn poke(&self, id: &str) {
        if let Ok(mut map) = self.by_id.lock() {
            if let Some(list) = map.get_mut(id) {
                list.retain(|w| w.upgrade().map(|w| w.poke()).is_some());
                if list.is_empty() {
                    map.remove(id);
                }
            }
        }
    }
}

/// `POST /containers/{id}/wait`.
pub async fn wait(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> ApiResult<Response> {
    let condition = condition(params.get("condition").map(String::as_str))?;
    // An unknown container is a 404 before anything is streamed.
    let record = state.blocking(move |engine| lookup(engine, &id)).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let engine = state.engine.clone();
    let cancel = Arc::new(WaitCancel::default());
    state.waits.register(record.id.as_str(), &cancel);
    let guard = CancelOnDrop {
        cancel: cancel.clone(),
        waits: state.waits.clone(),
        id: record.id.as_str().to_string(),
    };
    // The wait blocks on the monitor's socket until the exit: a thread of the blocking pool,
    // freed when the client goes (the docker CLI's `run -d` asks and leaves at once).
    tokio::task::spawn_blocking(move || {
        let _ = tx.send(wait_cancellable(&engine, record, condition, &cancel));
    });
    let stream = futures_util::stream::once(async move {
        let answer = body_of(rx.await.ok());
        drop(guard);
        Ok::<_, Infallible>(answer)
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(format!("build the wait response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_and_bodies() {
        assert_eq!(condition(None).unwrap(), WaitCondition::NotRunning);
        assert_eq!(condition(Some("removed")).unwrap(), WaitCondition::Removed);
        assert!(condition(Some("later")).is_err());
        assert_eq!(
            &body_of(Some(Ok(3)))[..],
            b"{\"Error\":null,\"StatusCode\":3}\n"
        );
    }

    #[test]
    fn an_ended_wait_leaves_nothing_registered() {
        let waits = Arc::new(Waits::default());
        let first = Arc::new(WaitCancel::default());
        let second = Arc::new(WaitCancel::default());
        waits.register("c1", &first);
        waits.register("c1", &second);
        let guard = |cancel: &Arc<WaitCancel>| CancelOnDrop {
            cancel: cancel.clone(),
            waits: waits.clone(),
            id: "c1".into(),
        };
        drop(guard(&first));
        assert_eq!(waits.containers(), 1, "the other wait is still registered");
        drop(guard(&second));
        assert_eq!(waits.containers(), 0, "no wait left, no entry left");
    }
}
