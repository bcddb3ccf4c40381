//! One conformance suite for every `Store` backend: each case in [`cases`] runs as its own test
//! against in-memory SQLite, a temporary SQLite file and PostgreSQL (a fresh schema per test
//! in `postgres://postgres@127.0.0.1:5432/test`, or `GATEHOUSE_TEST_POSTGRES`). PostgreSQL
//! being unreachable fails the PostgreSQL tests; it never skips them.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::Connection as _;
use store::{Dialect, Error, SqlStore, Store};

fn postgres_url() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A name no other test (in this or a parallel run) uses.
fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}_{nanos}", std::process::id())
}

/// A store plus whatever must be removed when the test ends, pass or fail.
struct Backend {
    store: SqlStore,
    cleanup: Cleanup,
}

enum Cleanup {
    Nothing,
    File(PathBuf),
    Schema(String),
}

impl Backend {
    async fn sqlite_memory() -> Backend {
        let store = SqlStore::connect("sqlite::memory:").await.expect("in-memory SQLite");
        Backend { store, cleanup: Cleanup::Nothing }
    }

    async fn sqlite_file() -> Backend {
        let path = std::env::temp_dir().join(format!("{}.db", unique("gatehouse_store")));
        let store = SqlStore::connect(&format!("sqlite://{}", path.display())).await.expect("SQLite file");
        Backend { store, cleanup: Cleanup::File(path) }
    }

    async fn postgres() -> Backend {
        let schema = unique("t");
        let cleanup = Cleanup::Schema(schema.clone());
        let store = SqlStore::connect_in_schema(&postgres_url(), &schema)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {} must be reachable: {e}", postgres_url()));
        Backend { store, cleanup }
    }
}

impl Backend {
    /// Closes the pool before the cleanup runs, so no connection still holds a lock on the
    /// schema being dropped. (A failed test skips this; the cleanup still runs.)
    async fn finish(self) {
        self.store.close().await;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        match self {
            Cleanup::Nothing => {}
            Cleanup::File(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::Schema(schema) => {
                let sql = format!("SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                // Drop cannot await and may run while a failed test unwinds: use a thread of
                // its own with its own runtime.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    runtime.block_on(async {
                        let mut conn = sqlx::PgConnection::connect(&postgres_url()).await?;
                        sqlx::raw_sql(&sql).execute(&mut conn).await?;
                        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop test schema {schema}");
                }
            }
        }
    }
}

/// Polls all futures on this task until each is done. Every future holds its own database
/// connection, so the database sees them race.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<Pin<Box<F>>>> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot
                && let Poll::Ready(value) = future.as_mut().poll(cx)
            {
                *output = Some(value);
                *slot = None;
            }
        }
        if pending.iter().all(Option::is_none) { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("every future finished")).collect()
}

/// Runs every listed case of module `$module` (a function taking the store) against each
/// backend, as `$module::<backend>::<case>`. Defined before the case modules so they use it too.
macro_rules! conformance {
    ($module:ident: $($case:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $case() {
                let backend = crate::Backend::sqlite_memory().await;
                crate::$module::$case(&backend.store).await;
                backend.finish().await;
            } )*
        }
        mod sqlite_file {
            $( #[tokio::test] async fn $case() {
                let backend = crate::Backend::sqlite_file().await;
                crate::$module::$case(&backend.store).await;
                backend.finish().await;
            } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $case() {
                let backend = crate::Backend::postgres().await;
                crate::$module::$case(&backend.store).await;
                backend.finish().await;
            } )*
        }
    };
}

#[path = "conformance/lifecycle.rs"]
mod lifecycle;
#[path = "conformance/logs.rs"]
mod logs;
#[path = "conformance/mail.rs"]
mod mail;

conformance!(cases:
    ping,
    tenant_settings,
    client_crud,
    create_client_never_replaces_one,
    a_new_client_joins_every_connection_in_its_transaction,
    put_client_keeps_digest,
    connection_crud,
    resource_server_crud,
    client_grant_crud,
    user_crud,
    console_admins,
    deleting_a_connection_deletes_its_users,
    user_email_unique_per_connection,
    user_username_unique_per_connection,
    user_by_login,
    record_login_concurrent,
    signing_key_rotation,
    signing_key_secrets_replaced_all_or_none,
    code_redemption,
    code_redemption_concurrent,
    refresh_rotation,
    refresh_rotation_concurrent,
    revoke_refresh_family,
    refresh_family_rotations_and_last_use,
    revoked_grants,
    login_transaction_expiry,
    session_expiry,
    login_failures,
    rate_limit_windows,
    password_tickets,
    change_password_ends_what_the_old_one_opened,
    deleting_a_client_takes_what_names_it,
    deleting_an_api_takes_its_client_grants,
    action_crud,
    action_deploy_is_one_transaction,
    action_delete_takes_versions_and_bindings,
    trigger_bindings_are_replaced_all_or_none,
    import_jobs,
    import_job_claim_concurrent,
    federated_state_redemption,
    federated_state_redemption_concurrent,
    federated_issuers,
    userinfo_claims,
    purge_expired,
    search_metadata,
    search_root_fields,
    search_ranges_and_dates,
    search_boolean_logic,
    search_sort_and_paging,
    search_hostile_values,
    search_caps_at_1000,
    roles_crud,
    role_and_user_permissions,
    role_assignments_and_paging,
    rbac_follows_deletions,
);

mod cases {
    use serde_json::{Map, Value, json};
    use store::*;

    use super::join_all;

