//! The TAXII HTTP API. A request passes the request context ([`context`]: facts,
//! origin, negotiated version, caller), is routed to its resource ([`routes`]: one
//! router per resource, TAXII 2.1 and 2.0 sharing them), and the resource's handler
//! answers with the logic in the modules below, in the version negotiated.

pub mod access_log;
pub(crate) mod budget;
mod collections;
pub mod context;
pub mod cursor;
mod discovery;
pub mod encoding;
pub mod envelope;
pub(crate) mod error;
mod frames;
pub mod media;
mod objects;
pub mod params;
pub mod proxy;
mod request_body;
pub(crate) mod response;
mod routes;
mod status;
pub(crate) mod strict;
pub(crate) mod v20;

pub use self::context::Ctx;
pub use self::request_body::read_body;
pub use self::routes::router;
