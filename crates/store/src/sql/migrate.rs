//! The schema and its migrator: numbered steps, each applied once in its own transaction and
//! recorded in `schema_migrations`.
//!
//! Several processes may start at once against one PostgreSQL database: every step takes a
//! transaction-scoped advisory lock and re-reads `schema_migrations` under it, so a step runs
//! exactly once. On SQLite the `BEGIN IMMEDIATE` write lock serialises them the same way.

use sqlx::{Any, Transaction};

use super::{Dialect, SqlStore, db, now_millis};
use crate::{Error, Result};

/// The first schema. Written once: the binary and boolean column types are the only
/// spellings the dialects disagree on (SQLite's `BOOLEAN` would not round-trip through sqlx's
/// `Any` driver, so SQLite flags are integers).
macro_rules! schema_v1 {
    ($blob:literal, $flag:literal) => {
        concat!(
            "CREATE TABLE tenant_settings (id BIGINT PRIMARY KEY, data TEXT NOT NULL);

            CREATE TABLE clients (
                client_id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                secret_sha256 ", $blob, ",
                data TEXT NOT NULL
            );

            CREATE TABLE connections (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL);

            CREATE TABLE resource_servers (
                id TEXT PRIMARY KEY,
                identifier TEXT NOT NULL UNIQUE,
                data TEXT NOT NULL
            );

            CREATE TABLE client_grants (
                id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                audience TEXT NOT NULL,
                data TEXT NOT NULL,
                UNIQUE (client_id, audience)
            );

            CREATE TABLE users (
                user_id TEXT PRIMARY KEY,
                connection TEXT NOT NULL,
                email_lower TEXT,
                username_lower TEXT,
                password_hash TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                data TEXT NOT NULL
            );
            CREATE UNIQUE INDEX users_email ON users (connection, email_lower) WHERE email_lower IS NOT NULL;
            CREATE INDEX users_username ON users (connection, username_lower);

            CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                private_pkcs8 ", $blob, " NOT NULL,
                cert_der ", $blob, " NOT NULL,
                created_at BIGINT NOT NULL,
                is_current ", $flag, " NOT NULL,
                rotated_at BIGINT,
                revoked_at BIGINT
            );
            -- The database itself guarantees at most one current key.
            CREATE UNIQUE INDEX signing_keys_current ON signing_keys (is_current) WHERE is_current;

            CREATE TABLE login_transactions (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at BIGINT NOT NULL);
            CREATE INDEX login_transactions_expiry ON login_transactions (expires_at);

            CREATE TABLE auth_codes (
                code_sha256 ", $blob, " PRIMARY KEY,
                grant_doc TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                redeemed_at BIGINT
            );
            CREATE INDEX auth_codes_expiry ON auth_codes (expires_at);

            CREATE TABLE sso_sessions (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                data TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            );
            CREATE INDEX sso_sessions_user ON sso_sessions (user_id);
            CREATE INDEX sso_sessions_expiry ON sso_sessions (expires_at);

            CREATE TABLE refresh_tokens (
                token_sha256 ", $blob, " PRIMARY KEY,
                family TEXT NOT NULL,
                client_id TEXT NOT NULL,
                user_id TEXT NOT NULL,
                grant_doc TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                rotated_at BIGINT,
                revoked ", $flag, " NOT NULL
            );
            CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
            CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);

            CREATE TABLE login_failures (
                user_id TEXT NOT NULL,
                ip TEXT NOT NULL,
                failures BIGINT NOT NULL,
                first_at BIGINT NOT NULL,
                PRIMARY KEY (user_id, ip)
            );

            CREATE TABLE documents (kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id));"
        )
    };
}

/// Indexes for user search (`sql/search.rs`): the two instants the table keeps as columns,
/// lower-cased emails (equality and prefix wildcards), and on PostgreSQL GIN indexes over the
/// JSON subtrees `@?` searches, written exactly as the queries write them.
const SEARCH_INDEXES_SQLITE: &str = "
    CREATE INDEX users_created_at ON users (created_at);
    CREATE INDEX users_updated_at ON users (updated_at);
    CREATE INDEX users_email_lower ON users (email_lower);";
