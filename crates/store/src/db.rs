//! Connections, the pool, migrations and the store's error type.
//!
//! The backend is chosen by the URL's scheme (`postgres://`/`postgresql://` or `sqlite://PATH`),
//! never by trial: a PostgreSQL URL that fails to connect must not become a SQLite file.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Serialises migrations of replicas starting together against one PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x746f_6b65_6e61;
/// How long a request waits for a connection before it answers 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// A parsed `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(String),
}

impl fmt::Debug for DatabaseUrl {
    // The URL may carry a password: show only the kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Postgres(_) => f.write_str("Postgres(..)"),
            DatabaseUrl::Sqlite(path) => write!(f, "Sqlite({path:?})"),
        }
    }
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(
                    "sqlite:// needs a file path, e.g. sqlite://./data/tokenauth.db".into(),
                );
            }
            Ok(DatabaseUrl::Sqlite(path.to_owned()))
        } else {
            Err("must start with postgres://, postgresql:// or sqlite://".into())
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(_))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (or is not migrated yet): answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("unique constraint violated")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Query(DieselError),
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::NotFound => StoreError::NotFound,
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                StoreError::Conflict
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, ref info)
                if looks_like_outage(info.message()) =>
            {
                StoreError::Unavailable(info.message().to_owned())
            }
            other => StoreError::Query(other),
        }
    }
}

/// Errors libpq and SQLite report when the server went away or the file is busy.
fn looks_like_outage(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "server closed the connection",
        "connection",
        "terminating",
        "database is locked",
        "no connection to the server",
        "the database system is",
    ]
    .iter()
    .any(|needle| m.contains(needle))
}

/// Opens connections by scheme; SQLite connections get WAL, a busy timeout and foreign keys.
#[derive(Debug)]
struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(&with_connect_timeout(url))
                .map(DbConnection::Pg)
                .map_err(r2d2::Error::ConnectionError),
            DatabaseUrl::Sqlite(path) => {
                let mut conn =
                    SqliteConnection::establish(path).map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// libpq waits for the OS (minutes) on an unreachable host unless told otherwise.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=2")
    } else {
        format!("{url}?connect_timeout=2")
    }
}

/// r2d2 reports background connection failures here; they repeat while the database is down.
#[derive(Debug)]
struct QuietErrors;

impl r2d2::HandleError<r2d2::Error> for QuietErrors {
    fn handle_error(&self, error: r2d2::Error) {
        tracing::debug!(%error, "database connection attempt failed");
    }
}

/// The pool plus whether the schema is known to be current. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    pool: Pool<Manager>,
    url: Arc<DatabaseUrl>,
    migrated: Arc<AtomicBool>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("url", &self.url).finish()
    }
}

impl Database {
    /// Builds the pool without connecting: the service starts while the database is down.
    pub fn new(url: DatabaseUrl) -> Result<Self, StoreError> {
        if let DatabaseUrl::Sqlite(path) = &url
            && let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let max_size = if url.is_sqlite() { 4 } else { 10 };
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(CHECKOUT_TIMEOUT)
            .error_handler(Box::new(QuietErrors))
            .build_unchecked(Manager { url: url.clone() });
        Ok(Database {
            pool,
            url: Arc::new(url),
            migrated: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// Applies pending migrations (blocking). Safe to call from several replicas at once.
    pub fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.checkout()?;
        let result = match &mut *conn {
            DbConnection::Pg(pg) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                    .execute(pg)?;
                let applied = pg.run_pending_migrations(PG_MIGRATIONS).map(|_| ());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(pg)?;
                applied
            }
            DbConnection::Sqlite(lite) => {
                lite.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ())
            }
        };
        result.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        self.pool
            .get()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Whether a connection can be had and answers (blocking).
    pub fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.checkout()?;
        conn.ping().map_err(StoreError::from)
    }

    /// Runs `f` with a connection on tokio's blocking pool, never on an async worker.
    /// Answers `Unavailable` until migrations have been applied.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        if !self.is_migrated() {
            return Err(StoreError::Unavailable("schema not migrated yet".into()));
        }
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.checkout()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }

    /// [`Database::ping`] from async code, on the blocking pool (works before migrations too).
    pub async fn ping_async(&self) -> Result<(), StoreError> {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.ping())
            .await
            .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
    }
}
