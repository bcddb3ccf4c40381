//! The post-login runtime contract and its limits, through the public API.

use actions::{ActionError, Engine, Level, Limits, Loaded};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GUIDE_ACTION: &str = include_str!("../../../examples/cms-tenant/actions/inject-id-token/code.js");

fn engine() -> Engine {
    Engine::new(Limits { time: Duration::from_millis(300), memory_bytes: 16 << 20, stack_bytes: 256 << 10 })
}

fn action(name: &str, code: &str) -> Loaded {
    Loaded { name: name.into(), code: code.into(), secrets: Arc::new(Default::default()) }
}

fn with_secrets(name: &str, code: &str, secrets: Value) -> Loaded {
    Loaded { name: name.into(), code: code.into(), secrets: Arc::new(secrets.as_object().unwrap().clone()) }
}

fn event() -> Value {
    json!({
        "user": {"user_id": "auth0|1", "email": "a@x.test", "app_metadata": {"groups": ["admin"]}, "user_metadata": {"lang": "it"}},
        "client": {"client_id": "c1", "name": "CMS"},
        "transaction": {"protocol": "oidc-basic-profile"},
        "stats": {"logins_count": 3},
    })
}

fn handler(body: &str) -> String {
    format!("exports.onExecutePostLogin = async (event, api) => {{ {body} }};")
}

#[test]
fn the_guides_action_copies_metadata_under_the_namespace() {
    let a = with_secrets("inject-id-token", GUIDE_ACTION, json!({"MIA_NAMESPACE": "https://cms.example.test/"}));
    let run = engine().run_post_login(std::slice::from_ref(&a), &event());
    let o = run.result.unwrap();
    assert_eq!(o.id_token_claims["https://cms.example.test/app_metadata"], json!({"groups": ["admin"]}));
    assert_eq!(o.id_token_claims["https://cms.example.test/user_metadata"], json!({"lang": "it"}));
    assert!(o.access_token_claims.is_empty() && o.denied.is_none());
    assert!(run.logs.is_empty());

    let mut empty = event();
    empty["user"]["app_metadata"] = json!({});
    let run = engine().run_post_login(&[a], &empty);
    assert!(run.result.is_ok());
    assert_eq!(run.logs.len(), 1);
    assert_eq!((run.logs[0].level, run.logs[0].line.as_str()), (Level::Warn, "WARNING: user.app_metadata is empty"));
    assert_eq!(run.logs[0].action, "inject-id-token");
}

