//! What people are told besides the decision: eligible approvers, entitlement previews,
//! what would change a denial, nearest ids, and ids as people type them — on both
//! storage backends where the store is involved.

mod harness;

use harness::{Harness, Storage, caller};
use writ_engine::ErrorCode;
use writ_engine::{ErrorKind, NewRequest};

fn ask(entitlement: &str) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        justification: "test".into(),
        ..NewRequest::default()
    }
}

fn names(list: Vec<writ_domain::IdentityName>) -> Vec<String> {
    list.into_iter().map(String::from).collect()
}

#[tokio::test]
async fn approvers_are_those_policy_permits_minus_parties_and_who_approved() {
    let h = Harness::new(Storage::Sqlite).await;
    let request = h
        .engine
        .create_request(&caller("alice"), ask("t/critical"))
        .await
        .expect("request");
    // erin owns it (group sec), dave is alice's manager; bob may not; alice is a party.
    assert_eq!(names(h.engine.approvers(&request)), ["dave", "erin"]);
    let request = h
        .engine
        .approve(&caller("dave"), request.id, String::new())
        .await
        .expect("dave approves");
    assert_eq!(names(h.engine.approvers(&request)), ["erin"]);
    let request = h
        .engine
        .approve(&caller("erin"), request.id, String::new())
        .await
        .expect("erin approves");
    assert!(h.engine.approvers(&request).is_empty(), "no longer pending");
    h.finish().await;
}

#[tokio::test]
async fn previews_match_what_a_request_would_get() {
    let h = Harness::new(Storage::Sqlite).await;
    let views = h
        .engine
        .entitlements_for(&caller("bob"))
        .await
        .expect("views");
    let view = |id: &str| views.iter().find(|v| v.id == id).expect("listed");
    assert_eq!(view("t/low").without_ticket.outcome, "auto");
    assert_eq!(
        view("t/low").without_ticket.max_duration_seconds,
        Some(1800)
    );
    assert_eq!(view("t/critical").without_ticket.outcome, "approval");
    assert_eq!(view("t/critical").without_ticket.approvals_required, 2);
    assert_eq!(view("t/critical").owners.as_deref(), Some("sec"));
    // dave is in no group that may ask: denied everywhere, and a ticket would not help.
    let request = h
        .engine
        .create_request(&caller("dave"), ask("t/low"))
        .await
        .expect("recorded");
    assert_eq!(request.state.as_str(), "denied");
    let hints = h.engine.denial_hints(&request);
    assert_eq!(hints.len(), 1, "{hints:?}");
    assert!(hints[0].starts_with("no policy permits dave"), "{hints:?}");
    assert!(
        h.engine
            .entitlements_for(&caller("dave"))
            .await
            .expect("views")
            .iter()
            .all(|v| v.without_ticket.outcome == "deny" && v.with_ticket.outcome == "deny")
    );
    h.finish().await;
}

#[tokio::test]
async fn an_unknown_entitlement_names_the_nearest() {
    let h = Harness::new(Storage::Sqlite).await;
    let error = h
        .engine
        .create_request(&caller("alice"), ask("t/critcal"))
        .await
        .expect_err("unknown");
    assert_eq!(error.code, ErrorCode::UnknownEntitlement);
    assert!(
        error.message.contains("did you mean t/critical?"),
        "{}",
        error.message
    );
    let error = h
        .engine
        .create_request(&caller("alice"), ask("zzz/qqqqqqq"))
        .await
        .expect_err("unknown");
    assert!(
        error.message.contains("`writ entitlements` lists them"),
        "{}",
        error.message
    );
    h.finish().await;
}

async fn ids_as_people_type_them(storage: Storage) {
    let h = Harness::new(storage).await;
    let first = h
        .engine
        .create_request(&caller("alice"), ask("t/low"))
        .await
        .expect("request");
    let second = h
        .engine
        .create_request(&caller("bob"), ask("t/low"))
        .await
        .expect("request");
    let engine = &h.engine;
    assert_eq!(
        engine.resolve_request(&first.id.short()).await,
        Ok(first.id)
    );
    assert_eq!(
        engine.resolve_request(&first.id.to_string()).await,
        Ok(first.id)
    );
    let upper = second.id.short()[4..].to_uppercase();
    assert_eq!(engine.resolve_request(&upper).await, Ok(second.id));
    // Two ids made in the same minute share their start (UUIDv7 is time first).
    let start = &first.id.to_string()[..6];
    let ambiguous = engine.resolve_request(start).await.expect_err("ambiguous");
    assert_eq!(ambiguous.code, ErrorCode::AmbiguousId);
    assert!(
        ambiguous.message.contains(&first.id.short())
            && ambiguous.message.contains(&second.id.short()),
        "{}",
        ambiguous.message
    );
    // A grant's short form is not a request's, even when the digits match one.
    let grant = first.grant_id.expect("granted");
    let as_request = engine
        .resolve_request(&grant.short())
        .await
        .expect_err("wrong tag");
    assert_eq!(as_request.kind(), ErrorKind::NotFound);
    assert_eq!(engine.resolve_grant(&grant.short()).await, Ok(grant));
    // LIKE's wildcards are never passed through.
    for text in ["%", "____", "%%%%", "0%"] {
        let error = engine.resolve_request(text).await.expect_err(text);
        assert_eq!(error.kind(), ErrorKind::NotFound, "{text}");
    }
    assert_eq!(
        engine
            .resolve_finding("abcd")
            .await
            .expect_err("none")
            .kind(),
        ErrorKind::NotFound
    );
    h.finish().await;
}

writ_testkit::on_both_backends!(ids_as_people_type_them);
