//! One layer for every route: a request body left unread when its complete answer is ready is
//! read to its end (and dropped) before the answer goes, so a client still sending (a build
//! context, a tarball to an unknown container) reads the answer instead of a broken pipe.
//!
//! The body streams through [`Tracked`], never buffered; whoever holds it (a handler, a task
//! feeding a blocking reader) hands what is left back when it lets go. Upgrades (101) and
//! streaming answers are never waited for: their bodies belong to the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};
use tokio::sync::oneshot;

/// What was left of a request's body once its holder let it go.
enum Left {
    /// Nothing: read to its end, or failed (nothing more will come).
    Nothing,
    /// Never polled: the client may still be waiting for `100 Continue`.
    Untouched(Body),
    /// Partly read: the rest is still coming.
    Rest(Body),
}

/// A request body that hands what is left of it back when dropped.
struct Tracked {
    inner: Option<Body>,
    polled: bool,
    ended: bool,
    back: Option<oneshot::Sender<Left>>,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        this.polled = true;
        let frame = Pin::new(inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let left = match self.inner.take() {
            Some(body) if !self.ended && !body.is_end_stream() => match self.polled {
                true => Left::Rest(body),
                false => Left::Untouched(body),
            },
            _ => Left::Nothing,
        };
        if let Some(back) = self.back.take() {
            let _ = back.send(left);
        }
    }
}

/// Whether the client waits for `100 Continue` before it sends the body: then an answer sent
/// without reading it is what the client asked for.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Whether `response` is a complete answer sent once the request is over: an error, or a
/// success of known length. A 101 or a streamed success is not (its body goes on).
fn is_complete_answer(response: &Response) -> bool {
    let status = response.status();
    if status.is_informational() {
        return false;
    }
    status.is_client_error()
        || status.is_server_error()
        || response.body().size_hint().exact().is_some()
}

/// The middleware: tracks the request's body; before a complete answer, reads what its
/// holder left unread.
pub async fn drain_unread(request: Request, next: Next) -> Response {
    let waits_for_continue = expects_continue(request.headers());
    let (back, left) = oneshot::channel();
    let request = request.map(|body| {
        Body::new(Tracked {
            inner: Some(body),
            polled: false,
            ended: false,
            back: Some(back),
        })
    });
    let response = next.run(request).await;
    if !is_complete_answer(&response) {
        return response;
    }
    // The holder lets go when the handler is done or, for a body fed to a blocking reader,
    // once that reader stopped reading.
    match left.await {
        Ok(Left::Rest(body)) => read_to_end(body).await,
        Ok(Left::Untouched(body)) if !waits_for_continue => read_to_end(body).await,
        _ => {}
    }
    response
}

/// Reads and drops `body` until its end (or until the client is gone).
async fn read_to_end(body: Body) {
    let mut data = body.into_data_stream();
    while let Some(Ok(_)) = data.next().await {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    fn tracked(body: Body) -> (Body, oneshot::Receiver<Left>) {
        let (back, left) = oneshot::channel();
        let body = Body::new(Tracked {
            inner: Some(body),
            polled: false,
            ended: false,
            back: Some(back),
        });
        (body, left)
    }

    fn stream_of(chunks: &'static [&'static [u8]]) -> Body {
        let items = chunks
            .iter()
            .map(|c| Ok::<_, std::io::Error>(Bytes::from_static(c)));
        Body::from_stream(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn a_partly_read_body_comes_back_with_its_rest() {
        let (body, left) = tracked(stream_of(&[b"ab", b"cd"]));
        let mut data = body.into_data_stream();
        assert_eq!(data.next().await.unwrap().unwrap(), "ab");
        drop(data);
        let Ok(Left::Rest(rest)) = left.await else {
            panic!("the rest should come back");
        };
        let rest = axum::body::to_bytes(rest, usize::MAX).await.unwrap();
        assert_eq!(rest, "cd");
    }

    #[tokio::test]
    async fn a_body_read_to_its_end_leaves_nothing() {
        let (body, left) = tracked(stream_of(&[b"ab"]));
        axum::body::to_bytes(body, usize::MAX).await.unwrap();
        assert!(matches!(left.await, Ok(Left::Nothing)));
        let (body, left) = tracked(stream_of(&[b"ab"]));
        drop(body);
        assert!(matches!(left.await, Ok(Left::Untouched(_))));
    }

    #[test]
    fn only_complete_answers_wait_for_the_body() {
        let error = (StatusCode::NOT_FOUND, "no").into_response();
        assert!(is_complete_answer(&error));
        assert!(is_complete_answer(&StatusCode::NO_CONTENT.into_response()));
        assert!(!is_complete_answer(
            &StatusCode::SWITCHING_PROTOCOLS.into_response()
        ));
        let streamed = Response::new(stream_of(&[b"x"]));
        assert!(!is_complete_answer(&streamed));
        let mut h = HeaderMap::new();
        assert!(!expects_continue(&h));
        h.insert(header::EXPECT, "100-Continue".parse().unwrap());
        assert!(expects_continue(&h));
    }
}