const SEARCH_INDEXES_POSTGRES: &str = "
    CREATE INDEX users_created_at ON users (created_at);
    CREATE INDEX users_updated_at ON users (updated_at);
    CREATE INDEX users_email_lower ON users (email_lower text_pattern_ops);
    CREATE INDEX users_app_metadata ON users USING GIN ((data::jsonb -> 'app_metadata') jsonb_path_ops);
    CREATE INDEX users_user_metadata ON users USING GIN ((data::jsonb -> 'user_metadata') jsonb_path_ops);
    CREATE INDEX users_identities ON users USING GIN ((data::jsonb -> 'identities') jsonb_path_ops);";

/// PostgreSQL keeps the three JSON subtrees searches look into as `jsonb` columns the
/// database derives from the document (stored generated columns: writes stay as they are), with
/// the GIN indexes on them. The expression indexes of step 2 found the candidates, but checking
/// each candidate again (GIN `jsonb_path_ops` is lossy) parsed its whole document from text:
/// ~20 µs a row, most of a search's time. The columns hold the subtree parsed once, at write
/// time. Adding them rewrites the table once. The GIN indexes take new entries at once
/// (`fastupdate = off`): with PostgreSQL's default pending list, every search after a bulk
/// import scanned the unsorted list of recent entries (8 of a search's 17 ms after importing
/// 100,000 users) until a vacuum merged it. SQLite has nothing to change: its `json_each`
/// reads the text either way.
const METADATA_COLUMNS_SQLITE: &str = "SELECT 1;";
const METADATA_COLUMNS_POSTGRES: &str = "
    ALTER TABLE users
        ADD COLUMN app_metadata jsonb GENERATED ALWAYS AS (data::jsonb -> 'app_metadata') STORED,
        ADD COLUMN user_metadata jsonb GENERATED ALWAYS AS (data::jsonb -> 'user_metadata') STORED,
        ADD COLUMN identities jsonb GENERATED ALWAYS AS (data::jsonb -> 'identities') STORED;
    DROP INDEX users_app_metadata;
    DROP INDEX users_user_metadata;
    DROP INDEX users_identities;
    CREATE INDEX users_app_metadata ON users USING GIN (app_metadata jsonb_path_ops) WITH (fastupdate = off);
    CREATE INDEX users_user_metadata ON users USING GIN (user_metadata jsonb_path_ops) WITH (fastupdate = off);
    CREATE INDEX users_identities ON users USING GIN (identities jsonb_path_ops) WITH (fastupdate = off);";

/// Password-reset tickets get their own table (they were `password_ticket` documents), so a
/// password change can delete all of a user's tickets in its transaction; tickets issued
/// before this step are dropped (their mails ask for a new link). Rate-limit windows shared by
/// every node (reset mails per user and per address) live next to them.
macro_rules! tickets_and_rate_limits {
    ($blob:literal) => {
        concat!(
            "CREATE TABLE password_tickets (
                ticket_sha256 ",
            $blob,
            " PRIMARY KEY,
                user_id TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            );
            CREATE INDEX password_tickets_user ON password_tickets (user_id);
            CREATE INDEX password_tickets_expiry ON password_tickets (expires_at);
            DELETE FROM documents WHERE kind = 'password_ticket';

            CREATE TABLE rate_limits (name TEXT PRIMARY KEY, hits BIGINT NOT NULL, expires_at BIGINT NOT NULL);
            CREATE INDEX rate_limits_expiry ON rate_limits (expires_at);"
        )
    };
}

