//! The tenant log's part of the conformance suite ([`store::LogStore`]), run against the same
//! three backends as the rest.

use store::logs::{LogPaging, LogSearch, parse_log_query};
use store::{LogEvent, LogStream, LogStreamConfig, SqlStore, Store};

conformance!(logs:log_events_round_trip_and_search, log_paging, log_retention_in_batches, log_streams_and_their_cursor, log_stream_leases, log_positions_follow_commits);

const DAY: i64 = 86_400_000;

fn event(n: i64, kind: &str, user: Option<&str>) -> LogEvent {
    LogEvent {
        log_id: format!("9002{n:020}"),
        date: 10 * DAY + n * 1000,
        event_type: kind.into(),
        description: Some(format!("event number {n}")),
        client_id: Some("app".into()),
        user_id: user.map(str::to_owned),
        ip: Some(if n % 2 == 0 { "10.0.0.1" } else { "::1" }.into()),
        details: Some(serde_json::json!({"n": n})),
        ..Default::default()
    }
}

fn search(q: &str, paging: LogPaging) -> LogSearch {
    LogSearch { query: parse_log_query(q).unwrap(), paging }
}

fn page(per_page: u32) -> LogPaging {
    LogPaging::Page { page: 0, per_page, totals: true, newest_first: true }
}

async fn ids(store: &SqlStore, q: &str, paging: LogPaging) -> Vec<String> {
    let found = store.logs().search_logs(&search(q, paging)).await.unwrap();
    found.events.into_iter().map(|e| e.log_id[4..].trim_start_matches('0').to_string()).collect()
}

async fn seed(store: &SqlStore) {
    let mut events = Vec::new();
    for n in 1..=10 {
        let (kind, user) = match n % 3 {
            0 => ("fp", Some("auth0|a")),
            1 => ("s", Some("auth0|b")),
            _ => ("seccft", None),
        };
        events.push(event(n, kind, user));
    }
    store.logs().append_logs(&events).await.unwrap();
}

