//! Connections, the pool, migrations and the store's error type.
//!
//! The backend is chosen by the URL's scheme (`postgres://`/`postgresql://` or `sqlite://PATH`),
//! never by trial: a PostgreSQL URL that fails to connect must not become a SQLite file.
//!
//! Every call is bounded three ways, so a database that goes silent without closing its
//! connections (a partition, a hung proxy) costs a 503 within seconds, never a hung request:
//! an overall deadline on the call ([`CALL_DEADLINE`]), PostgreSQL's own `statement_timeout`
//! for a query the server is slow to finish, and TCP keepalives with `tcp_user_timeout` so a
//! dead peer's connection breaks instead of waiting for the OS. At most as many calls run at once
//! as the pool has connections; the rest wait without holding a thread.
//!
//! A pooled PostgreSQL connection is tested (`SELECT 1`) before a call only when it has been
//! idle for [`IDLE_BEFORE_TEST`]; one in steady use is tested by its use, and one whose call
//! found the database gone is closed rather than handed out again. Testing every checkout would
//! add a round trip to every call. (A SQLite connection is an open file, tested at every
//! checkout for microseconds.)

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// Serialises migrations of replicas starting together against one PostgreSQL.
const PG_MIGRATION_LOCK: i64 = 0x746f_6b65_6e61;
/// A pooled connection idle this long is tested before a call uses it.
pub const IDLE_BEFORE_TEST: Duration = Duration::from_secs(1);
/// How long a request waits for a connection before it answers 503.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest a request's database call may take, waiting included: requests that need the
/// database answer 503 within 5 s when it does not answer.
pub const CALL_DEADLINE: Duration = Duration::from_secs(4);
/// What PostgreSQL itself allows one statement (a request's are far shorter; reading every live
/// revocation to re-seed Redis is the longest).
const STATEMENT_TIMEOUT_MS: u32 = 30_000;
/// libpq connection parameters added unless the URL sets them: keepalives notice a peer that
/// vanished, `tcp_user_timeout` (ms) one that stopped acknowledging what was sent.
const PG_DEFAULT_PARAMS: [(&str, &str); 6] = [
    ("connect_timeout", "2"),
    ("keepalives", "1"),
    ("keepalives_idle", "10"),
    ("keepalives_interval", "5"),
    ("keepalives_count", "3"),
    ("tcp_user_timeout", "10000"),
];

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Runs `f` in a transaction that writes. On SQLite its first statement takes the database's
/// write lock (a write that matches nothing), waiting up to the busy timeout for another writer:
/// a transaction that read first and wrote later could not wait then, and would fail at once as
/// "database is locked" (a logout racing a refresh, say). On PostgreSQL a plain transaction.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    E: From<DieselError>,
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
{
    conn.transaction(|conn| {
        if let DbConnection::Sqlite(lite) = conn {
            diesel::sql_query("UPDATE users SET disabled = disabled WHERE 0").execute(lite)?;
        }
        f(conn)
    })
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

/// Opens one PostgreSQL connection: every PostgreSQL connection of the process goes through here.
///
/// libpq does TLS with OpenSSL, which by default frees its global state from an `atexit` handler.
/// A process that exits while another thread is in a handshake (a pool refilling itself, a
/// reconnect) would then crash with SIGSEGV instead of exiting with its status. OpenSSL is set
/// up here first, without that handler, before libpq can set it up with it.
pub fn connect_postgres(url: &str) -> ConnectionResult<PgConnection> {
    openssl_sys::init();
    PgConnection::establish(url)
}

/// A connection of the pool: when it was last used, and whether a call on it found the
/// (PostgreSQL) server gone, or a test failed (the pool then closes it).
struct Pooled {
    conn: DbConnection,
    used: Instant,
    failed: bool,
}

impl Pooled {
    fn new(conn: DbConnection) -> Self {
        Pooled {
            conn,
            used: Instant::now(),
            failed: false,
        }
    }

    /// Runs `f` on the connection, marking it failed when `f` finds the PostgreSQL server gone.
    fn call<T>(
        &mut self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let result = f(&mut self.conn);
        // A SQLite connection is an open file: "database is locked" says nothing about it.
        self.failed |= matches!(result, Err(StoreError::Unavailable(_)))
            && matches!(self.conn, DbConnection::Pg(_));
        self.used = Instant::now();
        result
    }
}

/// Opens connections by scheme; SQLite connections get WAL, a busy timeout and foreign keys.
#[derive(Debug)]
struct Manager {
    url: DatabaseUrl,
}

impl Manager {
    fn open(&self) -> Result<DbConnection, r2d2::Error> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = connect_postgres(&with_pg_defaults(url))
                    .map_err(r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "SET statement_timeout = {STATEMENT_TIMEOUT_MS}; \
                     SET idle_in_transaction_session_timeout = {STATEMENT_TIMEOUT_MS};"
                ))
                .map_err(r2d2::Error::QueryError)?;
                Ok(DbConnection::Pg(conn))
            }
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
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<Pooled, r2d2::Error> {
        self.open().map(Pooled::new)
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), r2d2::Error> {
        conn.conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.failed || conn.conn.is_broken()
    }
}

