//! The reconcilers: `TaxiiService` renders a server and reports on its collections;
//! `TaxiiCollection` reports on collections no service can serve; `TaxiiFeed` writes
//! each feed's status from its service's decision and its server's report.

pub mod apply;
pub mod collection;
mod context;
mod error;
pub mod feed;
mod report;
pub mod service;

pub use context::Context;
pub use error::Error;
