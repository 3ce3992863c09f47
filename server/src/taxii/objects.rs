//! Objects, object, versions and manifest resources.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::access_log::Objects;
use super::budget::{self, Budget};
use super::cursor::{self, Cursor, Resume};
use super::encoding::EncodedBody;
use super::envelope::{objects_envelope, parse_envelope_within, parse_off_runtime};
use super::error::TaxiiError;
use super::media::{self, taxii_media_type, STIX_21};
use super::params::{self, Allowed, Params};
use super::response::{bytes, chunked, json, with_date_added};
use crate::access::Caller;
use crate::config::{CollectionConfig, TaxiiVersion};
use crate::page_cache::{CachedPage, PageCache, PageKeys};
use crate::stix::timestamp::{format_taxii, parse_timestamp};
use crate::store::validate::is_stix_id;
use crate::store::{Entry, Listing, Micros, ObjectsPage, Page, VersionMatch};
use crate::taxii::context::Ctx;
use crate::taxii::request_body::read_body;

/// The collection, if the caller may read it (403 if they may only write).
fn readable<'a>(ctx: &'a Ctx, root: &str, id: &str) -> Result<&'a CollectionConfig, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    if !ctx.rights(c).read {
        return Err(TaxiiError::forbidden(
            "you may add objects to this collection but not read it",
        ));
    }
    Ok(c)
}

fn parse_params(ctx: &Ctx, query: Option<&str>, allowed: Allowed) -> Result<Params, TaxiiError> {
    let params = params::parse(query, allowed).map_err(TaxiiError::bad_request)?;
    ctx.note_ignored(&params);
    Ok(params)
}

/// Everything needed to list one page and issue the next cursor.
struct PageRequest {
    scope: String,
    resume: Resume,
    listing: Listing,
}

fn page_request(
    ctx: &Ctx,
    endpoint: &str,
    c: &CollectionConfig,
    object: Option<&str>,
    params: &Params,
    default_versions: VersionMatch,
    with_raw: bool,
) -> Result<PageRequest, TaxiiError> {
    let scope = format!(
        "{endpoint}|{}|{}|{}",
        c.id(),
        object.unwrap_or(""),
        ctx.caller.key()
    );
    let resume = cursor::resume(params, &scope).map_err(TaxiiError::bad_request)?;
    let limits = &ctx.config.config.limits;
    let f = &resume.filters;
    let listing = Listing {
        ids: match object {
            Some(o) => vec![o.to_string()],
            None => f.ids.clone(),
        },
        types: f.types.clone(),
        versions: f.versions.clone().unwrap_or(default_versions),
        spec_versions: f.spec_versions.clone(),
        after: resume.after,
        limit: params
            .limit
            .unwrap_or(limits.default_page_size)
            .min(limits.max_page_size),
        with_raw,
        max_bytes: None,
    };
    Ok(PageRequest {
        scope,
        resume,
        listing,
    })
}

impl PageRequest {
    /// The `next` cursor after this page, if more follow.
    fn next(&self, page: &Page) -> Option<String> {
        self.next_after(page.more, page.entries.last().map(|e| e.date_added))
    }

    /// The `next` cursor after a page whose last entry was added at `last`, if `more`
    /// follow.
    fn next_after(&self, more: bool, last: Option<Micros>) -> Option<String> {
        let last = last.filter(|_| more)?;
        Some(Cursor::new(self.scope.clone(), last, self.resume.filters.clone()).encode())
    }

    /// A page of objects within the page byte budget, answered as an envelope: from
    /// the page cache when this page is held under the collection's current
    /// generation, else read (and kept there).
    async fn objects(&self, ctx: &Ctx, c: &CollectionConfig) -> Result<Response, TaxiiError> {
        let limits = &ctx.config.config.limits;
        let capacity = limits.page_cache_bytes;
        let keys = match capacity {
            0 => None,
            _ => ctx
                .store()
                .page_generation(c.id())
                .await?
                .map(|g| PageKeys::new(c.id(), g, &self.listing, limits.max_page_bytes)),
        };
        if let Some(page) = keys.as_ref().and_then(|k| ctx.state.pages.get(capacity, k)) {
            return Ok(self.cached_envelope(ctx, page));
        }
        let page = self.read_objects(ctx, c).await?;
        let Some(keys) = keys else {
            return Ok(self.envelope(ctx, page));
        };
        match CachedPage::of(page, PageCache::max_weight(capacity)) {
            Ok(cached) => {
                let cached = Arc::new(cached);
                let key = keys.for_page(&cached);
                ctx.state.pages.insert(capacity, key, cached.clone());
                Ok(self.cached_envelope(ctx, cached))
            }
            Err(page) => Ok(self.envelope(ctx, page)),
        }
    }

    /// The page of objects from the store, within the page byte budget.
    async fn read_objects(
        &self,
        ctx: &Ctx,
        c: &CollectionConfig,
    ) -> Result<ObjectsPage, TaxiiError> {
        let read = Listing {
            max_bytes: Some(ctx.config.config.limits.max_page_bytes),
            ..self.listing.clone()
        };
        Ok(ctx.store().list_objects(c.id(), &read).await?)
    }

