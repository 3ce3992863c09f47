//! The TAXII routes: one router per resource, merged here. TAXII 2.1 and 2.0 share
//! the routes and handlers; a handler answers in the version negotiated (see
//! [`Ctx::version`](crate::taxii::context::Ctx::version)), and a resource 2.0 lacks is a 404 there.
//!
//! Every route is served with and without its trailing `/`. API roots come from the
//! configuration, so routes name them as a parameter (`/{api_root}/…`) and the
//! handlers check the root (404 when it is not configured). Methods a resource does
//! not support — HEAD included — are answered 405 with a TAXII error and `Allow`.

mod api_root;
mod collection;
mod collections;
mod discovery;
mod manifest;
mod object;
mod objects;
mod resource;
mod router;
mod segments;
mod status;
mod versions;

pub use self::router::router;
