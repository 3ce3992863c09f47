//! The byte budget of one page of objects (`[limits] max_page_bytes`).
//!
//! A page holds at most `limit` objects *and* at most `max_page_bytes` of them: it
//! stops before the object that would overflow the budget (but always holds at least
//! one object, however large), says `more`, and the client resumes right after the
//! last object served. The store is asked for objects in batches no larger than what
//! fits in what is left of the budget if every object were as large as the largest
//! allowed (`max_object_bytes`, or a larger one already seen: objects stored before
//! the limit was lowered), so what a page reads stays near the budget too.

use crate::config::Limits;
use crate::store::{Entry, Listing, Page, Store, StoreError};

/// What is left of one page's budget.
#[derive(Debug, Clone)]
pub struct Budget {
    left: usize,
    /// The size assumed of an object not yet read.
    per_object: usize,
    /// Whether anything was admitted yet (the first object always is).
    any: bool,
}

impl Budget {
    /// A fresh page's budget under `limits`.
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            left: limits.max_page_bytes,
            per_object: limits.max_object_bytes.max(1),
            any: false,
        }
    }

    /// How many objects to read next, when `wanted` more would fill the page: as many
    /// as surely fit in the budget left, at least one, at most `wanted`.
    pub fn batch(&self, wanted: usize) -> usize {
        (self.left / self.per_object).clamp(1, wanted.max(1))
    }

    /// Whether an object of `len` bytes still joins the page; counts it if it does.
    pub fn admit(&mut self, len: usize) -> bool {
        self.per_object = self.per_object.max(len);
        if self.any && len > self.left {
            return false;
        }
        self.any = true;
        self.left = self.left.saturating_sub(len);
        true
    }
}

/// A page of `listing` within `budget`: the store's own page when no object bytes are
/// read (manifest, versions), else read in batches and cut before the first object
/// that does not fit. `more` is true when an object was left out for the budget, or
/// the store has more after the last one served.
pub async fn list(
    store: &dyn Store,
    collection: &str,
    listing: &Listing,
    mut budget: Budget,
) -> Result<Page, StoreError> {
    if !listing.with_raw || listing.limit == 0 {
        return store.list(collection, listing).await;
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut after = listing.after;
    loop {
        let wanted = listing.limit - entries.len();
        let batch = Listing {
            after,
            limit: budget.batch(wanted),
            ..listing.clone()
        };
        let page = store.list(collection, &batch).await?;
        let read = page.entries.len();
        for e in page.entries {
            // The separating comma counts too.
            if !budget.admit(e.raw.len() + 1) {
                return Ok(Page {
                    entries,
                    more: true,
                });
            }
            after = Some(e.date_added);
            entries.push(e);
        }
        if !page.more || read == 0 || entries.len() >= listing.limit {
            return Ok(Page {
                entries,
                more: page.more,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(page: usize, object: usize) -> Limits {
        Limits {
            max_page_bytes: page,
            max_object_bytes: object,
            ..Limits::default()
        }
    }

    #[test]
    fn batches_fit_the_budget_left_assuming_the_largest_objects() {
        let mut b = Budget::new(&limits(100, 10));
        assert_eq!(b.batch(1000), 10);
        assert_eq!(b.batch(3), 3);
        assert!(b.admit(35));
        assert_eq!(b.batch(1000), 1, "65 left, objects of up to 35 bytes seen");
        assert!(b.admit(60));
        assert!(!b.admit(6), "5 left");
        assert_eq!(b.batch(1000), 1, "always at least one");
    }

    #[test]
    fn the_first_object_always_fits() {
        let mut b = Budget::new(&limits(100, 10));
        assert!(b.admit(1_000));
        assert!(!b.admit(1));
        let mut exact = Budget::new(&limits(100, 10));
        assert!(exact.admit(50));
        assert!(exact.admit(50), "filling the budget exactly is fine");
        assert!(!exact.admit(1));
    }
}
