//! Human-readable text for API answers. (`--json` prints the answers as they are.)

use std::fmt::Write;

use serde_json::Value;
use writ_domain::{DecisionOutcome, FindingReport, Grant, Request, format_duration_seconds};

fn as_request(value: &Value) -> Option<Request> {
    serde_json::from_value(value.clone()).ok()
}

pub fn request(value: &Value) -> String {
    let mut out = request_text(value);
    out.push_str(&credential(&value["credential"]));
    out
}

/// A credential's secret, when the answer carries one (it is shown only once).
pub fn credential(value: &Value) -> String {
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_string();
    if value.is_null() {
        return String::new();
    }
    format!(
        "credential (shown once; writ keeps no copy)\n  username  {}\n  password  {}\n  expires   {}\n",
        text("username"),
        text("password"),
        text("expires_at")
    )
}

/// A collected credential and its grant.
pub fn collected_credential(value: &Value) -> String {
    let mut out = grant(&value["grant"]);
    out.push_str(&credential(&value["credential"]));
    out
}

fn request_text(value: &Value) -> String {
    let Some(r) = as_request(value) else {
        return format!("{value}\n");
    };
    let mut out = String::new();
    let _ = writeln!(out, "request {}  {}", r.id, r.state);
    let _ = writeln!(
        out,
        "  {} asks for {} for {}, {}",
        r.requester,
        r.entitlement,
        r.subject,
        format_duration_seconds(r.duration_seconds)
    );
    if r.duration_seconds != r.requested_duration_seconds {
        let _ = writeln!(
            out,
            "  (asked for {}, capped by policy)",
            format_duration_seconds(r.requested_duration_seconds)
        );
    }
    let _ = writeln!(out, "  why: {}", r.justification);
    if let Some(ticket) = &r.ticket {
        let _ = writeln!(out, "  ticket: {}:{}", ticket.system, ticket.key);
    }
    let decision = &r.decision;
    let policies = if decision.policies.is_empty() {
        "no policy".to_string()
    } else {
        decision.policies.join(", ")
    };
    let _ = writeln!(
        out,
        "  decision: {} by {policies} (policy set {})",
        match decision.outcome {
            DecisionOutcome::Deny => "deny",
            DecisionOutcome::Auto => "automatic",
            DecisionOutcome::Approval => "approval needed",
        },
        &decision.policy_hash[..12.min(decision.policy_hash.len())]
    );
    for reason in &decision.reasons {
        let _ = writeln!(out, "    reason: {reason}");
    }
    if decision.approvals_required > 0 {
        let _ = writeln!(
            out,
            "  approvals: {}/{}",
            r.approvals.len(),
            decision.approvals_required
        );
        for approval in &r.approvals {
            let _ = writeln!(
                out,
                "    {} at {}{}",
                approval.approver,
                approval.at,
                if approval.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", approval.comment)
                }
            );
        }
    }
    if let Some(grant) = r.grant_id {
        let _ = writeln!(out, "  grant: {grant}  (writ grants {grant})");
    }
    out
}

pub fn request_list(value: &Value) -> String {
    let requests: Vec<Request> = value
        .get("requests")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    if requests.is_empty() {
        return "no requests\n".to_string();
    }
    let mut out = format!(
        "{:<36}  {:<16}  {:<12}  {:<12}  {}\n",
        "ID", "STATE", "REQUESTER", "SUBJECT", "ENTITLEMENT"
    );
    for r in requests {
        let _ = writeln!(
            out,
            "{:<36}  {:<16}  {:<12}  {:<12}  {}",
            r.id,
            r.state.as_str(),
            r.requester,
            r.subject,
            r.entitlement
        );
    }
    out
}

pub fn grant(value: &Value) -> String {
    let Ok(g) = serde_json::from_value::<Grant>(value.clone()) else {
        return format!("{value}\n");
    };
    let mut out = String::new();
    let _ = writeln!(out, "grant {}  {}", g.id, g.state);
    let _ = writeln!(
        out,
        "  {} holds {} as account {:?}",
        g.subject, g.entitlement, g.account
    );
    if let Some(at) = g.granted_at {
        let _ = writeln!(out, "  granted at  {at}");
    }
    let _ = writeln!(out, "  expires at  {}", g.expires_at);
    if let Some(at) = g.revoked_at {
        let _ = writeln!(
            out,
            "  revoked at  {at} ({})",
            g.revoke_reason.as_deref().unwrap_or("")
        );
    }
    if let Some(at) = g.verified_at {
        let _ = writeln!(out, "  verified gone at {at}");
    }
    if let Some(other) = g.retained_by {
        let _ = writeln!(
            out,
            "  the target keeps the access for overlapping grant {other}"
        );
    }
    if let Some(error) = value.get("last_error").and_then(Value::as_str) {
        let attempts = value.get("attempts").and_then(Value::as_i64).unwrap_or(0);
        let next = value
            .get("next_attempt_at")
            .and_then(Value::as_str)
            .unwrap_or("-");
        let _ = writeln!(
            out,
            "  last error ({attempts} attempts, next at {next}): {error}"
        );
    }
    out
}

