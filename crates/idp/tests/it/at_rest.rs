//! Secrets at rest. A copy of the database holds no usable credential: every table is dumped
//! with the database's own tool (`sqlite3 .dump`, `pg_dump`) after logins, a refresh, a client,
//! a user and an Action secret were made, and no credential appears in any encoding. Signing keys
//! an earlier version stored in clear are sealed at start, keeping their kids, by nodes starting
//! together; a node with another secrets key refuses to start. Outbox mails are private files.

use crate::harness::*;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use idp::util::{b64, b64url, random_hex};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use store::{SigningKey, SqlStore, Store};

/// A credential the test made, by what it is.
struct Credential {
    what: String,
    bytes: Vec<u8>,
}

fn credential(what: impl Into<String>, value: impl AsRef<[u8]>) -> Credential {
    Credential { what: what.into(), bytes: value.as_ref().to_vec() }
}

/// The ways a value could be written into a column: as it is, hex (either case), base64 (padded
/// or not) and base64url.
fn encodings(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let standard = b64(bytes);
    vec![
        ("raw", bytes.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
        ("base64", standard.clone().into_bytes()),
        ("base64 unpadded", standard.trim_end_matches('=').as_bytes().to_vec()),
        ("base64url", b64url(bytes).into_bytes()),
    ]
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn header_cookie(res: &reqwest::Response, name: &str) -> String {
    let prefix = format!("{name}=");
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(&prefix).map(|rest| rest.split(';').next().unwrap_or("").to_string()))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

/// A browser login with its code exchanged and its refresh token rotated once, a client and a
/// user created and an Action secret stored through the Management API: returns every
/// credential this made or used.
async fn make_credentials(t: &TestIdp) -> Vec<Credential> {
    let mut made = Vec::new();
    let b = browser();
    let res = login(t, &b, &authorize_url(t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    made.push(credential("SSO session cookie", header_cookie(&res, "gatehouse_session")));
    let code = query_param(&location(&res), "code").expect("a code");
    made.push(credential("authorization code", &code));
    let (status, tokens) = json(exchange_code(t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{tokens}");
    for name in ["access_token", "id_token", "refresh_token"] {
        made.push(credential(name, tokens[name].as_str().unwrap_or_else(|| panic!("{name}: {tokens}"))));
    }
    let refreshed = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let (status, refreshed) = json(refreshed).await;
    assert_eq!(status, 200, "{refreshed}");
    made.push(credential("rotated refresh token", refreshed["refresh_token"].as_str().expect("rotated")));

    let token = management_token(t, None).await;
    made.push(credential("Management API token", &token));
    let (status, client) =
        call(t, &token, Method::POST, "clients", Some(json!({"name": "dump-test", "app_type": "regular_web"}))).await;
    assert_eq!(status, 201, "{client}");
    made.push(credential("created client's secret", client["client_secret"].as_str().expect("secret shown once")));
    let password = format!("Dump-Passw0rd-{}", random_hex(8));
    let user = json!({"connection": "dev-users", "email": "dump@cms.example.test", "password": password});
    let (status, body) = call(t, &token, Method::POST, "users", Some(user)).await;
    assert_eq!(status, 201, "{body}");
    made.push(credential("created user's password", &password));
    let secret = format!("action-secret-{}", random_hex(16));
    let action = json!({
        "name": "dump-test",
        "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": "exports.onExecutePostLogin = async () => {};",
        "secrets": [{"name": "KEY", "value": secret}],
    });
    let (status, a) = call(t, &token, Method::POST, "actions/actions", Some(action)).await;
    assert_eq!(status, 201, "{a}");
    let (status, v) =
        call(t, &token, Method::POST, &format!("actions/actions/{}/deploy", a["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 200, "{v}");
    made.push(credential("Action secret", &secret));

    for name in ["ADMIN_PASSWORD", "USER_PASSWORD", "CMS_CLIENT_SECRET", "MGMT_CLIENT_SECRET"] {
        made.push(credential(format!("tenant's {name}"), kw(name)));
    }
    let signer = t.idp.keys.current();
    let der = signer.signer.pair.as_der().expect("PKCS#8").as_ref().to_vec();
    // A PEM file's seventh line is the base64 of bytes 288..336, whatever the line breaks.
    made.push(credential("signing key, a PEM line", b64(&der[288..336])));
    made.push(credential("signing key (PKCS#8 DER)", der));
    made
}

/// Fails naming every credential found in `dump`, in any encoding; checks first that the dump
/// holds the data at all (the user, the client, the signing key's row).
async fn assert_no_credential_in(t: &TestIdp, dump: &[u8], made: &[Credential]) {
    let kid = t.idp.keys.current().signer.kid.clone();
    for expected in ["dump@cms.example.test", "dump-test", kid.as_str()] {
        assert!(find(dump, expected.as_bytes()), "the dump misses {expected}: not a dump of this idp's database");
    }
    let mut found = Vec::new();
    for c in made {
        for (encoding, needle) in encodings(&c.bytes) {
            if find(dump, &needle) {
                found.push(format!("{} ({encoding})", c.what));
            }
        }
    }
    assert!(found.is_empty(), "usable credentials in the database: {found:?}");

    // Not a key in any way a reader might try: sealed, so a token cannot be forged with it.
    for key in t.idp.store.signing_keys().await.unwrap() {
        assert!(key.private_pkcs8.starts_with(b"v1."), "key {} is not sealed", key.kid);
        assert!(RsaKeyPair::from_pkcs8(&key.private_pkcs8).is_err(), "key {} parses as a private key", key.kid);
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test]
async fn a_sqlite_dump_of_every_table_holds_no_usable_credential() {
    let dir = temp_dir("dump-sqlite");
    let path = dir.join("gatehouse.db");
    let store = Arc::new(SqlStore::connect(&format!("sqlite://{}", path.display())).await.unwrap());
    let t = start_on(store, true, |_| {}).await;
    let made = make_credentials(&t).await;
    let dump = run(Command::new("sqlite3").arg(&path).arg(".dump"));
    assert_no_credential_in(&t, &dump, &made).await;
}

#[tokio::test]
async fn a_pg_dump_of_every_table_holds_no_usable_credential() {
    let schema = pg_schema("dump");
    let t = start_on(pg_store_in(&schema).await, true, |_| {}).await;
    let made = make_credentials(&t).await;
    let url = url::Url::parse(PG_URL).unwrap();
    let dump = run(Command::new("pg_dump")
        .args(["-h", url.host_str().unwrap(), "-p", &url.port().unwrap_or(5432).to_string()])
        .args(["-U", url.username(), "-n", &schema, "--data-only"])
        .arg(url.path().trim_start_matches('/')));
    assert_no_credential_in(&t, &dump, &made).await;
}

/// A signing key as an earlier version stored it: PKCS#8 DER in clear.
fn clear_key(kid: &str, created_at: i64, current: bool) -> (SigningKey, RsaKeyPair) {
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let pkcs8 = pair.as_der().unwrap().as_ref().to_vec();
    let cert = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap())
        .unwrap();
    let key = SigningKey {
        kid: kid.into(),
        private_pkcs8: pkcs8,
        cert_der: cert.der().to_vec(),
        created_at,
        current,
        rotated_at: None,
        revoked_at: None,
    };
    (key, pair)
}

fn shared_secrets_key(dir: &Path) -> impl Fn(&mut idp::Config) + Clone {
    let path = dir.join("secrets.key");
    move |c: &mut idp::Config| c.secrets_key = Some(path.clone())
}

#[tokio::test]
async fn clear_signing_keys_are_sealed_at_start_keeping_their_kids_by_nodes_starting_together() {
    let store = pg_store("seal").await;
    let now = idp::util::now_ms();
    let (old, old_pair) = clear_key("legacy-old", now - 1000, true);
    let (current, current_pair) = clear_key("legacy-current", now, true);
    store.add_signing_key(&old).await.unwrap();
    store.add_signing_key(&current).await.unwrap();

    let dir = temp_dir("seal");
    let tweak = shared_secrets_key(&dir);
    let (a, b) = tokio::join!(start_on(store.clone(), false, tweak.clone()), start_on(store.clone(), false, tweak));

    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["legacy-old", "legacy-current"]);
    for (key, clear) in stored.iter().zip([&old, &current]) {
        assert!(key.private_pkcs8.starts_with(b"v1."), "{} is still in clear", key.kid);
        assert!(!find(&key.private_pkcs8, &clear.private_pkcs8[..64]), "{} holds its clear key", key.kid);
        assert_eq!(key.cert_der, clear.cert_der, "the rest of the row is kept");
    }
    for node in [&a, &b] {
        let keys = node.idp.keys.current();
        assert_eq!(keys.signer.kid, "legacy-current", "the same key signs after the upgrade");
        assert_eq!(keys.signer.pair.public_key().as_ref(), current_pair.public_key().as_ref());
        let jwks: Value = reqwest::get(node.url(".well-known/jwks.json")).await.unwrap().json().await.unwrap();
        let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(kids, ["legacy-old", "legacy-current"], "the rotated-out key stays published");
    }
    assert_ne!(old_pair.public_key().as_ref(), current_pair.public_key().as_ref());

    // A token one node signs verifies on the other: both opened the same sealed keys.
    let claims = json!({"sub": "someone", "exp": now / 1000 + 60}).as_object().cloned().unwrap();
    let token = idp::jwt::sign(&a.idp.keys.current(), &claims).unwrap();
    assert_eq!(idp::jwt::verify_signature(&b.idp.keys.current(), &token).expect("verifies")["sub"], "someone");
}

#[tokio::test]
async fn a_node_with_another_secrets_key_refuses_to_start_and_changes_nothing() {
    let store = sqlite_store().await;
    let first = start_on(store.clone(), false, |_| {}).await;
    let before = store.signing_keys().await.unwrap();
    assert_eq!(before.len(), 1);
    drop(first);

    let other = temp_dir("other-key");
    let mut config = idp::Config::new(url::Url::parse("http://127.0.0.1:1/").unwrap(), other.clone());
    config.bcrypt_cost = 4;
    let mailer = Arc::new(idp::mail::Outbox::new(other.join("outbox")));
    let started = idp::Idp::new(config, store.clone() as Arc<dyn Store>, mailer).await;
    let message = match started {
        Ok(_) => panic!("a node that cannot open the signing keys started"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&format!("signing key {}", before[0].kid)) && message.contains("secrets key"),
        "names the key and the cause: {message}"
    );
    assert_eq!(store.signing_keys().await.unwrap(), before, "no key was rotated in or rewritten");
}

#[cfg(unix)]
#[tokio::test]
async fn outbox_mails_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let t = start().await;
    let res = reqwest::Client::new()
        .post(t.url("dbconnections/change_password"))
        .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "email": kw("USER_EMAIL"), "connection": "dev-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    t.flush_mail().await;
    let outbox = t.data.join("outbox");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&outbox), 0o700, "the outbox directory");
    let mails: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(mode(&mails[0]), 0o600, "a mail holds a live reset link");
}
