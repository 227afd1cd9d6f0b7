//! Metric names, in one place so the API's `/metrics` and the docs agree, and the
//! catalogue that gives each its help text and its known label values at zero from
//! start-up (an alert on a counter sees 0, not "no data", before the first event).

use writ_config::Config;
use writ_domain::lifecycle::RequestState;
use writ_domain::{DriftAction, FindingKind};

pub const REQUESTS: &str = "writ_requests_total";
pub const POLICY_ERRORS: &str = "writ_policy_evaluation_errors_total";
pub const REVOCATION_LAG: &str = "writ_revocation_lag_seconds";
pub const REVOCATION_FAILURES: &str = "writ_revocation_failures_total";
pub const GRANT_APPLY_FAILURES: &str = "writ_grant_apply_failures_total";
pub const GRANTS: &str = "writ_grants";
pub const FAILED_REVOCATIONS: &str = "writ_failed_revocations";
/// Write transactions committed since start, and the database commits that carried
/// them (fewer when group commit batched them).
pub const WRITE_TRANSACTIONS: &str = "writ_write_transactions_total";
pub const DATABASE_COMMITS: &str = "writ_database_commits_total";
/// Evidence notes delivered to ticketing systems, by action (note, close).
pub const EVIDENCE_DELIVERED: &str = "writ_evidence_delivered_total";
/// Failed attempts to deliver evidence (each is retried), by `itsm` and `reason`
/// (`unreachable`, `refused`, `rate_limited`, `write_ignored`, ...).
pub const EVIDENCE_FAILURES: &str = "writ_evidence_delivery_failures_total";
/// Evidence waiting in the outbox (gauge, read at scrape).
pub const OUTBOX_BACKLOG: &str = "writ_outbox_backlog";
/// CloudEvents delivered to notification sinks, by sink.
pub const NOTIFICATIONS_SENT: &str = "writ_notifications_sent_total";
/// Failed attempts to deliver a notification (each is retried), by sink.
pub const NOTIFICATION_FAILURES: &str = "writ_notification_failures_total";
/// Findings opened by reconciliation, by kind.
pub const FINDINGS_OPENED: &str = "writ_findings_opened_total";
/// Findings by kind and state (gauge, read at scrape).
pub const FINDINGS: &str = "writ_findings";
/// Failed attempts to revoke or reapply drifted access (each is retried next pass).
pub const FINDING_ACTION_FAILURES: &str = "writ_finding_action_failures_total";
/// Revocations escalated because they kept failing (`revocation.escalate_after`).
pub const REVOCATIONS_ESCALATED: &str = "writ_revocations_escalated_total";
/// Escalated revocations still failing (gauge, read at scrape).
pub const ESCALATED_REVOCATIONS: &str = "writ_escalated_revocations";
/// Panics of supervised background tasks (each restarted), by task.
pub const TASK_PANICS: &str = "writ_task_panics_total";
/// Expired grants found without a revocation job and given one (should stay 0).
pub const JOBLESS_GRANTS: &str = "writ_jobless_grants_total";
/// Webhook deliveries rejected (unsigned, forged, stale), by ITSM.
pub const WEBHOOKS_REJECTED: &str = "writ_webhooks_rejected_total";
/// Periodic ledger checkpoints that could not be taken (file or database).
pub const CHECKPOINT_FAILURES: &str = "writ_checkpoint_failures_total";
/// Job rows whose id is not an id of the record their kind works on (should stay 0).
pub const JOBS_UNREADABLE: &str = "writ_jobs_unreadable_total";
/// Live grants decided again under the policy in force (after a reload, at start,
/// when an identity changes).
pub const GRANTS_REDECIDED: &str = "writ_grants_redecided_total";
/// Break-glass activations, by profile: an alert on any increase is the point.
pub const BREAK_GLASS_ACTIVATIONS: &str = "writ_break_glass_activations_total";
/// Break-glass reviews that passed their deadline unsigned, by profile.
pub const BREAK_GLASS_REVIEWS_OVERDUE: &str = "writ_break_glass_reviews_overdue_total";
/// Break-glass reviews by profile and state (gauge, read at scrape).
pub const BREAK_GLASS_REVIEWS: &str = "writ_break_glass_reviews";

/// The supervised background tasks, as `writ_task_panics_total{task}` names them.
pub const TASK_NAMES: &[&str] = &[
    crate::scheduler::TASK_NAME,
    crate::evidence::COURIER_TASK_NAME,
    RECONCILER_TASK_NAME,
    crate::checkpoint::CHECKPOINT_TASK_NAME,
    crate::polling::POLLER_TASK_NAME,
];
pub const RECONCILER_TASK_NAME: &str = "reconciler";

/// Why a delivery of evidence failed: `ItsmError::kind`, or the system is gone from the
/// configuration.
const EVIDENCE_FAILURE_REASONS: &[&str] = &[
    "not_found",
    "unreachable",
    "refused",
    "rate_limited",
    "malformed",
    "bad_key",
    "write_ignored",
    "not_configured",
];

