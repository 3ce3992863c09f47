//! A bounded cache of objects pages (`GET …/objects/` answers), keyed by what the
//! page was read from and asked with, so a page asked again costs what serving bytes
//! costs — compressed or not.
//!
//! - **Key**: the collection, the [`PageGeneration`] of its serving view, and the
//!   whole listing (position, limit, filters, the page byte budget). The generation
//!   is read *before* the page, so a cached page is never older than its key; pages of
//!   one collection asked at once share that read (`crate::store::generation_reads`).
//! - **Exactness**: every change to a view's existing entries (a removal, a version
//!   no longer the latest or the first, a restamp when a rebuild switches) moves its
//!   change counter in the same transaction, by a trigger, whichever process or
//!   replica made it; a rebuilt query collection serves a new view. Appends are
//!   stamped after every existing entry (commit order, across processes and
//!   replicas), so they never land inside a page that had `more`, nor take its `more`
//!   away. So a full page found under the current generation is byte for byte the
//!   page the store would give now. A collection's last page (no `more`) changes with
//!   every append: it is kept under the view's newest `date_added` too ([`PageKeys`]),
//!   and serves until the next append.
//! - **Not per caller**: the body's only caller-bound part, the `next` cursor, is in
//!   the head built per request ([`CachedPage::envelope_head`]); who may read the
//!   collection is decided before the cache is asked.
//! - **Bounded**: by `[limits] page_cache_bytes`, counting each page's bytes and a
//!   third more for its two compressed forms (made on first use; a form larger than a
//!   sixth of the page is not kept: STIX pages shrink 8–10×); a page heavier than an
//!   eighth of the budget is not kept at all. Hits, misses, evictions and the bytes held are
//!   in `/metrics`.

pub mod positions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use quick_cache::sync::Cache;
use quick_cache::{Lifecycle, OptionsBuilder, Weighter};

use crate::coding::splice::{DeflatedTail, ZstdTail};
use crate::coding::{CodedTail, Coding, ZSTD_LEVEL};
pub use crate::metrics::PageCacheCounters;
use crate::store::{Listing, Micros, ObjectsPage, PageGeneration};

/// Cache shards: few, so that a large page (up to `max_page_bytes`) still fits the
/// share of the budget one shard holds.
const SHARDS: usize = 2;

/// What a page is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    collection: String,
    /// The generation, its `last_added` kept only for the last page.
    generation: PageGeneration,
    /// Whether this is the key of a collection's last page (no `more`).
    last: bool,
    ids: Vec<String>,
    types: Vec<String>,
    spec_versions: Vec<String>,
    versions: String,
    after: Option<Micros>,
    limit: usize,
    max_bytes: usize,
}

impl PageKey {
    /// The key of a full page of `listing` read from `collection` at `generation`
    /// within a page byte budget of `max_bytes`: appends leave such a page as it is,
    /// so the generation's newest `date_added` is not part of it.
    pub fn new(
        collection: &str,
        generation: PageGeneration,
        listing: &Listing,
        max_bytes: usize,
    ) -> PageKey {
        PageKey {
            collection: collection.to_string(),
            generation: PageGeneration {
                last_added: None,
                ..generation
            },
            last: false,
            ids: listing.ids.clone(),
            types: listing.types.clone(),
            spec_versions: listing.spec_versions.clone(),
            versions: format!("{:?}", listing.versions),
            after: listing.after,
            limit: listing.limit,
            max_bytes,
        }
    }
}

impl PageKey {
    /// The key of the same listing's page when it is the collection's last (no
    /// `more`): every append changes that page, so it is kept under the view's newest
    /// `date_added` (`newest`) too.
    pub fn of_last_page(&self, newest: Option<Micros>) -> PageKey {
        PageKey {
            generation: PageGeneration {
                last_added: newest,
                ..self.generation
            },
            last: true,
            ..self.clone()
        }
    }
}

/// The keys a listing's page may be cached under: as a full page, or as the last.
#[derive(Debug, Clone)]
pub struct PageKeys {
    full: PageKey,
    last: PageKey,
}

impl PageKeys {
    /// Both keys of `listing` read from `collection` at `generation`.
    pub fn new(
        collection: &str,
        generation: PageGeneration,
        listing: &Listing,
        max_bytes: usize,
    ) -> PageKeys {
        let full = PageKey::new(collection, generation, listing, max_bytes);
        let last = full.of_last_page(generation.last_added);
        PageKeys { full, last }
    }

    /// The key a page read under these keys is kept under.
    pub fn for_page(self, page: &CachedPage) -> PageKey {
        if page.more {
            self.full
        } else {
            self.last
        }
    }
}

