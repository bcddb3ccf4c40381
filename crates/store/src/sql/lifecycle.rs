//! A user's lifecycle as SQL, for the [`Store`](crate::Store) methods of that name: the SSO
//! sessions and refresh tokens a user holds, listed and ended by user; consent grants; the
//! brute-force counters of a user; and linked identities, moved between users in one
//! transaction each way.

use sqlx::any::AnyRow;
use sqlx::query;

use super::queries::{bind_user, end_credentials, failure_count, refresh_token, update_user_in, user_conflict};
use super::{SqlStore, db, from_json, get, to_json};
use crate::model::*;
use crate::{Error, Result};

const REFRESH_COLUMNS: &str = "token_sha256, family, client_id, user_id, grant_doc, created_at, expires_at,
     rotated_at, revoked, last_used_at";

/// A token that may still be exchanged: not revoked, not retired by a rotation, not expired.
const LIVE_REFRESH: &str = "NOT revoked AND rotated_at IS NULL AND (expires_at IS NULL OR expires_at > $2)";

fn user_grant(row: &AnyRow) -> Result<UserGrant> {
    Ok(UserGrant {
        id: get(row, "id")?,
        user_id: get(row, "user_id")?,
        client_id: get(row, "client_id")?,
        audience: get(row, "audience")?,
        scope: from_json("grant scope", &get::<String>(row, "scope")?)?,
        created_at: get(row, "created_at")?,
    })
}

/// One token per family (its newest live one): a family is one refresh token to the API.
fn newest_per_family(tokens: Vec<RefreshToken>) -> Vec<RefreshToken> {
    let mut out: Vec<RefreshToken> = Vec::with_capacity(tokens.len());
    for t in tokens {
        match out.last_mut() {
            Some(last) if last.family == t.family => {
                if t.created_at > last.created_at {
                    *last = t;
                }
            }
            _ => out.push(t),
        }
    }
    out
}

impl SqlStore {
    /// Removes, inside `tx`, the identities of connection `name` from the users they are
    /// linked into (their documents are read under the write lock or row locks, as every
    /// read-modify-write of a user).
    pub(super) async fn drop_linked_identities_of(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        name: &str,
    ) -> Result<()> {
        let lock = match self.dialect {
            super::Dialect::Sqlite => "",
            super::Dialect::Postgres => " FOR UPDATE",
        };
        let select = format!(
            "SELECT user_id, data FROM users WHERE user_id IN
                 (SELECT primary_user_id FROM linked_identities WHERE connection = $1) ORDER BY user_id{lock}"
        );
        let rows = query(&select).bind(name).fetch_all(&mut **tx).await.map_err(db("user"))?;
        for row in &rows {
            let mut user: User = super::data(row, "user")?;
            // The first identity is the user's own, whatever its connection.
            let own = user.identities.first().cloned();
            user.identities.retain(|i| i.connection != name);
            if let Some(own) = own.filter(|o| o.connection == name) {
                user.identities.insert(0, own);
            }
            query("UPDATE users SET data = $2 WHERE user_id = $1")
                .bind(&user.user_id)
                .bind(to_json(&user)?)
                .execute(&mut **tx)
                .await
                .map_err(db("user"))?;
        }
        Ok(())
    }

    pub(super) async fn sessions_of(&self, user_id: &str, now: Millis) -> Result<Vec<SsoSession>> {
        let q = query("SELECT data FROM sso_sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY id")
            .bind(user_id)
            .bind(now);
        self.docs("session", q).await
    }

    pub(super) async fn delete_sessions_of(&self, user_id: &str) -> Result<u64> {
        self.exec("session", query("DELETE FROM sso_sessions WHERE user_id = $1").bind(user_id)).await
    }

