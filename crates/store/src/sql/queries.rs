//! The [`Store`] methods as SQL. Configuration records are one JSON `data` column next to the
//! few columns lookups and unique keys need; short-lived grants keep their fields as columns
//! so redemption and rotation can be single conditional `UPDATE`s.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::query;

use super::{Dialect, Query, SqlStore, data, db, flag, from_json, get, rbac, search, to_json};
use crate::model::*;
use crate::search::{MAX_RESULTS, UserPage, UserSearch};
use crate::{Error, Result, Store};

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        self.write("ping", query("SELECT 1")).await
    }

    // --- tenant

    async fn tenant_settings(&self) -> Result<TenantSettings> {
        let q = query("SELECT data FROM tenant_settings WHERE id = 1");
        Ok(self.doc("tenant settings", q).await?.unwrap_or_default())
    }

    async fn put_tenant_settings(&self, settings: &TenantSettings) -> Result<()> {
        let q = query(
            "INSERT INTO tenant_settings (id, data) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
        )
        .bind(to_json(settings)?);
        self.write("tenant settings", q).await
    }

    // --- clients

    async fn client(&self, client_id: &str) -> Result<Option<StoredClient>> {
        let q = query("SELECT data, secret_sha256 FROM clients WHERE client_id = $1").bind(client_id);
        let row = self.row("client", q).await?;
        row.as_ref().map(stored_client).transpose()
    }

    async fn clients(&self) -> Result<Vec<StoredClient>> {
        let q = query("SELECT data, secret_sha256 FROM clients ORDER BY client_id");
        let rows = self.rows("client", q).await?;
        rows.iter().map(stored_client).collect()
    }

    async fn put_client(&self, client: &StoredClient) -> Result<()> {
        let q = query(
            "INSERT INTO clients (client_id, name, secret_sha256, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id) DO UPDATE SET name = excluded.name, data = excluded.data,
                 secret_sha256 = COALESCE(excluded.secret_sha256, clients.secret_sha256)",
        )
        .bind(&client.client.client_id)
        .bind(&client.client.name)
        .bind(client.secret_sha256.as_deref())
        .bind(to_json(&client.client)?);
        self.write(&format!("client {}", client.client.client_id), q).await
    }

    async fn create_client(&self, client: &StoredClient, enable_on_connections: bool) -> Result<()> {
        let id = &client.client.client_id;
        let what = format!("client {id}");
        let mut tx = self.begin_write().await?;
        let inserted = query(
            "INSERT INTO clients (client_id, name, secret_sha256, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(id)
        .bind(&client.client.name)
        .bind(client.secret_sha256.as_deref())
        .bind(to_json(&client.client)?)
        .execute(&mut *tx)
        .await
        .map_err(db(&what))?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await.map_err(db(&what))?;
            return Err(Error::Conflict(what));
        }
        if enable_on_connections {
            self.change_connections(&mut tx, |c| {
                let enable = !c.enabled_for(id);
                if enable {
                    c.enabled_clients.push(id.clone());
                }
                enable
            })
            .await?;
        }
        tx.commit().await.map_err(db(&what))
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool> {
        let what = format!("client {client_id}");
        let mut tx = self.begin_write().await?;
        let removed = query("DELETE FROM clients WHERE client_id = $1")
            .bind(client_id)
            .execute(&mut *tx)
            .await
            .map_err(db(&what))?
            .rows_affected();
        if removed == 0 {
            tx.rollback().await.map_err(db(&what))?;
            return Ok(false);
        }
        for sql in [
            "DELETE FROM client_grants WHERE client_id = $1",
            "UPDATE refresh_tokens SET revoked = TRUE WHERE client_id = $1 AND NOT revoked",
        ] {
            query(sql).bind(client_id).execute(&mut *tx).await.map_err(db(&what))?;
        }
        self.change_connections(&mut tx, |c| {
            let enabled = c.enabled_for(client_id);
            c.enabled_clients.retain(|x| x != client_id);
            enabled
        })
        .await?;
        tx.commit().await.map_err(db(&what))?;
        Ok(true)
    }

    // --- connections

    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        let q = query("SELECT data FROM connections WHERE id = $1").bind(id);
        self.doc("connection", q).await
    }

    async fn connection_by_name(&self, name: &str) -> Result<Option<Connection>> {
        let q = query("SELECT data FROM connections WHERE name = $1").bind(name);
        self.doc("connection", q).await
    }

    async fn connections(&self) -> Result<Vec<Connection>> {
        let q = query("SELECT data FROM connections ORDER BY name");
        self.docs("connection", q).await
    }

    async fn put_connection(&self, connection: &Connection) -> Result<()> {
        let q = query(
            "INSERT INTO connections (id, name, data) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, data = excluded.data",
        )
        .bind(&connection.id)
        .bind(&connection.name)
        .bind(to_json(connection)?);
        self.write(&format!("connection {}", connection.name), q).await
    }

    async fn delete_connection(&self, id: &str) -> Result<Option<u64>> {
        let mut tx = self.begin_write().await?;
        let row = query("DELETE FROM connections WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("connection"))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(db("connection"))?;
            return Ok(None);
        };
        let name: String = get(&row, "name")?;
        let users = "IN (SELECT user_id FROM users WHERE connection = $1)";
        end_credentials(&mut tx, users, &name).await?;
        forget_issuers(&mut tx, users, &name).await?;
        // The connection's identities linked into other users go too, with their issuers and
        // their entries in those users' `identities`.
        let linked = "IN (SELECT provider || '|' || identity_id FROM linked_identities WHERE connection = $1)";
        forget_issuers(&mut tx, linked, &name).await?;
        self.drop_linked_identities_of(&mut tx, &name).await?;
        query("DELETE FROM linked_identities WHERE connection = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(db("linked identities"))?;
        // One statement for both dialects, on the `(connection, …)` indexes.
        let users = query("DELETE FROM users WHERE connection = $1")
            .bind(&name)
            .execute(&mut *tx)
            .await
            .map_err(db("connection users"))?
            .rows_affected();
        tx.commit().await.map_err(db("connection"))?;
        Ok(Some(users))
    }

    // --- resource servers

    async fn resource_server(&self, id: &str) -> Result<Option<ResourceServer>> {
        let q = query("SELECT data FROM resource_servers WHERE id = $1").bind(id);
        self.doc("resource server", q).await
    }

    async fn resource_server_by_identifier(&self, identifier: &str) -> Result<Option<ResourceServer>> {
        let q = query("SELECT data FROM resource_servers WHERE identifier = $1").bind(identifier);
        self.doc("resource server", q).await
    }

    async fn resource_servers(&self) -> Result<Vec<ResourceServer>> {
        let q = query("SELECT data FROM resource_servers ORDER BY identifier");
        self.docs("resource server", q).await
    }

    async fn put_resource_server(&self, rs: &ResourceServer) -> Result<()> {
        let what = format!("resource server {}", rs.identifier);
        let mut tx = self.begin_write().await?;
        query(
            "INSERT INTO resource_servers (id, identifier, data) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET identifier = excluded.identifier, data = excluded.data",
        )
        .bind(&rs.id)
        .bind(&rs.identifier)
        .bind(to_json(rs)?)
        .execute(&mut *tx)
        .await
        .map_err(db(&what))?;
        rbac::drop_removed_scopes(&mut tx, &rs.identifier, &rs.scopes).await?;
        tx.commit().await.map_err(db(&what))
    }

    async fn delete_resource_server(&self, id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let row = query("DELETE FROM resource_servers WHERE id = $1 RETURNING identifier")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("resource server"))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(db("resource server"))?;
            return Ok(false);
        };
        let identifier: String = get(&row, "identifier")?;
        query("DELETE FROM client_grants WHERE audience = $1")
            .bind(&identifier)
            .execute(&mut *tx)
            .await
            .map_err(db("client grants"))?;
        tx.commit().await.map_err(db("resource server"))?;
        Ok(true)
    }

    // --- client grants

    async fn client_grant(&self, id: &str) -> Result<Option<ClientGrant>> {
        let q = query("SELECT data FROM client_grants WHERE id = $1").bind(id);
        self.doc("client grant", q).await
    }

    async fn client_grant_for(&self, client_id: &str, audience: &str) -> Result<Option<ClientGrant>> {
        let q = query("SELECT data FROM client_grants WHERE client_id = $1 AND audience = $2")
            .bind(client_id)
            .bind(audience);
        self.doc("client grant", q).await
    }

    async fn client_grants(&self) -> Result<Vec<ClientGrant>> {
        let q = query("SELECT data FROM client_grants ORDER BY client_id, audience");
        self.docs("client grant", q).await
    }

    async fn put_client_grant(&self, grant: &ClientGrant) -> Result<()> {
        let q = query(
            "INSERT INTO client_grants (id, client_id, audience, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET client_id = excluded.client_id,
                 audience = excluded.audience, data = excluded.data",
        )
        .bind(&grant.id)
        .bind(&grant.client_id)
        .bind(&grant.audience)
        .bind(to_json(grant)?);
        let what = format!("client grant for {} and {}", grant.client_id, grant.audience);
        self.write(&what, q).await
    }

    async fn delete_client_grant(&self, id: &str) -> Result<bool> {
        let q = query("DELETE FROM client_grants WHERE id = $1").bind(id);
        self.remove("client grant", q).await
    }

    // --- roles and permissions (in `rbac.rs`)

    async fn role(&self, id: &str) -> Result<Option<Role>> {
        self.rbac_role(id).await
    }
    async fn roles(&self, name_filter: Option<&str>, page: Page) -> Result<Paged<Role>> {
        self.rbac_roles(name_filter, page).await
    }
    async fn create_role(&self, role: &Role) -> Result<()> {
        self.rbac_create_role(role).await
    }
    async fn update_role(&self, role: &Role) -> Result<()> {
        self.rbac_update_role(role).await
    }
    async fn delete_role(&self, id: &str) -> Result<bool> {
        self.rbac_delete_role(id).await
    }
    async fn role_permissions(&self, role_id: &str, page: Page) -> Result<Paged<Permission>> {
        self.rbac_role_permissions(role_id, page).await
    }
    async fn add_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        self.rbac_add_role_permissions(role_id, permissions).await
    }
    async fn remove_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        self.rbac_remove_role_permissions(role_id, permissions).await
    }
    async fn role_users(&self, role_id: &str, after: Option<&str>, page: Page) -> Result<Paged<User>> {
        self.rbac_role_users(role_id, after, page).await
    }
    async fn user_roles(&self, user_id: &str, page: Page) -> Result<Paged<Role>> {
        self.rbac_user_roles(user_id, page).await
    }
    async fn assign_roles(&self, user_ids: &[String], role_ids: &[String]) -> Result<()> {
        self.rbac_assign_roles(user_ids, role_ids).await
    }
    async fn unassign_roles(&self, user_id: &str, role_ids: &[String]) -> Result<()> {
        self.rbac_unassign_roles(user_id, role_ids).await
    }
    async fn user_permission_sources(&self, user_id: &str) -> Result<Vec<(Permission, PermissionSource)>> {
        self.rbac_user_permission_sources(user_id).await
    }
    async fn add_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        self.rbac_add_user_permissions(user_id, permissions).await
    }
    async fn remove_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        self.rbac_remove_user_permissions(user_id, permissions).await
    }
    async fn permissions_for(&self, user_id: &str, resource_server: &str) -> Result<Vec<String>> {
        self.rbac_permissions_for(user_id, resource_server).await
    }
    async fn role_names_of(&self, user_id: &str) -> Result<Vec<String>> {
        self.rbac_role_names_of(user_id).await
    }

    // --- console administrators

    async fn console_admin_role(&self, user_id: &str) -> Result<Option<String>> {
        let q = query("SELECT role FROM console_admins WHERE user_id = $1").bind(user_id);
        self.row("console admin", q).await?.map(|r| get(&r, "role")).transpose()
    }

    async fn put_console_admin(&self, user_id: &str, role: &str, now: Millis) -> Result<()> {
        let q = query(
            "INSERT INTO console_admins (user_id, role, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET role = excluded.role",
        )
        .bind(user_id)
        .bind(role)
        .bind(now);
        match q.execute(&self.pool).await {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if d.is_foreign_key_violation() => Err(Error::NotFound("user".into())),
            Err(e) => Err(db("console admin")(e)),
        }
    }

    async fn console_admin_count(&self) -> Result<u64> {
        let row = self.row("console admins", query("SELECT COUNT(*) AS n FROM console_admins")).await?;
        Ok(row.map(|r| get::<i64>(&r, "n")).transpose()?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    // --- users

    async fn user(&self, user_id: &str) -> Result<Option<StoredUser>> {
        let q = query("SELECT data, password_hash FROM users WHERE user_id = $1").bind(user_id);
        let row = self.row("user", q).await?;
        row.as_ref().map(stored_user).transpose()
    }

    async fn user_by_login(&self, connection: &str, login: &str) -> Result<Option<StoredUser>> {
        // An email match wins over another user's identical username. Two lookups, each on
        // its own index: with `email_lower = $2 OR username_lower = $2` SQLite picked the
        // username index on `connection` alone and read every user of the connection.
        let q = query(
            "SELECT data, password_hash FROM (
                 SELECT data, password_hash, 0 AS preference FROM users
                 WHERE connection = $1 AND email_lower = $2
                 UNION ALL
                 SELECT data, password_hash, 1 AS preference FROM users
                 WHERE connection = $1 AND username_lower = $2
             ) AS found ORDER BY preference LIMIT 1",
        )
        .bind(connection)
        .bind(login.to_lowercase());
        let row = self.row("user", q).await?;
        row.as_ref().map(stored_user).transpose()
    }

    async fn create_user(&self, user: &StoredUser) -> Result<()> {
        let q = query(
            "INSERT INTO users (user_id, connection, email_lower, username_lower, password_hash,
                 created_at, updated_at, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
        let q = bind_user(q, user)?;
        q.execute(&self.pool).await.map_err(|e| user_conflict(e, &user.user))?;
        Ok(())
    }

    async fn update_user(&self, user: &StoredUser) -> Result<()> {
        let q = bind_user(query(UPDATE_USER), user)?;
        let done = q.execute(&self.pool).await.map_err(|e| user_conflict(e, &user.user))?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound(format!("user {}", user.user.user_id)));
        }
        Ok(())
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        end_credentials(&mut tx, "= $1", user_id).await?;
        forget_issuers(&mut tx, "= $1", user_id).await?;
        let q = query("DELETE FROM users WHERE user_id = $1").bind(user_id);
        let removed = q.execute(&mut *tx).await.map_err(db("user"))?.rows_affected();
        tx.commit().await.map_err(db("user"))?;
        Ok(removed > 0)
    }

    async fn record_login(&self, user_id: &str, at: Millis, ip: &str) -> Result<()> {
        // The counters live inside the document: read, change and write it under the write
        // lock (SQLite) or a row lock (PostgreSQL) so concurrent logins all count.
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        };
        let select = format!("SELECT data FROM users WHERE user_id = $1{lock}");
        let mut tx = self.begin_write().await?;
        let row = query(&select).bind(user_id).fetch_optional(&mut *tx).await.map_err(db("user"))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(db("user"))?;
            return Err(Error::NotFound(format!("user {user_id}")));
        };
        let mut user: User = data(&row, "user")?;
        user.logins_count += 1;
        user.last_login = Some(at);
        user.last_ip = Some(ip.to_owned());
        query("UPDATE users SET data = $2 WHERE user_id = $1")
            .bind(user_id)
            .bind(to_json(&user)?)
            .execute(&mut *tx)
            .await
            .map_err(db("user"))?;
        tx.commit().await.map_err(db("user"))
    }

    async fn search_users(&self, request: &UserSearch) -> Result<UserPage> {
        let condition = search::condition(self.dialect, request.query.as_ref());
        let next = condition.params.len() + 1;
        let total = if request.totals {
            // Counting stops at the cap: Auth0 reports no more, and the database reads no further.
            let count = format!(
                "SELECT COUNT(*) AS matched FROM (SELECT 1 FROM users WHERE {} LIMIT ${next}) AS hits",
                condition.sql
            );
            let cap = i64::try_from(MAX_RESULTS).unwrap_or(i64::MAX);
            let q = search::bind(self.search_query(&count), &condition.params).bind(cap);
            let row = q.fetch_one(&self.pool).await.map_err(db("user search"))?;
            Some(u64::try_from(get::<i64>(&row, "matched")?).unwrap_or(0))
        } else {
            None
        };

        let offset = u64::from(request.page) * u64::from(request.per_page);
        let limit = u64::from(request.per_page).min(MAX_RESULTS.saturating_sub(offset));
        if limit == 0 {
            return Ok(UserPage { users: Vec::new(), total });
        }
        let select = format!(
            "SELECT data, password_hash FROM users WHERE {} ORDER BY {} LIMIT ${next} OFFSET ${}",
            condition.sql,
            search::order_by(self.dialect, request.sort),
            next + 1
        );
        // Both fit: the limit and the offset are below the cap.
        let q = search::bind(self.search_query(&select), &condition.params).bind(limit as i64).bind(offset as i64);
        let rows = self.rows("user search", q).await?;
        let users = rows.iter().map(stored_user).collect::<Result<_>>()?;
        Ok(UserPage { users, total })
    }

    // --- signing keys

    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        let q = query(
            "SELECT kid, private_pkcs8, cert_der, created_at, is_current, rotated_at, revoked_at
             FROM signing_keys ORDER BY created_at, kid",
        );
        let rows = self.rows("signing key", q).await?;
        rows.iter().map(signing_key).collect()
    }

    async fn add_signing_key(&self, key: &SigningKey) -> Result<()> {
        let what = format!("signing key {}", key.kid);
        let mut tx = self.begin_write().await?;
        if key.current {
            query("UPDATE signing_keys SET is_current = FALSE, rotated_at = $1 WHERE is_current")
                .bind(key.created_at)
                .execute(&mut *tx)
                .await
                .map_err(db(&what))?;
        }
        query(
            "INSERT INTO signing_keys (kid, private_pkcs8, cert_der, created_at, is_current,
                 rotated_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&key.kid)
        .bind(&key.private_pkcs8)
        .bind(&key.cert_der)
        .bind(key.created_at)
        .bind(key.current)
        .bind(key.rotated_at)
        .bind(key.revoked_at)
        .execute(&mut *tx)
        .await
        .map_err(db(&what))?;
        tx.commit().await.map_err(db(&what))
    }

    async fn replace_signing_key_secrets(&self, replacements: &[KeySecretReplacement]) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        for r in replacements {
            let what = format!("signing key {}", r.kid);
            let replaced = query("UPDATE signing_keys SET private_pkcs8 = $1 WHERE kid = $2 AND private_pkcs8 = $3")
                .bind(&r.new)
                .bind(&r.kid)
                .bind(&r.old)
                .execute(&mut *tx)
                .await
                .map_err(db(&what))?
                .rows_affected();
            if replaced == 0 {
                // Dropping the transaction rolls back the keys replaced so far.
                return Ok(false);
            }
        }
        tx.commit().await.map_err(db("signing keys"))?;
        Ok(true)
    }

    // --- login transactions

    async fn put_login_transaction(&self, tx: &LoginTransaction) -> Result<()> {
        let q = query(
            "INSERT INTO login_transactions (id, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at",
        )
        .bind(&tx.id)
        .bind(to_json(tx)?)
        .bind(tx.expires_at);
        self.write("login transaction", q).await
    }

    async fn login_transaction(&self, id: &str, now: Millis) -> Result<Option<LoginTransaction>> {
        let q = query("SELECT data FROM login_transactions WHERE id = $1 AND expires_at > $2").bind(id).bind(now);
        self.doc("login transaction", q).await
    }

    async fn delete_login_transaction(&self, id: &str) -> Result<()> {
        let q = query("DELETE FROM login_transactions WHERE id = $1").bind(id);
        self.write("login transaction", q).await
    }

    // --- authorization codes

    async fn put_code(&self, code: &AuthCode) -> Result<()> {
        let q = query(
            "INSERT INTO auth_codes (code_sha256, grant_doc, expires_at, redeemed_at)
             VALUES ($1, $2, $3, NULL)
             ON CONFLICT (code_sha256) DO UPDATE SET grant_doc = excluded.grant_doc,
                 expires_at = excluded.expires_at, redeemed_at = NULL",
        )
        .bind(&code.code_sha256)
        .bind(to_json(&code.grant)?)
        .bind(code.expires_at);
        self.write("authorization code", q).await
    }

    async fn redeem_code(&self, code_sha256: &[u8], now: Millis) -> Result<CodeRedemption> {
        // One conditional UPDATE: of racing callers, only one sees the row unredeemed.
        let q = query(
            "UPDATE auth_codes SET redeemed_at = $2
             WHERE code_sha256 = $1 AND redeemed_at IS NULL AND expires_at > $2
             RETURNING grant_doc",
        )
        .bind(code_sha256)
        .bind(now);
        if let Some(row) = self.row("authorization code", q).await? {
            return Ok(CodeRedemption::Fresh(grant(&row)?));
        }
        let q = query("SELECT grant_doc, redeemed_at FROM auth_codes WHERE code_sha256 = $1").bind(code_sha256);
        let Some(row) = self.row("authorization code", q).await? else {
            return Ok(CodeRedemption::Unknown);
        };
        Ok(match get::<Option<Millis>>(&row, "redeemed_at")? {
            Some(_) => CodeRedemption::Reused(grant(&row)?),
            None => CodeRedemption::Unknown,
        })
    }

    // --- SSO sessions

    async fn put_session(&self, session: &SsoSession) -> Result<()> {
        let q = query(
            "INSERT INTO sso_sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, data = excluded.data,
                 expires_at = excluded.expires_at",
        )
        .bind(&session.id)
        .bind(&session.user_id)
        .bind(to_json(session)?)
        .bind(session.expires_at);
        self.write("session", q).await
    }

    async fn session(&self, id: &str, now: Millis) -> Result<Option<SsoSession>> {
        let q = query("SELECT data FROM sso_sessions WHERE id = $1 AND expires_at > $2").bind(id).bind(now);
        self.doc("session", q).await
    }

    async fn delete_session(&self, id: &str) -> Result<()> {
        let q = query("DELETE FROM sso_sessions WHERE id = $1").bind(id);
        self.write("session", q).await
    }

    // --- refresh tokens

    async fn put_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        let q = query(
            "INSERT INTO refresh_tokens (token_sha256, family, client_id, user_id, grant_doc,
                 created_at, expires_at, rotated_at, revoked, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (token_sha256) DO UPDATE SET family = excluded.family,
                 client_id = excluded.client_id, user_id = excluded.user_id,
                 grant_doc = excluded.grant_doc, created_at = excluded.created_at,
                 expires_at = excluded.expires_at, rotated_at = excluded.rotated_at,
                 revoked = excluded.revoked, last_used_at = excluded.last_used_at",
        );
        self.write("refresh token", bind_refresh_token(q, token)?).await
    }

    async fn refresh_token(&self, token_sha256: &[u8]) -> Result<Option<RefreshToken>> {
        let q = query(
            "SELECT token_sha256, family, client_id, user_id, grant_doc, created_at, expires_at,
                 rotated_at, revoked, last_used_at
             FROM refresh_tokens WHERE token_sha256 = $1",
        )
        .bind(token_sha256);
        let row = self.row("refresh token", q).await?;
        row.as_ref().map(refresh_token).transpose()
    }

    async fn rotate_refresh_token(&self, old_sha256: &[u8], now: Millis, new: &RefreshToken) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let rotated = query(
            "UPDATE refresh_tokens SET rotated_at = $2
             WHERE token_sha256 = $1 AND rotated_at IS NULL AND NOT revoked",
        )
        .bind(old_sha256)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db("refresh token"))?;
        if rotated.rows_affected() != 1 {
            tx.rollback().await.map_err(db("refresh token"))?;
            return Ok(false);
        }
        let insert = query(
            "INSERT INTO refresh_tokens (token_sha256, family, client_id, user_id, grant_doc,
                 created_at, expires_at, rotated_at, revoked, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        );
        bind_refresh_token(insert, new)?.execute(&mut *tx).await.map_err(db("refresh token"))?;
        tx.commit().await.map_err(db("refresh token"))?;
        Ok(true)
    }

    async fn revoke_refresh_family(&self, family: &str) -> Result<u64> {
        let q = query("UPDATE refresh_tokens SET revoked = TRUE WHERE family = $1 AND NOT revoked").bind(family);
        self.exec("refresh token", q).await
    }

    async fn refresh_family_rotated_after(&self, family: &str, at: Millis) -> Result<bool> {
        let q = query("SELECT 1 AS one FROM refresh_tokens WHERE family = $1 AND rotated_at > $2 LIMIT 1")
            .bind(family)
            .bind(at);
        Ok(self.row("refresh token", q).await?.is_some())
    }

    async fn touch_refresh_token(&self, token_sha256: &[u8], now: Millis) -> Result<()> {
        let q =
            query("UPDATE refresh_tokens SET last_used_at = $2 WHERE token_sha256 = $1").bind(token_sha256).bind(now);
        self.write("refresh token", q).await
    }

    // --- revoked grants

    async fn revoke_grant(&self, grant_id: &str, until: Millis) -> Result<()> {
        let q = query(
            "INSERT INTO revoked_grants (grant_id, expires_at) VALUES ($1, $2)
             ON CONFLICT (grant_id) DO UPDATE SET expires_at =
                 CASE WHEN revoked_grants.expires_at > excluded.expires_at
                      THEN revoked_grants.expires_at ELSE excluded.expires_at END",
        )
        .bind(grant_id)
        .bind(until);
        self.write("revoked grant", q).await
    }

    async fn revoked_grants(&self, now: Millis) -> Result<Vec<String>> {
        let q = query("SELECT grant_id FROM revoked_grants WHERE expires_at > $1").bind(now);
        self.rows("revoked grant", q).await?.iter().map(|r| get(r, "grant_id")).collect()
    }

    // --- brute-force accounting

    async fn record_failure(&self, user_id: &str, ip: &str, now: Millis, window_start: Millis) -> Result<FailureCount> {
        let q = query(
            "INSERT INTO login_failures (user_id, ip, failures, first_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (user_id, ip) DO UPDATE SET
                 failures = CASE WHEN login_failures.first_at < $4 THEN 1
                                 ELSE login_failures.failures + 1 END,
                 first_at = CASE WHEN login_failures.first_at < $4 THEN $3
                                 ELSE login_failures.first_at END
             RETURNING failures, first_at",
        )
        .bind(user_id)
        .bind(ip)
        .bind(now)
        .bind(window_start);
        let row = q.fetch_one(&self.pool).await.map_err(db("login failures"))?;
        failure_count(&row)
    }

    async fn failures(&self, user_id: &str, ip: &str) -> Result<Option<FailureCount>> {
        let q = query("SELECT failures, first_at FROM login_failures WHERE user_id = $1 AND ip = $2")
            .bind(user_id)
            .bind(ip);
        let row = self.row("login failures", q).await?;
        row.as_ref().map(failure_count).transpose()
    }

    async fn clear_failures(&self, user_id: &str, ip: Option<&str>) -> Result<()> {
        let q = match ip {
            Some(ip) => query("DELETE FROM login_failures WHERE user_id = $1 AND ip = $2").bind(user_id).bind(ip),
            None => query("DELETE FROM login_failures WHERE user_id = $1").bind(user_id),
        };
        self.write("login failures", q).await
    }

    // --- rate limits

    async fn count_hit(&self, key: &str, now: Millis, window_ms: Millis) -> Result<i64> {
        let q = query(
            "INSERT INTO rate_limits (name, hits, expires_at) VALUES ($1, 1, $2 + $3)
             ON CONFLICT (name) DO UPDATE SET
                 hits = CASE WHEN rate_limits.expires_at <= $2 THEN 1 ELSE rate_limits.hits + 1 END,
                 expires_at = CASE WHEN rate_limits.expires_at <= $2 THEN $2 + $3
                                   ELSE rate_limits.expires_at END
             RETURNING hits",
        )
        .bind(key)
        .bind(now)
        .bind(window_ms);
        let row = q.fetch_one(&self.pool).await.map_err(db("rate limit"))?;
        get(&row, "hits")
    }

    // --- password-reset tickets

    async fn put_password_ticket(&self, ticket: &PasswordTicket) -> Result<()> {
        let q = query("INSERT INTO password_tickets (ticket_sha256, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(&ticket.ticket_sha256)
            .bind(&ticket.user_id)
            .bind(ticket.expires_at);
        self.write("password ticket", q).await
    }

    async fn password_ticket(&self, ticket_sha256: &[u8], now: Millis) -> Result<Option<PasswordTicket>> {
        let q = query(
            "SELECT ticket_sha256, user_id, expires_at FROM password_tickets
             WHERE ticket_sha256 = $1 AND expires_at > $2",
        )
        .bind(ticket_sha256)
        .bind(now);
        let row = self.row("password ticket", q).await?;
        row.as_ref()
            .map(|row| {
                Ok(PasswordTicket {
                    ticket_sha256: get(row, "ticket_sha256")?,
                    user_id: get(row, "user_id")?,
                    expires_at: get(row, "expires_at")?,
                })
            })
            .transpose()
    }

    async fn change_password(&self, user: &StoredUser) -> Result<()> {
        let user_id = &user.user.user_id;
        let mut tx = self.begin_write().await?;
        update_user_in(&mut tx, user).await?;
        end_credentials(&mut tx, "= $1", user_id).await?;
        tx.commit().await.map_err(db("password change"))
    }

    // --- actions, versions and bindings

    async fn action(&self, id: &str) -> Result<Option<StoredAction>> {
        self.get_action(id).await
    }
    async fn actions(&self) -> Result<Vec<StoredAction>> {
        self.all_actions().await
    }
    async fn put_action(&self, action: &StoredAction) -> Result<()> {
        self.write_action(action).await
    }
    async fn action_version(&self, id: &str) -> Result<Option<StoredActionVersion>> {
        self.get_action_version(id).await
    }
    async fn action_versions(&self, action_id: &str) -> Result<Vec<StoredActionVersion>> {
        self.versions_of(action_id).await
    }
    async fn deploy_action(&self, action: &StoredAction, version: &StoredActionVersion, keep: usize) -> Result<()> {
        self.deploy(action, version, keep).await
    }
    async fn delete_action(&self, id: &str) -> Result<bool> {
        self.remove_action(id).await
    }
    async fn trigger_bindings(&self, trigger: &str) -> Result<Vec<TriggerBinding>> {
        self.bindings_of(trigger).await
    }
    async fn put_trigger_bindings(&self, trigger: &str, bindings: &[TriggerBinding]) -> Result<()> {
        self.replace_bindings(trigger, bindings).await
    }
    async fn action_triggers(&self, action_id: &str) -> Result<Vec<String>> {
        self.triggers_of(action_id).await
    }

    // --- users-import jobs

    async fn create_import_job(&self, job: &ImportJob, users_file: &str) -> Result<()> {
        self.new_import_job(job, users_file).await
    }
    async fn import_job(&self, id: &str) -> Result<Option<ImportJob>> {
        self.get_import_job(id).await
    }
    async fn import_jobs(&self) -> Result<Vec<ImportJob>> {
        self.all_import_jobs().await
    }
    async fn import_job_file(&self, id: &str) -> Result<Option<String>> {
        self.job_file(id).await
    }
    async fn import_job_errors(&self, id: &str) -> Result<Vec<ImportRowError>> {
        self.job_errors(id).await
    }
    async fn save_import_job(&self, job: &ImportJob, errors: Option<&[ImportRowError]>) -> Result<bool> {
        self.save_job(job, errors).await
    }
    async fn claim_import_job(&self, job: &ImportJob, seen_heartbeat: Millis) -> Result<bool> {
        self.claim_job(job, seen_heartbeat).await
    }
    async fn delete_import_job(&self, id: &str) -> Result<bool> {
        self.remove_import_job(id).await
    }

    // --- federated login

    async fn put_federated_state(&self, state: &FederatedState) -> Result<()> {
        self.new_federated_state(state).await
    }
    async fn redeem_federated_state(&self, state_sha256: &[u8], now: Millis) -> Result<StateRedemption> {
        self.redeem_state(state_sha256, now).await
    }
    async fn federated_issuer(&self, user_id: &str) -> Result<Option<FederatedIssuer>> {
        self.get_federated_issuer(user_id).await
    }
    async fn put_federated_issuer(&self, issuer: &FederatedIssuer) -> Result<()> {
        self.write_federated_issuer(issuer).await
    }
    async fn delete_federated_issuer(&self, user_id: &str) -> Result<bool> {
        let q = query("DELETE FROM federated_issuers WHERE user_id = $1").bind(user_id);
        self.remove("federated issuer", q).await
    }

    // --- /userinfo claims

    async fn userinfo_claims(&self, key: &str) -> Result<Option<UserinfoClaims>> {
        self.get_userinfo_claims(key).await
    }
    async fn put_userinfo_claims(&self, key: &str, claims: &UserinfoClaims) -> Result<()> {
        self.write_userinfo_claims(key, claims).await
    }
    async fn delete_userinfo_claims(&self, key: &str) -> Result<bool> {
        self.remove_userinfo_claims(key).await
    }

    // --- a user's lifecycle (`lifecycle.rs`)

    async fn user_sessions(&self, user_id: &str, now: Millis) -> Result<Vec<SsoSession>> {
        self.sessions_of(user_id, now).await
    }
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        self.delete_sessions_of(user_id).await
    }
    async fn user_refresh_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<RefreshToken>> {
        self.refresh_tokens_of(user_id, now).await
    }
    async fn live_refresh_family(&self, family: &str, now: Millis) -> Result<Option<RefreshToken>> {
        self.newest_live_in_family(family, now).await
    }
    async fn revoke_user_refresh_tokens(&self, user_id: &str) -> Result<u64> {
        self.revoke_refresh_tokens_of(user_id).await
    }
    async fn user_failures(&self, user_id: &str) -> Result<Vec<AddressFailures>> {
        self.failures_of(user_id).await
    }
    async fn put_user_grant(&self, grant: &UserGrant) -> Result<()> {
        self.write_user_grant(grant).await
    }
    async fn user_grant(&self, id: &str) -> Result<Option<UserGrant>> {
        self.read_user_grant(id).await
    }
    async fn user_grants(&self, filter: &GrantFilter, page: Page) -> Result<Paged<UserGrant>> {
        self.list_user_grants(filter, page).await
    }
    async fn delete_user_grant(&self, id: &str, families: &[String]) -> Result<bool> {
        self.remove_user_grant(id, families).await
    }
    async fn delete_user_grants(&self, user_id: &str) -> Result<u64> {
        self.remove_user_grants_of(user_id).await
    }
    async fn linked_login(&self, connection: &str, login: &str) -> Result<Option<LinkedLogin>> {
        self.linked_login_of(connection, login).await
    }
    async fn linked_identity_owner(&self, provider: &str, identity_id: &str) -> Result<Option<String>> {
        self.identity_owner(provider, identity_id).await
    }
    async fn link_identity(
        &self,
        primary: &StoredUser,
        secondary_user_id: &str,
        provider: &str,
        identity_id: &str,
    ) -> Result<()> {
        self.move_identity_in(primary, secondary_user_id, provider, identity_id).await
    }
    async fn unlink_identity(
        &self,
        primary: &StoredUser,
        provider: &str,
        identity_id: &str,
        restored: &StoredUser,
    ) -> Result<()> {
        self.move_identity_out(primary, provider, identity_id, restored).await
    }

    async fn purge_expired(&self, now: Millis) -> Result<u64> {
        const PURGES: [&str; 9] = [
            "DELETE FROM login_transactions WHERE expires_at <= $1",
            "DELETE FROM auth_codes WHERE expires_at <= $1",
            "DELETE FROM federated_states WHERE expires_at <= $1",
            "DELETE FROM sso_sessions WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
            "DELETE FROM password_tickets WHERE expires_at <= $1",
            "DELETE FROM rate_limits WHERE expires_at <= $1",
            "DELETE FROM revoked_grants WHERE expires_at <= $1",
            "DELETE FROM email_tickets WHERE expires_at <= $1",
        ];
        let mut removed = 0;
        for sql in PURGES {
            removed += self.exec("expired records", query(sql).bind(now)).await?;
        }
        Ok(removed)
    }

    fn logs(&self) -> &dyn crate::LogStore {
        self
    }

    fn mail(&self) -> &dyn crate::MailStore {
        self
    }
}

