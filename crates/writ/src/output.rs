//! Human-readable text for API answers. (`--json` prints the answers as they are.)
//!
//! Ids are shown in their short form (`req_4f2a9c1b`, `grt_…`, `fnd_…`), which every
//! command accepts back; times in the reader's zone and relative to now.

use std::fmt::Write;

use serde_json::Value;
use writ_domain::lifecycle::GrantState;
use writ_domain::{
    Activation, Clock as _, DecisionOutcome, FindingReport, Grant, Request, Timestamp,
    format_duration_seconds,
};

use crate::when::local;

mod reviews;
pub use reviews::{campaign, campaign_list, review_item, review_items};

fn as_request(value: &Value) -> Option<Request> {
    serde_json::from_value(value.clone()).ok()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
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

/// Why the granted duration is shorter than the one asked for.
fn cap_reason(r: &Request) -> &'static str {
    if r.decision.max_duration_seconds == Some(r.duration_seconds) {
        "policy maximum"
    } else if r
        .ticket
        .as_ref()
        .and_then(|t| t.verified.as_ref())
        .is_some_and(|check| check.window_end.is_some())
    {
        "entitlement maximum or the ticket's change window"
    } else {
        "entitlement maximum"
    }
}

fn request_text(value: &Value) -> String {
    let Some(r) = as_request(value) else {
        return format!("{value}\n");
    };
    let mut out = String::new();
    let _ = writeln!(out, "request {}  {}", r.id.short(), r.state);
    let _ = writeln!(out, "  id        {}", r.id);
    let _ = writeln!(
        out,
        "  {} asks for {} for {}",
        r.requester, r.entitlement, r.subject
    );
    if r.duration_seconds < r.requested_duration_seconds {
        let _ = writeln!(
            out,
            "  duration  asked for {}, granted {} ({})",
            format_duration_seconds(r.requested_duration_seconds),
            format_duration_seconds(r.duration_seconds),
            cap_reason(&r)
        );
    } else {
        let _ = writeln!(
            out,
            "  duration  {}",
            format_duration_seconds(r.duration_seconds)
        );
    }
    let _ = writeln!(out, "  why       {}", r.justification);
    if let Some(ticket) = &r.ticket {
        let checked = if ticket.verified.is_some() {
            " (checked)"
        } else {
            ""
        };
        let _ = writeln!(out, "  ticket    {}:{}{checked}", ticket.system, ticket.key);
    }
    let _ = writeln!(out, "  created   {}", local(r.created_at));
    let decision = &r.decision;
    let by = if decision.policies.is_empty() {
        String::new()
    } else {
        format!(" by {}", decision.policies.join(", "))
    };
    let _ = writeln!(
        out,
        "  decision  {}{by} (policy set {})",
        match decision.outcome {
            DecisionOutcome::Deny => "denied",
            DecisionOutcome::Auto => "automatic",
            DecisionOutcome::Approval => "approval needed",
        },
        decision
            .policy_hash
            .get(..12)
            .unwrap_or(&decision.policy_hash)
    );
    for reason in &decision.reasons {
        let _ = writeln!(out, "    reason: {reason}");
    }
    for hint in strings(&value["hints"]) {
        let _ = writeln!(out, "    what would change it: {hint}");
    }
    if decision.approvals_required > 0 {
        let _ = writeln!(
            out,
            "  approvals {}/{}",
            r.approvals.len(),
            decision.approvals_required
        );
        for approval in &r.approvals {
            let _ = writeln!(
                out,
                "    {} at {}{}",
                approval.approver,
                local(approval.at),
                if approval.comment.is_empty() {
                    String::new()
                } else {
                    format!(": {}", approval.comment)
                }
            );
        }
    }
    if r.state == writ_domain::lifecycle::RequestState::PendingApproval {
        let approvers = strings(&value["approvers"]);
        let missing = r.approvals_missing();
        let _ = writeln!(
            out,
            "  waiting   for {missing} more approval{} from {}",
            if missing == 1 { "" } else { "s" },
            if approvers.is_empty() {
                "nobody: no approve policy permits anyone who is not a party to it".to_string()
            } else {
                format!("any of: {}", approvers.join(", "))
            }
        );
        if let Some(at) = r.pending_expires_at {
            let _ = writeln!(out, "  expires   {} unless approved", local(at));
        }
        let _ = writeln!(out, "  approve   writ approve {}", r.id.short());
    }
    if let Some(grant) = r.grant_id {
        let _ = writeln!(out, "  grant id  {}", grant.short());
    }
    if let Some(by) = &r.closed_by {
        let _ = writeln!(
            out,
            "  closed by {by}{}",
            r.close_comment
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        );
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
        "{:<12}  {:<16}  {:<12}  {:<12}  {:<24}  {}\n",
        "ID", "STATE", "REQUESTER", "SUBJECT", "ENTITLEMENT", "CREATED"
    );
    for r in requests {
        let _ = writeln!(
            out,
            "{:<12}  {:<16}  {:<12}  {:<12}  {:<24}  {}",
            r.id.short(),
            r.state.as_str(),
            r.requester,
            r.subject,
            r.entitlement,
            local(r.created_at)
        );
    }
    out
}

