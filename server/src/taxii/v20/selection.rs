//! What a TAXII 2.0 listing selects, addressed by item offset: its total, the seek to
//! an offset, and a page of stored objects converted to STIX 2.0.
//!
//! Items are the collection's entries (object versions) whose type STIX 2.0 has, in
//! `date_added` order. An item 2.0 cannot express for another reason (a Sigma
//! indicator, a relationship to an observable) keeps its position and is left out of
//! its page, so offsets stay stable. Reaching offset n reads n index entries: O(n),
//! where 2.1's cursors cost O(page).

use bytes::Bytes;
use serde_json::Value;

use super::bundle::object_json;
use crate::page_cache::positions::{ItemPositions, KnownTotal, PositionsKey};
use crate::stix::convert::{id_candidates, servable_as_stix20, to_stix20, type_of, NOT_IN_STIX20};
use crate::store::{Listing, Micros, PageGeneration, Store, StoreError, VersionMatch};
use crate::taxii::budget::Budget;
use crate::taxii::params::Filters;

/// Index entries read per step while seeking to an offset (metadata only).
const SEEK_CHUNK: usize = 5_000;

/// A stored object version as served on the 2.0 API.
#[derive(Debug, Clone)]
pub struct Served {
    /// When it entered the collection.
    pub date_added: Micros,
    /// Its id, as converted.
    pub id: String,
    /// Its `modified` (else `created`), as converted.
    pub version: Option<String>,
    /// The object converted to STIX 2.0, as JSON.
    pub json: Bytes,
}

/// One page of items.
#[derive(Debug, Clone, Default)]
pub struct Items {
    /// The items 2.0 can express, converted.
    pub served: Vec<Served>,
    /// Items the page covers, served or not.
    pub count: u64,
    /// `date_added` of the first item covered.
    pub first: Option<Micros>,
    /// `date_added` of the last item covered.
    pub last: Option<Micros>,
}

/// What is known of a selection's items at the generation read before its page
/// (see [`ItemPositions`]).
pub struct Known<'a> {
    /// Where the facts are kept.
    pub positions: &'a ItemPositions,
    /// The selection's key at `generation`.
    pub key: PositionsKey,
    /// The collection's generation, read before anything else.
    pub generation: PageGeneration,
}

/// The filters of one 2.0 request, in store terms.
#[derive(Debug, Clone)]
pub struct Selection {
    /// The listing without type filter or position.
    listing: Listing,
    /// `match[type]` minus the types 2.0 lacks; `None` when no type was asked for.
    types: Option<Vec<String>>,
}

impl Selection {
    /// The selection of a request's filters, or of one object's versions. Ids are
    /// widened to every UUID version a served v4 id may stand for.
    pub fn new(filters: &Filters, object: Option<&str>) -> Selection {
        let ids = match object {
            Some(o) => id_candidates(o),
            None => filters.ids.iter().flat_map(|i| id_candidates(i)).collect(),
        };
        let types = (!filters.types.is_empty()).then(|| {
            filters
                .types
                .iter()
                .filter(|t| servable_as_stix20(t))
                .cloned()
                .collect()
        });
        Selection {
            listing: Listing {
                ids,
                types: Vec::new(),
                versions: filters.versions.clone().unwrap_or_else(VersionMatch::last),
                spec_versions: Vec::new(),
                after: filters.added_after,
                limit: 0,
                with_raw: false,
                max_bytes: None,
            },
            types,
        }
    }

    /// Where the selection starts (`added_after`).
    pub fn added_after(&self) -> Option<Micros> {
        self.listing.after
    }

    fn admits(&self, id: &str) -> bool {
        let kind = type_of(id);
        servable_as_stix20(kind)
            && self
                .types
                .as_ref()
                .is_none_or(|types| types.iter().any(|t| t == kind))
    }

    /// The store listing to scan from `after`. A single requested type is read through
    /// the type index; otherwise types are filtered here, so that the store scans in
    /// `date_added` order rather than sorting every match.
    fn scan(&self, after: Option<Micros>, limit: usize, with_raw: bool) -> Listing {
        let types = match &self.types {
            Some(types) if types.len() == 1 => types.clone(),
            _ => Vec::new(),
        };
        Listing {
            types,
            after,
            limit,
            with_raw,
            ..self.listing.clone()
        }
    }

    /// What [`ItemPositions`] keeps this selection's facts under, at `generation`.
    pub fn positions_key(&self, collection: &str, generation: PageGeneration) -> PositionsKey {
        PositionsKey::new(
            collection,
            generation,
            format!("{:?}|{:?}", self.listing, self.types),
        )
    }

