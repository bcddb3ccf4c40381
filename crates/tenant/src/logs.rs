//! Reading a tenant's log through any Management API (`gatehouse logs`): the newest events of
//! a search, the events after a checkpoint, one event, and one readable line per event.
//! Works against the idp and real Auth0 alike: only `/api/v2/logs` as Auth0 documents it.

use crate::error::Result;
use crate::remote::ManagementClient;
use serde_json::Value;

/// At most this many events per request (Auth0's bound).
pub const PAGE: u32 = 100;

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items,
        _ => Vec::new(),
    }
}

/// The `n` newest events matching `filter` (Auth0's log search syntax), oldest first.
pub async fn newest(client: &ManagementClient, filter: Option<&str>, n: u32) -> Result<Vec<Value>> {
    let mut path = format!("/logs?sort=date:-1&per_page={}", n.clamp(1, PAGE));
    if let Some(q) = filter.filter(|q| !q.trim().is_empty()) {
        path.push_str(&format!("&q={}", encode(q)));
    }
    let mut events = array(client.get(&path).await?);
    events.reverse();
    Ok(events)
}

/// Events newer than `seen` (the last one shown), oldest first: after its `log_id` by checkpoint
/// without a filter; with one, a search from its date on (checkpoints ignore `q`), leaving out
/// `seen` and what came before it.
pub async fn after(client: &ManagementClient, seen: &Value, filter: Option<&str>) -> Result<Vec<Value>> {
    let id = seen["log_id"].as_str().unwrap_or_default();
    let Some(q) = filter.filter(|q| !q.trim().is_empty()) else {
        return Ok(array(client.get(&format!("/logs?from={}&take={PAGE}", encode(id))).await?));
    };
    let date = seen["date"].as_str().unwrap_or("1970-01-01");
    let q = format!("({q}) AND date:[{date} TO *]");
    let events = array(client.get(&format!("/logs?sort=date:1&per_page={PAGE}&q={}", encode(&q))).await?);
    Ok(events.into_iter().filter(|e| e["log_id"].as_str().is_some_and(|other| other > id)).collect())
}

pub async fn get(client: &ManagementClient, id: &str) -> Result<Value> {
    client.get(&format!("/logs/{}", encode(id))).await
}

/// One line: date, type, description, then who and where.
pub fn line(e: &Value) -> String {
    let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
    let mut out = format!("{}  {:<8} {}", text("date"), text("type"), text("description"));
    for (label, key) in [
        ("user", "user_name"),
        ("user_id", "user_id"),
        ("client", "client_name"),
        ("client_id", "client_id"),
        ("connection", "connection"),
        ("ip", "ip"),
        ("log_id", "log_id"),
    ] {
        if let Some(v) = e[key].as_str().filter(|v| !v.is_empty()) {
            out.push_str(&format!("  {label}={v}"));
        }
    }
    out.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_line_names_what_happened_to_whom() {
        let e = json!({"date": "2026-01-02T03:04:05.006Z", "type": "fp", "description": "Wrong email or password.\nx",
            "user_name": "a@b.c", "client_id": "app", "ip": "10.0.0.1", "log_id": "900123"});
        assert_eq!(
            line(&e),
            "2026-01-02T03:04:05.006Z  fp       Wrong email or password. x  user=a@b.c  client_id=app  ip=10.0.0.1  log_id=900123"
        );
    }
}