    pub(super) async fn refresh_tokens_of(&self, user_id: &str, now: Millis) -> Result<Vec<RefreshToken>> {
        let sql = format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE user_id = $1 AND {LIVE_REFRESH}
             ORDER BY family, created_at"
        );
        let rows = self.rows("refresh token", query(&sql).bind(user_id).bind(now)).await?;
        let tokens = rows.iter().map(refresh_token).collect::<Result<Vec<_>>>()?;
        Ok(newest_per_family(tokens))
    }

    pub(super) async fn newest_live_in_family(&self, family: &str, now: Millis) -> Result<Option<RefreshToken>> {
        let sql = format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE family = $1 AND {LIVE_REFRESH}
             ORDER BY created_at DESC LIMIT 1"
        );
        let row = self.row("refresh token", query(&sql).bind(family).bind(now)).await?;
        row.as_ref().map(refresh_token).transpose()
    }

    pub(super) async fn revoke_refresh_tokens_of(&self, user_id: &str) -> Result<u64> {
        let q = query("UPDATE refresh_tokens SET revoked = TRUE WHERE user_id = $1 AND NOT revoked").bind(user_id);
        self.exec("refresh token", q).await
    }

    pub(super) async fn failures_of(&self, user_id: &str) -> Result<Vec<AddressFailures>> {
        let q = query("SELECT ip, failures, first_at FROM login_failures WHERE user_id = $1 ORDER BY ip").bind(user_id);
        let rows = self.rows("login failures", q).await?;
        rows.iter().map(|r| Ok(AddressFailures { ip: get(r, "ip")?, count: failure_count(r)? })).collect()
    }

    pub(super) async fn write_user_grant(&self, g: &UserGrant) -> Result<()> {
        // Most logins find their grant as it was: a read then, not a write (even a no-op
        // upsert locks the row, which PostgreSQL commits to its log: 4 ms against 1 ms here).
        let current = query("SELECT scope FROM user_grants WHERE user_id = $1 AND client_id = $2 AND audience = $3")
            .bind(&g.user_id)
            .bind(&g.client_id)
            .bind(&g.audience);
        let scope = to_json(&g.scope)?;
        if let Some(row) = self.row("user grant", current).await?
            && get::<String>(&row, "scope")? == scope
        {
            return Ok(());
        }
        let q = query(
            "INSERT INTO user_grants (id, user_id, client_id, audience, scope, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (user_id, client_id, audience) DO UPDATE SET scope = excluded.scope
             WHERE user_grants.scope <> excluded.scope",
        )
        .bind(&g.id)
        .bind(&g.user_id)
        .bind(&g.client_id)
        .bind(&g.audience)
        .bind(scope)
        .bind(g.created_at);
        self.write("user grant", q).await
    }

    pub(super) async fn read_user_grant(&self, id: &str) -> Result<Option<UserGrant>> {
        let q = query("SELECT * FROM user_grants WHERE id = $1").bind(id);
        self.row("user grant", q).await?.as_ref().map(user_grant).transpose()
    }

    pub(super) async fn list_user_grants(&self, filter: &GrantFilter, page: Page) -> Result<Paged<UserGrant>> {
        let mut clauses = Vec::new();
        let mut values = Vec::new();
        for (column, value) in
            [("user_id", &filter.user_id), ("client_id", &filter.client_id), ("audience", &filter.audience)]
        {
            if let Some(v) = value {
                values.push(v.as_str());
                clauses.push(format!("{column} = ${}", values.len()));
            }
        }
        let filter_sql = if clauses.is_empty() { String::new() } else { format!(" WHERE {}", clauses.join(" AND ")) };
        let count_sql = format!("SELECT COUNT(*) AS n FROM user_grants{filter_sql}");
        let mut count = query(&count_sql);
        for v in &values {
            count = count.bind(*v);
        }
        let total = self.row("user grant", count).await?.map(|r| get::<i64>(&r, "n")).transpose()?.unwrap_or(0);
        let n = values.len();
        let list_sql = format!("SELECT * FROM user_grants{filter_sql} ORDER BY id LIMIT ${} OFFSET ${}", n + 1, n + 2);
        let mut list = query(&list_sql);
        for v in &values {
            list = list.bind(*v);
        }
        let list = list
            .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(page.offset).unwrap_or(i64::MAX));
        let items = self.rows("user grant", list).await?.iter().map(user_grant).collect::<Result<Vec<_>>>()?;
        Ok(Paged { items, total: u64::try_from(total).unwrap_or(0) })
    }

    pub(super) async fn remove_user_grant(&self, id: &str, families: &[String]) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let removed = query("DELETE FROM user_grants WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("user grant"))?;
        for family in families {
            query("UPDATE refresh_tokens SET revoked = TRUE WHERE family = $1 AND NOT revoked")
                .bind(family)
                .execute(&mut *tx)
                .await
                .map_err(db("refresh token"))?;
        }
        tx.commit().await.map_err(db("user grant"))?;
        Ok(removed.rows_affected() > 0)
    }

    pub(super) async fn remove_user_grants_of(&self, user_id: &str) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let removed = query("DELETE FROM user_grants WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db("user grant"))?;
        query("UPDATE refresh_tokens SET revoked = TRUE WHERE user_id = $1 AND NOT revoked")
            .bind(user_id)
            .execute(&mut *tx)
            .await
            .map_err(db("refresh token"))?;
        tx.commit().await.map_err(db("user grant"))?;
        Ok(removed.rows_affected())
    }

    pub(super) async fn identity_owner(&self, provider: &str, identity_id: &str) -> Result<Option<String>> {
        let q = query("SELECT primary_user_id FROM linked_identities WHERE provider = $1 AND identity_id = $2")
            .bind(provider)
            .bind(identity_id);
        self.row("linked identity", q).await?.map(|r| get(&r, "primary_user_id")).transpose()
    }

    pub(super) async fn linked_login_of(&self, connection: &str, login: &str) -> Result<Option<LinkedLogin>> {
        // As `user_by_login`: an email match wins, each lookup on its own index.
        let q = query(
            "SELECT primary_user_id, password_hash FROM (
                 SELECT primary_user_id, password_hash, 0 AS preference FROM linked_identities
                 WHERE connection = $1 AND email_lower = $2
                 UNION ALL
                 SELECT primary_user_id, password_hash, 1 AS preference FROM linked_identities
                 WHERE connection = $1 AND username_lower = $2
             ) AS found ORDER BY preference LIMIT 1",
        )
        .bind(connection)
        .bind(login.to_lowercase());
        let row = self.row("linked identity", q).await?;
        row.map(|r| {
            Ok(LinkedLogin { primary_user_id: get(&r, "primary_user_id")?, password_hash: get(&r, "password_hash")? })
        })
        .transpose()
    }

    pub(super) async fn move_identity_in(
        &self,
        primary: &StoredUser,
        secondary_user_id: &str,
        provider: &str,
        identity_id: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let taken = query("SELECT 1 AS one FROM linked_identities WHERE provider = $1 AND identity_id = $2")
            .bind(provider)
            .bind(identity_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db("linked identity"))?;
        if taken.is_some() {
            tx.rollback().await.map_err(db("linked identity"))?;
            return Err(Error::Conflict(format!("identity {provider}|{identity_id}")));
        }
        // The link keeps the secondary's login names and password hash (a database identity
        // still signs in), taken from its row before the row goes.
        let recorded = query(
            "INSERT INTO linked_identities (provider, identity_id, primary_user_id, connection, email_lower,
                 username_lower, password_hash)
             SELECT $1, $2, $3, connection, email_lower, username_lower, password_hash
             FROM users WHERE user_id = $4",
        )
        .bind(provider)
        .bind(identity_id)
        .bind(&primary.user.user_id)
        .bind(secondary_user_id)
        .execute(&mut *tx)
        .await
        .map_err(db("linked identity"))?;
        if recorded.rows_affected() == 0 {
            tx.rollback().await.map_err(db("user"))?;
            return Err(Error::NotFound(format!("user {secondary_user_id}")));
        }
        // The secondary's sessions, tickets and counters end and its refresh tokens are
        // revoked; its roles, permissions and grants go with its row. Its federated issuer
        // stays: the identity's later logins are still checked against it.
        end_credentials(&mut tx, "= $1", secondary_user_id).await?;
        query("DELETE FROM users WHERE user_id = $1")
            .bind(secondary_user_id)
            .execute(&mut *tx)
            .await
            .map_err(db("user"))?;
        update_user_in(&mut tx, primary).await?;
        tx.commit().await.map_err(db("linked identity"))
    }

    pub(super) async fn move_identity_out(
        &self,
        primary: &StoredUser,
        provider: &str,
        identity_id: &str,
        restored: &StoredUser,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let link = query(
            "SELECT password_hash FROM linked_identities
             WHERE provider = $1 AND identity_id = $2 AND primary_user_id = $3",
        )
        .bind(provider)
        .bind(identity_id)
        .bind(&primary.user.user_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("linked identity"))?;
        let Some(link) = link else {
            tx.rollback().await.map_err(db("linked identity"))?;
            return Err(Error::NotFound(format!("identity {provider}|{identity_id}")));
        };
        // A database identity gets its own password back.
        let restored = StoredUser { user: restored.user.clone(), password_hash: get(&link, "password_hash")? };
        query("DELETE FROM linked_identities WHERE provider = $1 AND identity_id = $2")
            .bind(provider)
            .bind(identity_id)
            .execute(&mut *tx)
            .await
            .map_err(db("linked identity"))?;
        update_user_in(&mut tx, primary).await?;
        bind_user(
            query(
                "INSERT INTO users (user_id, connection, email_lower, username_lower, password_hash,
                     created_at, updated_at, data)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            ),
            &restored,
        )?
        .execute(&mut *tx)
        .await
        .map_err(|e| user_conflict(e, &restored.user))?;
        tx.commit().await.map_err(db("linked identity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(family: &str, created_at: Millis) -> RefreshToken {
        RefreshToken {
            token_sha256: vec![created_at as u8],
            family: family.into(),
            client_id: "c".into(),
            user_id: "u".into(),
            grant: serde_json::Value::Null,
            created_at,
            expires_at: None,
            rotated_at: None,
            revoked: false,
            last_used_at: None,
        }
    }

    #[test]
    fn a_family_is_listed_once_as_its_newest_token() {
        let listed = newest_per_family(vec![token("a", 1), token("a", 3), token("b", 2)]);
        let seen: Vec<(&str, Millis)> = listed.iter().map(|t| (t.family.as_str(), t.created_at)).collect();
        assert_eq!(seen, [("a", 3), ("b", 2)]);
    }
}
