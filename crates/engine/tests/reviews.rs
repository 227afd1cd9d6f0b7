//! Access review campaigns: items for the access in scope, assigned by a rule to
//! reviewers who never review their own access; keep or revoke with a comment,
//! revoke through the verified revocation; reminders; the default at the deadline;
//! and every step replayed by the ledger check at the end of each test.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    Assignment, CampaignScope, CampaignState, Clock as _, FindingState, GrantId, IdentityKind,
    ItemState, ReviewDecision, ReviewItem, ReviewedAccess,
};
use writ_engine::{Caller, ErrorCode, NewCampaign, NewException, NewRequest};
use writ_store::ReviewItemFilter;

const CONFIG: &str = r#"
[access]
admins = ["admins"]

[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/root"
target = "t"
role = "root"
sensitivity = "critical"
max_duration = "30d"
owners = "dba"

[[entitlement]]
id = "t/logs"
target = "t"
role = "logs"
sensitivity = "low"
max_duration = "30d"
owners = "dba"
on_unmanaged = "report"

[[user]]
name = "ada"
groups = ["admins"]

[[user]]
name = "alice"
groups = ["engineers"]
manager = "dora"

[[user]]
name = "bob"
groups = ["engineers"]
manager = "dora"

[[user]]
name = "nomad"
groups = ["engineers"]

[[user]]
name = "dora"
groups = ["dba", "engineers"]

[[user]]
name = "erin"
groups = ["dba"]

[[user]]
name = "mallory"
groups = ["engineers"]

[[agent]]
name = "bot"
owner = "alice"
groups = ["engineers"]
"#;

const POLICY: &str = r#"
@id("engineers-auto")
permit (principal in Group::"engineers", action == Action::"request", resource);

@id("dba-approve")
permit (principal in Group::"dba", action == Action::"approve", resource);
"#;

const DAY: i64 = 86_400;

fn agent(name: &str) -> Caller {
    Caller::new(name.parse().expect("name"), IdentityKind::Agent)
}

async fn grant(
    h: &Harness,
    who: &Caller,
    entitlement: &str,
    on_behalf_of: Option<&str>,
) -> GrantId {
    let request = h
        .engine
        .create_request(
            who,
            NewRequest {
                entitlement: entitlement.into(),
                subject: None,
                duration_seconds: Some(20 * DAY),
                justification: "work".into(),
                ticket: None,
                on_behalf_of: on_behalf_of.map(str::to_string),
                extends: None,
            },
        )
        .await
        .expect("granted");
    let id = request.grant_id.expect("automatic");
    assert_eq!(
        h.engine.grant(id).await.expect("grant").state,
        GrantState::Active
    );
    id
}

fn campaign(name: &str, assignment: Assignment, default_decision: ReviewDecision) -> NewCampaign {
    NewCampaign {
        name: name.into(),
        scope: CampaignScope {
            grants: true,
            ..CampaignScope::default()
        },
        assignment,
        default_decision,
        due_in_seconds: 7 * DAY,
        remind_every_seconds: Some(2 * DAY),
    }
}

async fn items_of(h: &Harness, campaign: writ_domain::CampaignId) -> Vec<ReviewItem> {
    h.store
        .review_items(&ReviewItemFilter {
            campaign: Some(campaign),
            limit: Some(1000),
            ..ReviewItemFilter::default()
        })
        .await
        .expect("items")
        .items
}

fn item_for<'a>(items: &'a [ReviewItem], subject: &str, entitlement: &str) -> &'a ReviewItem {
    items
        .iter()
        .find(|i| {
            i.subject.as_ref().map(|s| s.as_str()) == Some(subject)
                && i.entitlement.as_str() == entitlement
        })
        .unwrap_or_else(|| panic!("no item for {subject} on {entitlement}"))
}

