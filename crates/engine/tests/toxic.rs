//! Toxic combinations: policy sees what the subject holds or has asked for
//! (`context.holds`), so a forbid refuses one side of a combination to whoever holds the
//! other — also when both are asked for at once.

mod harness;

use harness::{Harness, Storage, caller};
use writ_domain::lifecycle::RequestState;
use writ_engine::NewRequest;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/create"
target = "t"
role = "create"
sensitivity = "medium"
max_duration = "1h"

[[entitlement]]
id = "t/approve"
target = "t"
role = "approve"
sensitivity = "high"
max_duration = "1h"

[[entitlement]]
id = "t/read"
target = "t"
role = "read"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
groups = ["finance"]

[[user]]
name = "erin"
groups = ["leads"]
"#;

const POLICY: &str = r#"
@id("finance-auto") @max_duration("1h")
permit (principal in Group::"finance", action == Action::"request", resource)
when { resource.sensitivity != "high" };

@id("finance-approve-needs-a-lead") @approvals("1") @max_duration("1h")
permit (principal in Group::"finance", action == Action::"request", resource == Entitlement::"t/approve");

@id("leads-approve")
permit (principal in Group::"leads", action == Action::"approve", resource);

@id("no-approve-with-create")
@reason("whoever can create payments cannot approve them")
forbid (principal, action == Action::"request", resource == Entitlement::"t/approve")
when { context.holds.contains(Entitlement::"t/create") };

@id("no-create-with-approve")
@reason("whoever can approve payments cannot create them")
forbid (principal, action == Action::"request", resource == Entitlement::"t/create")
when { context.holds.contains(Entitlement::"t/approve") };
"#;

fn ask(entitlement: &str) -> NewRequest {
    NewRequest {
        entitlement: entitlement.into(),
        justification: "month end".into(),
        ..NewRequest::default()
    }
}

async fn what_is_held_counts(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let alice = caller("alice");
    let create = h
        .engine
        .create_request(&alice, ask("t/create"))
        .await
        .expect("create");
    assert_eq!(create.state, RequestState::Approved);
    // Holding t/create (and t/read, which does not matter): t/approve is refused.
    h.engine
        .create_request(&alice, ask("t/read"))
        .await
        .expect("read");
    let refused = h
        .engine
        .create_request(&alice, ask("t/approve"))
        .await
        .expect("recorded");
    assert_eq!(refused.state, RequestState::Denied);
    assert_eq!(
        refused.decision.reasons,
        ["whoever can create payments cannot approve them"]
    );
    assert_eq!(
        refused.holds.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
        ["t/create", "t/read"],
        "what was held is recorded with the decision"
    );
    // The preview says the same, and so does the list of what alice may ask for.
    let preview = h
        .engine
        .preview_request(&alice, ask("t/approve"))
        .await
        .expect("preview");
    assert_eq!(preview.state, RequestState::Denied);
    let views = h.engine.entitlements_for(&alice).await.expect("views");
    let approve = views.iter().find(|v| v.id == "t/approve").expect("listed");
    assert_eq!(approve.without_ticket.outcome, "deny");

    // Once t/create is given back, t/approve may be asked for — and while that request
    // waits for approval, t/create is refused in turn.
    let grant = create.grant_id.expect("grant");
    h.engine
        .revoke_grant(&alice, grant, "done".into())
        .await
        .expect("revoked");
    let pending = h
        .engine
        .create_request(&alice, ask("t/approve"))
        .await
        .expect("approve");
    assert_eq!(
        pending.state,
        RequestState::PendingApproval,
        "{:?}",
        pending.decision
    );
    let refused = h
        .engine
        .create_request(&alice, ask("t/create"))
        .await
        .expect("recorded");
    assert_eq!(refused.state, RequestState::Denied);
    assert_eq!(
        refused.decision.reasons,
        ["whoever can approve payments cannot create them"]
    );
    h.finish().await;
}

/// Both sides asked for at once: each decision must see the other, so never both.
async fn both_sides_at_once_never_both(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let alice = caller("alice");
    for _ in 0..5 {
        let (a, b) = tokio::join!(
            h.engine.create_request(&alice, ask("t/create")),
            h.engine.create_request(&alice, ask("t/approve")),
        );
        let (a, b) = (a.expect("create"), b.expect("approve"));
        let granted_or_waiting = |r: &writ_domain::Request| r.state != RequestState::Denied;
        assert!(
            !(granted_or_waiting(&a) && granted_or_waiting(&b)),
            "both sides of a toxic combination: {:?} and {:?}",
            a.state,
            b.state
        );
        // Clear the slate for the next round.
        for request in [&a, &b] {
            if let Some(grant) = request.grant_id {
                h.engine
                    .revoke_grant(&alice, grant, "again".into())
                    .await
                    .expect("revoke");
            } else if request.state == RequestState::PendingApproval {
                h.engine.cancel(&alice, request.id).await.expect("cancel");
            }
        }
    }
    h.finish().await;
}

writ_testkit::on_both_backends!(what_is_held_counts, both_sides_at_once_never_both);