/// One line saying what state a grant is in, in words.
fn grant_headline(g: &Grant) -> String {
    match (g.state, g.retained_by) {
        (GrantState::Revoked, Some(other)) => format!(
            "revoked: this lease has ended; the account keeps the access only because grant {} also covers it",
            other.short()
        ),
        (GrantState::Revoked, None) => "revoked: removed from the target and verified gone".into(),
        (GrantState::Failed, _) => {
            "FAILED to revoke: the access may still be on the target; writ keeps retrying".into()
        }
        (GrantState::Revoking, _) => "revoking: being removed from the target".into(),
        (GrantState::Pending, _) => "pending: not yet applied on the target".into(),
        (GrantState::Active, _) => "active: held on the target".into(),
    }
}

/// The grant's state in one line, and the target's error while attempts fail.
pub fn grant_status(value: &Value) -> String {
    let Ok(g) = serde_json::from_value::<Grant>(value.clone()) else {
        return String::new();
    };
    let mut out = format!("            {}\n", grant_headline(&g));
    if let Some(error) = value.get("last_error").and_then(Value::as_str) {
        let _ = writeln!(
            out,
            "            the target refused: {error}\n            writ retries; `writ check` looks for causes like this before they happen"
        );
    }
    out
}

pub fn grant(value: &Value) -> String {
    let Ok(g) = serde_json::from_value::<Grant>(value.clone()) else {
        return format!("{value}\n");
    };
    let mut out = String::new();
    let _ = writeln!(out, "grant {}  {}", g.id.short(), grant_headline(&g));
    let _ = writeln!(out, "  id          {}", g.id);
    let _ = writeln!(
        out,
        "  {} holds {} as account {:?}",
        g.subject, g.entitlement, g.account
    );
    let _ = writeln!(out, "  request     {}", g.request_id.short());
    if let Some(at) = g.granted_at {
        let _ = writeln!(out, "  granted     {}", local(at));
    }
    let _ = writeln!(out, "  expires     {}", local(g.expires_at));
    if let Some(at) = g.revoked_at {
        let _ = writeln!(
            out,
            "  revoked     {}{}{}",
            local(at),
            g.revoked_by
                .as_ref()
                .map(|by| format!(" by {by}"))
                .unwrap_or_default(),
            g.revoke_reason
                .as_ref()
                .map(|r| r.as_str())
                .filter(|r| !r.is_empty())
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        );
    }
    if let Some(at) = g.verified_at {
        let _ = writeln!(out, "  verified    gone from the target at {}", local(at));
    }
    if let Some(error) = value.get("last_error").and_then(Value::as_str) {
        let attempts = value.get("attempts").and_then(Value::as_i64).unwrap_or(0);
        let next = value
            .get("next_attempt_at")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .map(local)
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "  last error  {error}\n              ({attempts} attempts; next {next})"
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
        "{:<12}  {:<9}  {:<12}  {:<24}  {}\n",
        "ID", "STATE", "SUBJECT", "ENTITLEMENT", "EXPIRES"
    );
    for g in grants {
        let _ = writeln!(
            out,
            "{:<12}  {:<9}  {:<12}  {:<24}  {}",
            g.id.short(),
            g.state.as_str(),
            g.subject,
            g.entitlement,
            local(g.expires_at)
        );
    }
    out
}