/// Gives every metric its `# HELP` and puts every counter, with each label value known
/// from the code and `config`, at zero. Call once, after the recorder is installed.
pub fn describe_all(config: &Config) {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "Access requests made, by the outcome they had when made."
    );
    describe_counter!(
        POLICY_ERRORS,
        "Cedar policy evaluation errors (the policy was treated as not satisfied), by action."
    );
    describe_histogram!(
        REVOCATION_LAG,
        metrics::Unit::Seconds,
        "Seconds from a grant's scheduled end to its verified revocation."
    );
    describe_counter!(
        REVOCATION_FAILURES,
        "Failed revocation attempts (each is retried)."
    );
    describe_counter!(
        GRANT_APPLY_FAILURES,
        "Failed attempts to apply a grant on its target."
    );
    describe_gauge!(GRANTS, "Grants by state.");
    describe_gauge!(
        FAILED_REVOCATIONS,
        "Grants whose revocation failed for good."
    );
    describe_counter!(
        WRITE_TRANSACTIONS,
        "Write transactions committed since start."
    );
    describe_counter!(
        DATABASE_COMMITS,
        "Database commits that carried the write transactions (fewer when group commit batched them)."
    );
    describe_counter!(
        EVIDENCE_DELIVERED,
        "Evidence delivered to ticketing systems, by action (note, close)."
    );
    describe_counter!(
        EVIDENCE_FAILURES,
        "Failed attempts to deliver evidence to a ticketing system (each is retried), by itsm and reason."
    );
    describe_gauge!(OUTBOX_BACKLOG, "Evidence waiting for delivery.");
    describe_counter!(NOTIFICATIONS_SENT, "CloudEvents delivered, by sink.");
    describe_counter!(
        NOTIFICATION_FAILURES,
        "Failed attempts to deliver a CloudEvent (each is retried), by sink."
    );
    describe_counter!(
        FINDINGS_OPENED,
        "Findings opened by reconciliation (and not_permitted ones by policy re-decisions), by kind."
    );
    describe_gauge!(FINDINGS, "Reconciliation findings by kind and state.");
    describe_counter!(
        FINDING_ACTION_FAILURES,
        "Failed attempts to revoke or reapply drifted access (retried next pass), by action."
    );
    describe_counter!(
        REVOCATIONS_ESCALATED,
        "Revocations escalated because they kept failing."
    );
    describe_gauge!(
        ESCALATED_REVOCATIONS,
        "Escalated revocations still failing."
    );
    describe_counter!(
        TASK_PANICS,
        "Panics of supervised background tasks (each restarted), by task."
    );
    describe_counter!(
        JOBLESS_GRANTS,
        "Expired grants found without a revocation job and given one (should stay 0)."
    );
    describe_counter!(
        WEBHOOKS_REJECTED,
        "Webhook deliveries rejected (unsigned, forged, stale), by itsm."
    );
    describe_counter!(
        CHECKPOINT_FAILURES,
        "Periodic ledger checkpoints that could not be taken."
    );
    describe_counter!(
        JOBS_UNREADABLE,
        "Scheduled jobs whose record id could not be read (put off, never guessed)."
    );

    describe_counter!(
        GRANTS_REDECIDED,
        "Live grants decided again under the policy in force."
    );

    describe_counter!(
        BREAK_GLASS_ACTIVATIONS,
        "Break-glass activations (access granted without approval), by profile."
    );
    describe_counter!(
        BREAK_GLASS_REVIEWS_OVERDUE,
        "Break-glass reviews that passed their deadline without a sign-off, by profile."
    );
    describe_gauge!(
        BREAK_GLASS_REVIEWS,
        "Break-glass activations by profile and review state (open, overdue, signed_off)."
    );

    // Registered, so that it is exported with no observation yet.
    let _ = metrics::histogram!(REVOCATION_LAG);
    for name in [
        REVOCATION_FAILURES,
        GRANT_APPLY_FAILURES,
        REVOCATIONS_ESCALATED,
        JOBLESS_GRANTS,
        CHECKPOINT_FAILURES,
        JOBS_UNREADABLE,
        GRANTS_REDECIDED,
        WRITE_TRANSACTIONS,
        DATABASE_COMMITS,
    ] {
        metrics::counter!(name).increment(0);
    }
    for outcome in [
        RequestState::Denied,
        RequestState::PendingApproval,
        RequestState::Approved,
    ] {
        metrics::counter!(REQUESTS, "outcome" => outcome.as_str()).increment(0);
    }
    for profile in config.break_glass.keys() {
        metrics::counter!(BREAK_GLASS_ACTIVATIONS, "profile" => profile.clone()).increment(0);
        metrics::counter!(BREAK_GLASS_REVIEWS_OVERDUE, "profile" => profile.clone()).increment(0);
    }
    for action in ["request", "approve", "revoke", "break_glass"] {
        metrics::counter!(POLICY_ERRORS, "action" => action).increment(0);
    }
    for action in ["note", "close", "open_incident"] {
        metrics::counter!(EVIDENCE_DELIVERED, "action" => action).increment(0);
    }
    for itsm in config.itsms.keys() {
        metrics::counter!(WEBHOOKS_REJECTED, "itsm" => itsm.clone()).increment(0);
        for reason in EVIDENCE_FAILURE_REASONS {
            metrics::counter!(EVIDENCE_FAILURES, "itsm" => itsm.clone(), "reason" => *reason)
                .increment(0);
        }
    }
    for sink in config.notify.keys() {
        metrics::counter!(NOTIFICATIONS_SENT, "sink" => sink.clone()).increment(0);
        metrics::counter!(NOTIFICATION_FAILURES, "sink" => sink.clone()).increment(0);
    }
    for kind in FindingKind::ALL {
        metrics::counter!(FINDINGS_OPENED, "kind" => kind.as_str()).increment(0);
    }
    for action in [DriftAction::Revoke, DriftAction::Reapply] {
        metrics::counter!(FINDING_ACTION_FAILURES, "action" => action.as_str()).increment(0);
    }
    for task in TASK_NAMES {
        metrics::counter!(TASK_PANICS, "task" => *task).increment(0);
    }
}
