//! Content codings of TAXII responses (RFC 9110 §8.4, §12.5.3): which coding a
//! request's `Accept-Encoding` asks for ([`Accepted`]), and the response sent in it
//! ([`encode`]), with `Vary: Accept-Encoding`, `Content-Encoding` and the
//! `Content-Length` of the coded body.
//!
//! - Codings: `zstd` (level [`ZSTD_LEVEL`]) and `gzip` (level [`GZIP_LEVEL`]), the
//!   client's highest weight winning and `zstd` winning a tie with `gzip`; fast
//!   levels, as a page is compressed on every request until pages are cached.
//! - Bodies under [`MIN_BYTES`] are sent as they are (still with `Vary`), unless the
//!   request refuses `identity`; so is a body that coding would not make smaller.
//! - Bodies are in memory: the whole buffer is compressed at once, on a blocking
//!   thread above [`INLINE_MAX_BYTES`] so a large page does not hold an async thread.
//! - No `Accept-Encoding`, or one naming nothing served here (`br`): identity. A
//!   request that refuses identity (`identity;q=0`, `*;q=0`) and accepts no coding
//!   served here is answered 406 ([`not_acceptable`]) before its handler runs.
//! - A response that carries an [`EncodedBody`] (a cached page, compressed once) is
//!   sent in the coding it already holds, without compressing it again.

use axum::body::{Body, HttpBody};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;

use axum::response::IntoResponse;

use std::sync::Arc;

pub use crate::coding::{compress, CodedTail, Coding, GZIP_LEVEL, ZSTD_LEVEL};

use super::error::TaxiiError;
use crate::config::TaxiiVersion;
use crate::metrics::Metrics;

/// Bodies shorter than this are sent without coding: they fit one TCP segment
/// either way, and coding them costs CPU and a header to save at most a few hundred
/// bytes. TAXII error bodies and small listings stay readable on the wire.
pub const MIN_BYTES: u64 = 1024;

/// Bodies longer than this are compressed on a blocking thread (`spawn_blocking`);
/// shorter ones inline. 16 KiB of STIX JSON takes about 40–50 µs of CPU at the levels
/// below: about what an async task may run between two awaits, and a few times what
/// handing the work to another thread costs.
pub const INLINE_MAX_BYTES: u64 = 16 * 1024;

/// What a request's `Accept-Encoding` accepts, as far as this server is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The coding to send a body in: the acceptable coding served here with the
    /// highest weight (`zstd` on a tie), unless the client weighs `identity` higher.
    pub coding: Option<Coding>,
    /// Whether a body may be sent without coding.
    pub identity: bool,
}

impl Accepted {
    /// Identity only: no `Accept-Encoding`, or compression turned off.
    pub const IDENTITY: Accepted = Accepted {
        coding: None,
        identity: true,
    };

    /// What the `Accept-Encoding` fields of `headers` accept (several fields are read
    /// as one list).
    pub fn of(headers: &HeaderMap) -> Accepted {
        let mut fields = headers.get_all(header::ACCEPT_ENCODING).iter().peekable();
        if fields.peek().is_none() {
            return Accepted::IDENTITY;
        }
        let joined: Vec<&str> = fields.map(|v| v.to_str().unwrap_or("")).collect();
        Accepted::parse(&joined.join(","))
    }

    /// What one `Accept-Encoding` value accepts. An empty value accepts identity only;
    /// `*` stands for every coding (identity included) the value does not name; an
    /// entry whose weight is not a number from 0 to 1 is ignored; a coding named twice
    /// keeps its first weight. `x-gzip` is `gzip`.
    pub fn parse(value: &str) -> Accepted {
        let mut weights = Weights::default();
        for item in value.split(',') {
            let mut pieces = item.split(';');
            let token = pieces.next().unwrap_or_default().trim();
            if token.is_empty() {
                continue;
            }
            let Some(q) = weight(pieces) else {
                continue;
            };
            let slot = match token.to_ascii_lowercase().as_str() {
                "zstd" => &mut weights.zstd,
                "gzip" | "x-gzip" => &mut weights.gzip,
                "identity" => &mut weights.identity,
                "*" => &mut weights.star,
                _ => continue,
            };
            slot.get_or_insert(q);
        }
        weights.accepted()
    }

