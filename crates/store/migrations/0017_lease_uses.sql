-- Leases that end after a number of uses (`max_uses` on a PEP-enforced entitlement):
-- how many evaluations each has allowed. One row per lease used at least once; a use
-- is counted only while the count is below the lease's maximum, in one statement, so
-- concurrent evaluations never allow more uses than the lease has.
CREATE TABLE lease_uses (
    grant_id TEXT PRIMARY KEY,
    used BIGINT NOT NULL
);
