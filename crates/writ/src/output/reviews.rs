//! Access review campaigns and items, for people.

use std::fmt::Write;

use serde_json::Value;
use writ_domain::{Campaign, ReviewItem, ReviewedAccess};

use crate::when::local;

fn parse<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}

fn scope_text(campaign: &Campaign) -> String {
    let scope = &campaign.scope;
    let mut parts = Vec::new();
    match (scope.grants, scope.exceptions) {
        (true, true) => parts.push("grants and exceptions".to_string()),
        (false, true) => parts.push("exceptions".to_string()),
        _ => parts.push("grants".to_string()),
    }
    if let Some(target) = &scope.target {
        parts.push(format!("on {target}"));
    }
    if let Some(entitlement) = &scope.entitlement {
        parts.push(format!("of {entitlement}"));
    }
    if let Some(sensitivity) = scope.sensitivity {
        parts.push(format!("sensitivity {} or above", sensitivity.as_str()));
    }
    if let Some(days) = scope.older_than_days {
        parts.push(format!("held {days}+ days"));
    }
    parts.join(", ")
}

fn word<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A campaign with its progress (`GET /v1/reviews/{id}`, and the answer to starting one).
pub fn campaign(value: &Value) -> String {
    let Some(c) = parse::<Campaign>(&value["campaign"]) else {
        return format!("{value}\n");
    };
    let progress = &value["progress"];
    let mut out = format!(
        "review campaign {} \"{}\"\n  id        {}\n  scope     {}\n  reviewers {}\n  state     {} (due {}; undecided items: {})\n  started   {} by {}\n  items     {}: {} pending, {} kept, {} revoked ({} by default)\n",
        c.id.short(),
        c.name,
        c.id,
        scope_text(&c),
        word(&c.assignment),
        c.state,
        local(c.due_at),
        word(&c.default_decision),
        local(c.created_at),
        c.created_by,
        c.items,
        progress["pending"],
        progress["kept"],
        progress["revoked"],
        progress["by_default"],
    );
    let waiting = value["waiting"].as_array().cloned().unwrap_or_default();
    if !waiting.is_empty() {
        out.push_str("  waiting for\n");
        for w in waiting {
            let _ = writeln!(
                out,
                "    {:<20} {}",
                w["reviewer"].as_str().unwrap_or_default(),
                w["pending"]
            );
        }
    }
    out
}

pub fn campaign_list(value: &Value) -> String {
    let campaigns: Vec<Campaign> = parse(&value["campaigns"]).unwrap_or_default();
    if campaigns.is_empty() {
        return "no review campaigns\n".to_string();
    }
    let mut out = format!(
        "{:<12}  {:<28}  {:<7}  {:>6}  {:<10}  {}\n",
        "ID", "NAME", "STATE", "ITEMS", "REVIEWERS", "DUE"
    );
    for c in campaigns {
        let _ = writeln!(
            out,
            "{:<12}  {:<28}  {:<7}  {:>6}  {:<10}  {}",
            c.id.short(),
            c.name,
            c.state,
            c.items,
            word(&c.assignment),
            local(c.due_at)
        );
    }
    out
}

fn access_text(item: &ReviewItem) -> String {
    match &item.access {
        ReviewedAccess::Grant { grant, .. } => format!("grant {}", grant.short()),
        ReviewedAccess::Exception { finding, owner, .. } => {
            format!("exception {} (owner {owner})", finding.short())
        }
    }
}

pub fn review_items(value: &Value) -> String {
    let items: Vec<ReviewItem> = parse(&value["items"]).unwrap_or_default();
    if items.is_empty() {
        return "no review items\n".to_string();
    }
    let mut out = format!(
        "{:<12}  {:<8}  {:<14}  {:<22}  {:<14}  {}\n",
        "ID", "STATE", "SUBJECT", "ENTITLEMENT", "ACCOUNT", "ACCESS"
    );
    for item in items {
        let _ = writeln!(
            out,
            "{:<12}  {:<8}  {:<14}  {:<22}  {:<14}  {}",
            item.id.short(),
            item.state,
            item.subject.as_ref().map_or("-", |s| s.as_str()),
            item.entitlement,
            item.account,
            access_text(&item)
        );
    }
    out
}

pub fn review_item(value: &Value) -> String {
    let Some(item) = parse::<ReviewItem>(value) else {
        return format!("{value}\n");
    };
    let reviewers: Vec<&str> = item.reviewers.iter().map(|r| r.as_str()).collect();
    let mut out = format!(
        "review item {}\n  access       {} on {} (account {}{})\n  held since   {}\n  reviewers    {}\n  state        {}\n",
        item.id.short(),
        access_text(&item),
        item.entitlement,
        item.account,
        item.subject
            .as_ref()
            .map(|s| format!(", subject {s}"))
            .unwrap_or_default(),
        local(item.since),
        if reviewers.is_empty() {
            format!("by policy ({})", word(&item.assignment))
        } else {
            reviewers.join(", ")
        },
        item.state,
    );
    if let Some(at) = item.decided_at {
        let _ = writeln!(
            out,
            "  decided      {} at {}: {}",
            item.decided_by
                .as_ref()
                .map_or("by the campaign's default".to_string(), |r| format!(
                    "by {r}"
                )),
            local(at),
            item.comment.as_deref().unwrap_or("")
        );
    }
    out
}
