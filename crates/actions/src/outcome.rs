//! What a post-login execution asks for (`Outcome`), what it printed (`LogLine`), and the
//! recorder (`Recorder`) that turns the `api` calls of the running actions into them, enforcing
//! Auth0's size limits as the calls arrive so no action can grow the host's memory unboundedly.
//! Plain data: it must not know about the JavaScript engine.

use crate::claims;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Auth0's limit on the custom claims of one token.
pub const MAX_CLAIMS_BYTES: usize = 100 * 1024;
/// Auth0's limit on the user and app metadata one login may persist (each).
pub const MAX_METADATA_BYTES: usize = 32 * 1024;
/// Auth0 keeps 256 characters of each `console.log` line.
pub const MAX_LOG_CHARS: usize = 256;
/// Lines kept per action and execution; the rest is summarised in one line.
pub const MAX_LOG_LINES: usize = 100;
const MAX_SCOPES: usize = 100;
const MAX_SCOPE_LEN: usize = 256;
const MAX_DENY_REASON: usize = 1024;
// api.cache limits (Auth0's): entries, key and value sizes, total.
const CACHE_ENTRIES: usize = 20;
const CACHE_KEY_BYTES: usize = 64;
const CACHE_VALUE_BYTES: usize = 4096;
const CACHE_TOTAL_BYTES: usize = 8192;

/// The commands of a successful execution, accumulated over the actions in binding order (a
/// later action setting the same claim or metadata key wins).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Custom claims for the ID token (restricted names already dropped).
    pub id_token_claims: Map<String, Value>,
    /// Custom claims for the access token (restricted names already dropped).
    pub access_token_claims: Map<String, Value>,
    /// Scopes to add to the access token; disjoint from `remove_scopes`.
    pub add_scopes: Vec<String>,
    pub remove_scopes: Vec<String>,
    /// Top-level keys to set on `app_metadata`; `null` deletes the key.
    pub app_metadata: Map<String, Value>,
    /// Top-level keys to set on `user_metadata`; `null` deletes the key.
    pub user_metadata: Map<String, Value>,
    /// Set when an action called `api.access.deny`; the later actions did not run.
    pub denied: Option<Denial>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub action: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// One line an action printed with `console.*`, at most `MAX_LOG_CHARS` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub action: String,
    pub level: Level,
    pub line: String,
}

/// Records the commands issued through `api` and `console` during one execution.
#[derive(Default)]
pub(crate) struct Recorder {
    pub outcome: Outcome,
    pub logs: Vec<LogLine>,
    /// The action currently running.
    pub action: String,
    lines: usize,
    id_bytes: usize,
    at_bytes: usize,
    app_bytes: usize,
    user_bytes: usize,
    cache: HashMap<String, String>,
    /// A broken limit; the execution fails with it once the action returns.
    pub violation: Option<String>,
}

fn entry_size(key: &str, json: &str) -> usize {
    key.len() + json.len()
}

/// The running total once `key`'s `old` value (if any) is replaced by `new`, or `None` past
/// `max`. Both values are measured as they will be serialised (serde's form, which may differ
/// from JavaScript's for some numbers), so replacing a value can never lower the total by
/// more than it added.
fn replaced_total(total: usize, old: Option<&Value>, key: &str, new: &Value, max: usize) -> Option<usize> {
    let old = old.map(|v| entry_size(key, &v.to_string())).unwrap_or(0);
    let total = total.saturating_sub(old).checked_add(entry_size(key, &new.to_string()))?;
    (total <= max).then_some(total)
}

impl Recorder {
    pub fn start(&mut self, action: &str) {
        self.action = action.to_string();
        self.lines = 0;
    }

    fn violate(&mut self, message: String) {
        self.violation.get_or_insert(message);
    }

    /// One call of the native `host(op, a, b)` function the prelude's `api` uses. Returns the
    /// value for `cache_get` and an error code for a refused `cache_set`.
    pub fn command(&mut self, op: &str, a: Option<String>, b: Option<String>) -> Option<String> {
        let a = a.unwrap_or_default();
        match op {
            "deny" => {
                if self.outcome.denied.is_none() {
                    let reason: String = a.chars().take(MAX_DENY_REASON).collect();
                    self.outcome.denied = Some(Denial { action: self.action.clone(), reason });
                }
            }
            "id_claim" | "at_claim" => self.claim(op == "id_claim", a, b),
            "add_scope" | "remove_scope" => self.scope(op == "add_scope", a),
            "app_metadata" | "user_metadata" => self.metadata(op == "app_metadata", a, b),
            "log" => self.log(&a, b.unwrap_or_default()),
            "cache_get" => return self.cache.get(&a).cloned(),
            "cache_set" => return self.cache_set(a, b.unwrap_or_default()),
            "cache_delete" => {
                self.cache.remove(&a);
            }
            other => self.violate(format!("unknown host operation {other}")),
        }
        None
    }

