//! One grant's story, told from its ledger events alone: who asked, for whom, what,
//! why, on which ticket, what policy decided, who approved, for how long, when it was
//! removed and how that was verified. Pure, so a verifier holding only the events tells
//! the same story and can tell whether a document's was changed.

use serde::{Deserialize, Serialize};
use writ_domain::ledger::{Event, EventKind};
use writ_domain::{DecisionOutcome, Grant, GrantId, Request, RequestId, format_duration_seconds};

/// An event a statement comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    pub seq: i64,
    pub hash: String,
}

/// One answer of the story, with the events it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// What it answers (`requested`, `subject`, `what`, `why`, `ticket`, `decision`,
    /// `approvals`, `window`, `scheduled_revocation`, `applied`, `uses`, `revocation`,
    /// `verification`).
    pub topic: String,
    pub text: String,
    pub cites: Vec<Citation>,
}

/// Why the events do not tell a grant's story.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoryError {
    #[error("no event records grant {0}")]
    NoGrant(GrantId),
    #[error("no request.created event for request {0}")]
    NoRequest(RequestId),
    #[error("event {seq}: its {what} is unreadable: {problem}")]
    Unreadable {
        seq: i64,
        what: &'static str,
        problem: String,
    },
}

fn cite(event: &Event) -> Citation {
    Citation {
        seq: event.seq,
        hash: event.hash.clone(),
    }
}

fn record<T: serde::de::DeserializeOwned>(
    event: &Event,
    field: &'static str,
) -> Result<Option<T>, StoryError> {
    event
        .data
        .get(field)
        .map(|value| {
            serde_json::from_value(value.clone()).map_err(|e| StoryError::Unreadable {
                seq: event.seq,
                what: field,
                problem: e.to_string(),
            })
        })
        .transpose()
}

/// The grant's events and its request's, each with the record it carries.
struct Events<'a> {
    grant: Vec<(&'a Event, Grant)>,
    request: Vec<(&'a Event, Request)>,
}

fn sort<'a>(id: GrantId, events: &'a [Event]) -> Result<Events<'a>, StoryError> {
    let mut grant = Vec::new();
    for event in events {
        if let Some(g) = record::<Grant>(event, "grant")?
            && g.id == id
        {
            grant.push((event, g));
        }
    }
    let request_id = grant
        .first()
        .map(|(_, g)| g.request_id)
        .ok_or(StoryError::NoGrant(id))?;
    let mut request = Vec::new();
    for event in events {
        if let Some(r) = record::<Request>(event, "request")?
            && r.id == request_id
        {
            request.push((event, r));
        }
    }
    if !request
        .iter()
        .any(|(e, _)| e.kind == EventKind::RequestCreated)
    {
        return Err(StoryError::NoRequest(request_id));
    }
    Ok(Events { grant, request })
}

fn statement(topic: &str, text: String, cites: Vec<Citation>) -> Statement {
    Statement {
        topic: topic.to_string(),
        text,
        cites,
    }
}

fn quoted(text: &str) -> String {
    format!("“{text}”")
}

