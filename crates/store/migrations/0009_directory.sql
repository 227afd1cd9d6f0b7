-- People and groups an identity provider pushes over SCIM (`[[scim]]`). `doc` is the
-- record as the ledger carries it; the other columns are copies for lookups. SCIM
-- compares userName and displayName without regard to case, so their keys are
-- lower-cased and unique (a group may have no displayName).
CREATE TABLE directory_users (
    id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE,
    doc TEXT NOT NULL
);
CREATE TABLE directory_groups (
    id TEXT PRIMARY KEY,
    display_name TEXT,
    display_name_key TEXT UNIQUE,
    doc TEXT NOT NULL
);
