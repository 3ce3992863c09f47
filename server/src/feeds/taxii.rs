//! Pulling a TAXII collection: the version negotiated (2.1, else 2.0), the API root
//! found from a discovery or API root URL, the collection by id or title, then pages
//! of objects added after the checkpoint. TAXII 2.1 follows `more`/`next` and takes
//! its checkpoint from `X-TAXII-Date-Added-Last`; TAXII 2.0 pages with
//! `Range: items a-b` (answered with `Content-Range`) and takes it from the same
//! header. A pull stopped midway resumes from the last checkpoint that splits no
//! instant: objects added at one instant may span two pages, so a page's
//! `X-TAXII-Date-Added-Last` is saved only once the next page starts strictly later
//! (`X-TAXII-Date-Added-First`) or the pull has seen its last page ([`Resume`]).
//! Nothing is skipped; at most the objects since that checkpoint are fetched again
//! (the store keeps one copy).

use http::header::{HeaderName, RANGE};
use reqwest::Url;
use serde_json::Value;

use crate::feeds::checkpoint::Checkpoint;
use crate::feeds::client::Fetched;
use crate::feeds::error::FeedError;
use crate::feeds::pull::Pull;
use crate::feeds::sink::PullReport;
use crate::taxii::envelope::parse_envelope_within;
use crate::taxii::v20::bundle;

const ACCEPT_21: &str = "application/taxii+json;version=2.1";
const ACCEPT_20: &str = "application/vnd.oasis.taxii+json; version=2.0";
const ACCEPT_STIX_20: &str = "application/vnd.oasis.stix+json; version=2.0";
const DATE_ADDED_FIRST: &str = "x-taxii-date-added-first";
const DATE_ADDED_LAST: &str = "x-taxii-date-added-last";

/// The TAXII version an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V21,
    V20,
}

/// An answer that must be a success, as JSON.
fn json(f: &Fetched) -> Result<Value, FeedError> {
    match f.status {
        200..=299 => serde_json::from_slice(&f.body)
            .map_err(|e| FeedError::Protocol(format!("not JSON: {e}"))),
        401 | 403 => Err(FeedError::Unauthorized(f.status)),
        s => Err(FeedError::Status(s)),
    }
}

fn parse_url(url: &str) -> Result<Url, FeedError> {
    Url::parse(url).map_err(|e| FeedError::Protocol(format!("not a URL: {e}")))
}

/// `url` with a trailing `/`, joined with `path`.
fn join(base: &Url, path: &str) -> Result<Url, FeedError> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        base.set_path(&format!("{}/", base.path()));
    }
    base.join(path)
        .map_err(|e| FeedError::Protocol(format!("cannot resolve {path:?}: {e}")))
}

/// Ask `url` in TAXII 2.1, else 2.0 (when 2.1 is not served there).
async fn negotiate(pull: &Pull<'_>, url: &Url) -> Result<(Version, Value), FeedError> {
    let first = pull.upstream.get(url.as_str(), ACCEPT_21, &[]).await?;
    let speaks_20 = first
        .header("content-type")
        .is_some_and(|t| t.contains("vnd.oasis.taxii"));
    if speaks_20 || matches!(first.status, 404 | 406 | 415) {
        let second = pull.upstream.get(url.as_str(), ACCEPT_20, &[]).await?;
        if (200..300).contains(&second.status) {
            return Ok((Version::V20, json(&second)?));
        }
        if speaks_20 {
            return Err(json(&second)
                .err()
                .unwrap_or(FeedError::Status(second.status)));
        }
    }
    Ok((Version::V21, json(&first)?))
}

/// The API root of a discovery (its `default`, else its first) or the URL itself.
fn api_root(url: &Url, answer: &Value) -> Result<Url, FeedError> {
    let Some(roots) = answer.get("api_roots") else {
        return join(url, "");
    };
    let chosen = answer
        .get("default")
        .and_then(Value::as_str)
        .or_else(|| roots.get(0).and_then(Value::as_str))
        .ok_or_else(|| FeedError::Protocol("the discovery lists no API root".into()))?;
    join(
        &url.join(chosen)
            .map_err(|e| FeedError::Protocol(e.to_string()))?,
        "",
    )
}

