-- Live grants are decided again under the policy in force (after a reload, at start,
-- when an identity changes): they are read by state, in id order, a page at a time.
CREATE INDEX grants_by_state ON grants (state, id);