    /// Nothing acceptable can be sent: identity is refused and no coding served here
    /// is accepted (a 406).
    pub fn refused(&self) -> bool {
        self.coding.is_none() && !self.identity
    }
}

/// The weights an `Accept-Encoding` gives the names this server cares about.
#[derive(Debug, Default)]
struct Weights {
    zstd: Option<f32>,
    gzip: Option<f32>,
    identity: Option<f32>,
    star: Option<f32>,
}

impl Weights {
    fn accepted(&self) -> Accepted {
        let of = |explicit: Option<f32>| explicit.or(self.star).unwrap_or(0.0);
        let (zstd, gzip) = (of(self.zstd), of(self.gzip));
        let best = if zstd >= gzip {
            (Coding::Zstd, zstd)
        } else {
            (Coding::Gzip, gzip)
        };
        // Identity is acceptable unless refused by name or by `*;q=0` (§12.5.3); it is
        // preferred to a coding only when the client weighs it (or `*`) higher.
        let identity_weight = self.identity.or(self.star);
        let identity = identity_weight.is_none_or(|q| q > 0.0);
        let coding =
            (best.1 > 0.0 && identity_weight.is_none_or(|q| best.1 >= q)).then_some(best.0);
        Accepted { coding, identity }
    }
}

/// The `q` of an entry's parameters: 1 when absent, `None` when not a number from 0
/// to 1.
fn weight<'a>(params: impl Iterator<Item = &'a str>) -> Option<f32> {
    let mut q = 1.0;
    for param in params {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = value
                .trim()
                .parse::<f32>()
                .ok()
                .filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some(q)
}

/// How a request's response is to be coded: worked out from the request before its
/// handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiation {
    /// `[server] compression`: when off, responses are sent as they are, without `Vary`.
    pub enabled: bool,
    /// What `Accept-Encoding` accepts ([`Accepted::IDENTITY`] when compression is off).
    pub accepted: Accepted,
    /// A HEAD request: its answer has no body to code.
    pub head: bool,
}

impl Negotiation {
    /// The negotiation of a request with this method and these headers.
    pub fn of(enabled: bool, method: &Method, headers: &HeaderMap) -> Negotiation {
        Negotiation {
            enabled,
            accepted: if enabled {
                Accepted::of(headers)
            } else {
                Accepted::IDENTITY
            },
            head: method == Method::HEAD,
        }
    }
}

/// 406 for a request whose `Accept-Encoding` refuses identity and accepts no coding
/// served here.
pub(crate) fn not_acceptable() -> TaxiiError {
    TaxiiError::new(StatusCode::NOT_ACCEPTABLE, "Not acceptable").describe(
        "Accept-Encoding refuses identity and accepts no coding served here: accept zstd, gzip or identity",
    )
}

/// A response body as sent without coding, with the codings made of it so far: what
/// a cache of page bodies keeps, so that a page is compressed once and then served in
/// either coding at the cost of an uncompressed one. A response built by
/// [`EncodedBody::respond`] is sent by [`encode`] in a coding the body holds without
/// compressing it again (and compressed as any other response in one it lacks).
#[derive(Debug, Clone, Default)]
pub struct EncodedBody {
    identity: Vec<Bytes>,
    identity_len: u64,
    coded: [Option<Bytes>; 2],
    /// A cached page this body is the head of plus the page's tail: coded by putting
    /// the head in front of the page's coded tail.
    page: Option<(Bytes, Arc<dyn CodedTail>)>,
}

