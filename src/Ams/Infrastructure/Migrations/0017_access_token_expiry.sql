-- The hourly sweep of expired tokens (Features/AccessTokens/Sweeper.cs) reads by expiry: without
-- the index each batch scanned, and under REPEATABLE READ locked, every row of the table.
CREATE INDEX IF NOT EXISTS access_tokens_expiry ON access_tokens (expires_at);
