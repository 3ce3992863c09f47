//! Body wrappers: one that holds something (a permit, an in-flight mark) until the
//! body is sent or dropped, one that notes when a request body was received in full.
//! Both pass size hints through, so `Content-Length` survives. And a body of chunks
//! already in memory, sent one after another without joining them.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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

/// A request body that notes in `received` when it has been read to the end.
pub struct Watched {
    inner: Body,
    received: Arc<AtomicBool>,
}

impl Watched {
    /// Watch `inner`; `received` is set at once if it is empty.
    pub fn wrap(inner: Body) -> (Body, Arc<AtomicBool>) {
        let received = Arc::new(AtomicBool::new(inner.is_end_stream()));
        let body = Body::new(Watched {
            inner,
            received: received.clone(),
        });
        (body, received)
    }
}

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.received.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body made of `chunks`, sent in order, each released once written; its exact
/// length is known, so it gets a `Content-Length`.
pub fn chunks(chunks: Vec<Bytes>) -> Body {
    let remaining = chunks.iter().map(|c| c.len() as u64).sum();
    Body::new(Chunks {
        chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
        remaining,
    })
}

struct Chunks {
    chunks: VecDeque<Bytes>,
    remaining: u64,
}

impl HttpBody for Chunks {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.chunks.pop_front() {
            Some(chunk) => {
                self.remaining = self.remaining.saturating_sub(chunk.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(chunk))))
            }
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

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
    async fn chunked_bodies_have_an_exact_length_and_arrive_whole() {
        let body = chunks(vec![
            Bytes::from_static(b"{\"a\":"),
            Bytes::new(),
            Bytes::from(String::from("[1,2]")),
            Bytes::from_static(b"}"),
        ]);
        assert_eq!(body.size_hint().exact(), Some(11));
        let bytes = body.collect().await.expect("body").to_bytes();
        assert_eq!(&bytes[..], b"{\"a\":[1,2]}");
        assert!(chunks(Vec::new()).is_end_stream());
    }

    #[tokio::test]
    async fn watched_bodies_report_when_read_to_the_end() {
        let (empty, received) = Watched::wrap(Body::empty());
        assert!(received.load(Ordering::Acquire));
        drop(empty);
        let (body, received) = Watched::wrap(Body::from("abc"));
        assert!(!received.load(Ordering::Acquire));
        body.collect().await.expect("body");
        assert!(received.load(Ordering::Acquire));
    }
}