    /// One token's custom claims and their running size.
    fn claims_of(&mut self, id_token: bool) -> (&mut Map<String, Value>, &mut usize) {
        if id_token {
            (&mut self.outcome.id_token_claims, &mut self.id_bytes)
        } else {
            (&mut self.outcome.access_token_claims, &mut self.at_bytes)
        }
    }

    fn claim(&mut self, id_token: bool, name: String, json: Option<String>) {
        if !claims::allowed(&name) || self.violation.is_some() {
            return;
        }
        // A value with no JSON form (`undefined`): the claim is left out of the token, as
        // JSON.stringify leaves it out, whatever an earlier call set.
        let Some(json) = json else {
            let (map, bytes) = self.claims_of(id_token);
            if let Some(old) = map.remove(&name) {
                *bytes = bytes.saturating_sub(entry_size(&name, &old.to_string()));
            }
            return;
        };
        let token = if id_token { "ID" } else { "access" };
        let too_big = || format!("the custom claims of the {token} token exceed 100 KB");
        // Measured before parsing: the parse happens outside the script's memory limit.
        if entry_size(&name, &json) > MAX_CLAIMS_BYTES {
            return self.violate(too_big());
        }
        let Ok(value) = serde_json::from_str::<Value>(&json) else {
            return self.violate(format!("the value of claim {name} is not JSON"));
        };
        let (map, bytes) = self.claims_of(id_token);
        let Some(new_total) = replaced_total(*bytes, map.get(&name), &name, &value, MAX_CLAIMS_BYTES) else {
            return self.violate(too_big());
        };
        *bytes = new_total;
        map.insert(name, value);
    }

    fn scope(&mut self, add: bool, scope: String) {
        if scope.is_empty() || scope.len() > MAX_SCOPE_LEN || scope.contains(' ') {
            return self.violate(format!("invalid scope {scope:?}"));
        }
        let o = &mut self.outcome;
        let (to, from) =
            if add { (&mut o.add_scopes, &mut o.remove_scopes) } else { (&mut o.remove_scopes, &mut o.add_scopes) };
        from.retain(|s| *s != scope);
        if !to.contains(&scope) {
            if to.len() >= MAX_SCOPES {
                return self.violate("too many scope changes".into());
            }
            to.push(scope);
        }
    }

    fn metadata(&mut self, app: bool, key: String, json: Option<String>) {
        if self.violation.is_some() {
            return;
        }
        let json = json.unwrap_or_else(|| "null".into());
        let which = if app { "app_metadata" } else { "user_metadata" };
        let too_big = || format!("the {which} updates of one login exceed 32 KB");
        if entry_size(&key, &json) > MAX_METADATA_BYTES {
            return self.violate(too_big());
        }
        let Ok(value) = serde_json::from_str::<Value>(&json) else {
            return self.violate(format!("the metadata value for {key} is not JSON"));
        };
        if key.is_empty() {
            return self.violate("metadata keys must not be empty".into());
        }
        let (map, bytes) = if app {
            (&mut self.outcome.app_metadata, &mut self.app_bytes)
        } else {
            (&mut self.outcome.user_metadata, &mut self.user_bytes)
        };
        let Some(new_total) = replaced_total(*bytes, map.get(&key), &key, &value, MAX_METADATA_BYTES) else {
            return self.violate(too_big());
        };
        *bytes = new_total;
        map.insert(key, value);
    }

    fn log(&mut self, level: &str, line: String) {
        self.lines += 1;
        if self.lines > MAX_LOG_LINES + 1 {
            return;
        }
        let (level, line) = if self.lines == MAX_LOG_LINES + 1 {
            (Level::Warn, format!("(more than {MAX_LOG_LINES} lines; the rest of this action's output is dropped)"))
        } else {
            let level = match level {
                "debug" => Level::Debug,
                "warn" => Level::Warn,
                "error" => Level::Error,
                _ => Level::Info,
            };
            (level, truncate(line))
        };
        self.logs.push(LogLine { action: self.action.clone(), level, line });
    }

    fn cache_set(&mut self, key: String, value: String) -> Option<String> {
        if key.len() > CACHE_KEY_BYTES || value.len() > CACHE_VALUE_BYTES {
            return Some("item_too_large".into());
        }
        let used: usize = self.cache.iter().filter(|(k, _)| **k != key).map(|(k, v)| k.len() + v.len()).sum();
        let entries = self.cache.len() + usize::from(!self.cache.contains_key(&key));
        if entries > CACHE_ENTRIES || used + key.len() + value.len() > CACHE_TOTAL_BYTES {
            return Some("cache_full".into());
        }
        // Values are kept as JSON strings: `get` hands back what `set` was given, as a string.
        self.cache.insert(key, serde_json::to_string(&value).unwrap_or_default());
        None
    }
}

