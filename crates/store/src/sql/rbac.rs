//! Roles and permissions (RBAC) as SQL, for the [`Store`](crate::Store) methods of that name.
//!
//! Writes run in one transaction that first checks what they name exists (a role, a user,
//! each permission as a scope of its API), so a refused request leaves nothing behind; the
//! foreign keys of the schema are the backstop for a row deleted meanwhile. On PostgreSQL the
//! APIs a write checks scopes against are read `FOR SHARE`, so a concurrent
//! `put_resource_server` that removes one of those scopes waits for the write, then removes
//! what it added (SQLite's write lock serialises the two already).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::any::AnyRow;
use sqlx::{Any, Transaction, query};

use super::{Dialect, SqlStore, data, db, get};
use crate::model::*;
use crate::{Error, Result};

type Tx = Transaction<'static, Any>;

/// Rows a multi-row `INSERT` or `DELETE` carries at most (a few parameters each).
const CHUNK: usize = 100;

fn role_of(row: &AnyRow) -> Result<Role> {
    Ok(Role { id: get(row, "id")?, name: get(row, "name")?, description: get(row, "description")? })
}

fn bounds(page: Page) -> (i64, i64) {
    (i64::try_from(page.limit).unwrap_or(i64::MAX), i64::try_from(page.offset).unwrap_or(i64::MAX))
}

fn count(row: &AnyRow) -> Result<u64> {
    Ok(u64::try_from(get::<i64>(row, "n")?).unwrap_or(0))
}

/// `%text%` for `LIKE … ESCAPE '\'`: the filter's own `%`, `_` and `\` match themselves.
fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A write that raced with the deletion of what it references: the foreign key refused it.
fn missing(what: &str) -> impl FnOnce(sqlx::Error) -> Error + '_ {
    move |e| match e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound(what.to_owned()),
        e => db(what)(e),
    }
}

async fn exists(tx: &mut Tx, sql: &str, id: &str, what: &str) -> Result<()> {
    let row = query(sql).bind(id).fetch_optional(&mut **tx).await.map_err(db(what))?;
    match row {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(format!("{what} {id}"))),
    }
}

async fn role_exists(tx: &mut Tx, id: &str) -> Result<()> {
    exists(tx, "SELECT 1 AS one FROM roles WHERE id = $1", id, "role").await
}

async fn user_exists(tx: &mut Tx, id: &str) -> Result<()> {
    exists(tx, "SELECT 1 AS one FROM users WHERE user_id = $1", id, "user").await
}

/// Every permission must be a scope of its API.
async fn check_permissions(dialect: Dialect, tx: &mut Tx, permissions: &[Permission]) -> Result<()> {
    let mut by_api: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in permissions {
        by_api.entry(&p.resource_server_identifier).or_default().push(&p.permission_name);
    }
    let lock = if dialect == Dialect::Postgres { " FOR SHARE" } else { "" };
    let select = format!("SELECT data FROM resource_servers WHERE identifier = $1{lock}");
    for (identifier, names) in by_api {
        let row = query(&select).bind(identifier).fetch_optional(&mut **tx).await.map_err(db("resource server"))?;
        let Some(row) = row else {
            return Err(Error::NotFound(format!("resource server {identifier}")));
        };
        let api: ResourceServer = data(&row, "resource server")?;
        if let Some(name) = names.iter().find(|n| !api.scopes.iter().any(|s| s.value == **n)) {
            return Err(Error::NotFound(format!("permission {name} of {identifier}")));
        }
    }
    Ok(())
}

/// Inserts `(owner, resource_server, permission)` rows, skipping those already there.
async fn insert_permissions(
    tx: &mut Tx,
    table: &str,
    owner_column: &str,
    owner: &str,
    permissions: &[Permission],
) -> Result<()> {
    let unique: BTreeSet<&Permission> = permissions.iter().collect();
    let unique: Vec<&Permission> = unique.into_iter().collect();
    for chunk in unique.chunks(CHUNK) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
        let sql = format!(
            "INSERT INTO {table} ({owner_column}, resource_server, permission) VALUES {}
             ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut q = query(&sql).bind(owner);
        for p in chunk {
            q = q.bind(&p.resource_server_identifier).bind(&p.permission_name);
        }
        q.execute(&mut **tx).await.map_err(missing("permission owner"))?;
    }
    Ok(())
}