    /// How many items the selection holds: from what is known (plus what was added
    /// since it was counted), else counted.
    pub async fn total(
        &self,
        store: &dyn Store,
        collection: &str,
        known: Option<&Known<'_>>,
    ) -> Result<u64, StoreError> {
        let Some(k) = known else {
            return self.count(store, collection, None).await;
        };
        let total = match k.positions.total(&k.key) {
            Some(t) if t.at == k.generation.last_added => return Ok(t.items),
            Some(t) => t.items + self.count(store, collection, t.at).await?,
            None => self.count(store, collection, None).await?,
        };
        // Exact at the generation read before only if nothing changed meanwhile.
        if store.page_generation(collection).await? == Some(k.generation) {
            let total = KnownTotal {
                at: k.generation.last_added,
                items: total,
            };
            k.positions.keep_total(&k.key, total);
        }
        Ok(total)
    }

    /// The items the selection holds among the entries added after `since` (all of
    /// them with `None`). O(matches).
    async fn count(
        &self,
        store: &dyn Store,
        collection: &str,
        since: Option<Micros>,
    ) -> Result<u64, StoreError> {
        let listing = Listing {
            after: self.listing.after.max(since),
            ..self.listing.clone()
        };
        match &self.types {
            Some(types) if types.is_empty() => Ok(0),
            Some(types) => {
                let listing = Listing {
                    types: types.clone(),
                    ..listing
                };
                store.count(collection, &listing).await
            }
            None => {
                let all = store.count(collection, &listing).await?;
                let lacking = Listing {
                    types: NOT_IN_STIX20.iter().map(|t| t.to_string()).collect(),
                    ..listing
                };
                let lacking = store.count(collection, &lacking).await?;
                Ok(all.saturating_sub(lacking))
            }
        }
    }

    /// The position after the first `offset` items (where a page at `offset` starts),
    /// walked from the nearest position known before it.
    pub async fn seek(
        &self,
        store: &dyn Store,
        collection: &str,
        offset: u64,
        known: Option<&Known<'_>>,
    ) -> Result<Option<Micros>, StoreError> {
        let nearest = known.and_then(|k| k.positions.position_before(&k.key, offset));
        let (mut after, mut remaining) = match nearest {
            Some((at, position)) => (Some(position), offset - at),
            None => (self.listing.after, offset),
        };
        while remaining > 0 {
            let page = store
                .list(collection, &self.scan(after, SEEK_CHUNK, false))
                .await?;
            for e in &page.entries {
                after = Some(e.date_added);
                if self.admits(&e.id) {
                    remaining -= 1;
                    if remaining == 0 {
                        break;
                    }
                }
            }
            if !page.more {
                break;
            }
        }
        if let (Some(k), 0, Some(position)) = (known, remaining, after) {
            k.positions.keep_position(&k.key, offset, position);
        }
        Ok(after)
    }

    /// Up to `want` items after `after`, converted to STIX 2.0, within `budget`: the
    /// page ends before the first served object whose JSON would overflow it (the
    /// first always fits), and covers only the items before it.
    pub async fn page(
        &self,
        store: &dyn Store,
        collection: &str,
        after: Option<Micros>,
        want: usize,
        mut budget: Budget,
    ) -> Result<Items, StoreError> {
        let want = u64::try_from(want).unwrap_or(u64::MAX);
        let mut items = Items::default();
        let mut after = after;
        while items.count < want {
            let left = usize::try_from(want - items.count).unwrap_or(usize::MAX);
            // The store cuts its read at the bytes left (of the stored JSON; the 2.0
            // form is about as large and is admitted below by its own size).
            let read = Listing {
                max_bytes: Some(budget.left()),
                ..self.scan(after, left, true)
            };
            let page = store.list(collection, &read).await?;
            for e in page.entries {
                if !self.admits(&e.id) {
                    after = Some(e.date_added);
                    continue;
                }
                match convert(&e.raw) {
                    Ok(object) => {
                        let json = object_json(&object);
                        // The separating comma counts too.
                        if !budget.admit(json.len() + 1) {
                            return Ok(items);
                        }
                        items.served.push(Served {
                            date_added: e.date_added,
                            id: text(&object, "id").unwrap_or_default(),
                            version: text(&object, "modified").or_else(|| text(&object, "created")),
                            json: Bytes::from(json),
                        });
                    }
                    Err(reason) => {
                        tracing::debug!(id = %e.id, %reason, "not served on TAXII 2.0");
                    }
                }
                after = Some(e.date_added);
                items.count += 1;
                items.first.get_or_insert(e.date_added);
                items.last = Some(e.date_added);
                if items.count == want {
                    break;
                }
            }
            if !page.more {
                break;
            }
        }
        Ok(items)
    }
}

fn text(object: &Value, field: &str) -> Option<String> {
    object.get(field)?.as_str().map(str::to_string)
}

fn convert(raw: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(raw).map_err(|e| e.to_string())?;
    to_stix20(&value).map_err(|e| e.to_string())
}