    /// The envelope of a cached page: the head with this caller's `next`, then the
    /// page's bytes (coded, if asked, by splicing: see `coding::splice`).
    fn cached_envelope(&self, ctx: &Ctx, page: Arc<CachedPage>) -> Response {
        let (first, last) = page.dates();
        let next = self.next_after(page.more(), Some(last));
        let head = page.envelope_head(next.as_deref());
        let count = Objects::Served(page.count() as u64);
        let body = EncodedBody::of_page(head, page);
        let response = count.tag(body.respond(StatusCode::OK, taxii_media_type(ctx.version)));
        with_date_added(response, Some(first), Some(last))
    }

    /// The envelope of a page of objects; the page's buffer becomes the body.
    fn envelope(&self, ctx: &Ctx, page: ObjectsPage) -> Response {
        let next = self.next_after(page.more, page.last_added);
        let count = Objects::Served(page.count as u64);
        let dates = (page.first_added, page.last_added);
        let body = objects_envelope(page, next.as_deref());
        let response = count.tag(chunked(StatusCode::OK, taxii_media_type(ctx.version), body));
        match dates {
            (Some(first), Some(last)) => with_date_added(response, Some(first), Some(last)),
            _ => with_date_added(response, self.listing.after, self.listing.after),
        }
    }

    /// `X-TAXII-Date-Added-First/Last`: the page's range, or on an empty page the
    /// position the client asked from (so a poller resuming from it keeps its place).
    fn date_headers(&self, response: Response, page: &Page) -> Response {
        match (page.entries.first(), page.entries.last()) {
            (Some(first), Some(last)) => {
                with_date_added(response, Some(first.date_added), Some(last.date_added))
            }
            _ => with_date_added(response, self.listing.after, self.listing.after),
        }
    }
}

/// `GET …/objects/`.
pub async fn get_objects(
    ctx: &Ctx,
    root: &str,
    id: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    let params = parse_params(ctx, query, Allowed::All)?;
    let req = page_request(ctx, "objects", c, None, &params, VersionMatch::last(), true)?;
    req.objects(ctx, c).await
}

/// `GET …/objects/{object}/`: 404 when the collection holds no version of it.
pub async fn get_object(
    ctx: &Ctx,
    root: &str,
    id: &str,
    object: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    require_object_id(object)?;
    let params = parse_params(ctx, query, Allowed::VersionAndSpec)?;
    let req = page_request(
        ctx,
        "object",
        c,
        Some(object),
        &params,
        VersionMatch::last(),
        true,
    )?;
    let page = req.read_objects(ctx, c).await?;
    if page.count == 0 && params.next.is_none() {
        ensure_exists(ctx, c, object).await?;
    }
    Ok(req.envelope(ctx, page))
}

#[derive(Serialize)]
struct Versions {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    versions: Vec<String>,
}

/// `GET …/objects/{object}/versions/`.
pub async fn get_versions(
    ctx: &Ctx,
    root: &str,
    id: &str,
    object: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    require_object_id(object)?;
    let params = parse_params(ctx, query, Allowed::SpecOnly)?;
    let req = page_request(
        ctx,
        "versions",
        c,
        Some(object),
        &params,
        VersionMatch::all(),
        false,
    )?;
    let (page, versions) = versions_as_written(ctx, c, &req.listing).await?;
    if page.entries.is_empty() && params.next.is_none() {
        ensure_exists(ctx, c, object).await?;
    }
    let body = Versions {
        more: page.more,
        next: req.next(&page),
        versions,
    };
    let r = json(StatusCode::OK, taxii_media_type(ctx.version), &body)?;
    Ok(req.date_headers(r, &page))
}

/// The version strings of a stored object: only these two fields are read.
#[derive(Deserialize)]
struct WrittenVersion {
    #[serde(default)]
    modified: Option<String>,
    #[serde(default)]
    created: Option<String>,
}

/// A version as the object writes it: its own `modified` (else `created`) string,
/// when that is the timestamp the store keeps for it; else the stored date formatted.
fn written_version(e: &Entry) -> String {
    serde_json::from_str::<WrittenVersion>(&e.raw)
        .ok()
        .and_then(|w| w.modified.or(w.created))
        .filter(|v| parse_timestamp(v).ok() == Some(e.version))
        .unwrap_or_else(|| format_taxii(e.version))
}

/// A page of `listing` (up to its `limit` entries) with each entry's version as the
/// object writes it. Objects are read in pages of the byte budget, so memory stays
/// within it however large the versions are; only the version strings are kept.
async fn versions_as_written(
    ctx: &Ctx,
    c: &CollectionConfig,
    listing: &Listing,
) -> Result<(Page, Vec<String>), TaxiiError> {
    let mut read = Listing {
        with_raw: true,
        ..listing.clone()
    };
    let mut entries = Vec::new();
    let mut versions = Vec::new();
    loop {
        let budget = Budget::new(&ctx.config.config.limits);
        let page = budget::list(ctx.store(), c.id(), &read, budget).await?;
        let read_any = !page.entries.is_empty();
        for mut e in page.entries {
            versions.push(written_version(&e));
            e.raw = String::new();
            entries.push(e);
        }
        let more = page.more;
        if !more || !read_any || entries.len() >= listing.limit {
            return Ok((Page { entries, more }, versions));
        }
        read.after = entries.last().map(|e| e.date_added);
        read.limit = listing.limit - entries.len();
    }
}

