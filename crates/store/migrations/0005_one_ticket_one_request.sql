-- A ticket backs exactly one request, whether the request came through the API or a
-- webhook: approvals, closing early and closing the ticket act on that request only.
-- Where earlier versions let several requests cite one ticket, the first keeps it (the
-- others stay on the ledger, each with the ticket it cited).
CREATE TABLE ticket_backings (
    system TEXT NOT NULL,
    ticket_key TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (system, ticket_key)
);
INSERT INTO ticket_backings (system, ticket_key, request_id)
    SELECT system, ticket_key, MIN(request_id) FROM ticket_links GROUP BY system, ticket_key;
DROP TABLE ticket_links;
ALTER TABLE ticket_backings RENAME TO ticket_links;
