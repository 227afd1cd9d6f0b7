-- When a failing revocation was escalated (ledger event, metric, notification): once per job.
ALTER TABLE jobs ADD COLUMN escalated_at_us BIGINT;
