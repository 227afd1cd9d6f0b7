//! Reconciliation and the exception registry, with a manual clock and a target the
//! test changes behind writ's back, on both storage backends.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Clock, DriftAction, FindingKind, FindingReport, FindingState};
use writ_engine::{ErrorKind, NewException, NewRequest};
use writ_store::FindingFilter;

fn low(seconds: i64) -> NewRequest {
    NewRequest {
        entitlement: "t/low".into(),
        duration_seconds: Some(seconds),
        justification: "test".into(),
        ..NewRequest::default()
    }
}

async fn all_findings(h: &Harness) -> Vec<FindingReport> {
    h.engine
        .findings(FindingFilter::default())
        .await
        .expect("findings")
        .items
}

fn find<'a>(findings: &'a [FindingReport], account: &str) -> &'a FindingReport {
    findings
        .iter()
        .find(|f| f.finding.account == account)
        .unwrap_or_else(|| panic!("a finding for {account} in {findings:?}"))
}

async fn drift_is_found_classified_and_acted_on(storage: Storage) {
    let h = Harness::new(storage).await;
    let alice = h
        .engine
        .create_request(&caller("alice"), low(600))
        .await
        .expect("request")
        .grant_id
        .expect("auto grant");
    let bob = h
        .engine
        .create_request(&caller("bob"), low(60))
        .await
        .expect("request")
        .grant_id
        .expect("auto grant");
    h.advance(60).await;
    assert_eq!(
        h.engine.grant(bob).await.expect("grant").state,
        GrantState::Revoked
    );

    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (0, 0, 0),
        "{report:?}"
    );

    // Behind writ's back: an account nobody granted, a revoked grant put back by hand,
    // and an active grant's access removed.
    h.target.set_out_of_band("low", "mallory", true);
    h.target.set_out_of_band("low", "bob", true);
    h.target.set_out_of_band("low", "alice", false);

    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(report.entitlements, 3);
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (3, 2, 1),
        "{report:?}"
    );
    assert!(report.errors.is_empty(), "{report:?}");
    // Defaults: report unmanaged, revoke lingering, reapply missing.
    assert!(h.target.holds_now("low", "mallory"));
    assert!(!h.target.holds_now("low", "bob"));
    assert!(h.target.holds_now("low", "alice"));

    let findings = all_findings(&h).await;
    let mallory = find(&findings, "mallory");
    assert_eq!(mallory.finding.kind, FindingKind::Unmanaged);
    assert_eq!(mallory.finding.state, FindingState::Open);
    assert_eq!(mallory.finding.action, DriftAction::Report);
    let lingering = &find(&findings, "bob").finding;
    assert_eq!(lingering.kind, FindingKind::Lingering);
    assert_eq!(lingering.grant_id, Some(bob));
    assert_eq!(lingering.state, FindingState::Resolved);
    assert_eq!(lingering.resolution.as_deref(), Some("revoked"));
    let missing = &find(&findings, "alice").finding;
    assert_eq!(missing.kind, FindingKind::Missing);
    assert_eq!(missing.grant_id, Some(alice));
    assert_eq!(missing.resolution.as_deref(), Some("reapplied"));

    // The same drift seen again is the same finding, seen later; nothing new is ledgered.
    let events = h.store.last_event_seq().await.expect("seq");
    h.clock.advance_seconds(30);
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (0, 0, 1),
        "{report:?}"
    );
    assert_eq!(h.store.last_event_seq().await.expect("seq"), events);
    let again = h.engine.finding(mallory.finding.id).await.expect("finding");
    assert_eq!(again.finding, mallory.finding);
    assert_eq!(again.last_seen_at, mallory.last_seen_at.plus_seconds(30));

    // Removed by hand: the finding is resolved as gone.
    h.target.set_out_of_band("low", "mallory", false);
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (0, 1, 0),
        "{report:?}"
    );
    let gone = h.engine.finding(mallory.finding.id).await.expect("finding");
    assert_eq!(gone.finding.state, FindingState::Resolved);
    assert_eq!(gone.finding.resolution.as_deref(), Some("gone"));
    h.finish().await;
}

writ_testkit::on_both_backends!(drift_is_found_classified_and_acted_on);

#[tokio::test]
async fn configured_actions_replace_the_defaults() {
    // t/high: on_unmanaged = "revoke", on_missing = "report".
    let h = Harness::new(Storage::Sqlite).await;
    h.target.set_out_of_band("high", "eve", true);
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!((report.opened, report.resolved), (1, 1), "{report:?}");
    assert!(!h.target.holds_now("high", "eve"));
    let findings = all_findings(&h).await;
    assert_eq!(
        find(&findings, "eve").finding.resolution.as_deref(),
        Some("revoked")
    );
    h.finish().await;
}

