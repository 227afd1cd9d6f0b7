-- Tokens can be revoked (effective at once; on the ledger as token.revoked). Hashes are
-- now keyed with a secret kept outside the database (`[keys].token_key`): rows from
-- before (`keyed` = 0) hold plain SHA-256 hashes and no longer authenticate anyone.
ALTER TABLE tokens ADD COLUMN revoked_at_us BIGINT;
ALTER TABLE tokens ADD COLUMN keyed BIGINT NOT NULL DEFAULT 0;
