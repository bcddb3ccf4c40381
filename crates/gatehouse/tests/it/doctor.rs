//! `gatehouse doctor`: auth0-client config.json files checked against `examples/cms-tenant`,
//! as a file and as a live `gatehouse idp --tls`. The correct config passes (exit 0); each kind
//! of mistake the guide warns about fails (exit non-zero) with its line.

use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant};
use crate::support::{CALLBACK, TempDir, dev_env, workspace};
use crate::tenant_remote::{Run, gatehouse};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const NAMESPACE: &str = "https://cms.example.test/";

fn example() -> PathBuf {
    workspace().join("examples/cms-tenant")
}

/// The config.json auth0-client runs with in front of the example tenant.
fn good_config(auth0_url: &str) -> Value {
    json!({
        "clients": {
            "cms": {
                "auth0Url": auth0_url,
                "clientId": dev_env("CMS_CLIENT_ID"),
                "clientSecret": dev_env("CMS_CLIENT_SECRET"),
                "redirectUrl": CALLBACK,
                "scopes": ["offline_access", "profile", "email", "website"],
                "audience": format!("{}/", dev_env("CMS_BASE_URL")),
                "supportedConnections": ["dev-users", "prod-users"],
                "defaultConnection": "dev-users",
            }
        },
        "defaultClient": "cms",
        "managementClient": {
            "auth0Url": auth0_url,
            "clientId": dev_env("MGMT_CLIENT_ID"),
            "clientSecret": dev_env("MGMT_CLIENT_SECRET"),
            "supportedConnections": ["dev-users"],
            "defaultCreateUserConnection": "dev-users",
        },
        "customClaimsNamespaces": [format!("{NAMESPACE}app_metadata"), format!("{NAMESPACE}user_metadata")],
    })
}

fn write_config(dir: &Path, name: &str, config: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(config).unwrap()).unwrap();
    path.display().to_string()
}

fn doctor_file(config: &str, tenant: &Path) -> Run {
    let keywords = example().join("dev.env");
    gatehouse(
        &[
            "doctor",
            "--config",
            config,
            "--tenant",
            &tenant.display().to_string(),
            "--keywords",
            &keywords.display().to_string(),
        ],
        &[],
    )
}

/// Fails the test unless the run failed with a line holding every one of `needles`.
fn fails_with(run: &Run, needles: &[&str]) {
    assert!(!run.ok, "doctor passed:\n{}", run.text());
    let found = run.stdout.lines().chain(run.stderr.lines()).any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(found, "no line with {needles:?}:\n{}", run.text());
}

#[test]
fn doctor_checks_a_config_against_the_tenant_file() {
    let work = TempDir::new("doctor");
    let tenant = example().join("tenant.yaml");
    let url = "https://localhost:8443";

    let good = write_config(work.path(), "good.json", &good_config(url));
    let run = doctor_file(&good, &tenant);
    assert!(run.ok, "{}", run.text());
    assert!(run.stdout.contains("0 finding(s), 0 error(s)"), "{}", run.text());

    // Each pitfall: the change to the config, and what its line must say.
    type Edit = fn(&mut Value);
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "no-profile",
            |c| c["clients"]["cms"]["scopes"] = json!(["offline_access", "email", "website"]),
            vec!["error [guide step 7]", "clients.cms.scopes lacks profile", "fix: add \"profile\""],
        ),
        (
            "redirect",
            |c| c["clients"]["cms"]["redirectUrl"] = json!("https://cms.example.test/web-login/callback"),
            vec!["error [guide step 2]", "is not an allowed callback URL of CMS", "fix: add https://cms.example.test"],
        ),
        (
            "audience",
            |c| c["clients"]["cms"]["audience"] = json!("https://api.example.test/"),
            vec!["error [guide step 5]", "audience https://api.example.test/ is not the identifier of any API"],
        ),
        (
            "namespace",
            |c| c["customClaimsNamespaces"] = json!(["https://mia-platform.eu/app_metadata"]),
            vec!["error [guide step 7]", "customClaimsNamespaces lacks https://cms.example.test/app_metadata"],
        ),
        (
            "login-app-type",
            |c| c["clients"]["cms"]["clientId"] = json!(dev_env("MGMT_CLIENT_ID")),
            vec!["error [guide step 1]", "a non_interactive application; logins need a Regular Web Application"],
        ),
        (
            "unknown-client",
            |c| c["clients"]["cms"]["clientId"] = json!("NoSuchClient"),
            vec!["error [guide step 1]", "clients.cms.clientId NoSuchClient is not an application of the tenant"],
        ),
        (
            "management-app-type",
            |c| c["managementClient"]["clientId"] = json!(dev_env("CMS_CLIENT_ID")),
            vec!["error [guide step 1]", "a regular_web application, not a Machine-to-Machine one"],
        ),
        (
            "connection",
            |c| c["clients"]["cms"]["supportedConnections"] = json!(["dev-users", "staging-users"]),
            vec!["error [guide step 3]", "names connection staging-users, which the tenant does not have"],
        ),
        (
            "social-connection",
            |c| c["clients"]["cms"]["supportedConnections"] = json!(["dev-users", "google-oauth2"]),
            vec!["error [guide step 3]", "connection google-oauth2 is not enabled for CMS"],
        ),
    ];
    for (name, edit, needles) in cases {
        let mut config = good_config(url);
        edit(&mut config);
        let path = write_config(work.path(), &format!("{name}.json"), &config);
        fails_with(&doctor_file(&path, &tenant), &needles);
    }

    // Mistakes in the tenant, not in the config: lifetimes, the M2M grant.
    let tenant_cases: [(&str, &str, &str, &[&str]); 2] = [
        (
            "lifetimes",
            "token_lifetime: 36000\n",
            "token_lifetime: 86400\n",
            &[
                "error [guide step 5]",
                "API CMS API issues access tokens for 86400 s but CMS issues ID tokens for 36000 s",
            ],
        ),
        (
            "scopes",
            "      - delete:users\n",
            "",
            &["error [guide step 5]", "lacks Management API scopes auth0-client's routes need: delete:users"],
        ),
    ];
    for (name, from, to, needles) in tenant_cases {
        let dir = work.path().join(name);
        std::fs::create_dir_all(dir.join("actions/inject-id-token")).unwrap();
        let yaml = std::fs::read_to_string(&tenant).unwrap();
        assert!(yaml.contains(from), "example tenant changed: {from:?}");
        std::fs::write(dir.join("tenant.yaml"), yaml.replace(from, to)).unwrap();
        std::fs::copy(example().join("actions/inject-id-token/code.js"), dir.join("actions/inject-id-token/code.js"))
            .unwrap();
        fails_with(&doctor_file(&good, &dir.join("tenant.yaml")), needles);
    }

    // What auth0-client itself would refuse, refused the same way.
    let bad_json = work.path().join("bad.json");
    std::fs::write(&bad_json, "{\"clients\": ").unwrap();
    fails_with(&doctor_file(&bad_json.display().to_string(), &tenant), &["error:", "bad.json", "is not valid JSON"]);
    let mut invalid = good_config(url);
    invalid["clients"]["cms"]["defaultConnection"] = json!("other-users");
    let path = write_config(work.path(), "invalid.json", &invalid);
    fails_with(&doctor_file(&path, &tenant), &["clients.cms.defaultConnection", "is not one of"]);
}

