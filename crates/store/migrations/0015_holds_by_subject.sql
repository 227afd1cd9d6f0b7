-- What one subject holds or has asked for, as policy's `context.holds` reads it on every
-- decision (and the Request access page and /v1/entitlements once per view): the
-- entitlements of its pending and active grants and of its requests waiting for
-- approval, answered from these indexes alone even when the subject holds thousands of
-- leases at once and has made a hundred thousand requests.
CREATE INDEX grants_held_by_subject ON grants (subject, state, entitlement);
CREATE INDEX requests_by_subject_state ON requests (subject, state, entitlement);
