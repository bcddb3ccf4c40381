//! The user-management façade against the idp's real Management API: the translated search
//! checked against the idp's own answers, create / update / delete, change-password, and a
//! bulk import job.

use crate::support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

fn ids(users: &Value) -> BTreeSet<String> {
    users.as_array().unwrap().iter().map(|u| u["user_id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn user_search_matches_the_idps_own_results() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();

    // Admin has app_metadata.groups ["admin"] (examples/cms-tenant/users.json).
    let (status, admins) = json(http.get(svc.url("/users?app_metadata.groups=admin")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{admins}");
    let list = admins.as_array().unwrap();
    assert_eq!(list.len(), 1, "{admins}");
    assert_eq!(list[0]["email"], dev_env("ADMIN_EMAIL").as_str());
    assert_eq!(list[0]["_id"], list[0]["user_id"], "_id added for the CMS");
    // The same question asked of the idp in Auth0's syntax, as auth0-client translates it.
    let q = r#"((app_metadata.groups:"admin")) AND (identities.connection:"dev-users")"#;
    let direct = idp.management_get(&format!("users?search_engine=v3&q={}", urlencode(q))).await;
    assert_eq!(ids(&admins), ids(&direct));

    // Wildcards, an acl_rows filter, and a connection that is not supported (dropped: the
    // management client's own connection applies).
    let res = http
        .get(svc.url("/users?email=*@cms.example.test&connection=prod-users"))
        .header("acl_rows", r#"{"$or":[{"email":"user@cms.example.test"},{"app_metadata.groups":{"$in":["admin"]}}]}"#)
        .send()
        .await
        .unwrap();
    let (status, both) = json(res).await;
    assert_eq!(status, 200, "{both}");
    let all = idp.management_get("users?search_engine=v3").await;
    assert_eq!(ids(&both), ids(&all), "both example users");
    let res = http
        .get(svc.url("/users?email=user@cms.example.test"))
        .header("acl_rows", r#"{"app_metadata.groups":"admin"}"#)
        .send()
        .await
        .unwrap();
    let (_, none) = json(res).await;
    assert_eq!(none, json!([]), "the ACL is ANDed with the query");
    // HTTP lets raw UTF-8 through in a header: such an ACL still filters (it matches no one
    // here), and bytes that are not UTF-8 are a 400, never a search without the ACL.
    let utf8 = reqwest::header::HeaderValue::from_bytes(r#"{"app_metadata.groups":"admïn"}"#.as_bytes()).unwrap();
    let (status, none) = json(http.get(svc.url("/users")).header("acl_rows", utf8).send().await.unwrap()).await;
    assert_eq!((status, none), (200, json!([])), "a non-ASCII ACL applies");
    let latin1 = reqwest::header::HeaderValue::from_bytes(b"{\"app_metadata.groups\":\"adm\xefn\"}").unwrap();
    let (status, body) = json(http.get(svc.url("/users")).header("acl_rows", latin1).send().await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("the acl_rows header is not UTF-8")), "{body}");

    // Paging: _l and _sk.
    let (_, page0) = json(http.get(svc.url("/users?_l=1&_sk=0&sort=email:1")).send().await.unwrap()).await;
    let (_, page1) = json(http.get(svc.url("/users?_l=1&_sk=1&sort=email:1")).send().await.unwrap()).await;
    assert_eq!(page0.as_array().unwrap().len(), 1);
    assert_eq!(page0[0]["email"], dev_env("ADMIN_EMAIL").as_str());
    assert_eq!(page1[0]["email"], dev_env("USER_EMAIL").as_str());
    let (status, count) = json(http.get(svc.url("/users/count")).send().await.unwrap()).await;
    assert_eq!((status, count), (200, json!(2)));

    // A bad ACL operator is a 400 in Mia's shape; an unknown client-type header a 401.
    let res = http.get(svc.url("/users")).header("acl_rows", r#"{"a":{"$ne":"x"}}"#).send().await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["statusCode"].clone()), (400, json!(400)), "{body}");
    let res = http.get(svc.url("/users")).header("client-type", "nope").send().await.unwrap();
    assert_eq!(res.status(), 401);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn create_update_delete_and_change_password() {
    let (idp, svc) = stack(Store::Redis).await;
    let http = reqwest::Client::new();
    let email = format!("{}@cms.example.test", unique("new"));
    // No connection: the management client's default (dev-users).
    let res = http
        .post(svc.url("/users"))
        .json(&json!({"email": email, "password": "Fresh-Passw0rd!", "app_metadata": {"groups": ["editor"]}}))
        .send()
        .await
        .unwrap();
    let (status, created) = json(res).await;
    assert_eq!(status, 201, "{created}");
    let user_id = created["user_id"].as_str().unwrap().to_string();
    assert_eq!(created["identities"][0]["connection"], "dev-users");

    // An unsupported connection is refused before Auth0 sees it.
    let res =
        http.post(svc.url("/users")).json(&json!({"email": "x@y.z", "connection": "prod-users"})).send().await.unwrap();
    assert_eq!(res.status(), 400);

    // PATCH (the id percent-encoded on the way), then the search finds the new group.
    let res = http
        .patch(svc.url(&format!("/users/{}", urlencode(&user_id))))
        .json(&json!({"app_metadata": {"groups": ["editor", "author"]}}))
        .send()
        .await
        .unwrap();
    let (status, patched) = json(res).await;
    assert_eq!(status, 200, "{patched}");
    let (_, found) = json(http.get(svc.url("/users?app_metadata.groups=author")).send().await.unwrap()).await;
    assert_eq!(ids(&found), BTreeSet::from([user_id.clone()]));

    // Change password by user id: the idp writes the mail to its outbox.
    let res = http.post(svc.url("/change-password")).json(&json!({"userId": user_id})).send().await.unwrap();
    assert_eq!(res.status(), 204, "{}", res.text().await.unwrap());
    let res = http.post(svc.url("/users/change-password")).json(&json!({"email": email})).send().await.unwrap();
    assert_eq!(res.status(), 204);

    let res = http.delete(svc.url(&format!("/users/{}", urlencode(&user_id)))).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let (_, gone) = json(http.get(svc.url(&format!("/users?email={}", urlencode(&email)))).send().await.unwrap()).await;
    assert_eq!(gone, json!([]));
    // Auth0's errors are relayed as they are (status and body).
    let res = http
        .patch(svc.url(&format!("/users/{}", urlencode(&user_id))))
        .json(&json!({"blocked": true}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["statusCode"], 404, "Auth0's body: {body}");
    drop(idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn import_job_end_to_end() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();
    let email = format!("{}@cms.example.test", unique("imported"));
    // connection_id may not be sent; connection names go through supportedConnectionsMap.
    let res =
        http.post(svc.url("/users/import")).json(&json!({"users": [], "connection_id": "con_x"})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .post(svc.url("/users/import"))
        .json(&json!({"users": [], "connection": "prod-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Multipart, as the CMS sends it.
    let users = json!([{"email": email, "email_verified": true, "app_metadata": {"groups": ["imported"]}}]);
    let form = reqwest::multipart::Form::new()
        .part(
            "users",
            reqwest::multipart::Part::bytes(users.to_string().into_bytes())
                .file_name("users.json")
                .mime_str("application/json")
                .unwrap(),
        )
        .text("connection", "dev-users")
        .text("upsert", "false");
    let res = http.post(svc.url("/users/import")).multipart(form).send().await.unwrap();
    let (status, job) = json(res).await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    assert_eq!(job["connection_id"], idp.connection_id("dev-users").await.as_str());

    let status_url = svc.url(&format!("/users/import/status/{job_id}"));
    eventually("the import job completes", 100, Duration::from_millis(100), || {
        let (http, url) = (http.clone(), status_url.clone());
        async move {
            let (status, job) = json(http.get(url).send().await.unwrap()).await;
            assert_eq!(status, 200, "{job}");
            assert_ne!(job["status"], "failed", "{job}");
            job["status"] == "completed"
        }
    })
    .await;
    let res = http.get(svc.url(&format!("/users/import/status/{job_id}/errors"))).send().await.unwrap();
    assert!(matches!(res.status().as_u16(), 200 | 204), "{}", res.status());
    let (_, found) = json(http.get(svc.url("/users?app_metadata.groups=imported")).send().await.unwrap()).await;
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found[0]["email"], email.as_str());
}

/// The M2M token reaches every connection of the tenant; auth0-client's writes reach only the
/// users its own list shows: the supported connections, narrowed by `acl_rows`.
#[tokio::test(flavor = "multi_thread")]
async fn writes_reach_only_the_users_the_list_shows() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();
    // A user of prod-users, which the management client does not support (another
    // environment's connection in the guide's layout).
    let email = format!("{}@cms.example.test", unique("prod"));
    let (status, prod) = idp
        .management_send(
            reqwest::Method::POST,
            "users",
            // No verification mail: the outbox must show that no reset mail goes out below.
            Some(json!({"connection": "prod-users", "email": email, "password": "Prod-Passw0rd!", "verify_email": false})),
        )
        .await;
    assert_eq!(status, 201, "{prod}");
    let prod_id = prod["user_id"].as_str().unwrap().to_string();
    let prod_path = format!("/users/{}", urlencode(&prod_id));
    let (_, listed) =
        json(http.get(svc.url(&format!("/users?email={}", urlencode(&email)))).send().await.unwrap()).await;
    assert_eq!(listed, json!([]), "the list does not show it");

    let res = http
        .patch(svc.url(&prod_path))
        .json(&json!({"password": "Taken-Over-1!", "app_metadata": {"groups": ["admin"]}}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["statusCode"].clone()), (404, json!(404)), "PATCH: {body}");
    let res = http.delete(svc.url(&prod_path)).send().await.unwrap();
    assert_eq!(res.status(), 404, "DELETE");
    let res = http.post(svc.url("/change-password")).json(&json!({"userId": prod_id})).send().await.unwrap();
    assert_eq!(res.status(), 404, "change-password by id");
    let res = http
        .post(svc.url("/change-password"))
        .json(&json!({"email": email, "connection": "prod-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "change-password in an unsupported connection");
    let unchanged = idp.management_get(&format!("users/{}", urlencode(&prod_id))).await;
    assert_eq!(unchanged["app_metadata"], json!({}), "{unchanged}");
    let outbox = std::fs::read_dir(idp.data.path().join("outbox")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(outbox, 0, "no reset mail went out");

    // acl_rows narrows the writes as it narrows the list: the plain user is outside an
    // admins-only ACL, inside a matching one.
    let user = idp.management_get(&format!("users-by-email?email={}", urlencode(&dev_env("USER_EMAIL")))).await;
    let user_path = format!("/users/{}", urlencode(user[0]["user_id"].as_str().unwrap()));
    let patch = json!({"user_metadata": {"touched": true}});
    let res = http
        .patch(svc.url(&user_path))
        .header("acl_rows", r#"{"app_metadata.groups":"admin"}"#)
        .json(&patch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "outside the ACL");
    let res = http
        .patch(svc.url(&user_path))
        .header("acl_rows", format!(r#"{{"email":"{}"}}"#, dev_env("USER_EMAIL")))
        .json(&patch)
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["user_metadata"]["touched"].clone()), (200, json!(true)), "inside the ACL: {body}");
}

/// A job imports into one connection; its status and errors (which list the emails it refused)
/// are shown only for the connections of `supportedConnectionsMap`, as the import itself is.
#[tokio::test(flavor = "multi_thread")]
async fn import_jobs_of_other_connections_are_not_shown() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();
    // A job of prod-users, started at the idp by another tenant admin, whose one user is refused.
    let refused = format!("{}@cms.example.test", unique("prod-import"));
    let users = json!([{"email": refused, "password": "a"}]);
    let form = reqwest::multipart::Form::new()
        .part("users", reqwest::multipart::Part::bytes(users.to_string().into_bytes()).file_name("users.json"))
        .text("connection_id", idp.connection_id("prod-users").await);
    let res = http
        .post(idp.url("/api/v2/jobs/users-imports"))
        .bearer_auth(idp.management_token().await)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let (status, job) = json(res).await;
    assert_eq!(status, 202, "{job}");
    let job_id = job["id"].as_str().unwrap().to_string();
    eventually("the prod-users job completes", 100, Duration::from_millis(100), || {
        let (idp, path) = (&idp, format!("jobs/{job_id}"));
        async move { idp.management_get(&path).await["status"] == "completed" }
    })
    .await;
    let errors = idp.management_get(&format!("jobs/{job_id}/errors")).await;
    assert!(errors.to_string().contains(&refused), "the idp lists the refused user: {errors}");

    for path in [format!("/users/import/status/{job_id}"), format!("/users/import/status/{job_id}/errors")] {
        let res = http.get(svc.url(&path)).send().await.unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.to_string().contains(&refused), "{path}: {body}");
    }
    // An unknown job is answered as Auth0 answers it.
    let res = http.get(svc.url("/users/import/status/job_unknown")).send().await.unwrap();
    assert_eq!(res.status(), 404);
}