/// Non-rotating refresh tokens record their last use (for the idle lifetime), and grants a
/// replayed authorization code revoked are kept until the tokens they issued have expired.
const GRANT_REVOCATION: &str = "
    ALTER TABLE refresh_tokens ADD COLUMN last_used_at BIGINT;
    CREATE TABLE revoked_grants (grant_id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
    CREATE INDEX revoked_grants_expiry ON revoked_grants (expires_at);";

/// A username signs in like an email, so one connection may give it to one user only; the
/// handlers checked that before writing, which two racing writes (or an import) could both
/// pass. The database now says so. Existing duplicates stop the step before it runs
/// ([`duplicate_usernames`]), naming them, rather than fail on the index.
const UNIQUE_USERNAMES: &str = "
    DROP INDEX users_username;
    CREATE UNIQUE INDEX users_username ON users (connection, username_lower) WHERE username_lower IS NOT NULL;";
const UNIQUE_USERNAMES_STEP: i64 = 6;

/// Typed tables for what lived in the generic `documents` table (actions, versions, trigger
/// bindings, import jobs, federated issuers, `/userinfo` claims) and for the state of federated
/// logins, which sat in `auth_codes` under a key prefix. [`legacy::move_documents`](super::legacy::move_documents) moves the rows
/// in the same transaction, then `documents` goes. Foreign keys hold a version or a binding to
/// its action, so neither can outlive it.
macro_rules! typed_records {
    ($blob:literal) => {
        concat!(
            "CREATE TABLE actions (
                id TEXT PRIMARY KEY,
                created_at TEXT NOT NULL,
                data TEXT NOT NULL,
                secrets TEXT NOT NULL
            );
            CREATE TABLE action_versions (
                id TEXT PRIMARY KEY,
                action_id TEXT NOT NULL REFERENCES actions (id),
                number BIGINT NOT NULL,
                data TEXT NOT NULL,
                secrets TEXT NOT NULL,
                UNIQUE (action_id, number)
            );
            CREATE TABLE trigger_bindings (
                trigger_id TEXT NOT NULL,
                position BIGINT NOT NULL,
                action_id TEXT NOT NULL REFERENCES actions (id),
                data TEXT NOT NULL,
                PRIMARY KEY (trigger_id, position)
            );
            CREATE INDEX trigger_bindings_action ON trigger_bindings (action_id);

            CREATE TABLE import_jobs (
                id TEXT PRIMARY KEY,
                created_at BIGINT NOT NULL,
                heartbeat BIGINT NOT NULL,
                data TEXT NOT NULL,
                users_file TEXT,
                errors TEXT NOT NULL
            );

            CREATE TABLE federated_states (
                state_sha256 ", $blob, " PRIMARY KEY,
                login_transaction TEXT NOT NULL,
                connection TEXT NOT NULL,
                nonce TEXT NOT NULL,
                code_verifier TEXT NOT NULL,
                binding_digest TEXT NOT NULL,
                expires_at BIGINT NOT NULL,
                redeemed_at BIGINT
            );
            CREATE INDEX federated_states_expiry ON federated_states (expires_at);

            CREATE TABLE federated_issuers (user_id TEXT PRIMARY KEY, connection TEXT NOT NULL, issuer TEXT NOT NULL);

            CREATE TABLE userinfo_claims (id TEXT PRIMARY KEY, data TEXT NOT NULL);"
        )
    };
}
const TYPED_RECORDS_STEP: i64 = 7;
/// Roles and permissions (RBAC) as typed tables. Each assignment names what it hangs on with
/// a foreign key that cascades, so deleting a role, a user or an API takes its assignments
/// along in the database itself, whichever path deletes it (a connection's users go with the
/// connection); a user created again under the same id starts with none. A permission names
/// its API by identifier, the audience a token request sends, so the token endpoint's lookup
/// (`permissions_for`) is one query on two primary keys. Removing a scope from an API is
/// `put_resource_server`'s to follow (scopes live in the API's document).
const RBAC: &str = "
    CREATE TABLE roles (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        name_lower TEXT NOT NULL,
        description TEXT
    );
    CREATE TABLE role_permissions (
        role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        resource_server TEXT NOT NULL
            REFERENCES resource_servers (identifier) ON DELETE CASCADE ON UPDATE CASCADE,
        permission TEXT NOT NULL,
        PRIMARY KEY (role_id, resource_server, permission)
    );
    CREATE INDEX role_permissions_scope ON role_permissions (resource_server, permission);
    CREATE TABLE user_roles (
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        role_id TEXT NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
        PRIMARY KEY (user_id, role_id)
    );
    CREATE INDEX user_roles_role ON user_roles (role_id, user_id);
    CREATE TABLE user_permissions (
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        resource_server TEXT NOT NULL
            REFERENCES resource_servers (identifier) ON DELETE CASCADE ON UPDATE CASCADE,
        permission TEXT NOT NULL,
        PRIMARY KEY (user_id, resource_server, permission)
    );
    CREATE INDEX user_permissions_scope ON user_permissions (resource_server, permission);";