#[test]
fn the_api_records_every_kind_of_command() {
    let code = handler(
        "api.accessToken.setCustomClaim('https://x.test/tier', 'gold');
         api.accessToken.addScope('read:reports').accessToken.removeScope('write:reports');
         api.user.setAppMetadata('plan', {name: 'pro'});
         api.user.setUserMetadata('lang', null);
         api.idToken.setCustomClaim('groups', ['dropped']);
         api.idToken.setCustomClaim('https://x.test/n', event.stats.logins_count);
         console.log('user', event.user.email, {n: 1});",
    );
    let run = engine().run_post_login(&[action("all", &code)], &event());
    let o = run.result.unwrap();
    assert_eq!(Value::Object(o.access_token_claims), json!({"https://x.test/tier": "gold"}));
    assert_eq!(Value::Object(o.id_token_claims), json!({"https://x.test/n": 3}));
    assert_eq!((o.add_scopes, o.remove_scopes), (vec!["read:reports".to_string()], vec!["write:reports".to_string()]));
    assert_eq!(Value::Object(o.app_metadata), json!({"plan": {"name": "pro"}}));
    assert_eq!(Value::Object(o.user_metadata), json!({"lang": null}));
    assert_eq!(run.logs[0].line, r#"user a@x.test {"n":1}"#);
}

#[test]
fn actions_run_in_order_and_see_the_earlier_ones_commands_only_through_the_outcome() {
    let first = with_secrets(
        "first",
        &handler("api.idToken.setCustomClaim('k', event.secrets.S); api.cache.set('seen', 'yes');"),
        json!({"S": "one"}),
    );
    let second = with_secrets(
        "second",
        &handler("api.idToken.setCustomClaim('k', event.secrets.S + (api.cache.get('seen') || {}).value);"),
        json!({"S": "two"}),
    );
    let o = engine().run_post_login(&[first, second], &event()).result.unwrap();
    assert_eq!(o.id_token_claims["k"], "twoyes", "later action wins; secrets are per action; cache is shared");
}

#[test]
fn deny_stops_the_chain() {
    let deny = action("gate", &handler("api.access.deny('not on weekends'); api.idToken.setCustomClaim('after', 1);"));
    let never = action("never", &handler("throw new Error('must not run');"));
    let o = engine().run_post_login(&[deny, never], &event()).result.unwrap();
    let d = o.denied.unwrap();
    assert_eq!((d.action.as_str(), d.reason.as_str()), ("gate", "not on weekends"));
}

#[test]
fn every_failure_names_the_action() {
    let e = engine();
    type Expected = fn(&ActionError) -> bool;
    let cases: Vec<(&str, String, Expected)> = vec![
        (
            "thrower",
            handler("throw new Error('boom');"),
            |e| matches!(e, ActionError::Threw { message, .. } if message == "Error: boom"),
        ),
        (
            "rejecter",
            handler("await Promise.reject(new TypeError('bad'));"),
            |e| matches!(e, ActionError::Threw { message, .. } if message == "TypeError: bad"),
        ),
        ("looper", handler("while (true) {}"), |e| matches!(e, ActionError::TimeLimit { .. })),
        ("catcher", handler("for (;;) { try { while (true) {} } catch (e) {} }"), |e| {
            matches!(e, ActionError::TimeLimit { .. })
        }),
        ("spinner", handler("for (;;) { await null; }"), |e| matches!(e, ActionError::TimeLimit { .. })),
        (
            "hog",
            handler(
                "const kept = []; for (;;) kept.push(new ArrayBuffer(1 << 20), new Array(10000).fill(kept.length));",
            ),
            |e| matches!(e, ActionError::MemoryLimit { .. }),
        ),
        ("recurser", handler("const f = (n) => f(n + 1) + 1; f(0);"), |e| matches!(e, ActionError::StackLimit { .. })),
        // Built-ins that walk a length in C never reach the time limit's checks: refused.
        (
            "joiner",
            handler("Array.prototype.join.call({ length: 2 ** 53 - 1 }, '');"),
            |e| matches!(e, ActionError::Threw { message, .. } if message.starts_with("RangeError")),
        ),
        (
            "sparse",
            handler("const a = []; a.length = 2 ** 32 - 1; a.reverse();"),
            |e| matches!(e, ActionError::Threw { message, .. } if message.starts_with("RangeError")),
        ),
        (
            "spreader",
            handler("[].concat({ length: 2 ** 53 - 1, [Symbol.isConcatSpreadable]: true });"),
            |e| matches!(e, ActionError::Threw { message, .. } if message.starts_with("RangeError")),
        ),
        (
            "shapeshifter",
            handler(
                "let reads = 0; const o = { get length() { return reads++ ? 2 ** 53 - 1 : 1; } }; Array.prototype.indexOf.call(o, 1); Array.prototype.reverse.call(o);",
            ),
            |e| matches!(e, ActionError::Threw { message, .. } if message.starts_with("TypeError")),
        ),
        ("waiter", handler("await new Promise(() => {});"), |e| matches!(e, ActionError::NeverSettled { .. })),
        ("silent", "exports.somethingElse = 1;".into(), |e| matches!(e, ActionError::Contract { .. })),
        (
            "requirer",
            handler("require('fs');"),
            |e| matches!(e, ActionError::Threw { message, .. } if message.contains("modules are not available")),
        ),
        (
            "redirector",
            handler("api.redirect.sendUserTo('https://x.test');"),
            |e| matches!(e, ActionError::Threw { message, .. } if message.contains("not supported")),
        ),
        ("mfa", handler("api.multifactor.enable('any');"), |e| matches!(e, ActionError::Threw { .. })),
    ];
    for (name, code, expected) in cases {
        let started = Instant::now();
        let run = e.run_post_login(&[action(name, &code)], &event());
        let err = run.result.expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
        assert_eq!(err.action(), Some(name), "{err}");
        assert!(err.to_string().contains(name), "{err}");
        assert!(started.elapsed() < Duration::from_secs(3), "{name} took {:?}", started.elapsed());
        // The engine keeps serving after every failure.
        let ok = e.run_post_login(&[action("after", &handler("api.idToken.setCustomClaim('ok', true);"))], &event());
        assert_eq!(ok.result.unwrap().id_token_claims["ok"], true, "after {name}");
    }
}

#[test]
fn oversized_claims_fail_the_login() {
    let code = handler("for (let i = 0; i < 20; i++) api.idToken.setCustomClaim('k' + i, 'x'.repeat(10000));");
    let err = engine().run_post_login(&[action("big", &code)], &event()).result.unwrap_err();
    assert!(matches!(&err, ActionError::Contract { message, .. } if message.contains("100 KB")), "{err}");
}

#[test]
fn executions_do_not_share_globals() {
    let code = handler(
        "api.idToken.setCustomClaim('before', typeof globalThis.leak);
         api.idToken.setCustomClaim('proto', typeof ({}).polluted);
         globalThis.leak = 'secret';
         Object.prototype.polluted = true;
         counter = (typeof counter === 'number' ? counter : 0) + 1;
         api.idToken.setCustomClaim('counter', counter);",
    );
    let e = engine();
    for _ in 0..3 {
        let o = e.run_post_login(&[action("leaky", &code)], &event()).result.unwrap();
        assert_eq!(
            Value::Object(o.id_token_claims),
            json!({"before": "undefined", "proto": "undefined", "counter": 1})
        );
    }
}

#[test]
fn no_host_access() {
    let code = handler(
        "api.idToken.setCustomClaim('g', [typeof process, typeof fetch, typeof std, typeof os, typeof setTimeout, typeof XMLHttpRequest].join(','));",
    );
    let o = engine().run_post_login(&[action("probe", &code)], &event()).result.unwrap();
    assert_eq!(o.id_token_claims["g"], "undefined,undefined,undefined,undefined,undefined,undefined");
}

#[test]
fn build_reports_syntax_errors_with_their_line() {
    let e = engine();
    assert!(e.check(GUIDE_ACTION).is_ok());
    let err = e.check("exports.onExecutePostLogin = async (event, api) => {\n  const x = ;\n};").unwrap_err();
    match &err {
        ActionError::Build { line, message } => {
            assert_eq!(*line, Some(2), "{err}");
            assert!(message.contains("SyntaxError"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    // Building never runs the code.
    assert!(e.check("while (true) {}").is_ok());
    assert!(e.check(&"x".repeat(actions::MAX_CODE_BYTES + 1)).is_err());
}

#[test]
fn values_without_a_json_form_are_absent_not_errors() {
    // Auth0's own example copies `event.user.user_metadata.favorite_color` into a claim: a user
    // without one must still log in, and the token (JSON) simply has no such claim.
    let code = handler(
        "api.idToken.setCustomClaim('https://x.test/kept', 1);
         api.idToken.setCustomClaim('https://x.test/gone', 'set first');
         api.idToken.setCustomClaim('https://x.test/gone', event.user.user_metadata.favorite_color);
         api.idToken.setCustomClaim('https://x.test/fn', () => 1);
         api.accessToken.setCustomClaim('https://x.test/missing', undefined);
         api.accessToken.setCustomClaim('https://x.test/sym', Symbol('s'));
         api.user.setAppMetadata('plan', undefined);
         api.user.setUserMetadata('lang', () => 'it');
         api.cache.set('k', 'v');",
    );
    let o = engine().run_post_login(&[action("a", &code)], &event()).result.unwrap();
    assert_eq!(Value::Object(o.id_token_claims), json!({"https://x.test/kept": 1}));
    assert!(o.access_token_claims.is_empty());
    // No JSON form means "no value": the key is deleted when the metadata is persisted.
    assert_eq!(Value::Object(o.app_metadata), json!({"plan": null}));
    assert_eq!(Value::Object(o.user_metadata), json!({"lang": null}));
}

#[test]
fn a_wrong_argument_fails_with_a_type_error_naming_the_call_and_the_argument() {
    let cases = [
        ("api.idToken.setCustomClaim(undefined, 1)", "TypeError: api.idToken.setCustomClaim: name must be a string"),
        ("api.accessToken.setCustomClaim(7, 'x')", "TypeError: api.accessToken.setCustomClaim: name must be a string"),
        ("api.user.setAppMetadata(undefined, 1)", "TypeError: api.user.setAppMetadata: key must be a string"),
        ("api.user.setUserMetadata({}, 1)", "TypeError: api.user.setUserMetadata: key must be a string"),
        ("api.accessToken.addScope(undefined)", "TypeError: api.accessToken.addScope: scope must be a string"),
        ("api.accessToken.removeScope(null)", "TypeError: api.accessToken.removeScope: scope must be a string"),
        ("api.cache.set(undefined, 'v')", "TypeError: api.cache.set: key must be a string"),
        ("api.cache.set('k', undefined)", "TypeError: api.cache.set: value must be a string"),
        ("api.cache.get(undefined)", "TypeError: api.cache.get: key must be a string"),
        ("api.cache.delete(1)", "TypeError: api.cache.delete: key must be a string"),
    ];
    for (call, expected) in cases {
        let run = engine().run_post_login(&[action("a", &handler(&format!("{call};")))], &event());
        match run.result {
            Err(ActionError::Threw { action, message }) => {
                assert_eq!((action.as_str(), message.as_str()), ("a", expected))
            }
            other => panic!("{call}: {other:?}"),
        }
    }
    // Values JSON cannot write at all (as opposed to leaving out) are refused at the call too.
    for (call, expected) in [
        (
            "api.idToken.setCustomClaim('https://x.test/n', 10n)",
            "TypeError: api.idToken.setCustomClaim: value cannot be written as JSON",
        ),
        (
            "const o = {}; o.o = o; api.user.setAppMetadata('o', o)",
            "TypeError: api.user.setAppMetadata: value cannot be written as JSON",
        ),
    ] {
        let run = engine().run_post_login(&[action("a", &handler(&format!("{call};")))], &event());
        assert!(
            matches!(&run.result, Err(ActionError::Threw { message, .. }) if message.starts_with(expected)),
            "{call}: {:?}",
            run.result
        );
    }
    // The action can catch it like any TypeError and go on.
    let code = handler(
        "try { api.idToken.setCustomClaim(undefined, 1); } catch (e) {
           api.idToken.setCustomClaim('https://x.test/caught', e instanceof TypeError ? e.message : 'no');
         }",
    );
    let o = engine().run_post_login(&[action("a", &code)], &event()).result.unwrap();
    assert_eq!(o.id_token_claims["https://x.test/caught"], "api.idToken.setCustomClaim: name must be a string");
}
