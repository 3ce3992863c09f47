//! Conversion between STIX 2.1 (what the store holds) and STIX 2.0 (what the TAXII
//! 2.0 API speaks). Pure functions over JSON values; `docs/taxii-versions.md` lists
//! the rules and why.
//!
//! - [`to_stix20`]: a stored object as a valid STIX 2.0 object, or why 2.0 cannot
//!   express it (it is then left out of 2.0 responses).
//! - [`to_stix21`]: a posted STIX 2.0 object as a valid STIX 2.1 object, which is
//!   what gets stored, so 2.1 clients read 2.1.

mod down;
mod ids;
mod markings;
mod types;
mod unservable;
mod up;

pub use down::to_stix20;
pub use ids::{id_candidates, to_v4_id};
pub use types::{servable_as_stix20, type_of, NOT_IN_STIX20};
pub use unservable::Unservable;
pub use up::to_stix21;
