//! Reports for auditors and owners: standing access, exceptions nearing or past their
//! expiry, failing revocations, time to revoke, break-glass uses, orphans, requests by
//! outcome, and what agents hold. Each is a table (columns and rows of text, so a
//! client can print it, export it as CSV or read it as JSON) with a few summary facts,
//! read from the state tables (which `audit verify` checks against the ledger).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use writ_domain::lifecycle::GrantState;
use writ_domain::{FindingState, IdentityKind, RevokeReason, Timestamp};
use writ_store::ActivationFilter;

use crate::{Caller, Engine, EngineError, ErrorCode};

const DAY_SECONDS: i64 = 86_400;

/// The reports writ makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportName {
    StandingAccess,
    Exceptions,
    FailedRevocations,
    TimeToRevoke,
    BreakGlass,
    Orphans,
    RequestsByOutcome,
    AgentAccess,
    /// Live grants without an end (`permanent`, where a `@permanent` policy allowed it).
    PermanentAccess,
    /// Evidence per control: NIST CSF 2.0 PR.AA and the OWASP NHI Top 10.
    Controls,
}

impl ReportName {
    pub const ALL: [Self; 10] = [
        Self::StandingAccess,
        Self::Exceptions,
        Self::FailedRevocations,
        Self::TimeToRevoke,
        Self::BreakGlass,
        Self::Orphans,
        Self::RequestsByOutcome,
        Self::AgentAccess,
        Self::PermanentAccess,
        Self::Controls,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::StandingAccess => "standing-access",
            Self::Exceptions => "exceptions",
            Self::FailedRevocations => "failed-revocations",
            Self::TimeToRevoke => "time-to-revoke",
            Self::BreakGlass => "break-glass",
            Self::Orphans => "orphans",
            Self::RequestsByOutcome => "requests-by-outcome",
            Self::AgentAccess => "agent-access",
            Self::PermanentAccess => "permanent-access",
            Self::Controls => "controls",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| name.as_str() == text)
    }

    /// The `days` a report takes when none is given; `None`: it takes none.
    pub fn default_days(self) -> Option<i64> {
        match self {
            Self::StandingAccess
            | Self::TimeToRevoke
            | Self::BreakGlass
            | Self::RequestsByOutcome => Some(30),
            Self::Exceptions => Some(14),
            Self::Controls => Some(90),
            Self::FailedRevocations | Self::Orphans | Self::AgentAccess | Self::PermanentAccess => {
                None
            }
        }
    }
}

/// One report.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Report {
    pub report: String,
    /// What it covers, in words (with the `days` it was made for).
    pub scope: String,
    pub generated_at: Timestamp,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Totals and figures over the rows.
    pub summary: BTreeMap<String, String>,
}

fn table(columns: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    (
        columns.iter().map(|c| (*c).to_string()).collect(),
        Vec::new(),
    )
}

fn opt(at: Option<Timestamp>) -> String {
    at.map(|t| t.to_string()).unwrap_or_default()
}

