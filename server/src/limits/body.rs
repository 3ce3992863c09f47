//! A request body that notes when it was received in full (passing size hints
//! through, so `Content-Length` survives): how the request timeout tells a slow
//! client (408) from a slow answer (503). Holding a guard until a body is sent and
//! draining refused bodies are connection plumbing: [`crate::listener::body`].

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

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

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

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
