-- Access review campaigns and their items. `doc` is the ledgered record
-- (review.campaign_started / .campaign_closed, review.item_opened / .item_decided);
-- the other columns copy its fields for filtering. An item's named reviewers are
-- rows of review_assignments, so "what waits for me" is an index read.
CREATE TABLE review_campaigns (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    due_at_us BIGINT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX review_campaigns_by_state ON review_campaigns (state, created_at_us);
CREATE TABLE review_items (
    id TEXT PRIMARY KEY,
    campaign TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT,
    -- Empty once decided by the campaign's default.
    decided_by TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX review_items_by_campaign ON review_items (campaign, state, id);
CREATE INDEX review_items_by_subject ON review_items (subject, id);
CREATE TABLE review_assignments (
    reviewer TEXT NOT NULL,
    item TEXT NOT NULL,
    campaign TEXT NOT NULL,
    PRIMARY KEY (reviewer, item)
);
CREATE INDEX review_assignments_by_item ON review_assignments (item);
