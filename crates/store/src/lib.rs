//! tokenauth-store: the diesel schema, models and queries, embedded migrations and the
//! connection pool. PostgreSQL in production, SQLite as the embedded default, one query path.

pub mod admin;
pub mod clients;
pub mod codes;
mod db;
pub mod devices;
pub mod models;
pub mod prune;
pub mod revocations;
pub mod schema;
pub mod sessions;
pub mod standing;
pub mod users;

pub use db::{Database, DatabaseUrl, DbConnection, StoreError, connect_postgres};
