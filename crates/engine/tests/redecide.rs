//! Live grants decided again when the policy changes: kept, shortened, revoked
//! (`no_longer_permitted`), or flagged for their owners (`on_policy_change = "review"`),
//! each batch on the ledger with the policy ids and hash.

mod harness;

use harness::{Harness, POLICY, Storage, caller};
use serde_json::Value;
use writ_domain::ledger::{Actor, EventKind, SystemActor};
use writ_domain::lifecycle::GrantState;
use writ_domain::{Clock, FindingKind, FindingState, GrantId, RevokeReason};
use writ_engine::{NewRequest, Occasion};
use writ_store::FindingFilter;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"

[[entitlement]]
id = "t/low"
target = "t"
role = "low"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/high"
target = "t"
role = "high"
sensitivity = "high"
max_duration = "1h"

[[entitlement]]
id = "t/reviewed"
target = "t"
role = "reviewed"
sensitivity = "low"
max_duration = "1h"
owners = "sec"
on_policy_change = "review"

[[user]]
name = "erin"
groups = ["sec"]

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dave"

[[user]]
name = "dave"
"#;

/// The harness's policies, with low access capped at 10 minutes instead of 30, high
/// access needing two approvals instead of one, and low access on `t/reviewed` denied.
fn stricter() -> String {
    POLICY
        .replace(r#"@max_duration("30m")"#, r#"@max_duration("10m")"#)
        .replace(
            r#"@id("high-approval")
@approvals("1")"#,
            r#"@id("high-approval")
@approvals("2")"#,
        )
        + r#"
@id("no-reviewed")
forbid (principal, action == Action::"request", resource == Entitlement::"t/reviewed");
"#
}

fn ask(entitlement: &str, minutes: i64) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        duration_seconds: Some(minutes * 60),
        justification: "work".into(),
        ..NewRequest::default()
    }
}

async fn granted(h: &Harness, entitlement: &str, minutes: i64) -> GrantId {
    let request = h
        .engine
        .create_request(&caller("alice"), ask(entitlement, minutes))
        .await
        .expect("request");
    let request = match request.grant_id {
        Some(_) => request,
        None => h
            .engine
            .approve(&caller("dave"), request.id, "ok".into())
            .await
            .expect("dave approves"),
    };
    let id = request.grant_id.expect("granted");
    h.scheduler.run_due().await.expect("pass");
    assert_eq!(
        h.engine.grant(id).await.expect("grant").state,
        GrantState::Active
    );
    id
}

async fn redecisions(h: &Harness) -> Vec<Value> {
    h.store
        .events(0, 10_000)
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.kind == EventKind::GrantsRedecided)
        .map(|e| {
            assert_eq!(e.actor, Actor::System(SystemActor::Policy));
            serde_json::from_str(&e.data).expect("json")
        })
        .collect()
}

async fn not_permitted(h: &Harness) -> Vec<writ_domain::FindingReport> {
    h.engine
        .findings(FindingFilter {
            kind: Some(FindingKind::NotPermitted),
            ..FindingFilter::default()
        })
        .await
        .expect("findings")
        .items
}