/// The tenant log (`crate::logs`): one typed column per field Auth0's log search names, and an
/// index for the searches that must stay fast on a large log, ending in `log_id` so a page
/// comes off the index in order (`type:fp` newest first, a user's events; a checkpoint is the
/// primary key). `date` alone serves date ranges and the retention purge. Every index is paid
/// by every login's insert, so other fields (client, address, connection) are searched by
/// walking `log_id` order. Step 9: steps 7 and 8 are other features' (numbered on their
/// branches).
const LOG_EVENTS: &str = "
    CREATE TABLE log_events (
        log_id TEXT PRIMARY KEY,
        date BIGINT NOT NULL,
        event_type TEXT NOT NULL,
        description TEXT,
        client_id TEXT,
        client_name TEXT,
        ip TEXT,
        user_agent TEXT,
        user_id TEXT,
        user_name TEXT,
        connection TEXT,
        connection_id TEXT,
        strategy TEXT,
        strategy_type TEXT,
        audience TEXT,
        scope TEXT,
        hostname TEXT,
        details TEXT
    );
    CREATE INDEX log_events_date ON log_events (date);
    CREATE INDEX log_events_type ON log_events (event_type, log_id);
    CREATE INDEX log_events_user ON log_events (user_id, log_id);";

/// The user-lifecycle tools of the Management API: a user's refresh tokens are listed and
/// revoked by user (an index on `user_id`); consent grants, one per user, client and audience,
/// go with their user or client; a linked identity names the user it now signs into, at most
/// one (the primary key refuses linking it twice), and keeps the login names and password
/// hash of a database identity, which still sign in (as the user it is linked into).
const USER_LIFECYCLE: &str = "
    CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
    CREATE TABLE user_grants (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        client_id TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
        audience TEXT NOT NULL,
        scope TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (user_id, client_id, audience)
    );
    CREATE INDEX user_grants_client ON user_grants (client_id, audience);
    CREATE TABLE linked_identities (
        provider TEXT NOT NULL,
        identity_id TEXT NOT NULL,
        primary_user_id TEXT NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
        connection TEXT NOT NULL,
        email_lower TEXT,
        username_lower TEXT,
        password_hash TEXT,
        PRIMARY KEY (provider, identity_id)
    );
    CREATE INDEX linked_identities_primary ON linked_identities (primary_user_id);
    CREATE INDEX linked_identities_email ON linked_identities (connection, email_lower);
    CREATE INDEX linked_identities_username ON linked_identities (connection, username_lower);";
/// Who may use the admin console, and with which role: a table of its own, so no tenant record
/// (a user's metadata, a group, a role, an Action's output) can make anyone an administrator.
const CONSOLE_ADMINS: &str = "
    CREATE TABLE console_admins (
        user_id TEXT PRIMARY KEY REFERENCES users (user_id) ON DELETE CASCADE,
        role TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );";
