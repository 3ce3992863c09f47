//! What TAXII 2.0 listings learn about a collection, kept for the next request: how
//! many items a selection holds (the total in `Content-Range`) and where an item
//! offset starts (the seek of a `Range` request). Without it every 2.0 page counts
//! every matching entry and walks every entry before its offset: O(collection) per
//! page, where 2.1's cursors cost O(page).
//!
//! Facts are kept per collection, selection and [`PageGeneration`] minus its newest
//! `date_added`: between two changes of existing entries (the change counter) a view
//! only grows at its end, so
//! - the position of offset *n* stays where it was (items are only ever added after
//!   every existing one);
//! - a total known at newest `date_added` *t* grows by the matching entries added
//!   after *t* — counted from there, not from the start.
//!
//! A total is kept only when the generation read after counting is the one read
//! before, so it is exact for the `date_added` it is kept with. Bounded: a fixed
//! number of selections, each with a bounded number of offsets.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use quick_cache::sync::Cache;

use crate::store::{Micros, PageGeneration};

/// Selections whose facts are kept at once.
const SELECTIONS: usize = 1_024;

/// Offsets kept per selection: the earliest are forgotten first (clients page forward).
const OFFSETS: usize = 1_024;

/// What facts are kept under: the collection, its serving view and change counter,
/// and the selection (filters, as the listing states them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PositionsKey {
    collection: String,
    view_id: i64,
    change_seq: i64,
    selection: String,
}

impl PositionsKey {
    /// The key of `selection` (any stable rendering of the filters) over
    /// `collection` at `generation`.
    pub fn new(collection: &str, generation: PageGeneration, selection: String) -> PositionsKey {
        PositionsKey {
            collection: collection.to_string(),
            view_id: generation.view_id,
            change_seq: generation.change_seq,
            selection,
        }
    }
}

/// A total known exactly at one newest `date_added`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownTotal {
    /// The view's newest `date_added` when it was counted (`None`: it was empty).
    pub at: Option<Micros>,
    /// The items then.
    pub items: u64,
}

#[derive(Debug, Default)]
struct Facts {
    total: Option<KnownTotal>,
    /// Item offset → the `date_added` of that item (the position after it).
    offsets: BTreeMap<u64, Micros>,
}

/// The facts of many selections, bounded.
pub struct ItemPositions {
    facts: Cache<PositionsKey, Arc<Mutex<Facts>>>,
}

impl Default for ItemPositions {
    fn default() -> Self {
        ItemPositions {
            facts: Cache::new(SELECTIONS),
        }
    }
}

impl ItemPositions {
    fn facts(&self, key: &PositionsKey) -> Option<Arc<Mutex<Facts>>> {
        self.facts.get(key)
    }

    fn facts_or_new(&self, key: &PositionsKey) -> Arc<Mutex<Facts>> {
        match self.facts.get(key) {
            Some(f) => f,
            None => {
                let f = Arc::new(Mutex::new(Facts::default()));
                self.facts.insert(key.clone(), f.clone());
                f
            }
        }
    }

    /// The total last known for `key`, if any.
    pub fn total(&self, key: &PositionsKey) -> Option<KnownTotal> {
        let facts = self.facts(key)?;
        let facts = facts.lock().ok()?;
        facts.total
    }

    /// Keep `total` for `key` (it must be exact at its `at`).
    pub fn keep_total(&self, key: &PositionsKey, total: KnownTotal) {
        if let Ok(mut facts) = self.facts_or_new(key).lock() {
            facts.total = Some(total);
        }
    }

    /// The nearest known offset at or before `offset` (above 0), and its position.
    pub fn position_before(&self, key: &PositionsKey, offset: u64) -> Option<(u64, Micros)> {
        let facts = self.facts(key)?;
        let facts = facts.lock().ok()?;
        facts
            .offsets
            .range(1..=offset)
            .next_back()
            .map(|(o, p)| (*o, *p))
    }

    /// Keep that the item at `offset` (counted from 1) was added at `position`.
    pub fn keep_position(&self, key: &PositionsKey, offset: u64, position: Micros) {
        if offset == 0 {
            return;
        }
        if let Ok(mut facts) = self.facts_or_new(key).lock() {
            facts.offsets.insert(offset, position);
            while facts.offsets.len() > OFFSETS {
                facts.offsets.pop_first();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(change_seq: i64, selection: &str) -> PositionsKey {
        PositionsKey::new(
            "c",
            PageGeneration {
                view_id: 1,
                change_seq,
                last_added: Some(99),
            },
            selection.into(),
        )
    }

    #[test]
    fn positions_are_found_at_or_before_an_offset_of_the_same_selection() {
        let p = ItemPositions::default();
        assert_eq!(p.position_before(&key(1, "a"), 10), None);
        p.keep_position(&key(1, "a"), 1_000, 5_000);
        p.keep_position(&key(1, "a"), 2_000, 9_000);
        p.keep_position(&key(1, "a"), 0, 1);
        assert_eq!(p.position_before(&key(1, "a"), 999), None);
        assert_eq!(p.position_before(&key(1, "a"), 1_000), Some((1_000, 5_000)));
        assert_eq!(p.position_before(&key(1, "a"), 1_999), Some((1_000, 5_000)));
        assert_eq!(p.position_before(&key(1, "a"), 7_000), Some((2_000, 9_000)));
        assert_eq!(p.position_before(&key(2, "a"), 7_000), None, "a change");
        assert_eq!(p.position_before(&key(1, "b"), 7_000), None, "a selection");
    }

    #[test]
    fn offsets_kept_are_bounded_and_the_earliest_go_first() {
        let p = ItemPositions::default();
        for i in 1..=(OFFSETS as u64 + 10) {
            p.keep_position(&key(1, "a"), i * 10, i as i64);
        }
        assert_eq!(p.position_before(&key(1, "a"), 50), None);
        assert_eq!(
            p.position_before(&key(1, "a"), u64::MAX),
            Some(((OFFSETS as u64 + 10) * 10, OFFSETS as i64 + 10))
        );
    }

    #[test]
    fn totals_are_kept_with_when_they_were_counted() {
        let p = ItemPositions::default();
        assert_eq!(p.total(&key(1, "a")), None);
        let t = KnownTotal {
            at: Some(42),
            items: 7,
        };
        p.keep_total(&key(1, "a"), t);
        assert_eq!(p.total(&key(1, "a")), Some(t));
        assert_eq!(p.total(&key(2, "a")), None);
    }
}