/// libpq waits for the OS (minutes) on an unreachable or vanished host unless told otherwise.
fn with_pg_defaults(url: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let set: Vec<&str> = query
        .split('&')
        .filter_map(|pair| pair.split_once('=').map(|(k, _)| k))
        .collect();
    let mut out = url.to_owned();
    for (key, value) in PG_DEFAULT_PARAMS {
        if !set.contains(&key) {
            out.push(if out.contains('?') { '&' } else { '?' });
            out.push_str(key);
            out.push('=');
            out.push_str(value);
        }
    }
    out
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
    /// One permit per connection: a call waits here, on no thread, for its turn.
    calls: Arc<Semaphore>,
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
        let max_size: u32 = if url.is_sqlite() { 4 } else { 10 };
        let pool = Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(CHECKOUT_TIMEOUT)
            // Tested in `checkout` instead, only when idle a while.
            .test_on_check_out(false)
            .error_handler(Box::new(QuietErrors))
            .build_unchecked(Manager { url: url.clone() });
        Ok(Database {
            pool,
            url: Arc::new(url),
            migrated: Arc::new(AtomicBool::new(false)),
            calls: Arc::new(Semaphore::new(max_size as usize)),
        })
    }

    /// Connections the pool holds, and how many of them are idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = self.pool.state();
        (state.connections, state.idle_connections)
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
        let result = match &mut conn.conn {
            DbConnection::Pg(pg) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                    .execute(pg)?;
                let applied = pg.run_pending_migrations(PG_MIGRATIONS).map(|_| ());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"))
                    .execute(pg)?;
                applied
            }
            // The database's write lock, taken before looking for pending migrations: a second
            // process (or handle) migrating at the same time waits, then finds none pending,
            // instead of applying the same migration twice.
            DbConnection::Sqlite(lite) => lite.immediate_transaction(|lite| {
                lite.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ())
            }),
        };
        result.map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    /// A connection from the pool; one idle for [`IDLE_BEFORE_TEST`] is tested first, and if
    /// it no longer answers, closed and another taken.
    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        let started = Instant::now();
        loop {
            let mut conn = self
                .pool
                .get_timeout(CHECKOUT_TIMEOUT.saturating_sub(started.elapsed()))
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            // SQLite's connections are files: testing one costs microseconds, not a round
            // trip, and is done on every checkout as before.
            let untested =
                conn.used.elapsed() < IDLE_BEFORE_TEST && matches!(conn.conn, DbConnection::Pg(_));
            if untested || conn.call(|c| c.ping().map_err(StoreError::from)).is_ok() {
                return Ok(conn);
            }
            // The pool closes it when it comes back.
            conn.failed = true;
        }
    }

    /// Whether a connection can be had and answers (blocking).
    pub fn ping(&self) -> Result<(), StoreError> {
        self.checkout()?
            .call(|c| c.ping().map_err(StoreError::from))
    }

    /// Runs `f` with a connection on tokio's blocking pool, never on an async worker, within
    /// [`CALL_DEADLINE`]. Answers `Unavailable` until migrations have been applied.
    pub async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_within(CALL_DEADLINE, f).await
    }

    /// [`Database::run`] with a deadline of the caller's (background work reading much).
    pub async fn run_within<T, F>(&self, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StoreError> + Send + 'static,
    {
        if !self.is_migrated() {
            return Err(StoreError::Unavailable("schema not migrated yet".into()));
        }
        let db = self.clone();
        self.blocking(deadline, move || db.checkout()?.call(f))
            .await
    }

    /// [`Database::ping`] from async code within [`CALL_DEADLINE`] (works before migrations).
    pub async fn ping_async(&self) -> Result<(), StoreError> {
        let db = self.clone();
        self.blocking(CALL_DEADLINE, move || db.ping()).await
    }

    /// Runs `f` on the blocking pool once a call permit is free, all within `deadline`. A call
    /// that overruns keeps its permit (and connection) until the database lets it go, so a
    /// silent database holds at most one thread per connection.
    async fn blocking<T, F>(&self, deadline: Duration, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StoreError> + Send + 'static,
    {
        let calls = self.calls.clone();
        // Log lines written on the blocking thread stay inside the caller's span, if it has
        // one (a request's, under the pretty log format).
        let span = tracing::Span::current();
        let call = async move {
            let permit = calls
                .acquire_owned()
                .await
                .map_err(|_| StoreError::Unavailable("database closed".into()))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                span.in_scope(f)
            })
            .await
            .map_err(|e| StoreError::Unavailable(format!("database task failed: {e}")))?
        };
        tokio::time::timeout(deadline, call).await.map_err(|_| {
            StoreError::Unavailable(format!("the database did not answer within {deadline:?}"))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Handles (processes, in production) migrating one new SQLite file at the same time: each
    /// succeeds, and every migration is applied once.
    #[test]
    fn concurrent_sqlite_migrations_apply_each_migration_once() {
        for round in 0..5 {
            let dir = std::env::temp_dir()
                .join(format!("tokenauth-migrate-{}-{round}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let url = DatabaseUrl::Sqlite(dir.join("db.sqlite").display().to_string());
            let start = Arc::new(std::sync::Barrier::new(4));
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let (url, start) = (url.clone(), start.clone());
                    std::thread::spawn(move || {
                        let db = Database::new(url).unwrap();
                        start.wait();
                        db.migrate()
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
            // Best effort: a pool's own thread may still be opening a connection.
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    #[test]
    fn postgres_urls_get_timeouts_and_keepalives_unless_they_set_them() {
        let url = with_pg_defaults("postgres://u:p@db:5432/app");
        assert_eq!(
            url,
            "postgres://u:p@db:5432/app?connect_timeout=2&keepalives=1&keepalives_idle=10\
             &keepalives_interval=5&keepalives_count=3&tcp_user_timeout=10000"
        );
        let url = with_pg_defaults("postgres://db/app?sslmode=require&connect_timeout=9");
        assert!(
            url.starts_with("postgres://db/app?sslmode=require&connect_timeout=9&keepalives=1")
        );
        assert_eq!(url.matches("connect_timeout").count(), 1);
    }
}
