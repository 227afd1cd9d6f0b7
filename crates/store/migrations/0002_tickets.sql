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
