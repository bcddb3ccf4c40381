//! [`SqlStore`]: one implementation of [`Store`](crate::Store) for SQLite and PostgreSQL over
//! sqlx's `Any` driver.
//!
//! SQL is written once, in the dialect both databases understand (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); the code branches on [`Dialect`] only for column types
//! ([`migrate`]), connection setup, row locking and the JSON functions user search needs
//! ([`search`]). Documents are JSON text, instants are `BIGINT` milliseconds, digests are
//! binary.

mod legacy;
mod lifecycle;
mod logs;
mod mail;
mod migrate;
mod queries;
mod rbac;
mod records;
mod search;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use tracing::Instrument;

use crate::{Error, Result};

/// The SQL database behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The [`Store`](crate::Store) over a SQLite file, an in-memory SQLite database, or PostgreSQL.
/// Cloning is cheap and shares the connection pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
}

/// Connections a PostgreSQL pool (and a SQLite file pool) keeps open at most.
const POSTGRES_CONNECTIONS: u32 = 10;
const SQLITE_FILE_CONNECTIONS: u32 = 8;
/// How long SQLite waits for another connection's write lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a query waits for a PostgreSQL connection (sqlx's default is 30 s). While the
/// database is down or unreachable, sqlx keeps retrying the connect for this long: a request
/// then gets its 503 in a few seconds rather than at the edge's time limit, and a restart of a
/// second or two is ridden out. Pooled connections are checked before use (sqlx's
/// `test_before_acquire`), so those a restart broke are replaced, never handed out.
const POSTGRES_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl SqlStore {
    /// Opens `sqlite://PATH` (created when missing), `sqlite::memory:`, or
    /// `postgres://…`/`postgresql://…`, and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<SqlStore> {
        Self::open(url, None).await
    }

    /// Like [`connect`](Self::connect) for PostgreSQL, but keeps every table in `schema`
    /// (created when absent), so several stores can share one database without colliding.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<SqlStore> {
        let valid = !schema.is_empty()
            && !schema.starts_with(|c: char| c.is_ascii_digit())
            && schema.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::InvalidUrl(format!("invalid schema name {schema:?}")));
        }
        if dialect_of(url)? != Dialect::Postgres {
            return Err(Error::InvalidUrl("schemas need a PostgreSQL URL".into()));
        }
        Self::open(url, Some(schema)).await
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes every pooled connection; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn open(url: &str, schema: Option<&str>) -> Result<SqlStore> {
        // Idempotent: sqlx guards it with its own `Once`.
        sqlx::any::install_default_drivers();

        let dialect = dialect_of(url)?;
        let (url, options) = match dialect {
            Dialect::Sqlite => sqlite_pool(url),
            Dialect::Postgres => (url.to_owned(), postgres_pool(schema)),
        };
        if dialect == Dialect::Sqlite && url.contains("mode=rwc") {
            create_private_file(&url)?;
        }
        let pool = options.connect(&url).await.map_err(db("database connection"))?;
        let store = SqlStore { pool, dialect };
        migrate::run(&store, schema).await?;
        Ok(store)
    }

    /// Starts a transaction that will write. SQLite must take its write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot wait for the lock
    /// later and fails instead. PostgreSQL locks rows as statements reach them.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        let tx = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        };
        tx.map_err(db("transaction"))
    }

    async fn row(&self, what: &str, q: Query<'_>) -> Result<Option<AnyRow>> {
        q.fetch_optional(&self.pool).instrument(query_span(what)).await.map_err(db(what))
    }

    async fn rows(&self, what: &str, q: Query<'_>) -> Result<Vec<AnyRow>> {
        q.fetch_all(&self.pool).instrument(query_span(what)).await.map_err(db(what))
    }

    /// Fetches at most one row and decodes its `data` document.
    async fn doc<T: DeserializeOwned>(&self, what: &str, q: Query<'_>) -> Result<Option<T>> {
        let row = self.row(what, q).await?;
        row.map(|row| data(&row, what)).transpose()
    }

    /// Fetches every row and decodes their `data` documents.
    async fn docs<T: DeserializeOwned>(&self, what: &str, q: Query<'_>) -> Result<Vec<T>> {
        let rows = self.rows(what, q).await?;
        rows.iter().map(|row| data(row, what)).collect()
    }

    /// Runs one statement for its effect.
    async fn write(&self, what: &str, q: Query<'_>) -> Result<()> {
        self.exec(what, q).await.map(drop)
    }

    /// Runs a `DELETE`; `true` when it removed a row.
    async fn remove(&self, what: &str, q: Query<'_>) -> Result<bool> {
        Ok(self.exec(what, q).await? > 0)
    }

    /// Runs one statement and returns the rows it touched.
    async fn exec(&self, what: &str, q: Query<'_>) -> Result<u64> {
        Ok(q.execute(&self.pool).instrument(query_span(what)).await.map_err(db(what))?.rows_affected())
    }
}

