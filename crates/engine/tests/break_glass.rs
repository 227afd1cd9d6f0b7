//! Break-glass: granted at once and only as policy permits, all of a profile or none,
//! loud, and reviewed afterwards by someone who is neither the activator nor their
//! subordinate, within a deadline; an overdue review stops the next activation.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{Clock as _, IdentityKind, ReviewState};
use writ_engine::{BreakGlass, Caller, ErrorCode};
use writ_store::ActivationFilter;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/root"
target = "t"
role = "root"
sensitivity = "critical"
max_duration = "4h"
owners = "dba"

[[entitlement]]
id = "t/logs"
target = "t"
role = "logs"
sensitivity = "low"
max_duration = "8h"

[[entitlement]]
id = "t/payroll"
target = "t"
role = "payroll"
sensitivity = "critical"
max_duration = "1h"

[[notify]]
name = "pager"
url = "https://pager.example/writ"
events = ["grant.revoked"]

[[break_glass]]
name = "db-outage"
entitlements = ["t/root", "t/logs"]
max_duration = "1h"
notify = ["pager"]
review_within = "2h"

[[break_glass]]
name = "payroll"
entitlements = ["t/logs", "t/payroll"]
max_duration = "30m"

[[break_glass]]
name = "lenient"
entitlements = ["t/logs"]
max_duration = "30m"
allow_with_overdue_review = true

[[user]]
name = "olive"
groups = ["oncall"]
manager = "dora"

[[user]]
name = "dora"
groups = ["dba"]

[[user]]
name = "sam"
groups = ["dba"]
manager = "olive"

[[user]]
name = "erin"
groups = ["dba"]

[[user]]
name = "mallory"
groups = ["engineers"]

[[agent]]
name = "fixer"
owner = "olive"
groups = ["oncall"]
"#;

const POLICY: &str = r#"
@id("oncall-breaks-glass")
@max_duration("45m")
permit (principal in Group::"oncall", action == Action::"break_glass", resource);

@id("never-payroll")
@reason("payroll is never broken into")
forbid (principal, action == Action::"break_glass", resource == Entitlement::"t/payroll");

@id("dba-approve")
permit (principal in Group::"dba", action == Action::"approve", resource);
"#;

fn agent(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::Agent)
}

fn asked(justification: &str) -> BreakGlass {
    BreakGlass {
        justification: justification.into(),
        ..BreakGlass::default()
    }
}

async fn grants_and_reviews(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let olive = caller("olive");
    let started = h.clock.now();

    // Granted at once, both entitlements, capped by policy (45m) under the profile (1h).
    let activated = h
        .engine
        .break_glass(&olive, "db-outage", asked("primary down, INC-7"))
        .await
        .expect("activated");
    let activation = &activated.activation;
    assert_eq!(activated.requests.len(), 2);
    for request in &activated.requests {
        assert_eq!(request.state, RequestState::Approved);
        assert!(request.approvals.is_empty());
        assert_eq!(request.duration_seconds, 45 * 60);
        assert_eq!(
            request.break_glass.as_ref().map(|m| m.activation),
            Some(activation.id)
        );
        let grant = h
            .engine
            .grant(request.grant_id.expect("grant"))
            .await
            .expect("grant");
        assert_eq!(grant.state, GrantState::Active, "applied inline");
    }
    assert!(h.target.holds_now("root", "olive") && h.target.holds_now("logs", "olive"));
    assert_eq!(activation.review_state, ReviewState::Open);
    assert_eq!(activation.review_due_at, started.plus_seconds(2 * 3600));

    // Its own ledger event, carrying whom to tell; the filtered sink now hears of it.
    let events = h.store.events(0, 100).await.expect("events");
    let event = events
        .iter()
        .find(|e| e.kind == writ_domain::ledger::EventKind::BreakGlassActivated)
        .expect("activation event");
    let data: serde_json::Value = serde_json::from_str(&event.data).expect("json");
    assert_eq!(data["notify"], serde_json::json!(["pager"]));
    assert!(h.engine.config().notify["pager"].wants("break_glass.activated"));

    // Who may not sign off: the activator; their subordinate (sam reports to olive);
    // someone no approve policy permits; and nobody without a comment.
    let refusals = [
        ("olive", "looked", ErrorCode::SelfReview),
        ("sam", "looked", ErrorCode::SubordinateReview),
        ("mallory", "looked", ErrorCode::NotAnApprover),
        ("erin", "  ", ErrorCode::MissingComment),
    ];
    for (who, comment, code) in refusals {
        let refused = h
            .engine
            .sign_off_activation(&caller(who), activation.id, comment.into())
            .await
            .expect_err(who);
        assert_eq!(refused.code, code, "{who}: {refused}");
    }
    // Who may review finds it in their inbox; who may not does not.
    let inbox = |who: &str| {
        let engine = h.engine.clone();
        let who = caller(who);
        async move {
            engine
                .visible_activations(&who, ActivationFilter::default(), true)
                .await
                .expect("list")
                .items
                .len()
        }
    };
    assert_eq!(
        (
            inbox("erin").await,
            inbox("sam").await,
            inbox("mallory").await
        ),
        (1, 0, 0)
    );

    // Someone else, permitted to approve the access, signs it off.
    let signed = h
        .engine
        .sign_off_activation(
            &caller("erin"),
            activation.id,
            "queries were read-only".into(),
        )
        .await
        .expect("signed off");
    assert_eq!(signed.review_state, ReviewState::SignedOff);
    assert_eq!(signed.reviewer.as_ref().map(|r| r.as_str()), Some("erin"));
    let again = h
        .engine
        .sign_off_activation(&caller("dora"), activation.id, "me too".into())
        .await
        .expect_err("signed already");
    assert_eq!(again.code, ErrorCode::AlreadySignedOff);

    // The leases end as any do.
    h.advance(46 * 60).await;
    for request in &activated.requests {
        let grant = h
            .engine
            .grant(request.grant_id.expect("grant"))
            .await
            .expect("grant");
        assert_eq!(grant.state, GrantState::Revoked);
    }
    assert!(!h.target.holds_now("root", "olive"));
    // A signed-off review is never marked overdue.
    h.advance(3 * 3600).await;
    let after = h
        .engine
        .visible_activation(&olive, activation.id)
        .await
        .expect("own");
    assert_eq!(after.review_state, ReviewState::SignedOff);
    h.finish().await;
}