/// The story of grant `id`, from the events about it and its request (oldest first).
pub fn story(id: GrantId, events: &[Event]) -> Result<Vec<Statement>, StoryError> {
    let sorted = sort(id, events)?;
    let (created_event, asked) = sorted
        .request
        .iter()
        .find(|(e, _)| e.kind == EventKind::RequestCreated)
        .map(|(e, r)| (*e, r))
        .ok_or(StoryError::NoGrant(id))?;
    let at_creation = vec![cite(created_event)];
    let first_grant = &sorted.grant[0];
    let mut out = Vec::new();

    // Who asked, and through whom.
    let mut who = format!(
        "{} asked at {}",
        asked.requester,
        asked.created_at.to_rfc3339()
    );
    if let Some(user) = &asked.on_behalf_of {
        let chain: Vec<&str> = writ_domain::acting_agents(
            &asked.requester,
            asked.on_behalf_of.as_ref(),
            &asked.actors,
        )
        .iter()
        .map(|a| a.as_str())
        .chain(std::iter::once(user.as_str()))
        .collect();
        who.push_str(&format!(
            ", an agent acting for {user} (chain {})",
            chain.join(" → ")
        ));
    }
    if let Some(mark) = &asked.break_glass {
        who.push_str(&format!(
            ", breaking the glass of profile {} (activation {})",
            mark.profile, mark.activation
        ));
    }
    if let Some(origin) = &asked.authzen {
        who.push_str(&format!(
            ", through an AuthZEN access request (task {}) after a denied evaluation of {} {} {}",
            origin.task, origin.action, origin.resource_type, origin.resource_id
        ));
    }
    out.push(statement("requested", who, at_creation.clone()));

    // For whom, and which account.
    out.push(statement(
        "subject",
        format!(
            "for {}, on the target's account {}{}",
            asked.subject,
            first_grant.1.account,
            if first_grant.1.credential {
                " (a login of its own, issued once)"
            } else {
                ""
            }
        ),
        vec![cite(created_event), cite(first_grant.0)],
    ));

    // What.
    let what = match &asked.entitlement_facts {
        Some(facts) => format!(
            "entitlement {}: role {} on target {}, sensitivity {}",
            asked.entitlement,
            facts.role,
            facts.target,
            facts.sensitivity.as_str()
        ),
        None => format!(
            "entitlement {} (its target and sensitivity were not recorded with the request)",
            asked.entitlement
        ),
    };
    out.push(statement("what", what, at_creation.clone()));
    out.push(statement(
        "why",
        quoted(&asked.justification),
        at_creation.clone(),
    ));

    // The ticket, as writ read it then.
    let ticket = match &asked.ticket {
        None => "no ticket".to_string(),
        Some(t) => match &t.verified {
            Some(check) => format!(
                "{}:{} (id {}), read from {} at {}: {} {}{}{}",
                t.system,
                t.key,
                check.id,
                t.system,
                check.checked_at.to_rfc3339(),
                check.ticket_type,
                check.state,
                check
                    .approval
                    .as_deref()
                    .map(|a| format!(", approval {a}"))
                    .unwrap_or_default(),
                check
                    .window_end
                    .map(|w| format!(", change window ends {}", w.to_rfc3339()))
                    .unwrap_or_default(),
            ),
            None => format!(
                "{}:{}, a reference writ did not check (not a configured ticketing system)",
                t.system, t.key
            ),
        },
    };
    out.push(statement("ticket", ticket, at_creation.clone()));

    // What policy decided.
    let decision = &asked.decision;
    let outcome = match decision.outcome {
        DecisionOutcome::Auto => "granted without approval".to_string(),
        DecisionOutcome::Approval => format!(
            "permitted with {} approval(s) required (@approvals)",
            decision.approvals_required
        ),
        DecisionOutcome::Deny => "denied".to_string(),
    };
    let mut decided = format!(
        "{outcome} by {}; policy set {}",
        if decision.policies.is_empty() {
            "no named policy".to_string()
        } else {
            format!("policies {}", decision.policies.join(", "))
        },
        decision.policy_hash
    );
    if let Some(cap) = decision.max_duration_seconds {
        decided.push_str(&format!(
            "; policy capped it at {} (@max_duration)",
            format_duration_seconds(cap)
        ));
    }
    if !decision.reasons.is_empty() {
        decided.push_str(&format!("; reasons: {}", decision.reasons.join("; ")));
    }
    out.push(statement("decision", decided, at_creation.clone()));

    // Who approved, each cited where it was first recorded.
    let mut approvals = Vec::new();
    let mut cites = Vec::new();
    for (event, request) in &sorted.request {
        for approval in &request.approvals {
            if approvals
                .iter()
                .any(|(a, _): &(writ_domain::Approval, i64)| a.approver == approval.approver)
            {
                continue;
            }
            approvals.push((approval.clone(), event.seq));
            cites.push(cite(event));
        }
    }
    let approved = if approvals.is_empty() {
        match (decision.outcome, &asked.break_glass) {
            (_, Some(_)) => "none: break-glass access is reviewed after the fact".to_string(),
            (DecisionOutcome::Auto, None) => "none needed: policy granted it".to_string(),
            _ => "no approval recorded".to_string(),
        }
    } else {
        approvals
            .iter()
            .map(|(a, _)| {
                format!(
                    "{} at {} {}{}",
                    a.approver,
                    a.at.to_rfc3339(),
                    match a.via.as_deref() {
                        Some("api") => "through writ's API or CLI".to_string(),
                        Some("ui") => "in writ's web UI".to_string(),
                        Some(via) => match via.strip_prefix("itsm:") {
                            Some(system) => format!("on the ticket in {system}"),
                            None => format!("through {via}"),
                        },
                        None => "(channel not recorded)".to_string(),
                    },
                    if a.comment.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", quoted(&a.comment))
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    out.push(statement(
        "approvals",
        approved,
        if cites.is_empty() {
            at_creation.clone()
        } else {
            cites
        },
    ));

    // The window asked for and granted.
    let granted = sorted
        .request
        .iter()
        .rev()
        .map(|(_, r)| r.duration_seconds)
        .next()
        .unwrap_or(asked.duration_seconds);
    let window = if first_grant.1.permanent {
        format!(
            "asked for {}; granted without an end (a @permanent policy allowed it)",
            format_duration_seconds(asked.requested_duration_seconds)
        )
    } else if granted < asked.requested_duration_seconds {
        let by = match (decision.max_duration_seconds, &asked.ticket) {
            (Some(cap), _) if cap <= granted => "policy's @max_duration".to_string(),
            (_, Some(t))
                if t.verified
                    .as_ref()
                    .and_then(|c| c.window_end)
                    .is_some_and(|end| {
                        end.unix_micros() - asked.created_at.unix_micros() <= granted * 1_000_000
                    }) =>
            {
                "the ticket's change window".to_string()
            }
            _ => "the entitlement's maximum, the ticket's limits or the subject's end date"
                .to_string(),
        };
        format!(
            "asked for {}, granted {}: capped by {by}",
            format_duration_seconds(asked.requested_duration_seconds),
            format_duration_seconds(granted)
        )
    } else {
        format!(
            "asked for {} and granted it",
            format_duration_seconds(asked.requested_duration_seconds)
        )
    };
    out.push(statement("window", window, at_creation));

    // The scheduled revocation: as granted, and each time it moved.
    let scheduled: Vec<&(&Event, Grant)> = sorted
        .grant
        .iter()
        .filter(|(e, _)| {
            matches!(
                e.kind,
                EventKind::GrantCreated | EventKind::GrantRescheduled
            )
        })
        .collect();
    if let Some((_, last)) = scheduled.last() {
        let mut text = if last.permanent {
            "none: it ends only when ended early".to_string()
        } else {
            format!("at {}", last.expires_at.to_rfc3339())
        };
        if scheduled.len() > 1 {
            text.push_str(&format!(" (moved {} time(s))", scheduled.len() - 1));
        }
        if let Some(uses) = last.max_uses {
            text.push_str(&format!(", or after {uses} allowed evaluation(s)"));
        }
        out.push(statement(
            "scheduled_revocation",
            text,
            scheduled.iter().map(|(e, _)| cite(e)).collect(),
        ));
    }

    // More time: each extension, decided as a request of its own.
    let mut extensions = Vec::new();
    let mut extension_cites = Vec::new();
    for (moved, _) in &scheduled {
        let Some(id) = moved.data.get("extended_by").and_then(|v| v.as_str()) else {
            continue;
        };
        let mut asked_more: Option<Request> = None;
        for event in events {
            if let Some(r) = record::<Request>(event, "request")?
                && r.id.to_string() == id
            {
                extension_cites.push(cite(event));
                asked_more = Some(r);
            }
        }
        let Some(r) = asked_more else {
            return Err(StoryError::NoRequest(id.parse().map_err(
                |e: writ_domain::InvalidId| StoryError::Unreadable {
                    seq: moved.seq,
                    what: "extended_by",
                    problem: e.to_string(),
                },
            )?));
        };
        extension_cites.push(cite(moved));
        let approvers: Vec<&str> = r.approvals.iter().map(|a| a.approver.as_str()).collect();
        extensions.push(format!(
            "{} asked for {} more at {}: {}; {}",
            r.requester,
            format_duration_seconds(r.requested_duration_seconds),
            r.created_at.to_rfc3339(),
            quoted(&r.justification),
            if approvers.is_empty() {
                format!(
                    "granted {} without approval",
                    format_duration_seconds(r.duration_seconds)
                )
            } else {
                format!(
                    "granted {}, approved by {}",
                    format_duration_seconds(r.duration_seconds),
                    approvers.join(", ")
                )
            }
        ));
    }
    if !extensions.is_empty() {
        out.push(statement(
            "extensions",
            extensions.join("; then "),
            extension_cites,
        ));
    }

    // Applied on the target.
    let of_kind = |kind: EventKind| sorted.grant.iter().filter(move |(e, _)| e.kind == kind);
    if let Some((event, g)) = of_kind(EventKind::GrantActivated).next() {
        out.push(statement(
            "applied",
            format!(
                "applied on the target and read back at {}",
                g.granted_at.unwrap_or(event.at).to_rfc3339()
            ),
            vec![cite(event)],
        ));
    }
    let uses: Vec<Citation> = of_kind(EventKind::GrantUsed)
        .map(|(e, _)| cite(e))
        .collect();
    if !uses.is_empty() {
        out.push(statement(
            "uses",
            format!("{} allowed evaluation(s) counted", uses.len()),
            uses,
        ));
    }

    // The revocation: who or what, why, when; failures on the way.
    match of_kind(EventKind::GrantRevokeStarted).next() {
        Some((event, g)) => {
            let failures: Vec<Citation> = of_kind(EventKind::GrantRevokeFailed)
                .chain(of_kind(EventKind::GrantRevokeEscalated))
                .map(|(e, _)| cite(e))
                .collect();
            let mut text = format!(
                "by {} at {}: {}",
                g.revoked_by
                    .as_ref()
                    .map_or_else(|| event.actor.to_string(), |who| who.to_string()),
                g.revoked_at.unwrap_or(event.at).to_rfc3339(),
                g.revoke_reason
                    .as_ref()
                    .map_or("no reason recorded", |r| r.as_str())
            );
            if !failures.is_empty() {
                text.push_str(&format!(
                    "; the target refused or did not answer {} time(s) first",
                    failures.len()
                ));
            }
            let mut cites = vec![cite(event)];
            cites.extend(failures);
            out.push(statement("revocation", text, cites));
        }
        None => out.push(statement(
            "revocation",
            format!(
                "none recorded: the lease was {} at its last event",
                sorted
                    .grant
                    .last()
                    .map_or("unknown", |(_, g)| g.state.as_str())
            ),
            sorted
                .grant
                .last()
                .map(|(e, _)| cite(e))
                .into_iter()
                .collect(),
        )),
    }

    // Its verification.
    if let Some((event, g)) = of_kind(EventKind::GrantRevoked).next() {
        let verified = g.verified_at.unwrap_or(event.at).to_rfc3339();
        let mut text = match g.retained_by {
            Some(other) => format!(
                "at {verified}: the account keeps the role through overlapping grant {other}, which is still in force"
            ),
            None => format!("at {verified}: read back from the target without the access"),
        };
        if let Some(at) = event
            .data
            .get("removed_while_ledger_unavailable_at")
            .and_then(|v| v.as_str())
        {
            text.push_str(&format!(
                " (removed at {at}, while the ledger could not be written; recorded when it could)"
            ));
        }
        out.push(statement("verification", text, vec![cite(event)]));
    }
    Ok(out)
}
