-- The ledger's Merkle tree (RFC 6962; writ_domain::ledger::merkle): the hash of each
-- perfect subtree of 256 events or more, as 64 hex digits. Derived from the events
-- (`writ audit verify` recomputes it) and never changed once written: a perfect subtree
-- covers events that are final. Smaller subtrees are hashed from the events themselves
-- when a proof needs them.
CREATE TABLE ledger_tree (
    level BIGINT NOT NULL,
    idx BIGINT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
);