async fn all_or_nothing_and_only_as_policy_permits(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    // One entitlement of the profile is forbidden: nothing at all is granted.
    let refused = h
        .engine
        .break_glass(&caller("olive"), "payroll", asked("payday"))
        .await
        .expect_err("payroll forbidden");
    assert_eq!(refused.code, ErrorCode::BreakGlassDenied);
    assert!(
        refused.message.contains("payroll is never broken into"),
        "{refused}"
    );
    // Not on call: no permit.
    let refused = h
        .engine
        .break_glass(&caller("mallory"), "db-outage", asked("curious"))
        .await
        .expect_err("no permit");
    assert_eq!(refused.code, ErrorCode::BreakGlassDenied);
    // No profile, no justification, a nonsense duration.
    let cases = [
        ("nope", asked("x"), ErrorCode::NotFound),
        ("db-outage", asked(" "), ErrorCode::MissingJustification),
        (
            "db-outage",
            BreakGlass {
                duration_seconds: Some(0),
                ..asked("x")
            },
            ErrorCode::InvalidDuration,
        ),
    ];
    for (profile, ask, code) in cases {
        let refused = h
            .engine
            .break_glass(&caller("olive"), profile, ask)
            .await
            .expect_err(profile);
        assert_eq!(refused.code, code, "{refused}");
    }
    // An agent says whom it acts for, and may act only for its owner or delegates.
    let fixer = agent("fixer");
    let refused = h
        .engine
        .break_glass(&fixer, "db-outage", asked("auto-remediation"))
        .await
        .expect_err("agent without on_behalf_of");
    assert_eq!(refused.code, ErrorCode::OnBehalfOfRequired);
    let activated = h
        .engine
        .break_glass(
            &fixer,
            "db-outage",
            BreakGlass {
                on_behalf_of: Some("olive".into()),
                ..asked("auto-remediation")
            },
        )
        .await
        .expect("agent for its owner");
    // The user it acted for does not review it either.
    let refused = h
        .engine
        .sign_off_activation(&caller("olive"), activated.activation.id, "fine".into())
        .await
        .expect_err("the user the agent acted for");
    assert_eq!(refused.code, ErrorCode::SelfReview);
    assert!(!h.target.holds_now("payroll", "olive"));
    assert!(
        h.store
            .activations(&ActivationFilter::default())
            .await
            .expect("list")
            .items
            .len()
            == 1
    );
    h.finish().await;
}

async fn an_overdue_review_stops_the_next_activation(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let olive = caller("olive");
    let first = h
        .engine
        .break_glass(&olive, "db-outage", asked("first"))
        .await
        .expect("first");
    // Before the deadline a second activation is fine.
    h.engine
        .break_glass(&olive, "db-outage", asked("second"))
        .await
        .expect("second, reviews still open");
    // Past it, the scheduler records the review overdue.
    h.advance(2 * 3600).await;
    let overdue = h
        .engine
        .visible_activation(&caller("erin"), first.activation.id)
        .await
        .expect("a reviewer sees it");
    assert_eq!(overdue.review_state, ReviewState::Overdue);
    assert!(overdue.overdue_at.is_some());
    let refused = h
        .engine
        .break_glass(&olive, "db-outage", asked("third"))
        .await
        .expect_err("overdue review");
    assert_eq!(refused.code, ErrorCode::BreakGlassReviewOverdue);
    assert!(
        refused.message.contains(&first.activation.id.to_string()),
        "{refused}"
    );
    // A profile that allows it still works; others do not.
    h.engine
        .break_glass(&olive, "lenient", asked("still on fire"))
        .await
        .expect("lenient profile");
    // An agent acting for olive is stopped by olive's overdue review too.
    let fixer = agent("fixer");
    let refused = h
        .engine
        .break_glass(
            &fixer,
            "db-outage",
            BreakGlass {
                on_behalf_of: Some("olive".into()),
                ..asked("agent")
            },
        )
        .await
        .expect_err("the person behind the agent has an overdue review");
    assert_eq!(refused.code, ErrorCode::BreakGlassReviewOverdue);
    // Signing off the overdue ones lets olive break the glass again.
    let pending = h
        .engine
        .visible_activations(&caller("erin"), ActivationFilter::default(), true)
        .await
        .expect("inbox");
    for activation in pending.items {
        h.engine
            .sign_off_activation(&caller("erin"), activation.id, "reviewed late".into())
            .await
            .expect("sign off overdue");
    }
    h.engine
        .break_glass(&olive, "db-outage", asked("fourth"))
        .await
        .expect("reviews signed off");
    h.finish().await;
}

writ_testkit::on_both_backends!(
    grants_and_reviews,
    all_or_nothing_and_only_as_policy_permits,
    an_overdue_review_stops_the_next_activation,
);
