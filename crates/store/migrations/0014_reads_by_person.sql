-- One person's records, read by the AuthZEN PDP on every evaluation (the leases one
-- subject holds now), by the web UI's My access page and by policy's `context.holds`:
-- by subject and state in id order, and requests by requester or subject newest first,
-- without reading anyone else's or sorting the person's whole history.
CREATE INDEX grants_by_subject_state ON grants (subject, state, id);
CREATE INDEX requests_by_requester ON requests (requester, created_at_us, id);
CREATE INDEX requests_by_subject_time ON requests (subject, created_at_us, id);
