-- Requests that cite a ticket writ checked in a configured ticketing system. A ticket
-- that arrived by webhook backs exactly one request; this is how writ knows.
CREATE TABLE ticket_links (
    system TEXT NOT NULL,
    ticket_key TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (system, ticket_key, request_id)
);

-- Webhook deliveries already acted on (by the sender's delivery id), so a retried or
-- replayed delivery changes nothing.
CREATE TABLE itsm_deliveries (
    system TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    received_at_us BIGINT NOT NULL,
    PRIMARY KEY (system, delivery_id)
);

-- Evidence for ticketing systems (transactional outbox): written in the transaction of
-- the ledger event it reports, delivered by a worker in `seq` order per ticket, with
-- retries; nothing is lost while a ticketing system is down.
CREATE TABLE outbox (
    seq BIGINT PRIMARY KEY,
    system TEXT NOT NULL,
    ticket_key TEXT NOT NULL,
    ticket_id TEXT NOT NULL,
    action TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    last_error TEXT,
    delivered_at_us BIGINT
);
CREATE INDEX outbox_undelivered ON outbox (delivered_at_us, seq);

-- Notification sinks read the ledger itself as their outbox: each keeps the sequence
-- number of the last event it was sent, and its retry state.
CREATE TABLE notify_cursors (
    sink TEXT PRIMARY KEY,
    last_seq BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    last_error TEXT
);
