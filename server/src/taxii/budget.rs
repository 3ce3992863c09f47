//! The byte budget of one page of objects (`[limits] max_page_bytes`).
//!
//! A page holds at most `limit` objects *and* at most `max_page_bytes` of them: it
//! stops before the object that would overflow the budget (but always holds at least
//! one object, however large), says `more`, and the client resumes right after the
//! last object served. The store applies the budget while it reads
//! ([`Listing::max_bytes`]), so what a page reads stays within it too (plus one
//! object), in one read whatever the objects' sizes.

use crate::config::Limits;
use crate::store::{Listing, Page, Store, StoreError};

/// What is left of one page's budget.
#[derive(Debug, Clone)]
pub struct Budget {
    left: usize,
    /// Whether anything was admitted yet (the first object always is).
    any: bool,
}

impl Budget {
    /// A fresh page's budget under `limits`.
    pub fn new(limits: &Limits) -> Budget {
        Budget {
            left: limits.max_page_bytes,
            any: false,
        }
    }

    /// The bytes left, for the store's read ([`Listing::max_bytes`]).
    pub fn left(&self) -> usize {
        self.left
    }

    /// Whether an object of `len` bytes still joins the page; counts it if it does.
    pub fn admit(&mut self, len: usize) -> bool {
        if self.any && len > self.left {
            return false;
        }
        self.any = true;
        self.left = self.left.saturating_sub(len);
        true
    }
}

/// A page of `listing` within `budget`: the store's own page when no object bytes are
/// read (manifest, versions), else one read cut by the store at the budget. `more` is
/// true when an object was left out for the budget, or the store has more after the
/// last one served.
pub async fn list(
    store: &dyn Store,
    collection: &str,
    listing: &Listing,
    mut budget: Budget,
) -> Result<Page, StoreError> {
    if !listing.with_raw || listing.limit == 0 {
        return store.list(collection, listing).await;
    }
    let read = Listing {
        max_bytes: Some(budget.left()),
        ..listing.clone()
    };
    let page = store.list(collection, &read).await?;
    let mut more = page.more;
    let mut entries = Vec::with_capacity(page.entries.len());
    for e in page.entries {
        // The separating comma counts too (as the store counts it).
        if !budget.admit(e.raw.len() + 1) {
            more = true;
            break;
        }
        entries.push(e);
    }
    Ok(Page { entries, more })
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
    fn the_budget_left_shrinks_with_what_is_admitted() {
        let mut b = Budget::new(&limits(100, 10));
        assert_eq!(b.left(), 100);
        assert!(b.admit(35));
        assert_eq!(b.left(), 65);
        assert!(b.admit(60));
        assert!(!b.admit(6), "5 left");
        assert_eq!(b.left(), 5);
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