fn truncate(mut line: String) -> String {
    if let Some((i, _)) = line.char_indices().nth(MAX_LOG_CHARS) {
        line.truncate(i);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn claims_are_filtered_and_bounded() {
        let mut r = Recorder::default();
        r.start("a");
        r.command("id_claim", some("groups"), some("[1]"));
        r.command("id_claim", some("https://x.test/groups"), some("[1]"));
        r.command("id_claim", some("https://x.test/undefined"), None);
        assert_eq!(r.outcome.id_token_claims, json!({"https://x.test/groups": [1]}).as_object().unwrap().clone());
        let big = format!("\"{}\"", "x".repeat(60 * 1024));
        r.command("at_claim", some("a"), some(&big));
        r.command("at_claim", some("a"), some(&big)); // replacing does not count twice
        assert!(r.violation.is_none());
        r.command("at_claim", some("b"), some(&big));
        assert!(r.violation.as_deref().unwrap().contains("100 KB"));
        assert!(!r.outcome.access_token_claims.contains_key("b"));
    }

    #[test]
    fn a_claim_set_to_undefined_is_dropped_and_frees_its_bytes() {
        let mut r = Recorder::default();
        r.start("a");
        let big = format!("\"{}\"", "x".repeat(60 * 1024));
        r.command("id_claim", some("https://x.test/a"), some(&big));
        r.command("id_claim", some("https://x.test/a"), None);
        assert!(r.outcome.id_token_claims.is_empty());
        r.command("id_claim", some("https://x.test/b"), some(&big));
        assert!(r.violation.is_none(), "the dropped claim no longer counts");
        assert_eq!(r.outcome.id_token_claims.len(), 1);
    }

    #[test]
    fn replacing_a_value_cannot_shrink_the_running_total_below_what_is_kept() {
        // JavaScript writes 2**64 in 20 characters, serde in 21: a replacement measured in
        // one form and taken back in the other used to lower the total on every re-set.
        let js_big = format!("[{}]", vec!["18446744073709552000"; 1500].join(","));
        let mut r = Recorder::default();
        r.start("a");
        for round in 0..50 {
            let key = format!("p{round}");
            for _ in 0..22 {
                r.command("app_metadata", some(&key), some(&js_big));
            }
        }
        let kept: usize = r.outcome.app_metadata.iter().map(|(k, v)| entry_size(k, &v.to_string())).sum();
        assert!(kept <= MAX_METADATA_BYTES, "{kept} bytes kept");
        assert!(r.violation.as_deref().unwrap().contains("32 KB"));
    }

    #[test]
    fn an_oversized_value_is_refused_before_it_is_parsed() {
        let mut r = Recorder::default();
        r.start("a");
        let huge = format!("[{}0]", "[0],".repeat(40_000));
        r.command("id_claim", some("https://x.test/big"), some(&huge));
        assert!(r.violation.as_deref().unwrap().contains("100 KB"));
        r.command("id_claim", some("https://x.test/small"), some("1"));
        assert!(r.outcome.id_token_claims.is_empty(), "nothing more once a limit was broken");
    }

    #[test]
    fn scopes_stay_disjoint() {
        let mut r = Recorder::default();
        r.command("add_scope", some("read:x"), None);
        r.command("remove_scope", some("read:x"), None);
        r.command("add_scope", some("write:x"), None);
        assert_eq!(r.outcome.add_scopes, vec!["write:x"]);
        assert_eq!(r.outcome.remove_scopes, vec!["read:x"]);
    }

    #[test]
    fn logs_are_truncated_and_capped() {
        let mut r = Recorder::default();
        r.start("a");
        r.command("log", some("info"), some(&"é".repeat(300)));
        assert_eq!(r.logs[0].line.chars().count(), MAX_LOG_CHARS);
        for _ in 0..500 {
            r.command("log", some("warn"), some("x"));
        }
        assert_eq!(r.logs.len(), MAX_LOG_LINES + 1);
    }

    #[test]
    fn cache_limits() {
        let mut r = Recorder::default();
        assert_eq!(r.command("cache_set", some("k"), some("v")), None);
        assert_eq!(r.command("cache_get", some("k"), None), some("\"v\""));
        assert_eq!(r.command("cache_set", some(&"k".repeat(65)), some("v")), some("item_too_large"));
        for i in 0..19 {
            assert_eq!(r.command("cache_set", Some(format!("k{i}")), some("v")), None);
        }
        assert_eq!(r.command("cache_set", some("one-too-many"), some("v")), some("cache_full"));
    }
}
