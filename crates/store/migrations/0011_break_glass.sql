-- Break-glass activations and their after-the-fact reviews. `doc` is the ledgered
-- record (break_glass.activated, .review_overdue, .review_signed_off); the other
-- columns copy its fields for filtering: a person's pending reviews, the open ones.
CREATE TABLE break_glass_activations (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    activator TEXT NOT NULL,
    review_state TEXT NOT NULL,
    activated_at_us BIGINT NOT NULL,
    review_due_at_us BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX break_glass_by_activator ON break_glass_activations (activator, review_state);
CREATE INDEX break_glass_by_state ON break_glass_activations (review_state, activated_at_us);