async fn owners_review_their_entitlements(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let alice_root = grant(&h, &caller("alice"), "t/root", None).await;
    let bob_root = grant(&h, &caller("bob"), "t/root", None).await;
    let bot_logs = grant(&h, &agent("bot"), "t/logs", Some("alice")).await;
    grant(&h, &caller("dora"), "t/root", None).await;

    // Only admins start campaigns, and a campaign must make sense.
    let refused = h
        .engine
        .start_campaign(
            &caller("dora"),
            campaign("q1", Assignment::Owners, ReviewDecision::Revoke),
        )
        .await
        .expect_err("not an admin");
    assert_eq!(refused.code, ErrorCode::NotAnAdmin);
    let ada = caller("ada");
    for (bad, why) in [
        (
            NewCampaign {
                name: " ".into(),
                ..campaign("q1", Assignment::Owners, ReviewDecision::Revoke)
            },
            "no name",
        ),
        (
            NewCampaign {
                due_in_seconds: 10,
                ..campaign("q1", Assignment::Owners, ReviewDecision::Revoke)
            },
            "deadline too soon",
        ),
        (
            NewCampaign {
                scope: CampaignScope {
                    target: Some("nowhere".into()),
                    grants: true,
                    ..CampaignScope::default()
                },
                ..campaign("q1", Assignment::Owners, ReviewDecision::Revoke)
            },
            "unknown target",
        ),
        (
            NewCampaign {
                scope: CampaignScope {
                    older_than_days: Some(30),
                    grants: true,
                    ..CampaignScope::default()
                },
                ..campaign("q1", Assignment::Owners, ReviewDecision::Revoke)
            },
            "nothing is that old",
        ),
    ] {
        let refused = h.engine.start_campaign(&ada, bad).await.expect_err(why);
        assert_eq!(refused.code, ErrorCode::InvalidCampaign, "{why}: {refused}");
    }

    let started = h
        .engine
        .start_campaign(
            &ada,
            campaign("q1", Assignment::Owners, ReviewDecision::Revoke),
        )
        .await
        .expect("started");
    let id = started.campaign.id;
    assert_eq!(started.campaign.items, 4);
    assert_eq!(started.counts.pending, 4);
    let items = items_of(&h, id).await;
    // Owners review; an owner never reviews her own grant.
    let dora_item = item_for(&items, "dora", "t/root");
    assert_eq!(dora_item.reviewers, vec!["erin".parse().expect("name")]);
    let bot_item = item_for(&items, "bot", "t/logs");
    assert_eq!(bot_item.reviewers.len(), 2);
    assert!(
        bot_item.excluded.iter().any(|e| e.as_str() == "alice"),
        "the agent's owner and user"
    );

    // Who may not decide: whose access it is (dora's own, alice for her agent), someone
    // not named, and nobody without a comment.
    let refusals = [
        ("dora", dora_item, "keep me", ErrorCode::SelfReview),
        ("alice", bot_item, "fine", ErrorCode::SelfReview),
        ("mallory", bot_item, "fine", ErrorCode::NotAReviewer),
        ("erin", bot_item, " ", ErrorCode::MissingComment),
    ];
    for (who, item, comment, code) in refusals {
        let refused = h
            .engine
            .decide_review_item(&caller(who), item.id, ReviewDecision::Keep, comment.into())
            .await
            .expect_err(who);
        assert_eq!(refused.code, code, "{who}: {refused}");
    }

    // erin keeps alice's; dora revokes bob's, which goes through verified revocation.
    let alice_item = item_for(&items, "alice", "t/root");
    let kept = h
        .engine
        .decide_review_item(
            &caller("erin"),
            alice_item.id,
            ReviewDecision::Keep,
            "on call this quarter".into(),
        )
        .await
        .expect("kept");
    assert_eq!(kept.state, ItemState::Kept);
    let again = h
        .engine
        .decide_review_item(
            &caller("dora"),
            alice_item.id,
            ReviewDecision::Revoke,
            "no".into(),
        )
        .await
        .expect_err("decided once");
    assert_eq!(again.code, ErrorCode::AlreadyDecided);
    let bob_item = item_for(&items, "bob", "t/root");
    h.engine
        .decide_review_item(
            &caller("dora"),
            bob_item.id,
            ReviewDecision::Revoke,
            "moved teams".into(),
        )
        .await
        .expect("revoked");
    let bob = h.engine.grant(bob_root).await.expect("grant");
    assert_eq!(bob.state, GrantState::Revoked);
    assert!(bob.verified_at.is_some(), "verified gone");
    assert!(!h.target.holds_now("root", "bob"));
    assert!(h.target.holds_now("root", "alice"));

    // The inbox: what waits for erin (bot's and dora's), nothing for mallory.
    let inbox = |who: &str| {
        let engine = h.engine.clone();
        let who = caller(who);
        async move {
            engine
                .visible_review_items(&who, ReviewItemFilter::default(), true)
                .await
                .expect("inbox")
                .items
                .len()
        }
    };
    assert_eq!(
        (
            inbox("erin").await,
            inbox("dora").await,
            inbox("mallory").await
        ),
        (2, 1, 0)
    );
    // Others do not see the campaign at all.
    let hidden = h
        .engine
        .visible_campaign(&caller("mallory"), id)
        .await
        .expect_err("hidden");
    assert_eq!(hidden.code, ErrorCode::NotFound);

    // Reminders: one per reviewer with items waiting.
    let before = h.store.events(0, 10_000).await.expect("events").len();
    h.advance(2 * DAY).await;
    let events = h.store.events(0, 10_000).await.expect("events");
    let reminded: Vec<String> = events[before..]
        .iter()
        .filter(|e| e.kind == EventKind::ReviewReminder)
        .map(|e| {
            let data: serde_json::Value = serde_json::from_str(&e.data).expect("json");
            format!(
                "{}:{}",
                data["reviewer"].as_str().unwrap_or("-"),
                data["pending"]
            )
        })
        .collect();
    assert_eq!(reminded, vec!["dora:1", "erin:2"]);

    // The deadline: what nobody decided takes the default (revoke), through the same
    // verified revocation; the campaign closes; late decisions are refused.
    h.advance(5 * DAY).await;
    h.advance(60).await;
    let progress = h.engine.visible_campaign(&ada, id).await.expect("campaign");
    assert_eq!(progress.campaign.state, CampaignState::Closed);
    assert_eq!(
        (
            progress.counts.pending,
            progress.counts.kept,
            progress.counts.revoked,
            progress.counts.by_default
        ),
        (0, 1, 3, 2)
    );
    let bot = h.engine.grant(bot_logs).await.expect("grant");
    assert_eq!(bot.state, GrantState::Revoked);
    assert!(!h.target.holds_now("logs", "bot"));
    assert!(h.target.holds_now("root", "alice"), "kept");
    assert_eq!(
        h.engine.grant(alice_root).await.expect("grant").state,
        GrantState::Active
    );
    let late = h
        .engine
        .decide_review_item(
            &caller("erin"),
            dora_item.id,
            ReviewDecision::Keep,
            "late".into(),
        )
        .await
        .expect_err("closed");
    assert_eq!(late.code, ErrorCode::CampaignClosed);
    h.finish().await;
}

