//! Expiry, retries and pending-request expiry, with a manual clock, on both storage backends.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{Clock, RevokeReason};
use writ_engine::ErrorCode;
use writ_engine::NewRequest;
use writ_store::JobKind;

fn low(seconds: i64) -> NewRequest {
    NewRequest {
        entitlement: "t/low".into(),
        duration_seconds: Some(seconds),
        justification: "test".into(),
        ..NewRequest::default()
    }
}

async fn expiry_revokes_and_verifies(storage: Storage) {
    let h = Harness::new(storage).await;
    let request = h
        .engine
        .create_request(&caller("alice"), low(60))
        .await
        .expect("request");
    let grant_id = request.grant_id.expect("auto grant");
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Active
    );
    assert!(h.target.holds_now("low", "alice"));

    h.advance(59).await;
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Active
    );
    h.advance(1).await;
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(grant.state, GrantState::Revoked);
    assert_eq!(
        grant.verified_at,
        Some(grant.expires_at),
        "revoked the instant it expired (manual clock)"
    );
    assert!(!h.target.holds_now("low", "alice"));
    h.finish().await;
}

writ_testkit::on_both_backends!(expiry_revokes_and_verifies);

/// Nobody can state the reason writ records for an expiry: an early revocation never
/// reads as one on the ledger, nor counts in the revocation-lag metric.
#[tokio::test]
async fn an_early_revocation_cannot_claim_to_be_an_expiry() {
    let h = Harness::new(Storage::Sqlite).await;
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(60))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    for reserved in [
        "expired",
        " expired ",
        "expired before it was observed on the target",
    ] {
        let refused = h
            .engine
            .revoke_grant(&caller("alice"), grant_id, reserved.to_string())
            .await
            .expect_err(reserved);
        assert_eq!(refused.code, ErrorCode::InvalidReason, "{refused}");
    }
    let revoked = h
        .engine
        .revoke_grant(
            &caller("alice"),
            grant_id,
            "expired: no longer needed".into(),
        )
        .await
        .expect("revoked");
    assert_eq!(
        revoked.revoke_reason,
        Some(RevokeReason::Stated("expired: no longer needed".into()))
    );
    h.finish().await;
}

/// A job row writ did not write (its id names no record of its kind) is put off, never
/// guessed at, and does not hold up the jobs due beside it.
#[tokio::test]
async fn a_job_whose_id_cannot_be_read_is_put_off_and_the_others_still_run() {
    let h = Harness::new(Storage::Sqlite).await;
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(10))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    let due = h.clock.now().plus_seconds(5);
    let mut tx = h.store.begin().await.expect("begin");
    for (id, kind) in [
        ("not-a-grant", JobKind::RevokeGrant),
        ("grt_0", JobKind::ApplyGrant),
        ("req_zz", JobKind::ExpireRequest),
        ("", JobKind::ExpireException),
    ] {
        tx.set_job(id, kind, due).await.expect("job");
    }
    tx.commit().await.expect("commit");

    h.advance(10).await;
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Revoked,
        "the lease beside them expired on time"
    );
    for id in ["not-a-grant", "grt_0", "req_zz", ""] {
        let job = h.store.job(id).await.expect("read").expect("kept");
        assert!(job.task().is_err(), "{id:?}");
        assert!(job.due_at > h.clock.now(), "{id:?} was put off: {job:?}");
    }
    h.finish().await;
}

async fn failed_revocations_are_retried_with_backoff_until_they_succeed(storage: Storage) {
    let h = Harness::new(storage).await;
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(10))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    h.target
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.advance(10).await;
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(grant.state, GrantState::Failed);
    let job = h
        .engine
        .grant_job(grant_id)
        .await
        .expect("job")
        .expect("a retry is scheduled");
    assert_eq!(job.attempts, 1);
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("unreachable")),
        "{job:?}"
    );

    // Backoff 1s, 2s, 4s, 8s, then capped at 8s: attempts keep coming, none is dropped.
    // Still failing 30 s after it started (escalate_after), it is escalated, once.
    let mut attempts = 1;
    let mut escalated_at = None;
    for second in 1..=40 {
        h.advance(1).await;
        let job = h
            .engine
            .grant_job(grant_id)
            .await
            .expect("job")
            .expect("still scheduled");
        attempts = job.attempts;
        if second < 30 {
            assert_eq!(job.escalated_at, None, "not yet escalated at {second}s");
        } else if escalated_at.is_none() {
            escalated_at = job.escalated_at;
        }
    }
    let escalated_at = escalated_at.expect("escalated after 30 s of failing");
    let escalations: Vec<_> = h
        .store
        .events(0, 1000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == EventKind::GrantRevokeEscalated)
        .collect();
    assert_eq!(escalations.len(), 1, "escalated once, whatever the retries");
    assert_eq!(escalations[0].at, escalated_at);
    // The last error: the target's own, or the open circuit breaker that spares it.
    let data = &escalations[0].data;
    assert!(
        data.contains("unreachable") || data.contains("circuit open"),
        "{data}"
    );
    assert!(
        (6..=10).contains(&attempts),
        "attempts after 40s with capped backoff: {attempts}"
    );
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Failed
    );

    h.target
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.advance(8).await;
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(grant.state, GrantState::Revoked);
    assert!(!h.target.holds_now("low", "alice"));
    assert!(h.engine.grant_job(grant_id).await.expect("job").is_none());
    h.finish().await;
}