#[test]
fn doctor_checks_a_config_against_a_live_tenant() {
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let work = TempDir::new("doctor-live");
    let url = format!("https://{}", idp.domain);
    let ca = idp.ca_pem().display().to_string();
    let live = |config: &str, keywords: bool| {
        let dev = example().join("dev.env").display().to_string();
        let mut args = vec!["doctor", "--config", config, "--domain", &idp.domain, "--ca-file", &ca];
        if keywords {
            args.extend(["--keywords", dev.as_str()]);
        }
        gatehouse(&args, &[("AUTH0_CLIENT_ID", ADMIN_CLIENT_ID), ("AUTH0_CLIENT_SECRET", ADMIN_CLIENT_SECRET)])
    };

    let good = write_config(work.path(), "good.json", &good_config(&url));
    // The secret's value is write-only: without --keywords doctor says it could not compare.
    let run = live(&good, false);
    assert!(run.ok, "{}", run.text());
    assert!(
        run.stdout.contains(
            "warning [guide step 7]: action inject-id-token has a MIA_NAMESPACE secret, but its value cannot be read"
        ),
        "{}",
        run.text()
    );
    let run = live(&good, true);
    assert!(run.ok && run.stdout.contains("0 finding(s), 0 error(s)"), "{}", run.text());

    let mut wrong = good_config(&url);
    wrong["customClaimsNamespaces"] = json!(["https://other.test/app_metadata", "https://other.test/user_metadata"]);
    let path = write_config(work.path(), "wrong.json", &wrong);
    fails_with(
        &live(&path, true),
        &["error [guide step 7]", "customClaimsNamespaces lacks https://cms.example.test/app_metadata"],
    );

    let mut redirect = good_config(&url);
    redirect["clients"]["cms"]["redirectUrl"] = json!("http://localhost:9999/callback");
    let path = write_config(work.path(), "redirect.json", &redirect);
    fails_with(&live(&path, true), &["error [guide step 2]", "redirectUrl http://localhost:9999/callback"]);

    // Wrong credentials: Auth0's answer, not a panic.
    let run = gatehouse(
        &["doctor", "--config", &good, "--domain", &idp.domain, "--ca-file", &ca],
        &[("AUTH0_CLIENT_ID", ADMIN_CLIENT_ID), ("AUTH0_CLIENT_SECRET", "wrong-secret-wrong-secret-wrong")],
    );
    fails_with(&run, &["error:", "401 Unauthorized"]);
    // Neither a tenant file nor a tenant.
    let run = gatehouse(&["doctor", "--config", &good], &[]);
    fails_with(&run, &["error:", "doctor needs --tenant FILE or a live tenant"]);
}
