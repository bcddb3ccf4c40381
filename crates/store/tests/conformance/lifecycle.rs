//! A user's lifecycle in the conformance suite: sessions and refresh tokens by user, consent
//! grants, brute-force counters by user, and identities linked and unlinked in one
//! transaction each, against the same three backends as the rest.

use serde_json::{Map, json};
use store::*;

conformance!(lifecycle:
    sessions_and_refresh_tokens_by_user,
    failures_by_user,
    grants_upsert_filter_and_revoke,
    linking_moves_an_identity_in_one_transaction,
);

fn user(id: &str, connection: &str, provider: &str) -> StoredUser {
    let (_, identity_id) = id.split_once('|').unwrap();
    let identity = Identity {
        connection: connection.into(),
        provider: provider.into(),
        user_id: identity_id.into(),
        is_social: provider != "auth0",
        profile_data: None,
    };
    let mut u = User::new(id.into(), connection.into(), identity, 1_000);
    u.email = Some(format!("{}@example.test", identity_id.replace('|', "-")));
    StoredUser { user: u, password_hash: None }
}

fn session(id: &str, user_id: &str, expires_at: Millis) -> SsoSession {
    SsoSession { id: id.into(), user_id: user_id.into(), auth_time: 10, last_seen: 20, expires_at, clients: vec![] }
}

fn token(digest: u8, family: &str, user_id: &str, created_at: Millis) -> RefreshToken {
    RefreshToken {
        token_sha256: vec![digest; 32],
        family: family.into(),
        client_id: "c1".into(),
        user_id: user_id.into(),
        grant: json!({"scope": ["openid"]}),
        created_at,
        expires_at: None,
        rotated_at: None,
        revoked: false,
        last_used_at: None,
    }
}

fn families(tokens: &[RefreshToken]) -> Vec<(&str, Millis)> {
    tokens.iter().map(|t| (t.family.as_str(), t.created_at)).collect()
}

pub async fn sessions_and_refresh_tokens_by_user(store: &dyn Store) {
    for s in
        [session("s1", "u1", 1_000), session("s2", "u1", 50), session("s0", "u1", 2_000), session("s3", "u2", 1_000)]
    {
        store.put_session(&s).await.unwrap();
    }
    let live: Vec<String> = store.user_sessions("u1", 100).await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(live, ["s0", "s1"], "live ones, by id");
    assert_eq!(store.delete_user_sessions("u1").await.unwrap(), 3);
    assert_eq!(store.user_sessions("u1", 0).await.unwrap(), vec![]);
    assert!(store.session("s3", 100).await.unwrap().is_some(), "another user's stays");

    // Family a: a rotated token and its live successor; b: one live token; c: revoked;
    // d: expired; another user's.
    let t1 = token(1, "a", "u1", 100);
    store.put_refresh_token(&t1).await.unwrap();
    assert!(store.rotate_refresh_token(&t1.token_sha256, 150, &token(2, "a", "u1", 150)).await.unwrap());
    store.put_refresh_token(&token(3, "b", "u1", 120)).await.unwrap();
    store.put_refresh_token(&RefreshToken { revoked: true, ..token(4, "c", "u1", 130) }).await.unwrap();
    store.put_refresh_token(&RefreshToken { expires_at: Some(200), ..token(5, "d", "u1", 140) }).await.unwrap();
    store.put_refresh_token(&token(6, "e", "u2", 160)).await.unwrap();
    let listed = store.user_refresh_tokens("u1", 300).await.unwrap();
    assert_eq!(families(&listed), [("a", 150), ("b", 120)]);
    assert_eq!(store.live_refresh_family("a", 300).await.unwrap().map(|t| t.token_sha256), Some(vec![2; 32]));
    assert_eq!(store.live_refresh_family("c", 300).await.unwrap(), None);
    assert_eq!(store.live_refresh_family("d", 300).await.unwrap(), None);
    assert_eq!(store.revoke_user_refresh_tokens("u1").await.unwrap(), 4, "every token not revoked yet");
    assert_eq!(store.user_refresh_tokens("u1", 0).await.unwrap(), vec![]);
    assert_eq!(families(&store.user_refresh_tokens("u2", 0).await.unwrap()), [("e", 160)]);
}

pub async fn failures_by_user(store: &dyn Store) {
    store.record_failure("u1", "10.0.0.2", 100, 0).await.unwrap();
    store.record_failure("u1", "10.0.0.1", 100, 0).await.unwrap();
    store.record_failure("u1", "10.0.0.1", 110, 0).await.unwrap();
    store.record_failure("u2", "10.0.0.1", 100, 0).await.unwrap();
    let counted: Vec<(String, i64)> =
        store.user_failures("u1").await.unwrap().into_iter().map(|f| (f.ip, f.count.failures)).collect();
    assert_eq!(counted, [("10.0.0.1".to_string(), 2), ("10.0.0.2".to_string(), 1)]);
    store.clear_failures("u1", None).await.unwrap();
    assert_eq!(store.user_failures("u1").await.unwrap(), vec![]);
    assert_eq!(store.user_failures("u2").await.unwrap().len(), 1);
}