writ_testkit::on_both_backends!(failed_revocations_are_retried_with_backoff_until_they_succeed);

#[tokio::test]
async fn a_grant_the_target_refuses_stays_pending_and_is_applied_when_it_recovers() {
    let h = Harness::new(Storage::Sqlite).await;
    h.target
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(600))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Pending
    );
    h.target
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.advance(2).await;
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Active
    );
    assert!(h.target.holds_now("low", "alice"));
    h.finish().await;
}

#[tokio::test]
async fn pending_requests_expire_after_the_approval_window() {
    let h = Harness::new(Storage::Sqlite).await;
    let high = NewRequest {
        entitlement: "t/high".into(),
        duration_seconds: Some(60),
        justification: "x".into(),
        ..NewRequest::default()
    };
    let request = h
        .engine
        .create_request(&caller("alice"), high)
        .await
        .expect("request");
    assert_eq!(request.state, RequestState::PendingApproval);
    h.advance(3599).await;
    assert_eq!(
        h.engine.request(request.id).await.expect("request").state,
        RequestState::PendingApproval
    );
    h.advance(1).await;
    assert_eq!(
        h.engine.request(request.id).await.expect("request").state,
        RequestState::Expired
    );
    let refused = h
        .engine
        .approve(&caller("dave"), request.id, String::new())
        .await;
    assert_eq!(refused.map_err(|e| e.code), Err(ErrorCode::NotPending));
    h.finish().await;
}

#[tokio::test]
async fn policy_caps_the_duration() {
    let h = Harness::new(Storage::Sqlite).await;
    let request = h
        .engine
        .create_request(&caller("alice"), low(7200))
        .await
        .expect("request");
    assert_eq!(request.requested_duration_seconds, 7200);
    assert_eq!(
        request.duration_seconds, 1800,
        "@max_duration(\"30m\") is stricter than the entitlement's 1h"
    );
    h.finish().await;
}

#[tokio::test]
async fn calls_with_unknown_outcomes_are_rechecked_not_believed() {
    let h = Harness::new(Storage::Sqlite).await;
    h.target
        .lose_answers
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(30))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(
        grant.state,
        GrantState::Active,
        "the grant landed although its answer was lost; the read-back shows it"
    );
    assert!(grant.granted_at.is_some());

    h.advance(30).await;
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(
        grant.state,
        GrantState::Revoked,
        "the revocation landed although its answer was lost"
    );
    assert!(!h.target.holds_now("low", "alice"));
    h.finish().await;
}

async fn concurrent_writers_share_commits_and_keep_one_chain(storage: Storage) {
    let h = Harness::new(storage).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let engine = h.engine.clone();
        tasks.push(tokio::spawn(async move {
            let user = if i % 2 == 0 { "alice" } else { "bob" };
            engine.create_request(&caller(user), low(600)).await
        }));
    }
    for task in tasks {
        let request = task
            .await
            .expect("task")
            .expect("every concurrent request is recorded");
        assert_eq!(request.state, RequestState::Approved);
    }
    let grants = h
        .engine
        .grants(writ_store::GrantFilter::default())
        .await
        .expect("grants")
        .items;
    assert_eq!(grants.len(), 200);
    assert!(grants.iter().all(|g| g.state == GrantState::Active));
    // 200 × (request.created, grant.created, grant.activated), one unbroken chain.
    let report = h.store.verify().await.expect("the ledger verifies");
    assert_eq!(report.events, 600);
    let (writes, commits) = h.store.commit_counts();
    assert!(writes >= 400, "{writes} write transactions");
    assert!(
        commits < writes,
        "queued writers share database commits: {commits} commits for {writes} writes"
    );
    h.finish().await;
}

