//! Ledger events as OCSF 1.8.0 events (https://schema.ocsf.io/1.8.0), for SIEMs.
//!
//! Classes, all in category 3 "Identity & Access Management":
//! - the lease taking and losing effect on the target (`grant.activated`,
//!   `grant.revoked`) → **3005 User Access Management**, activities 1 Assign Privileges
//!   and 2 Revoke Privileges: `user` is the subject, `privileges` the entitlement;
//! - the life of requests, grants and tokens as records (created, approved, rejected,
//!   revocation started or failed, ...) → **3004 Entity Management**, with the record as
//!   `entity` (OCSF has no approval class).
//!
//! The policy decision rides on the `security_control` profile attributes (`action_id`,
//! `disposition_id`, `policy` with the determining policy ids and the policy-set hash as
//! its version). Nothing of the ledger is lost: `metadata.uid` is the event's hash,
//! `metadata.sequence` its sequence number, and `unmapped.writ` carries kind, hashes and
//! the full event data, so an exported event can be matched to `writ audit verify`.

use serde_json::{Map, Value, json};
use writ_domain::ledger::{Actor, Event, EventKind};

pub const OCSF_VERSION: &str = "1.8.0";

const CATEGORY_IAM: i64 = 3;
const ENTITY_MANAGEMENT: (i64, &str) = (3004, "Entity Management");
const USER_ACCESS_MANAGEMENT: (i64, &str) = (3005, "User Access Management");