fn grant(id: &str, user_id: &str, audience: &str, scope: &[&str]) -> UserGrant {
    UserGrant {
        id: id.into(),
        user_id: user_id.into(),
        client_id: "c1".into(),
        audience: audience.into(),
        scope: scope.iter().map(|s| s.to_string()).collect(),
        created_at: 5,
    }
}

pub async fn grants_upsert_filter_and_revoke(store: &dyn Store) {
    let client: Client = serde_json::from_value(json!({"client_id": "c1", "name": "App"})).unwrap();
    store.create_client(&StoredClient { client, secret_sha256: None }, false).await.unwrap();
    for id in ["auth0|u1", "auth0|u2"] {
        store.create_user(&user(id, "db", "auth0")).await.unwrap();
    }
    store.put_user_grant(&grant("g1", "auth0|u1", "aud1", &["openid"])).await.unwrap();
    // The same user, client and audience again: the id stays, the scope is the new one.
    store.put_user_grant(&grant("g9", "auth0|u1", "aud1", &["openid", "email"])).await.unwrap();
    store.put_user_grant(&grant("g2", "auth0|u2", "aud1", &["openid"])).await.unwrap();
    store.put_user_grant(&grant("g3", "auth0|u1", "aud2", &["openid"])).await.unwrap();
    assert_eq!(store.user_grant("g9").await.unwrap(), None);
    assert_eq!(store.user_grant("g1").await.unwrap(), Some(grant("g1", "auth0|u1", "aud1", &["openid", "email"])));
    let of = |user_id: Option<&str>, audience: Option<&str>| GrantFilter {
        user_id: user_id.map(Into::into),
        client_id: Some("c1".into()),
        audience: audience.map(Into::into),
    };
    let page = |offset, limit| Page { offset, limit };
    let found = store.user_grants(&of(Some("auth0|u1"), None), page(0, 10)).await.unwrap();
    assert_eq!((found.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), found.total), (vec!["g1", "g3"], 2));
    let second = store.user_grants(&of(Some("auth0|u1"), None), page(1, 1)).await.unwrap();
    assert_eq!((second.items.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), second.total), (vec!["g3"], 2));
    let aud1 = store.user_grants(&of(None, Some("aud1")), page(0, 10)).await.unwrap();
    assert_eq!(aud1.total, 2);
    let all = store.user_grants(&GrantFilter::default(), page(0, 10)).await.unwrap();
    assert_eq!(all.total, 3);
    let hostile = GrantFilter { user_id: Some("' OR 1=1 --".into()), ..Default::default() };
    assert_eq!(store.user_grants(&hostile, page(0, 10)).await.unwrap().total, 0);
    assert!(matches!(store.put_user_grant(&grant("g4", "auth0|nobody", "aud1", &[])).await, Err(Error::NotFound(_))));

    // Revoking a grant revokes the families named with it, in its transaction.
    store.put_refresh_token(&token(1, "f1", "auth0|u1", 10)).await.unwrap();
    store.put_refresh_token(&token(2, "f2", "auth0|u1", 10)).await.unwrap();
    assert!(store.delete_user_grant("g1", &["f1".into()]).await.unwrap());
    assert!(!store.delete_user_grant("g1", &[]).await.unwrap());
    assert_eq!(families(&store.user_refresh_tokens("auth0|u1", 0).await.unwrap()), [("f2", 10)]);
    assert_eq!(store.delete_user_grants("auth0|u1").await.unwrap(), 1);
    assert_eq!(store.user_refresh_tokens("auth0|u1", 0).await.unwrap(), vec![]);
    // A user's grants go with the user.
    store.delete_user("auth0|u2").await.unwrap();
    assert_eq!(store.user_grants(&GrantFilter::default(), page(0, 10)).await.unwrap().total, 0);
}