/// The objects URL of the collection `wanted` (id or title) in `root`.
async fn objects_url(
    pull: &Pull<'_>,
    root: &Url,
    version: Version,
    wanted: &str,
) -> Result<Url, FeedError> {
    let accept = match version {
        Version::V21 => ACCEPT_21,
        Version::V20 => ACCEPT_20,
    };
    let url = join(root, "collections/")?;
    let answer = json(&pull.upstream.get(url.as_str(), accept, &[]).await?)?;
    let collections = answer
        .get("collections")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let readable = |c: &&Value| c.get("can_read").and_then(Value::as_bool) != Some(false);
    let found = collections
        .iter()
        .filter(readable)
        .find(|c| c.get("id").and_then(Value::as_str) == Some(wanted))
        .or_else(|| {
            collections
                .iter()
                .filter(readable)
                .find(|c| c.get("title").and_then(Value::as_str) == Some(wanted))
        })
        .and_then(|c| c.get("id").and_then(Value::as_str))
        .ok_or_else(|| FeedError::NoCollection(wanted.to_string()))?;
    join(root, &format!("collections/{found}/objects/"))
}

/// Pull the feed's collection from where `added_after` says.
pub async fn pull(
    pull: &Pull<'_>,
    added_after: Option<String>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let collection = pull.feed.collection.as_deref().unwrap_or_default();
    let url = parse_url(&pull.feed.url)?;
    let (version, answer) = negotiate(pull, &url).await?;
    let root = api_root(&url, &answer)?;
    let objects = objects_url(pull, &root, version, collection).await?;
    match version {
        Version::V21 => pull_21(pull, objects, added_after, report).await,
        Version::V20 => pull_20(pull, objects, added_after, report).await,
    }
}

/// Where a pull may resume, saved as its pages arrive (see the module docs).
#[derive(Debug, Default)]
struct Resume {
    /// The last page's `X-TAXII-Date-Added-Last`, not known yet to split no instant.
    pending: Option<String>,
}

impl Resume {
    /// A page was stored: save the previous page's last instant if this page starts
    /// strictly after it; keep this page's as pending. Returns this page's last.
    async fn page_stored(
        &mut self,
        pull: &Pull<'_>,
        page: &Fetched,
    ) -> Result<Option<String>, FeedError> {
        let first = page.header(DATE_ADDED_FIRST);
        if let (Some(pending), Some(first)) = (&self.pending, first) {
            if strictly_after(first, pending) {
                save(pull, pending).await?;
            }
        }
        let last = page.header(DATE_ADDED_LAST).map(str::to_string);
        if last.is_some() {
            self.pending = last.clone();
        }
        Ok(last)
    }

    /// The pull has seen its last page: everything up to the last instant is stored.
    async fn finished(self, pull: &Pull<'_>) -> Result<(), FeedError> {
        match &self.pending {
            Some(last) => save(pull, last).await,
            None => Ok(()),
        }
    }
}

/// Whether timestamp `a` is strictly later than `b` (unreadable: not known to be).
fn strictly_after(a: &str, b: &str) -> bool {
    use crate::stix::timestamp::parse_timestamp;
    matches!((parse_timestamp(a), parse_timestamp(b)), (Ok(a), Ok(b)) if a > b)
}

async fn save(pull: &Pull<'_>, added_after: &str) -> Result<(), FeedError> {
    pull.save(&Checkpoint::Taxii {
        source: crate::feeds::checkpoint::source_of(pull.feed),
        added_after: added_after.to_string(),
    })
    .await
}

async fn pull_21(
    pull: &Pull<'_>,
    objects: Url,
    mut added_after: Option<String>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let mut next: Option<String> = None;
    let mut resume = Resume::default();
    loop {
        let mut url = objects.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("limit", &pull.feed.page_size.to_string());
            if let Some(after) = &added_after {
                q.append_pair("added_after", after);
            }
            if let Some(n) = &next {
                q.append_pair("next", n);
            }
        }
        let page = pull.upstream.get(url.as_str(), ACCEPT_21, &[]).await?;
        let envelope = json(&page)?;
        let request = parse_envelope_within(&page.body, None, pull.max_object_bytes)
            .map_err(FeedError::Protocol)?;
        let received = request.objects.len() + request.failures.len();
        pull.sink.store(request, report).await?;
        let last = resume.page_stored(pull, &page).await?;
        pull.renew().await?;
        let more = envelope.get("more").and_then(Value::as_bool) == Some(true);
        if !more || received == 0 {
            return resume.finished(pull).await;
        }
        let following = envelope
            .get("next")
            .and_then(Value::as_str)
            .map(str::to_string);
        if following.is_some() && following == next {
            return Err(FeedError::Protocol(
                "the upstream answered the same `next` twice".into(),
            ));
        }
        next = following;
        if next.is_none() {
            // No `next`: ask again from the last object's `date_added` (objects
            // added at that very instant beyond this page cannot be asked for: an
            // upstream without `next` must not split an instant across pages).
            match last {
                Some(last) if Some(&last) != added_after.as_ref() => added_after = Some(last),
                _ => return resume.finished(pull).await,
            }
        }
    }
}