impl SqlStore {
    /// Rewrites, inside `tx`, each connection `change` says it changed. `enabled_clients` lives
    /// inside the connection documents, so they are read under the write lock (SQLite) or row
    /// locks (PostgreSQL): a concurrent PATCH of a connection is not lost.
    async fn change_connections(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        mut change: impl FnMut(&mut Connection) -> bool,
    ) -> Result<()> {
        let lock = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        };
        let select = format!("SELECT data FROM connections ORDER BY id{lock}");
        let rows = query(&select).fetch_all(&mut **tx).await.map_err(db("connection"))?;
        for row in &rows {
            let mut connection: Connection = data(row, "connection")?;
            if !change(&mut connection) {
                continue;
            }
            query("UPDATE connections SET data = $2 WHERE id = $1")
                .bind(&connection.id)
                .bind(to_json(&connection)?)
                .execute(&mut **tx)
                .await
                .map_err(db("connection"))?;
        }
        Ok(())
    }

    /// A user-search statement. On PostgreSQL it goes out unnamed (not kept in the
    /// connection's statement cache), so the server plans it with the values bound each time,
    /// as it plans a statement with the values written in. A cached statement would get, after
    /// five executions, PostgreSQL's generic plan: every value a parameter of type `text`,
    /// so each candidate row's recheck parses the `jsonpath` again (`CAST($1 AS jsonpath)` is
    /// folded to a constant only in a plan made with the values) and re-evaluates the `LIKE`
    /// escape, which made the benchmark's search ~30% slower inside the database; its
    /// estimates from default selectivities (one row) could also pick another plan. The
    /// statement is parsed each time instead, a fraction of a millisecond. Search statements
    /// differ with every query's shape, so they would also crowd the hot statements out of the
    /// cache. SQLite keeps its prepared statements: it has no generic plan.
    fn search_query<'q>(&self, sql: &'q str) -> Query<'q> {
        query(sql).persistent(self.dialect != Dialect::Postgres)
    }
}

