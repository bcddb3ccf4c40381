//! [`LogStore`] as SQL: batched inserts, a log query translated to a `WHERE` clause with bound
//! values (never the caller's text in the statement), pages that come off the
//! `(column, log_id)` indexes in order, and the retention purge in bounded batches.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::query;

use super::{Dialect, SqlStore, db, from_json, get, to_json};
use crate::logs::{
    LogEvent, LogField, LogPage, LogPaging, LogQuery, LogSearch, LogStore, LogStream, MAX_SEARCH_RESULTS, Match,
};
use crate::{Error, Millis, Result};

const COLUMNS: &str = "log_id, date, event_type, description, client_id, client_name, ip, user_agent, user_id, \
     user_name, connection, connection_id, strategy, strategy_type, audience, scope, hostname, details";
/// The inserted columns: [`COLUMNS`] and `seq`.
const COLUMN_COUNT: usize = 19;
/// Rows per `INSERT`. On SQLite the statement uses anonymous `?` parameters: sqlx binds each
/// parameter after asking `sqlite3_bind_parameter_name`, and for numbered ones (`$n`) SQLite
/// finds the name by walking the statement's list of names (parsing them does the same), so a
/// statement cost the square of its parameters: 200 rows (3,600 `$n`) a statement cost the idp
/// a third of its client-credentials throughput on one core. Anonymous ones have no name to
/// look up. PostgreSQL needs `$n` and has no such cost. Full chunks are one statement text built
/// once and prepared once per connection (persistent); a remainder is prepared for its one use.
const SQLITE_INSERT_ROWS: usize = 100;
const POSTGRES_INSERT_ROWS: usize = 250;

enum Arg {
    Text(String),
    Int(i64),
}