    fn extra(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn client(id: &str) -> Client {
        Client {
            client_id: id.into(),
            name: format!("App {id}"),
            app_type: Some("regular_web".into()),
            callbacks: vec!["https://app.example/cb".into()],
            allowed_origins: vec![],
            web_origins: vec!["https://app.example".into()],
            allowed_logout_urls: vec![],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            token_endpoint_auth_method: "client_secret_post".into(),
            jwt_configuration: JwtConfiguration::default(),
            refresh_token: RefreshTokenPolicy { rotation_type: "rotating".into(), ..Default::default() },
            is_first_party: true,
            oidc_conformant: true,
            extra: extra(json!({"description": "test app", "client_metadata": {"tier": "gold"}})),
        }
    }

    fn connection(id: &str, name: &str) -> Connection {
        Connection {
            id: id.into(),
            name: name.into(),
            strategy: "auth0".into(),
            options: extra(json!({"disable_signup": false, "passwordPolicy": "good"})),
            enabled_clients: vec!["c1".into()],
            display_name: Some("Users".into()),
            realms: vec![name.into()],
            is_domain_connection: false,
            extra: extra(json!({"metadata": {"k": "v"}})),
        }
    }

    fn resource_server(id: &str, identifier: &str) -> ResourceServer {
        ResourceServer {
            id: id.into(),
            name: format!("API {identifier}"),
            identifier: identifier.into(),
            scopes: vec![Scope { value: "read:things".into(), description: "Read".into() }],
            signing_alg: "RS256".into(),
            token_lifetime: 86400,
            token_lifetime_for_web: 7200,
            allow_offline_access: true,
            skip_consent_for_verifiable_first_party_clients: true,
            is_system: false,
            extra: extra(json!({"enforce_policies": true})),
        }
    }

    fn grant(id: &str, client_id: &str, audience: &str) -> ClientGrant {
        ClientGrant {
            id: id.into(),
            client_id: client_id.into(),
            audience: audience.into(),
            scope: vec!["read:things".into()],
            extra: extra(json!({"subject_type": "client"})),
        }
    }

    fn user(id: &str, connection: &str, email: Option<&str>, username: Option<&str>) -> StoredUser {
        StoredUser {
            user: User {
                user_id: id.into(),
                connection: connection.into(),
                email: email.map(Into::into),
                email_verified: true,
                username: username.map(Into::into),
                phone_number: None,
                name: Some("Ada Lovelace".into()),
                nickname: Some("ada".into()),
                given_name: Some("Ada".into()),
                family_name: None,
                picture: Some("https://pic.example/ada.png".into()),
                app_metadata: extra(json!({"roles": ["admin"]})),
                user_metadata: extra(json!({"theme": "dark"})),
                identities: vec![Identity {
                    connection: connection.into(),
                    provider: "auth0".into(),
                    user_id: id.trim_start_matches("auth0|").into(),
                    is_social: false,
                    profile_data: None,
                }],
                blocked: false,
                created_at: 1_700_000_000_000,
                updated_at: 1_700_000_000_001,
                last_login: None,
                last_ip: None,
                logins_count: 0,
                extra: extra(json!({"custom": {"nested": [1, 2.5, null]}})),
            },
            password_hash: Some(format!("$2b$10$hash-of-{id}")),
        }
    }

    fn key(kid: &str, created_at: Millis, current: bool) -> SigningKey {
        SigningKey {
            kid: kid.into(),
            private_pkcs8: vec![0, 1, 2, 255, kid.len() as u8],
            cert_der: vec![48, 130, 0, 0, 7],
            created_at,
            current,
            rotated_at: None,
            revoked_at: None,
        }
    }

    fn token(digest: u8, family: &str) -> RefreshToken {
        RefreshToken {
            token_sha256: vec![digest; 32],
            family: family.into(),
            client_id: "c1".into(),
            user_id: "auth0|u1".into(),
            grant: json!({"scope": "openid offline_access", "aud": "https://api.example"}),
            created_at: 1000,
            expires_at: Some(1_000_000),
            rotated_at: None,
            revoked: false,
            last_used_at: None,
        }
    }

    pub async fn ping(store: &dyn Store) {
        store.ping().await.expect("ping");
    }

    pub async fn tenant_settings(store: &dyn Store) {
        assert_eq!(store.tenant_settings().await.unwrap(), TenantSettings::default());
        let settings = TenantSettings {
            friendly_name: Some("Gatehouse".into()),
            allowed_logout_urls: vec!["https://app.example/bye".into()],
            default_audience: Some("https://api.example".into()),
            default_directory: Some("Username-Password-Authentication".into()),
            session_lifetime: Some(168.0),
            idle_session_lifetime: Some(72.5),
            extra: extra(json!({"support_email": "help@example.com", "flags": {"x": true}})),
        };
        store.put_tenant_settings(&settings).await.unwrap();
        assert_eq!(store.tenant_settings().await.unwrap(), settings);
        let renamed = TenantSettings { friendly_name: Some("Renamed".into()), ..settings };
        store.put_tenant_settings(&renamed).await.unwrap();
        assert_eq!(store.tenant_settings().await.unwrap(), renamed);
    }

    pub async fn client_crud(store: &dyn Store) {
        assert_eq!(store.client("c1").await.unwrap(), None);
        let one = StoredClient { client: client("c1"), secret_sha256: Some(vec![1; 32]) };
        let two = StoredClient { client: client("c2"), secret_sha256: None };
        store.put_client(&two).await.unwrap();
        store.put_client(&one).await.unwrap();
        assert_eq!(store.client("c1").await.unwrap(), Some(one.clone()));
        assert_eq!(store.client("c2").await.unwrap(), Some(two.clone()));
        assert_eq!(store.clients().await.unwrap(), vec![one.clone(), two]);

        let mut renamed = one.clone();
        renamed.client.name = "Renamed".into();
        renamed.client.extra.insert("logo_uri".into(), json!("https://logo"));
        store.put_client(&renamed).await.unwrap();
        assert_eq!(store.client("c1").await.unwrap(), Some(renamed));

        assert!(store.delete_client("c1").await.unwrap());
        assert!(!store.delete_client("c1").await.unwrap());
        assert_eq!(store.client("c1").await.unwrap(), None);
        assert_eq!(store.clients().await.unwrap().len(), 1);
    }

    pub async fn create_client_never_replaces_one(store: &dyn Store) {
        let first = StoredClient { client: client("c1"), secret_sha256: Some(vec![1; 32]) };
        store.create_client(&first, false).await.unwrap();
        let mut second = StoredClient { client: client("c1"), secret_sha256: Some(vec![2; 32]) };
        second.client.name = "Impostor".into();
        assert!(matches!(store.create_client(&second, false).await, Err(Error::Conflict(_))));
        assert_eq!(store.client("c1").await.unwrap(), Some(first), "the first client and its secret stay");
    }

    pub async fn a_new_client_joins_every_connection_in_its_transaction(store: &dyn Store) {
        let db = Connection { enabled_clients: vec!["c0".into()], ..connection("con_1", "db") };
        let social = Connection { enabled_clients: vec![], ..connection("con_2", "google-oauth2") };
        store.put_connection(&db).await.unwrap();
        store.put_connection(&social).await.unwrap();
        store.create_client(&StoredClient { client: client("c1"), secret_sha256: None }, true).await.unwrap();
        for c in store.connections().await.unwrap() {
            assert!(c.enabled_for("c1"), "{}", c.name);
        }
        assert_eq!(store.connection("con_1").await.unwrap().unwrap().enabled_clients, vec!["c0", "c1"]);
        // A taken id changes no connection.
        let impostor = StoredClient { client: client("c0"), secret_sha256: None };
        store.put_client(&impostor).await.unwrap();
        store.put_connection(&social).await.unwrap();
        assert!(matches!(store.create_client(&impostor, true).await, Err(Error::Conflict(_))));
        assert_eq!(store.connection("con_2").await.unwrap(), Some(social));
        store.create_client(&StoredClient { client: client("c2"), secret_sha256: None }, false).await.unwrap();
        assert!(!store.connection("con_1").await.unwrap().unwrap().enabled_for("c2"));
    }

    pub async fn put_client_keeps_digest(store: &dyn Store) {
        let with_secret = StoredClient { client: client("c1"), secret_sha256: Some(vec![7; 32]) };
        store.put_client(&with_secret).await.unwrap();
        let mut edited = client("c1");
        edited.callbacks.push("https://other.example/cb".into());
        store.put_client(&StoredClient { client: edited.clone(), secret_sha256: None }).await.unwrap();
        let stored = store.client("c1").await.unwrap().unwrap();
        assert_eq!(stored.client, edited);
        assert_eq!(stored.secret_sha256, Some(vec![7; 32]));

        store.put_client(&StoredClient { client: edited, secret_sha256: Some(vec![9; 32]) }).await.unwrap();
        assert_eq!(store.client("c1").await.unwrap().unwrap().secret_sha256, Some(vec![9; 32]));
    }

    pub async fn connection_crud(store: &dyn Store) {
        let db = connection("con_1", "Username-Password-Authentication");
        let google = Connection { strategy: "google-oauth2".into(), ..connection("con_2", "google-oauth2") };
        store.put_connection(&db).await.unwrap();
        store.put_connection(&google).await.unwrap();
        assert_eq!(store.connection("con_1").await.unwrap(), Some(db.clone()));
        assert_eq!(store.connection_by_name("google-oauth2").await.unwrap(), Some(google.clone()));
        assert_eq!(store.connection_by_name("nope").await.unwrap(), None);
        assert_eq!(store.connections().await.unwrap(), vec![db.clone(), google.clone()]);

        let clash = connection("con_3", "google-oauth2");
        assert!(matches!(store.put_connection(&clash).await, Err(Error::Conflict(_))));
        let renamed_into_clash = connection("con_1", "google-oauth2");
        assert!(matches!(store.put_connection(&renamed_into_clash).await, Err(Error::Conflict(_))));
        assert_eq!(store.connection("con_3").await.unwrap(), None);

        let renamed = connection("con_1", "Renamed");
        store.put_connection(&renamed).await.unwrap();
        assert_eq!(store.connection_by_name("Renamed").await.unwrap(), Some(renamed));
        assert_eq!(store.connection_by_name("Username-Password-Authentication").await.unwrap(), None);

        assert_eq!(store.delete_connection("con_2").await.unwrap(), Some(0));
        assert_eq!(store.delete_connection("con_2").await.unwrap(), None);
        assert_eq!(store.connections().await.unwrap().len(), 1);
    }

    pub async fn resource_server_crud(store: &dyn Store) {
        let api = resource_server("rs1", "https://api.example");
        store.put_resource_server(&api).await.unwrap();
        assert_eq!(store.resource_server("rs1").await.unwrap(), Some(api.clone()));
        assert_eq!(store.resource_server_by_identifier("https://api.example").await.unwrap(), Some(api.clone()));
        let clash = resource_server("rs2", "https://api.example");
        assert!(matches!(store.put_resource_server(&clash).await, Err(Error::Conflict(_))));

        let mut edited = api.clone();
        edited.scopes.push(Scope { value: "write:things".into(), description: String::new() });
        store.put_resource_server(&edited).await.unwrap();
        let other = resource_server("rs2", "https://other.example");
        store.put_resource_server(&other).await.unwrap();
        assert_eq!(store.resource_servers().await.unwrap(), vec![edited, other]);

        assert!(store.delete_resource_server("rs1").await.unwrap());
        assert!(!store.delete_resource_server("rs1").await.unwrap());
        assert_eq!(store.resource_server_by_identifier("https://api.example").await.unwrap(), None);
    }

    pub async fn client_grant_crud(store: &dyn Store) {
        let g1 = grant("cgr_1", "c1", "https://api.example");
        let g2 = grant("cgr_2", "c2", "https://api.example");
        store.put_client_grant(&g1).await.unwrap();
        store.put_client_grant(&g2).await.unwrap();
        assert_eq!(store.client_grant("cgr_1").await.unwrap(), Some(g1.clone()));
        assert_eq!(store.client_grant_for("c2", "https://api.example").await.unwrap(), Some(g2.clone()));
        assert_eq!(store.client_grant_for("c1", "https://other.example").await.unwrap(), None);
        assert_eq!(store.client_grants().await.unwrap(), vec![g1.clone(), g2]);

        let clash = grant("cgr_3", "c1", "https://api.example");
        assert!(matches!(store.put_client_grant(&clash).await, Err(Error::Conflict(_))));

        let widened = ClientGrant { scope: vec!["read:things".into(), "write:things".into()], ..g1 };
        store.put_client_grant(&widened).await.unwrap();
        assert_eq!(store.client_grant("cgr_1").await.unwrap(), Some(widened));
        assert!(store.delete_client_grant("cgr_1").await.unwrap());
        assert!(!store.delete_client_grant("cgr_1").await.unwrap());
        assert_eq!(store.client_grants().await.unwrap().len(), 1);
    }

    pub async fn user_crud(store: &dyn Store) {
        let ada = user("auth0|u1", "db", Some("Ada@Example.com"), Some("ada"));
        store.create_user(&ada).await.unwrap();
        assert_eq!(store.user("auth0|u1").await.unwrap(), Some(ada.clone()));
        assert_eq!(store.user("auth0|nobody").await.unwrap(), None);

        let same_id = user("auth0|u1", "db", Some("other@example.com"), None);
        assert!(matches!(store.create_user(&same_id).await, Err(Error::Conflict(_))));

        let mut edited = ada.clone();
        edited.user.email = Some("ada@new.example".into());
        edited.user.updated_at += 5;
        edited.user.user_metadata.insert("lang".into(), json!("en"));
        edited.password_hash = None;
        store.update_user(&edited).await.unwrap();
        assert_eq!(store.user("auth0|u1").await.unwrap(), Some(edited.clone()));
        assert_eq!(store.user_by_login("db", "ada@new.example").await.unwrap(), Some(edited));
        assert_eq!(store.user_by_login("db", "Ada@Example.com").await.unwrap(), None);

        let ghost = user("auth0|ghost", "db", None, None);
        assert!(matches!(store.update_user(&ghost).await, Err(Error::NotFound(_))));
        assert_eq!(store.user("auth0|ghost").await.unwrap(), None);

        assert!(store.delete_user("auth0|u1").await.unwrap());
        assert!(!store.delete_user("auth0|u1").await.unwrap());
        assert_eq!(store.user("auth0|u1").await.unwrap(), None);
    }

    pub async fn console_admins(store: &dyn Store) {
        assert_eq!(store.console_admin_count().await.unwrap(), 0);
        let missing = store.put_console_admin("console|nobody", "full", 1).await;
        assert!(matches!(missing, Err(Error::NotFound(_))), "an administrator is an existing user: {missing:?}");
        store.create_user(&user("console|a1", "admins", Some("ops@example.com"), None)).await.unwrap();
        store.put_console_admin("console|a1", "full", 1).await.unwrap();
        assert_eq!(store.console_admin_role("console|a1").await.unwrap().as_deref(), Some("full"));
        store.put_console_admin("console|a1", "read-only", 2).await.unwrap();
        assert_eq!(store.console_admin_role("console|a1").await.unwrap().as_deref(), Some("read-only"));
        assert_eq!(store.console_admin_count().await.unwrap(), 1);
        assert_eq!(store.console_admin_role("auth0|u1").await.unwrap(), None);
        // Deleting the user ends the administrator with it.
        assert!(store.delete_user("console|a1").await.unwrap());
        assert_eq!(store.console_admin_role("console|a1").await.unwrap(), None);
        assert_eq!(store.console_admin_count().await.unwrap(), 0);
    }

    pub async fn deleting_a_connection_deletes_its_users(store: &dyn Store) {
        store.put_connection(&connection("con_corp", "corp")).await.unwrap();
        store.create_user(&user("oidc|corp|1", "corp", Some("ada@example.com"), None)).await.unwrap();
        store.create_user(&user("oidc|corp|2", "corp", None, Some("bob"))).await.unwrap();
        store.create_user(&user("auth0|u1", "db", Some("ada@example.com"), None)).await.unwrap();
        store.create_user(&user("oidc|corpus|1", "corpus", None, None)).await.unwrap();
        assert_eq!(store.delete_connection("con_corp").await.unwrap(), Some(2));
        assert_eq!(store.connection_by_name("corp").await.unwrap(), None);
        assert_eq!(store.user("oidc|corp|1").await.unwrap(), None);
        assert_eq!(store.user("oidc|corp|2").await.unwrap(), None);
        assert_eq!(store.user_by_login("corp", "bob").await.unwrap(), None);
        assert!(store.user("auth0|u1").await.unwrap().is_some(), "other connections keep their users");
        assert!(store.user("oidc|corpus|1").await.unwrap().is_some(), "names are matched exactly");
        assert_eq!(store.delete_connection("con_corp").await.unwrap(), None);
        // The email is free again in that connection.
        store.create_user(&user("oidc|corp|3", "corp", Some("ada@example.com"), None)).await.unwrap();
    }

    pub async fn user_email_unique_per_connection(store: &dyn Store) {
        store.create_user(&user("auth0|u1", "db", Some("ada@example.com"), None)).await.unwrap();
        let shouting = user("auth0|u2", "db", Some("ADA@EXAMPLE.COM"), None);
        assert!(matches!(store.create_user(&shouting).await, Err(Error::Conflict(_))));
        assert_eq!(store.user("auth0|u2").await.unwrap(), None);

        let elsewhere = user("auth0|u3", "other-db", Some("ada@example.com"), None);
        store.create_user(&elsewhere).await.unwrap();

        // Users without an email never collide.
        store.create_user(&user("auth0|u4", "db", None, Some("x"))).await.unwrap();
        store.create_user(&user("auth0|u5", "db", None, Some("y"))).await.unwrap();

        let mut grab = user("auth0|u4", "db", Some("Ada@example.com"), Some("x"));
        grab.user.updated_at += 1;
        assert!(matches!(store.update_user(&grab).await, Err(Error::Conflict(_))));
        assert_eq!(store.user("auth0|u4").await.unwrap().unwrap().user.email, None);
    }

    pub async fn user_username_unique_per_connection(store: &dyn Store) {
        store.create_user(&user("auth0|u1", "db", Some("a@example.com"), Some("Ada"))).await.unwrap();
        let taken = user("auth0|u2", "db", Some("b@example.com"), Some("ADA"));
        assert!(matches!(store.create_user(&taken).await, Err(Error::Conflict(m)) if m.contains("username")));
        assert_eq!(store.user("auth0|u2").await.unwrap(), None);
        // Another connection may use it; users without a username never collide.
        store.create_user(&user("auth0|u3", "other", Some("a@example.com"), Some("ada"))).await.unwrap();
        store.create_user(&user("auth0|u4", "db", Some("c@example.com"), None)).await.unwrap();
        store.create_user(&user("auth0|u5", "db", Some("d@example.com"), None)).await.unwrap();
        let mut grab = user("auth0|u4", "db", Some("c@example.com"), Some("ada"));
        grab.user.updated_at += 1;
        assert!(matches!(store.update_user(&grab).await, Err(Error::Conflict(_))));
        assert_eq!(store.user("auth0|u4").await.unwrap().unwrap().user.username, None);

        // Two writers racing for one new username: the database lets exactly one through.
        let racers: Vec<StoredUser> = (0..4)
            .map(|i| user(&format!("auth0|r{i}"), "db", Some(&format!("r{i}@example.com")), Some("racer")))
            .collect();
        let results = join_all(racers.iter().map(|u| store.create_user(u))).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(Error::Conflict(_)))), "{results:?}");
    }

    pub async fn user_by_login(store: &dyn Store) {
        let ada = user("auth0|u1", "db", Some("Ada@Example.com"), Some("AdaL"));
        let bob = user("auth0|u2", "db", Some("bob@example.com"), None);
        store.create_user(&ada).await.unwrap();
        store.create_user(&bob).await.unwrap();
        store.create_user(&user("auth0|u3", "other", Some("ada@example.com"), Some("adal"))).await.unwrap();

        for login in ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com", "adal", "ADAL"] {
            assert_eq!(store.user_by_login("db", login).await.unwrap(), Some(ada.clone()), "{login}");
        }
        assert_eq!(store.user_by_login("db", "BOB@example.com").await.unwrap(), Some(bob));
        assert_eq!(store.user_by_login("db", "nobody").await.unwrap(), None);
        assert_eq!(store.user_by_login("third", "adal").await.unwrap(), None);
        let other = store.user_by_login("other", "ADAL").await.unwrap().unwrap();
        assert_eq!(other.user.user_id, "auth0|u3");
    }

    pub async fn record_login_concurrent(store: &dyn Store) {
        let ada = user("auth0|u1", "db", Some("ada@example.com"), None);
        store.create_user(&ada).await.unwrap();
        let logins = (0..10).map(|i| store.record_login("auth0|u1", 5_000 + i, "203.0.113.9"));
        for result in join_all(logins).await {
            result.unwrap();
        }
        let stored = store.user("auth0|u1").await.unwrap().unwrap();
        assert_eq!(stored.user.logins_count, 10);
        assert_eq!(stored.user.last_ip.as_deref(), Some("203.0.113.9"));
        assert!((5_000..5_010).contains(&stored.user.last_login.unwrap()));
        // Everything else is untouched.
        let mut expected = ada;
        expected.user.logins_count = 10;
        expected.user.last_login = stored.user.last_login;
        expected.user.last_ip = stored.user.last_ip.clone();
        assert_eq!(stored, expected);

        assert!(matches!(store.record_login("auth0|nobody", 1, "x").await, Err(Error::NotFound(_))));
    }

    pub async fn signing_key_rotation(store: &dyn Store) {
        assert!(store.signing_keys().await.unwrap().is_empty());
        store.add_signing_key(&key("k1", 100, true)).await.unwrap();
        store.add_signing_key(&key("k2", 200, true)).await.unwrap();
        store.add_signing_key(&key("k3", 300, false)).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k1", "k2", "k3"]);
        assert_eq!(keys.iter().filter(|k| k.current).count(), 1);
        assert_eq!(keys[0], SigningKey { current: false, rotated_at: Some(200), ..key("k1", 100, true) });
        assert_eq!(keys[1], key("k2", 200, true));
        assert_eq!(keys[2], key("k3", 300, false));

        store.add_signing_key(&key("k4", 400, true)).await.unwrap();
        let keys = store.signing_keys().await.unwrap();
        let current: Vec<_> = keys.iter().filter(|k| k.current).map(|k| k.kid.as_str()).collect();
        assert_eq!(current, ["k4"]);
        assert_eq!(keys[0].rotated_at, Some(200), "an old key keeps its first rotation time");
        assert_eq!(keys[1].rotated_at, Some(400));

        assert!(matches!(store.add_signing_key(&key("k4", 500, false)).await, Err(Error::Conflict(_))));
        assert_eq!(store.signing_keys().await.unwrap().len(), 4);
    }

    pub async fn signing_key_secrets_replaced_all_or_none(store: &dyn Store) {
        store.add_signing_key(&key("k1", 100, false)).await.unwrap();
        store.add_signing_key(&key("k2", 200, true)).await.unwrap();
        let replace =
            |kid: &str, old: Vec<u8>, new: &[u8]| KeySecretReplacement { kid: kid.into(), old, new: new.to_vec() };
        let (old1, old2) = (key("k1", 0, false).private_pkcs8, key("k2", 0, false).private_pkcs8);

        // One stale expectation: nothing is written, not even the key that matched.
        let stale = [replace("k1", old1.clone(), b"sealed-1"), replace("k2", b"other".to_vec(), b"sealed-2")];
        assert!(!store.replace_signing_key_secrets(&stale).await.unwrap());
        assert_eq!(store.signing_keys().await.unwrap()[0].private_pkcs8, old1);

        let fresh = [replace("k1", old1.clone(), b"sealed-1"), replace("k2", old2.clone(), b"sealed-2")];
        assert!(store.replace_signing_key_secrets(&fresh).await.unwrap());
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0], SigningKey { private_pkcs8: b"sealed-1".to_vec(), ..key("k1", 100, false) });
        assert_eq!(keys[1], SigningKey { private_pkcs8: b"sealed-2".to_vec(), ..key("k2", 200, true) });
        // A second node doing the same replacement finds the keys already replaced.
        assert!(!store.replace_signing_key_secrets(&fresh).await.unwrap());
        assert!(store.replace_signing_key_secrets(&[]).await.unwrap());
    }

    pub async fn code_redemption(store: &dyn Store) {
        let grant = json!({"client_id": "c1", "scope": "openid", "nonce": "n"});
        let code = AuthCode { code_sha256: vec![1; 32], grant: grant.clone(), expires_at: 1_000 };
        store.put_code(&code).await.unwrap();
        assert_eq!(store.redeem_code(&[1; 32], 500).await.unwrap(), CodeRedemption::Fresh(grant.clone()));
        assert_eq!(store.redeem_code(&[1; 32], 600).await.unwrap(), CodeRedemption::Reused(grant.clone()));
        assert_eq!(store.redeem_code(&[1; 32], 5_000).await.unwrap(), CodeRedemption::Reused(grant));

        let stale = AuthCode { code_sha256: vec![2; 32], grant: json!({}), expires_at: 1_000 };
        store.put_code(&stale).await.unwrap();
        assert_eq!(store.redeem_code(&[2; 32], 1_000).await.unwrap(), CodeRedemption::Unknown);
        assert_eq!(store.redeem_code(&[2; 32], 999).await.unwrap(), CodeRedemption::Fresh(json!({})));
        assert_eq!(store.redeem_code(&[3; 32], 0).await.unwrap(), CodeRedemption::Unknown);
    }

    pub async fn code_redemption_concurrent(store: &dyn Store) {
        let grant = json!({"client_id": "c1"});
        store.put_code(&AuthCode { code_sha256: vec![9; 32], grant: grant.clone(), expires_at: 10_000 }).await.unwrap();
        let attempts = (0..8).map(|i| store.redeem_code(&[9; 32], 100 + i));
        let outcomes: Vec<_> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
        let fresh = outcomes.iter().filter(|o| **o == CodeRedemption::Fresh(grant.clone())).count();
        let reused = outcomes.iter().filter(|o| **o == CodeRedemption::Reused(grant.clone())).count();
        assert_eq!((fresh, reused), (1, 7), "{outcomes:?}");
    }

    pub async fn refresh_rotation(store: &dyn Store) {
        let first = token(1, "fam");
        store.put_refresh_token(&first).await.unwrap();
        assert_eq!(store.refresh_token(&[1; 32]).await.unwrap(), Some(first.clone()));
        assert_eq!(store.refresh_token(&[2; 32]).await.unwrap(), None);

        let second = RefreshToken { created_at: 2_000, ..token(2, "fam") };
        assert!(store.rotate_refresh_token(&[1; 32], 2_000, &second).await.unwrap());
        let old = store.refresh_token(&[1; 32]).await.unwrap().unwrap();
        assert_eq!(old, RefreshToken { rotated_at: Some(2_000), ..first });
        assert_eq!(store.refresh_token(&[2; 32]).await.unwrap(), Some(second));

        // Rotating the old token again writes nothing.
        let third = token(3, "fam");
        assert!(!store.rotate_refresh_token(&[1; 32], 3_000, &third).await.unwrap());
        assert_eq!(store.refresh_token(&[3; 32]).await.unwrap(), None);
        assert_eq!(store.refresh_token(&[1; 32]).await.unwrap().unwrap().rotated_at, Some(2_000));

        // Neither does rotating a revoked or unknown token.
        store.put_refresh_token(&RefreshToken { revoked: true, ..token(4, "other") }).await.unwrap();
        assert!(!store.rotate_refresh_token(&[4; 32], 3_000, &third).await.unwrap());
        assert!(!store.rotate_refresh_token(&[5; 32], 3_000, &third).await.unwrap());
        assert_eq!(store.refresh_token(&[3; 32]).await.unwrap(), None);

        // put replaces the whole row.
        let replaced = RefreshToken { expires_at: None, grant: json!({"scope": "openid"}), ..token(4, "other") };
        store.put_refresh_token(&replaced).await.unwrap();
        assert_eq!(store.refresh_token(&[4; 32]).await.unwrap(), Some(replaced));
    }

    pub async fn refresh_rotation_concurrent(store: &dyn Store) {
        store.put_refresh_token(&token(1, "fam")).await.unwrap();
        let successors: Vec<_> = (0..8u8).map(|i| token(100 + i, "fam")).collect();
        let attempts = successors.iter().map(|new| store.rotate_refresh_token(&[1; 32], 2_000, new));
        let outcomes: Vec<bool> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(outcomes.iter().filter(|won| **won).count(), 1, "{outcomes:?}");
        let mut stored = 0;
        for new in &successors {
            stored += usize::from(store.refresh_token(&new.token_sha256).await.unwrap().is_some());
        }
        assert_eq!(stored, 1);
    }

    pub async fn refresh_family_rotations_and_last_use(store: &dyn Store) {
        store.put_refresh_token(&token(1, "fam")).await.unwrap();
        store.put_refresh_token(&token(9, "other")).await.unwrap();
        assert!(!store.refresh_family_rotated_after("fam", 0).await.unwrap(), "nothing rotated yet");
        assert!(store.rotate_refresh_token(&[1; 32], 2_000, &token(2, "fam")).await.unwrap());
        assert!(store.refresh_family_rotated_after("fam", 1_999).await.unwrap());
        assert!(!store.refresh_family_rotated_after("fam", 2_000).await.unwrap(), "strictly after");
        assert!(!store.refresh_family_rotated_after("other", 0).await.unwrap(), "per family");

        store.touch_refresh_token(&[9; 32], 5_000).await.unwrap();
        assert_eq!(store.refresh_token(&[9; 32]).await.unwrap().unwrap().last_used_at, Some(5_000));
        assert_eq!(store.refresh_token(&[2; 32]).await.unwrap().unwrap().last_used_at, None, "only that token");
        store.touch_refresh_token(&[7; 32], 5_000).await.unwrap(); // unknown: nothing to do
    }

    pub async fn revoked_grants(store: &dyn Store) {
        assert!(store.revoked_grants(0).await.unwrap().is_empty());
        store.revoke_grant("g1", 2_000).await.unwrap();
        store.revoke_grant("g2", 5_000).await.unwrap();
        // Recorded again with an earlier end: the later one stays.
        store.revoke_grant("g2", 1_000).await.unwrap();
        let mut live = store.revoked_grants(1_500).await.unwrap();
        live.sort();
        assert_eq!(live, ["g1", "g2"]);
        assert_eq!(store.revoked_grants(2_000).await.unwrap(), ["g2"], "g1 has ended");
        assert_eq!(store.purge_expired(2_000).await.unwrap(), 1);
        assert_eq!(store.revoked_grants(0).await.unwrap(), ["g2"]);
    }

    pub async fn revoke_refresh_family(store: &dyn Store) {
        for digest in 1..=3 {
            store.put_refresh_token(&token(digest, "fam")).await.unwrap();
        }
        store.put_refresh_token(&token(9, "other")).await.unwrap();
        assert_eq!(store.revoke_refresh_family("fam").await.unwrap(), 3);
        for digest in 1..=3 {
            assert!(store.refresh_token(&[digest; 32]).await.unwrap().unwrap().revoked);
        }
        assert!(!store.refresh_token(&[9; 32]).await.unwrap().unwrap().revoked);
        assert_eq!(store.revoke_refresh_family("fam").await.unwrap(), 0);
        assert_eq!(store.revoke_refresh_family("nobody").await.unwrap(), 0);
    }

    pub async fn login_transaction_expiry(store: &dyn Store) {
        let tx = LoginTransaction {
            id: "tx1".into(),
            request: json!({"client_id": "c1", "redirect_uri": "https://app.example/cb", "state": "s"}),
            csrf: "csrf-token".into(),
            expires_at: 1_000,
        };
        store.put_login_transaction(&tx).await.unwrap();
        assert_eq!(store.login_transaction("tx1", 999).await.unwrap(), Some(tx.clone()));
        assert_eq!(store.login_transaction("tx1", 1_000).await.unwrap(), None);
        assert_eq!(store.login_transaction("nope", 0).await.unwrap(), None);

        let extended = LoginTransaction { expires_at: 2_000, ..tx };
        store.put_login_transaction(&extended).await.unwrap();
        assert_eq!(store.login_transaction("tx1", 1_500).await.unwrap(), Some(extended));
        store.delete_login_transaction("tx1").await.unwrap();
        assert_eq!(store.login_transaction("tx1", 0).await.unwrap(), None);
        store.delete_login_transaction("tx1").await.unwrap();
    }

    pub async fn session_expiry(store: &dyn Store) {
        let session = SsoSession {
            id: "s1".into(),
            user_id: "auth0|u1".into(),
            auth_time: 100,
            last_seen: 200,
            expires_at: 1_000,
            clients: vec!["c1".into(), "c2".into()],
        };
        store.put_session(&session).await.unwrap();
        assert_eq!(store.session("s1", 999).await.unwrap(), Some(session.clone()));
        assert_eq!(store.session("s1", 1_000).await.unwrap(), None);

        let touched = SsoSession { last_seen: 900, expires_at: 5_000, ..session };
        store.put_session(&touched).await.unwrap();
        assert_eq!(store.session("s1", 4_000).await.unwrap(), Some(touched));
        store.delete_session("s1").await.unwrap();
        assert_eq!(store.session("s1", 0).await.unwrap(), None);
    }

    pub async fn login_failures(store: &dyn Store) {
        assert_eq!(store.failures("u1", "1.1.1.1").await.unwrap(), None);
        let count = |failures, first_at| FailureCount { failures, first_at };
        assert_eq!(store.record_failure("u1", "1.1.1.1", 1_000, 0).await.unwrap(), count(1, 1_000));
        assert_eq!(store.record_failure("u1", "1.1.1.1", 1_100, 500).await.unwrap(), count(2, 1_000));
        assert_eq!(store.record_failure("u1", "1.1.1.1", 1_200, 1_000).await.unwrap(), count(3, 1_000));
        assert_eq!(store.failures("u1", "1.1.1.1").await.unwrap(), Some(count(3, 1_000)));

        // The window moved past the first failure: counting starts over.
        assert_eq!(store.record_failure("u1", "1.1.1.1", 9_000, 1_001).await.unwrap(), count(1, 9_000));
        assert_eq!(store.record_failure("u1", "1.1.1.1", 9_100, 1_001).await.unwrap(), count(2, 9_000));

        assert_eq!(store.record_failure("u1", "2.2.2.2", 9_000, 0).await.unwrap(), count(1, 9_000));
        assert_eq!(store.record_failure("u2", "1.1.1.1", 9_000, 0).await.unwrap(), count(1, 9_000));

        store.clear_failures("u1", Some("1.1.1.1")).await.unwrap();
        assert_eq!(store.failures("u1", "1.1.1.1").await.unwrap(), None);
        assert_eq!(store.failures("u1", "2.2.2.2").await.unwrap(), Some(count(1, 9_000)));
        store.record_failure("u1", "3.3.3.3", 9_000, 0).await.unwrap();

        store.clear_failures("u1", None).await.unwrap();
        assert_eq!(store.failures("u1", "2.2.2.2").await.unwrap(), None);
        assert_eq!(store.failures("u1", "3.3.3.3").await.unwrap(), None);
        assert_eq!(store.failures("u2", "1.1.1.1").await.unwrap(), Some(count(1, 9_000)));
    }

    pub async fn rate_limit_windows(store: &dyn Store) {
        assert_eq!(store.count_hit("mail:u1", 1_000, 500).await.unwrap(), 1);
        assert_eq!(store.count_hit("mail:u1", 1_100, 500).await.unwrap(), 2);
        assert_eq!(store.count_hit("mail:u2", 1_100, 500).await.unwrap(), 1, "keys count apart");
        assert_eq!(store.count_hit("mail:u1", 1_499, 500).await.unwrap(), 3);
        // The window ended 500 ms after its first hit: counting starts over.
        assert_eq!(store.count_hit("mail:u1", 1_500, 500).await.unwrap(), 1);
        assert_eq!(store.count_hit("mail:u1", 1_600, 500).await.unwrap(), 2);
        let hits = join_all((0..8).map(|_| store.count_hit("burst", 5_000, 500))).await;
        let mut hits: Vec<i64> = hits.into_iter().map(Result::unwrap).collect();
        hits.sort();
        assert_eq!(hits, (1..=8).collect::<Vec<_>>(), "concurrent hits all count");
        // Purged once its window ended.
        assert_eq!(store.purge_expired(5_500).await.unwrap(), 3);
        assert_eq!(store.count_hit("burst", 5_500, 500).await.unwrap(), 1);
    }

    fn ticket(digest: u8, user_id: &str, expires_at: Millis) -> PasswordTicket {
        PasswordTicket { ticket_sha256: vec![digest; 32], user_id: user_id.into(), expires_at }
    }

    pub async fn password_tickets(store: &dyn Store) {
        store.put_password_ticket(&ticket(1, "auth0|u1", 1_000)).await.unwrap();
        assert_eq!(store.password_ticket(&[1; 32], 999).await.unwrap(), Some(ticket(1, "auth0|u1", 1_000)));
        assert_eq!(store.password_ticket(&[1; 32], 1_000).await.unwrap(), None, "expired");
        assert_eq!(store.password_ticket(&[2; 32], 0).await.unwrap(), None);
        assert!(matches!(store.put_password_ticket(&ticket(1, "auth0|u2", 9)).await, Err(Error::Conflict(_))));
        assert_eq!(store.purge_expired(1_000).await.unwrap(), 1);
        assert_eq!(store.password_ticket(&[1; 32], 0).await.unwrap(), None);
    }

    pub async fn change_password_ends_what_the_old_one_opened(store: &dyn Store) {
        let mut ada = user("auth0|u1", "db", Some("ada@example.com"), None);
        let bob = user("auth0|u2", "db", Some("bob@example.com"), None);
        store.create_user(&ada).await.unwrap();
        store.create_user(&bob).await.unwrap();
        for (digest, user_id) in [(1, "auth0|u1"), (2, "auth0|u1"), (3, "auth0|u2")] {
            store.put_password_ticket(&ticket(digest, user_id, 1_000)).await.unwrap();
            let session = SsoSession {
                id: format!("s{digest}"),
                user_id: user_id.into(),
                auth_time: 0,
                last_seen: 0,
                expires_at: 1_000,
                clients: vec![],
            };
            store.put_session(&session).await.unwrap();
            let family = format!("f{digest}");
            store.put_refresh_token(&RefreshToken { user_id: user_id.into(), ..token(digest, &family) }).await.unwrap();
            store.record_failure(user_id, "1.1.1.1", 0, 0).await.unwrap();
        }

        ada.password_hash = Some("$2b$10$new".into());
        ada.user.updated_at += 1;
        store.change_password(&ada).await.unwrap();
        assert_eq!(store.user("auth0|u1").await.unwrap(), Some(ada.clone()));
        for (digest, alive) in [(1, false), (2, false), (3, true)] {
            assert_eq!(store.password_ticket(&[digest; 32], 0).await.unwrap().is_some(), alive, "ticket {digest}");
            assert_eq!(store.session(&format!("s{digest}"), 0).await.unwrap().is_some(), alive, "session {digest}");
            let token = store.refresh_token(&[digest; 32]).await.unwrap().unwrap();
            assert_eq!(token.revoked, !alive, "refresh token {digest}");
        }
        assert_eq!(store.failures("auth0|u1", "1.1.1.1").await.unwrap(), None);
        assert!(store.failures("auth0|u2", "1.1.1.1").await.unwrap().is_some());

        // Refused as update_user refuses, and then nothing else changes either.
        store.put_password_ticket(&ticket(4, "auth0|u1", 1_000)).await.unwrap();
        let mut taken = ada.clone();
        taken.user.email = Some("bob@example.com".into());
        assert!(matches!(store.change_password(&taken).await, Err(Error::Conflict(_))));
        assert!(store.password_ticket(&[4; 32], 0).await.unwrap().is_some(), "rolled back");
        assert_eq!(store.user("auth0|u1").await.unwrap(), Some(ada));
        let ghost = user("auth0|nobody", "db", None, None);
        assert!(matches!(store.change_password(&ghost).await, Err(Error::NotFound(_))));
    }

    // --- multi-write deletes

    pub async fn deleting_a_client_takes_what_names_it(store: &dyn Store) {
        for id in ["c1", "c2"] {
            store.put_client(&StoredClient { client: client(id), secret_sha256: None }).await.unwrap();
        }
        let both = Connection { enabled_clients: vec!["c1".into(), "c2".into()], ..connection("con_1", "db") };
        let other = Connection { enabled_clients: vec!["c2".into()], ..connection("con_2", "other") };
        store.put_connection(&both).await.unwrap();
        store.put_connection(&other).await.unwrap();
        store.put_client_grant(&grant("cgr_1", "c1", "https://api.example")).await.unwrap();
        store.put_client_grant(&grant("cgr_2", "c2", "https://api.example")).await.unwrap();
        store.put_refresh_token(&token(1, "f1")).await.unwrap();
        store.put_refresh_token(&RefreshToken { client_id: "c2".into(), ..token(2, "f2") }).await.unwrap();

        assert!(store.delete_client("c1").await.unwrap());
        assert_eq!(store.client_grant("cgr_1").await.unwrap(), None);
        assert!(store.client_grant("cgr_2").await.unwrap().is_some());
        let both = store.connection("con_1").await.unwrap().unwrap();
        assert_eq!(both.enabled_clients, vec!["c2".to_string()]);
        assert_eq!(both, Connection { enabled_clients: vec!["c2".into()], ..connection("con_1", "db") });
        assert_eq!(store.connection("con_2").await.unwrap(), Some(other));
        assert!(store.refresh_token(&[1; 32]).await.unwrap().unwrap().revoked);
        assert!(!store.refresh_token(&[2; 32]).await.unwrap().unwrap().revoked);
        assert!(!store.delete_client("c1").await.unwrap());
    }

    pub async fn deleting_an_api_takes_its_client_grants(store: &dyn Store) {
        store.put_resource_server(&resource_server("rs1", "https://api.example")).await.unwrap();
        store.put_resource_server(&resource_server("rs2", "https://other.example")).await.unwrap();
        store.put_client_grant(&grant("cgr_1", "c1", "https://api.example")).await.unwrap();
        store.put_client_grant(&grant("cgr_2", "c2", "https://api.example")).await.unwrap();
        store.put_client_grant(&grant("cgr_3", "c1", "https://other.example")).await.unwrap();
        assert!(store.delete_resource_server("rs1").await.unwrap());
        let left: Vec<String> = store.client_grants().await.unwrap().into_iter().map(|g| g.id).collect();
        assert_eq!(left, vec!["cgr_3".to_string()]);
        assert!(!store.delete_resource_server("rs1").await.unwrap());
        assert_eq!(store.client_grants().await.unwrap().len(), 1, "a missing API deletes no grant");
    }

    // --- actions

    fn secrets(pairs: &[(&str, &str)]) -> SealedSecrets {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn action(id: &str, name: &str, created_at: &str) -> StoredAction {
        StoredAction {
            action: Action {
                id: id.into(),
                name: name.into(),
                supported_triggers: vec![TriggerRef { id: "post-login".into(), version: "v3".into() }],
                code: "exports.onExecutePostLogin = async () => {};".into(),
                dependencies: vec![],
                runtime: "node22".into(),
                secrets: vec![SecretName { name: "KEY".into(), updated_at: created_at.into() }],
                status: "built".into(),
                build_error: None,
                created_at: created_at.into(),
                updated_at: created_at.into(),
                built_at: Some(created_at.into()),
                deployed_version: None,
                versions: 0,
            },
            secrets: secrets(&[("KEY", "sealed-draft")]),
        }
    }

    fn version(id: &str, action_id: &str, number: u64) -> StoredActionVersion {
        StoredActionVersion {
            version: ActionVersion {
                id: id.into(),
                action_id: action_id.into(),
                number,
                code: format!("// version {number}"),
                dependencies: vec![],
                runtime: "node22".into(),
                supported_triggers: vec![TriggerRef { id: "post-login".into(), version: "v3".into() }],
                secrets: vec![SecretName { name: "KEY".into(), updated_at: "t".into() }],
                created_at: "2030-01-01T00:00:00.000Z".into(),
                updated_at: "2030-01-01T00:00:00.000Z".into(),
                built_at: None,
            },
            secrets: secrets(&[("KEY", &format!("sealed-{number}"))]),
        }
    }

    fn binding(id: &str, action_id: &str) -> TriggerBinding {
        TriggerBinding {
            id: id.into(),
            action_id: action_id.into(),
            display_name: format!("Binding {id}"),
            created_at: "t0".into(),
            updated_at: "t1".into(),
        }
    }

    /// The draft as `deploy_action` is given it for version `v`.
    fn deployed(mut a: StoredAction, v: &StoredActionVersion) -> StoredAction {
        a.action.versions = v.version.number;
        a.action.deployed_version = Some(v.version.id.clone());
        a
    }

    pub async fn action_crud(store: &dyn Store) {
        assert_eq!(store.action("a1").await.unwrap(), None);
        let late = action("a1", "Late", "2030-01-02T00:00:00.000Z");
        let early = action("a2", "Early", "2030-01-01T00:00:00.000Z");
        store.put_action(&late).await.unwrap();
        store.put_action(&early).await.unwrap();
        assert_eq!(store.action("a1").await.unwrap(), Some(late.clone()));
        assert_eq!(store.actions().await.unwrap(), vec![early.clone(), late.clone()], "oldest first");

        let mut edited = late.clone();
        edited.action.code = "// changed".into();
        edited.action.build_error = Some("broken".into());
        edited.secrets = secrets(&[("KEY", "resealed"), ("OTHER", "x")]);
        store.put_action(&edited).await.unwrap();
        assert_eq!(store.action("a1").await.unwrap(), Some(edited));
        assert_eq!(store.action_versions("a1").await.unwrap(), vec![]);
        assert_eq!(store.action_version("v1").await.unwrap(), None);
    }

    pub async fn action_deploy_is_one_transaction(store: &dyn Store) {
        let draft = action("a1", "Enrich", "2030-01-01T00:00:00.000Z");
        store.put_action(&draft).await.unwrap();
        let v1 = version("v1", "a1", 1);
        store.deploy_action(&deployed(draft.clone(), &v1), &v1, 50).await.unwrap();
        let v2 = version("v2", "a1", 2);
        let in_force = deployed(draft.clone(), &v2);
        store.deploy_action(&in_force, &v2, 50).await.unwrap();
        assert_eq!(store.action("a1").await.unwrap(), Some(in_force.clone()));
        assert_eq!(store.action_version("v1").await.unwrap(), Some(v1.clone()));
        assert_eq!(store.action_versions("a1").await.unwrap(), vec![v2.clone(), v1.clone()], "newest first");

        // A second version 2 (a deploy that raced with this one): the draft, written first in
        // the transaction, is rolled back with the refused version.
        let mut stale = deployed(draft.clone(), &version("v2b", "a1", 2));
        stale.action.code = "// lost".into();
        stale.secrets = secrets(&[("KEY", "lost")]);
        let refused = store.deploy_action(&stale, &version("v2b", "a1", 2), 50).await;
        assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");
        assert_eq!(store.action("a1").await.unwrap(), Some(in_force.clone()), "nothing half-done");
        assert_eq!(store.action_version("v2b").await.unwrap(), None);

        // An action deleted meanwhile is not brought back, and gets no version.
        let ghost = action("gone", "Gone", "t");
        let ghost_version = version("vg", "gone", 1);
        let refused = store.deploy_action(&deployed(ghost, &ghost_version), &ghost_version, 50).await;
        assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
        assert_eq!(store.action("gone").await.unwrap(), None);
        assert_eq!(store.action_version("vg").await.unwrap(), None);

        // Beyond `keep`, the oldest versions go, never the one in force.
        let v3 = version("v3", "a1", 3);
        store.deploy_action(&deployed(draft.clone(), &v3), &v3, 2).await.unwrap();
        assert_eq!(store.action_versions("a1").await.unwrap(), vec![v3.clone(), v2.clone()]);
        // Rolled back to v2 as a new version 4 that is not the one in force (the draft still
        // points at v3): the newest two stay, and v3 stays because it is in force.
        let v4 = version("v4", "a1", 4);
        let mut draft_on_v3 = deployed(draft.clone(), &v3);
        draft_on_v3.action.versions = 4;
        store.deploy_action(&draft_on_v3, &v4, 1).await.unwrap();
        assert_eq!(store.action_versions("a1").await.unwrap(), vec![v4, v3]);
    }

    pub async fn action_delete_takes_versions_and_bindings(store: &dyn Store) {
        let one = action("a1", "One", "t1");
        let two = action("a2", "Two", "t2");
        store.put_action(&one).await.unwrap();
        store.put_action(&two).await.unwrap();
        let v = version("v1", "a1", 1);
        store.deploy_action(&deployed(one, &v), &v, 50).await.unwrap();
        let w = version("w1", "a2", 1);
        store.deploy_action(&deployed(two, &w), &w, 50).await.unwrap();
        store.put_trigger_bindings("post-login", &[binding("b1", "a1"), binding("b2", "a2")]).await.unwrap();
        store.put_trigger_bindings("credentials-exchange", &[binding("b3", "a1")]).await.unwrap();
        assert_eq!(store.action_triggers("a1").await.unwrap(), vec!["credentials-exchange", "post-login"]);

        assert!(store.delete_action("a1").await.unwrap());
        assert_eq!(store.action("a1").await.unwrap(), None);
        assert_eq!(store.action_version("v1").await.unwrap(), None);
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), vec![binding("b2", "a2")]);
        assert_eq!(store.trigger_bindings("credentials-exchange").await.unwrap(), vec![]);
        assert!(store.action_triggers("a1").await.unwrap().is_empty());
        assert_eq!(store.action_versions("a2").await.unwrap(), vec![w]);
        assert!(!store.delete_action("a1").await.unwrap());
    }

    pub async fn trigger_bindings_are_replaced_all_or_none(store: &dyn Store) {
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), vec![]);
        for (id, name) in [("a1", "One"), ("a2", "Two")] {
            store.put_action(&action(id, name, "t")).await.unwrap();
        }
        let order = [binding("b2", "a2"), binding("b1", "a1")];
        store.put_trigger_bindings("post-login", &order).await.unwrap();
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), order, "in execution order");

        // The second binding names no action: the first was inserted, and is rolled back.
        let broken = [binding("b1", "a1"), binding("b9", "missing")];
        let refused = store.put_trigger_bindings("post-login", &broken).await;
        assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), order, "the old list stays");

        let reordered = [binding("b1", "a1"), binding("b2", "a2")];
        store.put_trigger_bindings("post-login", &reordered).await.unwrap();
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), reordered);
        store.put_trigger_bindings("post-login", &[]).await.unwrap();
        assert_eq!(store.trigger_bindings("post-login").await.unwrap(), vec![]);
    }

    // --- users-import jobs

    fn job(id: &str, created_at: Millis, heartbeat: Millis) -> ImportJob {
        ImportJob {
            id: id.into(),
            connection_id: "con_0123456789abcdef".into(),
            connection: "db".into(),
            status: JobStatus::Pending,
            created_at,
            external_id: Some("ext-1".into()),
            upsert: true,
            send_completion_email: false,
            heartbeat,
            attempts: 1,
            next_row: 0,
            summary: None,
            percentage_done: None,
            time_left_seconds: None,
            status_details: None,
        }
    }

    fn row_error(index: u64) -> ImportRowError {
        ImportRowError {
            index,
            user: json!({"email": format!("row{index}@example.test")}),
            errors: vec![json!({"code": "INVALID_FORMAT", "message": "bad"})],
        }
    }

    pub async fn import_jobs(store: &dyn Store) {
        assert_eq!(store.import_job("job_1").await.unwrap(), None);
        let second = job("job_2", 200, 200);
        let first = job("job_1", 100, 100);
        store.create_import_job(&second, "[2]").await.unwrap();
        store.create_import_job(&first, "[1]").await.unwrap();
        assert!(matches!(store.create_import_job(&first, "[x]").await, Err(Error::Conflict(_))));
        assert_eq!(store.import_job("job_1").await.unwrap(), Some(first.clone()));
        assert_eq!(store.import_jobs().await.unwrap(), vec![first.clone(), second.clone()]);
        assert_eq!(store.import_job_file("job_1").await.unwrap().as_deref(), Some("[1]"));
        assert_eq!(store.import_job_errors("job_1").await.unwrap(), vec![]);

        // A checkpoint: progress and errors together; the file stays while the job runs.
        let mut running = ImportJob {
            status: JobStatus::Processing,
            next_row: 200,
            summary: Some(ImportSummary { inserted: 199, updated: 0, failed: 1, total: 500 }),
            percentage_done: Some(40),
            time_left_seconds: Some(3),
            heartbeat: 150,
            ..first.clone()
        };
        assert!(store.save_import_job(&running, Some(&[row_error(7)])).await.unwrap());
        assert_eq!(store.import_job("job_1").await.unwrap(), Some(running.clone()));
        assert_eq!(store.import_job_errors("job_1").await.unwrap(), vec![row_error(7)]);
        assert_eq!(store.import_job_file("job_1").await.unwrap().as_deref(), Some("[1]"));
        // Without errors, the stored ones stay.
        running.heartbeat = 160;
        assert!(store.save_import_job(&running, None).await.unwrap());
        assert_eq!(store.import_job_errors("job_1").await.unwrap(), vec![row_error(7)]);

        // The write that ends the job drops its file.
        let done = ImportJob { status: JobStatus::Completed, percentage_done: None, ..running };
        assert!(store.save_import_job(&done, Some(&[row_error(7), row_error(9)])).await.unwrap());
        assert_eq!(store.import_job_file("job_1").await.unwrap(), None);
        assert_eq!(store.import_job_errors("job_1").await.unwrap(), vec![row_error(7), row_error(9)]);
        let failed = ImportJob { status: JobStatus::Failed, status_details: Some("timed out".into()), ..second };
        assert!(store.save_import_job(&failed, None).await.unwrap());
        assert_eq!(store.import_job_file("job_2").await.unwrap(), None);
        assert_eq!(store.import_job("job_2").await.unwrap(), Some(failed));

        assert!(store.delete_import_job("job_1").await.unwrap());
        assert!(!store.delete_import_job("job_1").await.unwrap());
        assert_eq!(store.import_job_errors("job_1").await.unwrap(), vec![]);
        assert!(!store.save_import_job(&done, None).await.unwrap(), "a deleted job is not brought back");
        assert_eq!(store.import_jobs().await.unwrap().len(), 1);
    }

    pub async fn import_job_claim_concurrent(store: &dyn Store) {
        store.create_import_job(&job("job_1", 100, 100), "[]").await.unwrap();
        let claims: Vec<ImportJob> =
            (0..8).map(|i| ImportJob { heartbeat: 1_000 + i, attempts: 2, ..job("job_1", 100, 0) }).collect();
        let outcomes: Vec<bool> = join_all(claims.iter().map(|c| store.claim_import_job(c, 100)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(outcomes.iter().filter(|won| **won).count(), 1, "{outcomes:?}");
        let winner = outcomes.iter().position(|won| *won).unwrap();
        assert_eq!(store.import_job("job_1").await.unwrap(), Some(claims[winner].clone()));
        assert!(!store.claim_import_job(&claims[0], 100).await.unwrap(), "the heartbeat seen is gone");
    }

    // --- federated login

    fn federated_state(digest: u8, expires_at: Millis) -> FederatedState {
        FederatedState {
            state_sha256: vec![digest; 32],
            login_transaction: "tx1".into(),
            connection: "corp".into(),
            nonce: "n-1".into(),
            code_verifier: "verifier".into(),
            binding_digest: "binding".into(),
            expires_at,
        }
    }

    pub async fn federated_state_redemption(store: &dyn Store) {
        let state = federated_state(1, 1_000);
        store.put_federated_state(&state).await.unwrap();
        assert!(matches!(store.put_federated_state(&state).await, Err(Error::Conflict(_))));
        assert_eq!(store.redeem_federated_state(&[1; 32], 500).await.unwrap(), StateRedemption::Fresh(state));
        assert_eq!(store.redeem_federated_state(&[1; 32], 600).await.unwrap(), StateRedemption::Reused);

        store.put_federated_state(&federated_state(2, 1_000)).await.unwrap();
        assert_eq!(store.redeem_federated_state(&[2; 32], 1_000).await.unwrap(), StateRedemption::Unknown);
        assert_eq!(store.redeem_federated_state(&[3; 32], 0).await.unwrap(), StateRedemption::Unknown);
        // Kept apart from authorization codes: neither redeems as the other.
        store.put_code(&AuthCode { code_sha256: vec![4; 32], grant: json!({}), expires_at: 1_000 }).await.unwrap();
        assert_eq!(store.redeem_federated_state(&[4; 32], 0).await.unwrap(), StateRedemption::Unknown);
        assert_eq!(store.redeem_code(&[2; 32], 0).await.unwrap(), CodeRedemption::Unknown);

        assert_eq!(store.purge_expired(1_000).await.unwrap(), 3, "two states and a code");
        assert_eq!(store.redeem_federated_state(&[1; 32], 0).await.unwrap(), StateRedemption::Unknown);
    }

    pub async fn federated_state_redemption_concurrent(store: &dyn Store) {
        store.put_federated_state(&federated_state(9, 10_000)).await.unwrap();
        let attempts = (0..8).map(|i| store.redeem_federated_state(&[9; 32], 100 + i));
        let outcomes: Vec<_> = join_all(attempts).await.into_iter().map(Result::unwrap).collect();
        let fresh = outcomes.iter().filter(|o| **o == StateRedemption::Fresh(federated_state(9, 10_000))).count();
        let reused = outcomes.iter().filter(|o| **o == StateRedemption::Reused).count();
        assert_eq!((fresh, reused), (1, 7), "{outcomes:?}");
    }

    pub async fn federated_issuers(store: &dyn Store) {
        let issuer = |user_id: &str, iss: &str| FederatedIssuer {
            user_id: user_id.into(),
            connection: "corp".into(),
            issuer: iss.into(),
        };
        assert_eq!(store.federated_issuer("oidc|corp|1").await.unwrap(), None);
        store.put_federated_issuer(&issuer("oidc|corp|1", "https://a.example")).await.unwrap();
        store.put_federated_issuer(&issuer("oidc|corp|1", "https://b.example")).await.unwrap();
        assert_eq!(
            store.federated_issuer("oidc|corp|1").await.unwrap(),
            Some(issuer("oidc|corp|1", "https://b.example"))
        );
        assert!(store.delete_federated_issuer("oidc|corp|1").await.unwrap());
        assert!(!store.delete_federated_issuer("oidc|corp|1").await.unwrap());

        // They go with their users, so a user created again under the same id starts afresh.
        store.put_connection(&Connection { strategy: "oidc".into(), ..connection("con_1", "corp") }).await.unwrap();
        for id in ["oidc|corp|1", "oidc|corp|2"] {
            store.create_user(&user(id, "corp", None, None)).await.unwrap();
            store.put_federated_issuer(&issuer(id, "https://a.example")).await.unwrap();
        }
        store.put_federated_issuer(&issuer("oidc|other|3", "https://a.example")).await.unwrap();
        assert!(store.delete_user("oidc|corp|1").await.unwrap());
        assert_eq!(store.federated_issuer("oidc|corp|1").await.unwrap(), None);
        assert!(store.federated_issuer("oidc|corp|2").await.unwrap().is_some());
        assert_eq!(store.delete_connection("con_1").await.unwrap(), Some(1));
        assert_eq!(store.federated_issuer("oidc|corp|2").await.unwrap(), None);
        assert!(store.federated_issuer("oidc|other|3").await.unwrap().is_some());
    }

    pub async fn userinfo_claims(store: &dyn Store) {
        let claims = |n: i64| UserinfoClaims {
            claims: extra(json!({"https://x.test/n": n, "nested": {"a": [1]}})),
            updated_at: n,
        };
        assert_eq!(store.userinfo_claims("k1").await.unwrap(), None);
        store.put_userinfo_claims("k1", &claims(1)).await.unwrap();
        store.put_userinfo_claims("k2", &claims(2)).await.unwrap();
        store.put_userinfo_claims("k1", &claims(3)).await.unwrap();
        assert_eq!(store.userinfo_claims("k1").await.unwrap(), Some(claims(3)));
        assert_eq!(store.userinfo_claims("k2").await.unwrap(), Some(claims(2)));
        assert!(store.delete_userinfo_claims("k1").await.unwrap());
        assert!(!store.delete_userinfo_claims("k1").await.unwrap());
        assert_eq!(store.userinfo_claims("k1").await.unwrap(), None);
    }

    pub async fn purge_expired(store: &dyn Store) {
        let now = 10_000;
        for (id, expires_at) in [("old", now - 1), ("edge", now), ("live", now + 1)] {
            let tx = LoginTransaction { id: id.into(), request: json!({}), csrf: "c".into(), expires_at };
            store.put_login_transaction(&tx).await.unwrap();
            let session = SsoSession {
                id: id.into(),
                user_id: "u".into(),
                auth_time: 0,
                last_seen: 0,
                expires_at,
                clients: vec![],
            };
            store.put_session(&session).await.unwrap();
        }
        store.put_code(&AuthCode { code_sha256: vec![1], grant: json!({}), expires_at: now - 1 }).await.unwrap();
        store.put_code(&AuthCode { code_sha256: vec![2], grant: json!({}), expires_at: now + 1 }).await.unwrap();
        store.put_refresh_token(&RefreshToken { expires_at: Some(now - 1), ..token(1, "f") }).await.unwrap();
        store.put_refresh_token(&RefreshToken { expires_at: Some(now + 1), ..token(2, "f") }).await.unwrap();
        store.put_refresh_token(&RefreshToken { expires_at: None, ..token(3, "f") }).await.unwrap();

        // 2 transactions, 2 sessions, 1 code, 1 refresh token.
        assert_eq!(store.purge_expired(now).await.unwrap(), 6);
        assert_eq!(store.purge_expired(now).await.unwrap(), 0);
        assert!(store.login_transaction("live", 0).await.unwrap().is_some());
        assert!(store.login_transaction("old", 0).await.unwrap().is_none());
        assert!(store.session("live", 0).await.unwrap().is_some());
        assert!(store.session("edge", 0).await.unwrap().is_none());
        assert_eq!(store.redeem_code(&[1], 0).await.unwrap(), CodeRedemption::Unknown);
        assert_eq!(store.redeem_code(&[2], 0).await.unwrap(), CodeRedemption::Fresh(json!({})));
        assert!(store.refresh_token(&[1; 32]).await.unwrap().is_none());
        assert!(store.refresh_token(&[2; 32]).await.unwrap().is_some());
        assert!(store.refresh_token(&[3; 32]).await.unwrap().is_some());
    }

    // --- user search (Auth0's search v3 as SQL)

    /// A user for the search fixture; tests adjust the rest.
    fn searchable(id: &str, connection: &str, email: Option<&str>, name: Option<&str>, nickname: &str) -> StoredUser {
        let (provider, local_id) = id.split_once('|').unwrap_or(("auth0", id));
        let mut stored = user(id, connection, email, None);
        let user = &mut stored.user;
        user.name = name.map(Into::into);
        user.nickname = Some(nickname.into());
        user.given_name = None;
        user.app_metadata = Map::new();
        user.user_metadata = Map::new();
        user.extra = Map::new();
        user.identities = vec![Identity {
            connection: connection.into(),
            provider: provider.into(),
            user_id: local_id.into(),
            is_social: provider != "auth0",
            profile_data: None,
        }];
        stored
    }

    /// Ten users with varied metadata (arrays, nested objects, numbers, booleans, strings that
    /// look like them) and values chosen to sit on the edges of the queries below.
    fn search_fixture() -> Vec<StoredUser> {
        let mut users = Vec::new();

        let mut u = searchable("auth0|u01", "dev-users", Some("admin@example.com"), Some("Administrator"), "admin");
        u.user.logins_count = 5;
        u.user.created_at = 1_704_067_200_000; // 2024-01-01T00:00:00Z
        u.user.last_login = Some(1_718_452_800_000);
        u.user.last_ip = Some("2001:db8::1".into());
        u.user.app_metadata = extra(json!({"groups": ["admin", "editor"], "level": 3, "plan": {"tier": "gold"}}));
        u.user.user_metadata = extra(json!({"profile": {"city": "Milan"}}));
        u.user.identities.push(Identity {
            connection: "google-oauth2".into(),
            provider: "google-oauth2".into(),
            user_id: "g-123".into(),
            is_social: true,
            profile_data: None,
        });
        users.push(u);

        let mut u = searchable("auth0|u02", "dev-users", Some("a@x.com"), Some("Ann Example"), "ann");
        u.user.username = Some("ann_x".into());
        u.user.logins_count = 2;
        u.user.created_at = 1_718_452_800_000; // 2024-06-15T12:00:00Z
        u.user.app_metadata = extra(json!({"groups": ["editor"], "level": "3"}));
        u.user.user_metadata = extra(json!({"profile": {"city": "Rome"}}));
        users.push(u);

        let mut u = searchable("auth0|u03", "dev-users", Some("bob@example.com"), Some("Bob Builder"), "bob");
        u.user.logins_count = 3;
        u.user.created_at = 1_735_689_599_999; // 2024-12-31T23:59:59.999Z
        u.user.blocked = true;
        u.user.app_metadata = extra(json!({"groups": "admin", "level": 2}));
        u.user.user_metadata = extra(json!({"addresses": [{"city": "Milan"}, {"city": "Paris"}]}));
        users.push(u);

        let mut u = searchable(
            "auth0|u04",
            "other-db",
            Some("carol@corp.example.org"),
            Some("Carol Sysadministrator"),
            "carol",
        );
        u.user.logins_count = 6;
        u.user.created_at = 1_709_251_200_000; // 2024-03-01
        u.user.app_metadata = extra(json!({"groups": [{"name": "admin"}]}));
        users.push(u);

        let mut u = searchable("auth0|u05", "other-db", Some("dave@example.com"), Some("Dave"), "dave");
        u.user.email_verified = false;
        u.user.created_at = 1_704_067_199_999; // 2023-12-31T23:59:59.999Z
        users.push(u);

        let mut u = searchable("google-oauth2|u06", "google-oauth2", Some("eve@gmail.com"), Some("Eve"), "eve");
        u.user.logins_count = 10;
        u.user.created_at = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        u.user.last_login = Some(1_651_708_800_000);
        u.user.app_metadata = extra(json!({"groups": [], "level": 3.0, "beta": true}));
        u.user.user_metadata = extra(json!({"profile": {"city": "milan"}}));
        users.push(u);

        let mut u = searchable("auth0|u07", "dev-users", Some("frank@example.com"), Some("Frank"), "frank");
        u.user.logins_count = 1;
        u.user.created_at = 1_735_603_200_000; // 2024-12-31T00:00:00Z
        u.user.app_metadata = extra(json!({
            "groups": ["viewer"], "beta": "true", "level": null, "nested": {"deep": {"list": [{"k": "v"}]}}
        }));
        users.push(u);

        let mut u = searchable(
            "auth0|u08",
            "dev-users",
            Some(r#"o'hara%_\";--@example.com"#),
            Some(r#"Zoë "Q" 100%_off; DROP TABLE users;--"#),
            "zoë",
        );
        u.user.logins_count = 7;
        u.user.created_at = 1_651_708_800_000; // 2022-05-05
        u.user.app_metadata = extra(json!({"note": r#"it's 100%_\ "quoted";--"#, "emoji": "🦀", "user-type": "x"}));
        users.push(u);

        let mut u = searchable("auth0|u09", "dev-users", None, None, "ghost");
        u.user.logins_count = 4;
        u.user.created_at = 1_718_452_800_000; // 2024-06-15T12:00:00Z, as u02
        u.user.phone_number = Some("+15550100".into());
        u.user.extra = extra(json!({"phone_verified": true}));
        u.user.app_metadata = extra(json!({"level": 4}));
        users.push(u);

        let mut u = searchable("auth0|u10", "dev-users", Some("grace@sub.example.com"), Some("Grace"), "grace");
        u.user.logins_count = 2;
        u.user.created_at = 1_735_646_400_000; // 2024-12-31T12:00:00Z
        u.user.app_metadata = extra(json!({"groups": ["Admin"]}));
        users.push(u);

        for u in &mut users {
            u.user.updated_at = u.user.created_at;
        }
        users
    }

    async fn seed_search(store: &dyn Store) {
        for u in search_fixture() {
            store.create_user(&u).await.unwrap();
        }
    }

    /// The short ids (`u01`…) of every user `q` matches, sorted.
    async fn found(store: &dyn Store, q: &str) -> Vec<String> {
        let query = search::parse(q).unwrap_or_else(|e| panic!("{q:?} should parse: {e}"));
        let search = UserSearch { query: Some(query), sort: None, page: 0, per_page: 100, totals: true };
        let page = store.search_users(&search).await.unwrap_or_else(|e| panic!("{q:?} should run: {e}"));
        assert_eq!(page.total, Some(page.users.len() as u64), "{q}");
        let mut ids: Vec<String> = page.users.iter().map(|u| short(&u.user.user_id)).collect();
        ids.sort();
        ids
    }

    fn short(user_id: &str) -> String {
        user_id.rsplit('|').next().unwrap_or(user_id).to_owned()
    }

    /// Asserts which users each query finds.
    async fn expect(store: &dyn Store, cases: &[(&str, &[&str])]) {
        for (q, expected) in cases {
            assert_eq!(found(store, q).await, *expected, "{q}");
        }
    }

    const EVERYONE: &[&str] = &["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u10"];

    pub async fn search_metadata(store: &dyn Store) {
        seed_search(store).await;
        expect(
            store,
            &[
                // Array levels are transparent; an array of objects is no array of strings.
                (r#"app_metadata.groups:"admin""#, &["u01", "u03"]),
                ("app_metadata.groups:admin OR app_metadata.groups:editor", &["u01", "u02", "u03"]),
                ("NOT app_metadata.groups:admin", &["u02", "u04", "u05", "u06", "u07", "u08", "u09", "u10"]),
                ("app_metadata.groups.name:admin", &["u04"]),
                // An empty array holds nothing; objects hold what is below them.
                ("_exists_:app_metadata.groups", &["u01", "u02", "u03", "u04", "u07", "u10"]),
                ("_exists_:app_metadata.level", &["u01", "u02", "u03", "u06", "u09"]),
                ("_exists_:user_metadata", &["u01", "u02", "u03", "u06"]),
                ("NOT _exists_:app_metadata.groups", &["u05", "u06", "u08", "u09"]),
                // Nested objects, arrays of objects, and case-sensitive text.
                (r#"user_metadata.profile.city:"Milan""#, &["u01"]),
                ("user_metadata.addresses.city:Milan", &["u03"]),
                ("user_metadata.addresses.city:Paris OR user_metadata.profile.city:Rome", &["u02", "u03"]),
                ("app_metadata.nested.deep.list.k:v", &["u07"]),
                ("app_metadata.plan.tier:gold", &["u01"]),
                ("app_metadata.plan:gold", &[]),
                ("app_metadata.groups:Admin", &["u10"]),
                // Typed values: a number matches numbers and its own text; true matches true and "true".
                ("app_metadata.level:3", &["u01", "u02", "u06"]),
                ("app_metadata.level:3.0", &["u01", "u06"]),
                (r#"app_metadata.level:"3""#, &["u01", "u02", "u06"]),
                ("app_metadata.level:4 OR app_metadata.level:2", &["u03", "u09"]),
                ("app_metadata.beta:true", &["u06", "u07"]),
                ("app_metadata.beta:false", &[]),
                ("app_metadata.user-type:x", &["u08"]),
                ("app_metadata.missing.deeper:x", &[]),
                // Metadata is never searched by a bare term.
                ("gold", &[]),
                ("Milan", &[]),
            ],
        )
        .await;
    }

    pub async fn search_root_fields(store: &dyn Store) {
        seed_search(store).await;
        expect(
            store,
            &[
                (r#"email:"A@X.com""#, &["u02"]),
                ("email:a@x.com", &["u02"]),
                ("email:adm*", &["u01"]),
                ("email:ADM*", &["u01"]),
                ("name:*dministr*", &["u01", "u04"]),
                ("name:*DMINISTR*", &["u01", "u04"]),
                ("name:administrator", &["u01"]),
                (r"name:Ann\ Example", &["u02"]),
                (r#"name:"ann example""#, &["u02"]),
                ("name:ann", &[]),
                ("nickname:ANN", &["u02"]),
                ("email.domain:example.com", &["u01", "u03", "u05", "u07", "u08"]),
                ("email.domain:EXAMPLE.COM", &["u01", "u03", "u05", "u07", "u08"]),
                ("email.domain:*ample.com", &["u01", "u03", "u05", "u07", "u08", "u10"]),
                ("email.domain:example.*", &["u01", "u03", "u05", "u07", "u08"]),
                (r#"identities.connection:"dev-users""#, &["u01", "u02", "u03", "u07", "u08", "u09", "u10"]),
                ("identities.connection:google-oauth2", &["u01", "u06"]),
                ("identities.connection:dev*", &["u01", "u02", "u03", "u07", "u08", "u09", "u10"]),
                ("identities.connection:DEV*", &[]),
                ("identities.provider:google-oauth2", &["u01", "u06"]),
                ("identities.user_id:g-123", &["u01"]),
                ("identities.user_id:u0?", &["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09"]),
                ("user_id:auth0|u0*", &["u01", "u02", "u03", "u04", "u05", "u07", "u08", "u09"]),
                (r#"user_id:"auth0|u10""#, &["u10"]),
                ("user_id:AUTH0|u10", &[]),
                ("username:ann_x", &["u02"]),
                ("username:ANN_X", &[]),
                (r#"phone_number:"+15550100""#, &["u09"]),
                ("last_ip:2001:db8::1", &["u01"]),
                ("blocked:true", &["u03"]),
                ("blocked:false", &["u01", "u02", "u04", "u05", "u06", "u07", "u08", "u09", "u10"]),
                ("email_verified:false", &["u05"]),
                ("phone_verified:true", &["u09"]),
                ("phone_verified:false", &[]),
                ("_exists_:phone_verified", &["u09"]),
                ("_exists_:email", &["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u10"]),
                ("NOT _exists_:email.domain", &["u09"]),
                ("_exists_:last_login", &["u01", "u06"]),
                ("_exists_:identities.connection", EVERYONE),
                // Bare terms: any root text field, whole values.
                ("ghost", &["u09"]),
                ("ADMINISTRATOR", &["u01"]),
                ("eve@gmail.com", &["u06"]),
                ("gra*", &["u10"]),
                ("auth0|u05", &["u05"]),
            ],
        )
        .await;

        // Searches see writes: a login moves a user into a range, an update out of a group.
        store.record_login("auth0|u05", 1_750_000_000_000, "10.0.0.1").await.unwrap();
        let mut ann = store.user("auth0|u02").await.unwrap().unwrap();
        ann.user.app_metadata = extra(json!({"groups": ["viewer"]}));
        store.update_user(&ann).await.unwrap();
        expect(
            store,
            &[
                ("logins_count:1", &["u05", "u07"]),
                ("last_ip:10.0.0.1", &["u05"]),
                ("app_metadata.groups:editor", &["u01"]),
                ("app_metadata.groups:viewer", &["u02", "u07"]),
            ],
        )
        .await;
    }

    pub async fn search_ranges_and_dates(store: &dyn Store) {
        seed_search(store).await;
        expect(
            store,
            &[
                ("logins_count:[2 TO 5]", &["u01", "u02", "u03", "u09", "u10"]),
                ("logins_count:{2 TO 5}", &["u03", "u09"]),
                ("logins_count:{2 TO *]", &["u01", "u03", "u04", "u06", "u08", "u09"]),
                ("logins_count:[* TO 1]", &["u05", "u07"]),
                ("logins_count:[2 TO 5}", &["u02", "u03", "u09", "u10"]),
                ("logins_count:[* TO *]", EVERYONE),
                ("logins_count:10", &["u06"]),
                ("logins_count:(0 OR 10)", &["u05", "u06"]),
                ("logins_count:{9223372036854775807 TO *]", &[]),
                // Dates: an inclusive date-only upper bound includes that whole day.
                ("created_at:[2024-01-01 TO 2024-12-31]", &["u01", "u02", "u03", "u04", "u07", "u09", "u10"]),
                ("created_at:{2024-01-01 TO 2024-12-31}", &["u02", "u04", "u09"]),
                ("created_at:[2024-01-01 TO 2024-12-31}", &["u01", "u02", "u04", "u09"]),
                ("created_at:2024-12-31", &["u03", "u07", "u10"]),
                ("created_at:2024-12", &["u03", "u07", "u10"]),
                ("created_at:2024", &["u01", "u02", "u03", "u04", "u07", "u09", "u10"]),
                ("created_at:[* TO 2023-12-31]", &["u05", "u08"]),
                ("created_at:{2024-12-31 TO *]", &["u06"]),
                ("created_at:[2024-12-31T12:00:00Z TO *]", &["u03", "u06", "u10"]),
                ("created_at:{2024-12-31T12:00:00Z TO *]", &["u03", "u06"]),
                (r#"created_at:"2024-12-31T23:59:59.999Z""#, &["u03"]),
                ("created_at:[2024-12-31T13:00:00+01:00 TO 2024-12-31T12:00:00.001Z}", &["u10"]),
                ("updated_at:[2025-01-01 TO *]", &["u06"]),
                ("last_login:[2024-01-01 TO *]", &["u01"]),
                ("last_login:[* TO *]", &["u01", "u06"]),
                // Users without the field are outside every range, and inside its negation.
                ("NOT last_login:[2024 TO *]", &["u02", "u03", "u04", "u05", "u06", "u07", "u08", "u09", "u10"]),
                ("-last_login:[* TO *]", &["u02", "u03", "u04", "u05", "u07", "u08", "u09", "u10"]),
            ],
        )
        .await;
    }

    pub async fn search_boolean_logic(store: &dyn Store) {
        seed_search(store).await;
        expect(
            store,
            &[
                ("app_metadata.groups:editor AND (logins_count:2 OR logins_count:5)", &["u01", "u02"]),
                // AND binds tighter than OR; parentheses regroup.
                ("app_metadata.groups:viewer OR app_metadata.groups:editor AND logins_count:5", &["u01", "u07"]),
                ("(app_metadata.groups:viewer OR app_metadata.groups:editor) AND logins_count:5", &["u01"]),
                ("app_metadata.groups:viewer || app_metadata.groups:editor && logins_count:5", &["u01", "u07"]),
                // Side by side means OR.
                ("nickname:ann nickname:bob", &["u02", "u03"]),
                ("nickname:(ann OR bob)", &["u02", "u03"]),
                ("nickname:(ann bob carol)", &["u02", "u03", "u04"]),
                // Prohibited and required clauses.
                (
                    r#"identities.connection:"dev-users" -app_metadata.groups:admin"#,
                    &["u02", "u07", "u08", "u09", "u10"],
                ),
                (
                    r#"identities.connection:"dev-users" AND NOT app_metadata.groups:admin"#,
                    &["u02", "u07", "u08", "u09", "u10"],
                ),
                (r#"identities.connection:"dev-users" AND !blocked:true"#, &["u01", "u02", "u07", "u08", "u09", "u10"]),
                (
                    "+blocked:false app_metadata.groups:admin",
                    &["u01", "u02", "u04", "u05", "u06", "u07", "u08", "u09", "u10"],
                ),
                ("+nickname:ann +logins_count:2", &["u02"]),
                ("NOT NOT blocked:true", &["u03"]),
                ("NOT (blocked:true OR logins_count:[3 TO *])", &["u02", "u05", "u07", "u10"]),
                ("(nickname:ann OR (nickname:bob AND (blocked:true AND (logins_count:3))))", &["u02", "u03"]),
            ],
        )
        .await;
    }

    pub async fn search_sort_and_paging(store: &dyn Store) {
        seed_search(store).await;
        let run = |query: Option<&str>, sort: Option<(search::SortField, bool)>, page: u32, per_page: u32| {
            let query = query.map(|q| search::parse(q).unwrap());
            async move {
                let page = store.search_users(&UserSearch { query, sort, page, per_page, totals: true }).await.unwrap();
                (page.users.iter().map(|u| short(&u.user.user_id)).collect::<Vec<_>>(), page.total.unwrap())
            }
        };
        use search::SortField::*;

        // Default order: user_id.
        let (all, total) = run(None, None, 0, 50).await;
        assert_eq!(total, 10);
        assert_eq!(all, ["u01", "u02", "u03", "u04", "u05", "u07", "u08", "u09", "u10", "u06"]);

        // Ties break by user_id; missing values go last in either direction.
        let (by_logins, _) = run(None, Some((LoginsCount, false)), 0, 50).await;
        assert_eq!(by_logins, ["u06", "u08", "u04", "u01", "u09", "u03", "u02", "u10", "u07", "u05"]);
        let (by_created, _) = run(None, Some((CreatedAt, true)), 0, 50).await;
        assert_eq!(by_created, ["u08", "u05", "u01", "u04", "u02", "u09", "u07", "u10", "u03", "u06"]);
        let (by_login_asc, _) = run(None, Some((LastLogin, true)), 0, 50).await;
        assert_eq!(by_login_asc, ["u06", "u01", "u02", "u03", "u04", "u05", "u07", "u08", "u09", "u10"]);
        let (by_login_desc, _) = run(None, Some((LastLogin, false)), 0, 50).await;
        assert_eq!(by_login_desc, ["u01", "u06", "u02", "u03", "u04", "u05", "u07", "u08", "u09", "u10"]);
        let (by_email, _) = run(None, Some((Email, true)), 0, 50).await;
        assert_eq!(by_email, ["u02", "u01", "u03", "u04", "u05", "u06", "u07", "u10", "u08", "u09"]);
        let (by_name, _) = run(None, Some((Name, true)), 0, 50).await;
        assert_eq!(by_name, ["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u10", "u08", "u09"]);
        let (by_name_desc, _) = run(None, Some((Name, false)), 0, 50).await;
        assert_eq!(by_name_desc, ["u08", "u10", "u07", "u06", "u05", "u04", "u03", "u02", "u01", "u09"]);
        let (by_id_desc, _) = run(None, Some((UserId, false)), 0, 50).await;
        assert_eq!(by_id_desc, ["u06", "u10", "u09", "u08", "u07", "u05", "u04", "u03", "u02", "u01"]);

        // Pages of a filtered, sorted search; the total counts every match.
        let dev = Some(r#"identities.connection:"dev-users""#);
        assert_eq!(run(dev, None, 0, 3).await, (vec!["u01".into(), "u02".into(), "u03".into()], 7));
        assert_eq!(run(dev, None, 1, 3).await, (vec!["u07".into(), "u08".into(), "u09".into()], 7));
        assert_eq!(run(dev, None, 2, 3).await, (vec!["u10".into()], 7));
        assert_eq!(run(dev, None, 3, 3).await, (vec![], 7));
        let (page, total) = run(dev, Some((LoginsCount, true)), 1, 3).await;
        assert_eq!((page, total), (vec!["u03".into(), "u09".into(), "u01".into()], 7));
        assert_eq!(run(dev, None, 0, 0).await, (vec![], 7));
        assert_eq!(run(Some("nickname:nobody"), None, 0, 50).await, (vec![], 0));
    }

    pub async fn search_hostile_values(store: &dyn Store) {
        seed_search(store).await;
        expect(
            store,
            &[
                // Quotes, LIKE/GLOB metacharacters, backslashes and SQL comments match literally.
                (r#"name:"Zoë \"Q\" 100%_off; DROP TABLE users;--""#, &["u08"]),
                (r#"name:"zoë \"q\" 100%_OFF; drop table users;--""#, &["u08"]),
                (r#"email:"o'hara%_\\\";--@example.com""#, &["u08"]),
                (r"email:o'hara%_\\*", &["u08"]),
                ("email:o'hara__*", &[]),
                ("email:o'h?ra*", &["u08"]),
                ("name:*100%_off;*", &["u08"]),
                ("name:*0%_o*", &["u08"]),
                ("name:*0__o*", &[]),
                ("nickname:a_n*", &[]),
                ("nickname:a%*", &[]),
                (r"nickname:\[a*", &[]),
                (r"nickname:a\?n*", &[]),
                (r#"app_metadata.note:"it's 100%_\\ \"quoted\";--""#, &["u08"]),
                ("app_metadata.emoji:🦀", &["u08"]),
                ("nickname:zoë", &["u08"]),
                ("name:o'brien", &[]),
                (r#"user_id:"auth0|u01'; --""#, &[]),
                (r#"user_id:"auth0|u01\" OR 1=1 --""#, &[]),
                ("name:\"'); DELETE FROM users; --\"", &[]),
                (r#"app_metadata.groups:"admin\") || true || (\"""#, &[]),
                (r#"app_metadata.groups:"$.x ? (@ == 1)""#, &[]),
                (r#"app_metadata.note:"it''s""#, &[]),
                (r"name:\\", &[]),
                ("name:\"\"", &[]),
                ("email.domain:%", &[]),
                (r#"identities.connection:"dev-users' OR '1'='1""#, &[]),
                ("identities.connection:*%'--*", &[]),
            ],
        )
        .await;
        // Nothing was harmed.
        assert_eq!(found(store, "logins_count:[* TO *]").await, EVERYONE);

        // The largest queries the parser lets through stay within both databases' limits
        // (expression depth, bound parameters).
        let terms = search::MAX_TERMS;
        let deep_path = "app_metadata.a.b.c.d.e.f.g.h.i.j:x";
        let nested = |inner: &str| format!("{}{inner}{}", "(NOT ".repeat(15), ")".repeat(15));
        for q in [
            vec!["gho*"; terms].join(" OR "),
            vec!["ghost"; terms].join(" AND "),
            vec![deep_path; terms].join(" "),
            vec!["identities.connection:dev*"; terms].join(" "),
            nested(&format!("({})", ["nickname:ghost"; 10].join(" AND "))),
            String::new(),
        ] {
            let expected: &[&str] = match q.as_str() {
                q if q.starts_with("gho") => &["u09"],
                q if q.starts_with("ghost") => &["u09"],
                q if q.starts_with("identities") => &["u01", "u02", "u03", "u07", "u08", "u09", "u10"],
                q if q.starts_with("(NOT") => &["u01", "u02", "u03", "u04", "u05", "u06", "u07", "u08", "u10"],
                "" => EVERYONE,
                _ => &[],
            };
            assert_eq!(found(store, &q).await, expected, "{}…", &q[..q.len().min(40)]);
        }
    }

    pub async fn search_caps_at_1000(store: &dyn Store) {
        let users: Vec<_> = (0..1005).map(|i| user(&format!("auth0|bulk{i:04}"), "db", None, None)).collect();
        for chunk in users.chunks(50) {
            for result in join_all(chunk.iter().map(|u| store.create_user(u))).await {
                result.unwrap();
            }
        }
        let page = |page, per_page| UserSearch { query: None, sort: None, page, per_page, totals: true };
        let first = store.search_users(&page(0, 100)).await.unwrap();
        assert_eq!((first.users.len(), first.total), (100, Some(1000)));
        let last = store.search_users(&page(9, 100)).await.unwrap();
        assert_eq!(last.users.len(), 100);
        assert_eq!(last.users[99].user.user_id, "auth0|bulk0999");
        // Past the first thousand there is nothing, even for a page that starts inside it.
        assert!(store.search_users(&page(10, 100)).await.unwrap().users.is_empty());
        let straddling = store.search_users(&page(3, 300)).await.unwrap();
        assert_eq!(straddling.users.len(), 100);
        assert_eq!(straddling.users[0].user.user_id, "auth0|bulk0900");
        let query = search::parse("user_id:auth0|bulk100*").unwrap();
        let few = store.search_users(&UserSearch { query: Some(query), ..page(0, 50) }).await.unwrap();
        assert_eq!((few.users.len(), few.total), (5, Some(5)));
        // Without totals the page is the same and nothing is counted.
        let query = search::parse("user_id:auth0|bulk100*").unwrap();
        let uncounted = UserSearch { query: Some(query), totals: false, ..page(0, 50) };
        let uncounted = store.search_users(&uncounted).await.unwrap();
        assert_eq!((uncounted.users, uncounted.total), (few.users, None));
    }

    // --- roles and permissions

    fn role(id: &str, name: &str) -> Role {
        Role { id: id.into(), name: name.into(), description: Some(format!("{name} role")) }
    }

    fn perm(api: &str, name: &str) -> Permission {
        Permission { resource_server_identifier: api.into(), permission_name: name.into() }
    }

    const ALL: Page = Page { offset: 0, limit: 1000 };

    /// An API with `read:things`, `write:things` and `admin:things`, and two users.
    async fn rbac_fixture(store: &dyn Store) {
        let mut api = resource_server("rs1", "https://api.example/");
        api.scopes = ["read:things", "write:things", "admin:things"]
            .iter()
            .map(|s| Scope { value: (*s).into(), description: format!("{s} desc") })
            .collect();
        store.put_resource_server(&api).await.unwrap();
        store.create_user(&user("auth0|u1", "db", Some("u1@example.test"), None)).await.unwrap();
        store.create_user(&user("auth0|u2", "db", Some("u2@example.test"), None)).await.unwrap();
    }

    pub async fn roles_crud(store: &dyn Store) {
        store.create_role(&role("rol_a", "Editors")).await.unwrap();
        store.create_role(&role("rol_b", "Admins 100%")).await.unwrap();
        store.create_role(&role("rol_c", "viewers")).await.unwrap();
        assert!(matches!(store.create_role(&role("rol_d", "Editors")).await, Err(Error::Conflict(_))));
        assert!(matches!(store.create_role(&role("rol_a", "Other")).await, Err(Error::Conflict(_))));
        assert_eq!(store.role("rol_a").await.unwrap(), Some(role("rol_a", "Editors")));
        assert_eq!(store.role("rol_zz").await.unwrap(), None);

        let all = store.roles(None, ALL).await.unwrap();
        assert_eq!(all.total, 3);
        let names: Vec<&str> = all.items.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["Admins 100%", "Editors", "viewers"]);
        let filtered = store.roles(Some("EDIT"), ALL).await.unwrap();
        assert_eq!((filtered.total, filtered.items[0].id.as_str()), (1, "rol_a"), "case-insensitive");
        let percent = store.roles(Some("0%"), ALL).await.unwrap();
        assert_eq!(percent.items.len(), 1, "a % in the filter matches itself only");
        assert_eq!(store.roles(Some("_"), ALL).await.unwrap().total, 0, "so does _");
        let second = store.roles(None, Page { offset: 1, limit: 1 }).await.unwrap();
        assert_eq!((second.total, second.items[0].name.as_str()), (3, "Editors"));

        let renamed = Role { id: "rol_a".into(), name: "Writers".into(), description: None };
        store.update_role(&renamed).await.unwrap();
        assert_eq!(store.role("rol_a").await.unwrap(), Some(renamed));
        let taken = Role { id: "rol_a".into(), name: "viewers".into(), description: None };
        assert!(matches!(store.update_role(&taken).await, Err(Error::Conflict(_))));
        assert!(matches!(store.update_role(&role("rol_zz", "x")).await, Err(Error::NotFound(_))));
        assert!(store.delete_role("rol_a").await.unwrap());
        assert!(!store.delete_role("rol_a").await.unwrap());
        assert_eq!(store.roles(None, ALL).await.unwrap().total, 2);
    }

    pub async fn role_and_user_permissions(store: &dyn Store) {
        rbac_fixture(store).await;
        let api = "https://api.example/";
        store.create_role(&role("rol_r", "Readers")).await.unwrap();
        store.add_role_permissions("rol_r", &[perm(api, "read:things")]).await.unwrap();
        // Adding again changes nothing.
        store.add_role_permissions("rol_r", &[perm(api, "read:things"), perm(api, "read:things")]).await.unwrap();
        // One unknown scope, API or role refuses the whole call.
        let bad = [perm(api, "write:things"), perm(api, "delete:things")];
        assert!(matches!(store.add_role_permissions("rol_r", &bad).await, Err(Error::NotFound(_))));
        let bad_api = [perm(api, "write:things"), perm("https://none/", "read:things")];
        assert!(matches!(store.add_role_permissions("rol_r", &bad_api).await, Err(Error::NotFound(_))));
        assert!(matches!(
            store.add_role_permissions("rol_x", &[perm(api, "read:things")]).await,
            Err(Error::NotFound(_))
        ));
        let held = store.role_permissions("rol_r", ALL).await.unwrap();
        assert_eq!((held.items, held.total), (vec![perm(api, "read:things")], 1), "nothing half-written");
        assert!(matches!(store.role_permissions("rol_x", ALL).await, Err(Error::NotFound(_))));

        // Direct permissions, and the union the token endpoint reads.
        store.add_user_permissions("auth0|u1", &[perm(api, "admin:things"), perm(api, "read:things")]).await.unwrap();
        assert!(matches!(
            store.add_user_permissions("auth0|none", &[perm(api, "read:things")]).await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            store.add_user_permissions("auth0|u2", &[perm(api, "read:things"), perm(api, "x")]).await,
            Err(Error::NotFound(_))
        ));
        assert!(store.permissions_for("auth0|u2", api).await.unwrap().is_empty());
        store.assign_roles(&["auth0|u1".into()], &["rol_r".into()]).await.unwrap();
        assert_eq!(store.permissions_for("auth0|u1", api).await.unwrap(), ["admin:things", "read:things"]);
        assert!(store.permissions_for("auth0|u1", "https://other/").await.unwrap().is_empty());
        let sources = store.user_permission_sources("auth0|u1").await.unwrap();
        assert_eq!(
            sources,
            vec![
                (perm(api, "admin:things"), PermissionSource::Direct),
                (perm(api, "read:things"), PermissionSource::Direct),
                (perm(api, "read:things"), PermissionSource::Role { id: "rol_r".into(), name: "Readers".into() }),
            ]
        );
        assert!(matches!(store.user_permission_sources("auth0|none").await, Err(Error::NotFound(_))));

        // 1,000 permissions in one call, then removed in one.
        let mut many_api = resource_server("rs2", "https://many.example/");
        many_api.scopes = (0..1000).map(|i| Scope { value: format!("p:{i:04}"), description: String::new() }).collect();
        store.put_resource_server(&many_api).await.unwrap();
        let many: Vec<Permission> = (0..1000).map(|i| perm("https://many.example/", &format!("p:{i:04}"))).collect();
        store.add_role_permissions("rol_r", &many).await.unwrap();
        assert_eq!(store.role_permissions("rol_r", Page { offset: 0, limit: 1 }).await.unwrap().total, 1001);
        assert_eq!(store.permissions_for("auth0|u1", "https://many.example/").await.unwrap().len(), 1000);
        store.remove_role_permissions("rol_r", &many).await.unwrap();
        store.remove_user_permissions("auth0|u1", &[perm(api, "admin:things")]).await.unwrap();
        assert_eq!(store.permissions_for("auth0|u1", api).await.unwrap(), ["read:things"]);
        assert!(matches!(store.remove_role_permissions("rol_x", &many[..1]).await, Err(Error::NotFound(_))));
    }

    pub async fn role_assignments_and_paging(store: &dyn Store) {
        rbac_fixture(store).await;
        store.create_role(&role("rol_a", "A")).await.unwrap();
        store.create_role(&role("rol_b", "B")).await.unwrap();
        for i in 0..5 {
            store.create_user(&user(&format!("auth0|m{i}"), "db", None, None)).await.unwrap();
        }
        let members: Vec<String> = (0..5).map(|i| format!("auth0|m{i}")).collect();
        store.assign_roles(&members, &["rol_a".into()]).await.unwrap();
        store.assign_roles(&members[..1], &["rol_a".into(), "rol_b".into()]).await.unwrap();
        // An unknown user or role refuses the whole call.
        let with_unknown = vec!["auth0|u1".to_string(), "auth0|none".to_string()];
        assert!(matches!(store.assign_roles(&with_unknown, &["rol_b".into()]).await, Err(Error::NotFound(_))));
        assert!(matches!(
            store.assign_roles(&["auth0|u1".into()], &["rol_b".into(), "rol_x".into()]).await,
            Err(Error::NotFound(_))
        ));
        assert_eq!(store.user_roles("auth0|u1", ALL).await.unwrap().total, 0, "nothing half-written");

        // Checkpoint paging: after the last id of a page.
        let first = store.role_users("rol_a", None, Page { offset: 0, limit: 2 }).await.unwrap();
        assert_eq!(first.total, 5);
        let ids: Vec<&str> = first.items.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, ["auth0|m0", "auth0|m1"]);
        let next = store.role_users("rol_a", Some("auth0|m1"), Page { offset: 0, limit: 2 }).await.unwrap();
        let ids: Vec<&str> = next.items.iter().map(|u| u.user_id.as_str()).collect();
        assert_eq!(ids, ["auth0|m2", "auth0|m3"]);
        let offset = store.role_users("rol_a", None, Page { offset: 4, limit: 2 }).await.unwrap();
        assert_eq!(offset.items.len(), 1);
        assert!(matches!(store.role_users("rol_x", None, ALL).await, Err(Error::NotFound(_))));

        let roles = store.user_roles("auth0|m0", ALL).await.unwrap();
        assert_eq!(roles.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["rol_a", "rol_b"]);
        assert_eq!(store.role_names_of("auth0|m0").await.unwrap(), ["A", "B"]);
        assert!(matches!(store.user_roles("auth0|none", ALL).await, Err(Error::NotFound(_))));
        store.unassign_roles("auth0|m0", &["rol_b".into()]).await.unwrap();
        store.unassign_roles("auth0|m0", &["rol_b".into()]).await.unwrap();
        assert_eq!(store.role_names_of("auth0|m0").await.unwrap(), ["A"]);
        assert!(matches!(store.unassign_roles("auth0|m0", &["rol_x".into()]).await, Err(Error::NotFound(_))));
    }

    pub async fn rbac_follows_deletions(store: &dyn Store) {
        rbac_fixture(store).await;
        let api = "https://api.example/";
        store.put_connection(&connection("con_db", "db")).await.unwrap();
        store.create_role(&role("rol_a", "A")).await.unwrap();
        store.add_role_permissions("rol_a", &[perm(api, "read:things"), perm(api, "write:things")]).await.unwrap();
        store.add_user_permissions("auth0|u2", &[perm(api, "write:things"), perm(api, "admin:things")]).await.unwrap();
        store.assign_roles(&["auth0|u1".into(), "auth0|u2".into()], &["rol_a".into()]).await.unwrap();

        // A scope taken off the API is taken from the role and the user.
        let mut rs = store.resource_server("rs1").await.unwrap().unwrap();
        rs.scopes.retain(|s| s.value != "write:things");
        store.put_resource_server(&rs).await.unwrap();
        assert_eq!(store.role_permissions("rol_a", ALL).await.unwrap().items, [perm(api, "read:things")]);
        assert_eq!(store.permissions_for("auth0|u2", api).await.unwrap(), ["admin:things", "read:things"]);

        // A user deleted and created again under the same id holds nothing.
        assert!(store.delete_user("auth0|u2").await.unwrap());
        store.create_user(&user("auth0|u2", "db", Some("u2@example.test"), None)).await.unwrap();
        assert!(store.permissions_for("auth0|u2", api).await.unwrap().is_empty());
        assert!(store.role_names_of("auth0|u2").await.unwrap().is_empty());
        assert_eq!(store.role_users("rol_a", None, ALL).await.unwrap().total, 1);

        // A deleted role leaves no assignment behind.
        assert!(store.delete_role("rol_a").await.unwrap());
        assert!(store.role_names_of("auth0|u1").await.unwrap().is_empty());
        assert!(store.permissions_for("auth0|u1", api).await.unwrap().is_empty());

        // A deleted API takes its permissions along; a connection its users' roles.
        store.add_user_permissions("auth0|u1", &[perm(api, "read:things")]).await.unwrap();
        store.create_role(&role("rol_b", "B")).await.unwrap();
        store.assign_roles(&["auth0|u1".into()], &["rol_b".into()]).await.unwrap();
        assert!(store.delete_resource_server("rs1").await.unwrap());
        assert!(store.user_permission_sources("auth0|u1").await.unwrap().is_empty());
        assert_eq!(store.delete_connection("con_db").await.unwrap(), Some(2));
        assert_eq!(store.role_users("rol_b", None, ALL).await.unwrap().total, 0);
    }
}

// --- behaviour specific to connecting

#[tokio::test]
async fn sqlite_file_migrations_are_idempotent_and_data_persists() {
    let backend = Backend::sqlite_file().await;
    assert_eq!(backend.store.dialect(), Dialect::Sqlite);
    backend.store.put_userinfo_claims("k", &claims(1)).await.unwrap();
    let Cleanup::File(path) = &backend.cleanup else { unreachable!() };
    let url = format!("sqlite://{}", path.display());
    let again = SqlStore::connect(&url).await.expect("second connect");
    assert_eq!(again.userinfo_claims("k").await.unwrap(), Some(claims(1)));
    assert_eq!(migrations_applied(&url, None).await, MIGRATION_STEPS);
    // A WAL-mode file, as the pool configured it.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut conn).await.unwrap();
    assert_eq!(mode, "wal");
    again.close().await;
    backend.finish().await;
}

/// A database from before usernames were unique, holding a username twice in one connection:
/// the step that makes them unique stops, naming the username and both users, and changes
/// nothing; once an operator renames one, the next start applies it.
#[tokio::test]
async fn duplicate_usernames_stop_the_migration_naming_them() {
    let backend = Backend::sqlite_file().await;
    let Cleanup::File(path) = &backend.cleanup else { unreachable!() };
    let url = format!("sqlite://{}", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // Back to step 5's schema, then two users of `db` called "ada" (and one elsewhere).
    sqlx::raw_sql(
        "DROP INDEX users_username;
         CREATE INDEX users_username ON users (connection, username_lower);
         DELETE FROM schema_migrations WHERE version = 6;
         INSERT INTO users (user_id, connection, email_lower, username_lower, created_at, updated_at, data)
         VALUES ('auth0|a1', 'db', 'a1@x.test', 'ada', 0, 0, '{}'),
                ('auth0|a2', 'db', 'a2@x.test', 'ada', 0, 0, '{}'),
                ('auth0|a3', 'other', 'a3@x.test', 'ada', 0, 0, '{}');",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let Err(Error::Migration(why)) = SqlStore::connect(&url).await else { panic!("the step ran over duplicates") };
    assert!(why.contains("\"ada\" in db (auth0|a1, auth0|a2)"), "{why}");
    assert!(!why.contains("auth0|a3"), "{why}");
    assert!(!migration_applied(&url, 6).await, "nothing applied");

    sqlx::raw_sql("UPDATE users SET username_lower = 'ada2' WHERE user_id = 'auth0|a2'")
        .execute(&mut conn)
        .await
        .unwrap();
    let store = SqlStore::connect(&url).await.expect("applies once the data is fixed");
    assert!(migration_applied(&url, 6).await);
    let dup = sqlx::raw_sql(
        "INSERT INTO users (user_id, connection, username_lower, created_at, updated_at, data)
         VALUES ('auth0|a4', 'db', 'ada', 0, 0, '{}')",
    )
    .execute(&mut conn)
    .await;
    assert!(dup.is_err(), "the index is unique now");
    store.close().await;
    backend.finish().await;
}

#[tokio::test]
async fn corrupt_documents_are_reported_not_hidden() {
    let backend = Backend::sqlite_file().await;
    backend.store.put_userinfo_claims("k", &claims(1)).await.unwrap();
    backend
        .store
        .put_connection(&store::Connection {
            id: "con_1".into(),
            name: "db".into(),
            strategy: "auth0".into(),
            options: Default::default(),
            enabled_clients: vec![],
            display_name: None,
            realms: vec![],
            is_domain_connection: false,
            extra: Default::default(),
        })
        .await
        .unwrap();
    let Cleanup::File(path) = &backend.cleanup else { unreachable!() };
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::raw_sql("UPDATE userinfo_claims SET data = '{not json'; UPDATE connections SET data = '{\"id\": 1}'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(matches!(backend.store.userinfo_claims("k").await, Err(Error::Corrupt(_))));
    assert!(matches!(backend.store.connection_by_name("db").await, Err(Error::Corrupt(_))));
    backend.finish().await;
}

#[tokio::test]
async fn sqlite_accepts_numbered_placeholders() {
    // The store writes `$n` for both databases; SQLite must bind them by number, reused and
    // out of order.
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect("sqlite::memory:").await.unwrap();
    let (joined, first): (String, String) =
        sqlx::query_as("SELECT $2 || $1 || $2, $1").bind("a").bind("b").fetch_one(&mut conn).await.unwrap();
    assert_eq!((joined.as_str(), first.as_str()), ("bab", "a"));
}

#[tokio::test]
async fn postgres_migrations_are_idempotent() {
    let backend = Backend::postgres().await;
    assert_eq!(backend.store.dialect(), Dialect::Postgres);
    let Cleanup::Schema(schema) = &backend.cleanup else { unreachable!() };
    backend.store.put_userinfo_claims("k", &claims(1)).await.unwrap();
    // Two more stores starting at once against the same schema.
    let url = postgres_url();
    let (a, b) = tokio::join!(SqlStore::connect_in_schema(&url, schema), SqlStore::connect_in_schema(&url, schema));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.userinfo_claims("k").await.unwrap(), Some(claims(1)));
    assert_eq!(b.userinfo_claims("k").await.unwrap(), Some(claims(1)));
    assert_eq!(migrations_applied(&url, Some(schema)).await, MIGRATION_STEPS);
    a.close().await;
    b.close().await;
    backend.finish().await;
}

#[tokio::test]
async fn postgres_schemas_are_isolated() {
    let one = Backend::postgres().await;
    let two = Backend::postgres().await;
    one.store.put_userinfo_claims("k", &claims(1)).await.unwrap();
    assert_eq!(two.store.userinfo_claims("k").await.unwrap(), None);
    one.finish().await;
    two.finish().await;
}

/// The user list's default order (`user_id` by code point, as `search_users` sends it) comes
/// off an index on PostgreSQL whatever the database's collation, so a page reads no more than
/// its rows (migration 14). With sorting priced out, the planner still sorts when no index
/// serves the order, so a plan without a Sort node shows one does.
#[tokio::test]
async fn postgres_user_list_pages_off_an_index() {
    let backend = Backend::postgres().await;
    let (mut conn, _, _) = raw(&backend).await;
    sqlx::raw_sql("SET enable_sort = off").execute(&mut conn).await.unwrap();
    let plan: Vec<(String,)> = sqlx::query_as(
        "EXPLAIN SELECT data, password_hash FROM users WHERE TRUE ORDER BY users.user_id COLLATE \"C\" ASC LIMIT 50 OFFSET 100",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let plan: Vec<&str> = plan.iter().map(|(line,)| line.as_str()).collect();
    assert!(!plan.iter().any(|line| line.contains("Sort")), "{plan:#?}");
    assert!(plan.iter().any(|line| line.contains("users_user_id_c")), "{plan:#?}");
    conn.close().await.unwrap();
    backend.finish().await;
}

#[tokio::test]
async fn sqlite_memory_is_one_database() {
    let store = SqlStore::connect("sqlite::memory:").await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    let record = claims(1);
    let writes = keys.iter().map(|key| store.put_userinfo_claims(key, &record));
    for result in join_all(writes).await {
        result.unwrap();
    }
    for key in &keys {
        assert_eq!(store.userinfo_claims(key).await.unwrap().as_ref(), Some(&record), "{key}");
    }
}

#[tokio::test]
async fn rejects_bad_urls_and_schema_names() {
    for url in ["mysql://localhost/db", "", "http://example.com", "postgres:/x"] {
        assert!(matches!(SqlStore::connect(url).await, Err(Error::InvalidUrl(_))), "{url}");
    }
    for schema in ["", "a-b", "x; DROP TABLE users", "\"quoted\"", "1abc"] {
        let result = SqlStore::connect_in_schema(&postgres_url(), schema).await;
        assert!(matches!(result, Err(Error::InvalidUrl(_))), "{schema:?}");
    }
    let sqlite_schema = SqlStore::connect_in_schema("sqlite::memory:", "s").await;
    assert!(matches!(sqlite_schema, Err(Error::InvalidUrl(_))));
}

#[tokio::test]
async fn failed_connection_is_a_backend_error() {
    let unknown_role = "postgres://no_such_role_gatehouse@127.0.0.1:5432/test";
    assert!(matches!(SqlStore::connect(unknown_role).await, Err(Error::Backend(_))));
    let missing_dir = std::env::temp_dir().join(unique("missing")).join("x.db");
    let result = SqlStore::connect(&format!("sqlite://{}", missing_dir.display())).await;
    assert!(matches!(result, Err(Error::Backend(_))));
}

/// A small record for the tests of connecting.
fn claims(n: i64) -> store::UserinfoClaims {
    let serde_json::Value::Object(claims) = serde_json::json!({"n": n}) else { unreachable!() };
    store::UserinfoClaims { claims, updated_at: n }
}

/// Whether step `version` is recorded in a SQLite file.
async fn migration_applied(url: &str, version: i64) -> bool {
    let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
    let found: Option<(i64,)> = sqlx::query_as("SELECT version FROM schema_migrations WHERE version = $1")
        .bind(version)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    found.is_some()
}

/// How many steps `store`'s migrations have: every new one adds one here.
const MIGRATION_STEPS: i64 = 14;

async fn migrations_applied(url: &str, schema: Option<&str>) -> i64 {
    let table = match schema {
        Some(schema) => format!("\"{schema}\".schema_migrations"),
        None => "schema_migrations".into(),
    };
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let (count,): (i64,) = sqlx::query_as(&sql).fetch_one(&mut conn).await.unwrap();
    count
}

// --- migration 7: the generic documents into typed tables

/// A raw connection to the backend's database (and schema), and a way to open the store again.
async fn raw(backend: &Backend) -> (sqlx::AnyConnection, String, Option<String>) {
    sqlx::any::install_default_drivers();
    match &backend.cleanup {
        Cleanup::File(path) => {
            let url = format!("sqlite://{}", path.display());
            (sqlx::AnyConnection::connect(&url).await.unwrap(), url, None)
        }
        Cleanup::Schema(schema) => {
            let mut conn = sqlx::AnyConnection::connect(&postgres_url()).await.unwrap();
            sqlx::raw_sql(&format!("SET search_path TO \"{schema}\"")).execute(&mut conn).await.unwrap();
            (conn, postgres_url(), Some(schema.clone()))
        }
        Cleanup::Nothing => unreachable!("an in-memory database cannot be reopened"),
    }
}

async fn reopen(url: &str, schema: Option<&str>) -> store::Result<SqlStore> {
    match schema {
        Some(schema) => SqlStore::connect_in_schema(url, schema).await,
        None => SqlStore::connect(url).await,
    }
}

/// Takes the database back to step 6 (the generic `documents` table, no typed tables).
async fn back_to_step_6(conn: &mut sqlx::AnyConnection) {
    sqlx::raw_sql(
        "DROP TABLE trigger_bindings; DROP TABLE action_versions; DROP TABLE actions;
         DROP TABLE import_jobs; DROP TABLE federated_states; DROP TABLE federated_issuers;
         DROP TABLE userinfo_claims;
         CREATE TABLE documents (kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (kind, id));
         DELETE FROM schema_migrations WHERE version = 7;",
    )
    .execute(conn)
    .await
    .unwrap();
}

async fn put_doc(conn: &mut sqlx::AnyConnection, kind: &str, id: &str, data: serde_json::Value) {
    sqlx::query("INSERT INTO documents (kind, id, data) VALUES ($1, $2, $3)")
        .bind(kind)
        .bind(id)
        .bind(data.to_string())
        .execute(conn)
        .await
        .unwrap();
}

async fn put_code(conn: &mut sqlx::AnyConnection, key: u8, grant: serde_json::Value, redeemed_at: Option<i64>) {
    sqlx::query("INSERT INTO auth_codes (code_sha256, grant_doc, expires_at, redeemed_at) VALUES ($1, $2, $3, $4)")
        .bind(vec![key; 32])
        .bind(grant.to_string())
        .bind(i64::MAX)
        .bind(redeemed_at)
        .execute(conn)
        .await
        .unwrap();
}

/// What earlier versions wrote as documents (and federated states as authorization codes)
/// is in the typed tables after migration 7; leftovers of non-transactional deletes are not.
async fn documents_move_into_typed_tables(backend: Backend) {
    use serde_json::json;
    use store::*;
    let (mut conn, url, schema) = raw(&backend).await;
    back_to_step_6(&mut conn).await;
    let action = json!({"id": "a1", "name": "Enrich", "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": "// draft", "dependencies": [], "runtime": "node22", "secrets": [{"name": "KEY", "updated_at": "t"}], "status": "built",
        "created_at": "t0", "updated_at": "t1", "deployed_version": "v1", "versions": 1});
    let version = json!({"id": "v1", "action_id": "a1", "number": 1, "code": "// v1", "created_at": "t0",
        "updated_at": "t0"});
    put_doc(&mut conn, "action", "a1", action.clone()).await;
    put_doc(&mut conn, "action_secrets", "a1", json!({"KEY": "sealed-draft"})).await;
    put_doc(&mut conn, "action_version", "v1", version.clone()).await;
    put_doc(&mut conn, "action_version_secrets", "v1", json!({"KEY": "sealed-v1"})).await;
    let orphan =
        json!({"id": "vx", "action_id": "gone", "number": 1, "code": "", "created_at": "t", "updated_at": "t"});
    put_doc(&mut conn, "action_version", "vx", orphan).await;
    put_doc(&mut conn, "action_secrets", "gone", json!({"KEY": "x"})).await;
    let bound = json!({"id": "b1", "action_id": "a1", "display_name": "Enrich", "created_at": "t", "updated_at": "t"});
    let dangling =
        json!({"id": "b2", "action_id": "gone", "display_name": "Gone", "created_at": "t", "updated_at": "t"});
    put_doc(&mut conn, "trigger_bindings", "post-login", json!({"bindings": [bound, dangling]})).await;
    put_doc(&mut conn, "trigger_bindings", "credentials-exchange", json!([{"action_name": "Enrich"}])).await;
    put_doc(
        &mut conn,
        "job",
        "job_1",
        json!({"type": "users_import", "status": "processing",
        "connection_id": "con_0123456789abcdef", "connection": "db", "created_at": "2030-01-01T00:00:00.000Z",
        "id": "job_1", "external_id": "e", "percentage_done": 50, "_upsert": true, "_send_completion_email": false,
        "_created_ms": 100, "_heartbeat": 150, "_attempts": 2, "_next": 1,
        "_summary": {"failed": 1, "updated": 0, "inserted": 0, "total": 2}}),
    )
    .await;
    put_doc(&mut conn, "job_file", "job_1", json!("[{\"email\": \"a@x.test\"}, {}]")).await;
    put_doc(
        &mut conn,
        "job_errors",
        "job_1",
        json!({"errors": [{"user": {}, "errors": [{"code": "X"}], "_index": 1}]}),
    )
    .await;
    put_doc(
        &mut conn,
        "job",
        "job_2",
        json!({"type": "users_import", "status": "completed",
        "connection_id": "con_0123456789abcdef", "connection": "db", "created_at": "2030-01-01T00:00:00.000Z",
        "id": "job_2", "_created_ms": 90, "_heartbeat": 95, "_attempts": 1}),
    )
    .await;
    put_doc(&mut conn, "job_file", "job_2", json!("[]")).await;
    put_doc(
        &mut conn,
        "federated_issuer",
        "oidc|corp|1",
        json!({"connection": "corp", "issuer": "https://up.example"}),
    )
    .await;
    put_doc(&mut conn, "userinfo_claims", "key1", json!({"claims": {"https://x.test/a": 1}, "updated_at": 5})).await;
    let trip = json!({"tx": "tx1", "connection": "corp", "nonce": "n", "verifier": "v", "binding": "b"});
    put_code(&mut conn, 1, trip.clone(), None).await;
    put_code(&mut conn, 2, trip, Some(7)).await;
    put_code(&mut conn, 3, json!({"client_id": "c1", "scope": "openid"}), None).await;
    drop(conn);

    let store = reopen(&url, schema.as_deref()).await.expect("migration 7 applies");
    assert_eq!(migrations_applied(&url, schema.as_deref()).await, MIGRATION_STEPS);
    let moved = store.action("a1").await.unwrap().expect("the action");
    assert_eq!(json!(moved.action), action);
    assert_eq!(moved.secrets, SealedSecrets::from([("KEY".to_string(), "sealed-draft".to_string())]));
    let v1 = store.action_version("v1").await.unwrap().expect("its version");
    assert_eq!((json!(v1.version)["code"].clone(), v1.secrets["KEY"].as_str()), (json!("// v1"), "sealed-v1"));
    assert_eq!(store.action_version("vx").await.unwrap(), None, "a version of a deleted action is dropped");
    let bindings = store.trigger_bindings("post-login").await.unwrap();
    assert_eq!(bindings.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(), vec!["b1"]);
    assert_eq!(store.trigger_bindings("credentials-exchange").await.unwrap(), vec![]);

    let job = store.import_job("job_1").await.unwrap().expect("the running job");
    assert_eq!(
        (job.status, job.created_at, job.heartbeat, job.attempts, job.next_row, job.upsert, job.send_completion_email),
        (JobStatus::Processing, 100, 150, 2, 1, true, false)
    );
    assert_eq!(job.summary, Some(ImportSummary { inserted: 0, updated: 0, failed: 1, total: 2 }));
    assert_eq!((job.external_id.as_deref(), job.percentage_done), (Some("e"), Some(50)));
    assert_eq!(store.import_job_file("job_1").await.unwrap().as_deref(), Some("[{\"email\": \"a@x.test\"}, {}]"));
    let errors = store.import_job_errors("job_1").await.unwrap();
    assert_eq!(errors, vec![ImportRowError { index: 1, user: json!({}), errors: vec![json!({"code": "X"})] }]);
    assert_eq!(store.import_job("job_2").await.unwrap().unwrap().status, JobStatus::Completed);
    assert_eq!(store.import_job_file("job_2").await.unwrap(), None, "an ended job keeps no file");

    let issuer = store.federated_issuer("oidc|corp|1").await.unwrap().expect("the issuer");
    assert_eq!((issuer.connection.as_str(), issuer.issuer.as_str()), ("corp", "https://up.example"));
    let claims = store.userinfo_claims("key1").await.unwrap().expect("the claims");
    assert_eq!((json!(claims.claims), claims.updated_at), (json!({"https://x.test/a": 1}), 5));

    let StateRedemption::Fresh(state) = store.redeem_federated_state(&[1; 32], 0).await.unwrap() else {
        panic!("the pending trip moved")
    };
    assert_eq!((state.login_transaction.as_str(), state.code_verifier.as_str()), ("tx1", "v"));
    assert_eq!(store.redeem_federated_state(&[2; 32], 0).await.unwrap(), StateRedemption::Reused, "still used");
    assert_eq!(store.redeem_code(&[1; 32], 0).await.unwrap(), CodeRedemption::Unknown, "no longer a code");
    assert_eq!(
        store.redeem_code(&[3; 32], 0).await.unwrap(),
        CodeRedemption::Fresh(json!({"client_id": "c1", "scope": "openid"}))
    );
    store.close().await;
    backend.finish().await;
}

#[tokio::test]
async fn sqlite_documents_move_into_typed_tables() {
    documents_move_into_typed_tables(Backend::sqlite_file().await).await;
}

#[tokio::test]
async fn postgres_documents_move_into_typed_tables() {
    documents_move_into_typed_tables(Backend::postgres().await).await;
}

/// A document that no longer parses stops migration 7, named, with nothing applied; once an
/// operator deletes it, the next start applies the step.
#[tokio::test]
async fn an_unreadable_document_stops_the_move_naming_it() {
    let backend = Backend::sqlite_file().await;
    let (mut conn, url, _) = raw(&backend).await;
    back_to_step_6(&mut conn).await;
    put_doc(&mut conn, "userinfo_claims", "fine", serde_json::json!({"claims": {}, "updated_at": 1})).await;
    put_doc(&mut conn, "action", "a1", serde_json::json!({"id": "a1"})).await;
    put_doc(&mut conn, "mystery", "m1", serde_json::json!({})).await;
    let Err(Error::Migration(why)) = SqlStore::connect(&url).await else { panic!("moved unreadable documents") };
    assert!(why.contains("action a1 (missing field `name`"), "{why}");
    assert!(why.contains("mystery m1"), "{why}");
    assert!(!migration_applied(&url, 7).await, "nothing applied");

    sqlx::raw_sql("DELETE FROM documents WHERE kind <> 'userinfo_claims'").execute(&mut conn).await.unwrap();
    let store = SqlStore::connect(&url).await.expect("applies once the data is fixed");
    assert!(store.userinfo_claims("fine").await.unwrap().is_some());
    store.close().await;
    backend.finish().await;
}
