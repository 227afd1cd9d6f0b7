//! Metric names, in one place so the API's `/metrics` and the docs agree.

pub const REQUESTS: &str = "writ_requests_total";
pub const POLICY_ERRORS: &str = "writ_policy_evaluation_errors_total";
pub const REVOCATION_LAG: &str = "writ_revocation_lag_seconds";
pub const REVOCATION_FAILURES: &str = "writ_revocation_failures_total";
pub const GRANT_APPLY_FAILURES: &str = "writ_grant_apply_failures_total";
pub const GRANTS: &str = "writ_grants";
pub const FAILED_REVOCATIONS: &str = "writ_failed_revocations";
/// Write transactions committed since start, and the database commits that carried
/// them (fewer when group commit batched them).
pub const WRITE_TRANSACTIONS: &str = "writ_write_transactions";
pub const DATABASE_COMMITS: &str = "writ_database_commits";
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