pub fn grant_list(value: &Value) -> String {
    let grants: Vec<Grant> = value
        .get("grants")
        .and_then(|g| serde_json::from_value(g.clone()).ok())
        .unwrap_or_default();
    if grants.is_empty() {
        return "no grants\n".to_string();
    }
    let mut out = format!(
        "{:<36}  {:<9}  {:<12}  {:<24}  {}\n",
        "ID", "STATE", "SUBJECT", "ENTITLEMENT", "EXPIRES"
    );
    for g in grants {
        let _ = writeln!(
            out,
            "{:<36}  {:<9}  {:<12}  {:<24}  {}",
            g.id,
            g.state.as_str(),
            g.subject,
            g.entitlement,
            g.expires_at
        );
    }
    out
}

pub fn identity_list(value: &Value) -> String {
    let identities = value["identities"].as_array().cloned().unwrap_or_default();
    if identities.is_empty() {
        return "no identities\n".to_string();
    }
    let mut out = format!(
        "{:<20}  {:<8}  {:<16}  {}\n",
        "NAME", "KIND", "OWNER", "STATUS"
    );
    for i in identities {
        let text = |key: &str| i[key].as_str().unwrap_or("-").to_string();
        let status = match (i["disabled"].as_bool(), i["orphaned"].as_bool()) {
            (Some(true), _) => "disabled",
            (_, Some(true)) => "ORPHANED (owner disabled)",
            _ => "ok",
        };
        let _ = writeln!(
            out,
            "{:<20}  {:<8}  {:<16}  {status}",
            text("name"),
            text("kind"),
            text("owner")
        );
    }
    out
}

pub fn event_list(value: &Value) -> String {
    let events = value
        .get("events")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = String::new();
    for event in events {
        let field = |name: &str| {
            event
                .get(name)
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .unwrap_or_default()
        };
        let _ = writeln!(
            out,
            "{:>6}  {}  {:<26}  {}",
            field("seq"),
            field("at"),
            field("kind"),
            field("actor")
        );
    }
    if out.is_empty() {
        "no events\n".to_string()
    } else {
        out
    }
}

pub fn reconcile_reports(value: &Value) -> String {
    let reports = value["reports"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    for r in reports {
        let count = |key: &str| r[key].as_u64().unwrap_or(0);
        let _ = writeln!(
            out,
            "{}: {} entitlements, {} memberships read; {} findings opened, {} resolved, {} unresolved",
            r["target"].as_str().unwrap_or("-"),
            count("entitlements"),
            count("memberships"),
            count("opened"),
            count("resolved"),
            count("unresolved"),
        );
        for error in r["errors"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  error: {}", error.as_str().unwrap_or_default());
        }
    }
    if out.is_empty() {
        "no targets\n".to_string()
    } else {
        out
    }
}

pub fn finding_list(value: &Value) -> String {
    let findings: Vec<FindingReport> = value
        .get("findings")
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .unwrap_or_default();
    if findings.is_empty() {
        return "no findings\n".to_string();
    }
    let mut out = format!(
        "{:<36}  {:<9}  {:<8}  {:<24}  {:<16}  {:<7}  {}\n",
        "ID", "KIND", "STATE", "ENTITLEMENT", "ACCOUNT", "ACTION", "LAST SEEN"
    );
    for report in findings {
        let f = &report.finding;
        let _ = writeln!(
            out,
            "{:<36}  {:<9}  {:<8}  {:<24}  {:<16}  {:<7}  {}",
            f.id, f.kind, f.state, f.entitlement, f.account, f.action, report.last_seen_at
        );
    }
    out
}

pub fn finding(value: &Value) -> String {
    let Ok(report) = serde_json::from_value::<FindingReport>(value.clone()) else {
        return format!("{value}\n");
    };
    let f = &report.finding;
    let mut out = format!(
        "finding {}\n  {} access: {} on {} for account {}\n  state       {}\n  action      {}\n  first seen  {}\n  last seen   {}\n",
        f.id,
        f.kind,
        f.entitlement,
        f.target,
        f.account,
        f.state,
        f.action,
        f.first_seen_at,
        report.last_seen_at
    );
    if let Some(grant) = f.grant_id {
        let _ = writeln!(out, "  grant       {grant}");
    }
    if let Some(e) = &f.exception {
        let _ = writeln!(
            out,
            "  exception   owner {}, until {}, accepted by {} at {}: {}",
            e.owner, e.expires_at, e.accepted_by, e.accepted_at, e.reason
        );
    }
    if let (Some(at), Some(how)) = (f.resolved_at, &f.resolution) {
        let _ = writeln!(out, "  resolved    {at} ({how})");
    }
    if let Some(error) = &report.last_error {
        let _ = writeln!(out, "  last error  {error}");
    }
    out
}