impl EncodedBody {
    /// A body of `identity`'s chunks, in no coding yet.
    pub fn new(identity: Vec<Bytes>) -> EncodedBody {
        let identity_len = identity.iter().map(|c| c.len() as u64).sum();
        EncodedBody {
            identity,
            identity_len,
            coded: [None, None],
            page: None,
        }
    }

    /// The body of a cached `page` under a per-request `head`: `head` and the page's
    /// tail, coded by splicing `head` in front of the page's tail coded once.
    pub fn of_page(head: Bytes, page: Arc<dyn CodedTail>) -> EncodedBody {
        let mut body = EncodedBody::new(vec![head.clone(), page.tail()]);
        body.page = Some((head, page));
        body
    }

    /// The body without coding.
    pub fn identity(&self) -> &[Bytes] {
        &self.identity
    }

    /// The length of the body without coding.
    pub fn identity_len(&self) -> u64 {
        self.identity_len
    }

    /// The body in `coding`, if made already.
    pub fn coded(&self, coding: Coding) -> Option<&Bytes> {
        self.coded[coding.index()].as_ref()
    }

    /// This body, holding `coded` as its form in `coding` (made earlier, e.g. read
    /// back from a cache).
    pub fn with(mut self, coding: Coding, coded: Bytes) -> EncodedBody {
        self.coded[coding.index()] = Some(coded);
        self
    }

    /// The body in `coding`, compressed now if not made yet. This compresses on the
    /// calling thread: call it off the async threads for large bodies.
    pub fn encode(&mut self, coding: Coding) -> std::io::Result<&Bytes> {
        let slot = &mut self.coded[coding.index()];
        if slot.is_none() {
            *slot = Some(Bytes::from(compress(coding, &self.identity)?));
        }
        Ok(slot.get_or_insert_with(Bytes::new))
    }

    /// A response with this body (uncoded) in `media_type`, carrying the codings
    /// already made for [`encode`] to send.
    pub fn respond(self, status: StatusCode, media_type: &'static str) -> Response {
        let mut response = super::response::chunked(status, media_type, self.identity.clone());
        response.extensions_mut().insert(self);
        response
    }
}

/// Why a response could not be coded.
#[derive(Debug, thiserror::Error)]
enum EncodeError {
    /// Its body could not be read (bodies are in memory: never seen).
    #[error("cannot read the response body: {0}")]
    Body(#[from] axum::Error),
    /// The blocking task compressing it failed.
    #[error("the compressing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// `response` as the request negotiated: `Vary: Accept-Encoding` when compression is
/// on; the body compressed in the accepted coding when it is JSON of at least
/// [`MIN_BYTES`] (any length when identity is refused) and coding makes it smaller
/// (or identity is refused), with `Content-Encoding` and the coded `Content-Length`.
/// Counted in `metrics` by the coding sent.
pub async fn encode(
    mut response: Response,
    negotiation: Negotiation,
    metrics: &Metrics,
) -> Response {
    if negotiation.enabled {
        vary(response.headers_mut());
    }
    let identity_len = response.body().size_hint().exact();
    let coding = negotiation.accepted.coding.zip(identity_len);
    let Some((coding, identity_len)) =
        coding.filter(|(_, len)| codable(&response, negotiation, *len))
    else {
        let sent = if negotiation.head {
            0
        } else {
            super::access_log::response_bytes(&response).unwrap_or(0)
        };
        metrics.response_encoding("identity", sent, sent);
        return response;
    };
    let (mut parts, body) = response.into_parts();
    let (identity, coded) = match coded(coding, &mut parts, body, identity_len).await {
        Ok(made) => made,
        Err(failure) => {
            tracing::error!(error = %failure, coding = coding.token(), "cannot code a response");
            let mut error =
                TaxiiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
                    .in_version(version_of(&parts.headers))
                    .into_response();
            vary(error.headers_mut());
            return error;
        }
    };
    let coded = coded
        .inspect_err(|failure| {
            let coding = coding.token();
            tracing::error!(error = %failure, coding, "cannot compress; sending uncompressed");
        })
        .ok()
        .filter(|coded| (coded.len() as u64) < identity_len || !negotiation.accepted.identity);
    let (body, token, sent) = match coded {
        Some(coded) => {
            let token = coding.token();
            parts
                .headers
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static(token));
            let sent = coded.len() as u64;
            (Body::from(coded), token, sent)
        }
        None => (super::frames::chunks(identity), "identity", identity_len),
    };
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(sent));
    metrics.response_encoding(token, identity_len, sent);
    Response::from_parts(parts, body)
}

