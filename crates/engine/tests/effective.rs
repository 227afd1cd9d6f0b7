//! What a grant really gives: the target's answer about the entitlement's role is in
//! the decision (`context.effective`), recorded on the grant (and its `grant.created`
//! event) as what was approved, and reconciliation reports `entitlement_changed`, with
//! the difference, when the role comes to give something else.

mod harness;

use std::collections::BTreeSet;

use harness::{Harness, Storage, caller};
use writ_domain::ledger::EventKind;
use writ_domain::lifecycle::RequestState;
use writ_domain::{EffectiveAccess, FindingKind, FindingState};
use writ_engine::NewRequest;
use writ_store::FindingFilter;

const CONFIG: &str = r#"
[[target]]
name = "t"
kind = "noop"
reconcile_every = "off"

[[entitlement]]
id = "t/reports"
target = "t"
role = "reports"
sensitivity = "low"
max_duration = "1h"

[[user]]
name = "alice"
"#;

const POLICY: &str = r#"
@id("reports-auto") @max_duration("1h")
permit (principal, action == Action::"request", resource == Entitlement::"t/reports");

@id("never-superuser")
@reason("this role reaches superuser on its target; ask the DBAs")
forbid (principal, action == Action::"request", resource)
when { context has effective && context.effective.superuser };

@id("only-known-access")
@reason("what this role gives on its target could not be read")
forbid (principal, action == Action::"request", resource)
unless { context has effective };
"#;

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ask() -> NewRequest {
    NewRequest {
        entitlement: "t/reports".into(),
        justification: "quarter close".into(),
        ..NewRequest::default()
    }
}

fn gives(h: &Harness, access: Option<EffectiveAccess>) {
    *h.target.effective.lock().expect("lock") = access;
}

async fn policy_sees_it_the_grant_records_it_and_changes_are_found(storage: Storage) {
    let h = Harness::with(storage, CONFIG, POLICY).await;
    let alice = caller("alice");
    let approved = EffectiveAccess {
        roles: set(&["readers"]),
        privileges: set(&["SELECT ON TABLE public.orders"]),
        ..EffectiveAccess::default()
    };
    gives(&h, Some(approved.clone()));
    let request = h
        .engine
        .create_request(&alice, ask())
        .await
        .expect("request");
    assert_eq!(
        request.state,
        RequestState::Approved,
        "{:?}",
        request.decision
    );
    assert_eq!(request.effective.as_ref(), Some(&approved));
    let grant_id = request.grant_id.expect("granted");
    let grant = h.engine.grant(grant_id).await.expect("grant");
    assert_eq!(
        grant.effective.as_ref(),
        Some(&approved),
        "what was approved"
    );
    let events = h.store.events(0, 1000).await.expect("events");
    let created = events
        .iter()
        .find(|e| e.kind == EventKind::GrantCreated)
        .expect("grant.created");
    let data: serde_json::Value = serde_json::from_str(&created.data).expect("json");
    assert_eq!(
        data["grant"]["effective"]["privileges"],
        serde_json::json!(["SELECT ON TABLE public.orders"]),
        "{data}"
    );

    // Policy refuses what reaches superuser, and what cannot be read at all.
    gives(
        &h,
        Some(EffectiveAccess {
            superuser: true,
            ..approved.clone()
        }),
    );
    let refused = h
        .engine
        .create_request(&caller("alice"), ask())
        .await
        .expect("recorded");
    assert_eq!(refused.state, RequestState::Denied);
    assert_eq!(
        refused.decision.reasons,
        ["this role reaches superuser on its target; ask the DBAs"]
    );
    gives(&h, None);
    let unknown = h
        .engine
        .create_request(&caller("alice"), ask())
        .await
        .expect("recorded");
    assert_eq!(
        unknown.decision.reasons,
        ["what this role gives on its target could not be read"]
    );

    // Behind writ's back the role is nested in an admin role: the active grant's
    // entitlement changed, with the difference.
    gives(
        &h,
        Some(EffectiveAccess {
            roles: set(&["readers", "admins"]),
            ..approved.clone()
        }),
    );
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(report.opened, 1, "{report:?}");
    let findings = h
        .engine
        .findings(FindingFilter::default())
        .await
        .expect("findings")
        .items;
    let changed = findings
        .iter()
        .find(|f| f.finding.kind == FindingKind::EntitlementChanged)
        .expect("entitlement_changed");
    assert_eq!(changed.finding.grant_id, Some(grant_id));
    let change = changed.finding.change.as_ref().expect("the difference");
    assert_eq!(change.roles_added, ["admins"]);
    assert_eq!(change.summary(), "+role admins");
    // Seen again unchanged: nothing new. Put back: resolved.
    assert_eq!(h.engine.reconcile("t").await.expect("pass").opened, 0);
    gives(&h, Some(approved));
    let report = h.engine.reconcile("t").await.expect("pass");
    assert_eq!(report.resolved, 1, "{report:?}");
    let findings = h
        .engine
        .findings(FindingFilter::default())
        .await
        .expect("findings")
        .items;
    assert!(
        findings
            .iter()
            .all(|f| f.finding.state == FindingState::Resolved)
    );
    h.finish().await;
}

writ_testkit::on_both_backends!(policy_sees_it_the_grant_records_it_and_changes_are_found);
