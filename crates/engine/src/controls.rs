//! The controls report: for each control writ serves — NIST CSF 2.0 PR.AA (identity
//! management, authentication and access control) and the OWASP Non-Human Identities
//! Top 10 risks it addresses — the evidence the ledger holds over a period: counts,
//! exceptions, failures, and the ledger range and checkpoints that back them.
//! docs/controls.md maps each control to the feature and the test that proves it.

use std::collections::{BTreeMap, HashMap};

use writ_domain::lifecycle::{GrantState, RequestState};
use writ_domain::{IdentityKind, Timestamp};
use writ_store::KindCount;

use crate::{Engine, EngineError};

/// The report's columns.
pub(crate) const COLUMNS: [&str; 8] = [
    "framework",
    "control",
    "title",
    "writ_feature",
    "evidence",
    "exceptions",
    "failures",
    "ledger_seq",
];

/// Ledger events of a period, by kind.
struct Period {
    by_kind: HashMap<String, KindCount>,
}

impl Period {
    fn count(&self, kind: &str) -> i64 {
        self.by_kind.get(kind).map_or(0, |k| k.count)
    }

    /// `first-last`: where the events of these kinds lie on the ledger ("-": none).
    fn range(&self, kinds: &[&str]) -> String {
        let found: Vec<&KindCount> = kinds.iter().filter_map(|k| self.by_kind.get(*k)).collect();
        match (
            found.iter().map(|k| k.first_seq).min(),
            found.iter().map(|k| k.last_seq).max(),
        ) {
            (Some(first), Some(last)) => format!("{first}-{last}"),
            _ => "-".into(),
        }
    }
}

/// Grants to services and agents made in the period, and how they stand.
#[derive(Default)]
struct NonHuman {
    granted: usize,
    ended: usize,
    live: usize,
    credentials: usize,
    credentials_ended: usize,
    failing: usize,
    failing_credentials: usize,
}

impl Engine {
    async fn non_human_grants(&self, since: Timestamp) -> Result<NonHuman, EngineError> {
        let non_human: Vec<String> = self
            .identities()
            .iter()
            .filter(|i| i.kind != IdentityKind::User)
            .map(|i| i.name.to_string())
            .collect();
        let mut tally = NonHuman::default();
        for grant in self.store.grants_of_since(&non_human, since).await? {
            let made = grant.granted_at.unwrap_or(grant.expires_at);
            if made < since {
                continue;
            }
            let ended = grant.state == GrantState::Revoked;
            let failing = grant.state == GrantState::Failed;
            tally.granted += 1;
            tally.ended += usize::from(ended);
            tally.live += usize::from(!ended);
            tally.failing += usize::from(failing);
            if grant.credential {
                tally.credentials += 1;
                tally.credentials_ended += usize::from(ended);
                tally.failing_credentials += usize::from(failing);
            }
        }
        Ok(tally)
    }