/// "automatic, up to 8h" / "1 approval" / "denied": a preview in a few words.
fn preview(value: &Value) -> String {
    let approvals = value["approvals_required"].as_u64().unwrap_or(0);
    let cap = value["max_duration_seconds"]
        .as_i64()
        .map(|s| format!(", up to {}", format_duration_seconds(s)))
        .unwrap_or_default();
    match value["outcome"].as_str() {
        Some("auto") => format!("automatic{cap}"),
        Some("approval") => format!(
            "{approvals} approval{}{cap}",
            if approvals == 1 { "" } else { "s" }
        ),
        _ => "denied".into(),
    }
}

/// `writ entitlements show`: the entitlement and what it really gives.
pub fn entitlement_detail(value: &Value) -> String {
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_string();
    let mut out = format!(
        "{}  {} on {} ({}, at most {}, owners {})\n",
        text("id"),
        text("role"),
        text("target"),
        text("sensitivity"),
        format_duration_seconds(value["max_duration_seconds"].as_i64().unwrap_or(0)),
        text("owners"),
    );
    if let Some(warning) = value["warning"].as_str() {
        let _ = writeln!(out, "WARNING  {warning}");
    }
    let effective = &value["effective"];
    if effective.is_null() {
        let why = value["effective_error"].as_str().map_or_else(
            || "this kind of target cannot tell".to_string(),
            |e| format!("could not be read: {e}"),
        );
        let _ = writeln!(out, "what it really gives: {why}");
        return out;
    }
    let list = |key: &str| -> Vec<String> {
        effective[key]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "superuser   {}",
        if effective["superuser"].as_bool() == Some(true) {
            "YES"
        } else {
            "no"
        }
    );
    for (label, key) in [
        ("roles", "roles"),
        ("powers", "powers"),
        ("privileges", "privileges"),
    ] {
        let items = list(key);
        if items.is_empty() {
            let _ = writeln!(out, "{label:<11} -");
        } else {
            for (i, item) in items.iter().enumerate() {
                let _ = writeln!(out, "{:<11} {item}", if i == 0 { label } else { "" });
            }
        }
    }
    out
}

