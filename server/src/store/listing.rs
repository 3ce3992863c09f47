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