#[tokio::test]
async fn an_unreachable_target_resolves_nothing_and_says_why() {
    let h = Harness::new(Storage::Sqlite).await;
    h.target.set_out_of_band("low", "mallory", true);
    h.engine.reconcile("t").await.expect("pass");
    h.target
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(report.errors.len(), 3, "one per entitlement: {report:?}");
    assert!(report.errors[0].contains("unreachable"), "{report:?}");
    assert_eq!(report.resolved, 0);
    let findings = all_findings(&h).await;
    assert_eq!(find(&findings, "mallory").finding.state, FindingState::Open);
    let error = h
        .engine
        .reconcile("nope")
        .await
        .expect_err("unknown target");
    assert_eq!(error.kind(), ErrorKind::NotFound);
    h.finish().await;
}

#[tokio::test]
async fn a_failed_action_is_retried_on_the_next_pass() {
    let h = Harness::new(Storage::Sqlite).await;
    let alice = h
        .engine
        .create_request(&caller("alice"), low(600))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    h.target.set_out_of_band("low", "alice", false);
    // The target applies the reapply but the answer is lost: writ cannot know it worked.
    h.target
        .lose_answers
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let report = h.engine.reconcile("t").await.expect("pass");
    h.target
        .lose_answers
        .store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (1, 0, 1),
        "{report:?}"
    );
    let open = all_findings(&h).await;
    let missing = find(&open, "alice");
    assert_eq!(missing.finding.grant_id, Some(alice));
    assert!(
        missing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("connection lost")),
        "{missing:?}"
    );
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (0, 1, 0),
        "{report:?}"
    );
    assert!(h.target.holds_now("low", "alice"));
    let resolved = h.engine.finding(missing.finding.id).await.expect("finding");
    assert_eq!(
        resolved.finding.resolution.as_deref(),
        Some("gone"),
        "the lost reapply had worked"
    );
    h.finish().await;
}

fn exception(owner: &str, reason: &str, expires_at: writ_domain::Timestamp) -> NewException {
    NewException {
        owner: owner.into(),
        reason: reason.into(),
        expires_at,
    }
}

async fn exceptions_need_an_owner_an_expiry_and_reopen_when_they_expire(storage: Storage) {
    let h = Harness::new(storage).await;
    // t/critical: owners = "sec" (erin); unmanaged access is reported.
    h.target.set_out_of_band("critical", "svc_legacy", true);
    h.engine.reconcile("t").await.expect("pass");
    let id = find(&all_findings(&h).await, "svc_legacy").finding.id;
    let now = h.clock.now();
    let in_an_hour = now.plus_seconds(3600);

    let refused = [
        (
            "alice",
            exception("erin", "legacy job", in_an_hour),
            ErrorKind::Forbidden,
        ),
        (
            "erin",
            exception("erin", "legacy job", now),
            ErrorKind::Unprocessable,
        ),
        (
            "erin",
            exception("erin", "legacy job", now.plus_seconds(400 * 86_400)),
            ErrorKind::Unprocessable,
        ),
        (
            "erin",
            exception("nobody", "legacy job", in_an_hour),
            ErrorKind::Unprocessable,
        ),
        (
            "erin",
            exception("erin", "  ", in_an_hour),
            ErrorKind::Unprocessable,
        ),
    ];
    let events = h.store.last_event_seq().await.expect("seq");
    for (who, new, kind) in refused {
        let error = h
            .engine
            .accept_finding(&caller(who), id, new)
            .await
            .expect_err("refused");
        assert_eq!(error.kind(), kind, "{error}");
    }
    assert_eq!(
        h.store.last_event_seq().await.expect("seq"),
        events,
        "refusals change nothing"
    );

    let accepted = h
        .engine
        .accept_finding(
            &caller("erin"),
            id,
            exception("dave", "legacy batch job, ticket OPS-7", in_an_hour),
        )
        .await
        .expect("accepted");
    assert_eq!(accepted.finding.state, FindingState::Accepted);
    let recorded = accepted.finding.exception.clone().expect("exception");
    assert_eq!(
        (recorded.owner.as_str(), recorded.accepted_by.as_str()),
        ("dave", "erin")
    );
    let twice = h
        .engine
        .accept_finding(&caller("erin"), id, exception("dave", "again", in_an_hour))
        .await
        .expect_err("already accepted");
    assert_eq!(twice.kind(), ErrorKind::Conflict);

    // Passes leave an accepted finding alone while the difference stands.
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(
        (report.opened, report.resolved, report.unresolved),
        (0, 0, 1)
    );
    h.advance(3599).await;
    assert_eq!(
        h.engine.finding(id).await.expect("finding").finding.state,
        FindingState::Accepted
    );
    h.advance(1).await;
    let reopened = h.engine.finding(id).await.expect("finding").finding;
    assert_eq!(reopened.state, FindingState::Open, "the exception expired");
    assert_eq!(
        reopened.exception,
        Some(recorded),
        "the expired exception stays on record"
    );
    h.finish().await;
}

writ_testkit::on_both_backends!(exceptions_need_an_owner_an_expiry_and_reopen_when_they_expire);