pub async fn linking_moves_an_identity_in_one_transaction(store: &dyn Store) {
    let primary = user("auth0|p", "db", "auth0");
    let secondary = user("google-oauth2|s", "google-oauth2", "google-oauth2");
    store.create_user(&primary).await.unwrap();
    store.create_user(&secondary).await.unwrap();
    store.put_session(&session("sess", "google-oauth2|s", 1_000)).await.unwrap();
    store.put_refresh_token(&token(1, "f", "google-oauth2|s", 10)).await.unwrap();
    store
        .put_federated_issuer(&FederatedIssuer {
            user_id: "google-oauth2|s".into(),
            connection: "google-oauth2".into(),
            issuer: "https://up.example".into(),
        })
        .await
        .unwrap();

    let mut linked = primary.clone();
    let mut identity = secondary.user.identities[0].clone();
    identity.profile_data = Some(Map::from_iter([("email".to_string(), json!("s@example.test"))]));
    linked.user.identities.push(identity);
    store.link_identity(&linked, "google-oauth2|s", "google-oauth2", "s").await.unwrap();
    assert_eq!(store.user("auth0|p").await.unwrap().unwrap().user, linked.user);
    assert_eq!(store.user("google-oauth2|s").await.unwrap(), None, "the secondary went");
    assert_eq!(store.linked_identity_owner("google-oauth2", "s").await.unwrap().as_deref(), Some("auth0|p"));
    assert_eq!(store.user_sessions("google-oauth2|s", 0).await.unwrap(), vec![], "with its sessions");
    assert_eq!(store.user_refresh_tokens("google-oauth2|s", 0).await.unwrap(), vec![], "and refresh tokens");
    assert!(store.federated_issuer("google-oauth2|s").await.unwrap().is_some(), "its issuer stays checked");

    // Linked already: nothing written.
    store.create_user(&user("google-oauth2|t", "google-oauth2", "google-oauth2")).await.unwrap();
    let again = store.link_identity(&linked, "google-oauth2|t", "google-oauth2", "s").await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");
    assert!(store.user("google-oauth2|t").await.unwrap().is_some());
    // A secondary that is gone: nothing written either.
    let gone = store.link_identity(&linked, "google-oauth2|x", "google-oauth2", "x").await;
    assert!(matches!(gone, Err(Error::NotFound(_))), "{gone:?}");
    assert_eq!(store.linked_identity_owner("google-oauth2", "x").await.unwrap(), None);

    // Unlinked: the identity is a user again, the link forgotten.
    let restored = user("google-oauth2|s", "google-oauth2", "google-oauth2");
    store.unlink_identity(&primary, "google-oauth2", "s", &restored).await.unwrap();
    assert_eq!(store.user("auth0|p").await.unwrap().unwrap().user, primary.user);
    assert_eq!(store.user("google-oauth2|s").await.unwrap().unwrap().user, restored.user);
    assert_eq!(store.linked_identity_owner("google-oauth2", "s").await.unwrap(), None);
    let twice = store.unlink_identity(&primary, "google-oauth2", "s", &restored).await;
    assert!(matches!(twice, Err(Error::NotFound(_))), "{twice:?}");

    // A database identity keeps its login names and password through the link and back.
    let db_secondary = StoredUser { password_hash: Some("$2b$04$hash".into()), ..user("auth0|d", "db", "auth0") };
    store.create_user(&db_secondary).await.unwrap();
    let mut with_db = primary.clone();
    with_db.user.identities.push(db_secondary.user.identities[0].clone());
    store.link_identity(&with_db, "auth0|d", "auth0", "d").await.unwrap();
    let expected = LinkedLogin { primary_user_id: "auth0|p".into(), password_hash: Some("$2b$04$hash".into()) };
    assert_eq!(store.linked_login("db", "D@Example.Test").await.unwrap(), Some(expected));
    assert_eq!(store.linked_login("other", "d@example.test").await.unwrap(), None);
    assert_eq!(store.user_by_login("db", "d@example.test").await.unwrap(), None);
    let without_hash = StoredUser { password_hash: None, ..db_secondary.clone() };
    store.unlink_identity(&primary, "auth0", "d", &without_hash).await.unwrap();
    assert_eq!(store.user("auth0|d").await.unwrap(), Some(db_secondary), "with its password again");
    assert_eq!(store.linked_login("db", "d@example.test").await.unwrap(), None);

    // A primary's links go with it.
    store.link_identity(&linked, "google-oauth2|s", "google-oauth2", "s").await.unwrap();
    assert!(store.delete_user("auth0|p").await.unwrap());
    assert_eq!(store.linked_identity_owner("google-oauth2", "s").await.unwrap(), None);

    // Deleting the identity's connection ends the link and forgets its issuer: a connection
    // made again under the name must not sign anyone in as the primary.
    let (owner, google) = (user("auth0|q", "db", "auth0"), user("google-oauth2|u", "google-oauth2", "google-oauth2"));
    store.create_user(&owner).await.unwrap();
    store.create_user(&google).await.unwrap();
    let issuer = FederatedIssuer {
        user_id: "google-oauth2|u".into(),
        connection: "google-oauth2".into(),
        issuer: "https://up.example".into(),
    };
    store.put_federated_issuer(&issuer).await.unwrap();
    let mut owner_linked = owner.clone();
    owner_linked.user.identities.push(google.user.identities[0].clone());
    store.link_identity(&owner_linked, "google-oauth2|u", "google-oauth2", "u").await.unwrap();
    let connection: Connection =
        serde_json::from_value(json!({"id": "con_g", "name": "google-oauth2", "strategy": "google-oauth2"})).unwrap();
    store.put_connection(&connection).await.unwrap();
    store.delete_connection("con_g").await.unwrap();
    assert_eq!(store.linked_identity_owner("google-oauth2", "u").await.unwrap(), None);
    assert_eq!(store.federated_issuer("google-oauth2|u").await.unwrap(), None);
    let left = store.user("auth0|q").await.unwrap().expect("the primary stays").user;
    assert_eq!(left.identities, owner.user.identities, "without the gone identity");
}