/// Writes `user` over its stored row inside `tx`; a user that is not there is `NotFound` (the
/// caller's `?` drops the transaction, which rolls it back).
pub(super) async fn update_user_in(tx: &mut sqlx::Transaction<'static, sqlx::Any>, user: &StoredUser) -> Result<()> {
    let done =
        bind_user(query(UPDATE_USER), user)?.execute(&mut **tx).await.map_err(|e| user_conflict(e, &user.user))?;
    if done.rows_affected() == 0 {
        return Err(Error::NotFound(format!("user {}", user.user.user_id)));
    }
    Ok(())
}

/// Ends what the users `WHERE user_id <users>` (binding `$1`) hold besides their password:
/// reset tickets, SSO sessions, refresh tokens and brute-force counters. A new password ends
/// them, and so does the user's removal: they are keyed by `user_id`, so a user created again
/// under the same id (an import, `POST /users` with `user_id`) would otherwise inherit them.
pub(super) async fn end_credentials(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    users: &str,
    bind: &str,
) -> Result<()> {
    let ends = [
        format!("DELETE FROM password_tickets WHERE user_id {users}"),
        format!("DELETE FROM sso_sessions WHERE user_id {users}"),
        format!("UPDATE refresh_tokens SET revoked = TRUE WHERE user_id {users} AND NOT revoked"),
        format!("DELETE FROM login_failures WHERE user_id {users}"),
    ];
    for sql in &ends {
        query(sql).bind(bind).execute(&mut **tx).await.map_err(db("ending a user's credentials"))?;
    }
    Ok(())
}