/// A page of objects, held for every caller.
#[derive(Debug)]
pub struct CachedPage {
    /// The objects' JSON, comma-separated, then `]}`: the body after the head.
    tail: Bytes,
    /// Objects in the page.
    count: usize,
    /// Whether more objects follow (`false`: the collection's last page).
    more: bool,
    /// The page's first and last `date_added`.
    first: Micros,
    last: Micros,
    gzip: OnceLock<Option<DeflatedTail>>,
    zstd: OnceLock<Option<ZstdTail>>,
}

impl CachedPage {
    /// A cacheable page: one with at least one object, weighing no more than
    /// `max_weight` (see [`PageCache::max_weight`]); else the page as it was. Its
    /// buffer becomes the cached tail (no copy).
    pub fn of(page: ObjectsPage, max_weight: u64) -> Result<CachedPage, ObjectsPage> {
        let (Some(first), Some(last)) = (page.first_added, page.last_added) else {
            return Err(page);
        };
        if weight_of(page.objects.len() + 2) > max_weight {
            return Err(page);
        }
        let mut tail = page.objects;
        tail.extend_from_slice(b"]}");
        // Held for long: no room for what the read did not fill.
        tail.shrink_to_fit();
        Ok(CachedPage {
            tail: Bytes::from(tail),
            count: page.count,
            more: page.more,
            first,
            last,
            gzip: OnceLock::new(),
            zstd: OnceLock::new(),
        })
    }

    /// Objects in the page.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether more objects follow.
    pub fn more(&self) -> bool {
        self.more
    }

    /// The first and last `date_added` of the page.
    pub fn dates(&self) -> (Micros, Micros) {
        (self.first, self.last)
    }

    /// The head of the page's envelope: `{"more":true,"next":…,"objects":[` (or
    /// `{"more":false,"objects":[` for the last page).
    pub fn envelope_head(&self, next: Option<&str>) -> Bytes {
        Bytes::from(envelope_head(self.more, next))
    }

    /// What the page counts against the cache's budget: its bytes and room for its
    /// two coded forms (each kept only within a sixth of them).
    fn weight(&self) -> u64 {
        weight_of(self.tail.len())
    }
}

impl CodedTail for CachedPage {
    /// The body after the head.
    fn tail(&self) -> Bytes {
        self.tail.clone()
    }

    /// Whether the tail in `coding` is made (or known not to be kept).
    fn has(&self, coding: Coding) -> bool {
        match coding {
            Coding::Gzip => self.gzip.get().is_some(),
            Coding::Zstd => self.zstd.get().is_some(),
        }
    }

    /// `head` and the tail in `coding`, compressing the tail first if it never was
    /// (blocking: call off the async threads unless it `has` it). `None`
    /// when the coded tail is not kept (it would be too large).
    fn coded(&self, coding: Coding, head: &[u8]) -> Option<Vec<u8>> {
        let keep = self.tail.len() / 6;
        match coding {
            Coding::Gzip => self
                .gzip
                .get_or_init(|| {
                    DeflatedTail::new(&self.tail)
                        .ok()
                        .filter(|t| t.size() <= keep)
                })
                .as_ref()
                .map(|t| t.gzip(head)),
            Coding::Zstd => self
                .zstd
                .get_or_init(|| {
                    ZstdTail::new(&self.tail, ZSTD_LEVEL)
                        .ok()
                        .flatten()
                        .filter(|t| t.size() <= keep)
                })
                .as_ref()
                .map(|t| t.zstd(head)),
        }
    }
}

