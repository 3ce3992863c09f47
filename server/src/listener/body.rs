//! Connection plumbing every layer above the sockets uses: a body that holds
//! something (a permit, an in-flight mark) until it is sent or dropped, passing size
//! hints through so `Content-Length` survives; and reading the rest of an unwanted
//! request body in the background so the client can read the answer.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::response::Response;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// `response` with `guard` kept alive until its body is sent or dropped.
pub fn hold_until_sent<G: Send + 'static>(response: Response, guard: G) -> Response {
    response.map(|inner| {
        Body::new(Held {
            inner,
            _guard: guard,
        })
    })
}

struct Held<G> {
    inner: Body,
    _guard: G,
}

impl<G: Send + 'static> HttpBody for Held<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

// `Held` never pins its guard.
impl<G> Unpin for Held<G> {}

/// How long an unwanted request body is read after the answer (a lingering close).
pub const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a drained body may pause between pieces before it is given up.
pub const DRAIN_GAP: std::time::Duration = std::time::Duration::from_secs(5);
/// The least a drained body may bring; more when the body limit is larger.
pub const DRAIN_MIN_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes of an unwanted body read after a 413 for a body limit of `max` bytes.
pub fn drain_cap(max: usize) -> u64 {
    (max as u64).saturating_mul(4).max(DRAIN_MIN_BYTES)
}

/// Read the rest of an unwanted request body in the background and discard it — at
/// most `max_bytes`, for at most `DRAIN_TIME`, waiting at most `DRAIN_GAP` for each
/// piece — then drop it. Answering before a client has sent its whole body and
/// closing at once resets the connection under the client (over TLS most visibly:
/// Python `requests` reports `SSLEOFError` instead of the answer); reading on lets it
/// finish sending and read the answer, over HTTP/1.1 (TLS or not) and HTTP/2. A body
/// drained to its end leaves an HTTP/1.1 connection usable for the next request.
pub fn drain_in_background(body: Body, max_bytes: u64) {
    if body.is_end_stream() {
        return;
    }
    tokio::spawn(drain(body, max_bytes, DRAIN_TIME, DRAIN_GAP));
}

/// Read and discard `body` within the bounds; the number of bytes read.
pub async fn drain(
    mut body: Body,
    max_bytes: u64,
    max_time: std::time::Duration,
    gap: std::time::Duration,
) -> u64 {
    use http_body_util::BodyExt;

    let deadline = tokio::time::Instant::now() + max_time;
    let mut read = 0u64;
    while read <= max_bytes {
        let next = tokio::time::timeout(gap, body.frame());
        match tokio::time::timeout_at(deadline, next).await {
            Ok(Ok(Some(Ok(frame)))) => {
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.len() as u64);
                }
            }
            // The end, an error, a pause or the deadline: stop.
            _ => break,
        }
    }
    read
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Arc;

    #[tokio::test]
    async fn held_bodies_keep_their_length_and_release_the_guard_when_dropped() {
        let guard = Arc::new(());
        let response = hold_until_sent(Response::new(Body::from("hello")), guard.clone());
        assert_eq!(response.body().size_hint().exact(), Some(5));
        assert_eq!(Arc::strong_count(&guard), 2);
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&bytes[..], b"hello");
        assert_eq!(Arc::strong_count(&guard), 1, "released once sent");
    }

    #[tokio::test]
    async fn drains_read_to_the_end_within_their_bounds() {
        let body = || {
            Body::from_stream(futures::stream::iter(
                (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![0u8; 1000]))),
            ))
        };
        let long = std::time::Duration::from_secs(5);
        assert_eq!(drain(body(), 1_000_000, long, long).await, 10_000);
        let cut = drain(body(), 2_500, long, long).await;
        assert!((2_500..=3_000).contains(&cut), "{cut}");
        // A body that stalls is given up after the gap.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let stalled = Body::from_stream(tokio_stream_from(rx));
        let short = std::time::Duration::from_millis(50);
        assert_eq!(drain(stalled, 1_000, long, short).await, 0);
        assert_eq!(drain_cap(10), DRAIN_MIN_BYTES);
        assert_eq!(drain_cap(100 * 1024 * 1024), 400 * 1024 * 1024);
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