#[async_trait]
impl LogStore for SqlStore {
    async fn append_logs(&self, events: &[LogEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        // The events' positions, taken first: the row stays locked until this commit (SQLite
        // has one writer anyway), so positions become visible in order (see `logs_after`).
        let last: i64 = sqlx::query_scalar("UPDATE log_sequence SET last = last + $1 WHERE id = 1 RETURNING last")
            .bind(events.len() as i64)
            .fetch_one(&mut *tx)
            .await
            .map_err(db("log events"))?;
        let mut seq = last - events.len() as i64;
        static SQLITE_FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        static POSTGRES_FULL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let (rows, full) = match self.dialect {
            Dialect::Sqlite => (SQLITE_INSERT_ROWS, &SQLITE_FULL),
            Dialect::Postgres => (POSTGRES_INSERT_ROWS, &POSTGRES_FULL),
        };
        for chunk in events.chunks(rows) {
            let partial;
            let sql = if chunk.len() == rows {
                full.get_or_init(|| insert_sql(self.dialect, rows))
            } else {
                partial = insert_sql(self.dialect, chunk.len());
                &partial
            };
            let mut q = query(sql).persistent(chunk.len() == rows);
            for e in chunk {
                let details = e.details.as_ref().map(|d| d.to_string());
                q = q
                    .bind(e.log_id.clone())
                    .bind(e.date)
                    .bind(e.event_type.clone())
                    .bind(e.description.clone())
                    .bind(e.client_id.clone())
                    .bind(e.client_name.clone())
                    .bind(e.ip.clone())
                    .bind(e.user_agent.clone())
                    .bind(e.user_id.clone())
                    .bind(e.user_name.clone())
                    .bind(e.connection.clone())
                    .bind(e.connection_id.clone())
                    .bind(e.strategy.clone())
                    .bind(e.strategy_type.clone())
                    .bind(e.audience.clone())
                    .bind(e.scope.clone())
                    .bind(e.hostname.clone())
                    .bind(details);
                seq += 1;
                q = q.bind(seq);
            }
            q.execute(&mut *tx).await.map_err(db("log events"))?;
        }
        tx.commit().await.map_err(db("log events"))
    }

    async fn log_event(&self, log_id: &str) -> Result<Option<LogEvent>> {
        let sql = format!("SELECT {COLUMNS} FROM log_events WHERE log_id = $1");
        let row = self.row("log event", query(&sql).bind(log_id)).await?;
        row.as_ref().map(event).transpose()
    }

    async fn search_logs(&self, search: &LogSearch) -> Result<LogPage> {
        let mut args = Vec::new();
        let mut filter = condition(&search.query, self.dialect, &mut args);
        let (order, limit, offset, totals) = match &search.paging {
            LogPaging::Page { page, per_page, totals, newest_first } => {
                let offset = u64::from(*page) * u64::from(*per_page);
                let limit = u64::from(*per_page).min(MAX_SEARCH_RESULTS.saturating_sub(offset));
                (if *newest_first { "log_id DESC" } else { "log_id ASC" }, limit, offset, *totals)
            }
            LogPaging::From { from, take } => {
                // Commit order, as log streams read it: a node's batch can commit after another's
                // with smaller ids, and a reader following `from` must still get it. A `from`
                // that is not stored (purged) starts before the first event with a later id.
                if let Some(from) = from {
                    args.push(Arg::Text(from.clone()));
                    let n = args.len();
                    filter = format!(
                        "({filter}) AND seq > COALESCE(
                             (SELECT seq FROM log_events WHERE log_id = ${n}),
                             (SELECT MIN(seq) - 1 FROM log_events WHERE log_id > ${n}),
                             (SELECT last FROM log_sequence WHERE id = 1))"
                    );
                }
                ("seq ASC", u64::from(*take), 0, false)
            }
        };
        let events = if limit == 0 {
            Vec::new()
        } else {
            let sql = format!(
                "SELECT {COLUMNS} FROM log_events WHERE {filter} ORDER BY {order} LIMIT {limit} OFFSET {offset}"
            );
            let rows = self.rows("log search", bind(self.dialect, &sql, &args)).await?;
            rows.iter().map(event).collect::<Result<Vec<_>>>()?
        };
        let total = if totals {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM log_events WHERE {filter} LIMIT {MAX_SEARCH_RESULTS}) t"
            );
            let row = self.row("log count", bind(self.dialect, &sql, &args)).await?;
            Some(row.map(|r| get::<i64>(&r, "n")).transpose()?.unwrap_or(0) as u64)
        } else {
            None
        };
        Ok(LogPage { events, total })
    }

    async fn purge_logs(&self, before: Millis, limit: u32) -> Result<u64> {
        let q = query(
            "DELETE FROM log_events WHERE log_id IN
             (SELECT log_id FROM log_events WHERE date < $1 ORDER BY date LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit));
        self.exec("log retention", q).await
    }

    async fn logs_after(&self, position: i64, take: u32) -> Result<Vec<(i64, LogEvent)>> {
        let sql = format!("SELECT seq, {COLUMNS} FROM log_events WHERE seq > $1 ORDER BY seq LIMIT $2");
        let rows = self.rows("log events after", query(&sql).bind(position).bind(i64::from(take))).await?;
        rows.iter().map(|r| Ok((get::<i64>(r, "seq")?, event(r)?))).collect()
    }

    async fn log_position(&self, after: Option<&str>) -> Result<i64> {
        let end = || async {
            let row = self.row("log position", query("SELECT last FROM log_sequence WHERE id = 1")).await?;
            row.map(|r| get::<i64>(&r, "last")).transpose().map(|l| l.unwrap_or(0))
        };
        let Some(after) = after else { return end().await };
        let q = query("SELECT MIN(seq) AS first FROM log_events WHERE log_id > $1").bind(after);
        let first = self.row("log position", q).await?.map(|r| get::<Option<i64>>(&r, "first")).transpose()?.flatten();
        match first {
            Some(first) => Ok(first - 1),
            None => end().await,
        }
    }

    async fn log_streams(&self) -> Result<Vec<LogStream>> {
        let sql = format!("SELECT {STREAM_COLUMNS} FROM log_streams ORDER BY created_at, id");
        let rows = self.rows("log streams", query(&sql)).await?;
        rows.iter().map(stream).collect()
    }

    async fn log_stream(&self, id: &str) -> Result<Option<LogStream>> {
        let sql = format!("SELECT {STREAM_COLUMNS} FROM log_streams WHERE id = $1");
        let row = self.row("log stream", query(&sql).bind(id)).await?;
        row.as_ref().map(stream).transpose()
    }

    async fn create_log_stream(&self, s: &LogStream) -> Result<()> {
        let q = query(
            "INSERT INTO log_streams (id, data, status, authorization_sealed, cursor, failing_since, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(s.id.clone())
        .bind(to_json(&s.config)?)
        .bind(s.status.clone())
        .bind(s.authorization_sealed.clone())
        .bind(s.cursor)
        .bind(s.failing_since)
        .bind(s.created_at)
        .bind(s.updated_at);
        self.write("log stream", q).await
    }

    async fn update_log_stream(&self, s: &LogStream) -> Result<bool> {
        let q = query(
            "UPDATE log_streams SET data = $2, status = $3, authorization_sealed = $4, failing_since = $5,
             updated_at = $6 WHERE id = $1",
        )
        .bind(s.id.clone())
        .bind(to_json(&s.config)?)
        .bind(s.status.clone())
        .bind(s.authorization_sealed.clone())
        .bind(s.failing_since)
        .bind(s.updated_at);
        Ok(self.exec("log stream", q).await? > 0)
    }

    async fn delete_log_stream(&self, id: &str) -> Result<bool> {
        self.remove("log stream", query("DELETE FROM log_streams WHERE id = $1").bind(id)).await
    }

    async fn claim_log_stream(&self, id: &str, owner: &str, now: Millis, until: Millis) -> Result<bool> {
        // Atomic on both databases: PostgreSQL re-checks the condition on the row a concurrent
        // claim just updated (read committed), and SQLite runs one writer at a time.
        let q = query(
            "UPDATE log_streams SET lease_owner = $2, lease_until = $4
             WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2 OR lease_until IS NULL OR lease_until <= $3)",
        )
        .bind(id)
        .bind(owner)
        .bind(now)
        .bind(until);
        Ok(self.exec("log stream lease", q).await? > 0)
    }

    async fn log_stream_progress(
        &self,
        id: &str,
        owner: &str,
        cursor: i64,
        failing_since: Option<Millis>,
        suspend: bool,
    ) -> Result<bool> {
        let q = query(
            "UPDATE log_streams SET cursor = $2, failing_since = $3,
             status = CASE WHEN $4 = 1 AND status = 'active' THEN 'suspended' ELSE status END
             WHERE id = $1 AND lease_owner = $5",
        )
        .bind(id)
        .bind(cursor)
        .bind(failing_since)
        .bind(i64::from(suspend))
        .bind(owner);
        Ok(self.exec("log stream", q).await? > 0)
    }
}

