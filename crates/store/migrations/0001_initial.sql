-- One schema for SQLite and PostgreSQL: only BIGINT and TEXT columns, so the same
-- runtime-checked queries work on both through sqlx's Any driver.

-- The last event's sequence number and hash. Every write transaction updates this
-- row first, which serialises ledger appends (a row lock on PostgreSQL, the write
-- lock on SQLite) and lets `audit verify` notice events removed from the end.
CREATE TABLE ledger_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO ledger_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE events (
    seq BIGINT PRIMARY KEY,
    at_us BIGINT NOT NULL,
    actor TEXT NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);

-- `doc` is the record as the API shows it and the ledger snapshots it; the other
-- columns are copies of its fields for filtering.
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    requester TEXT NOT NULL,
    subject TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX requests_by_state ON requests (state, created_at_us);
CREATE INDEX requests_by_subject ON requests (subject);

CREATE TABLE grants (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    subject TEXT NOT NULL,
    entitlement TEXT NOT NULL,
    account TEXT NOT NULL,
    state TEXT NOT NULL,
    expires_at_us BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX grants_by_subject ON grants (subject);
CREATE INDEX grants_by_holder ON grants (entitlement, account, state);

-- Work the scheduler owes: apply a grant, revoke a grant, expire a pending request.
-- Operational bookkeeping (attempts, last error), not part of the ledgered record.
CREATE TABLE jobs (
    object_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    due_at_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    last_error TEXT
);
CREATE INDEX jobs_by_due ON jobs (due_at_us);

-- Bearer tokens, stored only as the SHA-256 of the secret.
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT NOT NULL
);
