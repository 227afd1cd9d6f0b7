-- Services and agents whose owner left: when writ noticed, and when it disabled them
-- after `identities.orphan_grace` without a new owner. The ledger holds the story
-- (identity.orphaned, identity.orphan_disabled, identity.adopted); this is its state.
CREATE TABLE orphans (
    identity TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    orphaned_at_us BIGINT NOT NULL,
    disabled_at_us BIGINT
);
