-- AuthZEN access requests: the task handle an enforcement point polls, the writ request
-- it made, and what makes a submission happen once — the denial's binding token id
-- (`jti`: one denial, one request) and the submitter's Idempotency-Key with a digest of
-- the body it came with (a retry gets the same task; another body under the key is
-- refused).
CREATE TABLE authzen_tasks (
    id TEXT PRIMARY KEY,
    request TEXT NOT NULL,
    jti TEXT NOT NULL UNIQUE,
    requester TEXT NOT NULL,
    idempotency_key TEXT,
    body_digest TEXT NOT NULL,
    created_at_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX authzen_tasks_by_idempotency_key ON authzen_tasks (requester, idempotency_key);
CREATE INDEX authzen_tasks_by_request ON authzen_tasks (request);