async fn delete_permissions(
    tx: &mut Tx,
    table: &str,
    owner_column: &str,
    owner: &str,
    permissions: &[Permission],
) -> Result<()> {
    for chunk in permissions.chunks(CHUNK) {
        let pairs: Vec<String> = (0..chunk.len())
            .map(|i| format!("(resource_server = ${} AND permission = ${})", 2 * i + 2, 2 * i + 3))
            .collect();
        let sql = format!("DELETE FROM {table} WHERE {owner_column} = $1 AND ({})", pairs.join(" OR "));
        let mut q = query(&sql).bind(owner);
        for p in chunk {
            q = q.bind(&p.resource_server_identifier).bind(&p.permission_name);
        }
        q.execute(&mut **tx).await.map_err(db("permissions"))?;
    }
    Ok(())
}

fn permission_of(row: &AnyRow) -> Result<Permission> {
    Ok(Permission {
        resource_server_identifier: get(row, "resource_server")?,
        permission_name: get(row, "permission")?,
    })
}

impl SqlStore {
    pub(super) async fn rbac_role(&self, id: &str) -> Result<Option<Role>> {
        let q = query("SELECT id, name, description FROM roles WHERE id = $1").bind(id);
        self.row("role", q).await?.as_ref().map(role_of).transpose()
    }

    pub(super) async fn rbac_roles(&self, name_filter: Option<&str>, page: Page) -> Result<Paged<Role>> {
        let pattern = contains_pattern(&name_filter.unwrap_or_default().to_lowercase());
        let q = query("SELECT COUNT(*) AS n FROM roles WHERE name_lower LIKE $1 ESCAPE '\\'").bind(&pattern);
        let total = count(&q.fetch_one(&self.pool).await.map_err(db("roles"))?)?;
        let (limit, offset) = bounds(page);
        let q = query(
            "SELECT id, name, description FROM roles WHERE name_lower LIKE $1 ESCAPE '\\'
             ORDER BY name, id LIMIT $2 OFFSET $3",
        )
        .bind(&pattern)
        .bind(limit)
        .bind(offset);
        let items = self.rows("roles", q).await?.iter().map(role_of).collect::<Result<_>>()?;
        Ok(Paged { items, total })
    }

    pub(super) async fn rbac_create_role(&self, role: &Role) -> Result<()> {
        let q = query("INSERT INTO roles (id, name, name_lower, description) VALUES ($1, $2, $3, $4)")
            .bind(&role.id)
            .bind(&role.name)
            .bind(role.name.to_lowercase())
            .bind(role.description.as_deref());
        self.write(&format!("role {}", role.name), q).await
    }

    pub(super) async fn rbac_update_role(&self, role: &Role) -> Result<()> {
        let q = query("UPDATE roles SET name = $2, name_lower = $3, description = $4 WHERE id = $1")
            .bind(&role.id)
            .bind(&role.name)
            .bind(role.name.to_lowercase())
            .bind(role.description.as_deref());
        match self.exec(&format!("role {}", role.name), q).await? {
            0 => Err(Error::NotFound(format!("role {}", role.id))),
            _ => Ok(()),
        }
    }

    pub(super) async fn rbac_delete_role(&self, id: &str) -> Result<bool> {
        // The role's permissions and assignments go with it (foreign keys).
        self.remove("role", query("DELETE FROM roles WHERE id = $1").bind(id)).await
    }

    pub(super) async fn rbac_role_permissions(&self, role_id: &str, page: Page) -> Result<Paged<Permission>> {
        let mut tx = self.pool.begin().await.map_err(db("role"))?;
        role_exists(&mut tx, role_id).await?;
        let q = query("SELECT COUNT(*) AS n FROM role_permissions WHERE role_id = $1").bind(role_id);
        let total = count(&q.fetch_one(&mut *tx).await.map_err(db("role permissions"))?)?;
        let (limit, offset) = bounds(page);
        let q = query(
            "SELECT resource_server, permission FROM role_permissions WHERE role_id = $1
             ORDER BY resource_server, permission LIMIT $2 OFFSET $3",
        )
        .bind(role_id)
        .bind(limit)
        .bind(offset);
        let rows = q.fetch_all(&mut *tx).await.map_err(db("role permissions"))?;
        tx.commit().await.map_err(db("role permissions"))?;
        Ok(Paged { items: rows.iter().map(permission_of).collect::<Result<_>>()?, total })
    }

