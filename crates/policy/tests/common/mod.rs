//! What the differential tests compare of an authorization answer.

use std::collections::BTreeSet;

use cedar_policy::{AuthorizationError, Decision, Response};

/// The decision, the determining policies and the erroring policies.
pub type Summary = (Decision, BTreeSet<String>, BTreeSet<String>);

pub fn summary(response: &Response) -> Summary {
    let reason = response
        .diagnostics()
        .reason()
        .map(ToString::to_string)
        .collect();
    let errors = response
        .diagnostics()
        .errors()
        .map(|error| match error {
            AuthorizationError::PolicyEvaluationError(e) => e.policy_id().to_string(),
        })
        .collect();
    (response.decision(), reason, errors)
}