async fn managers_and_approvers_review(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    grant(&h, &caller("alice"), "t/root", None).await;
    let bot_logs = grant(&h, &agent("bot"), "t/logs", Some("alice")).await;
    let nomad_root = grant(&h, &caller("nomad"), "t/root", None).await;
    let ada = caller("ada");

    // Managers: alice's manager reviews alice's and her agent's; nomad has no manager,
    // so nobody can decide his item and the default (keep, here) does.
    let started = h
        .engine
        .start_campaign(
            &ada,
            campaign("managers", Assignment::Manager, ReviewDecision::Keep),
        )
        .await
        .expect("started");
    let items = items_of(&h, started.campaign.id).await;
    let dora = ["dora".parse().expect("name")];
    assert_eq!(item_for(&items, "alice", "t/root").reviewers, dora);
    assert_eq!(item_for(&items, "bot", "t/logs").reviewers, dora);
    let nomad_item = item_for(&items, "nomad", "t/root");
    assert!(nomad_item.reviewers.is_empty());
    let refused = h
        .engine
        .decide_review_item(
            &caller("dora"),
            nomad_item.id,
            ReviewDecision::Revoke,
            "who?".into(),
        )
        .await
        .expect_err("not his manager");
    assert_eq!(refused.code, ErrorCode::NotAReviewer);
    h.engine
        .decide_review_item(
            &caller("dora"),
            item_for(&items, "bot", "t/logs").id,
            ReviewDecision::Revoke,
            "agent retired".into(),
        )
        .await
        .expect("revoked");
    assert_eq!(
        h.engine.grant(bot_logs).await.expect("grant").state,
        GrantState::Revoked
    );
    h.advance(7 * DAY).await;
    let closed = h
        .engine
        .visible_campaign(&ada, started.campaign.id)
        .await
        .expect("campaign");
    assert_eq!(closed.campaign.state, CampaignState::Closed);
    assert_eq!(
        (
            closed.counts.kept,
            closed.counts.revoked,
            closed.counts.by_default
        ),
        (2, 1, 2)
    );
    assert_eq!(
        h.engine.grant(nomad_root).await.expect("grant").state,
        GrantState::Active
    );

    // Approvers: whoever an approve policy permits (the dba group), never the subject.
    let started = h
        .engine
        .start_campaign(
            &ada,
            campaign("approvers", Assignment::Approvers, ReviewDecision::Revoke),
        )
        .await
        .expect("started");
    let items = items_of(&h, started.campaign.id).await;
    let alice_item = item_for(&items, "alice", "t/root");
    assert!(alice_item.reviewers.is_empty());
    let refused = h
        .engine
        .decide_review_item(
            &caller("mallory"),
            alice_item.id,
            ReviewDecision::Keep,
            "sure".into(),
        )
        .await
        .expect_err("no approve policy");
    assert_eq!(refused.code, ErrorCode::NotAReviewer);
    let refused = h
        .engine
        .decide_review_item(
            &caller("alice"),
            alice_item.id,
            ReviewDecision::Keep,
            "mine".into(),
        )
        .await
        .expect_err("her own");
    assert_eq!(refused.code, ErrorCode::SelfReview);
    h.engine
        .decide_review_item(
            &caller("erin"),
            alice_item.id,
            ReviewDecision::Keep,
            "still needed".into(),
        )
        .await
        .expect("kept by a permitted approver");
    // erin's inbox under the policy rule: nomad's item is still hers to decide.
    let inbox = h
        .engine
        .visible_review_items(
            &caller("erin"),
            ReviewItemFilter {
                campaign: Some(started.campaign.id),
                ..ReviewItemFilter::default()
            },
            true,
        )
        .await
        .expect("inbox");
    assert_eq!(inbox.items.len(), 1);
    h.finish().await;
}