writ_testkit::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_writers_share_commits_and_keep_one_chain
);

#[tokio::test]
async fn a_job_that_cannot_move_is_deferred_not_spun_on() {
    let h = Harness::new(Storage::Sqlite).await;
    let grant_id = h
        .engine
        .create_request(&caller("alice"), low(10))
        .await
        .expect("request")
        .grant_id
        .expect("grant");
    h.advance(10).await;
    assert_eq!(
        h.engine.grant(grant_id).await.expect("grant").state,
        GrantState::Revoked
    );
    // A stale job for a grant that is already revoked (as a bug or a hand edit might leave).
    let mut tx = h.store.begin().await.expect("begin");
    tx.set_job(
        &grant_id.to_string(),
        writ_store::JobKind::RevokeGrant,
        writ_domain::Clock::now(h.clock.as_ref()),
    )
    .await
    .expect("job");
    tx.commit().await.expect("commit");
    h.advance(1).await;
    let job = h
        .engine
        .grant_job(grant_id)
        .await
        .expect("job")
        .expect("still there, put off");
    assert_eq!(job.attempts, 1);
    assert!(
        job.due_at > writ_domain::Clock::now(h.clock.as_ref()),
        "deferred into the future"
    );
    assert!(
        job.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no progress"))
    );
    h.finish().await;
}

fn ask(entitlement: &str) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        duration_seconds: Some(600),
        justification: "test".into(),
        ..NewRequest::default()
    }
}

#[tokio::test]
async fn each_approver_counts_once_and_never_for_their_own_request() {
    let h = Harness::new(Storage::Sqlite).await;
    let request = h
        .engine
        .create_request(&caller("alice"), ask("t/critical"))
        .await
        .expect("request");
    assert_eq!(request.decision.approvals_required, 2);
    let code = |result: Result<writ_domain::Request, writ_engine::EngineError>| {
        result.map(|r| r.state).map_err(|e| e.code)
    };

    assert_eq!(
        code(
            h.engine
                .approve(&caller("alice"), request.id, String::new())
                .await
        ),
        Err(ErrorCode::SelfApproval)
    );
    assert_eq!(
        code(
            h.engine
                .approve(&caller("bob"), request.id, String::new())
                .await
        ),
        Err(ErrorCode::NotAnApprover)
    );
    assert_eq!(
        code(
            h.engine
                .approve(&caller("dave"), request.id, "manager".into())
                .await
        ),
        Ok(RequestState::PendingApproval)
    );
    assert_eq!(
        code(
            h.engine
                .approve(&caller("dave"), request.id, "again".into())
                .await
        ),
        Err(ErrorCode::AlreadyApproved)
    );
    assert!(
        !h.target.holds_now("critical", "alice"),
        "one approval of two grants nothing"
    );
    let approved = h
        .engine
        .approve(&caller("erin"), request.id, "owner".into())
        .await
        .expect("second approval");
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(
        approved
            .approvals
            .iter()
            .map(|a| a.approver.to_string())
            .collect::<Vec<_>>(),
        ["dave", "erin"]
    );
    assert!(h.target.holds_now("critical", "alice"));
    h.finish().await;
}

#[tokio::test]
async fn rejection_and_cancellation_close_a_request_without_access() {
    let h = Harness::new(Storage::Sqlite).await;
    let rejected = h
        .engine
        .create_request(&caller("alice"), ask("t/high"))
        .await
        .expect("request");
    assert_eq!(
        h.engine
            .reject(&caller("alice"), rejected.id, String::new())
            .await
            .map_err(|e| e.code)
            .err(),
        Some(ErrorCode::SelfApproval)
    );
    let closed = h
        .engine
        .reject(&caller("dave"), rejected.id, "not now".into())
        .await
        .expect("reject");
    assert_eq!(closed.state, RequestState::Rejected);
    assert_eq!(closed.close_comment.as_deref(), Some("not now"));
    assert_eq!(
        h.engine
            .approve(&caller("dave"), rejected.id, String::new())
            .await
            .map_err(|e| e.code)
            .err(),
        Some(ErrorCode::NotPending)
    );

    let cancelled = h
        .engine
        .create_request(&caller("alice"), ask("t/high"))
        .await
        .expect("request");
    assert_eq!(
        h.engine
            .cancel(&caller("bob"), cancelled.id)
            .await
            .map_err(|e| e.code)
            .err(),
        Some(ErrorCode::NotTheRequester)
    );
    assert_eq!(
        h.engine
            .cancel(&caller("alice"), cancelled.id)
            .await
            .expect("cancel")
            .state,
        RequestState::Cancelled
    );
    assert_eq!(
        h.engine
            .cancel(&caller("alice"), cancelled.id)
            .await
            .map_err(|e| e.code)
            .err(),
        Some(ErrorCode::NotPending)
    );

    assert!(!h.target.holds_now("high", "alice"));
    assert!(
        h.engine
            .grants(writ_store::GrantFilter::default())
            .await
            .expect("grants")
            .items
            .is_empty()
    );
    h.finish().await;
}

