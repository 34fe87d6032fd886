//! `GET /containers/{id}/stats`: Docker's stats objects, one a second while streaming, each
//! with the previous sample as `precpu_stats` (CPU percentages need the delta).

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pelagos_engine::container::stats_view::{self, Sample};
use pelagos_model::record::ContainerRecord;
use pelagos_model::ErrorKind;

use crate::error::{ApiError, ApiResult};
use crate::query::{bool_value, Params};
use crate::state::AppState;

/// Between two objects of a stream, and between the two samples of a single object.
const INTERVAL: Duration = Duration::from_secs(1);

/// `GET /containers/{id}/stats`.
pub async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<Response> {
    let stream = bool_or(&q, "stream", true);
    let one_shot = bool_or(&q, "one-shot", false);
    if stream && one_shot {
        return Err(ApiError::bad_request(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let name = id.clone();
    let record = state
        .blocking(move |e| pelagos_engine::container::lookup(e, &name))
        .await?;
    if !stream {
        return single(&state, record, one_shot).await.map(json_response);
    }
    let stream = futures_util::stream::unfold(
        Streaming {
            state,
            record,
            before: None,
        },
        |mut s| async move { s.next().await.map(|v| (Ok::<_, ApiError>(v), s)) },
    );
    let body = axum::body::Body::from_stream(stream);
    Ok(([(CONTENT_TYPE, "application/json")], body).into_response())
}

/// The one object of `stream=false`: the zero object of a container that is not running
/// (as moby), otherwise two samples a second apart (one with `one-shot`).
async fn single(
    state: &AppState,
    record: ContainerRecord,
    one_shot: bool,
) -> ApiResult<serde_json::Value> {
    if !record.state.status.is_live() {
        return Ok(stats_view::zeroed(&record));
    }
    let id = record.id.as_str().to_owned();
    let before = match one_shot {
        true => None,
        false => {
            let first = sample(state, &id).await;
            tokio::time::sleep(INTERVAL).await;
            first
        }
    };
    match sample(state, &id).await {
        Some((record, now)) => Ok(stats_view::docker_json(
            &record,
            &now,
            before.as_ref().map(|(_, s)| s),
        )),
        // Stopped between the lookup and the sample.
        None => Ok(stats_view::zeroed(&record)),
    }
}

/// A sample of a running container; `None` once it is not running (or gone).
async fn sample(state: &AppState, id: &str) -> Option<(ContainerRecord, Sample)> {
    let id = id.to_owned();
    state
        .blocking(move |e| stats_view::sample(e, &id))
        .await
        .ok()
}

/// A stream's state: the container as last seen, and the previous sample (`None` while
/// it is not running).
struct Streaming {
    state: AppState,
    record: ContainerRecord,
    before: Option<Sample>,
}

impl Streaming {
    /// The next object, a second after the previous one: a sample while the container runs,
    /// moby's zero object while it does not; `None` ends the stream (the container is gone).
    async fn next(&mut self) -> Option<Bytes> {
        if self.before.is_none() {
            self.before = self.try_sample().await?.map(|(_, first)| first);
        }
        tokio::time::sleep(INTERVAL).await;
        let json = match self.try_sample().await? {
            Some((record, now)) => {
                let json = stats_view::docker_json(&record, &now, self.before.as_ref());
                self.record = record;
                self.before = Some(now);
                json
            }
            None => {
                self.before = None;
                stats_view::zeroed(&self.record)
            }
        };
        let mut line = serde_json::to_vec(&json).unwrap_or_default();
        line.push(b'\n');
        Some(Bytes::from(line))
    }

    /// `Some(None)`: not running; `None`: gone or unreadable.
    async fn try_sample(&self) -> Option<Option<(ContainerRecord, Sample)>> {
        let id = self.record.id.as_str().to_owned();
        match self
            .state
            .blocking(move |e| stats_view::sample(e, &id))
            .await
        {
            Ok(s) => Some(Some(s)),
            Err(e) if e.status == crate::error::status_of(ErrorKind::Conflict) => Some(None),
            Err(_) => None,
        }
    }
}

/// moby's `BoolValueOrDefault`: absent or empty is the default.
fn bool_or(q: &Params, name: &str, default: bool) -> bool {
    match q.get(name).map(String::as_str) {
        None | Some("") => default,
        text => bool_value(text),
    }
}

fn json_response(value: serde_json::Value) -> Response {
    axum::Json(value).into_response()
}