/// The value at quantile `q` (0..=1) of sorted `values` (nearest rank).
fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Engine {
    /// Grants that may hold access now or soon: active and pending.
    async fn live_grants(&self) -> Result<Vec<writ_domain::Grant>, EngineError> {
        let mut grants = self.store.grants_in(GrantState::Active).await?;
        grants.extend(self.store.grants_in(GrantState::Pending).await?);
        Ok(grants)
    }

    /// Makes report `name` (auditors and admins only). `days` as `ReportName::default_days`.
    pub async fn report(
        &self,
        caller: &Caller,
        name: ReportName,
        days: Option<i64>,
    ) -> Result<Report, EngineError> {
        self.require_auditor(caller, "read reports")?;
        let days = days.or(name.default_days()).unwrap_or(0);
        if name.default_days().is_some() && !(1..=3650).contains(&days) {
            return Err(EngineError::new(
                ErrorCode::InvalidDuration,
                "days must be a whole number from 1 to 3650",
            ));
        }
        let now = self.clock.now();
        let since = now.plus_seconds(-days * DAY_SECONDS);
        let mut summary = BTreeMap::new();
        let (scope, columns, rows) = match name {
            ReportName::Controls => (
                format!(
                    "evidence per control over the last {days} days (NIST CSF 2.0 PR.AA, OWASP NHI Top 10; docs/controls.md)"
                ),
                crate::controls::COLUMNS
                    .iter()
                    .map(|c| (*c).to_string())
                    .collect(),
                self.controls(since, &mut summary).await?,
            ),
            ReportName::StandingAccess => {
                let (columns, mut rows) = table(&[
                    "grant",
                    "subject",
                    "entitlement",
                    "account",
                    "granted_at",
                    "expires_at",
                    "age_days",
                ]);
                let mut grants = self.store.grants_in(GrantState::Active).await?;
                grants.retain(|g| g.granted_at.is_some_and(|at| at <= since));
                grants.sort_by_key(|g| g.granted_at);
                for g in &grants {
                    let age = g
                        .granted_at
                        .map_or(0, |at| now.millis_since(at).div_euclid(DAY_SECONDS * 1000));
                    rows.push(vec![
                        g.id.to_string(),
                        g.subject.to_string(),
                        g.entitlement.to_string(),
                        g.account.clone(),
                        opt(g.granted_at),
                        g.expires_at.to_string(),
                        age.to_string(),
                    ]);
                }
                summary.insert("grants".into(), rows.len().to_string());
                (
                    format!("active grants held for more than {days} days"),
                    columns,
                    rows,
                )
            }
            ReportName::Exceptions => {
                let (columns, mut rows) = table(&[
                    "finding",
                    "kind",
                    "entitlement",
                    "account",
                    "owner",
                    "expires_at",
                    "status",
                ]);
                let horizon = now.plus_seconds(days * DAY_SECONDS);
                let mut findings = self.store.findings_in(FindingState::Accepted).await?;
                // A finding open again kept its last exception: that one expired.
                findings.extend(
                    self.store
                        .findings_in(FindingState::Open)
                        .await?
                        .into_iter()
                        .filter(|f| f.exception.is_some()),
                );
                for f in &findings {
                    let Some(exception) = &f.exception else {
                        continue;
                    };
                    let status = match f.state {
                        FindingState::Open => "expired: open again",
                        _ if exception.expires_at <= now => "expired",
                        _ if exception.expires_at <= horizon => "expiring",
                        _ => continue,
                    };
                    rows.push(vec![
                        f.id.to_string(),
                        f.kind.as_str().to_string(),
                        f.entitlement.to_string(),
                        f.account.clone(),
                        exception.owner.to_string(),
                        exception.expires_at.to_string(),
                        status.to_string(),
                    ]);
                }
                rows.sort_by(|a, b| a[5].cmp(&b[5]));
                summary.insert("exceptions".into(), rows.len().to_string());
                (
                    format!("exceptions expired or expiring within {days} days"),
                    columns,
                    rows,
                )
            }
            ReportName::FailedRevocations => {
                let (columns, mut rows) = table(&[
                    "grant",
                    "subject",
                    "entitlement",
                    "account",
                    "state",
                    "attempts",
                    "escalated_at",
                    "last_error",
                ]);
                let failing = self.store.failing_revocations().await?;
                for f in &failing {
                    rows.push(vec![
                        f.grant.id.to_string(),
                        f.grant.subject.to_string(),
                        f.grant.entitlement.to_string(),
                        f.grant.account.clone(),
                        f.grant.state.as_str().to_string(),
                        f.attempts.to_string(),
                        opt(f.escalated_at),
                        f.last_error.clone().unwrap_or_default(),
                    ]);
                }
                let escalated = failing.iter().filter(|f| f.escalated_at.is_some()).count();
                summary.insert("failing".into(), rows.len().to_string());
                summary.insert("escalated".into(), escalated.to_string());
                (
                    "revocations that failed and are being retried (failed: retried until verified; escalated: still failing after revocation.escalate_after)".into(),
                    columns,
                    rows,
                )
            }
            ReportName::TimeToRevoke => {
                let (columns, mut rows) = table(&[
                    "ended",
                    "grants",
                    "p50_seconds",
                    "p95_seconds",
                    "max_seconds",
                ]);
                let mut expiries = Vec::new();
                let mut early = Vec::new();
                for g in self.store.ended_leases().await? {
                    let Some(verified) = g.verified_at.filter(|at| *at >= since) else {
                        continue;
                    };
                    // From when it should have ended: its term, or the decision to end it.
                    let expiry = g.revoke_reason.as_ref().is_none_or(RevokeReason::is_expiry);
                    let from = if expiry {
                        Some(g.expires_at)
                    } else {
                        g.revoked_at
                    };
                    let Some(from) = from else { continue };
                    let lag = verified.millis_since(from).max(0).div_euclid(1000);
                    if expiry {
                        expiries.push(lag);
                    } else {
                        early.push(lag);
                    }
                }
                for (ended, mut lags) in [("at expiry", expiries), ("early", early)] {
                    lags.sort_unstable();
                    rows.push(vec![
                        ended.to_string(),
                        lags.len().to_string(),
                        quantile(&lags, 0.5).to_string(),
                        quantile(&lags, 0.95).to_string(),
                        lags.last().copied().unwrap_or(0).to_string(),
                    ]);
                }
                (
                    format!(
                        "seconds from a lease's end (its term, or the decision to end it early) to the target verified without it, for leases ended in the last {days} days"
                    ),
                    columns,
                    rows,
                )
            }
            ReportName::BreakGlass => {
                let (columns, mut rows) = table(&[
                    "activation",
                    "profile",
                    "activator",
                    "activated_at",
                    "review_state",
                    "review_due_at",
                    "reviewer",
                ]);
                let mut filter = ActivationFilter {
                    limit: Some(1000),
                    ..ActivationFilter::default()
                };
                'pages: loop {
                    let page = self.store.activations(&filter).await?;
                    for a in &page.items {
                        if a.activated_at < since {
                            break 'pages;
                        }
                        rows.push(vec![
                            a.id.to_string(),
                            a.profile.clone(),
                            a.activator.to_string(),
                            a.activated_at.to_string(),
                            if a.overdue(now) {
                                "overdue".to_string()
                            } else {
                                a.review_state.as_str().to_string()
                            },
                            a.review_due_at.to_string(),
                            a.reviewer
                                .as_ref()
                                .map(ToString::to_string)
                                .unwrap_or_default(),
                        ]);
                    }
                    match page.next {
                        Some(next) => filter.after = Some(next),
                        None => break,
                    }
                }
                let overdue = rows.iter().filter(|r| r[4] == "overdue").count();
                summary.insert("uses".into(), rows.len().to_string());
                summary.insert("overdue_reviews".into(), overdue.to_string());
                (
                    format!("break-glass activations in the last {days} days, with their reviews"),
                    columns,
                    rows,
                )
            }
            ReportName::Orphans => {
                let (columns, mut rows) =
                    table(&["identity", "kind", "owner", "orphaned_at", "disabled_at"]);
                for o in self.store.orphans().await? {
                    let kind = self
                        .identity(&o.identity)
                        .map(|i| i.kind.as_str().to_string())
                        .unwrap_or_default();
                    rows.push(vec![
                        o.identity,
                        kind,
                        o.owner,
                        o.orphaned_at.to_string(),
                        opt(o.disabled_at),
                    ]);
                }
                summary.insert("orphans".into(), rows.len().to_string());
                (
                    "services and agents whose owner left (disabled once identities.orphan_grace passed)".into(),
                    columns,
                    rows,
                )
            }
            ReportName::RequestsByOutcome => {
                const STATES: [&str; 6] = [
                    "approved",
                    "pending_approval",
                    "denied",
                    "rejected",
                    "cancelled",
                    "expired",
                ];
                let mut columns = vec!["entitlement".to_string()];
                columns.extend(STATES.iter().map(|s| (*s).to_string()));
                columns.push("total".into());
                let mut counts: BTreeMap<String, HashMap<String, i64>> = BTreeMap::new();
                for (entitlement, state, n) in self.store.request_outcomes(since).await? {
                    *counts
                        .entry(entitlement)
                        .or_default()
                        .entry(state)
                        .or_default() += n;
                }
                let rows = counts
                    .into_iter()
                    .map(|(entitlement, by_state)| {
                        let mut row = vec![entitlement];
                        row.extend(
                            STATES
                                .iter()
                                .map(|s| by_state.get(*s).copied().unwrap_or(0).to_string()),
                        );
                        row.push(by_state.values().sum::<i64>().to_string());
                        row
                    })
                    .collect();
                (
                    format!(
                        "requests made in the last {days} days, by entitlement and what became of them"
                    ),
                    columns,
                    rows,
                )
            }
            ReportName::AgentAccess => {
                let (columns, mut rows) =
                    table(&["owner", "agent", "entitlement", "grant", "expires_at"]);
                let grants = self.live_grants().await?;
                for g in &grants {
                    let Some(agent) = self
                        .identity(g.subject.as_str())
                        .filter(|i| i.kind == IdentityKind::Agent)
                    else {
                        continue;
                    };
                    rows.push(vec![
                        agent
                            .owner
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                        g.subject.to_string(),
                        g.entitlement.to_string(),
                        g.id.to_string(),
                        g.expires_at.to_string(),
                    ]);
                }
                rows.sort();
                let mut per_owner: BTreeMap<String, usize> = BTreeMap::new();
                for row in &rows {
                    *per_owner
                        .entry(format!("grants_of_{}", row[0]))
                        .or_default() += 1;
                }
                summary.extend(per_owner.into_iter().map(|(k, v)| (k, v.to_string())));
                (
                    "access agents hold now (active and pending grants), by the person who owns each agent".into(),
                    columns,
                    rows,
                )
            }
            ReportName::PermanentAccess => {
                let (columns, mut rows) = table(&[
                    "grant",
                    "subject",
                    "entitlement",
                    "account",
                    "state",
                    "granted_at",
                    "request",
                ]);
                let mut grants = self.live_grants().await?;
                grants.retain(|g| g.permanent);
                grants.sort_by_key(|g| g.id);
                for g in &grants {
                    rows.push(vec![
                        g.id.to_string(),
                        g.subject.to_string(),
                        g.entitlement.to_string(),
                        g.account.clone(),
                        g.state.to_string(),
                        opt(g.granted_at),
                        g.request_id.to_string(),
                    ]);
                }
                summary.insert("grants".into(), rows.len().to_string());
                (
                    "live grants without an end (active and pending), each allowed by a @permanent policy".into(),
                    columns,
                    rows,
                )
            }
        };
        Ok(Report {
            report: name.as_str().to_string(),
            scope,
            generated_at: now,
            columns,
            rows,
            summary,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let values = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(quantile(&values, 0.5), 5);
        assert_eq!(quantile(&values, 0.95), 10);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(quantile(&[7], 0.95), 7);
    }

    #[test]
    fn names_read_back() {
        for name in ReportName::ALL {
            assert_eq!(ReportName::parse(name.as_str()), Some(name));
        }
        assert_eq!(ReportName::parse("standing"), None);
    }
}