    pub(super) async fn rbac_add_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        role_exists(&mut tx, role_id).await?;
        check_permissions(self.dialect, &mut tx, permissions).await?;
        insert_permissions(&mut tx, "role_permissions", "role_id", role_id, permissions).await?;
        tx.commit().await.map_err(db("role permissions"))
    }

    pub(super) async fn rbac_remove_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        role_exists(&mut tx, role_id).await?;
        delete_permissions(&mut tx, "role_permissions", "role_id", role_id, permissions).await?;
        tx.commit().await.map_err(db("role permissions"))
    }

    pub(super) async fn rbac_role_users(&self, role_id: &str, after: Option<&str>, page: Page) -> Result<Paged<User>> {
        let mut tx = self.pool.begin().await.map_err(db("role"))?;
        role_exists(&mut tx, role_id).await?;
        let q = query("SELECT COUNT(*) AS n FROM user_roles WHERE role_id = $1").bind(role_id);
        let total = count(&q.fetch_one(&mut *tx).await.map_err(db("role users"))?)?;
        let (limit, offset) = bounds(page);
        // Every user id sorts after the empty string.
        let q = query(
            "SELECT u.data FROM user_roles ur JOIN users u ON u.user_id = ur.user_id
             WHERE ur.role_id = $1 AND ur.user_id > $2
             ORDER BY ur.user_id LIMIT $3 OFFSET $4",
        )
        .bind(role_id)
        .bind(after.unwrap_or_default())
        .bind(limit)
        .bind(offset);
        let rows = q.fetch_all(&mut *tx).await.map_err(db("role users"))?;
        tx.commit().await.map_err(db("role users"))?;
        Ok(Paged { items: rows.iter().map(|r| data(r, "user")).collect::<Result<_>>()?, total })
    }

    pub(super) async fn rbac_user_roles(&self, user_id: &str, page: Page) -> Result<Paged<Role>> {
        let mut tx = self.pool.begin().await.map_err(db("user"))?;
        user_exists(&mut tx, user_id).await?;
        let q = query("SELECT COUNT(*) AS n FROM user_roles WHERE user_id = $1").bind(user_id);
        let total = count(&q.fetch_one(&mut *tx).await.map_err(db("user roles"))?)?;
        let (limit, offset) = bounds(page);
        let q = query(
            "SELECT r.id, r.name, r.description FROM user_roles ur JOIN roles r ON r.id = ur.role_id
             WHERE ur.user_id = $1 ORDER BY r.name, r.id LIMIT $2 OFFSET $3",
        )
        .bind(user_id)
        .bind(limit)
        .bind(offset);
        let rows = q.fetch_all(&mut *tx).await.map_err(db("user roles"))?;
        tx.commit().await.map_err(db("user roles"))?;
        Ok(Paged { items: rows.iter().map(role_of).collect::<Result<_>>()?, total })
    }

    pub(super) async fn rbac_assign_roles(&self, user_ids: &[String], role_ids: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for user_id in user_ids {
            user_exists(&mut tx, user_id).await?;
        }
        for role_id in role_ids {
            role_exists(&mut tx, role_id).await?;
        }
        for user_id in user_ids {
            for role_id in role_ids {
                query("INSERT INTO user_roles (user_id, role_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(user_id)
                    .bind(role_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(missing("user or role"))?;
            }
        }
        tx.commit().await.map_err(db("user roles"))
    }

    pub(super) async fn rbac_unassign_roles(&self, user_id: &str, role_ids: &[String]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        user_exists(&mut tx, user_id).await?;
        for role_id in role_ids {
            role_exists(&mut tx, role_id).await?;
        }
        for role_id in role_ids {
            query("DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2")
                .bind(user_id)
                .bind(role_id)
                .execute(&mut *tx)
                .await
                .map_err(db("user roles"))?;
        }
        tx.commit().await.map_err(db("user roles"))
    }

    pub(super) async fn rbac_user_permission_sources(
        &self,
        user_id: &str,
    ) -> Result<Vec<(Permission, PermissionSource)>> {
        let mut tx = self.pool.begin().await.map_err(db("user"))?;
        user_exists(&mut tx, user_id).await?;
        let q = query(
            "SELECT resource_server, permission, '' AS role_id, '' AS role_name
                 FROM user_permissions WHERE user_id = $1
             UNION ALL
             SELECT rp.resource_server, rp.permission, r.id AS role_id, r.name AS role_name
                 FROM user_roles ur
                 JOIN roles r ON r.id = ur.role_id
                 JOIN role_permissions rp ON rp.role_id = ur.role_id
                 WHERE ur.user_id = $1
             ORDER BY resource_server, permission, role_name",
        )
        .bind(user_id);
        let rows = q.fetch_all(&mut *tx).await.map_err(db("user permissions"))?;
        tx.commit().await.map_err(db("user permissions"))?;
        rows.iter()
            .map(|row| {
                let role_id: String = get(row, "role_id")?;
                // Role ids are never empty, so an empty one marks a direct permission.
                let source = if role_id.is_empty() {
                    PermissionSource::Direct
                } else {
                    PermissionSource::Role { id: role_id, name: get(row, "role_name")? }
                };
                Ok((permission_of(row)?, source))
            })
            .collect()
    }

    pub(super) async fn rbac_add_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        user_exists(&mut tx, user_id).await?;
        check_permissions(self.dialect, &mut tx, permissions).await?;
        insert_permissions(&mut tx, "user_permissions", "user_id", user_id, permissions).await?;
        tx.commit().await.map_err(db("user permissions"))
    }

    pub(super) async fn rbac_remove_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        user_exists(&mut tx, user_id).await?;
        delete_permissions(&mut tx, "user_permissions", "user_id", user_id, permissions).await?;
        tx.commit().await.map_err(db("user permissions"))
    }

    pub(super) async fn rbac_permissions_for(&self, user_id: &str, resource_server: &str) -> Result<Vec<String>> {
        // Each branch reads one primary key's prefix: (user_id, resource_server) of the
        // direct permissions; the user's roles, then (role_id, resource_server) of each.
        let q = query(
            "SELECT permission FROM user_permissions WHERE user_id = $1 AND resource_server = $2
             UNION
             SELECT rp.permission FROM user_roles ur
                 JOIN role_permissions rp ON rp.role_id = ur.role_id AND rp.resource_server = $2
                 WHERE ur.user_id = $1
             ORDER BY permission",
        )
        .bind(user_id)
        .bind(resource_server);
        self.rows("permissions", q).await?.iter().map(|r| get(r, "permission")).collect()
    }

    pub(super) async fn rbac_role_names_of(&self, user_id: &str) -> Result<Vec<String>> {
        let q = query(
            "SELECT r.name FROM user_roles ur JOIN roles r ON r.id = ur.role_id
             WHERE ur.user_id = $1 ORDER BY r.name",
        )
        .bind(user_id);
        self.rows("roles", q).await?.iter().map(|r| get(r, "name")).collect()
    }
}

/// Removes, in `tx`, the permissions of the API `identifier` that name none of `scopes`: a
/// scope taken off an API is taken from every role and user that held it.
pub(super) async fn drop_removed_scopes(tx: &mut Tx, identifier: &str, scopes: &[Scope]) -> Result<()> {
    let held = query(
        "SELECT permission FROM role_permissions WHERE resource_server = $1
         UNION SELECT permission FROM user_permissions WHERE resource_server = $1",
    )
    .bind(identifier)
    .fetch_all(&mut **tx)
    .await
    .map_err(db("permissions"))?;
    for row in held {
        let name: String = get(&row, "permission")?;
        if scopes.iter().any(|s| s.value == name) {
            continue;
        }
        for table in ["role_permissions", "user_permissions"] {
            query(&format!("DELETE FROM {table} WHERE resource_server = $1 AND permission = $2"))
                .bind(identifier)
                .bind(&name)
                .execute(&mut **tx)
                .await
                .map_err(db("permissions"))?;
        }
    }
    Ok(())
}
