//! The mail part of the conformance suite ([`store::MailStore`]): the queue's claims, retries
//! and leases, the email provider and templates, run against the same three backends.

use store::mail::{EmailProvider, EmailTemplate, EmailTicket, NewMail, TicketOptions};
use store::{Error, SqlStore, Store};

conformance!(mail:
    mail_queue_claim_send_retry,
    mail_queue_leases_run_out,
    mail_queue_claim_concurrent,
    email_provider_crud,
    email_templates_crud,
    email_tickets_are_one_time
);

fn mail(n: u32, at: i64) -> NewMail {
    NewMail { id: format!("m{n:04}"), kind: "reset_email".into(), payload: format!("sealed {n}"), created_at: at }
}

async fn mail_queue_claim_send_retry(store: &SqlStore) {
    let q = store.mail();
    q.enqueue_mail(&mail(1, 1000)).await.unwrap();
    q.enqueue_mail(&mail(2, 1001)).await.unwrap();
    assert!(matches!(q.enqueue_mail(&mail(1, 1002)).await, Err(Error::Conflict(_))), "ids are unique");
    assert!(q.claim_mail("c0", 999, 60_000, 10).await.unwrap().is_empty(), "not due yet");
    assert_eq!((q.pending_mail(999).await.unwrap(), q.pending_mail(1001).await.unwrap()), (0, 2));

    let claimed = q.claim_mail("c1", 2000, 62_000, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m0001", "m0002"], "oldest first");
    assert_eq!(
        (claimed[0].payload.as_str(), claimed[0].attempts, claimed[0].kind.as_str()),
        ("sealed 1", 0, "reset_email")
    );
    assert!(q.claim_mail("c2", 2001, 62_001, 10).await.unwrap().is_empty(), "leased to c1");

    assert!(!q.mail_sent("m0001", "c2", 2100).await.unwrap(), "only the claim holder marks");
    assert_eq!(q.pending_mail(2001).await.unwrap(), 2, "claimed, not yet sent");
    assert!(q.mail_sent("m0001", "c1", 2100).await.unwrap());
    assert!(!q.mail_sent("m0001", "c1", 2200).await.unwrap(), "sent once");
    let sent = q.mail_status("m0001").await.unwrap().unwrap();
    assert_eq!((sent.sent_at, sent.attempts, sent.failed_at), (Some(2100), 1, None));

    // A failure puts it back, due at the retry time, with the error kept.
    assert!(q.mail_failed("m0002", "c1", "451 try later", Some(10_000), 2100).await.unwrap());
    let waiting = q.mail_status("m0002").await.unwrap().unwrap();
    assert_eq!((waiting.attempts, waiting.next_attempt_at, waiting.sent_at), (1, 10_000, None));
    assert_eq!(waiting.last_error.as_deref(), Some("451 try later"));
    assert!(q.claim_mail("c3", 9_999, 70_000, 10).await.unwrap().is_empty(), "backing off");
    assert_eq!(q.pending_mail(9_999).await.unwrap(), 0, "nothing due while backing off");
    let again = q.claim_mail("c4", 10_000, 70_000, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));

    // Given up: never claimed again, kept for operators until purged.
    assert!(q.mail_failed("m0002", "c4", "550 no such user", None, 10_100).await.unwrap());
    let failed = q.mail_status("m0002").await.unwrap().unwrap();
    assert_eq!((failed.failed_at, failed.attempts), (Some(10_100), 2));
    assert!(q.claim_mail("c5", 1_000_000, 2_000_000, 10).await.unwrap().is_empty());

    q.enqueue_mail(&mail(3, 20_000)).await.unwrap();
    assert_eq!(q.purge_mail(10_101).await.unwrap(), 2, "the sent and the given-up ones");
    assert!(q.mail_status("m0001").await.unwrap().is_none());
    assert!(q.mail_status("m0003").await.unwrap().is_some(), "waiting mail is never purged");
    assert_eq!(q.claim_mail("c6", 20_000, 80_000, 1).await.unwrap().len(), 1, "limit");
}

/// A worker that died mid-send leaves a lease; when it runs out another worker takes the
/// message, and the dead one's late report changes nothing.
async fn mail_queue_leases_run_out(store: &SqlStore) {
    let q = store.mail();
    q.enqueue_mail(&mail(1, 0)).await.unwrap();
    assert_eq!(q.claim_mail("dead", 0, 5_000, 10).await.unwrap().len(), 1);
    assert!(q.claim_mail("other", 4_999, 10_000, 10).await.unwrap().is_empty());
    assert_eq!(q.claim_mail("other", 5_000, 10_000, 10).await.unwrap().len(), 1, "the lease ran out");
    assert!(!q.mail_sent("m0001", "dead", 5_001).await.unwrap(), "its claim is gone");
    assert!(!q.mail_failed("m0001", "dead", "x", Some(1), 5_001).await.unwrap());
    assert!(q.mail_sent("m0001", "other", 5_002).await.unwrap());
}

