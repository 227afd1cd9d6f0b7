//! Metric names, in one place so the API's `/metrics` and the docs agree.

pub const REQUESTS: &str = "writ_requests_total";
pub const POLICY_ERRORS: &str = "writ_policy_evaluation_errors_total";
pub const REVOCATION_LAG: &str = "writ_revocation_lag_seconds";
pub const REVOCATION_FAILURES: &str = "writ_revocation_failures_total";
pub const GRANT_APPLY_FAILURES: &str = "writ_grant_apply_failures_total";
pub const GRANTS: &str = "writ_grants";
pub const FAILED_REVOCATIONS: &str = "writ_failed_revocations";