/// OCSF `action_id` / `disposition_id` pairs (security_control profile).
#[derive(Clone, Copy)]
struct Control {
    action: (i64, &'static str),
    disposition: (i64, &'static str),
}

const ALLOWED: Control = Control {
    action: (1, "Allowed"),
    disposition: (1, "Allowed"),
};
const DENIED: Control = Control {
    action: (2, "Denied"),
    disposition: (2, "Blocked"),
};
const AWAITING_APPROVAL: Control = Control {
    action: (99, "Other"),
    disposition: (99, "Awaiting approval"),
};
const APPROVED: Control = Control {
    action: (1, "Allowed"),
    disposition: (8, "Approved"),
};
const REJECTED: Control = Control {
    action: (2, "Denied"),
    disposition: (25, "Rejected"),
};
const REVOKED: Control = Control {
    action: (2, "Denied"),
    disposition: (24, "Access Revoked"),
};

struct Mapping {
    class: (i64, &'static str),
    activity: (i64, &'static str),
    failed: bool,
    /// Something a SIEM should raise at once (break-glass), whatever its status.
    alert: bool,
    control: Option<Control>,
}

fn mapping(kind: EventKind, data: &Value) -> Mapping {
    use EventKind as K;
    let entity = |activity, control| Mapping {
        class: ENTITY_MANAGEMENT,
        activity,
        failed: false,
        alert: false,
        control,
    };
    match kind {
        K::RequestCreated => {
            let control = match data["request"]["decision"]["outcome"].as_str() {
                Some("deny") => DENIED,
                Some("auto") => ALLOWED,
                _ => AWAITING_APPROVAL,
            };
            entity((1, "Create"), Some(control))
        }
        K::RequestApprovalRecorded | K::RequestApprovalVoided => entity((3, "Update"), None),
        K::RequestApproved => entity((3, "Update"), Some(APPROVED)),
        K::RequestRejected => entity((11, "Deactivate"), Some(REJECTED)),
        K::RequestCancelled | K::RequestExpired | K::TokenRevoked => {
            entity((11, "Deactivate"), None)
        }
        K::GrantCreated | K::TokenIssued => entity((1, "Create"), None),
        K::GrantRevokeStarted => entity((11, "Deactivate"), None),
        K::GrantRevokeFailed | K::GrantRevokeEscalated => Mapping {
            failed: true,
            ..entity((3, "Update"), None)
        },
        K::GrantActivated => Mapping {
            class: USER_ACCESS_MANAGEMENT,
            activity: (1, "Assign Privileges"),
            failed: false,
            alert: false,
            control: Some(ALLOWED),
        },
        K::GrantRevoked => Mapping {
            class: USER_ACCESS_MANAGEMENT,
            activity: (2, "Revoke Privileges"),
            failed: false,
            alert: false,
            control: Some(REVOKED),
        },
        K::LedgerCheckpoint => entity((99, "Other"), None),
        K::PolicyReloaded | K::GrantsRedecided | K::GrantRescheduled | K::GrantUsed => {
            entity((3, "Update"), None)
        }
        K::IdentityOrphaned | K::IdentityAdopted => entity((3, "Update"), None),
        K::IdentityOrphanDisabled => entity((11, "Deactivate"), None),
        K::DirectoryUserCreated | K::DirectoryGroupCreated => entity((1, "Create"), None),
        K::DirectoryUserUpdated | K::DirectoryGroupUpdated => entity((3, "Update"), None),
        K::DirectoryUserDeleted | K::DirectoryGroupDeleted => entity((4, "Delete"), None),
        K::ItsmWebhookRejected => Mapping {
            failed: true,
            ..entity((99, "Other"), Some(DENIED))
        },
        K::FindingOpened => entity((1, "Create"), None),
        K::FindingAccepted | K::FindingReopened => entity((3, "Update"), None),
        K::FindingResolved => entity((11, "Deactivate"), None),
        // Access granted without approval, and a review nobody signed off in time.
        K::BreakGlassActivated => Mapping {
            alert: true,
            ..entity((1, "Create"), Some(ALLOWED))
        },
        K::BreakGlassReviewOverdue => Mapping {
            alert: true,
            ..entity((3, "Update"), None)
        },
        K::BreakGlassReviewSignedOff | K::BreakGlassIncidentOpened => entity((3, "Update"), None),
        K::ReviewCampaignStarted | K::ReviewItemOpened => entity((1, "Create"), None),
        K::ReviewItemDecided | K::ReviewCampaignClosed => entity((3, "Update"), None),
        K::ReviewReminder => entity((99, "Other"), None),
    }
}

fn user(name: &str) -> Value {
    json!({ "name": name, "uid": name })
}

/// Who acted: an identity, or writ itself (an OCSF System user).
fn actor_user(actor: &Actor) -> Value {
    let mut user = user(actor.as_str());
    if let Actor::System(_) = actor {
        user["type_id"] = json!(3);
        user["type"] = json!("System");
    }
    user
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// The record an event is about: its entity, the request it belongs to, and a message.
fn subject_of(event: &Event) -> (Value, Option<String>, String) {
    let data = &event.data;
    if let Some(request) = data.get("request") {
        let id = text(&request["id"]).to_string();
        let message = format!(
            "{}: {} asked for {} for {} ({})",
            event.kind,
            text(&request["requester"]),
            text(&request["entitlement"]),
            text(&request["subject"]),
            text(&request["state"]),
        );
        let entity = json!({ "uid": id, "type": "writ.request", "name": format!("request {id}"), "data": request });
        return (entity, Some(id), message);
    }
    if let Some(grant) = data.get("grant") {
        let id = text(&grant["id"]).to_string();
        let message = format!(
            "{}: {} on {} (account {}), expires {}",
            event.kind,
            text(&grant["subject"]),
            text(&grant["entitlement"]),
            text(&grant["account"]),
            text(&grant["expires_at"]),
        );
        let entity = json!({ "uid": id, "type": "writ.grant", "name": format!("grant {id}"), "data": grant });
        let request = grant["request_id"].as_str().map(str::to_string);
        return (entity, request, message);
    }
    for (key, kind, name_field) in [
        ("directory_user", "writ.directory_user", "user_name"),
        ("directory_group", "writ.directory_group", "display_name"),
    ] {
        if let Some(record) = data.get(key) {
            let id = text(&record["id"]).to_string();
            let name = text(&record[name_field]).to_string();
            let message = format!(
                "{}: {name} (version {}, from SCIM client {})",
                event.kind,
                record["meta"]["version"],
                text(&record["meta"]["client"])
            );
            let entity = json!({ "uid": id, "type": kind, "name": name, "data": record });
            return (entity, None, message);
        }
    }
    if let Some(finding) = data.get("finding") {
        let id = text(&finding["id"]).to_string();
        let message = format!(
            "{}: {} access {} on {} for account {} ({})",
            event.kind,
            text(&finding["kind"]),
            text(&finding["entitlement"]),
            text(&finding["target"]),
            text(&finding["account"]),
            text(&finding["state"]),
        );
        let entity = json!({ "uid": id, "type": "writ.finding", "name": format!("finding {id}"), "data": finding });
        return (entity, None, message);
    }
    if let Some(itsm) = data.get("itsm") {
        let (itsm, delivery) = (text(itsm), text(&data["delivery"]));
        let claimed = if delivery.is_empty() {
            "a delivery naming no id".to_string()
        } else {
            format!("delivery {delivery}")
        };
        let mut message = format!(
            "{}: writ refused {claimed} to its {itsm} webhook: {}",
            event.kind,
            text(&data["reason"])
        );
        if let Some(rejected) = data["rejected"].as_i64().filter(|n| *n > 1) {
            message.push_str(&format!(
                " ({rejected} rejected since {})",
                text(&data["since"])
            ));
        }
        let mut entity = json!({
            "type": "writ.webhook_delivery",
            "name": format!("{itsm} webhook delivery"),
            "data": { "itsm": itsm, "reason": data["reason"], "rejected": data["rejected"] },
        });
        if !delivery.is_empty() {
            entity["uid"] = json!(delivery);
        }
        return (entity, None, message);
    }
    if let Some(activation) = data.get("activation") {
        let id = text(&activation["id"]).to_string();
        let message = format!(
            "{}: {} broke the glass of {} ({}); review {} (due {})",
            event.kind,
            text(&activation["activator"]),
            text(&activation["profile"]),
            text(&activation["justification"]),
            text(&activation["review_state"]),
            text(&activation["review_due_at"]),
        );
        let entity = json!({ "uid": id, "type": "writ.break_glass_activation", "name": format!("break-glass activation {id}"), "data": activation });
        return (entity, None, message);
    }
    if let Some(campaign) = data.get("campaign") {
        let id = text(&campaign["id"]).to_string();
        let message = format!(
            "{}: access review {:?} by {} ({} items, due {}, default {})",
            event.kind,
            text(&campaign["name"]),
            text(&campaign["created_by"]),
            campaign["items"],
            text(&campaign["due_at"]),
            text(&campaign["default_decision"]),
        );
        let entity = json!({ "uid": id, "type": "writ.review_campaign", "name": text(&campaign["name"]), "data": campaign });
        return (entity, None, message);
    }
    if let Some(item) = data.get("review_item") {
        let id = text(&item["id"]).to_string();
        let message = format!(
            "{}: {} on {} (account {}) is {} (decided by {})",
            event.kind,
            text(&item["subject"]),
            text(&item["entitlement"]),
            text(&item["account"]),
            text(&item["state"]),
            item["decided_by"].as_str().unwrap_or("nobody"),
        );
        let entity = json!({ "uid": id, "type": "writ.review_item", "name": format!("review item {id}"), "data": item });
        return (entity, None, message);
    }
    if let Some(campaign) = data["campaign_id"].as_str() {
        let message = format!(
            "{}: {} item(s) of access review {:?} wait for {} (due {})",
            event.kind,
            data["pending"],
            text(&data["name"]),
            data["reviewer"]
                .as_str()
                .unwrap_or("any permitted approver"),
            text(&data["due_at"]),
        );
        let entity = json!({ "uid": campaign, "type": "writ.review_campaign", "name": text(&data["name"]),
            "data": { "reviewer": data["reviewer"], "pending": data["pending"], "due_at": data["due_at"] } });
        return (entity, None, message);
    }
    if let Some(incident) = data["incident"].as_str() {
        let id = text(&data["activation_id"]).to_string();
        let message = format!(
            "{}: incident {incident} opened in {} for break-glass activation {id}",
            event.kind,
            text(&data["system"]),
        );
        let entity = json!({ "uid": id, "type": "writ.break_glass_activation", "name": format!("break-glass activation {id}"),
            "data": { "system": data["system"], "incident": incident } });
        return (entity, None, message);
    }
    if let Some(grants) = data["grants"].as_array() {
        let hash = text(&data["policy_hash"]);
        let count = |outcome: &str| grants.iter().filter(|g| g["outcome"] == outcome).count();
        let message = format!(
            "{}: {} live grants decided again under policy set {hash} ({}): {} no longer permitted, {} for review, {} shortened",
            event.kind,
            grants.len(),
            text(&data["occasion"]),
            count("no_longer_permitted"),
            count("review"),
            count("shortened"),
        );
        let entity = json!({
            "uid": hash, "type": "writ.policy_set", "name": format!("policy set {hash}"),
            "data": { "occasion": data["occasion"], "identity": data["identity"], "grants": grants },
        });
        return (entity, None, message);
    }
    if let Some(hash) = data["policy_hash"].as_str() {
        let message = format!(
            "{}: {} policies, set {hash} (was {})",
            event.kind,
            data["policies"],
            text(&data["previous_hash"])
        );
        let entity = json!({
            "uid": hash, "type": "writ.policy_set", "name": format!("policy set {hash}"),
            "data": { "previous_hash": data["previous_hash"], "policies": data["policies"] },
        });
        return (entity, None, message);
    }
    let id = text(&data["token_id"]).to_string();
    let message = format!(
        "{}: for {}, expires {}",
        event.kind,
        text(&data["identity"]),
        text(&data["expires_at"])
    );
    let entity = json!({ "uid": id, "type": "writ.token", "name": format!("token {id}") });
    (entity, None, message)
}

/// The policy decision behind a request event, as an OCSF `policy` object.
fn policy_of(data: &Value) -> Option<Value> {
    let decision = data.get("request")?.get("decision")?;
    let ids: Vec<&str> = decision["policies"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut policy = json!({
        "name": if ids.is_empty() { "default deny".to_string() } else { ids.join(", ") },
        "is_applied": true,
    });
    // What is not known is left out, never sent empty.
    if !ids.is_empty() {
        policy["uid"] = json!(ids.join(","));
    }
    if let Some(hash) = decision["policy_hash"].as_str().filter(|h| !h.is_empty()) {
        policy["version"] = json!(hash);
    }
    let reasons: Vec<&str> = decision["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    if !reasons.is_empty() {
        policy["desc"] = json!(reasons.join("; "));
    }
    Some(policy)
}

/// One ledger event as an OCSF 1.8.0 event. `product_version` is writ's version.
pub fn to_ocsf(event: &Event, product_version: &str) -> Value {
    let kind = event.kind;
    let Mapping {
        class: (class_uid, class_name),
        activity: (activity_id, activity_name),
        failed,
        alert,
        control,
    } = mapping(kind, &event.data);
    let (entity, request_id, message) = subject_of(event);
    let mut out = Map::new();
    let mut put = |key: &str, value: Value| {
        out.insert(key.to_string(), value);
    };
    put("category_uid", json!(CATEGORY_IAM));
    put("category_name", json!("Identity & Access Management"));
    put("class_uid", json!(class_uid));
    put("class_name", json!(class_name));
    put("activity_id", json!(activity_id));
    put("activity_name", json!(activity_name));
    put("type_uid", json!(class_uid * 100 + activity_id));
    put("type_name", json!(format!("{class_name}: {activity_name}")));
    put("time", json!(event.at.unix_micros().div_euclid(1000)));
    put("time_dt", json!(event.at.to_string()));
    let (severity_id, severity) = match (alert, failed) {
        (true, _) => (4, "High"),
        (false, true) => (3, "Medium"),
        (false, false) => (1, "Informational"),
    };
    put("severity_id", json!(severity_id));
    put("severity", json!(severity));
    put("status_id", json!(if failed { 2 } else { 1 }));
    put("status", json!(if failed { "Failure" } else { "Success" }));
    if failed
        && let Some(detail) = event
            .data
            .get("error")
            .or_else(|| event.data.get("reason"))
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
    {
        put("status_detail", json!(detail));
    }
    put("message", json!(message));
    // The profiles whose attributes the event carries: a validator rejects the
    // attributes of an undeclared profile.
    let mut profiles = vec!["datetime"];
    if control.is_some() {
        profiles.push("security_control");
    }
    let mut metadata = json!({
        "version": OCSF_VERSION,
        "profiles": profiles,
        "uid": event.hash,
        "sequence": event.seq,
        "log_name": "writ-ledger",
        "product": { "name": "writ", "vendor_name": "writ", "version": product_version },
    });
    if let Some(request_id) = &request_id {
        metadata["correlation_uid"] = json!(request_id);
    }
    put("metadata", metadata);
    put("actor", json!({ "user": actor_user(&event.actor) }));
    if class_uid == USER_ACCESS_MANAGEMENT.0 {
        let grant = &event.data["grant"];
        let mut subject = user(text(&grant["subject"]));
        subject["account"] =
            json!({ "name": text(&grant["account"]), "uid": text(&grant["account"]) });
        put("user", subject);
        put("privileges", json!([text(&grant["entitlement"])]));
        put(
            "resources",
            json!([{ "uid": text(&grant["entitlement"]), "name": text(&grant["entitlement"]), "type": "writ.entitlement" }]),
        );
    } else {
        let comment = event.data["request"]["close_comment"]
            .as_str()
            .or_else(|| {
                event.data["request"]["approvals"]
                    .as_array()
                    .and_then(|approvals| approvals.last())
                    .and_then(|approval| approval["comment"].as_str())
            })
            .or_else(|| event.data["grant"]["revoke_reason"].as_str())
            .or_else(|| event.data["activation"]["review_comment"].as_str());
        if let Some(comment) = comment {
            put("comment", json!(comment));
        }
        put("entity", entity);
    }
    if let Some(control) = control {
        put("action_id", json!(control.action.0));
        put("action", json!(control.action.1));
        put("disposition_id", json!(control.disposition.0));
        put("disposition", json!(control.disposition.1));
        if let Some(policy) = policy_of(&event.data) {
            put("policy", policy);
        }
    }
    put(
        "unmapped",
        json!({ "writ": {
            "seq": event.seq, "kind": event.kind, "prev_hash": event.prev_hash, "hash": event.hash, "data": event.data,
        }}),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use writ_domain::Timestamp;

    fn event(kind: &str, actor: &str, data: Value) -> Event {
        Event {
            seq: 7,
            at: Timestamp::from_unix_micros(1_795_000_000_123_456),
            actor: actor.parse().expect("an actor"),
            kind: EventKind::parse(kind).expect("a kind"),
            data,
            prev_hash: "aa".repeat(32),
            hash: "bb".repeat(32),
        }
    }

    fn request(outcome: &str, state: &str) -> Value {
        json!({ "request": {
            "id": "r-1", "state": state, "requester": "alice", "subject": "bob", "entitlement": "pg/read",
            "decision": { "outcome": outcome, "policies": ["p1", "p2"], "reasons": [], "policy_hash": "ph" },
            "approvals": [{ "approver": "carol", "comment": "ok for Q4", "at": "2026-11-29T00:00:00Z" }],
            "close_comment": null,
        }})
    }

    fn grant(state: &str) -> Value {
        json!({ "grant": {
            "id": "g-1", "request_id": "r-1", "subject": "bob", "entitlement": "pg/read", "account": "bob_db",
            "state": state, "expires_at": "2026-11-29T01:00:00Z", "revoke_reason": null,
        }})
    }

    /// The attributes OCSF requires of every event, and the ledger's own ids kept.
    fn assert_base(ocsf: &Value, source: &Event) {
        for key in [
            "category_uid",
            "class_uid",
            "activity_id",
            "type_uid",
            "severity_id",
            "time",
        ] {
            assert!(ocsf[key].is_i64(), "{key} missing in {ocsf}");
        }
        assert_eq!(
            ocsf["type_uid"].as_i64(),
            Some(
                ocsf["class_uid"].as_i64().unwrap_or(0) * 100
                    + ocsf["activity_id"].as_i64().unwrap_or(0)
            )
        );
        assert_eq!(ocsf["time"], 1_795_000_000_123i64);
        assert_eq!(ocsf["metadata"]["version"], OCSF_VERSION);
        assert_eq!(ocsf["metadata"]["product"]["name"], "writ");
        assert_eq!(ocsf["metadata"]["uid"], source.hash.as_str());
        assert_eq!(ocsf["metadata"]["sequence"], 7);
        assert_eq!(ocsf["unmapped"]["writ"]["data"], source.data);
        assert_eq!(
            ocsf["unmapped"]["writ"]["prev_hash"],
            source.prev_hash.as_str()
        );
    }

    #[test]
    fn leases_on_the_target_are_user_access_management() {
        let activated = event("grant.activated", "writ:scheduler", grant("active"));
        let ocsf = to_ocsf(&activated, "0.1.0");
        assert_base(&ocsf, &activated);
        assert_eq!(
            (ocsf["class_uid"].as_i64(), ocsf["type_uid"].as_i64()),
            (Some(3005), Some(300501))
        );
        assert_eq!(ocsf["user"]["name"], "bob");
        assert_eq!(ocsf["user"]["account"]["name"], "bob_db");
        assert_eq!(ocsf["privileges"], json!(["pg/read"]));
        assert_eq!(
            ocsf["resources"][0]["uid"], "pg/read",
            "resources, not the deprecated resource"
        );
        assert!(ocsf.get("resource").is_none());
        assert_eq!(
            ocsf["metadata"]["profiles"],
            json!(["datetime", "security_control"])
        );
        assert_eq!(
            ocsf["actor"]["user"]["type_id"], 3,
            "writ itself is a system actor"
        );
        assert_eq!(ocsf["metadata"]["correlation_uid"], "r-1");

        let revoked = event("grant.revoked", "writ:scheduler", grant("revoked"));
        let ocsf = to_ocsf(&revoked, "0.1.0");
        assert_base(&ocsf, &revoked);
        assert_eq!(ocsf["type_uid"], 300502);
        assert_eq!(ocsf["disposition_id"], 24);
    }

    #[test]
    fn decisions_carry_outcome_policies_and_policy_hash() {
        for (outcome, action, disposition) in [("auto", 1, 1), ("deny", 2, 2), ("approval", 99, 99)]
        {
            let created = event("request.created", "alice", request(outcome, "approved"));
            let ocsf = to_ocsf(&created, "0.1.0");
            assert_base(&ocsf, &created);
            assert_eq!(ocsf["type_uid"], 300401);
            assert_eq!(
                (ocsf["action_id"].as_i64(), ocsf["disposition_id"].as_i64()),
                (Some(action), Some(disposition)),
                "{outcome}"
            );
            assert_eq!(ocsf["policy"]["uid"], "p1,p2");
            assert_eq!(ocsf["policy"]["version"], "ph");
            assert_eq!(ocsf["entity"]["uid"], "r-1");
            assert!(
                ocsf["actor"]["user"].get("type_id").is_none(),
                "a person is not a system actor"
            );
        }
        let approved = to_ocsf(
            &event("request.approved", "carol", request("approval", "approved")),
            "0.1.0",
        );
        assert_eq!(
            (
                approved["type_uid"].as_i64(),
                approved["disposition_id"].as_i64()
            ),
            (Some(300403), Some(8))
        );
        assert_eq!(approved["comment"], "ok for Q4");
        let rejected = to_ocsf(
            &event("request.rejected", "carol", request("approval", "rejected")),
            "0.1.0",
        );
        assert_eq!(
            (
                rejected["type_uid"].as_i64(),
                rejected["disposition_id"].as_i64()
            ),
            (Some(300411), Some(25))
        );
    }

    #[test]
    fn nothing_unknown_is_sent_empty() {
        let mut data = request("deny", "denied");
        data["request"]["decision"]["policies"] = json!([]);
        data["request"]["decision"]["reasons"] = json!([]);
        let ocsf = to_ocsf(&event("request.created", "alice", data), "0.1.0");
        assert_eq!(
            ocsf["policy"],
            json!({ "name": "default deny", "is_applied": true, "version": "ph" })
        );

        let rejected = to_ocsf(
            &event(
                "itsm.webhook_rejected",
                "writ:itsm",
                json!({ "itsm": "jira", "delivery": "", "reason": "bad signature", "rejected": 3, "since": "2026-12-01T10:00:00Z" }),
            ),
            "0.1.0",
        );
        assert!(rejected["entity"].get("uid").is_none(), "{rejected}");
        assert_eq!(rejected["entity"]["name"], "jira webhook delivery");
        assert_eq!(
            rejected["message"],
            "itsm.webhook_rejected: writ refused a delivery naming no id to its jira webhook: bad signature (3 rejected since 2026-12-01T10:00:00Z)"
        );
        assert_eq!(rejected["status_detail"], "bad signature");
        let token = to_ocsf(&event("token.issued", "writ:cli", json!({})), "0.1.0");
        assert_eq!(token["metadata"]["profiles"], json!(["datetime"]));
    }

    #[test]
    fn failures_and_records_without_a_request() {
        let mut data = grant("failed");
        data["error"] = json!("connection refused");
        let failed = to_ocsf(
            &event("grant.revoke_failed", "writ:scheduler", data),
            "0.1.0",
        );
        assert_eq!(
            (failed["status_id"].as_i64(), failed["severity_id"].as_i64()),
            (Some(2), Some(3))
        );
        assert_eq!(failed["status_detail"], "connection refused");

        let token = event(
            "token.issued",
            "writ:cli",
            json!({ "identity": "alice", "token_id": "abcd", "expires_at": "x" }),
        );
        let ocsf = to_ocsf(&token, "0.1.0");
        assert_base(&ocsf, &token);
        assert_eq!(ocsf["entity"]["type"], "writ.token");
        assert!(ocsf["metadata"].get("correlation_uid").is_none());
    }
}
