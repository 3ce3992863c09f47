//! The reconcilers: `TaxiiService` renders a server and reports on its collections;
//! `TaxiiCollection` reports on collections no service can serve.

pub mod apply;
pub mod collection;
mod context;
mod error;
mod report;
pub mod service;

pub use context::Context;
pub use error::Error;