async fn log_events_round_trip_and_search(store: &SqlStore) {
    seed(store).await;
    let one = store.logs().log_event(&event(3, "fp", None).log_id).await.unwrap().unwrap();
    assert_eq!(one, event(3, "fp", Some("auth0|a")), "every field comes back as written");
    assert!(store.logs().log_event("nope").await.unwrap().is_none());
    // Appending the same events again (a retried batch) duplicates nothing.
    store.logs().append_logs(&[event(3, "fp", Some("auth0|a"))]).await.unwrap();

    assert_eq!(ids(store, "type:fp", page(50)).await, ["9", "6", "3"]);
    assert_eq!(ids(store, r#"user_id:"auth0|b""#, page(50)).await, ["10", "7", "4", "1"]);
    assert_eq!(ids(store, "type:(fp OR s) AND NOT user_id:auth0|b", page(50)).await, ["9", "6", "3"]);
    assert_eq!(ids(store, "NOT _exists_:user_id", page(50)).await, ["8", "5", "2"]);
    assert_eq!(ids(store, "-user_id:auth0|b AND ip:10.0.0.1", page(50)).await, ["8", "6", "2"]);
    assert_eq!(ids(store, r"description:*NUMBER\ 1*", page(50)).await, ["10", "1"], "wildcards ignore case");
    assert_eq!(ids(store, "description:event?number?1", page(50)).await, ["1"]);
    assert_eq!(ids(store, "description:event_number_1", page(50)).await, Vec::<String>::new(), "_ is literal");
    assert_eq!(ids(store, "ip:::1 AND type:s", page(50)).await, ["7", "1"]);
    // Day 10 starts at event 0; events are a second apart.
    assert_eq!(ids(store, "date:[1970-01-11T00:00:03 TO 1970-01-11T00:00:05]", page(50)).await, ["5", "4", "3"]);
    assert_eq!(ids(store, "date:{1970-01-11T00:00:08 TO *]", page(50)).await, ["10", "9"]);
    let found = store.logs().search_logs(&search("type:s", page(2))).await.unwrap();
    assert_eq!((found.events.len(), found.total), (2, Some(4)));
}

async fn log_paging(store: &SqlStore) {
    seed(store).await;
    let oldest = LogPaging::Page { page: 1, per_page: 3, totals: false, newest_first: false };
    assert_eq!(ids(store, "", oldest).await, ["4", "5", "6"]);
    let newest = LogPaging::Page { page: 3, per_page: 3, totals: false, newest_first: true };
    assert_eq!(ids(store, "", newest).await, ["1"]);
    // Checkpoints: after a log_id, oldest first, whatever the query.
    let from = |from: Option<i64>, take| LogPaging::From { from: from.map(|n| event(n, "", None).log_id), take };
    assert_eq!(ids(store, "", from(None, 2)).await, ["1", "2"]);
    assert_eq!(ids(store, "", from(Some(8), 5)).await, ["9", "10"]);
    assert_eq!(ids(store, "", from(Some(10), 5)).await, Vec::<String>::new());
    // Searches page within Auth0's first 1000 results.
    let past = LogPaging::Page { page: 10, per_page: 100, totals: true, newest_first: true };
    let found = store.logs().search_logs(&search("", past)).await.unwrap();
    assert_eq!((found.events.len(), found.total), (0, Some(10)));
    // Checkpoints follow commits: a batch written later with smaller ids (another node's,
    // slower to commit) still comes after a checkpoint the reader already passed.
    store.logs().append_logs(&[event(20, "s", None)]).await.unwrap();
    store.logs().append_logs(&[event(15, "s", None)]).await.unwrap();
    assert_eq!(ids(store, "", from(Some(10), 5)).await, ["20", "15"]);
    assert_eq!(ids(store, "", from(Some(20), 5)).await, ["15"]);
    assert_eq!(ids(store, "type:s", from(Some(20), 5)).await, ["15"], "with a query too");
    // A checkpoint no longer stored starts before the first event with a later id.
    assert_eq!(ids(store, "", from(Some(12), 5)).await, ["20", "15"]);
}

async fn log_retention_in_batches(store: &SqlStore) {
    seed(store).await;
    let cutoff = 10 * DAY + 7 * 1000; // events 1..=6 are older
    assert_eq!(store.logs().purge_logs(cutoff, 4).await.unwrap(), 4, "one bounded batch");
    assert_eq!(ids(store, "", page(50)).await, ["10", "9", "8", "7", "6", "5"], "the oldest went first");
    assert_eq!(store.logs().purge_logs(cutoff, 4).await.unwrap(), 2);
    assert_eq!(store.logs().purge_logs(cutoff, 4).await.unwrap(), 0);
    assert_eq!(ids(store, "", page(50)).await, ["10", "9", "8", "7"]);
}

/// A stream's settings round-trip; the delivery's progress moves the cursor and the failure
/// start without touching the settings, and suspends only an active stream; an update never
/// moves the cursor.
async fn log_streams_and_their_cursor(store: &SqlStore) {
    let logs = store.logs();
    let config = LogStreamConfig {
        name: "SIEM".into(),
        stream_type: "http".into(),
        endpoint: "https://logs.example.com/in".into(),
        content_format: "JSONLINES".into(),
        content_type: "application/json".into(),
        filters: vec!["auth.login.fail".into()],
    };
    let mut stream = LogStream {
        id: "lst_1".into(),
        config,
        status: "active".into(),
        authorization_sealed: Some("v1.sealed".into()),
        cursor: 9001,
        failing_since: None,
        created_at: 5,
        updated_at: 5,
        lease_owner: None,
        lease_until: None,
    };
    logs.create_log_stream(&stream).await.unwrap();
    assert!(logs.create_log_stream(&stream).await.is_err(), "an id once");
    assert_eq!(logs.log_stream("lst_1").await.unwrap().as_ref(), Some(&stream));
    assert!(!logs.log_stream_progress("lst_1", "node-a", 9002, Some(7), false).await.unwrap(), "no lease");
    assert!(logs.claim_log_stream("lst_1", "node-a", 10, 1_000).await.unwrap());
    assert!(logs.log_stream_progress("lst_1", "node-a", 9002, Some(7), false).await.unwrap());
    assert!(logs.log_stream_progress("lst_1", "node-a", 9002, Some(7), true).await.unwrap());
    let s = logs.log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!((s.cursor, s.failing_since, s.status.as_str()), (9002, Some(7), "suspended"));
    assert_eq!(s.config, stream.config);
    stream.status = "paused".into();
    stream.failing_since = None;
    stream.config.name = "SIEM 2".into();
    stream.updated_at = 9;
    assert!(logs.update_log_stream(&stream).await.unwrap());
    assert!(logs.log_stream_progress("lst_1", "node-a", 9003, Some(8), true).await.unwrap());
    let s = logs.log_stream("lst_1").await.unwrap().unwrap();
    assert_eq!(
        (s.status.as_str(), s.config.name.as_str(), s.updated_at),
        ("paused", "SIEM 2", 9),
        "paused stays paused"
    );
    assert_eq!(s.cursor, 9003);
    assert_eq!(logs.log_streams().await.unwrap().len(), 1);
    assert!(logs.delete_log_stream("lst_1").await.unwrap());
    assert!(!logs.delete_log_stream("lst_1").await.unwrap());
    assert!(!logs.claim_log_stream("lst_1", "node-a", 10, 1_000).await.unwrap(), "no such stream");
    stream.id = "lst_2".into();
    assert!(!logs.update_log_stream(&stream).await.unwrap(), "no such stream");
    assert!(logs.log_streams().await.unwrap().is_empty());
}

/// The delivery lease: one holder at a time; the holder renews it; a lease that ran out is
/// taken over; only the holder moves the cursor, so a node that lost the stream cannot move it
/// back; of several nodes claiming at once exactly one wins.
async fn log_stream_leases(store: &SqlStore) {
    let logs = store.logs();
    let stream = |id: &str| LogStream {
        id: id.into(),
        config: LogStreamConfig { name: id.into(), stream_type: "http".into(), ..Default::default() },
        status: "active".into(),
        authorization_sealed: None,
        cursor: 100,
        failing_since: None,
        created_at: 1,
        updated_at: 1,
        lease_owner: None,
        lease_until: None,
    };
    logs.create_log_stream(&stream("lst_a")).await.unwrap();
    let held = |owner: &str, until: i64| (Some(owner.to_string()), Some(until));
    let lease = |s: LogStream| (s.lease_owner, s.lease_until);

    // Claim, refusal while it lasts, renewal by the holder.
    assert!(logs.claim_log_stream("lst_a", "a", 1_000, 31_000).await.unwrap());
    assert!(!logs.claim_log_stream("lst_a", "b", 30_999, 60_999).await.unwrap(), "a holds it");
    assert_eq!(lease(logs.log_stream("lst_a").await.unwrap().unwrap()), held("a", 31_000));
    assert!(logs.claim_log_stream("lst_a", "a", 20_000, 50_000).await.unwrap(), "renewed");
    assert!(!logs.claim_log_stream("lst_a", "b", 31_000, 61_000).await.unwrap(), "renewed past 31 s");
    assert!(logs.log_stream_progress("lst_a", "a", 200, None, false).await.unwrap());

    // Expiry: at its end anyone may take it over, from the stored cursor.
    assert!(logs.claim_log_stream("lst_a", "b", 50_000, 80_000).await.unwrap(), "a's lease ran out");
    let s = logs.log_stream("lst_a").await.unwrap().unwrap();
    assert_eq!((s.cursor, lease(s.clone())), (200, held("b", 80_000)));
    // The node that lost it cannot write: not an older cursor, not a failure, not a suspension.
    assert!(!logs.log_stream_progress("lst_a", "a", 150, Some(5), true).await.unwrap());
    assert!(!logs.claim_log_stream("lst_a", "a", 50_001, 80_001).await.unwrap(), "b holds it now");
    assert!(logs.log_stream_progress("lst_a", "b", 300, None, false).await.unwrap());
    let s = logs.log_stream("lst_a").await.unwrap().unwrap();
    assert_eq!((s.cursor, s.failing_since, s.status.as_str()), (300, None, "active"));
    // An admin's update keeps the lease (and the cursor).
    let mut edited = stream("lst_a");
    edited.status = "paused".into();
    assert!(logs.update_log_stream(&edited).await.unwrap());
    let s = logs.log_stream("lst_a").await.unwrap().unwrap();
    assert_eq!((s.cursor, lease(s.clone())), (300, held("b", 80_000)));

    // Concurrent claims of a free stream, and of an expired one: exactly one wins each time.
    for (round, now) in [(0, 1_000), (1, 100_000)] {
        let id = format!("lst_race{round}");
        logs.create_log_stream(&stream(&id)).await.unwrap();
        if round == 1 {
            assert!(logs.claim_log_stream(&id, "old", 0, now).await.unwrap(), "ends at `now`");
        }
        let claim = |owner: &'static str| {
            let id = id.clone();
            async move { (owner, logs.claim_log_stream(&id, owner, now, now + 30_000).await.unwrap()) }
        };
        let (w, x, y, z) = tokio::join!(claim("w"), claim("x"), claim("y"), claim("z"));
        let winners: Vec<&str> = [w, x, y, z].iter().filter(|(_, won)| *won).map(|(o, _)| *o).collect();
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(lease(logs.log_stream(&id).await.unwrap().unwrap()), held(winners[0], now + 30_000));
    }
}

/// Positions follow the order writes committed, not `log_id`s: a batch written later with
/// smaller ids (another node's clock, or its slower commit) comes after what was read, so a
/// reader going on from its last position misses nothing; `log_position` finds the end, or
/// the place before every event after a `log_id`.
async fn log_positions_follow_commits(store: &SqlStore) {
    let logs = store.logs();
    assert_eq!(logs.log_position(None).await.unwrap(), 0, "an empty log");
    logs.append_logs(&[event(20, "s", None), event(21, "s", None)]).await.unwrap();
    let read = logs.logs_after(0, 10).await.unwrap();
    let ids = |r: &[(i64, LogEvent)]| {
        r.iter().map(|(_, e)| e.log_id[4..].trim_start_matches('0').to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&read), ["20", "21"]);
    let cursor = read.last().unwrap().0;
    assert_eq!(logs.log_position(None).await.unwrap(), cursor);
    // Written after, sorting before: still after the cursor.
    logs.append_logs(&[event(10, "f", None), event(11, "f", None)]).await.unwrap();
    let more = logs.logs_after(cursor, 10).await.unwrap();
    assert_eq!(ids(&more), ["10", "11"]);
    assert!(more[0].0 > cursor && more[0].0 < more[1].0);
    assert_eq!(logs.logs_after(more[1].0, 10).await.unwrap(), []);
    assert_eq!(ids(&logs.logs_after(cursor, 1).await.unwrap()), ["10"], "take");
    // A retried batch adds nothing, and positions never go back.
    logs.append_logs(&[event(11, "f", None)]).await.unwrap();
    assert_eq!(logs.logs_after(more[1].0, 10).await.unwrap(), []);
    assert!(logs.log_position(None).await.unwrap() >= more[1].0);
    // Before every event after a log id: 20 and 21 (and 10, 11 later), so from the first.
    let after_15 = logs.log_position(Some(&event(15, "s", None).log_id)).await.unwrap();
    assert_eq!(ids(&logs.logs_after(after_15, 10).await.unwrap()), ["20", "21", "10", "11"]);
    let end = logs.log_position(None).await.unwrap();
    assert_eq!(logs.log_position(Some(&event(99, "s", None).log_id)).await.unwrap(), end, "none after");
    // Purging everything keeps positions going forward.
    assert_eq!(logs.purge_logs(i64::MAX, 100).await.unwrap(), 4);
    logs.append_logs(&[event(5, "s", None)]).await.unwrap();
    let last = logs.logs_after(end, 10).await.unwrap();
    assert_eq!(ids(&last), ["5"]);
}