/// Outgoing mail (`crate::mail`): the queue (a partial index finds what is due without
/// walking what was sent), the one email provider, templates by name. Step 11: step 10 is
/// another feature's (numbered on its branch). Tickets (verification links and what a
/// password-change ticket does afterwards) are kept by their digest.
macro_rules! mail {
    ($blob:literal) => {
        concat!(
            "
    CREATE TABLE mail_queue (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        attempts BIGINT NOT NULL,
        next_attempt_at BIGINT NOT NULL,
        claim TEXT,
        lease_until BIGINT,
        sent_at BIGINT,
        failed_at BIGINT,
        last_error TEXT
    );
    CREATE INDEX mail_queue_due ON mail_queue (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
    CREATE INDEX mail_queue_done ON mail_queue (sent_at);
    CREATE TABLE email_provider (id BIGINT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE email_templates (name TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE email_tickets (
        ticket_sha256 ",
            $blob,
            " PRIMARY KEY,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        used_at BIGINT,
        data TEXT NOT NULL
    );
    CREATE INDEX email_tickets_expiry ON email_tickets (expires_at);"
        )
    };
}
/// The tenant log's other searched fields: Auth0's log search is mostly "this application's",
/// "this address's" or "this connection's" events, newest first, and without an index each is a
/// walk of the whole log in `log_id` order that finds a rare value only at the end. Like step
/// 9's, each index ends in `log_id`, so a page comes off it in order and stops at its limit.
/// Step 10, with the log streams (`crate::logs::LogStream`): settings as JSON, the sealed
/// authorization apart, and the delivery's cursor and failure start in their own columns, so
/// the delivery moves them without rewriting the settings.
const LOG_EVENT_INDEXES_AND_STREAMS: &str = "
    CREATE INDEX log_events_client ON log_events (client_id, log_id);
    CREATE INDEX log_events_ip ON log_events (ip, log_id);
    CREATE INDEX log_events_connection ON log_events (connection, log_id);
    CREATE TABLE log_streams (
        id TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        status TEXT NOT NULL,
        authorization_sealed TEXT,
        cursor BIGINT NOT NULL,
        failing_since BIGINT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        lease_owner TEXT,
        lease_until BIGINT
    );
    ALTER TABLE log_events ADD COLUMN seq BIGINT;
    UPDATE log_events SET seq = r.n
        FROM (SELECT log_id, ROW_NUMBER() OVER (ORDER BY log_id) AS n FROM log_events) r
        WHERE log_events.log_id = r.log_id;
    CREATE UNIQUE INDEX log_events_seq ON log_events (seq);
    CREATE TABLE log_sequence (id INTEGER PRIMARY KEY, last BIGINT NOT NULL);
    INSERT INTO log_sequence (id, last) SELECT 1, COALESCE(MAX(seq), 0) FROM log_events;";

/// Step 14: the user list's default order is `user_id` compared by code point (`COLLATE "C"`,
/// so both databases page alike), which the primary key serves only when the database's own
/// collation is "C": under any other (even `C.UTF-8`) PostgreSQL sorted every user to return
/// one page, ~35 ms at 100,000 users. An index in that collation lets a page stop at its
/// limit. SQLite's primary key compares bytes already, so it needs nothing.
const USER_ID_ORDER_POSTGRES: &str = "CREATE INDEX users_user_id_c ON users (user_id COLLATE \"C\");";
const USER_ID_ORDER_SQLITE: &str = "SELECT 1;";

/// `(version, SQLite SQL, PostgreSQL SQL)`, in order. Never edit a released step: add one.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, schema_v1!("BLOB", "INTEGER"), schema_v1!("BYTEA", "BOOLEAN")),
    (2, SEARCH_INDEXES_SQLITE, SEARCH_INDEXES_POSTGRES),
    (3, METADATA_COLUMNS_SQLITE, METADATA_COLUMNS_POSTGRES),
    (4, tickets_and_rate_limits!("BLOB"), tickets_and_rate_limits!("BYTEA")),
    (5, GRANT_REVOCATION, GRANT_REVOCATION),
    (UNIQUE_USERNAMES_STEP, UNIQUE_USERNAMES, UNIQUE_USERNAMES),
    (TYPED_RECORDS_STEP, typed_records!("BLOB"), typed_records!("BYTEA")),
    (8, RBAC, RBAC),
    (9, LOG_EVENTS, LOG_EVENTS),
    (10, LOG_EVENT_INDEXES_AND_STREAMS, LOG_EVENT_INDEXES_AND_STREAMS),
    (11, mail!("BLOB"), mail!("BYTEA")),
    (12, USER_LIFECYCLE, USER_LIFECYCLE),
    (13, CONSOLE_ADMINS, CONSOLE_ADMINS),
    (14, USER_ID_ORDER_SQLITE, USER_ID_ORDER_POSTGRES),
];

/// Key of the advisory lock migrations hold on PostgreSQL ("gate" in ASCII).
const MIGRATION_LOCK: i64 = 0x6761_7465;

/// Creates `schema` (PostgreSQL) and `schema_migrations` when absent, then applies every
/// step not yet recorded.
pub(super) async fn run(store: &SqlStore, schema: Option<&str>) -> Result<()> {
    let mut tx = store.begin_write().await?;
    lock(store.dialect, &mut tx).await?;
    if let Some(schema) = schema {
        // Validated by `connect_in_schema`.
        let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
        sqlx::raw_sql(&create).execute(&mut *tx).await.map_err(db("schema"))?;
    }
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *tx)
    .await
    .map_err(db("schema_migrations"))?;
    tx.commit().await.map_err(db("migration"))?;

    for &(version, sqlite, postgres) in MIGRATIONS {
        let mut tx = store.begin_write().await?;
        lock(store.dialect, &mut tx).await?;
        // Checked under the lock: another process may have applied it while we waited.
        let applied = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("migration"))?
            .is_some();
        if !applied && version == UNIQUE_USERNAMES_STEP {
            duplicate_usernames(&mut tx).await?;
        }
        if !applied {
            let sql = match store.dialect {
                Dialect::Sqlite => sqlite,
                Dialect::Postgres => postgres,
            };
            sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(db("migration"))?;
            if version == TYPED_RECORDS_STEP {
                super::legacy::move_documents(&mut tx).await?;
            }
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(now_millis())
                .execute(&mut *tx)
                .await
                .map_err(db("migration"))?;
            tracing::info!(version, "applying store migration");
        }
        tx.commit().await.map_err(db("migration"))?;
    }
    Ok(())
}

