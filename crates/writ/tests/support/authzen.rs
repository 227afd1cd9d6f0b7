//! A writ enforcing an API through AuthZEN PEPs: the entitlements, people and policy
//! the AuthZEN tests share, and an evaluation as a PEP asks it.

use serde_json::{Value, json};

use super::Writ;

/// A target enforced by PEPs with two entitlements: refunds and reads on the `orders`
/// API (high: one approval), and reading any report (low); alice (an engineer, who
/// may ask), bob (an SRE lead, who approves), the `gateway` PEP and a service that is
/// not one.
pub const CONFIG: &str = r#"
[authzen]
clients = ["gateway"]

[[target]]
name = "api"
kind = "authzen"

[[entitlement]]
id = "api/orders_refund"
target = "api"
role = "orders_refund"
sensitivity = "high"
max_duration = "1h"
authzen = { resource_type = "api", resource_id = "orders", actions = ["refund", "read"] }

[[entitlement]]
id = "api/reports_any"
target = "api"
role = "reports"
sensitivity = "low"
max_duration = "1h"
authzen = { resource_type = "report", actions = ["read"] }

[[user]]
name = "alice"
groups = ["engineers"]

[[user]]
name = "bob"
groups = ["sre-leads"]

[[service]]
name = "gateway"
owner = "bob"

[[service]]
name = "other-service"
owner = "bob"
"#;

pub const POLICY: &str = r#"
@id("engineers-ask-approval")
@approvals("1")
permit (principal in Group::"engineers", action == Action::"request", resource);

@id("leads-approve")
permit (principal in Group::"sre-leads", action == Action::"approve", resource);
"#;

/// The AuthZEN resource the refunds entitlement covers.
pub const ORDERS: (&str, &str) = ("api", "orders");

/// An evaluation with the members a real PEP sends, and one receivers must ignore.
pub fn question(subject: &str, (kind, id): (&str, &str), action: &str) -> Value {
    json!({
        "subject": { "type": "user", "id": subject, "properties": { "department": "ignored" } },
        "resource": { "type": kind, "id": id },
        "action": { "name": action, "properties": { "method": "POST" } },
        "context": { "time": "2026-12-06T10:00:00Z" },
        "an_unknown_member": "receivers ignore unknown fields",
    })
}

/// The PDP metadata, fetched as a PEP discovers it (no credentials).
pub async fn metadata(writ: &Writ) -> Value {
    writ.http
        .get(format!("{}/.well-known/authzen-configuration", writ.base()))
        .send()
        .await
        .expect("metadata")
        .json()
        .await
        .expect("metadata JSON")
}
