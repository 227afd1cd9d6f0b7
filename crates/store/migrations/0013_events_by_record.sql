-- Which record an event is about (a grant, request, finding, activation, review item
-- or campaign: `writ_domain::ledger::record_of`), so one record's history — a grant's
-- timeline, its evidence — is an index read instead of a scan of the ledger. Not part
-- of the hash: it is derived from the hashed data, and filled in for the events
-- written before it existed when this migration is applied.
ALTER TABLE events ADD COLUMN record TEXT;
CREATE INDEX events_by_record ON events (record, seq);
