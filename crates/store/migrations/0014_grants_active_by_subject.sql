-- The AuthZEN PDP asks, for every evaluation, which leases one subject holds now:
-- read by subject and state, newest end first, without the subject's past grants.
CREATE INDEX grants_active_by_subject ON grants (subject, state, expires_at_us);