/// Several workers (each with its own connection) claim from one queue at once: every message
/// goes to exactly one of them.
async fn mail_queue_claim_concurrent(store: &SqlStore) {
    let q = store.mail();
    for n in 0..40 {
        q.enqueue_mail(&mail(n, i64::from(n))).await.unwrap();
    }
    let claims: Vec<String> = (0..6).map(|w| format!("w{w}")).collect();
    let rounds = super::join_all(claims.iter().map(|c| async move {
        let mut mine = Vec::new();
        loop {
            let got = store.mail().claim_mail(c, 1_000, 100_000, 4).await.unwrap();
            if got.is_empty() {
                return mine;
            }
            mine.extend(got.into_iter().map(|m| m.id));
        }
    }))
    .await;
    let mut all: Vec<String> = rounds.into_iter().flatten().collect();
    all.sort();
    let expected: Vec<String> = (0..40).map(|n| format!("m{n:04}")).collect();
    assert_eq!(all, expected, "each message claimed once");
}

async fn email_provider_crud(store: &SqlStore) {
    let q = store.mail();
    assert_eq!(q.email_provider().await.unwrap(), None);
    let mut provider = EmailProvider {
        name: "smtp".into(),
        enabled: true,
        default_from_address: Some("no-reply@example.test".into()),
        credentials: serde_json::json!({"smtp_host": "mail.example.test", "smtp_port": 587, "smtp_user": "u"})
            .as_object()
            .unwrap()
            .clone(),
        smtp_pass_sealed: Some("v1.sealed".into()),
        settings: None,
    };
    assert!(matches!(q.update_email_provider(&provider).await, Err(Error::NotFound(_))));
    q.create_email_provider(&provider).await.unwrap();
    assert!(matches!(q.create_email_provider(&provider).await, Err(Error::Conflict(_))), "one provider");
    assert_eq!(q.email_provider().await.unwrap().as_ref(), Some(&provider));
    provider.enabled = false;
    q.update_email_provider(&provider).await.unwrap();
    assert!(!q.email_provider().await.unwrap().unwrap().enabled);
    assert!(q.delete_email_provider().await.unwrap());
    assert!(!q.delete_email_provider().await.unwrap());
    assert_eq!(q.email_provider().await.unwrap(), None);
}

async fn email_templates_crud(store: &SqlStore) {
    let q = store.mail();
    let mut t = EmailTemplate {
        template: "verify_email".into(),
        body: Some("<a href=\"{{ url }}\">verify</a>".into()),
        subject: Some("Verify".into()),
        syntax: Some("liquid".into()),
        enabled: Some(true),
        url_lifetime_in_seconds: Some(3600),
        ..Default::default()
    };
    assert_eq!(q.email_template("verify_email").await.unwrap(), None);
    q.create_email_template(&t).await.unwrap();
    assert!(matches!(q.create_email_template(&t).await, Err(Error::Conflict(_))));
    t.subject = Some("Please verify".into());
    q.put_email_template(&t).await.unwrap();
    let reset = EmailTemplate { template: "reset_email".into(), enabled: Some(false), ..Default::default() };
    q.put_email_template(&reset).await.unwrap();
    assert_eq!(q.email_template("verify_email").await.unwrap().as_ref(), Some(&t));
    let names: Vec<String> = q.email_templates().await.unwrap().into_iter().map(|t| t.template).collect();
    assert_eq!(names, ["reset_email", "verify_email"]);
}

async fn email_tickets_are_one_time(store: &SqlStore) {
    let q = store.mail();
    let ticket = |n: u8, expires_at| EmailTicket {
        ticket_sha256: vec![n; 32],
        kind: "verify_email".into(),
        user_id: "auth0|u".into(),
        expires_at,
        options: TicketOptions { result_url: Some("https://app.test/done".into()), ..Default::default() },
    };
    q.put_email_ticket(&ticket(1, 1000)).await.unwrap();
    q.put_email_ticket(&ticket(2, 1000)).await.unwrap();
    assert!(q.redeem_email_ticket(&[1; 32], "password_change", 10).await.unwrap().is_none(), "other kind");
    assert!(q.redeem_email_ticket(&[1; 32], "verify_email", 1000).await.unwrap().is_none(), "expired");
    assert!(q.redeem_email_ticket(&[9; 32], "verify_email", 10).await.unwrap().is_none(), "unknown");
    let used = q.redeem_email_ticket(&[2; 32], "verify_email", 10).await.unwrap().unwrap();
    assert_eq!(used, ticket(2, 1000));
    assert!(q.redeem_email_ticket(&[2; 32], "verify_email", 11).await.unwrap().is_none(), "used once");
    // Two racing redemptions: one wins.
    q.put_email_ticket(&ticket(3, 1000)).await.unwrap();
    let both = super::join_all([
        q.redeem_email_ticket(&[3; 32], "verify_email", 10),
        q.redeem_email_ticket(&[3; 32], "verify_email", 10),
    ])
    .await;
    assert_eq!(both.into_iter().filter(|r| matches!(r, Ok(Some(_)))).count(), 1);
    assert!(store.purge_expired(2000).await.unwrap() >= 3);
}