async fn a_policy_change_decides_every_live_grant_again(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let low = granted(&h, "t/low", 30).await;
    let high = granted(&h, "t/high", 60).await;
    let reviewed = granted(&h, "t/reviewed", 30).await;
    let admin = Actor::Identity("erin".parse().expect("name"));

    h.write_policy(&stricter());
    let reloaded = h.engine.reload_policy(&admin).await.expect("reload");
    let redecided = reloaded.redecided.expect("decided again");
    assert_eq!(
        (
            redecided.grants,
            redecided.kept,
            redecided.shortened,
            redecided.revoked,
            redecided.flagged
        ),
        (3, 0, 1, 1, 1),
        "{redecided:?}"
    );

    // Low access: still permitted, for the 10 minutes policy now allows.
    let now = h.clock.now();
    let low_grant = h.engine.grant(low).await.expect("grant");
    assert_eq!(low_grant.state, GrantState::Active);
    assert_eq!(low_grant.expires_at, now.plus_seconds(600));

    // High access had one approval; policy now wants two: revoked and verified gone.
    h.scheduler.run_due().await.expect("pass");
    let high_grant = h.engine.grant(high).await.expect("grant");
    assert_eq!(high_grant.state, GrantState::Revoked);
    assert_eq!(
        high_grant.revoke_reason,
        Some(RevokeReason::NoLongerPermitted)
    );
    assert_eq!(high_grant.revoked_by, None, "writ revoked it, not a person");
    assert!(!h.target.holds_now("high", "alice"));

    // The reviewed entitlement keeps its grant and asks its owners.
    assert_eq!(
        h.engine.grant(reviewed).await.expect("grant").state,
        GrantState::Active
    );
    assert!(h.target.holds_now("reviewed", "alice"));
    let flagged = not_permitted(&h).await;
    assert_eq!(flagged.len(), 1);
    assert_eq!(flagged[0].finding.grant_id, Some(reviewed));
    assert_eq!(flagged[0].finding.state, FindingState::Open);

    // The ledger names every outcome, its policies and the new policy-set hash.
    let events = redecisions(&h).await;
    let batch = events.last().expect("a redecision event");
    assert_eq!(batch["occasion"], Occasion::PolicyReloaded.as_str());
    assert_eq!(batch["policy_hash"], reloaded.policy_hash);
    let outcome = |id: GrantId| {
        batch["grants"]
            .as_array()
            .expect("grants")
            .iter()
            .find(|g| g["grant_id"] == id.to_string())
            .cloned()
            .expect("an outcome for each grant")
    };
    assert_eq!(outcome(low)["outcome"], "shortened");
    assert_eq!(outcome(low)["policies"], serde_json::json!(["low-auto"]));
    assert_eq!(outcome(high)["outcome"], "no_longer_permitted");
    assert_eq!(
        outcome(high)["policies"],
        serde_json::json!(["high-approval"])
    );
    assert_eq!(outcome(reviewed)["outcome"], "review");
    assert_eq!(
        outcome(reviewed)["policies"],
        serde_json::json!(["no-reviewed"])
    );

    // Deciding again under the same set changes nothing more.
    let again = h
        .engine
        .redecide_grants(Occasion::Start, None)
        .await
        .expect("again");
    assert_eq!((again.grants, again.kept, again.flagged), (2, 1, 1));
    assert_eq!(not_permitted(&h).await.len(), 1, "one finding per grant");

    // The old set back: the flagged grant is permitted again and its finding resolved.
    h.write_policy(POLICY);
    h.engine.reload_policy(&admin).await.expect("reload");
    let finding = &not_permitted(&h).await[0].finding;
    assert_eq!(finding.state, FindingState::Resolved);
    assert_eq!(finding.resolution.as_deref(), Some("permitted"));

    // The shortened lease ends at its new end, as an expiry.
    h.advance(600).await;
    let low_grant = h.engine.grant(low).await.expect("grant");
    assert_eq!(low_grant.state, GrantState::Revoked);
    assert_eq!(low_grant.revoke_reason, Some(RevokeReason::Expired));
    h.finish().await;
}

writ_testkit::on_both_backends!(a_policy_change_decides_every_live_grant_again);

/// A restart on the basis the live grants were last decided on (the same policies and
/// configuration: a rolling restart of several nodes) decides nothing again; a restart
/// on another basis decides them all.
async fn a_restart_on_the_same_basis_decides_nothing_again(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    granted(&h, "t/low", 30).await;
    let first = h.engine.redecide_at_start().await.expect("first start");
    assert_eq!(
        first.map(|r| r.grants),
        Some(1),
        "nothing recorded yet: decided"
    );
    let recorded = redecisions(&h).await.len();
    assert_eq!(h.engine.redecide_at_start().await.expect("restart"), None);
    assert_eq!(
        redecisions(&h).await.len(),
        recorded,
        "nothing decided again"
    );
    // Decided last on another basis (say, a node with other policies): decided again.
    let mut tx = h.store.begin().await.expect("begin");
    tx.set_decision_basis("another basis", h.engine.now())
        .await
        .expect("basis");
    tx.commit().await.expect("commit");
    let again = h.engine.redecide_at_start().await.expect("start");
    assert_eq!(again.map(|r| r.grants), Some(1));
    assert_eq!(redecisions(&h).await.len(), recorded + 1);
    h.finish().await;
}

writ_testkit::on_both_backends!(a_restart_on_the_same_basis_decides_nothing_again);

/// Re-deciding one person's grants touches nobody else's, and a batch of many grants
/// pages through them all.
#[tokio::test]
async fn many_grants_and_one_subject() {
    let config = CONFIG.to_string()
        + r#"
[[user]]
name = "bob"
groups = ["engineers"]
"#;
    let h = Harness::with(Storage::Sqlite, &config, POLICY).await;
    let mut ids = Vec::new();
    for _ in 0..1_200 {
        let request = h
            .engine
            .create_request(&caller("alice"), ask("t/low", 20))
            .await
            .expect("request");
        ids.push(request.grant_id.expect("auto"));
    }
    let bob = h
        .engine
        .create_request(&caller("bob"), ask("t/low", 20))
        .await
        .expect("request")
        .grant_id
        .expect("auto");
    h.scheduler.run_due().await.expect("pass");

    let only_bob = h
        .engine
        .redecide_grants(Occasion::IdentityChanged, Some("bob"))
        .await
        .expect("bob");
    assert_eq!(only_bob.grants, 1);

    h.write_policy(&stricter());
    let redecided = h
        .engine
        .reload_policy(&Actor::System(SystemActor::Signal))
        .await
        .expect("reload")
        .redecided
        .expect("decided again");
    assert_eq!((redecided.grants, redecided.shortened), (1_201, 1_201));
    assert!(redecisions(&h).await.len() >= 3, "one event per batch");
    let end = h.engine.grant(bob).await.expect("bob").expires_at;
    for id in ids {
        assert_eq!(h.engine.grant(id).await.expect("grant").expires_at, end);
    }
    h.finish().await;
}
