//! The PostgreSQL store: the same semantics as the embedded store, shared by any
//! number of server replicas.
//!
//! * Every write transaction first locks the single `clock` row (`FOR UPDATE`) and
//!   takes its `date_added` stamps from it (`max(now, last + 1µs)`), so writes from
//!   all replicas are serialised and commit in stamp order: a poller resuming from
//!   `X-TAXII-Date-Added-Last` on any replica never misses a later commit.
//! * The view registry (which views exist, their queries, which is active) lives in
//!   the `views` table. `clock.registry_gen` changes with it; a write transaction
//!   reads it under the clock lock and reloads the registry when it moved, so ingest
//!   always fills the views the database knows about, whatever this replica's config.
//!   Reads resolve the serving view inside their own statement, so a view built or
//!   switched by another replica is served at once (a `next` cursor minted on one
//!   replica is never cut short on another).
//! * A query change is rebuilt by the one replica holding the view's session advisory
//!   lock; the lock goes with the rebuilder's connection if it dies, and another
//!   replica resumes from the view's progress at its next maintenance.
//! * Relative-time maintenance and status purging run on one replica per interval
//!   (a conditional `UPDATE` of the `maintenance` row).

mod backend;
mod connect;
mod copy;
mod entries;
mod feed_state;
mod handle;
mod ingest;
mod inner;
mod plans;
mod probe;
mod read;
mod rebuilder;
mod schema;
mod tx;
mod views;

pub use backend::REGISTRY_MAX_AGE;
pub use copy::{copy_from_sqlite, CopyReport};
pub use handle::{write_permits, PostgresStore};
#[doc(hidden)]
pub use plans::{object_statements, objects_page_statement, ObjectStatement};
pub use schema::known_version as schema_version;