#[derive(Serialize)]
struct ManifestRecord {
    id: String,
    date_added: String,
    version: String,
    media_type: &'static str,
}

#[derive(Serialize)]
struct Manifest {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    objects: Vec<ManifestRecord>,
}

/// `GET …/manifest/`.
pub async fn get_manifest(
    ctx: &Ctx,
    root: &str,
    id: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    let c = readable(ctx, root, id)?;
    let params = parse_params(ctx, query, Allowed::All)?;
    let req = page_request(
        ctx,
        "manifest",
        c,
        None,
        &params,
        VersionMatch::last(),
        false,
    )?;
    let page = ctx.store().list(c.id(), &req.listing).await?;
    let body = Manifest {
        more: page.more,
        next: req.next(&page),
        objects: page
            .entries
            .iter()
            .map(|e| ManifestRecord {
                id: e.id.clone(),
                date_added: format_taxii(e.date_added),
                version: format_taxii(e.version),
                media_type: if e.spec_version == "2.0" {
                    media::STIX_20
                } else {
                    STIX_21
                },
            })
            .collect(),
    };
    let r = json(StatusCode::OK, taxii_media_type(ctx.version), &body)?;
    Ok(req.date_headers(r, &page))
}

/// `DELETE …/objects/{object}/`: all versions unless `match[version]` narrows it.
pub async fn delete_object(
    ctx: &Ctx,
    root: &str,
    id: &str,
    object: &str,
    query: Option<&str>,
) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    require_write(ctx, c)?;
    require_object_id(object)?;
    let params = parse_params(ctx, query, Allowed::VersionAndSpec)?;
    let versions = params
        .filters
        .versions
        .clone()
        .unwrap_or_else(VersionMatch::all);
    let removed = ctx
        .store()
        .delete_object(c.id(), object, &versions, &params.filters.spec_versions)
        .await?;
    if removed == 0 {
        ensure_exists(ctx, c, object).await?;
    }
    Ok(bytes(
        StatusCode::OK,
        taxii_media_type(ctx.version),
        Vec::new(),
    ))
}

/// `POST …/objects/`: validate each object, store durably, answer 202 with the status.
pub async fn add_objects(
    ctx: &Ctx,
    root: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, TaxiiError> {
    ctx.api_root(root)?;
    let c = ctx.visible_collection(root, id)?;
    require_write(ctx, c)?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    if media::posted_version(content_type) != Some(TaxiiVersion::V21) {
        return Err(TaxiiError::unsupported_media_type());
    }
    let limits = &ctx.config.config.limits;
    let body = read_body(headers, body, limits.max_content_length).await?;
    let max_object_bytes = limits.max_object_bytes;
    // Each object holds its own bytes once parsed: the body is not kept while storing.
    let mut request = parse_off_runtime(body, move |body| {
        parse_envelope_within(body, None, max_object_bytes)
    })
    .await?;
    request.owner = ctx.caller.key().to_string();
    let status = ctx.store().add_objects(root, c.id(), request).await?;
    ctx.state
        .metrics
        .objects_added(status.success_count, status.failure_count);
    let accepted = Objects::Accepted(status.success_count);
    let response = json(StatusCode::ACCEPTED, taxii_media_type(ctx.version), &status)?;
    Ok(accepted.tag(response))
}

fn require_write(ctx: &Ctx, c: &CollectionConfig) -> Result<(), TaxiiError> {
    if !c.is_writable() {
        return Err(TaxiiError::forbidden(
            "this collection is a read-only query collection",
        ));
    }
    if !ctx.rights(c).write {
        return Err(match ctx.caller {
            Caller::Anonymous => TaxiiError::unauthorized(),
            Caller::User(_) => TaxiiError::forbidden("you may not write to this collection"),
        });
    }
    Ok(())
}

fn require_object_id(object: &str) -> Result<(), TaxiiError> {
    if is_stix_id(object) {
        Ok(())
    } else {
        Err(TaxiiError::not_found("not a STIX object id"))
    }
}

async fn ensure_exists(ctx: &Ctx, c: &CollectionConfig, object: &str) -> Result<(), TaxiiError> {
    let any = Listing {
        ids: vec![object.to_string()],
        types: Vec::new(),
        versions: VersionMatch::all(),
        spec_versions: Vec::new(),
        after: None,
        limit: 1,
        with_raw: false,
        max_bytes: None,
    };
    if ctx.store().list(c.id(), &any).await?.entries.is_empty() {
        return Err(TaxiiError::not_found("no such object in this collection"));
    }
    Ok(())
}
