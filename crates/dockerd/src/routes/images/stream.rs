//! Bodies bridged to blocking code: a JSON-lines progress stream fed from a channel, a tar
//! written by a blocking writer, a request body read by a blocking reader. Bounded channels
//! keep a slow client or a slow disk from piling data up in memory.

use std::convert::Infallible;
use std::io::{Read, Write};

use axum::body::{Body, Bytes};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// One item of a progress stream: a JSON message, or the error that ends it.
pub enum Progress {
    /// A message as Docker's `jsonmessage`.
    Line(Value),
    /// The operation failed.
    Failed(ApiError),
}

/// A Docker status message, with a layer id when there is one.
pub fn status(text: &str, id: Option<&str>) -> Value {
    match id {
        Some(id) => json!({"status": text, "progressDetail": {}, "id": id}),
        None => json!({ "status": text }),
    }
}

/// Answers a progress stream as moby does: an error before the first message is an HTTP
/// error with its status; after it, a `{"errorDetail"}` message in the 200 stream.
pub async fn respond(mut rx: mpsc::UnboundedReceiver<Progress>) -> Response {
    let first = match rx.recv().await {
        Some(Progress::Line(v)) => v,
        Some(Progress::Failed(e)) => return e.into_response(),
        None => return ApiError::internal("the operation ended without a result").into_response(),
    };
    let head = futures_util::stream::once(async move { Progress::Line(first) });
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let lines = head.chain(rest).map(|item| {
        let value = match item {
            Progress::Line(v) => v,
            Progress::Failed(e) => {
                json!({"errorDetail": {"message": e.message}, "error": e.message})
            }
        };
        Ok::<_, Infallible>(Bytes::from(format!("{value}\n")))
    });
    (
        [(CONTENT_TYPE, "application/json")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// A blocking writer whose bytes become a response body; a vanished client is a broken pipe.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl ChannelWriter {
    /// A writer and the body it feeds.
    pub fn new() -> (ChannelWriter, Body) {
        let (tx, rx) = mpsc::channel(16);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        (ChannelWriter { tx }, Body::from_stream(stream))
    }

    /// Ends the body with an error: the client sees a cut stream, not a complete tar.
    pub fn fail(self, e: std::io::Error) {
        let _ = self.tx.blocking_send(Err(e));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A request body read from a blocking thread, chunk by chunk as it arrives.
pub struct BodyReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

impl BodyReader {
    /// Starts forwarding `body` (on the async side) to the returned reader. Once the reader
    /// is gone (it failed or had enough) the body is let go at once: [`crate::drain`] reads
    /// its rest before the answer, so that the client, still sending, reads the answer
    /// rather than a broken pipe.
    pub fn new(body: Body) -> BodyReader {
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut data = body.into_data_stream();
            loop {
                let chunk = tokio::select! {
                    chunk = data.next() => chunk,
                    () = tx.closed() => return,
                };
                let Some(chunk) = chunk else { return };
                let chunk = chunk.map_err(std::io::Error::other);
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        BodyReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}
