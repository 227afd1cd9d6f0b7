-- Findings of reconciliation: differences between a target and writ's grants.
-- `doc` is the ledgered record; the other leading columns copy its fields for
-- filtering. `last_seen_at_us` and `last_error` are bookkeeping of each pass, kept
-- outside the record so that passes which change nothing add nothing to the ledger.
CREATE TABLE findings (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    account TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    first_seen_at_us BIGINT NOT NULL,
    doc TEXT NOT NULL,
    last_seen_at_us BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX findings_by_state ON findings (state, target);
CREATE INDEX findings_by_holder ON findings (entitlement, account, state);
