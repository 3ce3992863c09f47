//! A listing request over one collection and the page it returns.

use serde::{Deserialize, Serialize};

use crate::store::micros::Micros;

/// Which versions of each object a listing returns (`match[version]`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMatch {
    /// Every version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub all: bool,
    /// The earliest version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub first: bool,
    /// The latest version.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
    /// Versions with exactly these `modified` timestamps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at: Vec<Micros>,
}

impl VersionMatch {
    /// The TAXII default, `last`.
    pub fn last() -> Self {
        VersionMatch {
            last: true,
            ..Default::default()
        }
    }

    /// Every version (the versions endpoint).
    pub fn all() -> Self {
        VersionMatch {
            all: true,
            ..Default::default()
        }
    }
}

/// A listing request over one collection: the TAXII filters plus a page position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// `match[id]` (OR).
    pub ids: Vec<String>,
    /// `match[type]` (OR).
    pub types: Vec<String>,
    /// `match[version]`.
    pub versions: VersionMatch,
    /// `match[spec_version]` (OR); empty = any.
    pub spec_versions: Vec<String>,
    /// Only entries added strictly after this (`added_after` or a cursor position).
    pub after: Option<Micros>,
    /// Page size.
    pub limit: usize,
    /// Whether the raw object bytes are needed (objects) or only metadata (manifest, versions).
    pub with_raw: bool,
    /// With raw bytes: stop before the entry that would bring the page's bytes (each
    /// object counted with one more byte, for the separating comma) over this, keeping
    /// at least one entry; `more` is then true. What a read holds stays within it (plus
    /// one object), however large the objects.
    pub max_bytes: Option<usize>,
}

#[cfg(test)]
impl Listing {
    /// The TAXII default listing from the start: latest versions, no filters, no JSON.
    pub(crate) fn latest(limit: usize) -> Listing {
        Listing {
            ids: Vec::new(),
            types: Vec::new(),
            versions: VersionMatch::last(),
            spec_versions: Vec::new(),
            after: None,
            limit,
            with_raw: false,
            max_bytes: None,
        }
    }
}

/// One object version as listed in a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When this version entered the collection.
    pub date_added: Micros,
    /// STIX id.
    pub id: String,
    /// The version: `modified`, else `created`, else the time it was first stored.
    pub version: Micros,
    /// STIX `spec_version` (`2.0` or `2.1`).
    pub spec_version: String,
    /// The object's JSON exactly as it was received (empty unless asked for).
    pub raw: String,
}

/// Which state of a collection's serving view a page was read from: the view (a
/// rebuilt query collection gets a new one), its change counter, which every change
/// to existing entries moves in the changing transaction, and its newest `date_added`.
/// Appends do not move the counter: they are stamped after every entry, so a page
/// that had `more` stays the same; the last page (no `more`) also needs the newest
/// `date_added` to stay the same. Two reads under one generation return the same page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageGeneration {
    /// The serving view.
    pub view_id: i64,
    /// Its change counter.
    pub change_seq: i64,
    /// Its newest `date_added` (`None` when empty).
    pub last_added: Option<Micros>,
}

/// One page of a listing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Entries in ascending `date_added` order.
    pub entries: Vec<Entry>,
    /// Whether more entries follow.
    pub more: bool,
}

/// What a stored object weighs, about (STIX indicators: 600–900 bytes).
const TYPICAL_OBJECT_BYTES: usize = 800;

/// One page of objects as bytes, for the objects endpoints: the objects' JSON exactly
/// as stored, comma-separated, in one buffer filled from the store's own row buffers
/// (no string per object or column), cut at the listing's `limit` and byte budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectsPage {
    /// The objects' JSON, comma-separated.
    pub objects: Vec<u8>,
    /// How many objects.
    pub count: usize,
    /// The first and last `date_added` of the page (`None` when it is empty).
    pub first_added: Option<Micros>,
    /// See `first_added`.
    pub last_added: Option<Micros>,
    /// Whether more objects follow.
    pub more: bool,
}

impl ObjectsPage {
    /// An empty page with room for `listing`'s objects (of a typical size, within its
    /// byte budget) and for the two bytes the envelope closes with.
    pub fn for_listing(listing: &Listing) -> ObjectsPage {
        let room = listing
            .limit
            .min(1024)
            .saturating_mul(TYPICAL_OBJECT_BYTES + 1);
        let room = listing.max_bytes.map_or(room, |max| room.min(max));
        ObjectsPage {
            objects: Vec::with_capacity(room.saturating_add(2)),
            ..ObjectsPage::default()
        }
    }

    /// Add the next object of the listing (read in `date_added` order), unless the
    /// page is full: it holds `limit` objects, or this one would bring its bytes over
    /// the listing's `max_bytes` (each object counted with one more byte, for its
    /// comma; the first object always joins). When it does not join, the page has
    /// `more` and the read stops.
    pub fn admit(&mut self, listing: &Listing, date_added: Micros, raw: &[u8]) -> bool {
        if self.count == listing.limit {
            self.more = true;
            return false;
        }
        if let (Some(max), true) = (listing.max_bytes, self.count > 0) {
            // The bytes so far, commas included, are `objects.len() + 1`.
            if self.objects.len() + 1 + raw.len() + 1 > max {
                self.more = true;
                return false;
            }
        }
        if self.count > 0 {
            self.objects.push(b',');
        }
        self.objects.extend_from_slice(raw);
        self.count += 1;
        self.first_added.get_or_insert(date_added);
        self.last_added = Some(date_added);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(limit: usize, max_bytes: Option<usize>) -> Listing {
        Listing {
            with_raw: true,
            max_bytes,
            ..Listing::latest(limit)
        }
    }

    #[test]
    fn an_objects_page_joins_objects_with_commas_up_to_its_limit() {
        let l = listing(2, None);
        let mut page = ObjectsPage::for_listing(&l);
        assert!(page.admit(&l, 5, br#"{"a":1}"#));
        assert!(page.admit(&l, 7, br#"{"b":2}"#));
        assert!(!page.admit(&l, 9, br#"{"c":3}"#), "the limit");
        assert_eq!(page.objects, br#"{"a":1},{"b":2}"#);
        assert_eq!((page.count, page.more), (2, true));
        assert_eq!((page.first_added, page.last_added), (Some(5), Some(7)));
    }

    #[test]
    fn an_objects_page_stops_at_its_byte_budget_but_keeps_one_object() {
        // Two 7-byte objects count 8 + 8 = 16 bytes.
        let exact = listing(10, Some(16));
        let mut page = ObjectsPage::for_listing(&exact);
        assert!(page.admit(&exact, 1, b"1234567"));
        assert!(page.admit(&exact, 2, b"1234567"), "filling it exactly");
        assert!(!page.admit(&exact, 3, b"1"));
        assert!(page.more);
        let tiny = listing(10, Some(3));
        let mut page = ObjectsPage::for_listing(&tiny);
        assert!(page.admit(&tiny, 1, b"1234567"), "the first always joins");
        assert!(!page.admit(&tiny, 2, b"1"));
        assert_eq!((page.count, page.more), (1, true));
    }

    #[test]
    fn an_empty_page_has_no_dates_and_no_more() {
        let page = ObjectsPage::for_listing(&listing(0, None));
        assert_eq!(page, ObjectsPage::default());
        let mut zero = ObjectsPage::default();
        assert!(!zero.admit(&listing(0, None), 1, b"{}"));
        assert!(zero.more, "a limit of 0 with objects left says more");
    }
}