    /// The rows of the controls report since `since`, with its summary.
    pub(crate) async fn controls(
        &self,
        since: Timestamp,
        summary: &mut BTreeMap<String, String>,
    ) -> Result<Vec<Vec<String>>, EngineError> {
        let counts = self.store.event_counts_since(since).await?;
        let period = Period {
            by_kind: counts.iter().map(|k| (k.kind.clone(), k.clone())).collect(),
        };
        let c = |kind: &str| period.count(kind);
        let outcomes = self.store.request_outcomes(since).await?;
        let requests_in = |state: RequestState| -> i64 {
            outcomes
                .iter()
                .filter(|(_, s, _)| s == state.as_str())
                .map(|(_, _, n)| n)
                .sum()
        };
        let requests: i64 = outcomes.iter().map(|(_, _, n)| n).sum();
        let nhi = self.non_human_grants(since).await?;

        let row = |framework: &str,
                   control: &str,
                   title: &str,
                   feature: &str,
                   evidence: String,
                   exceptions: String,
                   failures: String,
                   kinds: &[&str]| {
            vec![
                framework.to_string(),
                control.to_string(),
                title.to_string(),
                feature.to_string(),
                evidence,
                exceptions,
                failures,
                period.range(kinds),
            ]
        };
        let none = || "none".to_string();
        let rows = vec![
            row(
                "NIST CSF 2.0",
                "PR.AA-01",
                "Identities and credentials are managed",
                "identities in writ.toml and pushed over SCIM; leavers lose every grant; orphaned services and agents disabled",
                format!(
                    "{} people and {} groups provisioned, {} and {} changed, {} and {} deprovisioned; {} services or agents orphaned, {} disabled, {} adopted",
                    c("directory.user_created"),
                    c("directory.group_created"),
                    c("directory.user_updated"),
                    c("directory.group_updated"),
                    c("directory.user_deleted"),
                    c("directory.group_deleted"),
                    c("identity.orphaned"),
                    c("identity.orphan_disabled"),
                    c("identity.adopted"),
                ),
                none(),
                none(),
                &[
                    "directory.user_created",
                    "directory.user_updated",
                    "directory.user_deleted",
                    "directory.group_created",
                    "directory.group_updated",
                    "directory.group_deleted",
                    "identity.orphaned",
                    "identity.orphan_disabled",
                    "identity.adopted",
                ],
            ),
            row(
                "NIST CSF 2.0",
                "PR.AA-03",
                "Users, services and hardware are authenticated",
                "bearer tokens kept as keyed hashes and revocable at once; OIDC, workload and client-certificate identities; signed ITSM webhooks",
                format!(
                    "{} tokens issued, {} revoked",
                    c("token.issued"),
                    c("token.revoked")
                ),
                none(),
                format!(
                    "{} unauthenticated webhook deliveries refused",
                    c("itsm.webhook_rejected")
                ),
                &["token.issued", "token.revoked", "itsm.webhook_rejected"],
            ),
            row(
                "NIST CSF 2.0",
                "PR.AA-05",
                "Access permissions are defined in policy, managed, enforced and reviewed (least privilege, separation of duties)",
                "Cedar decisions on every request; approvals never by a party to the request; time-bound leases revoked and verified at expiry; access reviews; reconciliation",
                format!(
                    "{requests} requests ({} approved, {} denied, {} rejected, {} expired, {} cancelled), {} approvals; {} grants applied, {} revoked and verified gone; {} review decisions in {} campaigns; {} policy changes, {} re-decisions of live grants",
                    requests_in(RequestState::Approved),
                    requests_in(RequestState::Denied),
                    requests_in(RequestState::Rejected),
                    requests_in(RequestState::Expired),
                    requests_in(RequestState::Cancelled),
                    c("request.approval_recorded"),
                    c("grant.activated"),
                    c("grant.revoked"),
                    c("review.item_decided"),
                    c("review.campaign_started"),
                    c("policy.reloaded"),
                    c("grants.redecided"),
                ),
                format!(
                    "{} exceptions accepted; {} break-glass activations, {} reviews overdue",
                    c("finding.accepted"),
                    c("break_glass.activated"),
                    c("break_glass.review_overdue"),
                ),
                format!(
                    "{} failed revocation attempts, {} escalated; {} drift findings opened",
                    c("grant.revoke_failed"),
                    c("grant.revoke_escalated"),
                    c("finding.opened"),
                ),
                &[
                    "request.created",
                    "request.approval_recorded",
                    "grant.activated",
                    "grant.revoked",
                    "grant.revoke_failed",
                    "grant.revoke_escalated",
                    "review.item_decided",
                    "review.campaign_started",
                    "policy.reloaded",
                    "grants.redecided",
                    "finding.opened",
                    "finding.accepted",
                    "break_glass.activated",
                    "break_glass.review_overdue",
                ],
            ),
            row(
                "OWASP NHI Top 10 (2025)",
                "NHI1",
                "Improper offboarding",
                "a service or agent whose owner leaves is orphaned, told to its owner's manager and disabled after the grace period; a disabled identity gets nothing",
                format!(
                    "{} orphaned, {} disabled, {} adopted by a new owner",
                    c("identity.orphaned"),
                    c("identity.orphan_disabled"),
                    c("identity.adopted"),
                ),
                none(),
                none(),
                &[
                    "identity.orphaned",
                    "identity.orphan_disabled",
                    "identity.adopted",
                ],
            ),
            row(
                "OWASP NHI Top 10 (2025)",
                "NHI5",
                "Overprivileged NHI",
                "services and agents hold access only as time-bound leases decided by policy, agents only for the user they act for",
                format!(
                    "{} grants to services and agents: {} ended and verified gone, {} live",
                    nhi.granted, nhi.ended, nhi.live
                ),
                none(),
                format!("{} revocations failing", nhi.failing),
                &["grant.activated", "grant.revoked"],
            ),
            row(
                "OWASP NHI Top 10 (2025)",
                "NHI7",
                "Long-lived secrets",
                "short-lived credentials: an account and password made per lease, shown once, stored nowhere, dropped at its end; tokens expire",
                format!(
                    "{} short-lived credentials issued, {} dropped at their end; {} tokens issued",
                    nhi.credentials,
                    nhi.credentials_ended,
                    c("token.issued")
                ),
                none(),
                format!("{} credential removals failing", nhi.failing_credentials),
                &["grant.activated", "grant.revoked", "token.issued"],
            ),
        ];

        let events: i64 = counts.iter().map(|k| k.count).sum();
        summary.insert("events".into(), events.to_string());
        let first = counts.iter().map(|k| k.first_seq).min();
        let last = counts.iter().map(|k| k.last_seq).max();
        summary.insert(
            "ledger_seq".into(),
            match (first, last) {
                (Some(first), Some(last)) => format!("{first}-{last}"),
                _ => "-".into(),
            },
        );
        summary.insert("checkpoints".into(), c("ledger.checkpoint").to_string());
        summary.insert(
            "last_checkpoint_seq".into(),
            period
                .by_kind
                .get("ledger.checkpoint")
                .map_or_else(|| "-".into(), |k| k.last_seq.to_string()),
        );
        Ok(rows)
    }
}