/// The head of a TAXII 2.1 envelope of objects, up to the first object:
/// `{"more":…[,"next":…],"objects":[`. What follows is the objects, comma-separated,
/// and `]}`.
pub fn envelope_head(more: bool, next: Option<&str>) -> Vec<u8> {
    let mut head = Vec::with_capacity(96);
    head.extend_from_slice(if more {
        br#"{"more":true"#
    } else {
        br#"{"more":false"#
    });
    if let Some(next) = next {
        head.extend_from_slice(br#","next":"#);
        head.extend_from_slice(serde_json::to_string(next).unwrap_or_default().as_bytes());
    }
    head.extend_from_slice(br#","objects":["#);
    head
}

/// The weight of a page whose tail is `len` bytes: see [`CachedPage::weight`].
fn weight_of(len: usize) -> u64 {
    let len = len as u64;
    len + len / 3 + 256
}

/// The share of the cache one page may take at most: a page of maximum-size objects
/// (up to `max_page_bytes`, 16 MiB by default) is read from the store each time
/// rather than pushing out every other page, and never held twice in memory while
/// being built.
const MAX_SHARE: u64 = 8;

#[derive(Clone)]
struct ByBytes;

impl Weighter<PageKey, Arc<CachedPage>> for ByBytes {
    fn weight(&self, _key: &PageKey, page: &Arc<CachedPage>) -> u64 {
        page.weight()
    }
}

/// Counts evictions into the cache's metric.
#[derive(Clone)]
struct CountEvictions(Counter);

impl Lifecycle<PageKey, Arc<CachedPage>> for CountEvictions {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: PageKey, _page: Arc<CachedPage>) {
        self.0.inc();
    }
}

type Pages =
    Cache<PageKey, Arc<CachedPage>, ByBytes, quick_cache::DefaultHashBuilder, CountEvictions>;

/// The cache of full pages, sized by `[limits] page_cache_bytes` (resized when a
/// reload changes it; 0 turns it off).
pub struct PageCache {
    /// Made on first use (`None`: the cache could not be made, and is off).
    pages: OnceLock<Option<Pages>>,
    capacity: AtomicU64,
    counters: PageCacheCounters,
}

impl PageCache {
    /// An empty cache of `capacity` bytes, counting into `counters`.
    pub fn new(capacity: usize, counters: PageCacheCounters) -> PageCache {
        PageCache {
            pages: OnceLock::new(),
            capacity: AtomicU64::new(capacity as u64),
            counters,
        }
    }

    /// The cache at `capacity` bytes (the configuration serving now), or `None` when
    /// the cache is off.
    fn at(&self, capacity: usize) -> Option<&Pages> {
        let capacity = capacity as u64;
        if capacity == 0 {
            if let Some(Some(pages)) = self.pages.get() {
                pages.clear();
                self.counters.bytes.set(0);
            }
            self.capacity.store(0, Ordering::Relaxed);
            return None;
        }
        let pages = self.pages.get_or_init(|| {
            let options = OptionsBuilder::new()
                .estimated_items_capacity(64)
                .weight_capacity(capacity)
                .shards(SHARDS)
                .build()
                .ok()?;
            Some(Cache::with_options(
                options,
                ByBytes,
                quick_cache::DefaultHashBuilder::default(),
                CountEvictions(self.counters.evictions.clone()),
            ))
        });
        let pages = pages.as_ref()?;
        if self.capacity.swap(capacity, Ordering::Relaxed) != capacity {
            pages.set_capacity(capacity);
        }
        Some(pages)
    }

    /// The heaviest page a cache of `capacity` bytes keeps: an eighth of it.
    pub fn max_weight(capacity: usize) -> u64 {
        capacity as u64 / MAX_SHARE
    }

    /// The page cached under either of `keys`, counting a hit or a miss.
    pub fn get(&self, capacity: usize, keys: &PageKeys) -> Option<Arc<CachedPage>> {
        let pages = self.at(capacity)?;
        match pages.get(&keys.full).or_else(|| pages.get(&keys.last)) {
            Some(page) => {
                self.counters.hits.inc();
                Some(page)
            }
            None => {
                self.counters.misses.inc();
                None
            }
        }
    }

    /// Keep `page` under `key` (if the cache is on).
    pub fn insert(&self, capacity: usize, key: PageKey, page: Arc<CachedPage>) {
        if let Some(pages) = self.at(capacity) {
            pages.insert(key, page);
            self.counters
                .bytes
                .set(i64::try_from(pages.weight()).unwrap_or(i64::MAX));
        }
    }

    /// Bytes the cached pages count against the budget.
    pub fn weight(&self) -> u64 {
        self.pages
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |p| p.weight())
    }

    /// Pages held.
    pub fn len(&self) -> usize {
        self.pages
            .get()
            .and_then(Option::as_ref)
            .map_or(0, |p| p.len())
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Entry, VersionMatch};

    fn entry(i: i64) -> Entry {
        Entry {
            date_added: 1_000 + i,
            id: format!("indicator--{i}"),
            version: 1,
            spec_version: "2.1".into(),
            raw: format!(r#"{{"id":"indicator--{i}","n":"{}"}}"#, "x".repeat(200)),
        }
    }

    fn entries(n: i64) -> Vec<Entry> {
        (0..n).map(entry).collect()
    }

    /// The objects page of `entries`, as a store reads it.
    fn objects(entries: &[Entry], more: bool) -> ObjectsPage {
        let all = Listing {
            limit: usize::MAX,
            ..listing(None)
        };
        let mut page = ObjectsPage::for_listing(&listing(None));
        for e in entries {
            assert!(page.admit(&all, e.date_added, e.raw.as_bytes()));
        }
        page.more = more;
        page
    }

    fn page(n: i64, more: bool) -> ObjectsPage {
        objects(&entries(n), more)
    }

    fn listing(after: Option<Micros>) -> Listing {
        Listing {
            ids: vec![],
            types: vec![],
            versions: VersionMatch::last(),
            spec_versions: vec![],
            after,
            limit: 10,
            with_raw: true,
            max_bytes: None,
        }
    }

    fn generation(change_seq: i64, last_added: i64) -> PageGeneration {
        PageGeneration {
            view_id: 1,
            change_seq,
            last_added: Some(last_added),
        }
    }

    fn keys(change_seq: i64, last_added: i64, after: Option<Micros>) -> PageKeys {
        PageKeys::new(
            "c",
            generation(change_seq, last_added),
            &listing(after),
            100,
        )
    }

    #[test]
    fn pages_with_objects_are_cacheable_and_their_body_is_the_envelope() {
        assert!(CachedPage::of(page(0, true), u64::MAX).is_err());
        for (more, next) in [(true, Some("abc")), (false, None)] {
            let full = entries(3);
            assert!(
                CachedPage::of(objects(&full, more), 100).is_err(),
                "too heavy"
            );
            let cached = CachedPage::of(objects(&full, more), u64::MAX).expect("cacheable");
            let body = [cached.envelope_head(next).as_ref(), &cached.tail()].concat();
            assert_eq!(
                body,
                crate::taxii::envelope::write_envelope(&full, more, next)
            );
            assert_eq!(cached.dates(), (1_000, 1_002));
            assert_eq!((cached.count(), cached.more()), (3, more));
        }
    }

    #[test]
    fn appends_keep_full_pages_and_retire_last_pages() {
        let counters = PageCacheCounters::default();
        let cache = PageCache::new(1 << 20, counters.clone());
        let full = Arc::new(CachedPage::of(page(3, true), u64::MAX).expect("page"));
        let last = Arc::new(CachedPage::of(page(2, false), u64::MAX).expect("page"));
        cache.insert(1 << 20, keys(1, 50, None).for_page(&full), full);
        cache.insert(1 << 20, keys(1, 50, Some(7)).for_page(&last), last);
        // An append (newest date_added 60): the full page stays, the last one goes.
        assert!(cache
            .get(1 << 20, &keys(1, 60, None))
            .is_some_and(|p| p.more()));
        assert!(cache
            .get(1 << 20, &keys(1, 50, Some(7)))
            .is_some_and(|p| !p.more()));
        assert!(cache.get(1 << 20, &keys(1, 60, Some(7))).is_none());
        // A change to listed objects, another position, collection or budget: misses.
        for other in [
            keys(2, 50, None),
            keys(2, 50, Some(7)),
            keys(1, 50, Some(5)),
            PageKeys::new("d", generation(1, 50), &listing(None), 100),
            PageKeys::new("c", generation(1, 50), &listing(None), 99),
        ] {
            assert!(cache.get(1 << 20, &other).is_none());
        }
        assert_eq!(counters.hits.get(), 2);
        assert_eq!(counters.misses.get(), 6);
    }

    #[test]
    fn the_budget_bounds_what_is_held_and_zero_turns_it_off() {
        let counters = PageCacheCounters::default();
        let budget = 64 * 1024;
        let cache = PageCache::new(budget, counters.clone());
        for i in 0..100 {
            let page = CachedPage::of(page(20, true), u64::MAX).expect("page");
            cache.insert(budget, keys(1, 50, Some(i)).for_page(&page), Arc::new(page));
        }
        assert!(cache.weight() <= budget as u64, "{}", cache.weight());
        assert!(counters.evictions.get() > 0);
        let page = CachedPage::of(page(2, true), u64::MAX).expect("page");
        cache.insert(0, keys(1, 50, Some(99)).for_page(&page), Arc::new(page));
        assert!(cache.get(0, &keys(1, 50, Some(99))).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn coded_forms_decode_to_the_body() {
        let cached = CachedPage::of(page(200, true), u64::MAX).expect("page");
        let head = cached.envelope_head(Some("n"));
        let body = [head.as_ref(), &cached.tail()].concat();
        assert!(!cached.has(Coding::Gzip));
        let gz = cached.coded(Coding::Gzip, &head).expect("kept");
        assert!(cached.has(Coding::Gzip));
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut out)
            .expect("gzip");
        assert_eq!(out, body);
        let zs = cached.coded(Coding::Zstd, &head).expect("kept");
        assert_eq!(zstd::decode_all(zs.as_slice()).expect("zstd"), body);
    }
}
