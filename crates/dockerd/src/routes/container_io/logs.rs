//! `GET /containers/{id}/logs`: the log read (and followed) on a thread of its own, framed
//! as Docker frames it (8-byte headers without a tty, raw with one).

use std::io;
use std::os::fd::AsFd;
use std::time::SystemTime;

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::Bytes;
use pelagos_model::logs::{LogEntry, LogSettings, ReadOptions, Stream};
use tokio::sync::mpsc;

use super::{channel_body, gone, CHANNEL_DEPTH};
use crate::error::{ApiError, ApiResult};
use crate::query::{bool_value, Params};
use crate::state::AppState;
use crate::version::ApiVersion;

/// What a logs request asks for, parsed from its query.
struct LogsRequest {
    read: ReadOptions,
    follow: bool,
    timestamps: bool,
    details: bool,
}

impl LogsRequest {
    fn parse(q: &Params) -> ApiResult<LogsRequest> {
        let flag = |k: &str| bool_value(q.get(k).map(String::as_str));
        let (stdout, stderr) = (flag("stdout"), flag("stderr"));
        if !stdout && !stderr {
            return Err(ApiError::bad_request(
                "Bad parameters: you must choose at least one stream",
            ));
        }
        let now = SystemTime::now();
        let time = |k: &str| -> ApiResult<Option<SystemTime>> {
            match q.get(k).map(String::as_str) {
                None | Some("") => Ok(None),
                Some(v) => pelagos_model::timestamp::parse(v, now)
                    .map(Some)
                    .map_err(|e| ApiError::bad_request(e.to_string())),
            }
        };
        Ok(LogsRequest {
            read: ReadOptions {
                tail: tail(q.get("tail").map(String::as_str)),
                since: time("since")?,
                until: time("until")?,
                stdout,
                stderr,
            },
            follow: flag("follow"),
            timestamps: flag("timestamps"),
            details: flag("details"),
        })
    }
}

/// moby's `tail`: a count; `all`, a negative or anything unreadable is everything.
fn tail(text: Option<&str>) -> Option<usize> {
    text.and_then(|t| t.trim().parse::<usize>().ok())
}

/// One entry as the client reads it: its time (if asked), the details prefix (if asked),
/// the bytes.
fn frame(entry: &LogEntry, tty: bool, timestamps: bool, details: Option<&[u8]>) -> Bytes {
    let mut payload = Vec::with_capacity(entry.bytes.len() + 32);
    if timestamps {
        payload.extend_from_slice(
            format!("{} ", humantime::format_rfc3339_nanos(entry.time)).as_bytes(),
        );
    }
    if let Some(prefix) = details {
        payload.extend_from_slice(prefix);
    }
    payload.extend_from_slice(&entry.bytes);
    let stream = match entry.stream {
        Stream::Stderr => 2,
        _ => 1,
    };
    multiplexed(stream, payload, tty)
}

/// Docker's stdcopy frame (`[stream, 0, 0, 0, size BE]` + payload), or the payload alone
/// with a tty.
fn multiplexed(stream: u8, payload: Vec<u8>, tty: bool) -> Bytes {
    if tty {
        return Bytes::from(payload);
    }
    let mut out = Vec::with_capacity(payload.len() + 8);
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&payload);
    Bytes::from(out)
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(state): State<AppState>,
    Extension(version): Extension<ApiVersion>,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> ApiResult<Response> {
    let request = LogsRequest::parse(&q)?;
    let name = id.clone();
    let record = state
        .blocking(move |e| pelagos_engine::container::lookup(e, &name))
        .await?;
    let tty = record.config.tty;
    let settings = LogSettings::from_config(&record.host_config.log_config)?;
    if settings.file_name().is_none() {
        // moby's ErrReadLogsNotSupported, a NotImplemented error.
        return Err(ApiError::not_implemented(
            "configured logging driver does not support reading",
        ));
    }
    let details = request.details.then(|| {
        pelagos_engine::container::logs::details_prefix(
            settings.attrs(&record.config.labels, &record.config.env),
        )
    });
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    // The follower's end: dropped with the response body, which wakes a follow waiting on
    // a quiet container.
    let (cancel, client_end) =
        io::pipe().map_err(|e| ApiError::internal(format!("make the follower's pipe: {e}")))?;
    let engine = state.engine.clone();
    std::thread::Builder::new()
        .name("logs".into())
        .spawn(move || {
            let mut emit = |e: &LogEntry| {
                let prefix = details.as_deref().map(str::as_bytes);
                tx.blocking_send(Ok(frame(e, tty, request.timestamps, prefix)))
                    .map_err(|_| gone())
            };
            let read = pelagos_engine::container::logs::logs_cancellable(
                &engine,
                record.id.as_str(),
                &request.read,
                request.follow,
                cancel.as_fd(),
                &mut emit,
            );
            if let Err(e) = read {
                // As moby: the error where the client reads stderr (unless it left).
                let text = format!("Error grabbing logs: {e}\n").into_bytes();
                let _ = tx.blocking_send(Ok(multiplexed(2, text, tty)));
            }
        })
        .map_err(|e| ApiError::internal(format!("start the logs reader: {e}")))?;
    let body = channel_body(rx, client_end);
    // moby names the multiplexed stream so from API 1.42 on.
    let content_type = match !tty && version.at_least(1, 42) {
        true => "application/vnd.docker.multiplexed-stream",
        false => "application/vnd.docker.raw-stream",
    };
    Ok(([(CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_stream_and_size() {
        let entry = LogEntry {
            stream: Stream::Stderr,
            time: SystemTime::UNIX_EPOCH,
            bytes: b"oops\n".to_vec(),
            partial: false,
        };
        assert_eq!(
            &frame(&entry, false, false, None)[..],
            b"\x02\0\0\0\0\0\0\x05oops\n"
        );
        assert_eq!(&frame(&entry, true, false, None)[..], b"oops\n");
        let details = pelagos_engine::container::logs::details_prefix(vec![
            ("b".into(), "x y".into()),
            ("a".into(), "1/2".into()),
        ]);
        assert_eq!(
            &frame(&entry, true, true, Some(details.as_bytes()))[..],
            b"1970-01-01T00:00:00.000000000Z a=1%2F2,b=x+y oops\n"
        );
    }

    #[test]
    fn tail_as_moby_reads_it() {
        assert_eq!(tail(Some("3")), Some(3));
        assert_eq!(tail(Some("all")), None);
        assert_eq!(tail(Some("-1")), None);
        assert_eq!(tail(None), None);
    }

    #[test]
    fn no_stream_is_a_bad_request() {
        let err = LogsRequest::parse(&Params::new()).err().unwrap();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(
            err.message,
            "Bad parameters: you must choose at least one stream"
        );
    }
}