pub fn entitlement_list(value: &Value) -> String {
    let entitlements = value["entitlements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if entitlements.is_empty() {
        return "no entitlements are configured\n".to_string();
    }
    let mut out = format!(
        "{:<24}  {:<11}  {:<7}  {:<6}  {:<12}  {}\n",
        "ENTITLEMENT", "SENSITIVITY", "MAX", "TICKET", "OWNERS", "FOR YOU NOW"
    );
    for e in entitlements {
        let without = preview(&e["without_ticket"]);
        let with = preview(&e["with_ticket"]);
        let for_you = if without == with {
            without
        } else {
            format!("{without}; with a ticket: {with}")
        };
        let _ = writeln!(
            out,
            "{:<24}  {:<11}  {:<7}  {:<6}  {:<12}  {for_you}",
            e["id"].as_str().unwrap_or("-"),
            e["sensitivity"].as_str().unwrap_or("-"),
            format_duration_seconds(e["max_duration_seconds"].as_i64().unwrap_or(0)),
            if e["ticket_required"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            e["owners"].as_str().unwrap_or("-"),
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
        "{:<20}  {:<8}  {:<16}  {:<8}  {}\n",
        "NAME", "KIND", "OWNER", "SOURCE", "STATUS"
    );
    for i in identities {
        let text = |key: &str| i[key].as_str().unwrap_or("-").to_string();
        let status = if i["disabled"] == true {
            "disabled".to_string()
        } else if i["ended"] == true {
            format!("ended {}", text("valid_until"))
        } else if i["orphaned"] == true {
            "ORPHANED (owner disabled)".to_string()
        } else if i["valid_until"].is_string() {
            format!("ok until {}", text("valid_until"))
        } else {
            "ok".to_string()
        };
        let _ = writeln!(
            out,
            "{:<20}  {:<8}  {:<16}  {:<8}  {status}",
            text("name"),
            text("kind"),
            text("owner"),
            text("source")
        );
    }
    out
}

pub fn policy_reloaded(value: &Value) -> String {
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_string();
    if value["changed"] == true {
        let mut out = format!(
            "policies reloaded: {} policies, hash {} (was {})\n",
            value["policies"],
            text("policy_hash"),
            text("previous_hash")
        );
        let redecided = &value["redecided"];
        if redecided.is_object() {
            let count = |key: &str| redecided[key].as_u64().unwrap_or(0);
            out.push_str(&format!(
                "live grants decided again: {}; kept {}, shortened {}, revoked {} (no_longer_permitted), flagged for review {}\n",
                count("grants"),
                count("kept"),
                count("shortened"),
                count("revoked"),
                count("flagged")
            ));
        }
        out
    } else {
        format!(
            "the policies in force are the folder's already ({} policies, hash {})\n",
            value["policies"],
            text("policy_hash")
        )
    }
}

pub fn whoami(value: &Value) -> String {
    let text = |key: &str| value[key].as_str().unwrap_or("-").to_string();
    let groups: Vec<&str> = value["groups"]
        .as_array()
        .map(|groups| groups.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let yes = |key: &str| if value[key] == true { "yes" } else { "no" };
    let mut out = format!("{} ({})\n", text("name"), text("kind"));
    let _ = writeln!(
        out,
        "groups:  {}",
        if groups.is_empty() {
            "-".to_string()
        } else {
            groups.join(", ")
        }
    );
    if value["manager"].is_string() {
        let _ = writeln!(out, "manager: {}", text("manager"));
    }
    if value["owner"].is_string() {
        let _ = writeln!(out, "owner:   {}", text("owner"));
    }
    let _ = writeln!(out, "auditor: {}, admin: {}", yes("auditor"), yes("admin"));
    out
}

pub fn token_list(value: &Value) -> String {
    let tokens = value["tokens"].as_array().cloned().unwrap_or_default();
    if tokens.is_empty() {
        return "no tokens\n".to_string();
    }
    let mut out = format!(
        "{:<16}  {:<20}  {:<20}  {}\n",
        "ID", "IDENTITY", "EXPIRES", "STATUS"
    );
    for t in tokens {
        let text = |key: &str| t[key].as_str().unwrap_or("-").to_string();
        let status = if t["usable_hash"] == false {
            "unusable (issued before token hashes were keyed)".to_string()
        } else if let Some(at) = t["revoked_at"].as_str() {
            format!("revoked {at}")
        } else if t["expires_at"]
            .as_str()
            .and_then(|at| Timestamp::parse_rfc3339(at).ok())
            .is_some_and(|at| at <= writ_engine::SystemClock.now())
        {
            "expired".to_string()
        } else {
            "live".to_string()
        };
        let _ = writeln!(
            out,
            "{:<16}  {:<20}  {:<20}  {status}",
            text("id"),
            text("identity"),
            text("expires_at")
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
        let at = event
            .get("at")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .map(local)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>6}  {at}  {:<26}  {}",
            field("seq"),
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

pub fn finding_list(value: &Value, state: &str) -> String {
    let findings: Vec<FindingReport> = value
        .get("findings")
        .and_then(|f| serde_json::from_value(f.clone()).ok())
        .unwrap_or_default();
    let mut out = String::new();
    if findings.is_empty() {
        let _ = writeln!(out, "no {state} findings");
    } else {
        let _ = writeln!(
            out,
            "{:<12}  {:<9}  {:<8}  {:<24}  {:<16}  {:<7}  LAST SEEN",
            "ID", "KIND", "STATE", "ENTITLEMENT", "ACCOUNT", "ACTION"
        );
        for report in findings {
            let f = &report.finding;
            let _ = writeln!(
                out,
                "{:<12}  {:<9}  {:<8}  {:<24}  {:<16}  {:<7}  {}",
                f.id.short(),
                // Padding applies to strings; these types' Display does not pad.
                f.kind.to_string(),
                f.state.to_string(),
                f.entitlement,
                f.account,
                f.action.to_string(),
                local(report.last_seen_at)
            );
        }
    }
    if state == "open" {
        let _ = writeln!(
            out,
            "(open findings; accepted ones: --state accepted, resolved ones: --state resolved)"
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
        "finding {}\n  id          {}\n  {} access: {} on {} for account {}\n  state       {}\n  action      {}\n  first seen  {}\n  last seen   {}\n",
        f.id.short(),
        f.id,
        f.kind,
        f.entitlement,
        f.target,
        f.account,
        f.state,
        f.action,
        local(f.first_seen_at),
        local(report.last_seen_at)
    );
    if let Some(grant) = f.grant_id {
        let _ = writeln!(out, "  grant       {}", grant.short());
    }
    if let Some(e) = &f.exception {
        let _ = writeln!(
            out,
            "  exception   owner {}, until {}, accepted by {} at {}: {}",
            e.owner,
            local(e.expires_at),
            e.accepted_by,
            local(e.accepted_at),
            e.reason
        );
    }
    if let (Some(at), Some(how)) = (f.resolved_at, &f.resolution) {
        let _ = writeln!(out, "  resolved    {} ({how})", local(at));
    }
    if let Some(error) = &report.last_error {
        let _ = writeln!(out, "  last error  {error}");
    }
    out
}

/// `writ request --dry-run`: the decision in one line, then why.
pub fn request_preview(value: &Value) -> String {
    let Ok(decision) = serde_json::from_value::<writ_domain::Decision>(value["decision"].clone())
    else {
        return format!("{value}\n");
    };
    let duration = format_duration_seconds(value["duration_seconds"].as_i64().unwrap_or(0));
    let headline = match decision.outcome {
        DecisionOutcome::Auto => format!("automatic, for {duration}"),
        DecisionOutcome::Approval => {
            let approvers = strings(&value["approvers"]);
            let from = if approvers.is_empty() {
                "nobody policy permits now".to_string()
            } else {
                approvers.join(", ")
            };
            format!(
                "needs {} approval{} from {from}, for at most {duration}",
                decision.approvals_required,
                if decision.approvals_required == 1 {
                    ""
                } else {
                    "s"
                }
            )
        }
        DecisionOutcome::Deny => format!("denied: {}", decision.reasons.join("; ")),
    };
    let mut out = format!(
        "dry run: {} for {} would be {headline}\n",
        value["entitlement"].as_str().unwrap_or_default(),
        value["subject"].as_str().unwrap_or_default()
    );
    if !decision.policies.is_empty() {
        let _ = writeln!(out, "  policies  {}", decision.policies.join(", "));
    }
    let _ = writeln!(out, "  policy set {}", decision.policy_hash);
    for hint in strings(&value["hints"]) {
        let _ = writeln!(out, "  what would change it: {hint}");
    }
    let _ = writeln!(
        out,
        "  nothing was recorded; ask without --dry-run to make the request"
    );
    out
}

/// A report: its scope, a table with each column as wide as its widest cell, and its
/// summary.
pub fn report(value: &Value) -> String {
    let cells = |row: &Value| -> Vec<String> {
        row.as_array()
            .into_iter()
            .flatten()
            .map(|cell| cell.as_str().unwrap_or_default().to_string())
            .collect()
    };
    let columns: Vec<String> = cells(&value["columns"])
        .into_iter()
        .map(|c| c.to_uppercase())
        .collect();
    let rows: Vec<Vec<String>> = value["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(cells)
        .collect();
    let mut out = format!(
        "{}: {}\n",
        value["report"].as_str().unwrap_or_default(),
        value["scope"].as_str().unwrap_or_default()
    );
    if rows.is_empty() {
        out.push_str("  nothing to report\n");
    } else {
        let widths: Vec<usize> = (0..columns.len())
            .map(|i| {
                rows.iter()
                    .filter_map(|row| row.get(i))
                    .chain(std::iter::once(&columns[i]))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in std::iter::once(&columns).chain(rows.iter()) {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
        }
    }
    for (name, figure) in value["summary"].as_object().into_iter().flatten() {
        let _ = writeln!(out, "{name}: {}", figure.as_str().unwrap_or_default());
    }
    out
}

fn as_activation(value: &Value) -> Option<Activation> {
    serde_json::from_value(value.clone()).ok()
}

/// A break-glass activation just made: what was granted, and the review it owes.
pub fn activated(value: &Value) -> String {
    let Some(a) = as_activation(&value["activation"]) else {
        return format!("{value}\n");
    };
    let mut out = format!(
        "BREAK-GLASS {} activated: {} ({})\n  granted without approval; everyone the profile names has been told\n",
        a.id.short(),
        a.profile,
        a.justification
    );
    let requests: Vec<Request> = value
        .get("requests")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default();
    for r in requests {
        let _ = writeln!(
            out,
            "  {:<24}  for {}  grant {}",
            r.entitlement.as_str(),
            format_duration_seconds(r.duration_seconds),
            r.grant_id.map(|g| g.short()).unwrap_or_default()
        );
    }
    let _ = writeln!(
        out,
        "  review: someone else must sign it off by {} (writ activations sign-off {})",
        local(a.review_due_at),
        a.id.short()
    );
    out
}

pub fn activation_list(value: &Value) -> String {
    let activations: Vec<Activation> = value
        .get("activations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    if activations.is_empty() {
        return "no break-glass activations\n".to_string();
    }
    let mut out = format!(
        "{:<12}  {:<16}  {:<12}  {:<10}  {:<22}  {}\n",
        "ID", "PROFILE", "ACTIVATOR", "REVIEW", "ACTIVATED", "REVIEW DUE"
    );
    for a in activations {
        let _ = writeln!(
            out,
            "{:<12}  {:<16}  {:<12}  {:<10}  {:<22}  {}",
            a.id.short(),
            a.profile,
            a.activator.as_str(),
            a.review_state.as_str(),
            local(a.activated_at),
            local(a.review_due_at)
        );
    }
    out
}

pub fn activation(value: &Value) -> String {
    let Some(a) = as_activation(value) else {
        return format!("{value}\n");
    };
    let requests: Vec<String> = a.requests.iter().map(|r| r.short()).collect();
    let mut out = format!(
        "break-glass activation {}\n  id             {}\n  profile        {}\n  activator      {}\n  justification  {}\n  activated      {}\n  requests       {}\n  review         {} (due {})\n",
        a.id.short(),
        a.id,
        a.profile,
        a.activator,
        a.justification,
        local(a.activated_at),
        requests.join(", "),
        a.review_state,
        local(a.review_due_at)
    );
    if let Some(agent_for) = &a.on_behalf_of {
        let _ = writeln!(out, "  on behalf of   {agent_for}");
    }
    if let Some(at) = a.overdue_at {
        let _ = writeln!(out, "  overdue since  {}", local(at));
    }
    if let (Some(reviewer), Some(at)) = (&a.reviewer, a.reviewed_at) {
        let _ = writeln!(
            out,
            "  signed off     by {reviewer} at {}: {}",
            local(at),
            a.review_comment.as_deref().unwrap_or("")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use writ_domain::{GrantId, RequestId, Timestamp};

    use super::*;

    fn grant_in(state: GrantState, retained_by: Option<GrantId>) -> Value {
        let grant = Grant {
            id: GrantId::generate_at(Timestamp::from_unix_micros(1_795_000_000_000_000)),
            request_id: RequestId::generate_at(Timestamp::from_unix_micros(1_795_000_000_000_000)),
            subject: "alice".parse().expect("name"),
            entitlement: "files/read".parse().expect("id"),
            account: "alice".into(),
            state,
            granted_at: None,
            expires_at: Timestamp::from_unix_micros(0),
            revoke_reason: None,
            revoked_by: None,
            revoked_at: None,
            verified_at: None,
            retained_by,
            credential: false,
            effective: None,
            max_uses: None,
            permanent: false,
        };
        serde_json::to_value(grant).expect("JSON")
    }

    #[test]
    fn a_failed_revocation_never_reads_as_revoked() {
        let text = grant(&grant_in(GrantState::Failed, None));
        let headline = text.lines().next().expect("a line");
        assert!(
            headline.contains("FAILED to revoke")
                && headline.contains("may still be on the target"),
            "{text}"
        );
        assert!(!headline.contains("revoked:"), "{text}");
    }

    #[test]
    fn access_kept_by_an_overlapping_grant_says_so() {
        let other = GrantId::generate_at(Timestamp::from_unix_micros(1_795_000_000_000_000));
        let text = grant(&grant_in(GrantState::Revoked, Some(other)));
        assert!(
            text.contains("this lease has ended; the account keeps the access only because grant")
                && text.contains(&other.short()),
            "{text}"
        );
    }
}