/// A query's span in traces (the idp's crate `telemetry` exports spans of this target, at
/// TRACE, which nothing else enables: with traces off the span is never built).
fn query_span(what: &str) -> tracing::Span {
    tracing::trace_span!(target: "gatehouse::trace", "store.query", otel.name = format!("store {what}"), otel.kind = "client", db.operation.name = what)
}

type Query<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

fn dialect_of(url: &str) -> Result<Dialect> {
    if url.starts_with("sqlite:") {
        Ok(Dialect::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Dialect::Postgres)
    } else {
        // Only the scheme: the rest may carry a password.
        let scheme = url.split(':').next().unwrap_or_default();
        Err(Error::InvalidUrl(format!("unsupported scheme {scheme:?}")))
    }
}

fn sqlite_pool(url: &str) -> (String, AnyPoolOptions) {
    if url.contains(":memory:") || url.contains("mode=memory") {
        // sqlx gives every in-memory connection its own database, so the pool holds exactly
        // one connection and never lets it go.
        let options = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|conn, _| Box::pin(async move { conn.execute("PRAGMA foreign_keys = ON").await.map(drop) }));
        return (url.to_owned(), options);
    }
    let url = if url.contains("mode=") {
        url.to_owned()
    } else {
        let separator = if url.contains('?') { '&' } else { '?' };
        format!("{url}{separator}mode=rwc")
    };
    let options = AnyPoolOptions::new().max_connections(SQLITE_FILE_CONNECTIONS).after_connect(|conn, _| {
        Box::pin(async move {
            // busy_timeout first, so switching to WAL waits for other openers too.
            let pragmas = format!(
                "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                 PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
                SQLITE_BUSY_TIMEOUT.as_millis()
            );
            conn.execute(pragmas.as_str()).await.map(drop)
        })
    });
    (url, options)
}

/// SQLite would create a missing database file 0644 (less the umask), readable by every local
/// user, and gives its `-wal` and `-shm` files the database file's mode. So the file is created
/// here first, empty (SQLite reads that as an empty database) and 0600 from its first instant;
/// an existing file is left as it is.
fn create_private_file(url: &str) -> Result<()> {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
    let path = options.get_filename();
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::Backend(format!("creating the database file {}: {e}", path.display()).into())),
    }
}

fn postgres_pool(schema: Option<&str>) -> AnyPoolOptions {
    let options = AnyPoolOptions::new()
        .max_connections(POSTGRES_CONNECTIONS)
        .acquire_timeout(POSTGRES_ACQUIRE_TIMEOUT)
        .test_before_acquire(true);
    let Some(schema) = schema else { return options };
    // The name was validated by `connect_in_schema`, so quoting it is enough.
    let set_path = format!("SET search_path TO \"{schema}\"");
    options.after_connect(move |conn, _| {
        let set_path = set_path.clone();
        Box::pin(async move { conn.execute(set_path.as_str()).await.map(drop) })
    })
}

/// Maps a driver error: a unique violation means `what` is taken, a foreign-key violation that
/// what `what` names is missing; anything else is the backend's problem.
fn db(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(what.to_owned()),
        // Only a record naming another (a version or binding its action) has a foreign key.
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound(what.to_owned()),
        e => Error::Backend(Box::new(e)),
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Backend(Box::new(e)))
}

fn from_json<T: DeserializeOwned>(what: &str, json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("{what}: {e}")))
}

fn get<'r, T>(row: &'r AnyRow, column: &str) -> Result<T>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(|e| Error::Backend(Box::new(e)))
}

/// Reads a boolean column: PostgreSQL has `BOOLEAN`, SQLite stores flags as integers.
fn flag(row: &AnyRow, column: &str) -> Result<bool> {
    match row.try_get::<bool, _>(column) {
        Ok(value) => Ok(value),
        Err(_) => Ok(get::<i64>(row, column)? != 0),
    }
}

/// Decodes the row's `data` document.
fn data<T: DeserializeOwned>(row: &AnyRow, what: &str) -> Result<T> {
    from_json(what, &get::<String>(row, "data")?)
}

fn now_millis() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
