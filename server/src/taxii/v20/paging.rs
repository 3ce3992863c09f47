//! A page of a 2.0 listing from the request's `Range`, and how it is answered:
//! `206` with `Content-Range` for ranges (every page, the last and empty ones too),
//! `416` past the end, `200` when the whole listing fits in one unranged answer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use super::range::{self, ItemRange};
use super::selection::{Items, Known, Selection};
use crate::taxii::budget::Budget;
use crate::taxii::context::Ctx;
use crate::taxii::error::TaxiiError;
use crate::taxii::response::with_date_added;

/// One page of a listing, with where it sits in the whole.
#[derive(Debug)]
pub struct Paged {
    /// The page.
    pub items: Items,
    /// Offset of its first item.
    pub start: u64,
    /// Items in the whole listing.
    pub total: u64,
    /// Whether the client sent a `Range`.
    pub ranged: bool,
    /// The request's `added_after`, echoed in the date headers of an empty page.
    added_after: Option<i64>,
}

/// Read the page a request asks for. Without a `Range` the page is the first
/// `limit` (or default page size) items; a range is capped at the maximum page size,
/// and every page at `max_page_bytes` of objects (a shorter page then says so in its
/// `Content-Range`, and the client asks for the rest from there).
pub async fn fetch(
    ctx: &Ctx,
    collection: &str,
    selection: &Selection,
    range: Option<ItemRange>,
    limit: Option<usize>,
) -> Result<Paged, TaxiiError> {
    let limits = &ctx.config.config.limits;
    let store = ctx.store();
    let known = store
        .page_generation(collection)
        .await?
        .map(|generation| Known {
            positions: &ctx.state.item_positions,
            key: selection.positions_key(collection, generation),
            generation,
        });
    let total = selection.total(store, collection, known.as_ref()).await?;
    let (start, want) = match range {
        Some(r) => (r.first, r.len(limits.max_page_size)),
        None => (
            0,
            limit
                .unwrap_or(limits.default_page_size)
                .min(limits.max_page_size),
        ),
    };
    if start >= total && total > 0 {
        return Err(range::not_satisfiable(total));
    }
    let items = if total == 0 {
        Items::default()
    } else {
        let after = match start {
            0 => selection.added_after(),
            n => selection.seek(store, collection, n, known.as_ref()).await?,
        };
        let budget = Budget::new(limits);
        let items = selection
            .page(store, collection, after, want, budget)
            .await?;
        if let (Some(k), Some(last)) = (&known, items.last) {
            // Where the next page starts.
            let offset = start.saturating_add(items.count);
            k.positions.keep_position(&k.key, offset, last);
        }
        items
    };
    // Objects may have arrived between counting and reading.
    let total = match items.count {
        0 => total,
        n => total.max(start.saturating_add(n)),
    };
    Ok(Paged {
        total,
        items,
        start,
        ranged: range.is_some(),
        added_after: selection.added_after(),
    })
}

impl Paged {
    /// Whether the answer is partial: a range was asked for or the page is not all.
    fn partial(&self) -> bool {
        self.ranged || self.start.saturating_add(self.items.count) < self.total
    }

    /// `206` for partial answers, else `200`.
    pub fn status(&self) -> StatusCode {
        if self.partial() {
            StatusCode::PARTIAL_CONTENT
        } else {
            StatusCode::OK
        }
    }

    /// Add `Accept-Ranges`, `Content-Range` (partial answers) and
    /// `X-TAXII-Date-Added-First/Last` (the page's, or `added_after` on an empty page).
    pub fn headers(&self, mut response: Response) -> Response {
        let h = response.headers_mut();
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("items"));
        if self.partial() {
            h.insert(
                header::CONTENT_RANGE,
                range::content_range(self.start, self.items.count, self.total),
            );
        }
        match (self.items.first, self.items.last) {
            (Some(first), Some(last)) => with_date_added(response, Some(first), Some(last)),
            _ => with_date_added(response, self.added_after, self.added_after),
        }
    }
}
