//! The user profile `/userinfo` answers (spec 2.6): the ID token's claims without the JWT
//! plumbing, with each `customClaimsNamespaces` claim that holds an object hoisted to the top
//! level (later namespaces win clashes; `sub` is never overwritten), and `groups` always there.

use serde_json::{Map, Value, json};

const PLUMBING: [&str; 12] =
    ["iss", "aud", "iat", "exp", "nbf", "nonce", "at_hash", "c_hash", "sid", "azp", "jti", "auth_time"];

pub fn build(mut claims: Map<String, Value>, namespaces: &[String]) -> Map<String, Value> {
    for k in PLUMBING {
        claims.remove(k);
    }
    for ns in namespaces {
        if !matches!(claims.get(ns), Some(Value::Object(_))) {
            continue;
        }
        let Some(Value::Object(members)) = claims.remove(ns) else { continue };
        for (k, v) in members {
            if k != "sub" {
                claims.insert(k, v);
            }
        }
    }
    if !matches!(claims.get("groups"), Some(Value::Array(_))) {
        claims.insert("groups".into(), json!([]));
    }
    claims
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_example() {
        let claims = json!({"sub":"auth0|abc","email":"a@b.it","name":"Ann","iss":"https://t/","aud":"x","exp":1,"iat":0,
            "https://mia-platform.eu/app_metadata":{"groups":["admin"]},
            "https://mia-platform.eu/user_metadata":{"lang":"it"}});
        let ns = vec![
            "https://mia-platform.eu/app_metadata".to_string(),
            "https://mia-platform.eu/user_metadata".to_string(),
        ];
        let p = build(claims.as_object().unwrap().clone(), &ns);
        assert_eq!(
            Value::Object(p),
            json!({"sub":"auth0|abc","email":"a@b.it","name":"Ann","groups":["admin"],"lang":"it"})
        );
    }

    #[test]
    fn groups_always_and_sub_kept() {
        let claims = json!({"sub":"u","ns":{"sub":"evil","x":1},"ns2":{"x":2},"other":"y"});
        let p = build(claims.as_object().unwrap().clone(), &["ns".into(), "ns2".into(), "missing".into()]);
        assert_eq!(Value::Object(p), json!({"sub":"u","other":"y","x":2,"groups":[]}));
    }
}
