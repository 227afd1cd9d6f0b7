-- What one subject holds, as policy's `context.holds` reads it on every decision (and
-- the Request access page and /v1/entitlements once per view): the entitlements of its
-- pending and active grants, answered from the index alone even when the subject holds
-- thousands of leases at once.
CREATE INDEX grants_held_by_subject ON grants (subject, state, entitlement);