async fn an_exception_revoked_in_review_loses_its_access(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    // Access nobody granted, found and accepted as an exception by an owner.
    h.target.set_out_of_band("logs", "mallory", true);
    h.engine.reconcile("t").await.expect("reconcile");
    let finding = h
        .engine
        .findings(writ_store::FindingFilter::default())
        .await
        .expect("findings")
        .items
        .into_iter()
        .next()
        .expect("a finding")
        .finding;
    h.engine
        .accept_finding(
            &caller("erin"),
            finding.id,
            NewException {
                owner: "erin".into(),
                reason: "vendor migration".into(),
                expires_at: h.clock.now().plus_seconds(90 * DAY),
            },
        )
        .await
        .expect("accepted");

    let started = h
        .engine
        .start_campaign(
            &caller("ada"),
            NewCampaign {
                scope: CampaignScope {
                    exceptions: true,
                    ..CampaignScope::default()
                },
                ..campaign("exceptions", Assignment::Owners, ReviewDecision::Revoke)
            },
        )
        .await
        .expect("started");
    let items = items_of(&h, started.campaign.id).await;
    assert_eq!(items.len(), 1);
    let item = &items[0];
    assert!(matches!(item.access, ReviewedAccess::Exception { .. }));
    // The owner who answers for the exception does not review it.
    assert_eq!(item.reviewers, vec!["dora".parse().expect("name")]);
    let refused = h
        .engine
        .decide_review_item(
            &caller("erin"),
            item.id,
            ReviewDecision::Keep,
            "mine".into(),
        )
        .await
        .expect_err("her exception");
    assert_eq!(refused.code, ErrorCode::SelfReview);
    h.engine
        .decide_review_item(
            &caller("dora"),
            item.id,
            ReviewDecision::Revoke,
            "migration is over".into(),
        )
        .await
        .expect("revoked");
    assert!(
        !h.target.holds_now("logs", "mallory"),
        "removed from the target"
    );
    let after = h.engine.finding(finding.id).await.expect("finding");
    assert_eq!(after.finding.state, FindingState::Resolved);
    assert_eq!(after.finding.resolution.as_deref(), Some("revoked"));
    h.finish().await;
}

writ_testkit::on_both_backends!(
    owners_review_their_entitlements,
    managers_and_approvers_review,
    an_exception_revoked_in_review_loses_its_access,
);
