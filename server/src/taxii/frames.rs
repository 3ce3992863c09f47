//! A response body of chunks already in memory (a page of stored objects and the
//! envelope around them): runs of small chunks sent joined into frames of up to 1 MiB,
//! large chunks as they are.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};

/// Small chunks are sent joined into frames of up to this many bytes: a page of a
/// thousand objects as a thousand frames costs the HTTP layer a write per few objects
/// (measured: twice the CPU per page), and even 64 KiB frames cost 1.5 times one
/// buffer; a typical page (under 1 MiB) goes out as one frame, as before pages were
/// sent as stored buffers, while a large page is still copied at most 1 MiB at a time.
const FRAME_BYTES: usize = 1024 * 1024;

/// A chunk this large is a frame of its own, as it is: a page read as one buffer (see
/// `Store::list_objects`) is sent without a copy behind its small head (the HTTP
/// layer writes both with one vectored write).
const SMALL_CHUNK: usize = 64 * 1024;

/// A body made of `chunks`, sent in order (small ones joined into frames of up to
/// 1 MiB), each released once written; its exact length is known, so it gets a
/// `Content-Length`.
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
        let Some(first) = self.chunks.pop_front() else {
            return Poll::Ready(None);
        };
        // A run of small chunks is joined into one frame (sized to fit it); a large
        // chunk goes out as it is, never copied.
        let small = |c: &Bytes| c.len() < SMALL_CHUNK;
        let run = match small(&first) {
            false => 0,
            true => {
                let mut len = first.len();
                self.chunks
                    .iter()
                    .take_while(|c| {
                        len = len.saturating_add(c.len());
                        small(c) && len <= FRAME_BYTES
                    })
                    .count()
            }
        };
        let frame = if run == 0 {
            first
        } else {
            let len = first.len() + self.chunks.iter().take(run).map(Bytes::len).sum::<usize>();
            let mut frame = bytes::BytesMut::with_capacity(len);
            frame.extend_from_slice(&first);
            for next in self.chunks.drain(..run) {
                frame.extend_from_slice(&next);
            }
            frame.freeze()
        };
        self.remaining = self.remaining.saturating_sub(frame.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(frame))))
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
    async fn small_chunks_are_sent_joined_and_large_ones_as_they_are() {
        let small: Vec<Bytes> = (0..3000)
            .map(|i| Bytes::from(format!("{i:0>700}")))
            .collect();
        let expected: Vec<u8> = small.iter().flat_map(|b| b.to_vec()).collect();
        let mut body = chunks(small);
        let mut frames = 0;
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let data = frame.expect("frame").into_data().expect("data");
            assert!(data.len() <= FRAME_BYTES);
            got.extend_from_slice(&data);
            frames += 1;
        }
        assert_eq!(got, expected);
        assert_eq!(frames, 3, "2.1 MB in frames of up to 1 MiB");
        let big = Bytes::from(vec![b'x'; FRAME_BYTES * 2]);
        let mut body = chunks(vec![
            Bytes::from_static(b"["),
            big.clone(),
            Bytes::from_static(b"]"),
        ]);
        let mut sizes = Vec::new();
        while let Some(frame) = body.frame().await {
            sizes.push(frame.expect("frame").into_data().expect("data").len());
        }
        assert_eq!(
            sizes,
            vec![1, FRAME_BYTES * 2, 1],
            "a large chunk is not copied"
        );
        // A page read as one buffer, behind its head: the buffer is sent as it is.
        let page = Bytes::from(vec![b'o'; 600 * 1024]);
        let mut body = chunks(vec![Bytes::from_static(b"{\"objects\":["), page.clone()]);
        let head = body.frame().await.expect("head").expect("frame");
        assert_eq!(head.into_data().expect("data").len(), 12);
        let sent = body.frame().await.expect("page").expect("frame");
        let sent = sent.into_data().expect("data");
        assert_eq!(sent.as_ptr(), page.as_ptr(), "the page's own buffer");
        assert!(body.frame().await.is_none());
    }
}
