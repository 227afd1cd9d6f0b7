//! Nobody acts outside their role: disabled identities, owners of services and agents,
//! delegates of agents, the kinds of identity that approve, and exceptions for one's own
//! account. Each refusal is tested where it is decided, with the code a caller sees.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::IdentityKind;
use writ_engine::ErrorCode;
use writ_engine::{Caller, NewException, NewRequest};
use writ_store::FindingFilter;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/low"
target = "t"
role = "low"
sensitivity = "low"
max_duration = "1h"

[[entitlement]]
id = "t/crit"
target = "t"
role = "crit"
sensitivity = "critical"
max_duration = "1h"
owners = "sec"

[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "gina"
groups = ["engineers"]

[[user]]
name = "erin"
groups = ["engineers", "sec"]

[[user]]
name = "hank"
groups = ["sec"]

[[user]]
name = "frank"
groups = ["engineers", "sec"]
disabled = true

[[service]]
name = "svc"
owner = "erin"

[[service]]
name = "old-svc"
owner = "alice"
disabled = true

[[service]]
name = "robot-approver"
owner = "hank"

[[agent]]
name = "bot"
owner = "alice"
delegates = ["gina", "frank"]
"#;

const POLICY: &str = r#"
@id("anyone-low")
permit (principal, action == Action::"request", resource) when { resource.sensitivity == "low" };

@id("crit-approval")
@approvals("1")
permit (principal, action == Action::"request", resource) when { resource.sensitivity == "critical" };

// Deliberately wide: the built-in rules must hold whatever an approve policy says.
@id("anyone-approves")
permit (principal, action == Action::"approve", resource);
"#;

fn ask(entitlement: &str) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        justification: "test".into(),
        ..NewRequest::default()
    }
}

fn as_kind(name: &str, kind: IdentityKind) -> Caller {
    Caller::new(name.parse().expect("name"), kind)
}

#[tokio::test]
async fn disabled_identities_neither_ask_nor_receive_nor_approve() {
    let h = Harness::with(Storage::Sqlite, CONFIG, POLICY).await;
    let refused = h
        .engine
        .create_request(&caller("frank"), ask("t/low"))
        .await
        .expect_err("disabled requester (say, mapped from a ticketing system)");
    assert_eq!(refused.code, ErrorCode::IdentityDisabled);

    let refused = h
        .engine
        .create_request(
            &caller("alice"),
            NewRequest {
                subject: Some("old-svc".into()),
                ..ask("t/low")
            },
        )
        .await
        .expect_err("disabled subject");
    assert_eq!(refused.code, ErrorCode::SubjectDisabled);

    let bot = as_kind("bot", IdentityKind::Agent);
    let refused = h
        .engine
        .create_request(
            &bot,
            NewRequest {
                on_behalf_of: Some("frank".into()),
                ..ask("t/low")
            },
        )
        .await
        .expect_err("acting for a disabled user");
    assert_eq!(refused.code, ErrorCode::IdentityDisabled);

    let pending = h
        .engine
        .create_request(&caller("alice"), ask("t/crit"))
        .await
        .expect("pending");
    let refused = h
        .engine
        .approve(&caller("frank"), pending.id, String::new())
        .await
        .expect_err("disabled approver");
    assert_eq!(refused.code, ErrorCode::IdentityDisabled);
    h.finish().await;
}

#[tokio::test]
async fn owners_count_as_self_and_only_users_approve() {
    let h = Harness::with(Storage::Sqlite, CONFIG, POLICY).await;
    let svc = as_kind("svc", IdentityKind::Service);
    let request = h
        .engine
        .create_request(&svc, ask("t/crit"))
        .await
        .expect("the service asks for itself");
    let refused = h
        .engine
        .approve(&caller("erin"), request.id, String::new())
        .await
        .expect_err("the service's owner");
    assert_eq!(refused.code, ErrorCode::SelfApproval);
    let refused = h
        .engine
        .approve(
            &as_kind("robot-approver", IdentityKind::Service),
            request.id,
            String::new(),
        )
        .await
        .expect_err("a service approving");
    assert_eq!(refused.code, ErrorCode::ApproverKind);
    let approvers: Vec<String> = h
        .engine
        .approvers(&request)
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        approvers,
        ["alice", "gina", "hank"],
        "no erin, frank or services"
    );
    h.engine
        .approve(&caller("hank"), request.id, String::new())
        .await
        .expect("someone else approves");
    h.finish().await;
}

#[tokio::test]
async fn an_agent_acts_only_for_its_owner_and_delegates() {
    let h = Harness::with(Storage::Sqlite, CONFIG, POLICY).await;
    let bot = as_kind("bot", IdentityKind::Agent);
    for (user, allowed) in [("alice", true), ("gina", true), ("hank", false)] {
        let result = h
            .engine
            .create_request(
                &bot,
                NewRequest {
                    on_behalf_of: Some(user.into()),
                    ..ask("t/low")
                },
            )
            .await;
        match (allowed, result) {
            (true, Ok(_)) => {}
            (false, Err(error)) => assert_eq!(error.code, ErrorCode::NotADelegate),
            (allowed, other) => panic!("{user}: expected allowed={allowed}, got {other:?}"),
        }
    }
    h.finish().await;
}

#[tokio::test]
async fn nobody_excuses_their_own_access() {
    let h = Harness::with(Storage::Sqlite, CONFIG, POLICY).await;
    // erin holds the critical role by hand; reconciliation finds it.
    h.target.set_out_of_band("crit", "erin", true);
    h.engine.reconcile("t").await.expect("reconcile");
    let findings = h
        .engine
        .findings(FindingFilter::default())
        .await
        .expect("findings")
        .items;
    let finding = findings
        .iter()
        .find(|f| f.finding.account == "erin")
        .expect("erin's access is a finding");
    let exception = |owner: &str| NewException {
        owner: owner.into(),
        reason: "vendor work".into(),
        expires_at: writ_domain::Clock::now(h.clock.as_ref()).plus_seconds(86_400),
    };
    for (accepter, owner) in [("erin", "hank"), ("hank", "erin")] {
        let refused = h
            .engine
            .accept_finding(&caller(accepter), finding.finding.id, exception(owner))
            .await
            .expect_err("own account");
        assert_eq!(
            refused.code,
            ErrorCode::OwnAccount,
            "{accepter} for {owner}"
        );
    }
    h.engine
        .accept_finding(&caller("hank"), finding.finding.id, exception("hank"))
        .await
        .expect("someone else, answering for it themselves");
    h.finish().await;
}