/// Forgets which upstream issuer the users `WHERE user_id <users>` came from, with the users:
/// one created again under the same id is recorded afresh by its first federated login.
async fn forget_issuers(tx: &mut sqlx::Transaction<'static, sqlx::Any>, users: &str, bind: &str) -> Result<()> {
    let sql = format!("DELETE FROM federated_issuers WHERE user_id {users}");
    query(&sql).bind(bind).execute(&mut **tx).await.map_err(db("federated issuers"))?;
    Ok(())
}

fn stored_client(row: &AnyRow) -> Result<StoredClient> {
    Ok(StoredClient { client: data(row, "client")?, secret_sha256: get(row, "secret_sha256")? })
}

pub(super) fn stored_user(row: &AnyRow) -> Result<StoredUser> {
    Ok(StoredUser { user: data(row, "user")?, password_hash: get(row, "password_hash")? })
}

/// Replaces a user's columns (`update_user`, `change_password`), bound by [`bind_user`].
pub(super) const UPDATE_USER: &str = "UPDATE users SET connection = $2, email_lower = $3, username_lower = $4,
         password_hash = $5, created_at = $6, updated_at = $7, data = $8
     WHERE user_id = $1";

/// Binds a user's columns as `$1…$8` in the order `create_user` and `update_user` share.
pub(super) fn bind_user<'q>(q: Query<'q>, stored: &'q StoredUser) -> Result<Query<'q>> {
    let user = &stored.user;
    Ok(q.bind(&user.user_id)
        .bind(&user.connection)
        .bind(user.email.as_deref().map(str::to_lowercase))
        .bind(user.username.as_deref().map(str::to_lowercase))
        .bind(stored.password_hash.as_deref())
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(to_json(user)?))
}