/// Fails, naming each username that more than one user of a connection holds (and those
/// users), when there is any: an operator renames all but one (`PATCH /api/v2/users/{id}`
/// with another `username`, on the version that wrote them) and starts again.
async fn duplicate_usernames(tx: &mut Transaction<'static, Any>) -> Result<()> {
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT u.connection, u.username_lower, u.user_id FROM users u
         JOIN (SELECT connection, username_lower FROM users WHERE username_lower IS NOT NULL
               GROUP BY connection, username_lower HAVING COUNT(*) > 1) d
           ON d.connection = u.connection AND d.username_lower = u.username_lower
         ORDER BY u.connection, u.username_lower, u.user_id
         LIMIT 1000",
    )
    .fetch_all(&mut **tx)
    .await
    .map_err(db("migration"))?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut taken: Vec<(String, String, Vec<String>)> = Vec::new();
    for (connection, username, user_id) in rows {
        match taken.last_mut() {
            Some((c, u, ids)) if *c == connection && *u == username => ids.push(user_id),
            _ => taken.push((connection, username, vec![user_id])),
        }
    }
    let list: Vec<String> = taken
        .iter()
        .map(|(connection, username, ids)| format!("{username:?} in {connection} ({})", ids.join(", ")))
        .collect();
    Err(Error::Migration(format!(
        "usernames must be unique within a connection, and these are held by more than one user: {}; \
         give all but one of each another username, then start again",
        list.join("; ")
    )))
}

/// Serialises migrators on PostgreSQL until the transaction ends; SQLite's `BEGIN IMMEDIATE`
/// already did.
async fn lock(dialect: Dialect, tx: &mut Transaction<'static, Any>) -> Result<()> {
    if dialect == Dialect::Postgres {
        // `FROM` keeps the function's `void` result out of the row, which `Any` cannot decode.
        sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut **tx)
            .await
            .map_err(db("migration lock"))?;
    }
    Ok(())
}
