//! Extensions: more time on a live grant is a new decision under the policy in force,
//! with its own approvals; granted, it moves that grant's end on the ledger, and the
//! lease is revoked at its new end.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::Clock as _;
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_engine::{ErrorCode, ExtendGrant, NewRequest};

fn ask(entitlement: &str, seconds: i64) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        duration_seconds: Some(seconds),
        justification: "migration".into(),
        ..NewRequest::default()
    }
}

fn more(seconds: i64) -> ExtendGrant {
    ExtendGrant {
        duration_seconds: Some(seconds),
        justification: "the migration overran".into(),
        on_behalf_of: None,
    }
}

async fn an_extension_is_a_decision_of_its_own(storage: Storage) {
    let h = Harness::new(storage).await;
    let alice = caller("alice");
    let made = h
        .engine
        .create_request(&alice, ask("t/low", 600))
        .await
        .expect("request");
    let grant_id = made.grant_id.expect("granted");
    let before = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(before.state, GrantState::Active);

    // Automatic under policy (low access, at most 30 minutes a request): the same lease
    // runs 20 minutes longer.
    let extension = h
        .engine
        .extend_grant(&alice, grant_id, more(1200))
        .await
        .expect("extended");
    assert_eq!(extension.state, RequestState::Approved);
    assert_eq!(
        (extension.extends, extension.grant_id),
        (Some(grant_id), Some(grant_id))
    );
    let after = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(after.expires_at, before.expires_at.plus_seconds(1200));
    let events = h.store.events(0, 1000).await.expect("events");
    let rescheduled = events
        .iter()
        .rfind(|e| e.kind == EventKind::GrantRescheduled)
        .expect("grant.rescheduled");
    assert!(
        rescheduled.data.contains(&extension.id.to_string()),
        "{}",
        rescheduled.data
    );
    // Policy caps an extension as it caps a request: 30 minutes at most.
    let capped = h
        .engine
        .extend_grant(&alice, grant_id, more(3 * 3600))
        .await
        .expect("capped");
    assert_eq!(capped.duration_seconds, 1800);
    let end = h.engine.grant(grant_id).await.expect("grant").expires_at;

    // Past the original end the lease holds; at the new end it is revoked and verified.
    h.advance(600 + 60).await;
    assert!(h.target.holds_now("low", "alice"));
    let left = end.millis_since(h.clock.now()).div_euclid(1000);
    h.advance(left + 1).await;
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Revoked
    );
    assert!(!h.target.holds_now("low", "alice"));

    // Only an active grant is extended.
    let refused = h
        .engine
        .extend_grant(&alice, grant_id, more(60))
        .await
        .expect_err("revoked");
    assert_eq!(refused.code, ErrorCode::NotExtendable);
    h.finish().await;
}

async fn an_extension_needing_approval_waits_for_it(storage: Storage) {
    let h = Harness::new(storage).await;
    let (alice, dave) = (caller("alice"), caller("dave"));
    let made = h
        .engine
        .create_request(&alice, ask("t/high", 600))
        .await
        .expect("request");
    let made = h
        .engine
        .approve(&dave, made.id, "ok".into())
        .await
        .expect("approved");
    let grant_id = made.grant_id.expect("granted");
    let before = h.engine.grant(grant_id).await.expect("grant").expires_at;

    let extension = h
        .engine
        .extend_grant(&alice, grant_id, more(900))
        .await
        .expect("asked");
    assert_eq!(extension.state, RequestState::PendingApproval);
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").expires_at,
        before,
        "not yet"
    );
    // Nobody extends someone else's grant, nor approves their own extension.
    let refused = h
        .engine
        .extend_grant(&caller("bob"), grant_id, more(900))
        .await
        .expect_err("bob");
    assert_eq!(refused.code, ErrorCode::NotSubjectOwner);
    let refused = h
        .engine
        .approve(&alice, extension.id, "mine".into())
        .await
        .expect_err("self");
    assert_eq!(refused.code, ErrorCode::SelfApproval);

    let approved = h
        .engine
        .approve(&dave, extension.id, "fine".into())
        .await
        .expect("approved");
    assert_eq!(approved.grant_id, Some(grant_id));
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").expires_at,
        before.plus_seconds(900)
    );

    // An extension approved after its grant ended changes nothing, and says why.
    let late = h
        .engine
        .extend_grant(&alice, grant_id, more(600))
        .await
        .expect("asked");
    h.engine
        .revoke_grant(&alice, grant_id, "done early".into())
        .await
        .expect("revoked");
    let refused = h
        .engine
        .approve(&dave, late.id, "too late".into())
        .await
        .expect_err("ended");
    assert_eq!(refused.code, ErrorCode::NotExtendable);
    h.finish().await;
}

writ_testkit::on_both_backends!(
    an_extension_is_a_decision_of_its_own,
    an_extension_needing_approval_waits_for_it,
);
