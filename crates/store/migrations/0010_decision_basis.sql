-- What the live grants were last decided on as a whole: a fingerprint of the policy set
-- and the configured identities and entitlements. A node that starts on the same basis
-- does not decide every live grant again, so a rolling restart of several nodes costs
-- no re-decisions. Operational bookkeeping, like jobs: the decisions are on the ledger.
CREATE TABLE decision_basis (
    id BIGINT PRIMARY KEY,
    basis TEXT NOT NULL,
    decided_at_us BIGINT NOT NULL
);