/// The body's identity chunks and the body in `coding`: the one an [`EncodedBody`]
/// in the response's extensions holds, else compressed now (off the async threads
/// above [`INLINE_MAX_BYTES`]).
async fn coded(
    coding: Coding,
    parts: &mut axum::http::response::Parts,
    body: Body,
    identity_len: u64,
) -> Result<(Vec<Bytes>, std::io::Result<Bytes>), EncodeError> {
    let chunks = match parts.extensions.remove::<EncodedBody>() {
        Some(held) => {
            if let Some(coded) = held.coded(coding).cloned() {
                return Ok((held.identity, Ok(coded)));
            }
            if let Some((head, page)) = held.page {
                let ready = page.has(coding);
                let splice = move || page.coded(coding, &head).map(Bytes::from);
                // The page's tail is coded once, on a blocking thread; then each
                // response only copies it behind its head.
                let spliced = if ready {
                    splice()
                } else {
                    tokio::task::spawn_blocking(splice).await?
                };
                if let Some(coded) = spliced {
                    return Ok((held.identity, Ok(coded)));
                }
            }
            held.identity
        }
        None => chunks_of(body).await?,
    };
    let run = move || {
        let coded = compress(coding, &chunks).map(Bytes::from);
        (chunks, coded)
    };
    if identity_len > INLINE_MAX_BYTES {
        Ok(tokio::task::spawn_blocking(run).await?)
    } else {
        Ok(run())
    }
}

/// The data frames of an in-memory body.
async fn chunks_of(mut body: Body) -> Result<Vec<Bytes>, axum::Error> {
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            chunks.push(data);
        }
    }
    Ok(chunks)
}

/// Whether a response of `len` bytes is to be coded: a non-empty JSON body not coded
/// yet, of at least [`MIN_BYTES`] unless identity is refused; never the answer to a
/// HEAD (its body is gone: RFC 9110 §9.3.2 lets it omit what only the content
/// determines).
fn codable(response: &Response, negotiation: Negotiation, len: u64) -> bool {
    let status = response.status();
    let headers = response.headers();
    !negotiation.head
        && len > 0
        && (len >= MIN_BYTES || !negotiation.accepted.identity)
        && !status.is_informational()
        && !matches!(status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED)
        && !headers.contains_key(header::CONTENT_ENCODING)
        && is_json(headers)
}

/// Whether the response's media type is JSON (`application/json`, `…+json`).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().to_ascii_lowercase().ends_with("json"))
}

/// The TAXII version of a response, from its media type.
fn version_of(headers: &HeaderMap) -> TaxiiVersion {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    match media_type {
        Some(m) if m.to_ascii_lowercase().contains("vnd.oasis") => TaxiiVersion::V20,
        _ => TaxiiVersion::V21,
    }
}