/// `Content-Range: items a-b/N` → (b, N).
fn content_range(page: &Fetched) -> Option<(u64, Option<u64>)> {
    let value = page.header("content-range")?.trim();
    let rest = value.strip_prefix("items")?.trim();
    let (span, total) = rest.split_once('/')?;
    let (_, end) = span.split_once('-')?;
    Some((end.trim().parse().ok()?, total.trim().parse().ok()))
}

async fn pull_20(
    pull: &Pull<'_>,
    objects: Url,
    added_after: Option<String>,
    report: &mut PullReport,
) -> Result<(), FeedError> {
    let mut url = objects;
    if let Some(after) = &added_after {
        url.query_pairs_mut().append_pair("added_after", after);
    }
    let size = pull.feed.page_size as u64;
    let mut start = 0u64;
    let mut resume = Resume::default();
    loop {
        let range: [(HeaderName, String); 1] =
            [(RANGE, format!("items {start}-{}", start + size - 1))];
        let page = pull
            .upstream
            .get(url.as_str(), ACCEPT_STIX_20, &range)
            .await?;
        if page.status == 416 {
            return resume.finished(pull).await;
        }
        json(&page)?;
        let request =
            bundle::parse(&page.body, pull.max_object_bytes).map_err(FeedError::Protocol)?;
        let received = (request.objects.len() + request.failures.len()) as u64;
        pull.sink.store(request, report).await?;
        resume.page_stored(pull, &page).await?;
        pull.renew().await?;
        if page.status != 206 || received == 0 {
            return resume.finished(pull).await;
        }
        match content_range(&page) {
            Some((end, Some(total))) if end + 1 < total => start = end + 1,
            _ => return resume.finished(pull).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn page(content_range: &str) -> Fetched {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "content-range",
            http::HeaderValue::from_str(content_range).expect("header"),
        );
        Fetched {
            status: 206,
            headers,
            body: bytes::Bytes::new(),
        }
    }

    #[test]
    fn instants_compare_as_times_not_text() {
        assert!(strictly_after(
            "2026-01-01T00:00:00.000001Z",
            "2026-01-01T00:00:00Z"
        ));
        assert!(!strictly_after(
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00Z"
        ));
        assert!(!strictly_after(
            "2025-12-31T23:59:59.9Z",
            "2026-01-01T00:00:00Z"
        ));
        assert!(!strictly_after("not a time", "2026-01-01T00:00:00Z"));
    }

    #[test]
    fn content_ranges_are_read() {
        assert_eq!(content_range(&page("items 0-1/5")), Some((1, Some(5))));
        assert_eq!(content_range(&page("items 4-4/*")), Some((4, None)));
        assert_eq!(content_range(&page("bytes 0-1/5")), None);
    }

    #[test]
    fn the_api_root_comes_from_discovery_or_is_the_url() {
        let url = Url::parse("https://up.example/taxii2/").expect("url");
        let discovery = json!({"api_roots": ["https://up.example/a/", "/b/"], "default": "/b"});
        assert_eq!(
            api_root(&url, &discovery).expect("root").as_str(),
            "https://up.example/b/"
        );
        let first = json!({"api_roots": ["https://up.example/a"]});
        assert_eq!(
            api_root(&url, &first).expect("root").as_str(),
            "https://up.example/a/"
        );
        let root = Url::parse("https://up.example/api1").expect("url");
        assert_eq!(
            api_root(&root, &json!({"title": "root"}))
                .expect("root")
                .as_str(),
            "https://up.example/api1/"
        );
        assert!(api_root(&url, &json!({"api_roots": []})).is_err());
    }
}