const STREAM_COLUMNS: &str =
    "id, data, status, authorization_sealed, cursor, failing_since, created_at, updated_at, lease_owner, lease_until";

fn stream(row: &AnyRow) -> Result<LogStream> {
    Ok(LogStream {
        id: get(row, "id")?,
        config: from_json("log stream", &get::<String>(row, "data")?)?,
        status: get(row, "status")?,
        authorization_sealed: get(row, "authorization_sealed")?,
        cursor: get(row, "cursor")?,
        failing_since: get(row, "failing_since")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
        lease_owner: get(row, "lease_owner")?,
        lease_until: get(row, "lease_until")?,
    })
}

/// `INSERT … VALUES ($1, …, $18), ($19, …), …` for `rows` events (`?` for each on SQLite); an
/// event already stored (a retried batch) is skipped.
fn insert_sql(dialect: Dialect, rows: usize) -> String {
    let mut sql = format!("INSERT INTO log_events ({COLUMNS}, seq) VALUES ");
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=COLUMN_COUNT {
            if c > 1 {
                sql.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => sql.push_str(&format!("${}", r * COLUMN_COUNT + c)),
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT (log_id) DO NOTHING");
    sql
}

/// A search statement: on PostgreSQL unnamed, planned with its values (see `search_query` in
/// `queries.rs` for why a cached generic plan would serve searches badly).
fn bind<'q>(dialect: Dialect, sql: &'q str, args: &[Arg]) -> super::Query<'q> {
    let mut q = query(sql).persistent(dialect != Dialect::Postgres);
    for a in args {
        q = match a {
            Arg::Text(t) => q.bind(t.clone()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

/// The `WHERE` clause of a query; values go to `args` as `$n`. A `NOT` also holds where the
/// field is absent (Lucene's `NOT x` matches documents without `x`), so SQL's unknown counts as
/// not matching.
fn condition(q: &LogQuery, dialect: Dialect, args: &mut Vec<Arg>) -> String {
    let push = |a: Arg, args: &mut Vec<Arg>| {
        args.push(a);
        format!("${}", args.len())
    };
    match q {
        LogQuery::All => "1 = 1".into(),
        LogQuery::And(all) => {
            let parts: Vec<String> = all.iter().map(|q| condition(q, dialect, args)).collect();
            format!("({})", parts.join(" AND "))
        }
        LogQuery::Or(any) => {
            let parts: Vec<String> = any.iter().map(|q| condition(q, dialect, args)).collect();
            format!("({})", parts.join(" OR "))
        }
        LogQuery::Not(inner) => format!("NOT COALESCE(({}), 1 = 0)", condition(inner, dialect, args)),
        LogQuery::Exists(field) => format!("{} IS NOT NULL", field.column()),
        LogQuery::Match(field, m) => {
            let column = field.column();
            match m {
                // The parser turns dates into spans; a raw one matches nothing.
                Match::Exact(_) if *field == LogField::Date => "1 = 0".into(),
                Match::Exact(v) => format!("{column} = {}", push(Arg::Text(v.clone()), args)),
                Match::Like(p) => {
                    // Case-insensitive on both databases (SQLite's LIKE already is).
                    let op = if dialect == Dialect::Postgres { "ILIKE" } else { "LIKE" };
                    format!("{column} {op} {} ESCAPE '\\'", push(Arg::Text(p.clone()), args))
                }
                Match::Between(min, max) => {
                    let mut parts = Vec::new();
                    if let Some(min) = min {
                        parts.push(format!("{column} >= {}", push(Arg::Int(*min), args)));
                    }
                    if let Some(max) = max {
                        parts.push(format!("{column} < {}", push(Arg::Int(*max), args)));
                    }
                    if parts.is_empty() { "1 = 1".into() } else { format!("({})", parts.join(" AND ")) }
                }
            }
        }
    }
}

fn event(row: &AnyRow) -> Result<LogEvent> {
    let text = |c: &str| get::<Option<String>>(row, c);
    let details = match text("details")? {
        Some(d) => Some(serde_json::from_str(&d).map_err(|e| Error::Corrupt(format!("log event details: {e}")))?),
        None => None,
    };
    Ok(LogEvent {
        log_id: get(row, "log_id")?,
        date: get(row, "date")?,
        event_type: get(row, "event_type")?,
        description: text("description")?,
        client_id: text("client_id")?,
        client_name: text("client_name")?,
        ip: text("ip")?,
        user_agent: text("user_agent")?,
        user_id: text("user_id")?,
        user_name: text("user_name")?,
        connection: text("connection")?,
        connection_id: text("connection_id")?,
        strategy: text("strategy")?,
        strategy_type: text("strategy_type")?,
        audience: text("audience")?,
        scope: text("scope")?,
        hostname: text("hostname")?,
        details,
    })
}