/// Add `Accept-Encoding` to `Vary` unless it is there (or `Vary` is `*`).
fn vary(headers: &mut HeaderMap) {
    let listed = headers.get_all(header::VARY).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .any(|name| name == "*" || name.eq_ignore_ascii_case("accept-encoding"))
        })
    });
    if !listed {
        headers.append(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use Coding::{Gzip, Zstd};

    fn accepts(coding: Option<Coding>, identity: bool) -> Accepted {
        Accepted { coding, identity }
    }

    #[test]
    fn accept_encoding_per_rfc_9110() {
        let cases: &[(&str, Accepted)] = &[
            // What real clients send: requests, curl --compressed, browsers.
            ("gzip, deflate", accepts(Some(Gzip), true)),
            ("gzip, deflate, zstd", accepts(Some(Zstd), true)),
            ("deflate, gzip, br, zstd", accepts(Some(Zstd), true)),
            ("gzip, deflate, br", accepts(Some(Gzip), true)),
            // Weights: the highest wins, zstd on a tie.
            ("zstd;q=0.5, gzip", accepts(Some(Gzip), true)),
            ("gzip;q=0.5, zstd;q=0.5", accepts(Some(Zstd), true)),
            ("zstd;q=0.001, gzip;q=0", accepts(Some(Zstd), true)),
            ("GZIP;Q=1.0", accepts(Some(Gzip), true)),
            ("x-gzip", accepts(Some(Gzip), true)),
            (" , gzip ,,", accepts(Some(Gzip), true)),
            // Identity.
            ("", accepts(None, true)),
            ("identity", accepts(None, true)),
            ("br", accepts(None, true)),
            ("gzip;q=0", accepts(None, true)),
            ("gzip;q=0.5, identity", accepts(None, true)),
            ("gzip, identity;q=0.5", accepts(Some(Gzip), true)),
            // `*` stands for what is not named, identity included.
            ("*", accepts(Some(Zstd), true)),
            ("br;q=1, *;q=0.1", accepts(Some(Zstd), true)),
            ("*;q=0", accepts(None, false)),
            ("*;q=0, gzip", accepts(Some(Gzip), false)),
            ("*;q=0, identity", accepts(None, true)),
            ("identity;q=0", accepts(None, false)),
            ("identity;q=0, gzip", accepts(Some(Gzip), false)),
            ("identity;q=0, br", accepts(None, false)),
            // Weights that are not numbers from 0 to 1 drop their entry.
            ("gzip;q=2", accepts(None, true)),
            ("gzip;q=nan", accepts(None, true)),
            ("identity;q=-1", accepts(None, true)),
            // A coding named twice keeps its first weight.
            ("gzip;q=0, gzip", accepts(None, true)),
        ];
        for (value, expected) in cases {
            assert_eq!(Accepted::parse(value), *expected, "{value:?}");
        }
        assert!(Accepted::parse("*;q=0").refused());
        assert!(!Accepted::parse("identity;q=0, gzip").refused());
    }

    #[test]
    fn several_fields_are_one_list_and_none_is_identity() {
        let mut headers = HeaderMap::new();
        assert_eq!(Accepted::of(&headers), Accepted::IDENTITY);
        headers.append(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip;q=0.5"),
        );
        headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static("zstd"));
        assert_eq!(Accepted::of(&headers), accepts(Some(Zstd), true));
        let off = Negotiation::of(false, &Method::GET, &headers);
        assert_eq!(off.accepted, Accepted::IDENTITY);
        assert!(Negotiation::of(true, &Method::HEAD, &headers).head);
    }

    fn page() -> Vec<Bytes> {
        (0..200)
            .map(|i| {
                let id = format!("indicator--{i:08x}");
                let pattern = format!("[ipv4-addr:value = '10.0.{i}.1']");
                let object = serde_json::json!({"type": "indicator", "id": id, "pattern": pattern});
                Bytes::from(format!("{object},"))
            })
            .collect()
    }

    fn decode(coding: Coding, coded: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Gzip => flate2::read::GzDecoder::new(coded)
                .read_to_end(&mut out)
                .map(drop),
            Zstd => zstd::stream::read::Decoder::new(coded)
                .and_then(|mut d| d.read_to_end(&mut out))
                .map(drop),
        }
        .expect("decodes");
        out
    }

    #[test]
    fn both_codings_round_trip_and_shrink_stix() {
        let chunks = page();
        let identity: Vec<u8> = chunks.iter().flat_map(|c| c.to_vec()).collect();
        for coding in Coding::ALL {
            let coded = compress(coding, &chunks).expect("compresses");
            assert!(
                coded.len() * 4 < identity.len(),
                "{coding:?}: {}",
                coded.len()
            );
            assert_eq!(decode(coding, &coded), identity, "{coding:?}");
        }
        assert_eq!(decode(Gzip, &compress(Gzip, &[]).expect("empty")), b"");
    }

    #[test]
    fn an_encoded_body_compresses_once_per_coding() {
        let mut body = EncodedBody::new(page());
        assert_eq!(body.coded(Gzip), None);
        let first = body.encode(Gzip).expect("gzip").clone();
        assert_eq!(body.coded(Gzip), Some(&first));
        assert_eq!(body.encode(Gzip).expect("gzip").as_ptr(), first.as_ptr());
        assert_eq!(body.coded(Zstd), None);
        let total: u64 = page().iter().map(|c| c.len() as u64).sum();
        assert_eq!(body.identity_len(), total);
    }

    fn negotiated(coding: Coding) -> Negotiation {
        Negotiation {
            enabled: true,
            accepted: accepts(Some(coding), true),
            head: false,
        }
    }

    async fn sent(response: Response) -> (HeaderMap, Vec<u8>) {
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes();
        (parts.headers, body.to_vec())
    }

    #[tokio::test]
    async fn a_held_coding_is_sent_as_held_and_a_missing_one_made() {
        let metrics = Metrics::new();
        let held = Bytes::from_static(b"gzip bytes made earlier");
        let body = EncodedBody::new(page()).with(Gzip, held.clone());
        let identity: Vec<u8> = page().iter().flat_map(|c| c.to_vec()).collect();
        let media_type = super::super::media::TAXII_21;

        let response = body.clone().respond(StatusCode::OK, media_type);
        let (headers, sent_body) = sent(encode(response, negotiated(Gzip), &metrics).await).await;
        assert_eq!(sent_body, held, "not compressed again");
        assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
        assert_eq!(headers[header::CONTENT_LENGTH], held.len().to_string());

        let response = body.respond(StatusCode::OK, media_type);
        let (headers, sent_body) = sent(encode(response, negotiated(Zstd), &metrics).await).await;
        assert_eq!(headers[header::CONTENT_ENCODING], "zstd");
        assert_eq!(decode(Zstd, &sent_body), identity);
    }

    #[tokio::test]
    async fn a_coding_that_does_not_shrink_the_body_is_not_sent() {
        // 2 KiB of random bytes (the media type is all the layer looks at): coding
        // makes them larger.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..2048)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        let json = Bytes::from(noise);
        let response = EncodedBody::new(vec![json.clone()])
            .respond(StatusCode::OK, super::super::media::TAXII_21);
        let (headers, body) = sent(encode(response, negotiated(Gzip), &Metrics::new()).await).await;
        assert_eq!(headers.get(header::CONTENT_ENCODING), None);
        assert_eq!(body, json);
        assert_eq!(headers[header::CONTENT_LENGTH], json.len().to_string());
        assert_eq!(headers[header::VARY], "Accept-Encoding");
    }

    #[test]
    fn vary_names_accept_encoding_once() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::VARY,
            HeaderValue::from_static("Accept, accept-encoding"),
        );
        vary(&mut headers);
        assert_eq!(headers.get_all(header::VARY).iter().count(), 1);
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static("Accept"));
        vary(&mut headers);
        let values: Vec<_> = headers.get_all(header::VARY).iter().collect();
        assert_eq!(values, ["Accept", "Accept-Encoding"]);
    }

    #[test]
    fn json_media_types_are_coded() {
        for (media_type, json) in [
            ("application/taxii+json;version=2.1", true),
            ("application/vnd.oasis.stix+json; version=2.0", true),
            ("application/json", true),
            ("text/plain", false),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
            assert_eq!(is_json(&headers), json, "{media_type}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