/// Names which of a user's unique keys a write collided with.
pub(super) fn user_conflict(e: sqlx::Error, user: &User) -> Error {
    let email_taken = matches!(&e, sqlx::Error::Database(d)
        if d.is_unique_violation() && d.message().contains("email"));
    if email_taken {
        let email = user.email.as_deref().unwrap_or_default();
        return Error::Conflict(format!("email {email} in connection {}", user.connection));
    }
    let username_taken = matches!(&e, sqlx::Error::Database(d)
        if d.is_unique_violation() && d.message().contains("username"));
    if username_taken {
        let username = user.username.as_deref().unwrap_or_default();
        return Error::Conflict(format!("username {username} in connection {}", user.connection));
    }
    db(&format!("user {}", user.user_id))(e)
}

fn signing_key(row: &AnyRow) -> Result<SigningKey> {
    Ok(SigningKey {
        kid: get(row, "kid")?,
        private_pkcs8: get(row, "private_pkcs8")?,
        cert_der: get(row, "cert_der")?,
        created_at: get(row, "created_at")?,
        current: flag(row, "is_current")?,
        rotated_at: get(row, "rotated_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn grant(row: &AnyRow) -> Result<Value> {
    from_json("grant", &get::<String>(row, "grant_doc")?)
}

/// Binds a token's columns as `$1…$10` in table order.
fn bind_refresh_token<'q>(q: Query<'q>, token: &'q RefreshToken) -> Result<Query<'q>> {
    Ok(q.bind(&token.token_sha256)
        .bind(&token.family)
        .bind(&token.client_id)
        .bind(&token.user_id)
        .bind(to_json(&token.grant)?)
        .bind(token.created_at)
        .bind(token.expires_at)
        .bind(token.rotated_at)
        .bind(token.revoked)
        .bind(token.last_used_at))
}

pub(super) fn refresh_token(row: &AnyRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        token_sha256: get(row, "token_sha256")?,
        family: get(row, "family")?,
        client_id: get(row, "client_id")?,
        user_id: get(row, "user_id")?,
        grant: grant(row)?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
        rotated_at: get(row, "rotated_at")?,
        revoked: flag(row, "revoked")?,
        last_used_at: get(row, "last_used_at")?,
    })
}

pub(super) fn failure_count(row: &AnyRow) -> Result<FailureCount> {
    Ok(FailureCount { failures: get(row, "failures")?, first_at: get(row, "first_at")? })
}