async fn a_burst_of_expiries_is_revoked_in_batches_each_exactly_once(storage: Storage) {
    let h = Harness::new(storage).await;
    // Ten overlapping leases each for alice and bob, all ending at the same instant.
    let mut grants = Vec::new();
    for _ in 0..10 {
        for who in ["alice", "bob"] {
            let request = h
                .engine
                .create_request(&caller(who), low(60))
                .await
                .expect("request");
            grants.push(request.grant_id.expect("grant"));
        }
    }
    assert!(h.target.holds_now("low", "alice") && h.target.holds_now("low", "bob"));
    h.advance(60).await;
    let mut removed = 0;
    for id in &grants {
        let grant = h.engine.grant(*id).await.expect("grant");
        assert_eq!(grant.state, GrantState::Revoked, "{grant:?}");
        assert_eq!(grant.verified_at, Some(grant.expires_at));
        if grant.retained_by.is_none() {
            removed += 1;
        }
    }
    assert_eq!(
        removed, 2,
        "each account's access removed once, by its last lease"
    );
    assert!(!h.target.holds_now("low", "alice") && !h.target.holds_now("low", "bob"));
    let revoked_events = h
        .store
        .events(0, 10_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == EventKind::GrantRevoked)
        .count();
    assert_eq!(
        revoked_events,
        grants.len(),
        "exactly one grant.revoked per grant"
    );
    h.finish().await;
}

writ_testkit::on_both_backends!(a_burst_of_expiries_is_revoked_in_batches_each_exactly_once);

#[tokio::test]
async fn an_open_circuit_defers_revocations_until_the_target_is_back() {
    // The harness target: 5 failures in a row open the circuit for 5 s.
    let h = Harness::new(Storage::Sqlite).await;
    let mut grants = Vec::new();
    for who in ["alice", "bob"] {
        for _ in 0..4 {
            let request = h
                .engine
                .create_request(&caller(who), low(10))
                .await
                .expect("request");
            grants.push(request.grant_id.expect("grant"));
        }
    }
    h.target
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    h.advance(10).await;
    let calls = || h.target.calls.load(std::sync::atomic::Ordering::SeqCst);
    let engine = h.engine.clone();
    let job = move |id| {
        let engine = engine.clone();
        async move { engine.grant_job(id).await.expect("job") }
    };
    let last_error =
        |job: Option<writ_store::Job>| job.and_then(|j| j.last_error).unwrap_or_default();
    // Retries fail against the target until five in a row open the circuit.
    for _ in 0..10 {
        if last_error(job(grants[3]).await).contains("circuit open") {
            break;
        }
        h.advance(1).await;
    }
    let error = last_error(job(grants[3]).await);
    assert!(error.contains("circuit open"), "{error}");
    let after_opening = calls();
    let attempts = |job: Option<writ_store::Job>| job.map_or(0, |j| j.attempts);
    let before = attempts(job(grants[3]).await);
    // Retries keep being scheduled and recorded while the circuit spares the target
    // (that no call is made while it is open is shown in target_guard's own tests).
    h.advance(8).await;
    assert!(attempts(job(grants[3]).await) > before);
    // After the cooldown, with the target back, everything is revoked.
    h.target
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..10 {
        h.advance(2).await;
    }
    assert!(calls() > after_opening);
    for id in grants {
        assert_eq!(
            h.engine.grant(id).await.expect("grant").state,
            GrantState::Revoked
        );
    }
    assert!(!h.target.holds_now("low", "alice") && !h.target.holds_now("low", "bob"));
    h.finish().await;
}
